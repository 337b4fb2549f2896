// The daemon's own permission checks (vfs/access.h), used when the kernel
// does not check (mounts without default_permissions): mode bits for owner,
// group and others, supplementary groups looked up only when they matter,
// root, the sticky bit, and the chown / chmod / truncate / utimes rules.
#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <vector>

#include "coffer/vfs/access.h"

using namespace coffer::vfs;

namespace {

Attr node(uint32_t mode, uint32_t uid, uint32_t gid) {
    Attr a;
    a.mode = mode;
    a.uid = uid;
    a.gid = gid;
    return a;
}

// A caller with supplementary groups `groups`; counts how often they are asked
// for.
struct Who {
    Caller c;
    int asked = 0;
    Who(uint32_t uid, uint32_t gid, std::vector<uint32_t> groups = {}) {
        c.uid = uid;
        c.gid = gid;
        c.in_supplementary = [this, groups](uint32_t g) {
            ++asked;
            return std::find(groups.begin(), groups.end(), g) != groups.end();
        };
    }
};

// 0 when allowed, else the errno of the refusal (always Code::permission).
int errno_of(const coffer::Status& st) {
    if (st.ok()) return 0;
    CHECK(st.error().code == coffer::Code::permission);
    return st.error().to_errno();
}

}  // namespace

TEST_CASE("may: the owner gets the owner's bits, and only those") {
    Who alice(1000, 1000);
    Attr f = node(S_IFREG | 0640, 1000, 2000);
    CHECK(may(f, alice.c, kMayRead));
    CHECK(may(f, alice.c, kMayWrite));
    CHECK(may(f, alice.c, kMayRead | kMayWrite));
    CHECK_FALSE(may(f, alice.c, kMayExec));
    // 0047: others may read, the owner may not (POSIX takes the first class that
    // matches).
    Attr g = node(S_IFREG | 0047, 1000, 1000);
    CHECK_FALSE(may(g, alice.c, kMayRead));
    CHECK_FALSE(may(g, alice.c, kMayWrite));
    CHECK(may(node(S_IFREG | 0400, 1000, 5), alice.c, kMayRead));
    CHECK_FALSE(may(node(S_IFREG | 0400, 1000, 5), alice.c, kMayRead | kMayWrite));
    CHECK(alice.asked == 0);
}

TEST_CASE(
    "may: group bits for the primary and for supplementary groups; "
    "others' otherwise") {
    Attr f = node(S_IFREG | 0464, 1, 2000);  // owner r, group rw, others r
    Who primary(1000, 2000);
    CHECK(may(f, primary.c, kMayRead | kMayWrite));
    Who member(1000, 1000, {3000, 2000});
    CHECK(may(f, member.c, kMayWrite));
    CHECK(member.asked == 1);
    Who stranger(1000, 1000, {3000});
    CHECK(may(f, stranger.c, kMayRead));
    CHECK_FALSE(may(f, stranger.c, kMayWrite));
    // A member gets the group's bits even where others get more.
    Attr g = node(S_IFREG | 0604, 1, 2000);
    CHECK_FALSE(may(g, member.c, kMayRead));
    CHECK(may(g, stranger.c, kMayRead));
}

TEST_CASE(
    "may: the groups are not looked up when group and other bits agree "
    "on the mask") {
    Who member(1000, 1000, {2000});
    Attr f = node(S_IFREG | 0644, 1, 2000);
    CHECK(may(f, member.c, kMayRead));
    CHECK_FALSE(may(f, member.c, kMayWrite));
    CHECK(member.asked == 0);
    Attr g = node(S_IFREG | 0664, 1, 2000);
    CHECK(may(g, member.c, kMayWrite));
    CHECK(member.asked == 1);
}

TEST_CASE(
    "may: root reads and writes anything, executes only what has an "
    "execute bit") {
    Who root(0, 0);
    CHECK(may(node(S_IFREG | 0000, 5, 5), root.c, kMayRead | kMayWrite));
    CHECK_FALSE(may(node(S_IFREG | 0666, 5, 5), root.c, kMayExec));
    CHECK(may(node(S_IFREG | 0001, 5, 5), root.c, kMayExec));
    CHECK(may(node(S_IFREG | 0100, 5, 5), root.c, kMayExec));
    CHECK(may(node(S_IFDIR | 0000, 5, 5), root.c, kMayExec | kMayWrite | kMayRead));
}

