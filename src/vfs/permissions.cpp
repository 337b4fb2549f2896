#include "coffer/vfs/permissions.h"

#include <linux/fs.h>
#include <sys/stat.h>
#include <time.h>

#include <cstring>

namespace coffer::vfs {

Status Permissions::need(const Caller& c, Ino ino, int mask) {
    COFFER_ASSIGN(Attr a, fs_.getattr(ino));
    if (!may(a, c, mask)) return access_denied();
    return {};
}

Status Permissions::lookup(const Caller& c, Ino parent) {
    if (c.root()) return {};
    return need(c, parent, kMayExec);
}

Status Permissions::create(const Caller& c, Ino parent) {
    if (c.root()) return {};
    return need(c, parent, kMayWrite | kMayExec);
}

Status Permissions::link(const Caller& c, Ino ino, Ino new_parent) {
    if (c.root()) return {};
    COFFER_TRY(need(c, new_parent, kMayWrite | kMayExec));
    COFFER_ASSIGN(Attr source, fs_.getattr(ino));
    return check_link_source(source, c);
}

Status Permissions::remove(const Caller& c, Ino parent, std::string_view name) {
    if (c.root()) return {};
    COFFER_ASSIGN(Attr d, fs_.getattr(parent));
    if (!may(d, c, kMayWrite | kMayExec)) return access_denied();
    if (!(d.mode & S_ISVTX)) return {};
    auto victim = fs_.peek(parent, name);
    if (!victim.ok()) return {};
    return check_sticky(d, *victim, c);
}

Status Permissions::rename(const Caller& c, Ino parent, std::string_view name, Ino new_parent,
                           std::string_view new_name, unsigned flags) {
    if (c.root()) return {};
    COFFER_TRY(remove(c, parent, name));
    COFFER_TRY(remove(c, new_parent, new_name));
    if (parent == new_parent) return {};
    auto moves_folder = [&](Ino dir, std::string_view n) -> Status {
        auto e = fs_.peek(dir, n);
        if (e.ok() && S_ISDIR(e->mode) && !may(*e, c, kMayWrite)) return access_denied();
        return {};
    };
    COFFER_TRY(moves_folder(parent, name));
    if (flags & RENAME_EXCHANGE) COFFER_TRY(moves_folder(new_parent, new_name));
    return {};
}

Status Permissions::open(const Caller& c, Ino ino, int flags, bool exec) {
    if (c.root()) return {};
    return need(c, ino, open_mask(flags) | (exec ? kMayExec : 0));
}

Status Permissions::opendir(const Caller& c, Ino ino) {
    if (c.root()) return {};
    return need(c, ino, kMayRead);
}

Status Permissions::setattr(const Caller& c, Ino ino, SetAttrReq& req, bool with_handle, bool kernel_times) {
    if (c.root()) return {};
    COFFER_ASSIGN(Attr now, fs_.getattr(ino));
    return check_setattr(now, c, req, with_handle, kernel_times);
}

namespace {
bool user_xattr(std::string_view name) { return name.starts_with("user."); }
}  // namespace

Status Permissions::getxattr(const Caller& c, Ino ino, std::string_view name) {
    if (c.root() || !user_xattr(name)) return {};
    return need(c, ino, kMayRead);
}

Status Permissions::change_xattr(const Caller& c, Ino ino, std::string_view name) {
    if (c.root() || !user_xattr(name)) return {};
    COFFER_ASSIGN(Attr a, fs_.getattr(ino));
    return check_user_xattr_write(a, c);
}

Status Permissions::access(const Caller& c, Ino ino, int mask) { return need(c, ino, mask); }

bool empty_setattr(const SetAttrReq& r) {
    using T = SetAttrReq::Time;
    return !r.mode && !r.uid && !r.gid && !r.size && r.atime == T::keep && r.mtime == T::keep && !r.ctime;
}

void settle_empty_setattr(SetAttrReq& req, bool killpriv_v2) {
    if (!empty_setattr(req)) return;
    struct timespec now{};
    clock_gettime(CLOCK_REALTIME, &now);
    req.ctime = now;
    if (killpriv_v2) req.kill_privileges = true;
}

Result<bool> drop_privileges(Filesystem& fs, Ino ino, const Ctx& ctx) {
    COFFER_ASSIGN(Attr a, fs.getattr(ino));
    if (mode_without_privileges(a.mode & 07777) == (a.mode & 07777)) return false;
    SetAttrReq r;
    r.kill_privileges = true;
    COFFER_ASSIGN(Attr after, fs.setattr(ino, r, ctx));
    (void)after;
    return true;
}

}  // namespace coffer::vfs
