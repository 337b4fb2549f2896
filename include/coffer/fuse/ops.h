// Internal to src/fuse/: the low-level operation table and what it is given
// as userdata. The one boundary where coffer::Error becomes an errno.
#pragma once

#include "coffer/vfs/filesystem.h"

struct fuse_lowlevel_ops;

namespace coffer::fuse {

struct OpsContext {
    vfs::Filesystem* fs = nullptr;
    bool read_only = false;
};

// Trampolines for every operation coffer serves; userdata is an OpsContext*.
const ::fuse_lowlevel_ops& lowlevel_ops();

}  // namespace coffer::fuse
