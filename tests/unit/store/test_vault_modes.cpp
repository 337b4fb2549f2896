// Vault files are written 0600 and its folders 0700 whatever the umask:
// other local users must not copy coffer.vault to guess the password offline.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <filesystem>

#include "coffer/store/vault_dir.h"
#include "../test_support.h"

using namespace coffer;

TEST_CASE("vault folder: files 0600, folders 0700 under umask 0") {
    mode_t old = ::umask(0);
    testing::TempDir t;
    auto d = store::VaultDir::open(t.str());
    REQUIRE(d.ok());
    REQUIRE((*d)->create_layout().ok());
    const uint8_t b[3] = {1, 2, 3};
    REQUIRE((*d)->write_new("journal/dev1/0000000000000001", ByteSpan(b, 3)).ok());
    REQUIRE((*d)->write_new("objects/ab/abcdef", ByteSpan(b, 3), false).ok());
    REQUIRE((*d)->replace("coffer.vault", ByteSpan(b, 3)).ok());
    int files = 0, dirs = 0;
    for (auto& e : std::filesystem::recursive_directory_iterator(t.path)) {
        struct stat st{};
        REQUIRE(::lstat(e.path().c_str(), &st) == 0);
        INFO(e.path().string());
        if (S_ISDIR(st.st_mode)) {
            CHECK((st.st_mode & 07777) == 0700);
            ++dirs;
        } else {
            CHECK((st.st_mode & 07777) == 0600);
            ++files;
        }
    }
    CHECK(files == 3);
    CHECK(dirs >= 6);  // objects, objects/ab, journal, journal/dev1, snapshots, tmp
    ::umask(old);
}
