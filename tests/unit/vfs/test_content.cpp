// File content through the core: staging frames (16 KiB), extents (4 MiB),
// sparse and huge files, and a random-write model across publishes.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>

#include <chrono>
#include <filesystem>
#include <random>

#include "core_fixture.h"

using namespace coffer;
using namespace coffer::testing;
using vfs::Ino;
using vfs::kRootIno;

namespace {
constexpr uint64_t KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;
constexpr uint64_t kFrame = 16 * KiB;
constexpr uint64_t kExtent = 4 * MiB;

// Bytes that differ by position and by `seed`, so misplaced data shows.
Bytes pattern(size_t len, uint32_t seed) {
    Bytes b(len);
    uint32_t x = seed * 2654435761u + 1;
    for (auto& c : b) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        c = static_cast<uint8_t>(x);
    }
    return b;
}

uint64_t dir_bytes(const std::string& path) {
    uint64_t total = 0;
    for (auto& e : std::filesystem::recursive_directory_iterator(path)) {
        struct stat st;
        if (e.is_regular_file() && ::stat(e.path().c_str(), &st) == 0) total += uint64_t(st.st_blocks) * 512;
    }
    return total;
}

// A file and its expected bytes.
struct Model {
    CoreFixture& f;
    Ino ino;
    Bytes bytes;
    Model(CoreFixture& fx, std::string_view name) : f(fx), ino(fx.mkfile(kRootIno, name)) {}
    void write(uint64_t off, const Bytes& data) {
        f.write_at(ino, off, data);
        if (bytes.size() < off + data.size()) bytes.resize(off + data.size(), 0);
        std::copy(data.begin(), data.end(), bytes.begin() + off);
    }
    void truncate(uint64_t size) {
        f.truncate(ino, size);
        bytes.resize(size, 0);
    }
    void punch(uint64_t off, uint64_t len) {
        REQUIRE(f.fs->fallocate(ino, 0, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, len).ok());
        for (uint64_t x = off; x < off + len && x < bytes.size(); ++x) bytes[x] = 0;
    }
    // Reads [off, off+len) and compares with the model (short at the end).
    void check(uint64_t off, uint64_t len) {
        Bytes got = f.read_at(ino, off, len);
        uint64_t expect_len = off >= bytes.size() ? 0 : std::min<uint64_t>(len, bytes.size() - off);
        REQUIRE(got.size() == expect_len);
        if (expect_len == 0) return;
        bool same = std::equal(got.begin(), got.end(), bytes.begin() + off);
        if (!same) {
            size_t i = 0;
            while (got[i] == bytes[off + i]) ++i;
            FAIL("first difference at byte " << off + i << " (read at " << off << " len " << len << ")");
        }
    }
    void check_all() {
        CHECK(f.attr(ino).size == bytes.size());
        check(0, bytes.size() + 1);
    }
};
}  // namespace

TEST_CASE("content: writes and reads around 16 KiB frame edges") {
    CoreFixture f;
    Model m(f, "frames");
    // One record spanning several frames, then writes that start and end at
    // and next to frame edges.
    m.write(0, pattern(5 * kFrame + 3, 1));
    for (uint64_t off : {kFrame - 1, kFrame, kFrame + 1, 2 * kFrame - 1, 3 * kFrame, 4 * kFrame + 7})
        m.write(off, pattern(1, static_cast<uint32_t>(off)));
    m.write(kFrame - 10, pattern(20, 2));             // straddles one edge
    m.write(2 * kFrame - 5, pattern(kFrame + 10, 3)); // straddles two edges
    m.write(5 * kFrame, pattern(kFrame, 4));          // exactly one frame, extends the file
    m.check_all();
    for (uint64_t off : {uint64_t{0}, kFrame - 1, kFrame, kFrame + 1, 2 * kFrame - 1, 3 * kFrame - 2, 6 * kFrame - 1})
        for (uint64_t len : {uint64_t{1}, uint64_t{2}, kFrame - 1, kFrame, kFrame + 1, 3 * kFrame}) m.check(off, len);
    f.publish();
    m.check_all();
    for (uint64_t off : {uint64_t{0}, kFrame - 1, kFrame, kFrame + 1, 6 * kFrame - 1})
        for (uint64_t len : {uint64_t{1}, kFrame, kFrame + 1}) m.check(off, len);
}

