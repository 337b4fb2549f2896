// Merging: devices on one vault folder, each with its own local state,
// converge on one tree whatever order their segments are applied in, and
// concurrent changes lose nothing (src/vfs/merge.cpp, apply.cpp).
#include <doctest/doctest.h>

#include "../vfs/core_fixture.h"

namespace coffer::testing {
namespace {

using vfs::Ino;
using vfs::kRootIno;

struct Device {
    TempDir state;
    std::unique_ptr<vfs::Filesystem> fs;
    vfs::Ctx ctx{1000, 1000, 022};

    Device(VaultEnv& env, const std::string& name) {
        vfs::Options o;
        o.state_dir = state.str();
        o.device_name = name;
        auto f = vfs::Filesystem::open(*env.vault, env.header, env.master.clone(), o);
        REQUIRE_MESSAGE(f.ok(), (f.ok() ? "" : f.error().message()));
        fs = std::move(f).value();
    }
    vfs::MergeReport sync() {
        auto s = sync::sync(fs->replica());
        REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message()));
        return s->merged;
    }
    void publish() {
        auto p = sync::publish(fs->replica());
        REQUIRE_MESSAGE(p.ok(), (p.ok() ? "" : p.error().message()));
    }
    vfs::MergeReport merge() {
        auto m = fs->replica().merge();
        REQUIRE_MESSAGE(m.ok(), (m.ok() ? "" : m.error().message()));
        return *m;
    }
    std::string digest() {
        auto d = fs->replica().digest();
        REQUIRE_MESSAGE(d.ok(), (d.ok() ? "" : d.error().message()));
        return *d;
    }
    Ino lookup(Ino parent, std::string_view name) {
        auto a = fs->lookup(parent, name);
        std::string why = std::string(name) + ": " + (a.ok() ? "" : a.error().message());
        REQUIRE_MESSAGE(a.ok(), why);
        return a->ino;
    }
    bool exists(Ino parent, std::string_view name) { return fs->peek(parent, name).ok(); }
    Ino mkdir(Ino parent, std::string_view name) {
        auto a = fs->mkdir(parent, name, 0755, ctx);
        REQUIRE_MESSAGE(a.ok(), (a.ok() ? "" : a.error().message()));
        return a->ino;
    }
    Ino write(Ino parent, std::string_view name, std::string_view content) {
        auto e = fs->peek(parent, name);
        Ino ino;
        uint64_t fh;
        if (e.ok()) {
            ino = e->ino;
            auto o = fs->open(ino, O_RDWR | O_TRUNC);
            REQUIRE(o.ok());
            fh = *o;
            vfs::SetAttrReq r;
            r.size = 0;
            REQUIRE(fs->setattr(ino, r, ctx).ok());
        } else {
            auto c = fs->create(parent, name, 0644, O_RDWR, ctx);
            REQUIRE_MESSAGE(c.ok(), (c.ok() ? "" : c.error().message()));
            ino = c->attr.ino;
            fh = c->fh;
        }
        auto w = fs->write(ino, fh, 0, as_bytes(content));
        REQUIRE(w.ok());
        REQUIRE(fs->release(ino, fh).ok());
        return ino;
    }
    std::string read(Ino parent, std::string_view name) {
        Ino ino = lookup(parent, name);
        auto a = fs->getattr(ino);
        REQUIRE(a.ok());
        Bytes out(a->size);
        auto r = fs->read(ino, 0, 0, out.size(), out.data());
        REQUIRE(r.ok());
        return std::string(out.begin(), out.begin() + static_cast<long>(*r));
    }
    std::set<std::string> names(Ino dir) {
        std::set<std::string> out;
        for (const auto& e : list_dir(*fs, dir)) out.insert(e.name);
        return out;
    }
};

// The one name in `names` that starts with `prefix`.
std::string one_starting(const std::set<std::string>& names, const std::string& prefix) {
    std::string found;
    int n = 0;
    for (const auto& s : names)
        if (s.rfind(prefix, 0) == 0) {
            found = s;
            ++n;
        }
    CHECK_MESSAGE(n == 1, prefix);
    return found;
}

}  // namespace

