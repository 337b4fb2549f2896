// The filesystem core without FUSE: every vfs::Filesystem operation and the
// error codes the FUSE layer turns into errno.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <future>
#include <set>
#include <thread>

#include "core_fixture.h"

using namespace coffer;
using namespace coffer::testing;
using vfs::Attr;
using vfs::Ino;
using vfs::kRootIno;

namespace {
std::set<std::string> names_in(vfs::Filesystem& fs, Ino dir) {
    std::set<std::string> out;
    for (const auto& e : list_dir(fs, dir)) out.insert(e.name);
    return out;
}
int64_t ns(const struct timespec& ts) { return int64_t(ts.tv_sec) * 1000000000 + ts.tv_nsec; }
}  // namespace

TEST_CASE("core: a fresh filesystem has an empty root") {
    CoreFixture f;
    Attr root = f.attr(kRootIno);
    CHECK(S_ISDIR(root.mode));
    CHECK(root.nlink == 2);
    CHECK(root.ino == kRootIno);
    CHECK(list_dir(*f.fs, kRootIno).empty());
    CHECK_FALSE(f.fs->read_only());
    CHECK(code_of(f.fs->getattr(12345)) == Code::not_found);
}

TEST_CASE("core: a second Core on the same local state is refused (busy)") {
    CoreFixture f;
    vfs::Options opts;
    opts.state_dir = f.state_dir.str();
    auto second = vfs::Filesystem::open(*f.vault, f.header, f.master.clone(), opts);
    REQUIRE_FALSE(second.ok());
    CHECK(second.error().code == Code::busy);
}

TEST_CASE("core: lookup") {
    CoreFixture f;
    Ino file = f.mkfile(kRootIno, "file", "abc");
    CHECK(code_of(f.fs->lookup(kRootIno, "missing")) == Code::not_found);
    CHECK(code_of(f.fs->lookup(file, "x")) == Code::not_dir);
    CHECK(code_of(f.fs->lookup(kRootIno, "")) == Code::invalid);
    CHECK(code_of(f.fs->lookup(kRootIno, std::string(256, 'a'))) == Code::name_too_long);
    auto a = f.fs->lookup(kRootIno, "file");
    REQUIRE(a.ok());
    CHECK(a->ino == file);
    CHECK(a->size == 3);
    CHECK(S_ISREG(a->mode));
    CHECK((a->mode & 07777) == 0644);
    CHECK(a->uid == 1000);
    CHECK(a->gid == 1000);
    CHECK(a->nlink == 1);
}

TEST_CASE("core: mkdir") {
    CoreFixture f;
    auto a = f.fs->mkdir(kRootIno, "d", 0750, f.ctx);
    REQUIRE(a.ok());
    CHECK(S_ISDIR(a->mode));
    CHECK((a->mode & 07777) == 0750);
    CHECK(a->nlink == 2);
    CHECK(f.attr(kRootIno).nlink == 3);
    CHECK(code_of(f.fs->mkdir(kRootIno, "d", 0755, f.ctx)) == Code::exists);
    Ino file = f.mkfile(kRootIno, "f");
    CHECK(code_of(f.fs->mkdir(file, "x", 0755, f.ctx)) == Code::not_dir);
    CHECK(code_of(f.fs->mkdir(kRootIno, "f", 0755, f.ctx)) == Code::exists);
    CHECK(code_of(f.fs->mkdir(999, "x", 0755, f.ctx)) == Code::not_found);
    Ino sub = f.mkdir(a->ino, "sub");
    CHECK(f.attr(a->ino).nlink == 3);
    CHECK(f.attr(kRootIno).nlink == 3);
    CHECK(f.attr(sub).nlink == 2);
    // setgid directories pass on their group and the setgid bit.
    auto sg = f.fs->mkdir(kRootIno, "sg", 02775, vfs::Ctx{0, 50, 0});
    REQUIRE(sg.ok());
    auto inner = f.fs->mkdir(sg->ino, "inner", 0755, f.ctx);
    REQUIRE(inner.ok());
    CHECK(inner->gid == 50);
    CHECK((inner->mode & S_ISGID) != 0);
}

TEST_CASE("core: mknod of a FIFO, a socket, character and block devices") {
    CoreFixture f;
    auto fifo = f.fs->mknod(kRootIno, "fifo", S_IFIFO | 0640, 0, f.ctx);
    REQUIRE(fifo.ok());
    CHECK(S_ISFIFO(fifo->mode));
    CHECK((fifo->mode & 07777) == 0640);
    auto sock = f.fs->mknod(kRootIno, "sock", S_IFSOCK | 0755, 0, f.ctx);
    REQUIRE(sock.ok());
    CHECK(S_ISSOCK(sock->mode));
    auto chr = f.fs->mknod(kRootIno, "tty", S_IFCHR | 0620, makedev(4, 1), f.ctx);
    REQUIRE(chr.ok());
    CHECK(S_ISCHR(chr->mode));
    CHECK(chr->rdev == makedev(4, 1));
    CHECK(f.attr(chr->ino).rdev == makedev(4, 1));
    auto blk = f.fs->mknod(kRootIno, "sda", S_IFBLK | 0660, makedev(8, 0), f.ctx);
    REQUIRE(blk.ok());
    CHECK(f.attr(blk->ino).rdev == makedev(8, 0));
    auto reg = f.fs->mknod(kRootIno, "plain", 0600, 0, f.ctx);  // no type: a regular file
    REQUIRE(reg.ok());
    CHECK(S_ISREG(reg->mode));
    CHECK(code_of(f.fs->mknod(kRootIno, "dir", S_IFDIR | 0755, 0, f.ctx)) == Code::invalid);
    CHECK(code_of(f.fs->mknod(kRootIno, "lnk", S_IFLNK | 0777, 0, f.ctx)) == Code::invalid);
    CHECK(code_of(f.fs->mknod(kRootIno, "fifo", S_IFIFO | 0640, 0, f.ctx)) == Code::exists);
    CHECK(names_in(*f.fs, kRootIno) == std::set<std::string>{"fifo", "sock", "tty", "sda", "plain"});
    CHECK(f.attr(kRootIno).nlink == 2);
    // Special files are not opened for content by the core.
    CHECK(code_of(f.fs->write(fifo->ino, 0, 0, as_bytes("x"))) == Code::invalid);
}

TEST_CASE("core: symlink targets up to 4095 bytes") {
    CoreFixture f;
    auto s = f.fs->symlink(kRootIno, "s", "../target/of link", f.ctx);
    REQUIRE(s.ok());
    CHECK(S_ISLNK(s->mode));
    CHECK(s->size == 17);
    CHECK(*f.fs->readlink(s->ino) == "../target/of link");
    std::string longest(4095, 'x');
    for (size_t i = 0; i < longest.size(); i += 100) longest[i] = '/';
    auto l = f.fs->symlink(kRootIno, "long", longest, f.ctx);
    REQUIRE(l.ok());
    CHECK(*f.fs->readlink(l->ino) == longest);
    CHECK(l->size == 4095);
    CHECK(code_of(f.fs->symlink(kRootIno, "too long", std::string(4096, 'y'), f.ctx)) == Code::name_too_long);
    CHECK(code_of(f.fs->lookup(kRootIno, "too long")) == Code::not_found);
    CHECK(code_of(f.fs->symlink(kRootIno, "empty", "", f.ctx)) == Code::not_found);
    CHECK(code_of(f.fs->symlink(kRootIno, "s", "again", f.ctx)) == Code::exists);
    Ino file = f.mkfile(kRootIno, "file");
    CHECK(code_of(f.fs->readlink(file)) == Code::invalid);
    CHECK(code_of(f.fs->readlink(kRootIno)) == Code::invalid);
    // Target bytes are kept exactly (including odd bytes).
    std::string odd = "\x01\xff\xfe/..";
    auto o = f.fs->symlink(kRootIno, "odd", odd, f.ctx);
    REQUIRE(o.ok());
    CHECK(*f.fs->readlink(o->ino) == odd);
}

