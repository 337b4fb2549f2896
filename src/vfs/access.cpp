#include "coffer/vfs/access.h"

#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>

namespace coffer::vfs {

Error access_denied() { return Error{Code::permission, EACCES, "permission denied"}; }
Error not_permitted() { return Error{Code::permission, EPERM, "operation not permitted"}; }

bool may(const Attr& a, const Caller& c, int mask) {
    mask &= kMayRead | kMayWrite | kMayExec;
    if (c.root()) {
        if (!(mask & kMayExec) || S_ISDIR(a.mode)) return true;
        return (a.mode & (S_IXUSR | S_IXGRP | S_IXOTH)) != 0;
    }
    uint32_t bits;
    if (c.uid == a.uid) {
        bits = (a.mode >> 6) & 7;
    } else {
        // A member of the file's group gets the group's bits, even where
        // others get more; the groups are looked up only when the two differ.
        const uint32_t group = (a.mode >> 3) & 7, other = a.mode & 7;
        bits = (static_cast<uint32_t>(mask) & (group ^ other)) != 0 && c.in_group(a.gid) ? group : other;
    }
    return (static_cast<uint32_t>(mask) & ~bits) == 0;
}

Status check_sticky(const Attr& dir, const Attr& victim, const Caller& c) {
    if (!(dir.mode & S_ISVTX) || c.root()) return {};
    if (c.uid == victim.uid || c.uid == dir.uid) return {};
    return not_permitted();
}

Status check_setattr(const Attr& a, const Caller& c, SetAttrReq& req, bool with_handle, bool kernel_times) {
    if (c.root()) return {};
    const bool owner = c.uid == a.uid;
    // chown: only to oneself, as the owner; chgrp: the owner, to a group of its
    // own.
    if (req.uid && (!owner || *req.uid != a.uid)) return not_permitted();
    if (req.gid && (!owner || (*req.gid != a.gid && !c.in_group(*req.gid)))) return not_permitted();
    if (req.mode) {
        const uint32_t now = a.mode & 07777, want = *req.mode & 07777;
        // Only clearing setuid/setgid: the kernel dropping them before a
        // write by a caller who may write the file. Anyone may lose privileges.
        const bool only_drops = (want & ~now) == 0 && ((now ^ want) & ~(S_ISUID | S_ISGID)) == 0;
        if (!owner && !only_drops) return not_permitted();
        if (owner && (want & S_ISGID) && !c.in_group(req.gid ? *req.gid : a.gid)) req.mode = want & ~S_ISGID;
    }
    if (req.size && !with_handle && !may(a, c, kMayWrite)) return access_denied();
    using T = SetAttrReq::Time;
    if ((req.atime != T::keep || req.mtime != T::keep) && !owner) {
        // With the write-back cache the kernel keeps the times of regular
        // files and hands them over as explicit mtime and ctime: after a
        // write, for a touch (with atime "now"), and, with the mtime it
        // already had, after a rename, link or unlink changed the ctime.
        const bool kernel_stamp = kernel_times && req.ctime && req.atime != T::set && req.mtime == T::set;
        if (kernel_stamp && req.atime == T::keep && req.mtime_val.tv_sec == a.mtime.tv_sec &&
            req.mtime_val.tv_nsec == a.mtime.tv_nsec)
            return {};  // a new ctime only: the change was checked itself
        // "Now" (touch, utimensat with NULL) needs write permission; any
        // explicit time needs ownership.
        const bool touch = req.atime == T::now && req.mtime == T::now;
        if (!touch && !kernel_stamp) return not_permitted();
        if (!may(a, c, kMayWrite)) return access_denied();
    }
    return {};
}

Status check_link_source(const Attr& a, const Caller& c) {
    if (c.root() || c.uid == a.uid) return {};
    if (!S_ISREG(a.mode)) return not_permitted();
    if (a.mode & S_ISUID) return not_permitted();
    if ((a.mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP)) return not_permitted();
    if (!may(a, c, kMayRead | kMayWrite)) return not_permitted();
    return {};
}

Status check_user_xattr_write(const Attr& a, const Caller& c) {
    if (S_ISDIR(a.mode) && (a.mode & S_ISVTX) && !c.root() && c.uid != a.uid) return not_permitted();
    if (!may(a, c, kMayWrite)) return access_denied();
    return {};
}

uint32_t mode_without_privileges(uint32_t mode) {
    mode &= ~static_cast<uint32_t>(S_ISUID);
    if (mode & S_IXGRP) mode &= ~static_cast<uint32_t>(S_ISGID);
    return mode;
}

int open_mask(int flags) {
    int m = 0;
    switch (flags & O_ACCMODE) {
        case O_RDONLY:
            m = kMayRead;
            break;
        case O_WRONLY:
            m = kMayWrite;
            break;
        default:
            m = kMayRead | kMayWrite;
            break;  // O_RDWR, and 3 as Linux reads it
    }
    if (flags & O_TRUNC) m |= kMayWrite;
    return m;
}

}  // namespace coffer::vfs
