// Replay: a new device (a new, empty local state on the same vault) rebuilds
// the same tree from the journal segments that publish wrote.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <random>

#include "core_fixture.h"

using namespace coffer;
using namespace coffer::testing;
using vfs::Ino;
using vfs::kRootIno;

namespace {

struct Entry {
    Ino parent = 0;
    std::string name;
    std::string path;
    vfs::Attr attr;
};

// Every entry of the tree, paths included (for choosing random operands).
std::vector<Entry> all_entries(vfs::Filesystem& fs) {
    std::vector<Entry> out;
    std::vector<std::pair<Ino, std::string>> todo{{kRootIno, ""}};
    while (!todo.empty()) {
        auto [dir, prefix] = todo.back();
        todo.pop_back();
        for (const auto& e : list_dir(fs, dir)) {
            auto a = fs.getattr(e.ino);
            REQUIRE(a.ok());
            out.push_back({dir, e.name, prefix + "/" + e.name, *a});
            if (S_ISDIR(a->mode)) todo.push_back({e.ino, prefix + "/" + e.name});
        }
    }
    return out;
}

// Random operations of every kind on `f`; failures the filesystem reports
// (exists, not_empty, …) are part of the game and simply skipped.
struct RandomOps {
    CoreFixture& f;
    std::mt19937_64 rng;
    int counter = 0;
    RandomOps(CoreFixture& fx, uint64_t seed) : f(fx), rng(seed) {}

