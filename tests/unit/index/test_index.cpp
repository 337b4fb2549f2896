// The local index (SQLite): staging map arithmetic, dirents, xattrs,
// extents, meta, and the schema version check.
#include <doctest/doctest.h>

#include <algorithm>
#include <vector>

#include "index/db.h"
#include "coffer/index/index.h"
#include "../test_support.h"

using namespace coffer;
using namespace coffer::index;
using coffer::testing::TempDir;

namespace {

struct IndexFixture {
    TempDir dir;
    std::unique_ptr<Index> ix;
    IndexFixture() {
        auto r = Index::open(dir.str() + "/index.db");
        REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message()));
        ix = std::move(r).value();
    }
    std::vector<StagingPiece> all(Ino ino = 7) {
        auto r = ix->all_pieces(ino);
        REQUIRE(r.ok());
        return *r;
    }
    std::vector<StagingPiece> range(uint64_t off, uint64_t end, Ino ino = 7) {
        auto r = ix->pieces(ino, off, end);
        REQUIRE(r.ok());
        return *r;
    }
    void put(const StagingPiece& p, Ino ino = 7) { REQUIRE(ix->put_piece(ino, p).ok()); }
};

// A data piece for a record written at `off` (skip 0, the whole record).
StagingPiece data(uint64_t off, uint64_t len, uint64_t rec, uint64_t log = 1) {
    return StagingPiece{off, len, log, rec * 1000, rec, len, 0};
}
StagingPiece zeros(uint64_t off, uint64_t len) { return StagingPiece{off, len, 0, 0, 0, 0, 0}; }

// What byte `x` of the file comes from: (record, offset in record), or (0, 0) for zeros/none.
std::pair<uint64_t, uint64_t> source_of(const std::vector<StagingPiece>& ps, uint64_t x) {
    for (const auto& p : ps)
        if (p.off <= x && x < p.end()) return {p.log ? p.rec_id : 0, p.log ? p.skip + (x - p.off) : 0};
    return {0, 0};
}

Id128 id_of(uint8_t seed) {
    Id128 id;
    for (size_t i = 0; i < id.b.size(); ++i) id.b[i] = static_cast<uint8_t>(seed + i);
    return id;
}
Bytes b(std::string_view s) { return Bytes(s.begin(), s.end()); }

}  // namespace

TEST_CASE("index: put_piece into an empty map and next to other pieces") {
    IndexFixture f;
    f.put(data(100, 50, 1));
    f.put(data(150, 50, 2));  // touching on the right: no trimming
    f.put(data(0, 100, 3));   // touching on the left
    auto ps = f.all();
    REQUIRE(ps.size() == 3);
    CHECK(ps[0] == data(0, 100, 3));
    CHECK(ps[1] == data(100, 50, 1));
    CHECK(ps[2] == data(150, 50, 2));
    // Another inode's map is separate.
    CHECK(f.all(8).empty());
}

TEST_CASE("index: put_piece overlapping on the left trims the old piece's start") {
    IndexFixture f;
    f.put(data(100, 100, 1));
    f.put(data(50, 100, 2));  // covers [50,150): the old keeps [150,200) at skip 50
    auto ps = f.all();
    REQUIRE(ps.size() == 2);
    CHECK(ps[0] == data(50, 100, 2));
    CHECK(ps[1] == StagingPiece{150, 50, 1, 1000, 1, 100, 50});
}

TEST_CASE("index: put_piece overlapping on the right trims the old piece's end") {
    IndexFixture f;
    f.put(data(100, 100, 1));
    f.put(data(150, 100, 2));
    auto ps = f.all();
    REQUIRE(ps.size() == 2);
    CHECK(ps[0] == StagingPiece{100, 50, 1, 1000, 1, 100, 0});
    CHECK(ps[1] == data(150, 100, 2));
}

TEST_CASE("index: put_piece inside a piece splits it in two") {
    IndexFixture f;
    f.put(data(100, 100, 1));
    f.put(data(120, 10, 2));
    auto ps = f.all();
    REQUIRE(ps.size() == 3);
    CHECK(ps[0] == StagingPiece{100, 20, 1, 1000, 1, 100, 0});
    CHECK(ps[1] == data(120, 10, 2));
    CHECK(ps[2] == StagingPiece{130, 70, 1, 1000, 1, 100, 30});
    // Splitting a piece that was already trimmed keeps adding to its skip.
    f.put(data(150, 5, 3));
    ps = f.all();
    REQUIRE(ps.size() == 5);
    CHECK(ps[3] == data(150, 5, 3));
    CHECK(ps[4] == StagingPiece{155, 45, 1, 1000, 1, 100, 55});
    // The same start replaces exactly.
    f.put(data(120, 10, 4));
    CHECK(f.all()[1] == data(120, 10, 4));
}