TEST_CASE("core: link counts hard links") {
    CoreFixture f;
    Ino d = f.mkdir(kRootIno, "d");
    Ino file = f.mkfile(kRootIno, "a", "shared");
    auto l1 = f.fs->link(file, kRootIno, "b");
    REQUIRE(l1.ok());
    CHECK(l1->ino == file);
    CHECK(l1->nlink == 2);
    auto l2 = f.fs->link(file, d, "c");
    REQUIRE(l2.ok());
    CHECK(l2->nlink == 3);
    CHECK(f.attr(file).nlink == 3);
    CHECK(f.ino_of(d, "c") == file);
    CHECK(f.read_str(f.ino_of(kRootIno, "b")) == "shared");
    CHECK(f.attr(d).nlink == 2);  // a file link does not count in the directory's nlink

    CHECK(code_of(f.fs->link(file, kRootIno, "b")) == Code::exists);
    CHECK(code_of(f.fs->link(d, kRootIno, "dirlink")) == Code::permission);
    CHECK(code_of(f.fs->link(file, file, "x")) == Code::not_dir);
    CHECK(code_of(f.fs->link(file, kRootIno, std::string(256, 'n'))) == Code::name_too_long);
    CHECK(code_of(f.fs->link(4242, kRootIno, "x")) == Code::not_found);

    REQUIRE(f.fs->unlink(kRootIno, "a").ok());
    CHECK(f.attr(file).nlink == 2);
    CHECK(f.read_str(file) == "shared");
    REQUIRE(f.fs->unlink(d, "c").ok());
    CHECK(f.attr(file).nlink == 1);
    CHECK(names_in(*f.fs, kRootIno) == std::set<std::string>{"b", "d"});
    // Symlinks and special files can be hard-linked too.
    auto s = f.fs->symlink(kRootIno, "s", "t", f.ctx);
    REQUIRE(s.ok());
    CHECK(f.fs->link(s->ino, d, "s2").ok());
    CHECK(f.attr(s->ino).nlink == 2);
}

TEST_CASE("core: unlink and rmdir") {
    CoreFixture f;
    Ino d = f.mkdir(kRootIno, "d");
    f.mkfile(d, "f", "x");
    CHECK(code_of(f.fs->unlink(kRootIno, "d")) == Code::is_dir);
    CHECK(code_of(f.fs->unlink(kRootIno, "missing")) == Code::not_found);
    CHECK(code_of(f.fs->rmdir(kRootIno, "d")) == Code::not_empty);
    CHECK(code_of(f.fs->rmdir(d, "f")) == Code::not_dir);
    CHECK(code_of(f.fs->rmdir(kRootIno, "missing")) == Code::not_found);
    CHECK(code_of(f.fs->rmdir(kRootIno, ".")) == Code::invalid);
    CHECK(code_of(f.fs->rmdir(kRootIno, "..")) == Code::invalid);
    REQUIRE(f.fs->unlink(d, "f").ok());
    CHECK(code_of(f.fs->lookup(d, "f")) == Code::not_found);
    CHECK(f.attr(kRootIno).nlink == 3);
    REQUIRE(f.fs->rmdir(kRootIno, "d").ok());
    CHECK(f.attr(kRootIno).nlink == 2);
    CHECK(code_of(f.fs->lookup(kRootIno, "d")) == Code::not_found);
    CHECK(list_dir(*f.fs, kRootIno).empty());
    // The removed directory is still known by its inode (lookup count from
    // mkdir), but nothing can be created in it.
    auto gone = f.fs->getattr(d);
    if (gone.ok()) {
        CHECK(gone->nlink == 0);
        CHECK(code_of(f.fs->mkdir(d, "x", 0755, f.ctx)) == Code::not_found);
        CHECK(code_of(f.fs->create(d, "x", 0644, O_RDWR, f.ctx)) == Code::not_found);
    }
    f.fs->forget(d, 1);
    CHECK(code_of(f.fs->getattr(d)) == Code::not_found);
}

TEST_CASE("core: rename a file, over a file, NOREPLACE") {
    CoreFixture f;
    Ino d = f.mkdir(kRootIno, "d");
    Ino a = f.mkfile(kRootIno, "a", "aaa");
    Ino b = f.mkfile(kRootIno, "b", "bbb");
    REQUIRE(f.fs->rename(kRootIno, "a", d, "a2", 0).ok());
    CHECK(f.ino_of(d, "a2") == a);
    CHECK(code_of(f.fs->lookup(kRootIno, "a")) == Code::not_found);
    CHECK(f.attr(d).nlink == 2);

    CHECK(code_of(f.fs->rename(d, "a2", kRootIno, "b", RENAME_NOREPLACE)) == Code::exists);
    CHECK(f.read_str(f.ino_of(kRootIno, "b")) == "bbb");
    REQUIRE(f.fs->rename(d, "a2", kRootIno, "b", 0).ok());
    CHECK(f.ino_of(kRootIno, "b") == a);
    CHECK(f.read_str(a) == "aaa");
    CHECK(names_in(*f.fs, d).empty());
    // The replaced file is gone once the kernel forgets it.
    auto old = f.fs->getattr(b);
    if (old.ok()) CHECK(old->nlink == 0);
    f.fs->forget(b, 2);  // create + the lookup of read_str above
    CHECK(code_of(f.fs->getattr(b)) == Code::not_found);

    REQUIRE(f.fs->rename(kRootIno, "b", kRootIno, "c", RENAME_NOREPLACE).ok());
    CHECK(names_in(*f.fs, kRootIno) == std::set<std::string>{"c", "d"});
    CHECK(code_of(f.fs->rename(kRootIno, "missing", kRootIno, "x", 0)) == Code::not_found);
    CHECK(code_of(f.fs->rename(kRootIno, "c", a, "x", 0)) == Code::not_dir);
    CHECK(code_of(f.fs->rename(kRootIno, "c", kRootIno, "x", RENAME_NOREPLACE | RENAME_EXCHANGE)) == Code::invalid);
    CHECK(code_of(f.fs->rename(kRootIno, "c", kRootIno, "x", 1u << 7)) == Code::invalid);
    // A rename onto itself, or onto another link of the same node, changes nothing.
    REQUIRE(f.fs->rename(kRootIno, "c", kRootIno, "c", 0).ok());
    REQUIRE(f.fs->link(a, kRootIno, "c-link").ok());
    REQUIRE(f.fs->rename(kRootIno, "c", kRootIno, "c-link", 0).ok());
    CHECK(names_in(*f.fs, kRootIno) == std::set<std::string>{"c", "c-link", "d"});
    CHECK(f.attr(a).nlink == 2);
}