TEST_CASE("may: search permission on folders; an empty mask is always allowed") {
    Who bob(1001, 1001);
    CHECK(may(node(S_IFDIR | 0711, 1, 1), bob.c, kMayExec));
    CHECK_FALSE(may(node(S_IFDIR | 0711, 1, 1), bob.c, kMayRead));
    CHECK_FALSE(may(node(S_IFDIR | 0755, 1, 1), bob.c, kMayWrite | kMayExec));
    CHECK(may(node(S_IFDIR | 0000, 1, 1), bob.c, 0));
}

TEST_CASE(
    "check_sticky: in a sticky folder only the entry's owner, the "
    "folder's owner or root remove") {
    Attr tmp = node(S_IFDIR | 01777, 0, 0);
    Attr mine = node(S_IFREG | 0644, 1000, 1000);
    Attr theirs = node(S_IFREG | 0666, 1001, 1001);
    Who alice(1000, 1000), root(0, 0);
    CHECK(errno_of(check_sticky(tmp, mine, alice.c)) == 0);
    CHECK(errno_of(check_sticky(tmp, theirs, alice.c)) == EPERM);
    CHECK(errno_of(check_sticky(tmp, theirs, root.c)) == 0);
    Attr owned = node(S_IFDIR | 01777, 1000, 1000);
    CHECK(errno_of(check_sticky(owned, theirs, alice.c)) == 0);
    Attr plain = node(S_IFDIR | 0777, 0, 0);
    CHECK(errno_of(check_sticky(plain, theirs, alice.c)) == 0);
}

TEST_CASE("check_setattr: chown and chgrp") {
    Attr f = node(S_IFREG | 0644, 1000, 1000);
    Who alice(1000, 1000, {2000}), bob(1001, 1001), root(0, 0);
    SetAttrReq give;
    give.uid = 1001;
    CHECK(errno_of(check_setattr(f, alice.c, give, false, false)) == EPERM);
    CHECK(errno_of(check_setattr(f, root.c, give, false, false)) == 0);
    SetAttrReq same;
    same.uid = 1000;
    CHECK(errno_of(check_setattr(f, alice.c, same, false, false)) == 0);
    CHECK(errno_of(check_setattr(f, bob.c, same, false, false)) == EPERM);
    SetAttrReq grp;
    grp.gid = 2000;
    CHECK(errno_of(check_setattr(f, alice.c, grp, false, false)) == 0);
    grp.gid = 3000;
    CHECK(errno_of(check_setattr(f, alice.c, grp, false, false)) == EPERM);
    grp.gid = 1000;
    CHECK(errno_of(check_setattr(f, bob.c, grp, false, false)) == EPERM);
}

TEST_CASE(
    "check_setattr: chmod by the owner only; setgid dropped outside the "
    "group; killing privileges") {
    Attr f = node(S_IFREG | 06755, 1000, 2000);
    Who alice(1000, 1000), member(1000, 1000, {2000}), bob(1001, 1001), root(0, 0);
    SetAttrReq m;
    m.mode = 0700;
    CHECK(errno_of(check_setattr(f, bob.c, m, false, false)) == EPERM);
    CHECK(errno_of(check_setattr(f, alice.c, m, false, false)) == 0);
    CHECK(*m.mode == 0700);
    SetAttrReq sg;
    sg.mode = 02755;
    CHECK(errno_of(check_setattr(f, alice.c, sg, false, false)) == 0);
    CHECK(*sg.mode == 0755);  // alice is not in group 2000
    SetAttrReq sg2;
    sg2.mode = 02755;
    CHECK(errno_of(check_setattr(f, member.c, sg2, false, false)) == 0);
    CHECK(*sg2.mode == 02755);
    SetAttrReq sg3;
    sg3.mode = 02755;
    CHECK(errno_of(check_setattr(f, root.c, sg3, false, false)) == 0);
    CHECK(*sg3.mode == 02755);
    // The kernel clearing setuid/setgid before bob's write: allowed.
    SetAttrReq kill;
    kill.mode = 0755;
    CHECK(errno_of(check_setattr(f, bob.c, kill, true, true)) == 0);
    SetAttrReq kill_uid_only;
    kill_uid_only.mode = 02755;
    CHECK(errno_of(check_setattr(f, bob.c, kill_uid_only, true, true)) == 0);
    // ... but not anything more.
    SetAttrReq more;
    more.mode = 0777;
    CHECK(errno_of(check_setattr(f, bob.c, more, true, true)) == EPERM);
    SetAttrReq add;
    add.mode = 07755;
    CHECK(errno_of(check_setattr(f, bob.c, add, true, true)) == EPERM);
}