TEST_CASE("index: put_piece covering several pieces removes and trims them") {
    IndexFixture f;
    f.put(data(0, 10, 1));
    f.put(data(10, 10, 2));
    f.put(data(20, 10, 3));
    f.put(data(30, 10, 4));
    f.put(data(40, 10, 5));
    f.put(data(15, 20, 6));  // [15,35): trims 2 and 4, removes 3
    auto ps = f.all();
    REQUIRE(ps.size() == 5);
    CHECK(ps[0] == data(0, 10, 1));
    CHECK(ps[1] == StagingPiece{10, 5, 1, 2000, 2, 10, 0});
    CHECK(ps[2] == data(15, 20, 6));
    CHECK(ps[3] == StagingPiece{35, 5, 1, 4000, 4, 10, 5});
    CHECK(ps[4] == data(40, 10, 5));
    // Covering everything exactly leaves one piece.
    f.put(data(0, 50, 7));
    ps = f.all();
    REQUIRE(ps.size() == 1);
    CHECK(ps[0] == data(0, 50, 7));
}

TEST_CASE("index: zero pieces (log 0) split and are split like data pieces") {
    IndexFixture f;
    f.put(zeros(0, 100));
    f.put(data(40, 20, 1));
    auto ps = f.all();
    REQUIRE(ps.size() == 3);
    CHECK(ps[0] == zeros(0, 40));
    CHECK(ps[1] == data(40, 20, 1));
    CHECK(ps[2] == StagingPiece{60, 40, 0, 0, 0, 0, 0});  // a zero piece has no skip to adjust
    f.put(zeros(50, 5));  // a hole punched into a data piece
    ps = f.all();
    REQUIRE(ps.size() == 5);
    CHECK(ps[1] == StagingPiece{40, 10, 1, 1000, 1, 20, 0});
    CHECK(ps[2] == zeros(50, 5));
    CHECK(ps[3] == StagingPiece{55, 5, 1, 1000, 1, 20, 15});
    auto staged = f.ix->staged_bytes();
    REQUIRE(staged.ok());
    CHECK(*staged == 15);  // zero pieces hold no bytes
    auto alloc = f.ix->allocated(7);
    REQUIRE(alloc.ok());
    CHECK(*alloc == 15);
}

// A zero-length piece is never produced by the core (writes of 0 bytes and
// empty fallocate ranges return early), but put_piece's contract covers it.
TEST_CASE("index: put_piece with a zero-length piece inside another keeps both halves") {
    IndexFixture f;
    f.put(data(100, 100, 1));
    f.put(data(150, 0, 2));
    // Bytes [100,200) must still come from record 1 at the same offsets.
    auto ps = f.all();
    for (uint64_t x : {uint64_t{100}, uint64_t{149}, uint64_t{150}, uint64_t{199}}) {
        auto src = source_of(ps, x);
        CHECK_MESSAGE(src.first == 1, "byte " << x);
        CHECK(src.second == x - 100);
    }
}

TEST_CASE("index: put_piece agrees with a byte model over random writes") {
    IndexFixture f;
    constexpr uint64_t kLen = 512;
    using Src = std::pair<uint64_t, uint64_t>;
    std::vector<Src> model(kLen, Src{0, 0});
    uint64_t seed = 12345;
    auto rnd = [&] {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        return seed >> 33;
    };
    for (uint64_t rec = 1; rec <= 400; ++rec) {
        uint64_t off = rnd() % kLen, len = 1 + rnd() % 64;
        if (off + len > kLen) len = kLen - off;
        bool z = rnd() % 5 == 0;
        f.put(z ? zeros(off, len) : data(off, len, rec));
        for (uint64_t x = off; x < off + len; ++x) model[x] = z ? Src{0, 0} : Src{rec, x - off};
        if (rec % 50 == 0) {
            auto ps = f.all();
            for (size_t i = 1; i < ps.size(); ++i) REQUIRE(ps[i - 1].end() <= ps[i].off);
            for (uint64_t x = 0; x < kLen; ++x) REQUIRE(source_of(ps, x) == model[x]);
        }
    }
}

