// Time as the index and the journal keep it: wall-clock nanoseconds, and the
// hybrid logical clock (HLC) that orders this device's operations.
#pragma once

#include <time.h>

#include <cstdint>

#include "coffer/format/ops.h"

namespace coffer::vfs {

inline int64_t now_ns() {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// Milliseconds of wall time in the high 48 bits, a counter in the low 16.
// A new timestamp is later than every one issued or observed before, even
// when the wall clock steps back or another device's clock runs ahead.
// Not synchronized: its owner guards it.
class HlcClock {
public:
    format::Hlc next() { return next_at(static_cast<uint64_t>(now_ns() / 1000000)); }
    format::Hlc next_at(uint64_t wall_ms) {
        const format::Hlc phys = static_cast<format::Hlc>(wall_ms) << 16;
        last_ = phys > last_ ? phys : last_ + 1;
        return last_;
    }
    // A timestamp seen elsewhere (a replayed segment, the persisted last value).
    void observe(format::Hlc seen) {
        if (seen > last_) last_ = seen;
    }
    format::Hlc last() const { return last_; }

private:
    format::Hlc last_ = 0;
};

}  // namespace coffer::vfs
