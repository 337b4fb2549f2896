// Internal to src/fuse/: the low-level operation table and what it is given
// as userdata. The one boundary where coffer::Error becomes an errno.
#pragma once

#include <atomic>

#include "coffer/vfs/filesystem.h"

struct fuse_lowlevel_ops;
struct fuse_session;

namespace coffer::fuse {

struct OpsContext {
    vfs::Filesystem* fs = nullptr;
    bool read_only = false;
    bool writeback_allowed = false;  // SessionOptions::writeback_cache
    unsigned read_ahead_kb = 0;      // SessionOptions::read_ahead_kb
    // Set at init when the kernel caches writes (FUSE_CAP_WRITEBACK_CACHE):
    // then the kernel owns size, mtime and O_APPEND positions of open files.
    bool writeback = false;
    ::fuse_session* se = nullptr;  // for notifications to the kernel
    // Kernel cache fills in progress (op_read): a fill may wait for a page
    // another read holds, so at most kMaxFills worker threads ever wait so.
    std::atomic<int> fills{0};
};

// Trampolines for every operation coffer serves; userdata is an OpsContext*.
const ::fuse_lowlevel_ops& lowlevel_ops();

}  // namespace coffer::fuse