TEST_CASE("merge: a change on one device shows on the other after sync") {
    VaultEnv env;
    Device a(env, "laptop"), b(env, "desktop");
    Ino d = a.mkdir(kRootIno, "docs");
    a.write(d, "note.txt", "hello");
    a.sync();
    auto m = b.sync();
    CHECK(m.segments == 1);
    CHECK(b.read(b.lookup(kRootIno, "docs"), "note.txt") == "hello");
    CHECK(a.digest() == b.digest());
}

TEST_CASE("merge: a segment that sorts before this device's own is put in its place (undo, apply, redo)") {
    VaultEnv env;
    Device a(env, "laptop"), b(env, "desktop");
    // b's changes are published first (earlier clock), a's later; a merges
    // b's after its own are applied: b's must be put before them.
    b.mkdir(kRootIno, "from-b");
    b.write(kRootIno, "shared", "b's version");
    b.publish();
    a.mkdir(kRootIno, "from-a");
    a.write(kRootIno, "shared", "a's version");  // created on both: a name conflict
    a.publish();
    auto ma = a.merge();
    CHECK(ma.segments == 1);
    CHECK(ma.redone >= 1);
    auto mb = b.merge();
    CHECK(mb.segments == 1);
    CHECK(mb.redone == 0);
    CHECK(a.digest() == b.digest());
    auto names = a.names(kRootIno);
    CHECK(names.count("from-a"));
    CHECK(names.count("from-b"));
    CHECK(names.count("shared"));
    std::string aside = one_starting(names, "shared (conflict laptop ");
    // b's create sorts first: it keeps the name; a's goes aside.
    CHECK(a.read(kRootIno, "shared") == "b's version");
    CHECK(a.read(kRootIno, aside) == "a's version");
    CHECK(b.read(kRootIno, aside) == "a's version");
}

TEST_CASE("merge: concurrent edits from one base keep both versions") {
    VaultEnv env;
    Device a(env, "laptop"), b(env, "desktop");
    a.write(kRootIno, "report.txt", "base");
    a.sync();
    b.sync();
    b.write(kRootIno, "report.txt", "b edit");
    b.publish();
    a.write(kRootIno, "report.txt", "a edit");
    a.sync();
    b.sync();
    a.sync();
    CHECK(a.digest() == b.digest());
    auto names = a.names(kRootIno);
    CHECK(names.size() == 2);
    std::string copy = one_starting(names, "report (conflict desktop ");
    CHECK(copy.size() > 4);
    CHECK(copy.substr(copy.size() - 4) == ".txt");
    CHECK(a.read(kRootIno, "report.txt") == "a edit");
    CHECK(a.read(kRootIno, copy) == "b edit");
    CHECK(b.read(kRootIno, copy) == "b edit");
    // The copy is an ordinary file: deleting it resolves the conflict everywhere.
    REQUIRE(b.fs->unlink(kRootIno, copy).ok());
    b.sync();
    a.sync();
    CHECK(a.names(kRootIno) == std::set<std::string>{"report.txt"});
    CHECK(a.digest() == b.digest());
}

TEST_CASE("merge: an edit beats a concurrent delete") {
    VaultEnv env;
    Device a(env, "laptop"), b(env, "desktop");
    Ino d = a.mkdir(kRootIno, "d");
    a.write(d, "f.txt", "v1");
    a.sync();
    b.sync();
    Ino bd = b.lookup(kRootIno, "d");
    REQUIRE(b.fs->unlink(bd, "f.txt").ok());
    b.publish();
    a.write(d, "f.txt", "v2");
    a.sync();
    b.sync();
    a.sync();
    CHECK(a.digest() == b.digest());
    CHECK(b.read(bd, "f.txt") == "v2");
    CHECK(a.read(d, "f.txt") == "v2");
}

