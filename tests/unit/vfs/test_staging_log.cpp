// vfs::StagingLog on its own: where appends go, how records read back (by
// range, across frames), what authentication binds a frame to, rotation,
// removal of unused logs and a restart on an existing log.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <set>
#include <thread>
#include <vector>

#include "vfs/staging_log.h"
#include "../test_support.h"

using namespace coffer;
using vfs::kFrameSize;
using vfs::StagingLog;

namespace {

template <class R>
Code code_of(const R& r) {
    return r.ok() ? Code::internal : r.error().code;
}

Bytes pattern(size_t n, uint8_t salt) {
    Bytes b(n);
    for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i * 131 + (i >> 8) + salt);
    return b;
}

// A staging folder, a log started at 1 and a key and node to seal with.
struct LogEnv {
    coffer::testing::TempDir tmp;
    std::string dir = tmp.str() + "/staging";
    StagingLog log{dir};
    crypto::SecretBytes key;
    Id128 node;

    LogEnv() {
        crypto::init();
        std::filesystem::create_directory(dir);
        key = crypto::random_key();
        node = crypto::random_id();
        REQUIRE(log.start(1).ok());
    }
    std::string path(uint64_t id) const { return dir + "/" + std::to_string(id) + ".log"; }

    // Seals `data` as a new record, appends it; the piece that covers the
    // whole record at file offset `off`.
    index::StagingPiece put(ByteSpan data, uint64_t off = 0) {
        const uint64_t rec = log.next_record_id();
        Bytes sealed(StagingLog::sealed_size(data.size()));
        StagingLog::seal(key, node, rec, data, sealed.data());
        auto place = log.append(sealed);
        REQUIRE(place.ok());
        index::StagingPiece p;
        p.off = off;
        p.len = data.size();
        p.log = place->log;
        p.pos = place->pos;
        p.rec_id = rec;
        p.rec_len = data.size();
        return p;
    }

    // [from, to) of the file, read through piece `p`.
    Result<Bytes> get(const index::StagingPiece& p, uint64_t from, uint64_t to, const Id128* as_node = nullptr,
                      const crypto::SecretBytes* with_key = nullptr) {
        COFFER_ASSIGN(auto f, log.file(p.log));
        Bytes out(to - from);
        COFFER_TRY(StagingLog::read(*f, as_node ? *as_node : node, with_key ? *with_key : key, p, from, to,
                                    out.data()));
        return out;
    }

    void flip_byte(uint64_t log_id, uint64_t at) {
        int fd = ::open(path(log_id).c_str(), O_RDWR);
        REQUIRE(fd >= 0);
        uint8_t b = 0;
        REQUIRE(::pread(fd, &b, 1, static_cast<off_t>(at)) == 1);
        b ^= 0x40;
        REQUIRE(::pwrite(fd, &b, 1, static_cast<off_t>(at)) == 1);
        ::close(fd);
    }
};

Bytes slice(const Bytes& b, uint64_t from, uint64_t to) { return Bytes(b.begin() + from, b.begin() + to); }

}  // namespace

TEST_CASE("staging log: sealed_size adds one seal overhead per frame") {
    const uint64_t o = crypto::kSealOverhead;
    CHECK(StagingLog::sealed_size(0) == 0);
    CHECK(StagingLog::sealed_size(1) == 1 + o);
    CHECK(StagingLog::sealed_size(kFrameSize) == kFrameSize + o);
    CHECK(StagingLog::sealed_size(kFrameSize + 1) == kFrameSize + 1 + 2 * o);
    CHECK(StagingLog::sealed_size(3 * kFrameSize) == 3 * kFrameSize + 3 * o);
}

TEST_CASE("staging log: appends go to the current log at increasing positions") {
    LogEnv e;
    CHECK(e.log.current() == 1);
    auto a = e.log.append(pattern(100, 1));
    auto b = e.log.append(pattern(7, 2));
    auto c = e.log.append(pattern(3000, 3));
    REQUIRE(a.ok());
    REQUIRE(b.ok());
    REQUIRE(c.ok());
    CHECK(a->log == 1);
    CHECK(b->log == 1);
    CHECK(c->log == 1);
    CHECK(a->pos == 0);
    CHECK(b->pos == 100);
    CHECK(c->pos == 107);
    CHECK(e.log.datasync().ok());
    CHECK(std::filesystem::file_size(e.path(1)) == 3107);
}