TEST_CASE("core: rename directories: over empty, non-empty, file/dir mismatches") {
    CoreFixture f;
    Ino src = f.mkdir(kRootIno, "src");
    f.mkfile(src, "inside", "x");
    Ino empty = f.mkdir(kRootIno, "empty");
    Ino full = f.mkdir(kRootIno, "full");
    f.mkfile(full, "x");
    f.mkfile(kRootIno, "file");
    CHECK(f.attr(kRootIno).nlink == 5);

    CHECK(code_of(f.fs->rename(kRootIno, "src", kRootIno, "full", 0)) == Code::not_empty);
    CHECK(code_of(f.fs->rename(kRootIno, "file", kRootIno, "empty", 0)) == Code::is_dir);
    CHECK(code_of(f.fs->rename(kRootIno, "src", kRootIno, "file", 0)) == Code::not_dir);
    REQUIRE(f.fs->rename(kRootIno, "src", kRootIno, "empty", 0).ok());
    CHECK(f.ino_of(kRootIno, "empty") == src);
    CHECK(f.attr(kRootIno).nlink == 4);
    CHECK(names_in(*f.fs, src) == std::set<std::string>{"inside"});
    auto gone = f.fs->getattr(empty);
    if (gone.ok()) CHECK(gone->nlink == 0);

    // Across parents: the link counts of both parents follow.
    REQUIRE(f.fs->rename(kRootIno, "empty", full, "moved", 0).ok());
    CHECK(f.attr(kRootIno).nlink == 3);
    CHECK(f.attr(full).nlink == 3);
    // Over an empty directory in another parent.
    Ino e2 = f.mkdir(kRootIno, "e2");
    CHECK(f.attr(kRootIno).nlink == 4);
    REQUIRE(f.fs->rename(full, "moved", kRootIno, "e2", 0).ok());
    CHECK(f.attr(kRootIno).nlink == 4);
    CHECK(f.attr(full).nlink == 2);
    CHECK(f.ino_of(kRootIno, "e2") == src);
    (void)e2;
}

TEST_CASE("core: rename a directory into its own subtree is invalid") {
    CoreFixture f;
    Ino a = f.mkdir(kRootIno, "a");
    Ino b = f.mkdir(a, "b");
    Ino c = f.mkdir(b, "c");
    CHECK(code_of(f.fs->rename(kRootIno, "a", a, "x", 0)) == Code::invalid);
    CHECK(code_of(f.fs->rename(kRootIno, "a", c, "x", 0)) == Code::invalid);
    CHECK(code_of(f.fs->rename(a, "b", c, "x", 0)) == Code::invalid);
    CHECK(code_of(f.fs->rename(kRootIno, "a", b, "x", RENAME_EXCHANGE)) != Code::internal);
    // Moving up is fine.
    REQUIRE(f.fs->rename(b, "c", kRootIno, "c", 0).ok());
    CHECK(f.attr(b).nlink == 2);
    CHECK(f.attr(kRootIno).nlink == 4);
}

// RENAME_EXCHANGE of a directory with an entry inside it would put the
// directory inside itself. The kernel refuses this before FUSE sees it; the
// core refuses it too, so the journal never describes a cycle (exchanging
// a/b with a would move a into a/…).
TEST_CASE("core: RENAME_EXCHANGE that would move the target into its own subtree is refused") {
    CoreFixture f;
    Ino a = f.mkdir(kRootIno, "a");
    f.mkdir(a, "b");
    auto st = f.fs->rename(a, "b", kRootIno, "a", RENAME_EXCHANGE);
    CHECK(code_of(st) == Code::invalid);
    // Whatever happened, the root must still reach "a" (today "a" names b,
    // and a is only linked from inside itself: unreachable, a cycle).
    CHECK(names_in(*f.fs, kRootIno).size() == 1);
    auto now_a = f.fs->lookup(kRootIno, "a");
    REQUIRE(now_a.ok());
    CHECK(now_a->ino == a);
}

TEST_CASE("core: RENAME_EXCHANGE of a file and a directory across parents") {
    CoreFixture f;
    Ino p1 = f.mkdir(kRootIno, "p1");
    Ino p2 = f.mkdir(kRootIno, "p2");
    Ino file = f.mkfile(p1, "file", "content");
    Ino dir = f.mkdir(p2, "dir");
    f.mkfile(dir, "inner", "in");
    CHECK(f.attr(p1).nlink == 2);
    CHECK(f.attr(p2).nlink == 3);
    REQUIRE(f.fs->rename(p1, "file", p2, "dir", RENAME_EXCHANGE).ok());
    CHECK(f.ino_of(p1, "file") == dir);
    CHECK(f.ino_of(p2, "dir") == file);
    CHECK(f.attr(p1).nlink == 3);
    CHECK(f.attr(p2).nlink == 2);
    CHECK(f.read_str(file) == "content");
    CHECK(names_in(*f.fs, dir) == std::set<std::string>{"inner"});
    // ".." of the moved directory follows it.
    Ino dotdot = 0;
    auto fh = f.fs->opendir(dir);
    REQUIRE(fh.ok());
    REQUIRE(f.fs->readdir(dir, *fh, 0, false, [&](const vfs::DirEntry& e, const vfs::Attr*, uint64_t) {
                     if (e.name == "..") dotdot = e.ino;
                     return true;
                 }).ok());
    CHECK(dotdot == p1);
    // And back, in the same parent as well.
    REQUIRE(f.fs->rename(p2, "dir", p1, "file", RENAME_EXCHANGE).ok());
    CHECK(f.ino_of(p1, "file") == file);
    CHECK(f.attr(p1).nlink == 2);
    CHECK(f.attr(p2).nlink == 3);
    Ino other = f.mkfile(p1, "other", "o");
    REQUIRE(f.fs->rename(p1, "file", p1, "other", RENAME_EXCHANGE).ok());
    CHECK(f.ino_of(p1, "file") == other);
    CHECK(f.ino_of(p1, "other") == file);
    CHECK(code_of(f.fs->rename(p1, "file", p1, "missing", RENAME_EXCHANGE)) == Code::not_found);
    // Two directories across parents: both parents keep their counts.
    Ino d1 = f.mkdir(p1, "d1");
    REQUIRE(f.fs->rename(p1, "d1", p2, "dir", RENAME_EXCHANGE).ok());
    CHECK(f.ino_of(p2, "dir") == d1);
    CHECK(f.attr(p1).nlink == 3);
    CHECK(f.attr(p2).nlink == 3);
}

TEST_CASE("core: names of 255 bytes, 256 bytes, and invalid names") {
    CoreFixture f;
    std::string n255(255, 'n'), n256(256, 'n');
    CHECK(f.fs->mkdir(kRootIno, n255, 0755, f.ctx).ok());
    CHECK(code_of(f.fs->mkdir(kRootIno, n256, 0755, f.ctx)) == Code::name_too_long);
    std::string f255(255, 'f');
    auto c = f.fs->create(kRootIno, f255, 0644, O_RDWR, f.ctx);
    REQUIRE(c.ok());
    REQUIRE(f.fs->release(c->attr.ino, c->fh).ok());
    CHECK(code_of(f.fs->create(kRootIno, std::string(256, 'f'), 0644, O_RDWR, f.ctx)) == Code::name_too_long);
    CHECK(code_of(f.fs->mknod(kRootIno, n256, S_IFIFO | 0644, 0, f.ctx)) == Code::name_too_long);
    CHECK(code_of(f.fs->symlink(kRootIno, n256, "t", f.ctx)) == Code::name_too_long);
    CHECK(code_of(f.fs->rename(kRootIno, f255, kRootIno, n256, 0)) == Code::name_too_long);
    std::string l255(255, 'l');
    CHECK(f.fs->symlink(kRootIno, l255, "t", f.ctx).ok());
    CHECK(names_in(*f.fs, kRootIno) == std::set<std::string>{n255, f255, l255});
    REQUIRE(f.fs->rename(kRootIno, f255, kRootIno, std::string(254, 'g') + "h", 0).ok());
    for (std::string bad : {"", ".", "..", "a/b", "/"}) {
        CHECK_MESSAGE(code_of(f.fs->mkdir(kRootIno, bad, 0755, f.ctx)) == Code::invalid, bad);
        CHECK_MESSAGE(code_of(f.fs->rename(kRootIno, n255, kRootIno, bad, 0)) == Code::invalid, bad);
    }
}

