// index.db and its WAL are 0600 whatever the umask (SQLite alone would make
// them 0644 less the umask).
#include <doctest/doctest.h>

#include <sys/stat.h>

#include "coffer/index/index.h"
#include "../test_support.h"

using namespace coffer;

TEST_CASE("index: index.db and its WAL are created 0600 under umask 0; an older 0644 one is narrowed") {
    mode_t old = ::umask(0);
    testing::TempDir t;
    std::string path = t.str() + "/index.db";
    auto mode = [](const std::string& p) {
        struct stat st{};
        REQUIRE(::stat(p.c_str(), &st) == 0);
        return st.st_mode & 07777;
    };
    {
        auto ix = index::Index::open(path);
        REQUIRE(ix.ok());
        CHECK(mode(path) == 0600);
        CHECK(mode(path + "-wal") == 0600);
    }
    REQUIRE(::chmod(path.c_str(), 0644) == 0);
    {
        auto ix = index::Index::open(path);
        REQUIRE(ix.ok());
        CHECK(mode(path) == 0600);
        CHECK(mode(path + "-wal") == 0600);
    }
    ::umask(old);
}
