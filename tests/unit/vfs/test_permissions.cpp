// vfs::Permissions: the daemon's per-operation checks over a real core (the
// pure rules are in test_access.cpp), and the setuid rules of
// vfs/permissions.h.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>

#include "coffer/vfs/permissions.h"
#include "core_fixture.h"

using namespace coffer;
using namespace coffer::testing;
using vfs::Ino;
using vfs::kRootIno;

namespace {

vfs::Caller caller(uint32_t uid, uint32_t gid) { return vfs::Caller{uid, gid, {}}; }

// 0 when allowed, else the errno of the refusal (always Code::permission).
int errno_of(const Status& st) {
    if (st.ok()) return 0;
    CHECK(st.error().code == Code::permission);
    return st.error().to_errno();
}

}  // namespace

TEST_CASE("permissions: lookup, create, opendir and open need the folder's and file's bits; root passes") {
    CoreFixture f;  // nodes owned by 1000:1000
    vfs::Permissions p(*f.fs);
    const Ino dir = f.mkdir(kRootIno, "private", 0700);
    const Ino file = f.mkfile(dir, "f", "x", 0640);
    const auto alice = caller(1000, 1000), bob = caller(2000, 2000), root = caller(0, 0);
    CHECK(errno_of(p.lookup(alice, dir)) == 0);
    CHECK(errno_of(p.lookup(bob, dir)) == EACCES);
    CHECK(errno_of(p.lookup(root, dir)) == 0);
    CHECK(errno_of(p.create(bob, dir)) == EACCES);
    CHECK(errno_of(p.create(alice, dir)) == 0);
    CHECK(errno_of(p.opendir(bob, dir)) == EACCES);
    CHECK(errno_of(p.open(alice, file, O_RDWR, false)) == 0);
    CHECK(errno_of(p.open(alice, file, O_RDONLY, true)) == EACCES);  // execve: no execute bit
    CHECK(errno_of(p.open(caller(3000, 1000), file, O_RDONLY | O_TRUNC, false)) == EACCES);
    CHECK(errno_of(p.open(caller(3000, 1000), file, O_RDONLY, false)) == 0);  // the group may read
    CHECK(errno_of(p.open(root, file, O_RDONLY, true)) == 0);
    // access(2) checks root too: executing needs some execute bit.
    CHECK(errno_of(p.access(root, file, vfs::kMayExec)) == EACCES);
    CHECK(errno_of(p.access(root, file, vfs::kMayRead | vfs::kMayWrite)) == 0);
    // A node that is not there is the lookup's own error.
    CHECK(code_of(p.lookup(bob, 999999)) == Code::not_found);
}

TEST_CASE("permissions: removing from a sticky folder, renaming folders across parents") {
    CoreFixture f;
    vfs::Permissions p(*f.fs);
    auto tmp = f.fs->mkdir(kRootIno, "tmp", 01777, vfs::Ctx{0, 0, 0});
    REQUIRE(tmp.ok());
    f.mkfile(tmp->ino, "alices", "x");
    const auto alice = caller(1000, 1000), bob = caller(2000, 2000);
    CHECK(errno_of(p.remove(alice, tmp->ino, "alices")) == 0);
    CHECK(errno_of(p.remove(bob, tmp->ino, "alices")) == EPERM);
    CHECK(errno_of(p.remove(bob, tmp->ino, "missing")) == 0);  // the operation answers ENOENT
    CHECK(errno_of(p.rename(bob, tmp->ino, "alices", tmp->ino, "new", 0)) == EPERM);
    CHECK(errno_of(p.rename(alice, tmp->ino, "alices", tmp->ino, "new", 0)) == 0);

    // A folder that changes parent needs write permission on itself.
    const Ino a = f.mkdir(kRootIno, "a"), b = f.mkdir(kRootIno, "b");
    f.mkdir(a, "sealed", 0555);
    f.mkdir(b, "other", 0755);
    CHECK(errno_of(p.rename(alice, a, "sealed", b, "sealed", 0)) == EACCES);
    CHECK(errno_of(p.rename(alice, a, "sealed", a, "renamed", 0)) == 0);
    CHECK(errno_of(p.rename(alice, b, "other", a, "sealed", 0)) == 0);
    CHECK(errno_of(p.rename(alice, b, "other", a, "sealed", RENAME_EXCHANGE)) == EACCES);
    CHECK(errno_of(p.remove(bob, a, "sealed")) == EACCES);  // no write on a
}

TEST_CASE("permissions: links, setattr and user xattrs") {
    CoreFixture f;
    vfs::Permissions p(*f.fs);
    const Ino file = f.mkfile(kRootIno, "f", "x", 0644);
    const Ino open_dir = f.mkdir(kRootIno, "shared", 0777);
    const auto alice = caller(1000, 1000), bob = caller(2000, 2000);
    CHECK(errno_of(p.link(alice, file, open_dir)) == 0);
    CHECK(errno_of(p.link(bob, file, open_dir)) == EPERM);  // protected hard links
    vfs::SetAttrReq chmod;
    chmod.mode = 0600;
    CHECK(errno_of(p.setattr(bob, file, chmod, false, false)) == EPERM);
    CHECK(errno_of(p.setattr(alice, file, chmod, false, false)) == 0);
    vfs::SetAttrReq truncate;
    truncate.size = 0;
    CHECK(errno_of(p.setattr(bob, file, truncate, false, false)) == EACCES);
    CHECK(errno_of(p.getxattr(bob, file, "user.x")) == 0);  // 0644: others read
    CHECK(errno_of(p.change_xattr(bob, file, "user.x")) == EACCES);
    CHECK(errno_of(p.change_xattr(bob, file, "security.x")) == 0);  // the kernel checks those
    CHECK(errno_of(p.change_xattr(alice, file, "user.x")) == 0);
}

TEST_CASE("permissions: an empty setattr marks a change, and drops privileges under KILLPRIV_V2") {
    vfs::SetAttrReq empty;
    CHECK(vfs::empty_setattr(empty));
    vfs::settle_empty_setattr(empty, false);
    CHECK(empty.ctime.has_value());
    CHECK_FALSE(empty.kill_privileges);
    vfs::SetAttrReq killpriv;
    vfs::settle_empty_setattr(killpriv, true);
    CHECK(killpriv.ctime.has_value());
    CHECK(killpriv.kill_privileges);
    vfs::SetAttrReq chmod;
    chmod.mode = 0644;
    vfs::settle_empty_setattr(chmod, true);
    CHECK_FALSE(chmod.ctime.has_value());
    CHECK_FALSE(chmod.kill_privileges);
}

TEST_CASE("permissions: drop_privileges clears setuid, and setgid when group-executable") {
    CoreFixture f;
    const Ino suid = f.mkfile(kRootIno, "suid", "x", 06755);
    const Ino lock = f.mkfile(kRootIno, "lock", "x", 02644);  // setgid without group execute: a lock bit
    auto dropped = vfs::drop_privileges(*f.fs, suid, f.ctx);
    REQUIRE(dropped.ok());
    CHECK(*dropped);
    CHECK((f.attr(suid).mode & 07777) == 0755);
    dropped = vfs::drop_privileges(*f.fs, suid, f.ctx);
    REQUIRE(dropped.ok());
    CHECK_FALSE(*dropped);
    dropped = vfs::drop_privileges(*f.fs, lock, f.ctx);
    REQUIRE(dropped.ok());
    CHECK_FALSE(*dropped);
    CHECK((f.attr(lock).mode & 07777) == 02644);
}