TEST_CASE("index: cut_pieces drops pieces past the size and trims the straddling one") {
    IndexFixture f;
    f.put(data(0, 10, 1));
    f.put(data(10, 10, 2));
    f.put(zeros(20, 10));
    f.put(data(30, 10, 3));
    REQUIRE(f.ix->cut_pieces(7, 25).ok());
    auto ps = f.all();
    REQUIRE(ps.size() == 3);
    CHECK(ps[2] == zeros(20, 5));
    REQUIRE(f.ix->cut_pieces(7, 15).ok());
    ps = f.all();
    REQUIRE(ps.size() == 2);
    CHECK(ps[1] == StagingPiece{10, 5, 1, 2000, 2, 10, 0});
    // A cut at a piece boundary removes the pieces from there on.
    REQUIRE(f.ix->cut_pieces(7, 10).ok());
    ps = f.all();
    REQUIRE(ps.size() == 1);
    CHECK(ps[0] == data(0, 10, 1));
    // A cut past the end changes nothing; a cut at 0 empties the map.
    REQUIRE(f.ix->cut_pieces(7, 1000).ok());
    CHECK(f.all().size() == 1);
    REQUIRE(f.ix->cut_pieces(7, 0).ok());
    CHECK(f.all().empty());
}

TEST_CASE("index: cut_pieces and pieces at huge offsets") {
    IndexFixture f;
    const uint64_t big = 1ull << 50;
    f.put(data(big - 5, 10, 1));
    f.put(data(0, 10, 2));
    auto ps = f.range(big - 1, big + 1);
    REQUIRE(ps.size() == 1);
    CHECK(ps[0].rec_id == 1);
    REQUIRE(f.ix->cut_pieces(7, big).ok());
    ps = f.all();
    REQUIRE(ps.size() == 2);
    CHECK(ps[1] == StagingPiece{big - 5, 5, 1, 1000, 1, 10, 0});
}

TEST_CASE("index: pieces() returns the pieces overlapping a range, sorted") {
    IndexFixture f;
    f.put(data(10, 10, 1));  // [10,20)
    f.put(data(30, 10, 2));  // [30,40)
    f.put(data(40, 10, 3));  // [40,50)
    auto recs = [&](uint64_t a, uint64_t e) {
        std::vector<uint64_t> out;
        for (auto& p : f.range(a, e)) out.push_back(p.rec_id);
        return out;
    };
    CHECK(recs(0, 10).empty());                                  // ends where a piece starts
    CHECK(recs(20, 30).empty());                                 // the gap between pieces
    CHECK(recs(0, 11) == std::vector<uint64_t>{1});
    CHECK(recs(19, 20) == std::vector<uint64_t>{1});             // last byte of a piece
    CHECK(recs(15, 35) == std::vector<uint64_t>{1, 2});          // starts inside a piece
    CHECK(recs(39, 41) == std::vector<uint64_t>{2, 3});
    CHECK(recs(0, 100) == std::vector<uint64_t>{1, 2, 3});
    CHECK(recs(50, 100).empty());
    CHECK(recs(45, 45).size() == 1);                             // an empty range inside a piece
    CHECK(recs(0, UINT64_MAX) == std::vector<uint64_t>{1, 2, 3});
}

TEST_CASE("index: delete_piece_if_same only deletes an unchanged piece; log_in_use") {
    IndexFixture f;
    f.put(data(0, 100, 1, 3));
    StagingPiece original = data(0, 100, 1, 3);
    f.put(data(50, 10, 2, 4));  // trims the original: its row is not the same any more
    REQUIRE(f.ix->delete_piece_if_same(7, original).ok());
    CHECK(f.all().size() == 3);
    StagingPiece left{0, 50, 3, 1000, 1, 100, 0};
    REQUIRE(f.ix->delete_piece_if_same(7, left).ok());
    CHECK(f.all().size() == 2);
    CHECK(*f.ix->log_in_use(3));
    CHECK(*f.ix->log_in_use(4));
    CHECK_FALSE(*f.ix->log_in_use(5));
    REQUIRE(f.ix->delete_piece_if_same(7, data(50, 10, 2, 4)).ok());
    CHECK(f.all().size() == 1);
    CHECK_FALSE(*f.ix->log_in_use(4));
}

