// Journal bookkeeping: meta values, pending operations, applied segments,
// the publish intent.
#include <algorithm>

#include "coffer/index/index.h"
#include "rows.h"

namespace coffer::index {

using namespace rows;

// ---------------------------------------------------------------- meta
Result<std::optional<Bytes>> Index::meta(std::string_view key) {
    Stmt& s = db_->cached("SELECT value FROM meta WHERE key=?");
    s.bind(1, key);
    COFFER_ASSIGN(bool row, s.step());
    if (!row) return std::optional<Bytes>{};
    Bytes v = copy(s.col_blob(0));
    s.reset();
    return std::optional<Bytes>(std::move(v));
}
Status Index::set_meta(std::string_view key, ByteSpan value) {
    return db_->cached("INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)").bind(1, key).bind(2, value).exec();
}
Result<int64_t> Index::meta_int(std::string_view key, int64_t dflt) {
    COFFER_ASSIGN(auto v, meta(key));
    if (!v || v->size() != 8) return dflt;
    return static_cast<int64_t>(get_u64le(v->data()));
}
Status Index::set_meta_int(std::string_view key, int64_t value) {
    uint8_t b[8];
    put_u64le(b, static_cast<uint64_t>(value));
    return set_meta(key, ByteSpan(b, 8));
}

// ---------------------------------------------------------------- pending ops, segments, intent
Result<int64_t> Index::add_pending(ByteSpan sealed_op) {
    COFFER_TRY(db_->cached("INSERT INTO pending_ops(op) VALUES(?)").bind(1, sealed_op).exec());
    return db_->last_rowid();
}
Status Index::pending_ops(int64_t upto, const std::function<void(int64_t, ByteSpan)>& fn) {
    COFFER_ASSIGN(Stmt s, db_->prepare("SELECT seq, op FROM pending_ops WHERE seq<=? ORDER BY seq"));
    s.bind(1, upto);
    for (;;) {
        COFFER_ASSIGN(bool row, s.step());
        if (!row) break;
        fn(s.col_int(0), s.col_blob(1));
    }
    return {};
}
Status Index::delete_pending_upto(int64_t seq) {
    return db_->cached("DELETE FROM pending_ops WHERE seq<=?").bind(1, seq).exec();
}
Result<std::optional<std::pair<int64_t, Bytes>>> Index::last_pending() {
    Stmt& s = db_->cached("SELECT seq, op FROM pending_ops ORDER BY seq DESC LIMIT 1");
    COFFER_ASSIGN(bool row, s.step());
    std::optional<std::pair<int64_t, Bytes>> out;
    if (row) out.emplace(s.col_int(0), copy(s.col_blob(1)));
    s.reset();
    return out;
}
Status Index::replace_pending(int64_t seq, ByteSpan sealed_op) {
    COFFER_TRY(db_->cached("UPDATE pending_ops SET op=? WHERE seq=?").bind(1, sealed_op).bind(2, seq).exec());
    if (db_->changes() != 1)
        return make_error(Code::internal, "pending operation " + std::to_string(seq) + " is not there to replace");
    return {};
}
Result<uint64_t> Index::pending_count() {
    Stmt& s = db_->cached("SELECT count(*) FROM pending_ops");
    COFFER_ASSIGN(bool row, s.step());
    uint64_t n = row ? static_cast<uint64_t>(s.col_int(0)) : 0;
    s.reset();
    return n;
}
Status Index::add_segment(const Id128& device, uint64_t seq, ByteSpan hash) {
    return db_->cached("INSERT OR REPLACE INTO segments(device, seq, hash) VALUES(?,?,?)")
        .bind(1, id_span(device))
        .bind(2, i64(seq))
        .bind(3, hash)
        .exec();
}
Result<std::optional<Bytes>> Index::segment_hash(const Id128& device, uint64_t seq) {
    Stmt& s = db_->cached("SELECT hash FROM segments WHERE device=? AND seq=?");
    s.bind(1, id_span(device)).bind(2, i64(seq));
    COFFER_ASSIGN(bool row, s.step());
    if (!row) return std::optional<Bytes>{};
    Bytes h = copy(s.col_blob(0));
    s.reset();
    return std::optional<Bytes>(std::move(h));
}
// A row that does not hold a 16-byte device and a 32-byte hash is an error,
// not a zero head: a zero head would pass the rollback check of a device.
Result<std::vector<format::VersionEntry>> Index::heads() {
    std::vector<format::VersionEntry> out;
    // SQLite: a bare column beside max() comes from the row holding the max.
    Stmt& s = db_->cached("SELECT device, max(seq), hash FROM segments GROUP BY device");
    for (;;) {
        COFFER_ASSIGN(bool row, s.step());
        if (!row) break;
        format::VersionEntry v;
        ByteSpan d = s.col_blob(0);
        ByteSpan h = s.col_blob(2);
        if (d.size() != v.device.b.size() || h.size() != v.head.size()) {
            s.reset();
            return make_error(Code::corrupt, "local index: a malformed applied-segment row");
        }
        v.device = s.col_id(0);
        v.seq = static_cast<uint64_t>(s.col_int(1));
        std::copy(h.begin(), h.end(), v.head.begin());
        out.push_back(v);
    }
    return out;
}
Result<std::optional<std::pair<uint64_t, Bytes>>> Index::intent() {
    Stmt& s = db_->cached("SELECT seq, bytes FROM intent ORDER BY seq LIMIT 1");
    COFFER_ASSIGN(bool row, s.step());
    if (!row) return std::optional<std::pair<uint64_t, Bytes>>{};
    std::pair<uint64_t, Bytes> v{static_cast<uint64_t>(s.col_int(0)), copy(s.col_blob(1))};
    s.reset();
    return std::optional<std::pair<uint64_t, Bytes>>(std::move(v));
}
Status Index::clear_intent() { return db_->exec("DELETE FROM intent"); }
Status Index::pending_ops_batch(int64_t after, int64_t upto, int64_t limit,
                               const std::function<void(int64_t, ByteSpan)>& fn) {
    Stmt& s = db_->cached("SELECT seq, op FROM pending_ops WHERE seq>? AND seq<=? ORDER BY seq LIMIT ?");
    s.bind(1, after).bind(2, upto).bind(3, limit);
    for (;;) {
        COFFER_ASSIGN(bool row, s.step());
        if (!row) break;
        fn(s.col_int(0), s.col_blob(1));
    }
    return {};
}
void Index::release_memory() { sqlite3_db_release_memory(db_->raw()); }
Status Index::put_intent(uint64_t seq, ByteSpan bytes) {
    if (bytes.size() > INT32_MAX)
        return make_error(Code::too_big, "index: publish intent of " + std::to_string(bytes.size()) + " bytes");
    COFFER_TRY(db_->cached("INSERT OR REPLACE INTO intent(seq, bytes) VALUES(?, zeroblob(?))")
                   .bind(1, i64(seq))
                   .bind(2, static_cast<int64_t>(bytes.size()))
                   .exec());
    sqlite3_blob* blob = nullptr;
    int rc = sqlite3_blob_open(db_->raw(), "main", "intent", "bytes", i64(seq), 1, &blob);
    if (rc == SQLITE_OK && !bytes.empty())
        rc = sqlite3_blob_write(blob, bytes.data(), static_cast<int>(bytes.size()), 0);
    if (rc != SQLITE_OK) {
        Error err = db_->error("index: writing the publish intent");
        if ((rc & 0xff) == SQLITE_FULL) err.code = Code::no_space;
        sqlite3_blob_close(blob);  // a no-op for nullptr
        return err;
    }
    if (sqlite3_blob_close(blob) != SQLITE_OK) return db_->error("index: writing the publish intent");
    return {};
}

}  // namespace coffer::index
