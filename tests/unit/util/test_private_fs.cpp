// Private files and folders (util/private_fs.h): modes whatever the umask,
// symlinks and other users' folders refused.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <string>

#include "coffer/util/private_fs.h"
#include "../test_support.h"

using namespace coffer;

namespace {

// The widest umask there is, for one scope.
struct Umask {
    mode_t old;
    explicit Umask(mode_t m) : old(::umask(m)) {}
    ~Umask() { ::umask(old); }
};

mode_t mode_of(const std::string& p) {
    struct stat st{};
    REQUIRE(::lstat(p.c_str(), &st) == 0);
    return st.st_mode & 07777;
}

}  // namespace

TEST_CASE("private folder: made 0700 whatever the umask; one open to others is tightened") {
    Umask all(0);
    testing::TempDir t;
    std::string d = t.str() + "/d";
    auto made = priv::ensure_private_dir(d);
    REQUIRE(made.ok());
    CHECK(made->created);
    CHECK(made->tightened_from == 0);
    CHECK(mode_of(d) == 0700);

    REQUIRE(::chmod(d.c_str(), 0755) == 0);
    auto again = priv::ensure_private_dir(d);
    REQUIRE(again.ok());
    CHECK_FALSE(again->created);
    CHECK(again->tightened_from == 0755);
    CHECK(mode_of(d) == 0700);
    CHECK(priv::check_private_dir(d).ok());
}

TEST_CASE("private folder: a symlink, a file, another user's folder are refused") {
    testing::TempDir t;
    std::string real = t.str() + "/real", link = t.str() + "/link", file = t.str() + "/file";
    REQUIRE(::mkdir(real.c_str(), 0700) == 0);
    REQUIRE(::symlink(real.c_str(), link.c_str()) == 0);
    REQUIRE(::close(::open(file.c_str(), O_CREAT | O_WRONLY, 0600)) == 0);

    auto l = priv::ensure_private_dir(link);
    REQUIRE_FALSE(l.ok());
    CHECK(l.error().code == Code::permission);
    CHECK(l.error().message().find("symbolic link") != std::string::npos);
    CHECK(priv::ensure_private_dir(link, true).ok());  // --state may name one; its target is checked
    auto cl = priv::check_private_dir(link);
    REQUIRE_FALSE(cl.ok());
    CHECK(cl.error().message().find("symbolic link") != std::string::npos);

    CHECK_FALSE(priv::ensure_private_dir(file).ok());
    CHECK_FALSE(priv::check_private_dir(file).ok());
    CHECK(priv::check_private_dir(t.str() + "/missing").error().code == Code::not_found);

    REQUIRE(::chmod(real.c_str(), 0750) == 0);
    auto loose = priv::check_private_dir(real);
    REQUIRE_FALSE(loose.ok());
    CHECK(loose.error().message().find("mode is 0750") != std::string::npos);
    CHECK(mode_of(real) == 0750);  // checking changes nothing

    if (::geteuid() != 0) return;  // only root can give a folder away
    REQUIRE(::chmod(real.c_str(), 0700) == 0);
    REQUIRE(::chown(real.c_str(), 65534, 65534) == 0);
    auto theirs = priv::ensure_private_dir(real);
    REQUIRE_FALSE(theirs.ok());
    CHECK(theirs.error().code == Code::permission);
    CHECK(theirs.error().message().find("belongs to uid 65534") != std::string::npos);
    CHECK(priv::check_private_dir(real).error().message().find("belongs to uid 65534") != std::string::npos);
}

TEST_CASE("private file: 0600 whatever the umask, an existing wider one narrowed, no symlink followed") {
    Umask all(0);
    testing::TempDir t;
    std::string f = t.str() + "/f";
    {
        auto fd = priv::open_private_file(f, O_WRONLY);
        REQUIRE(fd.ok());
    }
    CHECK(mode_of(f) == 0600);
    REQUIRE(::chmod(f.c_str(), 0666) == 0);
    {
        auto fd = priv::open_private_file(f, O_WRONLY | O_TRUNC);
        REQUIRE(fd.ok());
    }
    CHECK(mode_of(f) == 0600);
    std::string link = t.str() + "/link";
    REQUIRE(::symlink(f.c_str(), link.c_str()) == 0);
    CHECK_FALSE(priv::open_private_file(link, O_WRONLY).ok());

    REQUIRE(::chmod(f.c_str(), 0644) == 0);
    REQUIRE(priv::tighten(f).ok());
    CHECK(mode_of(f) == 0600);
    REQUIRE(priv::tighten(link).ok());  // a symlink is left alone
    CHECK(priv::tighten(t.str() + "/missing").ok());
}