TEST_CASE("index: dirents are listed in insertion order with stable cookies") {
    IndexFixture f;
    for (int i = 0; i < 10; ++i)
        REQUIRE(f.ix->insert_dirent(1, b("tag" + std::to_string(i)), b("name" + std::to_string(i)), 100 + i).ok());
    REQUIRE(f.ix->insert_dirent(2, b("tag0"), b("other dir"), 200).ok());
    // The same tag twice in one directory is refused.
    CHECK_FALSE(f.ix->insert_dirent(1, b("tag3"), b("dup"), 999).ok());

    std::vector<DirentRow> rows;
    REQUIRE(f.ix->list_dirents(1, 0, [&](const DirentRow& d) {
                     rows.push_back(d);
                     return true;
                 }).ok());
    REQUIRE(rows.size() == 10);
    for (size_t i = 0; i < rows.size(); ++i) {
        CHECK(rows[i].child == 100 + i);
        CHECK(rows[i].parent == 1);
        CHECK(rows[i].name_sealed == b("name" + std::to_string(i)));
        if (i) CHECK(rows[i].id > rows[i - 1].id);
    }
    // Resume after a cookie; stop early when the callback says so.
    std::vector<Ino> rest;
    REQUIRE(f.ix->list_dirents(1, rows[4].id, [&](const DirentRow& d) {
                     rest.push_back(d.child);
                     return rest.size() < 3;
                 }).ok());
    CHECK(rest == std::vector<Ino>{105, 106, 107});

    // Removing an entry keeps the other cookies; a new entry sorts last.
    REQUIRE(f.ix->delete_dirent(1, b("tag2")).ok());
    REQUIRE(f.ix->insert_dirent(1, b("tag2"), b("again"), 300).ok());
    rows.clear();
    REQUIRE(f.ix->list_dirents(1, 0, [&](const DirentRow& d) {
                     rows.push_back(d);
                     return true;
                 }).ok());
    REQUIRE(rows.size() == 10);
    CHECK(rows[2].child == 103);
    CHECK(rows.back().child == 300);

    auto d = f.ix->dirent(1, b("tag5"));
    REQUIRE(d.ok());
    REQUIRE(d->has_value());
    CHECK((*d)->child == 105);
    REQUIRE(f.ix->set_dirent_child(1, b("tag5"), 555).ok());
    CHECK((*f.ix->dirent(1, b("tag5")))->child == 555);
    CHECK_FALSE(f.ix->dirent(1, b("nope"))->has_value());
    CHECK_FALSE(*f.ix->dir_empty(1));
    CHECK(*f.ix->dir_empty(3));
    auto first = f.ix->first_dirent_of(200);
    REQUIRE(first.ok());
    REQUIRE(first->has_value());
    CHECK((*first)->parent == 2);
}

TEST_CASE("index: xattrs put, replace, list, delete") {
    IndexFixture f;
    CHECK_FALSE(f.ix->xattr(5, b("t1"))->has_value());
    REQUIRE(f.ix->put_xattr(5, XattrRow{b("t1"), b("n1"), b("v1")}).ok());
    REQUIRE(f.ix->put_xattr(5, XattrRow{b("t2"), b("n2"), b("")}).ok());
    REQUIRE(f.ix->put_xattr(6, XattrRow{b("t1"), b("other"), b("x")}).ok());
    REQUIRE(f.ix->put_xattr(5, XattrRow{b("t1"), b("n1"), b("v1 replaced")}).ok());
    auto x = f.ix->xattr(5, b("t1"));
    REQUIRE(x.ok());
    REQUIRE(x->has_value());
    CHECK((*x)->value_sealed == b("v1 replaced"));
    auto all = f.ix->xattrs(5);
    REQUIRE(all.ok());
    CHECK(all->size() == 2);
    REQUIRE(f.ix->delete_xattr(5, b("t1")).ok());
    CHECK(f.ix->xattrs(5)->size() == 1);
    CHECK(f.ix->xattrs(6)->size() == 1);
    // delete_node removes the node's xattrs, extents and staging pieces.
    NodeRow n;
    n.ino = 6;
    n.gid = id_of(6);
    REQUIRE(f.ix->insert_node(n).ok());
    f.put(data(0, 10, 1), 6);
    REQUIRE(f.ix->replace_extents(6, {format::ExtentRef{0, id_of(9), 24, 10}}).ok());
    REQUIRE(f.ix->delete_node(6).ok());
    CHECK(f.ix->xattrs(6)->empty());
    CHECK(f.all(6).empty());
    CHECK(f.ix->all_extents(6)->empty());
    CHECK_FALSE(f.ix->node(6)->has_value());
}

