#include "coffer/cli/cli.h"
namespace coffer::cli {
int main(int, char**) { return 2; }
}