    std::string new_name() {
        static const char* stems[] = {"a", "b", "dir", "file", "x y", "\xc3\xa9t\xc3\xa9", "n\x01"};
        return std::string(stems[rng() % 7]) + std::to_string(rng() % 12);
    }
    Bytes data(size_t n) {
        Bytes b(n);
        for (auto& c : b) c = static_cast<uint8_t>(rng());
        return b;
    }
    void step() {
        auto entries = all_entries(*f.fs);
        std::vector<Entry> dirs{{0, "", "", f.attr(kRootIno)}}, files, any = entries;
        dirs[0].attr.ino = kRootIno;
        for (const auto& e : entries) {
            if (S_ISDIR(e.attr.mode)) dirs.push_back(e);
            if (S_ISREG(e.attr.mode)) files.push_back(e);
        }
        auto pick = [&](const std::vector<Entry>& v) -> const Entry& { return v[rng() % v.size()]; };
        const Ino dir = pick(dirs).attr.ino;
        vfs::Ctx ctx{static_cast<uint32_t>(1000 + rng() % 3), static_cast<uint32_t>(100 + rng() % 3), 0};
        ++counter;
        switch (rng() % 16) {
            case 0:
                (void)f.fs->mkdir(dir, new_name(), 0700 + rng() % 0100, ctx);
                break;
            case 1:
            case 2: {
                auto c = f.fs->create(dir, new_name(), 0600 + rng() % 0100, O_RDWR, ctx);
                if (!c.ok()) break;
                if (rng() % 4) REQUIRE(f.fs->write(c->attr.ino, c->fh, rng() % 20000, data(1 + rng() % 40000)).ok());
                REQUIRE(f.fs->release(c->attr.ino, c->fh).ok());
                break;
            }
            case 3: {
                if (files.empty()) break;
                const Entry& e = pick(files);
                uint64_t off = rng() % 2 ? rng() % (e.attr.size + 1) : rng() % (9 << 20);
                f.write_at(e.attr.ino, off, data(1 + rng() % 70000));
                break;
            }
            case 4: {
                if (files.empty()) break;
                const Entry& e = pick(files);
                vfs::SetAttrReq r;
                r.size = rng() % 2 ? rng() % (e.attr.size + 1) : rng() % (6 << 20);
                REQUIRE(f.fs->setattr(e.attr.ino, r, ctx).ok());
                break;
            }
            case 5: {
                std::string target = rng() % 2 ? "../" + new_name() : std::string(1 + rng() % 4095, 't');
                (void)f.fs->symlink(dir, new_name(), target, ctx);
                break;
            }
            case 6: {
                uint32_t types[] = {S_IFIFO, S_IFSOCK, S_IFCHR, S_IFBLK};
                (void)f.fs->mknod(dir, new_name(), types[rng() % 4] | 0640, makedev(rng() % 300, rng() % 300), ctx);
                break;
            }
            case 7: {
                if (any.empty()) break;
                const Entry& e = pick(any);
                if (!S_ISDIR(e.attr.mode)) (void)f.fs->link(e.attr.ino, dir, new_name());
                break;
            }
            case 8: {
                if (any.empty()) break;
                const Entry& e = pick(any);
                if (S_ISDIR(e.attr.mode)) (void)f.fs->rmdir(e.parent, e.name);
                else (void)f.fs->unlink(e.parent, e.name);
                break;
            }
            case 9:
            case 10: {
                if (any.empty()) break;
                const Entry& src = pick(any);
                unsigned flags = 0;
                std::string dst_name;
                Ino dst_parent = dir;
                int how = static_cast<int>(rng() % 3);
                if (how == 2 || rng() % 2) {  // onto an existing entry
                    const Entry& dst = pick(any);
                    dst_parent = dst.parent;
                    dst_name = dst.name;
                    // An exchange with an ancestor would make a cycle (the
                    // kernel never sends that; see the core test).
                    bool related = dst.path.rfind(src.path + "/", 0) == 0 || src.path.rfind(dst.path + "/", 0) == 0;
                    if (how == 2 && !related) flags = RENAME_EXCHANGE;
                    if (how == 1) flags = RENAME_NOREPLACE;
                } else {
                    dst_name = new_name();
                }
                (void)f.fs->rename(src.parent, src.name, dst_parent, dst_name, flags);
                break;
            }
            case 11: {
                if (any.empty()) break;
                const Entry& e = pick(any);
                vfs::SetAttrReq r;
                if (rng() % 2) r.mode = rng() % 07777;
                if (rng() % 2) r.uid = rng() % 5;
                if (rng() % 2) r.gid = rng() % 5;
                if (rng() % 2) {
                    r.mtime = vfs::SetAttrReq::Time::set;
                    r.mtime_val = {static_cast<time_t>(rng() % 2000000000), static_cast<long>(rng() % 1000000000)};
                }
                if (rng() % 2) r.atime = vfs::SetAttrReq::Time::now;
                REQUIRE(f.fs->setattr(e.attr.ino, r, ctx).ok());
                break;
            }
            case 12:
            case 13: {
                Ino target = any.empty() || rng() % 5 == 0 ? kRootIno : pick(any).attr.ino;
                std::string name = "user.k" + std::to_string(rng() % 4);
                if (rng() % 4 == 0) (void)f.fs->removexattr(target, name);
                else REQUIRE(f.fs->setxattr(target, name, data(rng() % 300), 0).ok());
                break;
            }
            case 14: {
                if (files.empty()) break;
                const Entry& e = pick(files);
                if (e.attr.size == 0) break;
                uint64_t off = rng() % e.attr.size;
                int mode = rng() % 2 ? (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) : FALLOC_FL_ZERO_RANGE;
                REQUIRE(f.fs->fallocate(e.attr.ino, 0, mode, off, 1 + rng() % 50000).ok());
                break;
            }
            default: {
                if (files.empty()) break;
                const Entry& e = pick(files);
                auto fh = f.fs->open(e.attr.ino, O_WRONLY | O_APPEND);
                REQUIRE(fh.ok());
                REQUIRE(f.fs->write(e.attr.ino, *fh, 0, data(1 + rng() % 3000)).ok());
                REQUIRE(f.fs->release(e.attr.ino, *fh).ok());
                break;
            }
        }
    }
};

// The tree as a new device sees it after replaying the vault.
std::map<std::string, NodeView> replayed(CoreFixture& f) {
    TempDir state;
    auto fs2 = f.open_fs(state.str());
    auto tree = snapshot_tree(*fs2);
    CHECK(fs2->getattr(kRootIno)->nlink == f.attr(kRootIno).nlink);
    return tree;
}

}  // namespace