TEST_CASE("staging log: a record reads back exactly at unaligned ranges inside and across frames") {
    LogEnv e;
    (void)e.put(pattern(333, 9));  // the record under test does not start at 0
    const uint64_t len = 2 * kFrameSize + 1234;
    const uint64_t F = 5000;  // where the record sits in the file
    const Bytes data = pattern(len, 5);
    const auto p = e.put(data, F);
    CHECK(p.pos == StagingLog::sealed_size(333));

    const std::vector<std::pair<uint64_t, uint64_t>> ranges = {
        {0, len},                                  // whole
        {0, 1},                                    // first byte
        {len - 1, len},                            // last byte
        {5, 100},                                  // inside frame 0
        {kFrameSize - 7, kFrameSize + 9},          // across frames 0 and 1
        {kFrameSize, 2 * kFrameSize},              // exactly frame 1
        {3, 2 * kFrameSize + 100},                 // partial, whole, partial
        {2 * kFrameSize + 1, len - 3},             // inside the short last frame
        {kFrameSize + 17, len},                    // to the end from inside frame 1
    };
    for (auto [a, b] : ranges) {
        CAPTURE(a);
        CAPTURE(b);
        auto got = e.get(p, F + a, F + b);
        REQUIRE(got.ok());
        CHECK(*got == slice(data, a, b));
    }

    SUBCASE("a piece that starts inside its record (skip)") {
        index::StagingPiece q = p;
        q.skip = kFrameSize - 10;
        q.len = len - q.skip;
        q.off = 70000;
        auto got = e.get(q, q.off, q.off + 30);
        REQUIRE(got.ok());
        CHECK(*got == slice(data, q.skip, q.skip + 30));
        got = e.get(q, q.off + 12, q.end());
        REQUIRE(got.ok());
        CHECK(*got == slice(data, q.skip + 12, len));
    }
}

TEST_CASE("staging log: a flipped byte in the log is corrupt, in that frame only") {
    LogEnv e;
    const uint64_t len = 2 * kFrameSize + 50;
    const Bytes data = pattern(len, 1);
    const auto p = e.put(data);
    const uint64_t stride = kFrameSize + crypto::kSealOverhead;
    e.flip_byte(1, p.pos + stride + 1000);  // inside frame 1's ciphertext

    CHECK(code_of(e.get(p, kFrameSize + 5, kFrameSize + 6)) == Code::corrupt);
    CHECK(code_of(e.get(p, 0, len)) == Code::corrupt);
    CHECK(code_of(e.get(p, kFrameSize - 1, kFrameSize + 1)) == Code::corrupt);
    // Frames 0 and 2 are untouched.
    auto f0 = e.get(p, 10, 20);
    REQUIRE(f0.ok());
    CHECK(*f0 == slice(data, 10, 20));
    auto f2 = e.get(p, 2 * kFrameSize, len);
    REQUIRE(f2.ok());
    CHECK(*f2 == slice(data, 2 * kFrameSize, len));
}

TEST_CASE("staging log: a truncated log is corrupt") {
    LogEnv e;
    const Bytes data = pattern(kFrameSize + 10, 4);
    const auto p = e.put(data);
    REQUIRE(::truncate(e.path(1).c_str(), static_cast<off_t>(p.pos + StagingLog::sealed_size(data.size()) - 1)) ==
            0);
    CHECK(code_of(e.get(p, kFrameSize, kFrameSize + 10)) == Code::corrupt);
}

TEST_CASE("staging log: frames are bound to node, record id and key") {
    LogEnv e;
    const Bytes data = pattern(kFrameSize + 10, 2);
    const auto p = e.put(data);
    REQUIRE(e.get(p, 0, data.size()).ok());

    const Id128 other = crypto::random_id();
    CHECK(code_of(e.get(p, 0, 10, &other)) == Code::corrupt);
    CHECK(code_of(e.get(p, kFrameSize, kFrameSize + 10, &other)) == Code::corrupt);

    index::StagingPiece q = p;
    q.rec_id = p.rec_id + 1;
    CHECK(code_of(e.get(q, 0, 10)) == Code::corrupt);

    const auto k2 = crypto::random_key();
    CHECK(code_of(e.get(p, 0, 10, nullptr, &k2)) == Code::corrupt);

    SUBCASE("frames are bound to their index: two frames swapped do not open") {
        Bytes sealed(StagingLog::sealed_size(2 * kFrameSize));
        const uint64_t rec = e.log.next_record_id();
        const Bytes two = pattern(2 * kFrameSize, 3);
        StagingLog::seal(e.key, e.node, rec, two, sealed.data());
        const size_t stride = kFrameSize + crypto::kSealOverhead;
        std::swap_ranges(sealed.begin(), sealed.begin() + stride, sealed.begin() + stride);
        auto place = e.log.append(sealed);
        REQUIRE(place.ok());
        index::StagingPiece s;
        s.len = s.rec_len = two.size();
        s.log = place->log;
        s.pos = place->pos;
        s.rec_id = rec;
        CHECK(code_of(e.get(s, 0, 10)) == Code::corrupt);
        CHECK(code_of(e.get(s, kFrameSize, kFrameSize + 10)) == Code::corrupt);
    }
}

