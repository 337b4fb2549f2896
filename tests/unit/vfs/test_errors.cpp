// Errors the core reports instead of swallowing: a device number that fails
// authentication, an index error while listing a folder, and damage of a
// published block logged once however often a reader retries.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "coffer/util/log.h"
#include "core_fixture.h"

using namespace coffer;
using namespace coffer::testing;
using vfs::Ino;
using vfs::kRootIno;

namespace {

// Runs `sql` on the local index of a closed Core.
void edit_index(const std::string& state_dir, const std::string& sql) {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open((state_dir + "/index.db").c_str(), &db) == SQLITE_OK);
    char* err = nullptr;
    int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
    std::string msg = err ? err : "";
    sqlite3_free(err);
    sqlite3_close(db);
    REQUIRE_MESSAGE(rc == SQLITE_OK, msg);
}

struct Listed {
    std::set<std::string> names;
    std::set<std::string> with_attr;  // readdirplus entries that came with attributes
};

Result<Listed> list(vfs::Filesystem& fs, Ino dir, bool plus) {
    Listed out;
    COFFER_ASSIGN(uint64_t fh, fs.opendir(dir));
    Status st = fs.readdir(dir, fh, 0, plus, [&](const vfs::DirEntry& e, const vfs::Attr* a, uint64_t) {
        if (e.name == "." || e.name == "..") return true;
        out.names.insert(e.name);
        if (a) out.with_attr.insert(e.name);
        return true;
    });
    (void)fs.releasedir(dir, fh);
    if (!st.ok()) return std::move(st).error();
    return out;
}

std::string slurp(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

size_t count_of(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
}

}  // namespace

TEST_CASE("errors: a device number that fails authentication is corrupt on getattr and lookup, not 0") {
    CoreFixture f;
    auto dev = f.fs->mknod(kRootIno, "tty", S_IFCHR | 0620, makedev(4, 1), f.ctx);
    REQUIRE(dev.ok());
    f.mkfile(kRootIno, "plain", "x");
    const Ino ino = dev->ino;
    f.fs.reset();
    edit_index(f.state_dir.str(), "UPDATE nodes SET rdev = zeroblob(length(rdev)) WHERE ino = " + std::to_string(ino));
    f.fs = f.open_fs(f.state_dir.str());

    auto a = f.fs->getattr(ino);
    REQUIRE_FALSE(a.ok());
    CHECK(a.error().code == Code::corrupt);
    CHECK(a.error().context.find("tty") != std::string::npos);  // names the node
    CHECK(code_of(f.fs->lookup(kRootIno, "tty")) == Code::corrupt);
    CHECK(code_of(f.fs->peek(kRootIno, "tty")) == Code::corrupt);
    // The folder still lists; readdirplus hands that entry over without
    // attributes (its lookup reports the damage) and the others with them.
    auto plain = list(*f.fs, kRootIno, false);
    REQUIRE(plain.ok());
    CHECK(plain->names == std::set<std::string>{"tty", "plain"});
    auto plus = list(*f.fs, kRootIno, true);
    REQUIRE(plus.ok());
    CHECK(plus->names == std::set<std::string>{"tty", "plain"});
    CHECK(plus->with_attr == std::set<std::string>{"plain"});
    CHECK(f.read_str(f.ino_of(kRootIno, "plain")) == "x");
}

TEST_CASE("errors: an index error while listing a folder is returned, not skipped") {
    CoreFixture f;
    const Ino dir = f.mkdir(kRootIno, "d");
    f.mkfile(dir, "a", "1");
    const Ino b = f.mkfile(dir, "b", "2");
    f.mkfile(dir, "c", "3");
    f.fs.reset();
    // Reading b's row fails inside SQLite (abs() of the smallest integer
    // overflows): the nodes table behind a view that fails for that row.
    edit_index(f.state_dir.str(),
               "ALTER TABLE nodes RENAME TO nodes_real;"
               "CREATE VIEW nodes AS SELECT ino, gid, CASE WHEN ino = " + std::to_string(b) +
                   " THEN abs(-9223372036854775807 - 1) ELSE mode END AS mode, uid, ogid, rdev, size, nlink, atime, "
                   "mtime, ctime, link, key_epoch, wkey, version, dirty, kgid, vdev, vhlc, conflict FROM nodes_real;");
    f.fs = f.open_fs(f.state_dir.str(), /*read_only=*/true);
    for (bool plus : {false, true}) {
        CAPTURE(plus);
        auto l = list(*f.fs, dir, plus);
        CHECK_FALSE(l.ok());
        if (!l.ok()) CHECK(l.error().code != Code::not_found);
    }
}

TEST_CASE("errors: a tampered block is logged once, not at every read") {
    CoreFixture f;
    std::string content(256 * 1024, 'z');
    const Ino ino = f.mkfile(kRootIno, "big", content);
    f.publish();
    // Flip a byte in the middle of the one object: a block in its middle.
    std::string object;
    for (const auto& e : std::filesystem::recursive_directory_iterator(f.vault_dir.path / "objects"))
        if (e.is_regular_file()) object = e.path().string();
    REQUIRE_FALSE(object.empty());
    {
        std::fstream io(object, std::ios::in | std::ios::out | std::ios::binary);
        const auto size = std::filesystem::file_size(object);
        io.seekg(static_cast<std::streamoff>(size / 2));
        char c = 0;
        io.read(&c, 1);
        c = static_cast<char>(c ^ 0x40);
        io.seekp(static_cast<std::streamoff>(size / 2));
        io.write(&c, 1);
    }
    TempDir logdir;
    const std::string logfile = logdir.str() + "/log";
    REQUIRE(log::set_file(logfile));
    Bytes out(content.size());
    for (int attempt = 0; attempt < 3; ++attempt) {
        auto r = f.fs->read(ino, 0, 0, out.size(), out.data());
        CHECK(code_of(r) == Code::corrupt);
    }
    log::set_file("");
    const std::string logged = slurp(logfile);
    CHECK(count_of(logged, "failed authentication") == 1);
    CHECK(count_of(logged, "big") == 1);  // the line names the file
}
