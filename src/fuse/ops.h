// Internal to src/fuse/: the low-level operation table and what it is given
// as userdata. The one boundary where coffer::Error becomes an errno.
#pragma once

#include "cache_fill.h"
#include "coffer/vfs/filesystem.h"
#include "coffer/vfs/permissions.h"
#include "wire.h"

struct fuse_lowlevel_ops;
struct fuse_session;

namespace coffer::fuse {

// Entry and attribute timeouts handed to the kernel, in seconds. While
// mounted only this daemon changes the tree (other devices' segments are
// applied at mount), so the kernel may cache for a while; a sync that merges
// while mounted must invalidate what it changes (fuse_lowlevel_notify_inval_*).
constexpr double kEntryTimeout = 10.0;
constexpr double kAttrTimeout = 10.0;
constexpr unsigned kMaxWrite = 1u << 19;
constexpr unsigned kMaxReadahead = 1u << 20;

struct OpsContext {
    explicit OpsContext(vfs::Filesystem& f) : fs(&f), permissions(f), fill(f) {}

    vfs::Filesystem* fs;
    vfs::Permissions permissions;    // used when check_access
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
    CacheFill fill;                // kernel page-cache fills after reads
};

// Trampolines for every operation coffer serves; userdata is an OpsContext*.
const ::fuse_lowlevel_ops& lowlevel_ops();

}  // namespace coffer::fuse