TEST_CASE("merge: a delete that saw the newest version wins") {
    VaultEnv env;
    Device a(env, "laptop"), b(env, "desktop");
    a.write(kRootIno, "f", "v1");
    a.sync();
    b.sync();
    REQUIRE(b.fs->unlink(kRootIno, "f").ok());
    b.sync();
    a.sync();
    CHECK_FALSE(a.exists(kRootIno, "f"));
    CHECK(a.digest() == b.digest());
}

TEST_CASE("merge: a file created in a folder another device deleted brings the folder back") {
    VaultEnv env;
    Device a(env, "laptop"), b(env, "desktop");
    Ino d = a.mkdir(kRootIno, "project");
    a.write(d, "old.txt", "x");
    a.sync();
    b.sync();
    Ino bd = b.lookup(kRootIno, "project");
    REQUIRE(b.fs->unlink(bd, "old.txt").ok());
    REQUIRE(b.fs->rmdir(kRootIno, "project").ok());
    b.publish();
    a.write(d, "new.txt", "keep me");
    a.sync();
    b.sync();
    a.sync();
    CHECK(a.digest() == b.digest());
    Ino back = b.lookup(kRootIno, "project");
    CHECK(b.read(back, "new.txt") == "keep me");
    CHECK_FALSE(b.exists(back, "old.txt"));
}

TEST_CASE("merge: concurrent moves that would make a cycle leave a tree") {
    VaultEnv env;
    Device a(env, "laptop"), b(env, "desktop");
    Ino x = a.mkdir(kRootIno, "x");
    a.mkdir(kRootIno, "y");
    a.write(x, "in-x", "1");
    a.sync();
    b.sync();
    Ino ay = a.lookup(kRootIno, "y");
    REQUIRE(a.fs->rename(kRootIno, "x", ay, "x", 0).ok());  // x into y
    a.publish();
    Ino bx = b.lookup(kRootIno, "x");
    REQUIRE(b.fs->rename(kRootIno, "y", bx, "y", 0).ok());  // y into x
    b.sync();
    a.sync();
    b.sync();
    CHECK(a.digest() == b.digest());
    // One of the moves happened, the other did nothing: both folders are
    // reachable from the root, one inside the other.
    auto top = a.names(kRootIno);
    CHECK(top.size() == 1);
    bool x_top = top.count("x") == 1;
    Ino outer = a.lookup(kRootIno, x_top ? "x" : "y");
    Ino inner = a.lookup(outer, x_top ? "y" : "x");
    CHECK(a.names(inner).size() + a.names(outer).size() >= 2);
}

TEST_CASE("merge: a segment waits for the segments its device had merged (causal apply)") {
    VaultEnv env;
    // The three devices share one vault folder; c's view of it is made to
    // miss b's segment by moving the file away and back.
    Device a(env, "laptop"), b(env, "desktop"), c(env, "server");
    a.write(kRootIno, "f", "v1");
    a.sync();
    b.sync();
    b.write(kRootIno, "f", "v2 from b");
    b.sync();
    a.sync();
    Ino ad = a.mkdir(kRootIno, "after");
    (void)ad;
    a.sync();  // a's second segment names b's in its vector
    const std::string bseg = format::segment_path(b.fs->replica().publish_keys().device, 1);
    const auto root = env.vault_dir.path;
    std::filesystem::rename(root / bseg, root / "held-back");
    auto m = c.sync();
    CHECK(m.segments == 1);  // a's first only
    CHECK_FALSE(m.waiting.empty());
    CHECK_FALSE(c.exists(kRootIno, "after"));
    CHECK(c.read(kRootIno, "f") == "v1");
    std::filesystem::rename(root / "held-back", root / bseg);
    m = c.sync();
    CHECK(m.waiting.empty());
    b.sync();
    CHECK(c.read(kRootIno, "f") == "v2 from b");
    CHECK(c.exists(kRootIno, "after"));
    CHECK(c.digest() == a.digest());
    CHECK(c.digest() == b.digest());
}

}  // namespace coffer::testing