TEST_CASE("content: writes and reads around 4 MiB extent edges") {
    CoreFixture f;
    REQUIRE(f.header.extent_size == kExtent);
    REQUIRE(f.header.block_size == kFrame);
    Model m(f, "extents");
    m.write(kExtent - 1, pattern(2, 1));            // last byte of extent 0, first of extent 1
    m.write(kExtent + 1, pattern(3, 2));
    m.write(2 * kExtent - 100, pattern(200, 3));    // across the second edge
    m.write(kExtent - 3 * kFrame, pattern(6 * kFrame, 4));
    m.check_all();
    for (uint64_t off : {kExtent - 1, kExtent, kExtent + 1, 2 * kExtent - 1})
        for (uint64_t len : {uint64_t{1}, uint64_t{2}, kFrame, kExtent}) m.check(off, len);
    f.publish();
    m.check_all();
    // Writes on top of published extents, again at the edges.
    m.write(kExtent - 1, pattern(1, 5));
    m.write(kExtent, pattern(1, 6));
    m.write(kExtent + kFrame - 1, pattern(kFrame + 2, 7));
    m.check_all();
    for (uint64_t off : {kExtent - kFrame, kExtent - 1, kExtent, kExtent + kFrame})
        for (uint64_t len : {uint64_t{1}, kFrame + 1, 2 * kExtent}) m.check(off, len);
    f.publish();
    m.check_all();
    // A whole extent written at once, then the file read in one go.
    m.write(2 * kExtent, pattern(kExtent, 8));
    f.publish();
    m.check_all();
}

TEST_CASE("content: an overwrite inside a previous write") {
    CoreFixture f;
    Model m(f, "over");
    m.write(0, pattern(100 * KiB, 1));
    m.write(30 * KiB + 5, pattern(7, 2));
    m.write(50 * KiB, pattern(kFrame, 3));
    m.write(50 * KiB + 3, pattern(1, 4));
    m.write(0, pattern(1, 5));
    m.check_all();
    f.publish();
    m.write(30 * KiB, pattern(20, 6));
    m.check_all();
    f.publish();
    m.check_all();
}

TEST_CASE("content: truncate down then up reads zeros") {
    CoreFixture f;
    Model m(f, "trunc");
    m.write(0, pattern(3 * kFrame, 1));
    m.truncate(kFrame + 5);
    m.truncate(3 * kFrame);
    m.check_all();
    m.write(0, pattern(2 * kExtent + 100, 2));
    f.publish();
    m.truncate(kExtent + 10);  // inside a published extent
    m.check_all();
    m.truncate(2 * kExtent + 100);
    m.check_all();
    m.truncate(kExtent);       // at an extent edge
    m.truncate(kExtent + 1);
    m.check_all();
    f.publish();
    m.check_all();
    m.truncate(0);
    m.truncate(100);
    m.check_all();
    f.publish();
    m.check_all();
}

