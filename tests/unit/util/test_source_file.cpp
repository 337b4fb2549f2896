#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>
#include <string>
#include <vector>

#include "coffer/util/source_file.h"
#include "../test_support.h"

using namespace coffer;

namespace {

// A file of n bytes whose every byte depends on its offset.
std::string make_file(const testing::TempDir& dir, size_t n) {
    std::string path = dir.str() + "/data";
    std::vector<uint8_t> bytes(n);
    for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<uint8_t>((i * 131 + i / 4096) & 0xff);
    int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    REQUIRE(fd >= 0);
    REQUIRE(::write(fd, bytes.data(), n) == static_cast<ssize_t>(n));
    REQUIRE(::fsync(fd) == 0);
    ::close(fd);
    return path;
}

bool expected_bytes(ByteSpan got, uint64_t off) {
    for (size_t i = 0; i < got.size(); ++i) {
        uint64_t at = off + i;
        if (got[i] != static_cast<uint8_t>((at * 131 + at / 4096) & 0xff)) return false;
    }
    return true;
}

void evict(int fd) { REQUIRE(::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0); }

bool direct_supported(const std::string& path) {
    int d = ::open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
    if (d < 0) return false;
    ::close(d);
    return true;
}

bool cachestat_works(int fd) {
    struct {
        uint64_t off, len;
    } range{0, 4096};
    uint64_t cs[5] = {};
    return ::syscall(451, fd, &range, cs, 0) == 0;
}

struct DirectOn {
    explicit DirectOn(bool on) { SourceFile::allow_direct(on); }
    ~DirectOn() { SourceFile::allow_direct(true); }
};

}  // namespace

TEST_CASE("source file: buffered and direct reads give the same bytes, at any offset, up to the end") {
    testing::TempDir dir;
    const size_t size = 3 * 1024 * 1024 + 777;  // not a multiple of any block
    std::string path = make_file(dir, size);
    const bool can_direct = direct_supported(path);
    struct Case {
        uint64_t off;
        size_t len;
    };
    const Case cases[] = {
        {0, 4096},                          // small: always buffered
        {13, 100},                          //
        {0, SourceFile::kDirectFrom},       // large, aligned
        {4097, SourceFile::kDirectFrom + 5},  // large, unaligned both ends
        {1024 * 1024 + 3, 1024 * 1024},     //
        {size - 300000, 300000},            // up to the very end
        {size - 300000, 400000},            // past the end: short
        {size + 10, SourceFile::kDirectFrom},  // wholly past the end: nothing
    };
    for (bool direct : {false, true}) {
        DirectOn mode(direct);
        SourceFile f(UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)));
        REQUIRE(f.get() >= 0);
        for (const Case& c : cases) {
            CAPTURE(direct);
            CAPTURE(c.off);
            CAPTURE(c.len);
            evict(f.get());
            const uint64_t before = SourceFile::direct_reads();
            auto r = f.read(c.off, c.len);
            REQUIRE(r.ok());
            const size_t want = c.off >= size ? 0 : std::min<size_t>(c.len, size - c.off);
            CHECK(r->size() == want);
            CHECK(expected_bytes(*r, c.off));
            const bool went_direct = SourceFile::direct_reads() > before;
            CHECK(went_direct == (direct && can_direct && c.len >= SourceFile::kDirectFrom));
        }
    }
}

TEST_CASE("source file: a large read of a range the page cache holds stays buffered") {
    testing::TempDir dir;
    std::string path = make_file(dir, 2 * 1024 * 1024);
    SourceFile f(UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC)));
    REQUIRE(f.get() >= 0);
    if (!cachestat_works(f.get()) || !direct_supported(path)) {
        MESSAGE("no cachestat(2) or no O_DIRECT here: every large read goes direct; not checked");
        return;
    }
    evict(f.get());
    REQUIRE(::posix_fadvise(f.get(), 0, 0, POSIX_FADV_RANDOM) == 0);  // warm only what is read
    std::vector<uint8_t> warm(1024 * 1024);
    REQUIRE(::pread(f.get(), warm.data(), warm.size(), 0) == static_cast<ssize_t>(warm.size()));
    uint64_t before = SourceFile::direct_reads();
    auto hot = f.read(4096, 512 * 1024);  // inside the warmed first MiB
    REQUIRE(hot.ok());
    CHECK(expected_bytes(*hot, 4096));
    CHECK(SourceFile::direct_reads() == before);
    auto cold = f.read(1024 * 1024 + 8192, 512 * 1024);  // the second MiB was never read
    REQUIRE(cold.ok());
    CHECK(expected_bytes(*cold, 1024 * 1024 + 8192));
    CHECK(SourceFile::direct_reads() == before + 1);
}
