// The daemon's own permission checks, per operation, for mounts where the
// kernel does not check (fuse::SessionOptions::kernel_permissions): what the
// kernel's VFS and generic_permission would check before each call, from the
// attributes this Filesystem has. Each check combines the pure rules of
// access.h with the lookups they need. And what a setattr or a write must
// do to set-user-ID bits (docs/ARCHITECTURE.md, "Setuid bits").
//
// Refusals are Code::permission with EACCES or EPERM as sys_errno; any other
// error is the lookup's own.
#pragma once

#include <string_view>

#include "coffer/util/result.h"
#include "coffer/vfs/access.h"
#include "coffer/vfs/filesystem.h"

namespace coffer::vfs {

// Root passes every check but access(), as CAP_DAC_OVERRIDE lets it (the
// kernel has checked execute bits of what it executes).
class Permissions {
public:
    explicit Permissions(Filesystem& fs) : fs_(fs) {}

    // Looking up an entry of `parent`: search permission on it.
    Status lookup(const Caller& c, Ino parent);
    // A new entry in `parent` (mknod, mkdir, symlink, create): write and search.
    Status create(const Caller& c, Ino parent);
    // A new hard link to `ino` in `new_parent`: as create, and the link
    // source rule (check_link_source).
    Status link(const Caller& c, Ino ino, Ino new_parent);
    // Removing entry `name` of `parent` (unlink, rmdir): write and search on
    // the folder, and the sticky rule if the entry exists (if not, the
    // operation itself answers ENOENT).
    Status remove(const Caller& c, Ino parent, std::string_view name);
    // Both folders as remove(), and a folder that changes parent needs write
    // permission on itself (its ".." changes); with RENAME_EXCHANGE both ways.
    Status rename(const Caller& c, Ino parent, std::string_view name, Ino new_parent, std::string_view new_name,
                  unsigned flags);
    // open(2) flags (open_mask); `exec` for execve's open, which needs execute.
    Status open(const Caller& c, Ino ino, int flags, bool exec);
    Status opendir(const Caller& c, Ino ino);
    // check_setattr on the node's current attributes; may drop S_ISGID from req.
    Status setattr(const Caller& c, Ino ino, SetAttrReq& req, bool with_handle, bool kernel_times);
    // user.* names need read (get) or write (set, remove) permission; the
    // kernel checks trusted.*, security.* and ACLs itself.
    Status getxattr(const Caller& c, Ino ino, std::string_view name);
    Status change_xattr(const Caller& c, Ino ino, std::string_view name);
    // access(2) and chdir: mask as R_OK / W_OK / X_OK; root too (execute
    // needs some execute bit).
    Status access(const Caller& c, Ino ino, int mask);

private:
    Status need(const Caller& c, Ino ino, int mask);
    Filesystem& fs_;
};

// ---- set-user-ID bits under FUSE_HANDLE_KILLPRIV_V2 (the server drops them)

// Whether a setattr asks for nothing at all: chown(f, -1, -1), and what is
// left of the kernel's own drop request once it stripped the mode change.
bool empty_setattr(const SetAttrReq& req);

// An empty setattr still marks a change (ctime now), as on ext4; with
// `killpriv_v2` it also drops privileges: the kernel strips its own mode
// change from a setattr that only meant to drop them (chown(f, -1, -1), a
// fallocate or write by a caller without CAP_FSETID). Others stay as they are.
void settle_empty_setattr(SetAttrReq& req, bool killpriv_v2);

// Drops set-user-ID and set-group-ID (when group-executable) of `ino` before
// a write that asks for it; true when the mode changed (the caller's cached
// attributes are then stale).
Result<bool> drop_privileges(Filesystem& fs, Ino ino, const Ctx& ctx);

}  // namespace coffer::vfs