// A truncate that ends inside a published extent hides the stale tail with a
// zero piece at [size, old extent end). Publish must re-seal that extent
// short and drop the zero piece: otherwise the bytes past the new size stay
// in the vault, the file stays dirty for ever, and growing the file again on
// another device (which only has the extents) shows the truncated bytes.
TEST_CASE("content: truncate down, publish, grow reads zeros on this and on a new device") {
    CoreFixture f;
    Ino file = f.mkfile(kRootIno, "t", std::string(100, 'A'));
    f.publish();
    f.truncate(file, 50);
    auto p1 = f.publish();
    CHECK(p1.ops > 0);
    // Nothing changed since: a second publish has nothing to do.
    auto p2 = f.publish();
    CHECK(p2.ops == 0);
    f.truncate(file, 100);
    CHECK(f.read_str(file) == std::string(50, 'A') + std::string(50, '\0'));

    // The new device sees the truncated file; growing it must read zeros too.
    f.truncate(file, 50);
    f.publish();
    TempDir state2;
    auto fs2 = f.open_fs(state2.str());
    auto a = fs2->lookup(kRootIno, "t");
    REQUIRE(a.ok());
    CHECK(a->size == 50);
    vfs::SetAttrReq grow;
    grow.size = 100;
    REQUIRE(fs2->setattr(a->ino, grow, f.ctx).ok());
    Bytes got(100);
    auto r = fs2->read(a->ino, 0, 0, 100, got.data());
    REQUIRE(r.ok());
    CHECK(std::string(got.begin(), got.end()) == std::string(50, 'A') + std::string(50, '\0'));
}

TEST_CASE("content: a file over 4 GiB written sparsely takes no time and no space") {
    CoreFixture f;
    auto t0 = std::chrono::steady_clock::now();
    Model m(f, "big");
    const uint64_t off = 5 * GiB + 12345;
    Bytes data = pattern(3 * kFrame, 1);
    f.write_at(m.ino, off, data);
    vfs::Attr a = f.attr(m.ino);
    CHECK(a.size == off + data.size());
    CHECK(a.blocks * 512 <= 2 * data.size());
    CHECK(f.read_at(m.ino, off - 5, 10) == [&] {
        Bytes e(5, 0);
        e.insert(e.end(), data.begin(), data.begin() + 5);
        return e;
    }());
    CHECK(f.read_at(m.ino, 4 * GiB, 4096) == Bytes(4096, 0));
    CHECK(f.read_at(m.ino, off, data.size()) == data);
    CHECK(f.read_at(m.ino, off + data.size() - 1, 100).size() == 1);
    CHECK(dir_bytes(f.state_dir.str()) < 64 * MiB);
    f.publish();
    CHECK(dir_bytes(f.vault_dir.str()) < 16 * MiB);
    a = f.attr(m.ino);
    CHECK(a.blocks * 512 <= kExtent);
    CHECK(f.read_at(m.ino, off, data.size()) == data);
    CHECK(f.read_at(m.ino, GiB, 10) == Bytes(10, 0));
    auto took = std::chrono::steady_clock::now() - t0;
    CHECK(took < std::chrono::seconds(10));
}

TEST_CASE("content: a 1-petabyte truncate takes no space") {
    CoreFixture f;
    auto t0 = std::chrono::steady_clock::now();
    Ino file = f.mkfile(kRootIno, "peta", "head");
    const uint64_t PB = 1ull << 50;
    f.truncate(file, PB);
    vfs::Attr a = f.attr(file);
    CHECK(a.size == PB);
    CHECK(a.blocks <= 8);
    CHECK(f.read_at(file, 0, 6) == Bytes{'h', 'e', 'a', 'd', 0, 0});
    CHECK(f.read_at(file, PB - 10, 100) == Bytes(10, 0));
    CHECK(f.read_at(file, PB, 100).empty());
    f.write_at(file, PB - 3, as_bytes("end"));
    CHECK(f.read_at(file, PB - 4, 4) == Bytes{0, 'e', 'n', 'd'});
    CHECK(f.attr(file).size == PB);
    f.publish();
    a = f.attr(file);
    CHECK(a.size == PB);
    CHECK(a.blocks * 512 <= 2 * kExtent);
    CHECK(f.read_at(file, PB - 4, 4) == Bytes{0, 'e', 'n', 'd'});
    CHECK(f.read_at(file, PB / 2, 16) == Bytes(16, 0));
    CHECK(dir_bytes(f.vault_dir.str()) < 16 * MiB);
    CHECK(dir_bytes(f.state_dir.str()) < 64 * MiB);
    // Truncating back down is as cheap.
    f.truncate(file, 2);
    CHECK(f.read_str(file) == "he");
    auto took = std::chrono::steady_clock::now() - t0;
    CHECK(took < std::chrono::seconds(10));
}

