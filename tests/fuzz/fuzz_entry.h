// The libFuzzer entry point around a target body `const char* body(data, size)`
// (nullptr when every property holds). Left out when the body is included by
// the unit tests (COFFER_FUZZ_NO_ENTRY), which run the seed corpus through it.
#pragma once

#ifndef COFFER_FUZZ_NO_ENTRY
#include <cstdio>
#include <cstdlib>

#include "coffer/crypto/crypto.h"

#define COFFER_FUZZ_ENTRY(body)                                                   \
    extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {     \
        static const bool once = (coffer::crypto::init(), true);                  \
        (void)once;                                                               \
        if (const char* why = body(data, size)) {                                 \
            std::fprintf(stderr, "%s: %s\n", #body, why);                         \
            std::abort();                                                         \
        }                                                                         \
        return 0;                                                                 \
    }
#else
#define COFFER_FUZZ_ENTRY(body)
#endif
