// Internal to src/fuse/: the request loop (libfuse's receive/process calls,
// coffer's threads). Why coffer has its own: see src/fuse/loop.cpp.
#pragma once

struct fuse_session;

namespace coffer::fuse {

struct LoopLimits {
    unsigned max_pinned_cpus = 4;  // pinned workers on each of the first N usable CPUs
    unsigned max_threads = 64;     // pinned and extra workers together
};

// Serves `se` on several threads until the session exits (fuse_session_exit,
// the kernel ending the connection at unmount, a read error) or `wake_fd`
// (an eventfd, never read here) becomes readable. Sets the session's
// /dev/fuse descriptor non-blocking. Returns 0, or a negative errno of the
// read that ended it.
int serve(::fuse_session* se, int wake_fd, const LoopLimits& limits);

}  // namespace coffer::fuse