TEST_CASE("content: random writes agree with a byte model across publishes") {
    CoreFixture f;
    std::mt19937_64 rng(20240611);
    Model m(f, "random");
    const uint64_t span = 3 * kExtent + 3 * kFrame;  // reaches into a fourth extent
    // Offsets near the interesting edges more often than anywhere else.
    auto pick_off = [&]() -> uint64_t {
        switch (rng() % 4) {
            case 0: return rng() % span;
            case 1: return (rng() % (span / kFrame)) * kFrame + (rng() % 5) - 2 + kFrame;
            case 2: return (1 + rng() % 3) * kExtent + (rng() % 9) - 4;
            default: return m.bytes.empty() ? 0 : rng() % m.bytes.size();
        }
    };
    auto pick_len = [&]() -> uint64_t {
        switch (rng() % 5) {
            case 0: return 1 + rng() % 16;
            case 1: return kFrame - 2 + rng() % 5;
            case 2: return 1 + rng() % (3 * kFrame);
            case 3: return 1 + rng() % 512;
            default: return 1 + rng() % 4096;
        }
    };
    auto run = [&](int ops, uint32_t seed_base) {
        for (int i = 0; i < ops; ++i) {
            uint64_t kind = rng() % 100;
            if (kind < 70) {
                m.write(pick_off(), pattern(pick_len(), seed_base + i));
            } else if (kind < 75) {
                uint64_t sz = m.bytes.empty() ? 0 : rng() % (m.bytes.size() + 2 * kFrame);
                m.truncate(std::min(sz, span));
            } else if (kind < 80) {
                m.punch(pick_off(), pick_len());
            } else {
                uint64_t off = pick_off();
                m.check(off, pick_len());
            }
            if (i % 500 == 499) m.check_all();
        }
        m.check_all();
    };
    run(2000, 1);
    auto p1 = f.publish();
    CHECK(p1.ops > 0);
    CHECK(sync::status(f.fs->replica())->staged_bytes == 0);
    m.check_all();  // now from objects
    run(1500, 100000);
    f.publish();
    m.check_all();
    run(500, 200000);
    m.check_all();
    f.publish();
    m.check_all();
    // A new device rebuilt from the vault reads the same bytes.
    TempDir state2;
    auto fs2 = f.open_fs(state2.str());
    auto a = fs2->lookup(kRootIno, "random");
    REQUIRE(a.ok());
    REQUIRE(a->size == m.bytes.size());
    Bytes got(a->size);
    auto r = fs2->read(a->ino, 0, 0, got.size(), got.data());
    REQUIRE(r.ok());
    CHECK(got == m.bytes);
}

TEST_CASE("content: reads see writes of other handles and blocks count stored bytes") {
    CoreFixture f;
    auto c = f.fs->create(kRootIno, "h", 0644, O_RDWR, f.ctx);
    REQUIRE(c.ok());
    auto fh2 = f.fs->open(c->attr.ino, O_RDONLY);
    REQUIRE(fh2.ok());
    REQUIRE(f.fs->write(c->attr.ino, c->fh, 0, pattern(10000, 1)).ok());
    Bytes out(10000);
    auto r = f.fs->read(c->attr.ino, *fh2, 0, out.size(), out.data());
    REQUIRE(r.ok());
    CHECK(*r == 10000);
    CHECK(out == pattern(10000, 1));
    CHECK(f.attr(c->attr.ino).blocks == (10000 + 511) / 512);
    // A zero-length read and a read past the end return nothing.
    CHECK(*f.fs->read(c->attr.ino, *fh2, 0, 0, out.data()) == 0);
    CHECK(*f.fs->read(c->attr.ino, *fh2, 20000, 10, out.data()) == 0);
    REQUIRE(f.fs->release(c->attr.ino, c->fh).ok());
    REQUIRE(f.fs->release(c->attr.ino, *fh2).ok());
}
