// The staging map's pure arithmetic (overlay_piece, cut_pieces_at): which
// rows a new piece or a cut removes, trims and splits.
#include <doctest/doctest.h>

#include <map>
#include <random>
#include <vector>

#include "coffer/index/staging_piece.h"

using coffer::index::cut_pieces_at;
using coffer::index::overlay_piece;
using coffer::index::PieceEdit;
using coffer::index::StagingPiece;

namespace {

// A piece of record `rec` written at `off` (skip 0, the whole record).
StagingPiece data(uint64_t off, uint64_t len, uint64_t rec, uint64_t skip = 0) {
    return StagingPiece{off, len, 1, rec * 1000, rec, len + skip, skip};
}
StagingPiece zeros(uint64_t off, uint64_t len) { return StagingPiece{off, len, 0, 0, 0, 0, 0}; }

// The map after an edit, as the index applies it (remove, then put by offset).
std::map<uint64_t, StagingPiece> applied(const std::vector<StagingPiece>& rows, const PieceEdit& e) {
    std::map<uint64_t, StagingPiece> m;
    for (const auto& p : rows) m[p.off] = p;
    for (uint64_t off : e.remove) {
        REQUIRE(m.count(off) == 1);  // only rows that exist are removed
        m.erase(off);
    }
    for (const auto& p : e.put) m[p.off] = p;
    return m;
}

}  // namespace

TEST_CASE("overlay_piece: into an empty map, and next to pieces it does not overlap") {
    StagingPiece np = data(100, 50, 2);
    CHECK(overlay_piece({}, np) == PieceEdit{{}, {np}});
    // Adjacent on both sides: untouched, even when handed in.
    CHECK(overlay_piece({data(50, 50, 1), data(150, 10, 3)}, np) == PieceEdit{{}, {np}});
}

TEST_CASE("overlay_piece: an overlap at the new piece's start trims the old piece's end") {
    StagingPiece old = data(0, 120, 1);
    StagingPiece np = data(100, 50, 2);
    PieceEdit e = overlay_piece({old}, np);
    StagingPiece left = old;
    left.len = 100;
    CHECK(e.remove.empty());  // the trimmed row keeps its offset: rewritten in place
    CHECK(e.put == std::vector<StagingPiece>{left, np});
}

TEST_CASE("overlay_piece: an overlap at the new piece's end keeps the old piece's tail, reading further in") {
    StagingPiece old = data(130, 70, 1, 5);  // already starts 5 bytes into its record
    StagingPiece np = data(100, 50, 2);
    PieceEdit e = overlay_piece({old}, np);
    StagingPiece right = old;
    right.off = 150;
    right.len = 50;
    right.skip = 5 + 20;  // 20 bytes of it are now under np
    CHECK(e.remove == std::vector<uint64_t>{130});
    CHECK(e.put == std::vector<StagingPiece>{right, np});
}

TEST_CASE("overlay_piece: a new piece in the middle splits the old one in two") {
    StagingPiece old = data(0, 300, 1);
    StagingPiece np = data(100, 50, 2);
    PieceEdit e = overlay_piece({old}, np);
    REQUIRE(e.put.size() == 3);
    CHECK(e.remove.empty());
    CHECK(e.put[0] == StagingPiece{0, 100, 1, 1000, 1, 300, 0});
    CHECK(e.put[1] == StagingPiece{150, 150, 1, 1000, 1, 300, 150});
    CHECK(e.put[2] == np);
}

TEST_CASE("overlay_piece: a covering piece removes what it covers and trims both ends") {
    std::vector<StagingPiece> rows{data(0, 60, 1), data(60, 20, 2), data(80, 20, 3), data(100, 50, 4)};
    StagingPiece np = data(50, 70, 9);
    PieceEdit e = overlay_piece(rows, np);
    auto m = applied(rows, e);
    REQUIRE(m.size() == 3);
    CHECK(m[0] == StagingPiece{0, 50, 1, 1000, 1, 60, 0});
    CHECK(m[50] == np);
    CHECK(m[120] == StagingPiece{120, 30, 1, 4000, 4, 50, 20});
    CHECK(e.remove == std::vector<uint64_t>{60, 80, 100});

    // Exactly the same range: one row replaced, nothing else.
    StagingPiece same = data(60, 20, 7);
    CHECK(overlay_piece({rows[1]}, same) == PieceEdit{{}, {same}});
}