TEST_CASE(
    "check_setattr: truncate needs write permission unless through an "
    "open handle") {
    Attr f = node(S_IFREG | 0644, 1000, 1000);
    Who alice(1000, 1000), bob(1001, 1001);
    SetAttrReq t;
    t.size = 0;
    CHECK(errno_of(check_setattr(f, alice.c, t, false, false)) == 0);
    CHECK(errno_of(check_setattr(f, bob.c, t, false, false)) == EACCES);
    CHECK(errno_of(check_setattr(f, bob.c, t, true, false)) == 0);
    Attr ro = node(S_IFREG | 0444, 1000, 1000);
    CHECK(errno_of(check_setattr(ro, alice.c, t, false, false)) == EACCES);
}

TEST_CASE(
    "check_setattr: times — explicit needs the owner, now needs write "
    "permission") {
    using T = SetAttrReq::Time;
    Attr f = node(S_IFREG | 0666, 1000, 1000);
    Attr ro = node(S_IFREG | 0644, 1000, 1000);
    Who alice(1000, 1000), bob(1001, 1001);
    SetAttrReq touch;
    touch.atime = T::now;
    touch.mtime = T::now;
    CHECK(errno_of(check_setattr(f, bob.c, touch, false, false)) == 0);
    CHECK(errno_of(check_setattr(ro, bob.c, touch, false, false)) == EACCES);
    CHECK(errno_of(check_setattr(ro, alice.c, touch, false, false)) == 0);
    SetAttrReq set;
    set.atime = T::set;
    set.mtime = T::set;
    CHECK(errno_of(check_setattr(f, bob.c, set, false, false)) == EPERM);
    CHECK(errno_of(check_setattr(f, alice.c, set, false, false)) == 0);
    SetAttrReq half;  // utimensat(UTIME_OMIT, UTIME_NOW): not a touch
    half.mtime = T::now;
    CHECK(errno_of(check_setattr(f, bob.c, half, false, false)) == EPERM);
    // With the write-back cache the kernel's touch is atime "now", mtime and
    // ctime explicit,
    SetAttrReq wb_touch;
    wb_touch.atime = T::now;
    wb_touch.mtime = T::set;
    wb_touch.mtime_val = timespec{7, 0};
    wb_touch.ctime = timespec{7, 0};
    CHECK(errno_of(check_setattr(f, bob.c, wb_touch, false, true)) == 0);
    CHECK(errno_of(check_setattr(ro, bob.c, wb_touch, false, true)) == EACCES);
    // and its own time stamps after a write are mtime and ctime.
    SetAttrReq stamp;
    stamp.mtime = T::set;
    stamp.mtime_val = timespec{7, 0};
    stamp.ctime = timespec{7, 0};
    CHECK(errno_of(check_setattr(f, bob.c, stamp, true, true)) == 0);
    // An explicit atime is never the kernel's.
    SetAttrReq explicit_atime = wb_touch;
    explicit_atime.atime = T::set;
    CHECK(errno_of(check_setattr(f, bob.c, explicit_atime, false, true)) == EPERM);
    // Without the write-back cache, explicit mtime and ctime are the caller's.
    CHECK(errno_of(check_setattr(f, bob.c, stamp, true, false)) == EPERM);
    // A ctime alone (the kernel marking a change) needs nothing.
    SetAttrReq ctime_only;
    ctime_only.ctime = timespec{1, 0};
    CHECK(errno_of(check_setattr(ro, bob.c, ctime_only, false, true)) == 0);
}