TEST_CASE("replay: a new device shows the same tree after random operations") {
    CoreFixture f;
    RandomOps ops(f, 7);
    for (int i = 0; i < 300; ++i) ops.step();
    f.publish();
    auto here = snapshot_tree(*f.fs);
    // The seed gives a tree with every kind of node in it.
    int dirs = 0, files = 0, links = 0, specials = 0, hard = 0, xattrs = 0;
    for (const auto& [path, v] : here) {
        dirs += S_ISDIR(v.mode);
        files += S_ISREG(v.mode);
        links += S_ISLNK(v.mode);
        specials += S_ISFIFO(v.mode) || S_ISSOCK(v.mode) || S_ISCHR(v.mode) || S_ISBLK(v.mode);
        hard += !S_ISDIR(v.mode) && v.nlink > 1;
        xattrs += !v.xattrs.empty();
    }
    MESSAGE("entries " << here.size() << " dirs " << dirs << " files " << files << " symlinks " << links
                       << " specials " << specials << " hard-linked " << hard << " with xattrs " << xattrs);
    CHECK(dirs > 0);
    CHECK(files > 0);
    CHECK(links > 0);
    CHECK(specials > 0);
    CHECK(hard > 0);
    CHECK(xattrs > 0);
    check_same_tree(here, replayed(f));
}

TEST_CASE("replay: several publishes with operations in between") {
    CoreFixture f;
    TempDir incremental;  // a second device that is opened again after each publish
    for (uint64_t round = 0; round < 5; ++round) {
        RandomOps ops(f, 100 + round);
        for (int i = 0; i < 80; ++i) ops.step();
        auto p = f.publish();
        CHECK(p.segment_seq == round + 1);
        auto here = snapshot_tree(*f.fs);
        {
            auto fs2 = f.open_fs(incremental.str());
            check_same_tree(here, snapshot_tree(*fs2));
        }
    }
    check_same_tree(snapshot_tree(*f.fs), replayed(f));
}

TEST_CASE("replay: rename, exchange, hard links and unlink of one link") {
    CoreFixture f;
    Ino d1 = f.mkdir(kRootIno, "d1");
    Ino d2 = f.mkdir(kRootIno, "d2");
    Ino file = f.mkfile(d1, "file", "file content");
    f.mkfile(d1, "victim", "to be replaced");
    f.mkdir(d2, "sub");
    f.mkfile(d2, "sub-file", "sub file");
    REQUIRE(f.fs->link(file, d2, "hard").ok());
    REQUIRE(f.fs->link(file, kRootIno, "hard2").ok());
    REQUIRE(f.fs->setxattr(file, "user.tag", as_bytes("v"), 0).ok());
    f.publish();
    check_same_tree(snapshot_tree(*f.fs), replayed(f));

    // Unlink one of three links; rename over a file; move a directory.
    REQUIRE(f.fs->unlink(kRootIno, "hard2").ok());
    REQUIRE(f.fs->rename(d2, "sub-file", d1, "victim", 0).ok());
    REQUIRE(f.fs->rename(d2, "sub", d1, "sub-moved", 0).ok());
    f.publish();
    auto here = snapshot_tree(*f.fs);
    CHECK(here["/d1/file"].nlink == 2);
    CHECK(here["/d1/victim"].content == bytes_of("sub file"));
    CHECK(here.count("/d1/sub-moved") == 1);
    check_same_tree(here, replayed(f));

    // Exchange a file and a directory across parents; exchange two links of
    // one node with other names; rename one hard link over another file.
    REQUIRE(f.fs->rename(d1, "sub-moved", d2, "hard", RENAME_EXCHANGE).ok());
    f.mkfile(kRootIno, "other", "other");
    REQUIRE(f.fs->rename(kRootIno, "other", d1, "file", RENAME_EXCHANGE).ok());
    REQUIRE(f.fs->rename(d1, "victim", kRootIno, "other", 0).ok());
    REQUIRE(f.fs->rename(kRootIno, "d2", d1, "d2-inside", RENAME_NOREPLACE).ok());
    f.publish();
    here = snapshot_tree(*f.fs);
    CHECK(here["/other"].content == bytes_of("sub file"));
    CHECK(here["/d1/file"].content == bytes_of("other"));
    CHECK(S_ISDIR(here["/d1/d2-inside/hard"].mode));
    CHECK(here["/d1/sub-moved"].content == bytes_of("file content"));
    CHECK(here["/d1/sub-moved"].nlink == 1);
    check_same_tree(here, replayed(f));

    // Unlink the last link of a file, then re-create the name.
    REQUIRE(f.fs->unlink(d1, "sub-moved").ok());
    f.mkfile(d1, "sub-moved", "again");
    REQUIRE(f.fs->rmdir(f.ino_of(d1, "d2-inside"), "hard").ok());
    f.publish();
    check_same_tree(snapshot_tree(*f.fs), replayed(f));
    CHECK(d2 != 0);
}