TEST_CASE("core: names with arbitrary bytes") {
    CoreFixture f;
    std::set<std::string> expect;
    std::string all;  // every byte 0x01..0xff except '/': 254 bytes
    for (int c = 1; c <= 255; ++c) {
        if (c == '/') continue;
        all.push_back(static_cast<char>(c));
        if (c == '.') continue;  // "." alone is not a name
        std::string one(1, static_cast<char>(c));
        f.mkfile(kRootIno, one, one);
        expect.insert(one);
    }
    REQUIRE(all.size() == 254);
    f.mkfile(kRootIno, all, "all bytes");
    expect.insert(all);
    f.mkdir(kRootIno, "\xff\xfe\x80 not utf-8 \x01");
    expect.insert("\xff\xfe\x80 not utf-8 \x01");
    f.mkfile(kRootIno, "...", "dots");
    expect.insert("...");
    CHECK(names_in(*f.fs, kRootIno) == expect);
    for (int c = 1; c <= 255; ++c) {
        if (c == '/' || c == '.') continue;
        std::string one(1, static_cast<char>(c));
        CHECK(f.read_str(f.ino_of(kRootIno, one)) == one);
    }
    CHECK(f.read_str(f.ino_of(kRootIno, all)) == "all bytes");
    // Names differing in one byte are different entries.
    CHECK(code_of(f.fs->lookup(kRootIno, all.substr(0, 253) + "\xfe")) == Code::not_found);
}

TEST_CASE("core: setattr mode, uid, gid") {
    CoreFixture f;
    Ino file = f.mkfile(kRootIno, "f", "data");
    Attr before = f.attr(file);
    vfs::SetAttrReq r;
    r.mode = 04711 | S_IFDIR;  // type bits are ignored
    auto a = f.fs->setattr(file, r, f.ctx);
    REQUIRE(a.ok());
    CHECK(S_ISREG(a->mode));
    CHECK((a->mode & 07777) == 04711);
    CHECK(ns(a->ctime) >= ns(before.ctime));
    CHECK(ns(a->mtime) == ns(before.mtime));
    vfs::SetAttrReq o;
    o.uid = 0;
    o.gid = 4242;
    a = f.fs->setattr(file, o, f.ctx);
    REQUIRE(a.ok());
    CHECK(a->uid == 0);
    CHECK(a->gid == 4242);
    CHECK((a->mode & 07777) == 04711);
    CHECK(a->size == 4);
    Ino d = f.mkdir(kRootIno, "d");
    vfs::SetAttrReq dm;
    dm.mode = 0700;
    a = f.fs->setattr(d, dm, f.ctx);
    REQUIRE(a.ok());
    CHECK(a->mode == (S_IFDIR | 0700));
    CHECK(code_of(f.fs->setattr(9999, dm, f.ctx)) == Code::not_found);
}