TEST_CASE("index: extents are replaced as a whole and queried by index range") {
    IndexFixture f;
    std::vector<format::ExtentRef> e1 = {{0, id_of(1), 24, 4096}, {2, id_of(1), 5000, 100}, {7, id_of(2), 24, 1}};
    REQUIRE(f.ix->replace_extents(9, e1).ok());
    CHECK(*f.ix->all_extents(9) == e1);
    auto some = f.ix->extents(9, 1, 7);
    REQUIRE(some.ok());
    REQUIRE(some->size() == 2);
    CHECK((*some)[0].index == 2);
    CHECK((*some)[1].index == 7);
    CHECK(f.ix->extents(9, 3, 6)->empty());
    CHECK(f.ix->extents(9, 7, UINT64_MAX)->size() == 1);
    auto refs = f.ix->referenced_objects();
    REQUIRE(refs.ok());
    CHECK(refs->size() == 2);
    CHECK(*f.ix->allocated(9) == 4096 + 100 + 1);

    std::vector<format::ExtentRef> e2 = {{1, id_of(3), 24, 10}};
    REQUIRE(f.ix->replace_extents(9, e2).ok());
    CHECK(*f.ix->all_extents(9) == e2);
    REQUIRE(f.ix->replace_extents(9, e1).ok());
    REQUIRE(f.ix->delete_extents_from(9, 2).ok());
    CHECK(f.ix->all_extents(9)->size() == 1);
    REQUIRE(f.ix->delete_extents_from(9, UINT64_MAX).ok());
    CHECK(f.ix->all_extents(9)->size() == 1);
    REQUIRE(f.ix->replace_extents(9, {}).ok());
    CHECK(f.ix->all_extents(9)->empty());
}

TEST_CASE("index: nodes round-trip; dirty and orphan lists") {
    IndexFixture f;
    NodeRow n;
    n.gid = id_of(40);
    n.mode = 0100640;
    n.uid = 1000;
    n.gid_owner = 100;
    n.rdev_sealed = b("rdev");
    n.size = 1ull << 50;
    n.nlink = 3;
    n.atime = -5;
    n.mtime = 1700000000123456789;
    n.ctime = 42;
    n.link_sealed = b("target");
    n.key_epoch = 7;
    n.wrapped_key = Bytes(72, 0xab);
    n.version = id_of(41);
    n.content_dirty = true;
    auto ino = f.ix->insert_node(n);
    REQUIRE(ino.ok());
    n.ino = *ino;
    auto back = f.ix->node(*ino);
    REQUIRE(back.ok());
    REQUIRE(back->has_value());
    const NodeRow& r = **back;
    CHECK(r.gid == n.gid);
    CHECK(r.mode == n.mode);
    CHECK(r.uid == n.uid);
    CHECK(r.gid_owner == n.gid_owner);
    CHECK(r.rdev_sealed == n.rdev_sealed);
    CHECK(r.size == n.size);
    CHECK(r.nlink == n.nlink);
    CHECK(r.atime == n.atime);
    CHECK(r.mtime == n.mtime);
    CHECK(r.ctime == n.ctime);
    CHECK(r.link_sealed == n.link_sealed);
    CHECK(r.key_epoch == n.key_epoch);
    CHECK(r.wrapped_key == n.wrapped_key);
    CHECK(r.version == n.version);
    CHECK(r.content_dirty);
    CHECK(*f.ix->ino_of(n.gid) == std::optional<Ino>(*ino));
    CHECK(*f.ix->dirty_nodes() == std::vector<Ino>{*ino});
    CHECK(f.ix->orphan_nodes()->empty());
    // update_size_times only ever sets the dirty flag, never clears it.
    REQUIRE(f.ix->update_size_times(*ino, 5, 1, 2, false).ok());
    CHECK((*f.ix->node(*ino))->content_dirty);
    n.content_dirty = false;
    n.nlink = 0;
    REQUIRE(f.ix->update_node(n).ok());
    CHECK(f.ix->dirty_nodes()->empty());
    CHECK(*f.ix->orphan_nodes() == std::vector<Ino>{*ino});
    CHECK(f.ix->regular_files()->empty());  // a deleted node (a tomb) is not a file any more
    CHECK(*f.ix->node_count() == 1);
    // The same global id twice is refused.
    NodeRow dup;
    dup.gid = id_of(40);
    CHECK_FALSE(f.ix->insert_node(dup).ok());
}

