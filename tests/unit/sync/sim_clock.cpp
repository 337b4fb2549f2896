// The simulator's wall clock. coffer stamps operations with a hybrid
// logical clock read from CLOCK_REALTIME, and last-writer-wins merges
// order by it: with the real clock, which of two devices' changes wins
// would depend on how many milliseconds the run took, and a failing seed
// would not replay. While a World is alive, this test binary's
// clock_gettime(CLOCK_REALTIME) returns a virtual time instead, starting at
// 2026-11-28 12:00:00 UTC and advancing one millisecond per call. Every
// other clock, and CLOCK_REALTIME outside a World, is the kernel's.
//
// This works because the coffer libraries are linked statically into the
// test binary: their calls resolve to this definition before libc's.
#include <dlfcn.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

#include "sim_world.h"

namespace coffer::sim {

namespace {
constexpr int64_t kStartNs = int64_t{1795867200} * 1000000000;  // 2026-11-28 12:00:00 UTC
constexpr int64_t kTickNs = 1000000;
std::atomic<bool> g_virtual{false};
std::atomic<int64_t> g_now{kStartNs};
}  // namespace

VirtualClock::VirtualClock() {
    g_now = kStartNs;
    g_virtual = true;
}
VirtualClock::~VirtualClock() { g_virtual = false; }

}  // namespace coffer::sim

namespace {
using ClockFn = int (*)(clockid_t, struct timespec*);
int kernel_clock(clockid_t id, struct timespec* ts) {
    // libc's own (through the vDSO, as fast as before); the system call if it cannot be found.
    static const ClockFn libc = reinterpret_cast<ClockFn>(::dlsym(RTLD_NEXT, "clock_gettime"));
    return libc ? libc(id, ts) : static_cast<int>(::syscall(SYS_clock_gettime, id, ts));
}
}  // namespace

extern "C" int clock_gettime(clockid_t id, struct timespec* ts) {
    using namespace coffer::sim;
    if (id != CLOCK_REALTIME || !g_virtual.load(std::memory_order_relaxed)) return kernel_clock(id, ts);
    const int64_t now = g_now.fetch_add(kTickNs);
    ts->tv_sec = static_cast<time_t>(now / 1000000000);
    ts->tv_nsec = static_cast<long>(now % 1000000000);
    return 0;
}
