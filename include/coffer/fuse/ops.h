// Internal to src/fuse/: the low-level operation table and what it is given
// as userdata. The one boundary where coffer::Error becomes an errno.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <thread>

#include "coffer/fuse/wire.h"
#include "coffer/vfs/filesystem.h"

struct fuse_lowlevel_ops;
struct fuse_session;

namespace coffer::fuse {

struct OpsContext {
    vfs::Filesystem* fs = nullptr;
    bool read_only = false;
    bool writeback_allowed = false;  // SessionOptions::writeback_cache
    unsigned read_ahead_kb = 0;      // SessionOptions::read_ahead_kb
    bool check_access = false;       // the daemon checks permissions (no default_permissions)
    // Set at init when the kernel caches writes (FUSE_CAP_WRITEBACK_CACHE):
    // then the kernel owns size, mtime and O_APPEND positions of open files.
    bool writeback = false;
    // What the session's custom I/O noted (wire.h); once wire.killpriv_v2
    // is set, coffer drops set-user-ID and set-group-ID where the kernel asks.
    wire::State wire;
    ::fuse_session* se = nullptr;  // for notifications to the kernel

    // Kernel page-cache fills (op_read), done by one thread of their own
    // after the read is answered, so the worker that answered (on the
    // reader's CPU, src/fuse/loop.cpp) is free for the reader's next request
    // at once; a fill may also wait for pages other reads hold, which then
    // never takes a worker.
    struct Fill {
        uint64_t ino = 0, generation = 0, offset = 0;  // offset of buf[0] in the file
        std::unique_ptr<uint8_t[]> buf;
        uint64_t a = 0, b = 0, n = 0;  // store [0, a) and [b, n) of buf
    };
    std::mutex fill_mu;
    std::condition_variable fill_cv;
    std::deque<Fill> fill_queue;  // at most kMaxQueuedFills; more are dropped
    bool fill_stop = false;
    std::thread filler;
};

// Trampolines for every operation coffer serves; userdata is an OpsContext*.
const ::fuse_lowlevel_ops& lowlevel_ops();

// The fill thread: started before the loop serves, stopped (queued fills
// dropped) once it has returned and before the session is destroyed.
void start_filler(OpsContext& ctx);
void stop_filler(OpsContext& ctx);

}  // namespace coffer::fuse
