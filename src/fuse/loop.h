// Internal to src/fuse/: the request loop (libfuse's receive/process calls,
// coffer's threads). Why coffer has its own: see src/fuse/loop.cpp.
#pragma once

struct fuse_session;

namespace coffer::fuse {

// Two workers wait on each of the first kMaxPinnedCpus CPUs (see loop.cpp;
// every request wakes them all, so more would cost more than they save);
// more start when requests arrive together (the kernel's write-back sends up
// to 12 at once) and end again when idle: each holds a request buffer of
// max_write and coffer's per-thread scratch (~3 MiB).
constexpr unsigned kMaxPinnedCpus = 4;
// Worker threads at most (libfuse's default is 10). A kernel cache fill may
// wait for a page that a read of the same file holds, and changes of that
// file wait for the fill (see src/vfs/change_gate.h); the reads need free
// workers, so there must be more workers than such waiters can ever be.
constexpr unsigned kMaxThreads = 64;

struct LoopLimits {
    unsigned max_pinned_cpus = kMaxPinnedCpus;  // pinned workers on each of the first N usable CPUs
    unsigned max_threads = kMaxThreads;         // pinned and extra workers together
};

// Serves `se` on several threads until the session exits (fuse_session_exit,
// the kernel ending the connection at unmount, a read error) or `wake_fd`
// (an eventfd, never read here) becomes readable. Sets the session's
// /dev/fuse descriptor non-blocking. Returns 0, or a negative errno of the
// read that ended it.
int serve(::fuse_session* se, int wake_fd, const LoopLimits& limits);

}  // namespace coffer::fuse