TEST_CASE("overlay_piece: zero-length pieces") {
    // A new empty piece changes nothing, even inside another.
    CHECK(overlay_piece({data(100, 100, 1)}, data(150, 0, 2)) == PieceEdit{});
    // An empty row under the new piece goes; one just past it stays.
    StagingPiece np = data(100, 50, 2);
    PieceEdit e = overlay_piece({data(120, 0, 1), data(150, 0, 3)}, np);
    CHECK(e.remove == std::vector<uint64_t>{120});
    CHECK(e.put == std::vector<StagingPiece>{np});
}

TEST_CASE("overlay_piece: hole pieces (log 0) split like data, without a skip") {
    StagingPiece old = zeros(0, 300);
    PieceEdit e = overlay_piece({old}, data(100, 50, 2));
    REQUIRE(e.put.size() == 3);
    CHECK(e.put[0] == zeros(0, 100));
    CHECK(e.put[1] == zeros(150, 150));
    // A hole over data: the data's tail still reads at the right offset.
    PieceEdit h = overlay_piece({data(0, 300, 1)}, zeros(0, 100));
    CHECK(h.remove.empty());
    CHECK(h.put == std::vector<StagingPiece>{StagingPiece{100, 200, 1, 1000, 1, 300, 100}, zeros(0, 100)});
}

TEST_CASE("overlay_piece: every byte reads from where a byte model says, over random writes") {
    std::mt19937_64 rng(12);
    std::vector<std::pair<uint64_t, uint64_t>> model(512, {0, 0});  // (rec, offset in rec); rec 0 = none/zeros
    std::map<uint64_t, StagingPiece> m;
    for (uint64_t rec = 1; rec <= 400; ++rec) {
        uint64_t off = rng() % 480, len = rng() % 40;
        bool hole = rng() % 5 == 0;
        StagingPiece np = hole ? zeros(off, len) : data(off, len, rec);
        std::vector<StagingPiece> rows;
        for (const auto& [o, p] : m) rows.push_back(p);
        m = applied(rows, overlay_piece(rows, np));
        for (uint64_t x = off; x < off + len; ++x) model[x] = hole ? std::pair<uint64_t, uint64_t>{0, 0} : std::pair{rec, x - off};
        uint64_t prev_end = 0;
        for (const auto& [o, p] : m) {
            CHECK(p.off >= prev_end);  // no two rows overlap
            prev_end = p.end();
        }
    }
    for (uint64_t x = 0; x < model.size(); ++x) {
        std::pair<uint64_t, uint64_t> got{0, 0};
        for (const auto& [o, p] : m)
            if (p.off <= x && x < p.end() && p.log) got = {p.rec_id, p.skip + (x - p.off)};
        CHECK_MESSAGE(got == model[x], "byte " << x);
    }
}

TEST_CASE("cut_pieces_at: trims the straddling piece and removes those at or past the size") {
    std::vector<StagingPiece> rows{data(0, 100, 1), data(100, 50, 2), data(150, 50, 3)};
    PieceEdit e = cut_pieces_at(rows, 120);
    CHECK(e.put == std::vector<StagingPiece>{StagingPiece{100, 20, 1, 2000, 2, 50, 0}});
    CHECK(e.remove == std::vector<uint64_t>{150});
    // A piece ending exactly at the size is kept whole; one starting there goes.
    PieceEdit at = cut_pieces_at({data(0, 100, 1), data(100, 50, 2)}, 100);
    CHECK(at.put.empty());
    CHECK(at.remove == std::vector<uint64_t>{100});
    // Cut to zero: everything goes; holes are trimmed like data.
    CHECK(cut_pieces_at({zeros(0, 10), data(10, 10, 1)}, 0) == PieceEdit{{0, 10}, {}});
    CHECK(cut_pieces_at({zeros(0, 10)}, 4) == PieceEdit{{}, {zeros(0, 4)}});
}
