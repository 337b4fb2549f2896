// Wall-clock time in nanoseconds, as the index and the journal store it.
#pragma once

#include <time.h>

#include <cstdint>

namespace coffer::vfs {

inline int64_t now_ns() {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

}  // namespace coffer::vfs
