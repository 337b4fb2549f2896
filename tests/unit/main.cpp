#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include "coffer/crypto/crypto.h"

int main(int argc, char** argv) {
    coffer::crypto::init();
    doctest::Context ctx;
    ctx.applyCommandLine(argc, argv);
    return ctx.run();
}