TEST_CASE("open_mask: open(2) flags to the access they need") {
    CHECK(open_mask(O_RDONLY) == kMayRead);
    CHECK(open_mask(O_WRONLY) == kMayWrite);
    CHECK(open_mask(O_RDWR) == (kMayRead | kMayWrite));
    CHECK(open_mask(O_RDONLY | O_TRUNC) == (kMayRead | kMayWrite));
    CHECK(open_mask(O_WRONLY | O_APPEND | O_CREAT) == kMayWrite);
    CHECK(open_mask(3) == (kMayRead | kMayWrite));
}

TEST_CASE(
    "check_setattr: the kernel's new ctime after a rename or link needs "
    "nothing") {
    using T = SetAttrReq::Time;
    Attr f = node(S_IFREG | 0644, 0, 0);
    f.mtime = timespec{100, 5};
    Who bob(1001, 1001);
    SetAttrReq ctime_stamp;  // mtime unchanged, new ctime: what the kernel sends
                             // after bob renamed f
    ctime_stamp.mtime = T::set;
    ctime_stamp.mtime_val = timespec{100, 5};
    ctime_stamp.ctime = timespec{200, 0};
    CHECK(errno_of(check_setattr(f, bob.c, ctime_stamp, false, true)) == 0);
    // A changed mtime is a write's stamp: bob may not write f.
    SetAttrReq write_stamp = ctime_stamp;
    write_stamp.mtime_val = timespec{150, 0};
    CHECK(errno_of(check_setattr(f, bob.c, write_stamp, false, true)) == EACCES);
    // Without the write-back cache the same request is bob's own utimensat.
    CHECK(errno_of(check_setattr(f, bob.c, ctime_stamp, false, false)) == EPERM);
}

TEST_CASE("check_link_source: protected hard links") {
    Who alice(1000, 1000), root(0, 0);
    CHECK(errno_of(check_link_source(node(S_IFREG | 0600, 1000, 1000), alice.c)) == 0);
    CHECK(errno_of(check_link_source(node(S_IFREG | 0600, 0, 0), alice.c)) == EPERM);
    CHECK(errno_of(check_link_source(node(S_IFREG | 0600, 0, 0), root.c)) == 0);
    CHECK(errno_of(check_link_source(node(S_IFREG | 0666, 0, 0), alice.c)) == 0);
    CHECK(errno_of(check_link_source(node(S_IFREG | 0644, 0, 0), alice.c)) == EPERM);
    CHECK(errno_of(check_link_source(node(S_IFREG | 04777, 0, 0), alice.c)) == EPERM);
    CHECK(errno_of(check_link_source(node(S_IFREG | 02777, 0, 0), alice.c)) == EPERM);
    CHECK(errno_of(check_link_source(node(S_IFREG | 02767, 0, 0), alice.c)) == 0);  // setgid without group-exec
    CHECK(errno_of(check_link_source(node(S_IFIFO | 0666, 0, 0), alice.c)) == EPERM);
}

TEST_CASE("check_user_xattr_write: write permission; a sticky folder's owner only") {
    Who alice(1000, 1000), root(0, 0);
    CHECK(errno_of(check_user_xattr_write(node(S_IFREG | 0666, 0, 0), alice.c)) == 0);
    CHECK(errno_of(check_user_xattr_write(node(S_IFREG | 0644, 0, 0), alice.c)) == EACCES);
    CHECK(errno_of(check_user_xattr_write(node(S_IFDIR | 01777, 0, 0), alice.c)) == EPERM);
    CHECK(errno_of(check_user_xattr_write(node(S_IFDIR | 01777, 1000, 0), alice.c)) == 0);
    CHECK(errno_of(check_user_xattr_write(node(S_IFDIR | 01777, 0, 0), root.c)) == 0);
    CHECK(errno_of(check_user_xattr_write(node(S_IFDIR | 0777, 0, 0), alice.c)) == 0);
}

TEST_CASE("mode_without_privileges: setuid always goes, setgid only when group-executable") {
    CHECK(mode_without_privileges(06775) == 00775);
    CHECK(mode_without_privileges(04755) == 00755);
    CHECK(mode_without_privileges(02745) == 02745);  // setgid without group exec: mandatory locking
    CHECK(mode_without_privileges(02755) == 00755);
    CHECK(mode_without_privileges(01777) == 01777);  // sticky stays
    CHECK(mode_without_privileges(00644) == 00644);
    CHECK(mode_without_privileges(0100000 | 06775) == (0100000 | 00775));  // the type bits pass through
}