TEST_CASE("index: meta values, integers and defaults; persistence across open") {
    TempDir dir;
    std::string path = dir.str() + "/index.db";
    {
        auto ix = Index::open(path);
        REQUIRE(ix.ok());
        CHECK_FALSE((*ix)->meta("nothing")->has_value());
        CHECK(*(*ix)->meta_int("nothing", 17) == 17);
        REQUIRE((*ix)->set_meta("blob", b("hello")).ok());
        REQUIRE((*ix)->set_meta("empty", ByteSpan{}).ok());
        REQUIRE((*ix)->set_meta_int("n", -42).ok());
        REQUIRE((*ix)->set_meta_int("n", INT64_MIN).ok());
        REQUIRE((*ix)->set_meta("wrong size", b("abc")).ok());
    }
    auto ix = Index::open(path);
    REQUIRE(ix.ok());
    CHECK(**(*ix)->meta("blob") == b("hello"));
    CHECK((**(*ix)->meta("empty")).empty());
    CHECK(*(*ix)->meta_int("n", 0) == INT64_MIN);
    CHECK(*(*ix)->meta_int("wrong size", 5) == 5);  // not 8 bytes: the default
}

TEST_CASE("index: pending ops, segments, heads and intent") {
    IndexFixture f;
    auto s1 = f.ix->add_pending(b("op1"));
    auto s2 = f.ix->add_pending(b("op2"));
    auto s3 = f.ix->add_pending(b("op3"));
    REQUIRE((s1.ok() && s2.ok() && s3.ok()));
    CHECK(*s1 < *s2);
    CHECK(*s2 < *s3);
    std::vector<Bytes> seen;
    REQUIRE(f.ix->pending_ops(*s2, [&](int64_t, ByteSpan op) { seen.emplace_back(op.begin(), op.end()); }).ok());
    CHECK(seen == std::vector<Bytes>{b("op1"), b("op2")});
    REQUIRE(f.ix->delete_pending_upto(*s2).ok());
    CHECK(*f.ix->pending_count() == 1);

    Bytes h1(32, 1), h2(32, 2), h3(32, 3);
    REQUIRE(f.ix->add_segment(id_of(1), 1, h1).ok());
    REQUIRE(f.ix->add_segment(id_of(1), 2, h2).ok());
    REQUIRE(f.ix->add_segment(id_of(9), 1, h3).ok());
    CHECK(**f.ix->segment_hash(id_of(1), 2) == h2);
    CHECK_FALSE(f.ix->segment_hash(id_of(1), 3)->has_value());
    auto heads = f.ix->heads();
    REQUIRE(heads.ok());
    REQUIRE(heads->size() == 2);
    for (const auto& v : *heads) {
        if (v.device == id_of(1)) {
            CHECK(v.seq == 2);
            CHECK(Bytes(v.head.begin(), v.head.end()) == h2);
        } else {
            CHECK(v.device == id_of(9));
            CHECK(v.seq == 1);
        }
    }
    CHECK_FALSE(f.ix->intent()->has_value());
    REQUIRE(f.ix->put_intent(4, b("segment bytes")).ok());
    auto in = f.ix->intent();
    REQUIRE(in.ok());
    REQUIRE(in->has_value());
    CHECK((*in)->first == 4);
    CHECK((*in)->second == b("segment bytes"));
    REQUIRE(f.ix->clear_intent().ok());
    CHECK_FALSE(f.ix->intent()->has_value());
}

TEST_CASE("index: a database with a newer schema version is refused") {
    TempDir dir;
    std::string path = dir.str() + "/index.db";
    {
        auto db = Db::open(path);
        REQUIRE(db.ok());
        REQUIRE((*db)->exec("PRAGMA user_version=99").ok());
    }
    auto ix = Index::open(path);
    REQUIRE_FALSE(ix.ok());
    CHECK(ix.error().code == Code::unsupported);
    CHECK(ix.error().context.find("99") != std::string::npos);

    // The current version opens again without migrating twice.
    TempDir d2;
    { REQUIRE(Index::open(d2.str() + "/index.db").ok()); }
    { REQUIRE(Index::open(d2.str() + "/index.db").ok()); }
    auto db = Db::open(d2.str() + "/index.db");
    REQUIRE(db.ok());
    auto v = (*db)->prepare("PRAGMA user_version");
    REQUIRE(v.ok());
    REQUIRE(*v->step());
    CHECK(v->col_int(0) == kSchemaVersion);
    v->reset();
}