TEST_CASE("core: setattr times keep, now, set") {
    CoreFixture f;
    Ino file = f.mkfile(kRootIno, "f", "data");
    Attr before = f.attr(file);
    vfs::SetAttrReq r;
    r.atime = vfs::SetAttrReq::Time::set;
    r.atime_val = {1000000000, 123456789};
    r.mtime = vfs::SetAttrReq::Time::set;
    r.mtime_val = {-5, 7};  // before 1970
    auto a = f.fs->setattr(file, r, f.ctx);
    REQUIRE(a.ok());
    CHECK(a->atime.tv_sec == 1000000000);
    CHECK(a->atime.tv_nsec == 123456789);
    CHECK(a->mtime.tv_sec == -5);
    CHECK(a->mtime.tv_nsec == 7);
    CHECK(ns(a->ctime) >= ns(before.ctime));

    vfs::SetAttrReq keep_atime;
    keep_atime.mtime = vfs::SetAttrReq::Time::now;
    struct timespec t0;
    clock_gettime(CLOCK_REALTIME, &t0);
    a = f.fs->setattr(file, keep_atime, f.ctx);
    REQUIRE(a.ok());
    CHECK(a->atime.tv_sec == 1000000000);  // kept
    CHECK(a->atime.tv_nsec == 123456789);
    CHECK(ns(a->mtime) >= ns(t0));
    CHECK(ns(a->mtime) <= ns(t0) + 60'000'000'000);

    vfs::SetAttrReq now_atime;
    now_atime.atime = vfs::SetAttrReq::Time::now;
    Attr mid = *a;
    a = f.fs->setattr(file, now_atime, f.ctx);
    REQUIRE(a.ok());
    CHECK(ns(a->atime) >= ns(t0));
    CHECK(ns(a->mtime) == ns(mid.mtime));

    // An empty request changes nothing.
    vfs::SetAttrReq none;
    Attr prev = *a;
    a = f.fs->setattr(file, none, f.ctx);
    REQUIRE(a.ok());
    CHECK(ns(a->atime) == ns(prev.atime));
    CHECK(ns(a->mtime) == ns(prev.mtime));
    CHECK(ns(a->ctime) == ns(prev.ctime));
}

TEST_CASE("core: setattr size truncates and extends") {
    CoreFixture f;
    Ino file = f.mkfile(kRootIno, "f", "0123456789");
    f.truncate(file, 4);
    CHECK(f.attr(file).size == 4);
    CHECK(f.read_str(file) == "0123");
    f.truncate(file, 8);
    CHECK(f.read_str(file) == std::string("0123") + std::string(4, '\0'));
    // With an explicit mtime the truncate carries it.
    vfs::SetAttrReq r;
    r.size = 2;
    r.mtime = vfs::SetAttrReq::Time::set;
    r.mtime_val = {12345, 0};
    auto a = f.fs->setattr(file, r, f.ctx);
    REQUIRE(a.ok());
    CHECK(a->size == 2);
    CHECK(a->mtime.tv_sec == 12345);
    Ino d = f.mkdir(kRootIno, "d");
    vfs::SetAttrReq sz;
    sz.size = 0;
    CHECK(code_of(f.fs->setattr(d, sz, f.ctx)) == Code::is_dir);
    auto s = f.fs->symlink(kRootIno, "s", "t", f.ctx);
    REQUIRE(s.ok());
    CHECK(code_of(f.fs->setattr(s->ino, sz, f.ctx)) == Code::invalid);
    vfs::SetAttrReq huge;
    huge.size = (1ull << 62) + 1;
    CHECK(code_of(f.fs->setattr(file, huge, f.ctx)) == Code::too_big);
    CHECK(f.attr(file).size == 2);  // a failed setattr leaves nothing behind
}

TEST_CASE("core: open, create, O_TRUNC, O_APPEND, directories") {
    CoreFixture f;
    Ino d = f.mkdir(kRootIno, "d");
    CHECK(code_of(f.fs->open(d, O_RDONLY)) == Code::is_dir);
    Bytes buf(10);
    CHECK(code_of(f.fs->read(d, 0, 0, 10, buf.data())) == Code::is_dir);
    CHECK(code_of(f.fs->open(777, O_RDONLY)) == Code::not_found);
    CHECK(code_of(f.fs->opendir(f.mkfile(kRootIno, "x"))) == Code::not_dir);
    CHECK(code_of(f.fs->create(kRootIno, "x", 0644, O_RDWR, f.ctx)) == Code::exists);

    Ino file = f.mkfile(kRootIno, "f", "hello world");
    auto fh = f.fs->open(file, O_WRONLY | O_APPEND);
    REQUIRE(fh.ok());
    REQUIRE(f.fs->write(file, *fh, 0, as_bytes("!!")).ok());  // offset ignored
    REQUIRE(f.fs->flush(file, *fh).ok());
    REQUIRE(f.fs->fsync(file, *fh, false).ok());
    REQUIRE(f.fs->release(file, *fh).ok());
    CHECK(f.read_str(file) == "hello world!!");
    auto rfh = f.fs->open(file, O_RDONLY | O_TRUNC);  // O_TRUNC needs write access
    REQUIRE(rfh.ok());
    REQUIRE(f.fs->release(file, *rfh).ok());
    CHECK(f.attr(file).size == 13);
    auto tfh = f.fs->open(file, O_RDWR | O_TRUNC);
    REQUIRE(tfh.ok());
    CHECK(f.attr(file).size == 0);
    REQUIRE(f.fs->release(file, *tfh).ok());
    CHECK(f.read_at(file, 0, 100).empty());
    // Zero-length writes and reads past the end.
    auto z = f.fs->write(file, 0, 5, ByteSpan{});
    REQUIRE(z.ok());
    CHECK(*z == 0);
    CHECK(f.attr(file).size == 0);
    REQUIRE(f.fs->fsyncdir(kRootIno, 0).ok());
    REQUIRE(f.fs->flush_all().ok());
}

TEST_CASE("core: xattrs with create/replace flags, ENODATA, list, remove") {
    CoreFixture f;
    Ino file = f.mkfile(kRootIno, "f");
    CHECK(code_of(f.fs->getxattr(file, "user.a")) == Code::no_data);
    CHECK(code_of(f.fs->setxattr(file, "user.a", as_bytes("1"), XATTR_REPLACE)) == Code::no_data);
    REQUIRE(f.fs->setxattr(file, "user.a", as_bytes("1"), XATTR_CREATE).ok());
    CHECK(code_of(f.fs->setxattr(file, "user.a", as_bytes("2"), XATTR_CREATE)) == Code::exists);
    CHECK(*f.fs->getxattr(file, "user.a") == bytes_of("1"));
    REQUIRE(f.fs->setxattr(file, "user.a", as_bytes("2"), XATTR_REPLACE).ok());
    CHECK(*f.fs->getxattr(file, "user.a") == bytes_of("2"));
    REQUIRE(f.fs->setxattr(file, "user.a", as_bytes("three"), 0).ok());
    CHECK(*f.fs->getxattr(file, "user.a") == bytes_of("three"));
    REQUIRE(f.fs->setxattr(file, "user.empty", ByteSpan{}, 0).ok());
    CHECK(f.fs->getxattr(file, "user.empty")->empty());
    Bytes big(65536, 0xab);
    REQUIRE(f.fs->setxattr(file, "trusted.big", big, 0).ok());
    CHECK(*f.fs->getxattr(file, "trusted.big") == big);
    CHECK(code_of(f.fs->setxattr(file, "user.toobig", Bytes(65537, 1), 0)) == Code::too_big);
    CHECK(code_of(f.fs->setxattr(file, std::string(256, 'x'), as_bytes("v"), 0)) == Code::too_big);
    CHECK(code_of(f.fs->setxattr(file, "", as_bytes("v"), 0)) == Code::invalid);
    // Only the namespaces Linux knows; a namespace alone is not a name.
    auto unknown_ns = f.fs->setxattr(file, "foo.bar", as_bytes("v"), 0);
    REQUIRE_FALSE(unknown_ns.ok());
    CHECK(unknown_ns.error().to_errno() == EOPNOTSUPP);
    CHECK(code_of(f.fs->setxattr(file, "plain", as_bytes("v"), 0)) == Code::invalid);
    CHECK(code_of(f.fs->setxattr(file, "user.", as_bytes("v"), 0)) == Code::invalid);
    CHECK(f.fs->setxattr(file, "security.s", as_bytes("v"), 0).ok());
    CHECK(f.fs->removexattr(file, "security.s").ok());
    CHECK(code_of(f.fs->setxattr(file, "system.posix_acl_access", as_bytes("v"), 0)) == Code::invalid);
    // Not kept, so reading says "not supported" (ls then stops asking for the whole mount).
    auto acl = f.fs->getxattr(file, "system.posix_acl_access");
    REQUIRE_FALSE(acl.ok());
    CHECK(acl.error().to_errno() == EOPNOTSUPP);
    auto label = f.fs->getxattr(file, "security.selinux");
    REQUIRE_FALSE(label.ok());
    CHECK(label.error().to_errno() == EOPNOTSUPP);
    CHECK(code_of(f.fs->setxattr(file, "security.selinux", as_bytes("v"), 0)) == Code::invalid);

    auto names = f.fs->listxattr(file);
    REQUIRE(names.ok());
    CHECK(std::set<std::string>(names->begin(), names->end()) ==
          std::set<std::string>{"user.a", "user.empty", "trusted.big"});
    REQUIRE(f.fs->removexattr(file, "user.a").ok());
    CHECK(code_of(f.fs->removexattr(file, "user.a")) == Code::no_data);
    CHECK(code_of(f.fs->getxattr(file, "user.a")) == Code::no_data);
    CHECK(f.fs->listxattr(file)->size() == 2);
    // Xattrs belong to the node: a hard link sees them, another file does not.
    REQUIRE(f.fs->link(file, kRootIno, "g").ok());
    CHECK(*f.fs->getxattr(f.ino_of(kRootIno, "g"), "user.empty") == Bytes{});
    Ino other = f.mkfile(kRootIno, "other");
    CHECK(f.fs->listxattr(other)->empty());
    // Directories and symlinks carry xattrs too.
    REQUIRE(f.fs->setxattr(kRootIno, "user.root", as_bytes("r"), 0).ok());
    CHECK(*f.fs->getxattr(kRootIno, "user.root") == bytes_of("r"));
    CHECK(code_of(f.fs->listxattr(31337)) == Code::not_found);
}

TEST_CASE("core: xattrs are found after a remount and on a new device (files without any answer at once)") {
    CoreFixture f;
    std::vector<Ino> files;
    // Inode numbers past the first words of the "may have xattrs" bits.
    for (int i = 0; i < 200; ++i) files.push_back(f.mkfile(kRootIno, "f" + std::to_string(i)));
    for (int i : {0, 63, 64, 130, 199}) REQUIRE(f.fs->setxattr(files[i], "security.capability", as_bytes("cap"), 0).ok());
    auto check_all = [&](vfs::Filesystem& fs) {
        int with = 0;
        for (int i = 0; i < 200; ++i) {
            auto l = fs.lookup(kRootIno, "f" + std::to_string(i));
            REQUIRE(l.ok());
            auto v = fs.getxattr(l->ino, "security.capability");
            if (i == 0 || i == 63 || i == 64 || i == 130 || i == 199) {
                REQUIRE(v.ok());
                CHECK(*v == bytes_of("cap"));
                ++with;
            } else {
                CHECK(code_of(v) == Code::no_data);
            }
        }
        CHECK(with == 5);
    };
    check_all(*f.fs);
    f.publish();
    f.fs.reset();
    f.fs = f.open_fs(f.state_dir.str());  // the bits come back from the index
    check_all(*f.fs);
    TempDir other;
    auto fs2 = f.open_fs(other.str());  // a new device: from the journal
    check_all(*fs2);
    // Set later, on a file that had none: seen at once.
    auto l = fs2->lookup(kRootIno, "f5");
    REQUIRE(l.ok());
    CHECK(code_of(fs2->getxattr(l->ino, "user.late")) == Code::no_data);
    REQUIRE(fs2->setxattr(l->ino, "user.late", as_bytes("x"), 0).ok());
    CHECK(*fs2->getxattr(l->ino, "user.late") == bytes_of("x"));
}

TEST_CASE("core: readdir resumes at the offset where the filler stopped") {
    CoreFixture f;
    std::set<std::string> expect;
    for (int i = 0; i < 50; ++i) {
        std::string n = "entry-" + std::to_string(i);
        if (i % 3 == 0) f.mkdir(kRootIno, n);
        else f.mkfile(kRootIno, n);
        expect.insert(n);
    }
    REQUIRE(f.fs->unlink(kRootIno, "entry-10").ok());
    expect.erase("entry-10");
    for (size_t budget : {1, 2, 3, 7, 100}) {
        auto fh = f.fs->opendir(kRootIno);
        REQUIRE(fh.ok());
        std::vector<std::string> seen;
        uint64_t offset = 0;
        for (int calls = 0; calls < 1000; ++calls) {
            size_t taken = 0;
            bool any = false;
            uint64_t next_offset = offset;
            REQUIRE(f.fs->readdir(kRootIno, *fh, offset, false,
                                  [&](const vfs::DirEntry& e, const vfs::Attr* plus, uint64_t next) {
                                      CHECK(plus == nullptr);
                                      any = true;
                                      if (taken == budget) return false;  // buffer full
                                      ++taken;
                                      seen.push_back(e.name);
                                      CHECK(next > next_offset);
                                      next_offset = next;
                                      return true;
                                  })
                        .ok());
            if (!any) break;
            offset = next_offset;
        }
        REQUIRE(f.fs->releasedir(kRootIno, *fh).ok());
        REQUIRE(seen.size() == expect.size() + 2);
        CHECK(seen[0] == ".");
        CHECK(seen[1] == "..");
        std::set<std::string> got(seen.begin() + 2, seen.end());
        CHECK(got.size() == seen.size() - 2);  // no entry twice
        CHECK(got == expect);
    }
    // An entry removed between two readdir calls is not returned; the rest still are.
    std::vector<std::string> first;
    uint64_t off = 0;
    REQUIRE(f.fs->readdir(kRootIno, 0, 0, false, [&](const vfs::DirEntry& e, const vfs::Attr*, uint64_t next) {
                     if (first.size() == 5) return false;
                     first.push_back(e.name);
                     off = next;
                     return true;
                 }).ok());
    REQUIRE(f.fs->unlink(kRootIno, "entry-40").ok());
    size_t rest = 0;
    REQUIRE(f.fs->readdir(kRootIno, 0, off, false, [&](const vfs::DirEntry& e, const vfs::Attr*, uint64_t) {
                     CHECK(e.name != "entry-40");
                     ++rest;
                     return true;
                 }).ok());
    CHECK(first.size() + rest == expect.size() + 2 - 1);
    CHECK(code_of(f.fs->readdir(f.ino_of(kRootIno, "entry-1"), 0, 0, false,
                                [](const vfs::DirEntry&, const vfs::Attr*, uint64_t) { return true; })) ==
          Code::not_dir);
}

TEST_CASE("core: readdirplus counts a lookup for each entry it returns") {
    CoreFixture f;
    Ino a = f.mkfile(kRootIno, "a", "A");
    Ino b = f.mkfile(kRootIno, "b", "B");
    // Drop the lookup counts that create gave.
    f.fs->forget(a, 1);
    f.fs->forget(b, 1);
    std::vector<std::string> taken;
    REQUIRE(f.fs->readdir(kRootIno, 0, 0, true, [&](const vfs::DirEntry& e, const vfs::Attr* plus, uint64_t) {
                     if (e.name == "." || e.name == "..") return true;
                     REQUIRE(plus != nullptr);
                     CHECK(plus->ino == e.ino);
                     if (e.name == "b") return false;  // not taken: no lookup counted
                     CHECK(plus->size == 1);
                     taken.push_back(e.name);
                     return true;
                 }).ok());
    CHECK(taken == std::vector<std::string>{"a"});
    // "a" has a lookup count now, "b" does not: after unlink only "a" survives.
    REQUIRE(f.fs->unlink(kRootIno, "a").ok());
    REQUIRE(f.fs->unlink(kRootIno, "b").ok());
    auto ga = f.fs->getattr(a);
    REQUIRE(ga.ok());
    CHECK(ga->nlink == 0);
    CHECK(code_of(f.fs->getattr(b)) == Code::not_found);
    f.fs->forget(a, 1);
    CHECK(code_of(f.fs->getattr(a)) == Code::not_found);
}

TEST_CASE("core: an unlinked open file stays readable and writable until release and forget") {
    CoreFixture f;
    auto c = f.fs->create(kRootIno, "tmp", 0600, O_RDWR, f.ctx);
    REQUIRE(c.ok());
    Ino ino = c->attr.ino;
    uint64_t fh = c->fh;
    REQUIRE(f.fs->write(ino, fh, 0, as_bytes("before unlink")).ok());
    REQUIRE(f.fs->unlink(kRootIno, "tmp").ok());
    CHECK(code_of(f.fs->lookup(kRootIno, "tmp")) == Code::not_found);
    CHECK(list_dir(*f.fs, kRootIno).empty());
    Attr a = f.attr(ino);
    CHECK(a.nlink == 0);
    CHECK(f.read_str(ino) == "before unlink");
    REQUIRE(f.fs->write(ino, fh, 13, as_bytes(", after")).ok());
    CHECK(f.read_str(ino) == "before unlink, after");
    vfs::SetAttrReq r;
    r.size = 6;
    r.fh = fh;
    REQUIRE(f.fs->setattr(ino, r, f.ctx).ok());
    CHECK(f.read_str(ino) == "before");
    REQUIRE(f.fs->setxattr(ino, "user.x", as_bytes("y"), 0).ok());
    // A new file may take the old name meanwhile.
    Ino again = f.mkfile(kRootIno, "tmp", "new");
    CHECK(again != ino);
    // A publish does not publish the unlinked file's content.
    auto p = sync::publish(f.fs->replica());
    REQUIRE(p.ok());
    CHECK(f.read_str(ino) == "before");

    REQUIRE(f.fs->release(ino, fh).ok());
    REQUIRE(f.fs->getattr(ino).ok());  // still known to the kernel (lookup count from create)
    f.fs->forget(ino, 1);
    CHECK(code_of(f.fs->getattr(ino)) == Code::not_found);
    CHECK(f.read_str(again) == "new");
    // forget of an unknown or already forgotten inode is harmless.
    f.fs->forget(ino, 5);
    f.fs->forget(424242, 1);
}

TEST_CASE("core: the node of an unlinked file is removed when the last handle closes") {
    CoreFixture f;
    Ino file = f.mkfile(kRootIno, "f", "data");
    f.fs->forget(file, 1);  // the kernel forgot the create's lookup
    auto fh1 = f.fs->open(file, O_RDONLY);
    auto fh2 = f.fs->open(file, O_RDONLY);
    REQUIRE((fh1.ok() && fh2.ok()));
    REQUIRE(f.fs->unlink(kRootIno, "f").ok());
    REQUIRE(f.fs->release(file, *fh1).ok());
    CHECK(f.read_str(file) == "data");
    REQUIRE(f.fs->release(file, *fh2).ok());
    CHECK(code_of(f.fs->getattr(file)) == Code::not_found);
}

TEST_CASE("core: statfs") {
    CoreFixture f;
    auto s = f.fs->statfs();
    REQUIRE(s.ok());
    CHECK(s->name_max == 255);
    CHECK(s->block_size > 0);
    CHECK(s->blocks > 0);
    CHECK(s->blocks_avail <= s->blocks_free);
    CHECK(s->blocks_free <= s->blocks);
    uint64_t files0 = s->files - s->files_free;
    f.mkfile(kRootIno, "a");
    f.mkdir(kRootIno, "b");
    auto s2 = f.fs->statfs();
    REQUIRE(s2.ok());
    CHECK(files0 >= 1);  // the root
    CHECK(s2->files >= s2->files_free + 3);
}

TEST_CASE("core: lseek SEEK_DATA / SEEK_HOLE on a sparse file") {
    CoreFixture f;
    constexpr uint64_t MiB = 1 << 20;
    Ino file = f.mkfile(kRootIno, "sparse");
    f.write_at(file, 0, Bytes(100, 'a'));
    f.write_at(file, 9 * MiB, Bytes(100, 'b'));
    f.write_at(file, 20 * MiB, Bytes(10, 'c'));
    f.truncate(file, 30 * MiB);  // a hole at the end
    auto seek = [&](uint64_t off, int whence) { return f.fs->lseek(file, 0, off, whence); };
    auto check_layout = [&] {
        CHECK(*seek(0, SEEK_DATA) == 0);
        CHECK(*seek(0, SEEK_HOLE) == 100);
        CHECK(*seek(50, SEEK_HOLE) == 100);
        CHECK(*seek(100, SEEK_HOLE) == 100);
        CHECK(*seek(100, SEEK_DATA) == 9 * MiB);
        CHECK(*seek(9 * MiB + 5, SEEK_DATA) == 9 * MiB + 5);
        CHECK(*seek(9 * MiB, SEEK_HOLE) == 9 * MiB + 100);
        CHECK(*seek(9 * MiB + 100, SEEK_DATA) == 20 * MiB);
        CHECK(*seek(20 * MiB, SEEK_HOLE) == 20 * MiB + 10);
        auto none = seek(20 * MiB + 10, SEEK_DATA);  // only a hole after the last data
        REQUIRE_FALSE(none.ok());
        CHECK(none.error().code == Code::invalid);
        CHECK(none.error().sys_errno == ENXIO);
        CHECK(*seek(25 * MiB, SEEK_HOLE) == 25 * MiB);
        auto past = seek(30 * MiB, SEEK_HOLE);
        REQUIRE_FALSE(past.ok());
        CHECK(past.error().sys_errno == ENXIO);
        CHECK(code_of(seek(0, SEEK_SET)) == Code::invalid);
        CHECK(code_of(seek(0, SEEK_END)) == Code::invalid);
    };
    check_layout();
    // The same after the data moved into published extents: a published
    // extent may count as data as a whole, but holes between extents stay.
    f.publish();
    CHECK(*seek(0, SEEK_DATA) == 0);
    CHECK(*seek(0, SEEK_HOLE) >= 100);
    CHECK(*seek(0, SEEK_HOLE) <= 4 * MiB);
    CHECK(*seek(5 * MiB, SEEK_DATA) >= 8 * MiB);
    CHECK(*seek(5 * MiB, SEEK_DATA) <= 9 * MiB);
    CHECK(*seek(25 * MiB, SEEK_HOLE) == 25 * MiB);
    CHECK(code_of(seek(24 * MiB, SEEK_DATA)) == Code::invalid);
    // A punched hole inside data is a hole.
    f.write_at(file, 0, Bytes(4096, 'z'));
    REQUIRE(f.fs->fallocate(file, 0, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 1000, 1000).ok());
    CHECK(*seek(0, SEEK_HOLE) == 1000);
    CHECK(*seek(1000, SEEK_DATA) == 2000);
    // An empty file has neither.
    Ino empty = f.mkfile(kRootIno, "empty");
    CHECK(f.fs->lseek(empty, 0, 0, SEEK_DATA).error().sys_errno == ENXIO);
    CHECK(f.fs->lseek(empty, 0, 0, SEEK_HOLE).error().sys_errno == ENXIO);
}

TEST_CASE("core: fallocate punch hole, zero range, keep size") {
    CoreFixture f;
    Ino file = f.mkfile(kRootIno, "f", std::string(100, 'x'));
    // Plain allocation grows the size (reads zeros) unless KEEP_SIZE.
    REQUIRE(f.fs->fallocate(file, 0, 0, 50, 100).ok());
    CHECK(f.attr(file).size == 150);
    CHECK(f.read_str(file) == std::string(100, 'x') + std::string(50, '\0'));
    REQUIRE(f.fs->fallocate(file, 0, FALLOC_FL_KEEP_SIZE, 0, 1000).ok());
    CHECK(f.attr(file).size == 150);
    REQUIRE(f.fs->fallocate(file, 0, 0, 0, 10).ok());  // inside the file: nothing changes
    CHECK(f.attr(file).size == 150);

    // Punch a hole: zeros, same size.
    REQUIRE(f.fs->fallocate(file, 0, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 10, 20).ok());
    std::string expect = std::string(10, 'x') + std::string(20, '\0') + std::string(70, 'x') + std::string(50, '\0');
    CHECK(f.read_str(file) == expect);
    CHECK(f.attr(file).size == 150);
    // A punch past the end neither grows the file nor fails.
    REQUIRE(f.fs->fallocate(file, 0, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 140, 100).ok());
    CHECK(f.attr(file).size == 150);
    CHECK(code_of(f.fs->fallocate(file, 0, FALLOC_FL_PUNCH_HOLE, 0, 10)) == Code::invalid);

    // Zero range: zeros, and the size grows unless KEEP_SIZE.
    REQUIRE(f.fs->fallocate(file, 0, FALLOC_FL_ZERO_RANGE, 90, 20).ok());
    expect.replace(90, 10, std::string(10, '\0'));
    CHECK(f.read_str(file) == expect);
    REQUIRE(f.fs->fallocate(file, 0, FALLOC_FL_ZERO_RANGE, 140, 60).ok());
    CHECK(f.attr(file).size == 200);
    REQUIRE(f.fs->fallocate(file, 0, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, 150, 500).ok());
    CHECK(f.attr(file).size == 200);
    expect += std::string(50, '\0');
    CHECK(f.read_str(file) == expect);

    // Published data is punched just as well.
    f.write_at(file, 0, Bytes(200, 'p'));
    f.publish();
    REQUIRE(f.fs->fallocate(file, 0, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100, 50).ok());
    CHECK(f.read_str(file) == std::string(100, 'p') + std::string(50, '\0') + std::string(50, 'p'));
    f.publish();
    CHECK(f.read_str(file) == std::string(100, 'p') + std::string(50, '\0') + std::string(50, 'p'));

    CHECK(code_of(f.fs->fallocate(file, 0, 0, 0, 0)) == Code::invalid);
    CHECK(code_of(f.fs->fallocate(file, 0, 0, UINT64_MAX - 5, 10)) == Code::invalid);
    CHECK(code_of(f.fs->fallocate(file, 0, FALLOC_FL_COLLAPSE_RANGE, 0, 10)) == Code::invalid);
    CHECK(code_of(f.fs->fallocate(kRootIno, 0, 0, 0, 10)) == Code::invalid);
    CHECK(code_of(f.fs->fallocate(file, 0, 0, 0, 1ull << 63)) == Code::too_big);
}

TEST_CASE("core: a read-only core refuses every change") {
    VaultEnv env;
    TempDir state;
    auto fs = env.open_fs(state.str(), /*read_only=*/true);
    CHECK(fs->read_only());
    vfs::Ctx ctx;
    auto m = fs->mkdir(kRootIno, "d", 0755, ctx);
    REQUIRE_FALSE(m.ok());
    CHECK(m.error().code == Code::permission);
    CHECK(m.error().sys_errno == EROFS);
    CHECK(code_of(fs->create(kRootIno, "f", 0644, O_RDWR, ctx)) == Code::permission);
    CHECK(code_of(fs->setxattr(kRootIno, "user.a", as_bytes("b"), 0)) == Code::permission);
    CHECK(code_of(fs->open(kRootIno, O_RDONLY)) == Code::is_dir);
    CHECK(code_of(sync::publish(fs->replica())) == Code::permission);
    CHECK(list_dir(*fs, kRootIno).empty());
}

TEST_CASE("core: with the kernel owning file times, content changes leave them to its setattr") {
    CoreFixture f;
    Ino file = f.mkfile(kRootIno, "f", "data");
    Ino dir = f.mkdir(kRootIno, "d");
    // Known times, so a stamp by the daemon's clock would show.
    vfs::SetAttrReq t;
    t.mtime = vfs::SetAttrReq::Time::set;
    t.mtime_val = {1000, 1};
    t.ctime = timespec{2000, 2};
    REQUIRE(f.fs->setattr(file, t, f.ctx).ok());
    Attr base = f.attr(file);
    REQUIRE(ns(base.mtime) == 1000 * 1000000000LL + 1);
    REQUIRE(ns(base.ctime) == 2000 * 1000000000LL + 2);

    f.fs->set_kernel_owns_file_times(true);
    f.write_at(file, 2, as_bytes(std::string_view("TA!")));  // grows to 5 bytes
    Attr a = f.attr(file);
    CHECK(a.size == 5);
    CHECK(ns(a.mtime) == ns(base.mtime));
    CHECK(ns(a.ctime) == ns(base.ctime));
    auto fh = f.fs->open(file, O_RDWR);
    REQUIRE(fh.ok());
    REQUIRE(f.fs->fallocate(file, *fh, 0, 0, 64).ok());  // grows
    REQUIRE(f.fs->fallocate(file, *fh, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 2).ok());
    REQUIRE(f.fs->release(file, *fh).ok());
    f.truncate(file, 10);  // a truncate without times (truncate(2) to another size sends them)
    vfs::SetAttrReq kill;  // the kernel dropping setuid before a write: no ctime
    kill.mode = 0644;
    REQUIRE(f.fs->setattr(file, kill, f.ctx).ok());
    a = f.attr(file);
    CHECK(a.size == 10);
    CHECK(ns(a.mtime) == ns(base.mtime));
    CHECK(ns(a.ctime) == ns(base.ctime));
    CHECK(f.read_str(file) == std::string("\0\0TA!\0\0\0\0\0", 10));

    // The kernel's setattr with a size and its own times: both are kept as sent.
    vfs::SetAttrReq tr;
    tr.size = 3;
    tr.mtime = vfs::SetAttrReq::Time::set;
    tr.mtime_val = {3000, 3};
    tr.ctime = timespec{3000, 4};
    REQUIRE(f.fs->setattr(file, tr, f.ctx).ok());
    a = f.attr(file);
    CHECK(a.size == 3);
    CHECK(ns(a.mtime) == 3000 * 1000000000LL + 3);
    CHECK(ns(a.ctime) == 3000 * 1000000000LL + 4);

    // Directories keep coffer's own clock (the kernel caches no dir times).
    vfs::SetAttrReq old_times;
    old_times.mtime = vfs::SetAttrReq::Time::set;
    old_times.mtime_val = {1000, 0};
    REQUIRE(f.fs->setattr(dir, old_times, f.ctx).ok());
    REQUIRE(ns(f.attr(dir).mtime) == 1000 * 1000000000LL);
    f.mkfile(dir, "x");
    CHECK(ns(f.attr(dir).mtime) > 1000000 * 1000000000LL);  // now, not the kept value

    // Off again: a write stamps the daemon's clock.
    f.fs->set_kernel_owns_file_times(false);
    f.write_at(file, 0, as_bytes(std::string_view("x")));
    CHECK(ns(f.attr(file).mtime) > 3000 * 1000000000LL + 3);
    CHECK(ns(f.attr(file).ctime) > 3000 * 1000000000LL + 4);
}

TEST_CASE("core: kernel cache fills run only when nothing changed and nobody writes, and hold off changes of that file") {
    CoreFixture f;
    Ino a = f.mkfile(kRootIno, "a", "aaaa");
    Ino b = f.mkfile(kRootIno, "b", "bbbb");
    int stores = 0;
    auto count = [&] { ++stores; };

    uint64_t g = f.fs->content_generation();
    CHECK(f.fs->fill_kernel_cache(a, g, count));
    CHECK(stores == 1);
    // A change of any file since the read: no fill.
    f.write_at(b, 0, as_bytes(std::string_view("B")));
    CHECK_FALSE(f.fs->fill_kernel_cache(a, g, count));
    CHECK(stores == 1);
    // Truncate by path (no handle) changes the generation too.
    g = f.fs->content_generation();
    f.truncate(a, 2);
    CHECK_FALSE(f.fs->fill_kernel_cache(a, g, count));
    // A handle open for writing on the file: no fill (the kernel may hold newer pages).
    auto w = f.fs->open(a, O_RDWR);
    REQUIRE(w.ok());
    g = f.fs->content_generation();
    CHECK_FALSE(f.fs->fill_kernel_cache(a, g, count));
    CHECK(f.fs->fill_kernel_cache(b, g, count));  // another file is fine
    CHECK(stores == 2);
    REQUIRE(f.fs->release(a, *w).ok());
    auto r = f.fs->open(a, O_RDONLY);  // a reader does not stop fills
    REQUIRE(r.ok());
    g = f.fs->content_generation();
    CHECK(f.fs->fill_kernel_cache(a, g, count));
    REQUIRE(f.fs->release(a, *r).ok());

    // While a fill of `a` stores, a change of `a` waits for it; a change of `b` does not.
    std::promise<void> entered, release;
    auto released = release.get_future().share();
    g = f.fs->content_generation();
    auto filler = std::async(std::launch::async, [&] {
        return f.fs->fill_kernel_cache(a, g, [&] {
            entered.set_value();
            released.wait();
        });
    });
    entered.get_future().wait();
    f.write_at(b, 0, as_bytes(std::string_view("not blocked")));
    std::atomic<bool> wrote{false};
    auto writer = std::async(std::launch::async, [&] {
        f.write_at(a, 0, as_bytes(std::string_view("after the fill")));
        wrote = true;
    });
    CHECK(writer.wait_for(std::chrono::milliseconds(200)) == std::future_status::timeout);
    CHECK_FALSE(wrote.load());
    release.set_value();
    CHECK(filler.get());
    writer.get();
    CHECK(wrote.load());
    CHECK(f.read_str(a) == "after the fill");
    // Node numbers are not reused while mounted (a late fill must never reach a new file).
    Ino dead = f.mkfile(kRootIno, "dead", "x");
    REQUIRE(f.fs->unlink(kRootIno, "dead").ok());
    f.fs->forget(dead, 1);  // the kernel's lookup of the create: now the row goes
    CHECK(code_of(f.fs->getattr(dead)) == Code::not_found);
    Ino fresh = f.mkfile(kRootIno, "fresh", "y");
    CHECK(fresh > dead);
}
