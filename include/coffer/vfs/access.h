// Permission checks on mode bits, as the kernel's generic_permission and the
// chown/chmod/utimes rules make them, for mounts where the daemon checks
// instead of the kernel (see fuse::SessionOptions::kernel_permissions).
// Pure functions of a node's attributes and the caller: no I/O, no locks.
// No ACLs (coffer stores none), no capabilities: uid 0 is the privileged
// caller, as FUSE requests carry no capability set.
#pragma once

#include <cstdint>
#include <functional>

#include "coffer/util/result.h"
#include "coffer/vfs/filesystem.h"

namespace coffer::vfs {

// Who asks. Supplementary groups are looked up only when a check needs
// them (FUSE requests carry uid and gid only; the groups cost a /proc read).
struct Caller {
    uint32_t uid = 0, gid = 0;
    std::function<bool(uint32_t gid)> in_supplementary;  // empty: none
    bool root() const { return uid == 0; }
    bool in_group(uint32_t g) const { return g == gid || (in_supplementary && in_supplementary(g)); }
};

// Access bits, as access(2)'s R_OK / W_OK / X_OK.
constexpr int kMayRead = 4, kMayWrite = 2, kMayExec = 1;

// The two refusals, as Code::permission with the errno the kernel would
// give: EACCES when mode bits deny, EPERM when only the owner (or root) may.
Error access_denied();
Error not_permitted();

// May `c` read / write / search-or-execute `a`? Root may do all but execute
// a non-directory with no execute bit at all.
bool may(const Attr& a, const Caller& c, int mask);

// Removing or renaming away an entry `victim` of directory `dir`: the
// sticky-bit rule (not_permitted). Write and search permission on `dir` are
// checked separately with may().
Status check_sticky(const Attr& dir, const Attr& victim, const Caller& c);

// What a setattr may change (not_permitted, access_denied), and the one change the
// rules make to it: a non-root caller outside the file's group cannot set
// S_ISGID, which chmod then drops (as Linux does). `with_handle`: the
// request came through an open file (ftruncate, futimens), whose open was
// checked. `kernel_times`: the kernel's write-back cache keeps file times
// and hands them over as explicit times (also for touch and for a write by
// a caller who may write but does not own the file).
Status check_setattr(const Attr& a, const Caller& c, SetAttrReq& req, bool with_handle, bool kernel_times);

// A hard link to `a` by someone else than its owner (not_permitted): Linux's
// protected_hardlinks rule (on by default in Debian): only a regular file
// the caller may read and write, and not setuid or setgid-executable.
Status check_link_source(const Attr& a, const Caller& c);

// Setting or removing a user.* xattr (not_permitted, access_denied): write permission,
// and in a sticky folder only its owner.
Status check_user_xattr_write(const Attr& a, const Caller& c);

// open(2) flags to the access they need (O_TRUNC needs write).
int open_mask(int flags);

// The permission bits of a file written, truncated or given away by someone
// who may not keep its privileges: without set-user-ID, and without
// set-group-ID when it is group-executable (without group execute, that bit
// means mandatory locking, not a privilege), as Linux drops them.
uint32_t mode_without_privileges(uint32_t mode);

}  // namespace coffer::vfs