TEST_CASE("replay: content published several times, sparse and truncated files") {
    CoreFixture f;
    Ino a = f.mkfile(kRootIno, "a");
    f.write_at(a, 0, Bytes(5 << 20, 'a'));
    f.write_at(a, 9 << 20, Bytes(100, 'b'));
    f.publish();
    f.write_at(a, 4 << 20, Bytes(10, 'c'));  // re-seals one extent, keeps the others
    f.truncate(a, (9 << 20) + 50);
    Ino big = f.mkfile(kRootIno, "big");
    f.truncate(big, 1ull << 40);
    f.write_at(big, (1ull << 40) - 1, as_bytes("z"));
    f.publish();
    Ino c = f.mkfile(kRootIno, "c", "c");
    REQUIRE(f.fs->fallocate(a, 0, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100, 5 << 20).ok());
    f.publish();
    check_same_tree(snapshot_tree(*f.fs), replayed(f));
    (void)c;
}

TEST_CASE("replay: setattr, xattrs, special files and symlinks") {
    CoreFixture f;
    auto chr = f.fs->mknod(kRootIno, "chr", S_IFCHR | 0600, makedev(1, 3), f.ctx);
    REQUIRE(chr.ok());
    REQUIRE(f.fs->mknod(kRootIno, "fifo", S_IFIFO | 0600, 0, f.ctx).ok());
    REQUIRE(f.fs->symlink(kRootIno, "link", std::string(4095, 'L'), f.ctx).ok());
    Ino file = f.mkfile(kRootIno, "f", "x");
    vfs::SetAttrReq r;
    r.mode = 02751;
    r.uid = 7;
    r.gid = 8;
    r.mtime = vfs::SetAttrReq::Time::set;
    r.mtime_val = {1234567890, 5};
    REQUIRE(f.fs->setattr(file, r, f.ctx).ok());
    REQUIRE(f.fs->setxattr(file, "user.a", Bytes(65536, 0x11), 0).ok());
    REQUIRE(f.fs->setxattr(file, "user.gone", as_bytes("x"), 0).ok());
    REQUIRE(f.fs->removexattr(file, "user.gone").ok());
    REQUIRE(f.fs->setxattr(kRootIno, "user.root", as_bytes("r"), 0).ok());
    f.publish();
    auto here = snapshot_tree(*f.fs);
    CHECK(here["/chr"].rdev == makedev(1, 3));
    CHECK(here["/f"].mode == (S_IFREG | 02751));
    CHECK(here["/f"].mtime_ns == 1234567890000000005);
    TempDir state;
    auto fs2 = f.open_fs(state.str());
    check_same_tree(here, snapshot_tree(*fs2));
    CHECK(*fs2->getxattr(kRootIno, "user.root") == bytes_of("r"));
}
