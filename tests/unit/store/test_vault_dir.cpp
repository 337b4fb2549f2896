#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "coffer/store/vault_dir.h"
#include "../test_support.h"

using namespace coffer;
using namespace coffer::store;
namespace fs = std::filesystem;

namespace {

Bytes bytes_of(std::string_view s) { return Bytes(s.begin(), s.end()); }
constexpr uint64_t kCap = 1 << 20;

std::string slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(in), {});
}

std::unique_ptr<VaultDir> open_dir(const testing::TempDir& t) {
    auto d = VaultDir::open(t.str());
    REQUIRE(d.ok());
    return std::move(d).value();
}

// Runs the body with openat2, then again with the component walk used when
// the kernel lacks it.
struct ResolveMode {
    explicit ResolveMode(bool walk) { VaultDir::set_openat2_disabled_for_tests(walk); }
    ~ResolveMode() { VaultDir::set_openat2_disabled_for_tests(false); }
};

}  // namespace

TEST_CASE("vault dir: open refuses a missing folder and a file") {
    testing::TempDir t;
    auto m = VaultDir::open(t.str() + "/nope");
    REQUIRE_FALSE(m.ok());
    CHECK(m.error().code == Code::not_found);
    CHECK(m.error().context == "vault folder " + t.str() + "/nope does not exist");
    std::ofstream(t.path / "file") << "x";
    auto f = VaultDir::open((t.path / "file").string());
    REQUIRE_FALSE(f.ok());
    CHECK(f.error().code == Code::not_dir);
}

TEST_CASE_TEMPLATE_DEFINE("vault dir: behaves the same with and without openat2", Walk, vault_dir_modes) {
    ResolveMode mode(Walk::value);
    testing::TempDir t;
    auto d = open_dir(t);

    SUBCASE("write_new, read, list; never replaces") {
        REQUIRE(d->create_layout().ok());
        for (const char* sub : {"objects", "journal", "snapshots", "tmp"}) CHECK(fs::is_directory(t.path / sub));

        REQUIRE(d->write_new("journal/dev1/0000000000000001", bytes_of("first")).ok());
        auto r = d->read("journal/dev1/0000000000000001", kCap);
        REQUIRE(r.ok());
        CHECK(*r == bytes_of("first"));

        auto again = d->write_new("journal/dev1/0000000000000001", bytes_of("second"));
        REQUIRE_FALSE(again.ok());
        CHECK(again.error().code == Code::exists);
        CHECK(slurp(t.path / "journal/dev1/0000000000000001") == "first");
        CHECK(d->list("tmp")->empty());  // the refused tmp file is gone

        REQUIRE(d->write_new("journal/dev1/0000000000000002", bytes_of(""), false).ok());
        REQUIRE(d->sync_dir("journal/dev1").ok());
        auto names = d->list("journal/dev1");
        REQUIRE(names.ok());
        CHECK(*names == std::vector<std::string>{"0000000000000001", "0000000000000002"});
        CHECK(d->read("journal/dev1/0000000000000002", kCap)->empty());
        CHECK(d->exists("journal/dev1/0000000000000002"));
        CHECK_FALSE(d->exists("journal/dev1/0000000000000003"));

        auto root = d->list("");
        REQUIRE(root.ok());
        CHECK(*root == std::vector<std::string>{"journal", "objects", "snapshots", "tmp"});
    }

    SUBCASE("replace swaps atomically; remove is idempotent") {
        REQUIRE(d->write_new("coffer.vault", bytes_of("v1")).ok());
        REQUIRE(d->replace("coffer.vault", bytes_of("v2")).ok());
        CHECK(slurp(t.path / "coffer.vault") == "v2");
        CHECK(d->list("tmp")->empty());
        REQUIRE(d->remove("coffer.vault").ok());
        CHECK_FALSE(fs::exists(t.path / "coffer.vault"));
        CHECK(d->remove("coffer.vault").ok());
        CHECK(d->remove("no/such/dir/file").ok());
    }

    SUBCASE("a missing file is pending; a missing folder lists empty") {
        auto r = d->read("journal/abc/0001", kCap);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == Code::pending);
        CHECK(r.error().context == "vault file journal/abc/0001 has not arrived (pending)");
        CHECK(d->open_read("objects/ab/cd").error().code == Code::pending);
        auto l = d->list("journal/abc");
        REQUIRE(l.ok());
        CHECK(l->empty());
    }

    SUBCASE("paths that leave the vault are refused up front") {
        for (std::string_view bad : {"../x", "a/../../x", "..", "/etc/passwd", "objects/../../x"}) {
            INFO(bad);
            CHECK(d->read(bad, kCap).error().code == Code::invalid);
            CHECK(d->write_new(bad, bytes_of("x")).error().code == Code::invalid);
            CHECK(d->list(bad).error().code == Code::invalid);
            CHECK(d->remove(bad).error().code == Code::invalid);
            CHECK_FALSE(d->exists(bad));
        }
        std::string nul("a\0b", 3);
        CHECK(d->read(nul, kCap).error().code == Code::invalid);
        CHECK(d->write_new(nul, bytes_of("x")).error().code == Code::invalid);
        CHECK_FALSE(fs::exists(t.path.parent_path() / "x"));
    }

    SUBCASE("a symlink planted in the vault is not followed") {
        testing::TempDir outside;
        std::ofstream(outside.path / "secret") << "outside";
        REQUIRE(d->create_layout().ok());
        fs::create_directory_symlink(outside.path, t.path / "objects/ab");
        fs::create_directory_symlink("/etc", t.path / "objects/cd");
        fs::create_symlink(outside.path / "secret", t.path / "coffer.vault");

        for (std::string_view rel : {"objects/ab/secret", "objects/cd/passwd", "coffer.vault"}) {
            INFO(rel);
            auto r = d->read(rel, kCap);
            REQUIRE_FALSE(r.ok());
            CHECK(r.error().code == Code::corrupt);
            CHECK_FALSE(d->exists(rel));
        }
        CHECK_FALSE(d->list("objects/ab").ok());

        auto w = d->write_new("objects/ab/new", bytes_of("x"));
        REQUIRE_FALSE(w.ok());
        CHECK(w.error().code == Code::corrupt);
        CHECK_FALSE(fs::exists(outside.path / "new"));
        CHECK_FALSE(d->remove("objects/ab/secret").ok());
        CHECK(fs::exists(outside.path / "secret"));

        // write_new does not replace the planted link, and replace swaps the
        // link itself, never writing through it.
        CHECK(d->write_new("coffer.vault", bytes_of("mine")).error().code == Code::exists);
        REQUIRE(d->replace("coffer.vault", bytes_of("mine")).ok());
        CHECK(slurp(outside.path / "secret") == "outside");
        CHECK(*d->read("coffer.vault", kCap) == bytes_of("mine"));

        // A planted tmp/ link is not followed either.
        fs::remove(t.path / "tmp");
        fs::create_directory_symlink(outside.path, t.path / "tmp");
        CHECK_FALSE(d->write_new("objects/x", bytes_of("x")).ok());
        CHECK(std::distance(fs::directory_iterator(outside.path), fs::directory_iterator{}) == 1);
    }

    SUBCASE("a planted FIFO does not hang a read") {
        REQUIRE(::mkfifo((t.path / "coffer.vault").c_str(), 0600) == 0);
        auto r = d->read("coffer.vault", kCap);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == Code::corrupt);
    }
}

TEST_CASE_TEMPLATE_INVOKE(vault_dir_modes, std::false_type, std::true_type);
