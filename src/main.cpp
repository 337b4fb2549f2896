#include "coffer/cli/cli.h"

int main(int argc, char** argv) { return coffer::cli::main(argc, argv); }