TEST_CASE("staging log: rotate moves appends to the next log; the old one stays readable") {
    LogEnv e;
    const Bytes d1 = pattern(500, 1);
    const auto p1 = e.put(d1);
    REQUIRE(e.log.rotate().ok());
    CHECK(e.log.current() == 2);
    const Bytes d2 = pattern(kFrameSize + 3, 2);
    const auto p2 = e.put(d2);
    CHECK(p2.log == 2);
    CHECK(p2.pos == 0);
    CHECK(std::filesystem::file_size(e.path(1)) == StagingLog::sealed_size(d1.size()));

    auto r1 = e.get(p1, 0, d1.size());
    REQUIRE(r1.ok());
    CHECK(*r1 == d1);
    auto r2 = e.get(p2, 0, d2.size());
    REQUIRE(r2.ok());
    CHECK(*r2 == d2);

    REQUIRE(e.log.rotate().ok());
    CHECK(e.log.current() == 3);
    auto again = e.get(p1, 0, d1.size());
    REQUIRE(again.ok());
    CHECK(*again == d1);
}

TEST_CASE("staging log: file() of a missing log is corrupt") {
    LogEnv e;
    CHECK(code_of(e.log.file(7)) == Code::corrupt);
    CHECK(code_of(e.log.file(0)) == Code::corrupt);
    CHECK(e.log.file(1).ok());
}

TEST_CASE("staging log: drop_unused removes exactly the unused logs before the current one") {
    LogEnv e;
    std::vector<index::StagingPiece> pieces;
    for (int i = 0; i < 4; ++i) {
        pieces.push_back(e.put(pattern(100, static_cast<uint8_t>(i))));
        REQUIRE(e.log.rotate().ok());
    }
    REQUIRE(e.log.current() == 5);
    (void)e.put(pattern(10, 9));
    std::set<uint64_t> asked;
    e.log.drop_unused([&](uint64_t id) {
        asked.insert(id);
        return id == 2 || id == 4;
    });
    CHECK(asked == std::set<uint64_t>{1, 2, 3, 4});
    CHECK_FALSE(std::filesystem::exists(e.path(1)));
    CHECK(std::filesystem::exists(e.path(2)));
    CHECK_FALSE(std::filesystem::exists(e.path(3)));
    CHECK(std::filesystem::exists(e.path(4)));
    CHECK(std::filesystem::exists(e.path(5)));
    // What is dropped is gone for reads too; what is kept still reads.
    CHECK(code_of(e.log.file(1)) == Code::corrupt);
    CHECK(code_of(e.log.file(3)) == Code::corrupt);
    CHECK(e.get(pieces[1], 0, 100).ok());
    CHECK(e.get(pieces[3], 0, 100).ok());

    // Logs already gone are not asked about again; the current one never is.
    asked.clear();
    e.log.drop_unused([&](uint64_t id) {
        asked.insert(id);
        return false;
    });
    CHECK(asked == std::set<uint64_t>{2, 4});
    CHECK_FALSE(std::filesystem::exists(e.path(2)));
    CHECK(std::filesystem::exists(e.path(5)));
}

TEST_CASE("staging log: record ids never repeat within a session, and sessions start apart") {
    LogEnv e;
    std::vector<std::vector<uint64_t>> got(4);
    std::vector<std::thread> threads;
    for (auto& g : got)
        threads.emplace_back([&e, &g] {
            for (int i = 0; i < 5000; ++i) g.push_back(e.log.next_record_id());
        });
    for (auto& t : threads) t.join();
    std::set<uint64_t> all;
    for (auto& g : got) all.insert(g.begin(), g.end());
    CHECK(all.size() == 4 * 5000);
    for (uint64_t id : all) REQUIRE(id < (uint64_t(1) << 63) + 4 * 5000);

    // A new session starts at a fresh random point, not where the last began.
    StagingLog other(e.dir);
    REQUIRE(other.start(1).ok());
    StagingLog third(e.dir);
    REQUIRE(third.start(1).ok());
    CHECK(other.next_record_id() != third.next_record_id());
}

TEST_CASE("staging log: a restart on an existing log appends after its end") {
    LogEnv e;
    const Bytes d1 = pattern(kFrameSize + 77, 1);
    const auto p1 = e.put(d1);
    const uint64_t end = p1.pos + StagingLog::sealed_size(d1.size());
    REQUIRE(e.log.datasync().ok());

    StagingLog again(e.dir);
    REQUIRE(again.start(1).ok());
    CHECK(again.current() == 1);
    auto place = again.append(pattern(64, 2));
    REQUIRE(place.ok());
    CHECK(place->log == 1);
    CHECK(place->pos == end);

    // The earlier session's record is intact and readable through the new one.
    auto f = again.file(1);
    REQUIRE(f.ok());
    Bytes out(d1.size());
    REQUIRE(StagingLog::read(**f, e.node, e.key, p1, 0, d1.size(), out.data()).ok());
    CHECK(out == d1);
}
