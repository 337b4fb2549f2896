// Where a file's bytes are: published extents and the staging map.
#include "coffer/index/index.h"
#include "coffer/index/staging_piece.h"
#include "rows.h"

namespace coffer::index {

using namespace rows;

// ---------------------------------------------------------------- extents
namespace {
Result<std::vector<format::ExtentRef>> read_extents(Stmt& s) {
    std::vector<format::ExtentRef> out;
    for (;;) {
        COFFER_ASSIGN(bool row, s.step());
        if (!row) break;
        format::ExtentRef e;
        e.index = static_cast<uint64_t>(s.col_int(0));
        e.object = s.col_id(1);
        e.offset = static_cast<uint64_t>(s.col_int(2));
        e.plain_len = static_cast<uint32_t>(s.col_int(3));
        out.push_back(e);
    }
    return out;
}
}  // namespace

Result<std::vector<format::ExtentRef>> Index::extents(Ino ino, uint64_t first_idx, uint64_t last_idx) {
    Stmt& s = db_->cached("SELECT idx, object, off, len FROM extents WHERE ino=? AND idx>=? AND idx<=? ORDER BY idx");
    s.bind(1, static_cast<int64_t>(ino))
        .bind(2, static_cast<int64_t>(first_idx))
        .bind(3, static_cast<int64_t>(last_idx > INT64_MAX ? INT64_MAX : last_idx));
    return read_extents(s);
}
Result<std::vector<format::ExtentRef>> Index::all_extents(Ino ino) { return extents(ino, 0, INT64_MAX); }
Status Index::replace_extents(Ino ino, const std::vector<format::ExtentRef>& ext) {
    forget_alloc(ino);
    COFFER_TRY(db_->cached("DELETE FROM extents WHERE ino=?").bind(1, static_cast<int64_t>(ino)).exec());
    for (const auto& e : ext) {
        COFFER_TRY(db_->cached("INSERT INTO extents(ino, idx, object, off, len) VALUES(?,?,?,?,?)")
                       .bind(1, static_cast<int64_t>(ino))
                       .bind(2, static_cast<int64_t>(e.index))
                       .bind(3, id_span(e.object))
                       .bind(4, static_cast<int64_t>(e.offset))
                       .bind(5, static_cast<int64_t>(e.plain_len))
                       .exec());
    }
    return {};
}
Status Index::delete_extents_from(Ino ino, uint64_t first_idx) {
    forget_alloc(ino);
    return db_->cached("DELETE FROM extents WHERE ino=? AND idx>=?")
        .bind(1, static_cast<int64_t>(ino))
        .bind(2, static_cast<int64_t>(first_idx > INT64_MAX ? INT64_MAX : first_idx))
        .exec();
}

Result<std::vector<Id128>> Index::referenced_objects() {
    std::vector<Id128> out;
    Stmt& s = db_->cached("SELECT DISTINCT object FROM extents");
    for (;;) {
        COFFER_ASSIGN(bool row, s.step());
        if (!row) break;
        out.push_back(s.col_id(0));
    }
    return out;
}

// ---------------------------------------------------------------- staging
namespace {
StagingPiece read_piece(const Stmt& s) {
    StagingPiece p;
    p.off = static_cast<uint64_t>(s.col_int(0));
    p.len = static_cast<uint64_t>(s.col_int(1));
    p.log = static_cast<uint64_t>(s.col_int(2));
    p.pos = static_cast<uint64_t>(s.col_int(3));
    p.rec_id = static_cast<uint64_t>(s.col_int(4));
    p.rec_len = static_cast<uint64_t>(s.col_int(5));
    p.skip = static_cast<uint64_t>(s.col_int(6));
    return p;
}
}  // namespace

Result<std::vector<StagingPiece>> Index::pieces(Ino ino, uint64_t off, uint64_t end) {
    std::vector<StagingPiece> out;
    // The piece that starts before `off` may reach into the range.
    Stmt& before = db_->cached(
        "SELECT off, len, log, pos, rec, rec_len, skip FROM staging WHERE ino=? AND off<? ORDER BY off DESC LIMIT 1");
    before.bind(1, static_cast<int64_t>(ino)).bind(2, i64(off));
    COFFER_ASSIGN(bool row, before.step());
    if (row) {
        StagingPiece p = read_piece(before);
        before.reset();
        if (p.end() > off) out.push_back(p);
    }
    Stmt& within = db_->cached(
        "SELECT off, len, log, pos, rec, rec_len, skip FROM staging WHERE ino=? AND off>=? AND off<? ORDER BY off");
    within.bind(1, static_cast<int64_t>(ino)).bind(2, i64(off)).bind(3, i64(end));
    for (;;) {
        COFFER_ASSIGN(bool r, within.step());
        if (!r) break;
        out.push_back(read_piece(within));
    }
    return out;
}
Result<std::vector<StagingPiece>> Index::all_pieces(Ino ino) { return pieces(ino, 0, UINT64_MAX); }

namespace {
Status insert_piece(Db& db, Ino ino, const StagingPiece& p) {
    return db.cached("INSERT OR REPLACE INTO staging(ino, off, len, log, pos, rec, rec_len, skip) "
                     "VALUES(?,?,?,?,?,?,?,?)")
        .bind(1, static_cast<int64_t>(ino))
        .bind(2, i64(p.off))
        .bind(3, i64(p.len))
        .bind(4, i64(p.log))
        .bind(5, i64(p.pos))
        .bind(6, i64(p.rec_id))
        .bind(7, i64(p.rec_len))
        .bind(8, i64(p.skip))
        .exec();
}
Status remove_piece(Db& db, Ino ino, uint64_t off) {
    return db.cached("DELETE FROM staging WHERE ino=? AND off=?").bind(1, static_cast<int64_t>(ino)).bind(2, i64(off)).exec();
}
}  // namespace

namespace {
// Rows go before rows are written: a kept part may take a removed row's place.
Status apply(Db& db, Ino ino, const PieceEdit& e) {
    for (uint64_t off : e.remove) COFFER_TRY(remove_piece(db, ino, off));
    for (const StagingPiece& p : e.put) COFFER_TRY(insert_piece(db, ino, p));
    return {};
}
}  // namespace

Status Index::put_piece(Ino ino, const StagingPiece& np) {
    forget_alloc(ino);
    if (np.len == 0) return {};
    COFFER_ASSIGN(auto overlapping, pieces(ino, np.off, np.end()));
    return apply(*db_, ino, overlay_piece(overlapping, np));
}
Status Index::cut_pieces(Ino ino, uint64_t size) {
    forget_alloc(ino);
    COFFER_ASSIGN(auto straddling, pieces(ino, size, size + 1));
    COFFER_TRY(apply(*db_, ino, cut_pieces_at(straddling, size)));
    // Pieces further out than the one found at `size`.
    return db_->cached("DELETE FROM staging WHERE ino=? AND off>=?").bind(1, static_cast<int64_t>(ino)).bind(2, i64(size)).exec();
}
Status Index::delete_piece_if_same(Ino ino, const StagingPiece& p) {
    forget_alloc(ino);
    return db_->cached("DELETE FROM staging WHERE ino=? AND off=? AND len=? AND log=? AND pos=? AND rec=? AND skip=?")
        .bind(1, static_cast<int64_t>(ino))
        .bind(2, i64(p.off))
        .bind(3, i64(p.len))
        .bind(4, i64(p.log))
        .bind(5, i64(p.pos))
        .bind(6, i64(p.rec_id))
        .bind(7, i64(p.skip))
        .exec();
}
Result<bool> Index::log_in_use(uint64_t log) {
    Stmt& s = db_->cached("SELECT 1 FROM staging WHERE log=? LIMIT 1");
    s.bind(1, i64(log));
    COFFER_ASSIGN(bool row, s.step());
    if (row) s.reset();
    return row;
}
Result<uint64_t> Index::staged_bytes() {
    Stmt& s = db_->cached("SELECT coalesce(sum(len), 0) FROM staging WHERE log != 0");
    COFFER_ASSIGN(bool row, s.step());
    uint64_t n = row ? static_cast<uint64_t>(s.col_int(0)) : 0;
    s.reset();
    return n;
}

Result<uint64_t> Index::allocated(Ino ino) {
    auto hit = alloc_cache_.find(ino);
    if (hit != alloc_cache_.end()) return hit->second;
    Stmt& s = db_->cached(
        "SELECT (SELECT coalesce(sum(len), 0) FROM extents WHERE ino=?1) + "
        "(SELECT coalesce(sum(len), 0) FROM staging WHERE ino=?1 AND log != 0)");
    s.bind(1, static_cast<int64_t>(ino));
    COFFER_ASSIGN(bool row, s.step());
    uint64_t n = row ? static_cast<uint64_t>(s.col_int(0)) : 0;
    s.reset();
    if (alloc_cache_.size() >= kCacheMax) alloc_cache_.clear();
    alloc_cache_[ino] = n;
    return n;
}

}  // namespace coffer::index
