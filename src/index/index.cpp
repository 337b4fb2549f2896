#include "coffer/index/index.h"

#include <algorithm>

namespace coffer::index {

namespace {
ByteSpan id_span(const Id128& id) { return id.b; }
// The first column of every row, as inode numbers.
Result<std::vector<Ino>> all_inos(Stmt& s) {
    std::vector<Ino> out;
    for (;;) {
        COFFER_ASSIGN(bool row, s.step());
        if (!row) break;
        out.push_back(static_cast<Ino>(s.col_int(0)));
    }
    return out;
}
Bytes copy(ByteSpan s) { return Bytes(s.begin(), s.end()); }
}  // namespace

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

// ---------------------------------------------------------------- nodes
namespace {
constexpr const char* kNodeCols =
    "ino, gid, mode, uid, ogid, rdev, size, nlink, atime, mtime, ctime, link, key_epoch, wkey, version, dirty";
NodeRow read_node(const Stmt& s) {
    NodeRow n;
    n.ino = static_cast<Ino>(s.col_int(0));
    n.gid = s.col_id(1);
    n.mode = static_cast<uint32_t>(s.col_int(2));
    n.uid = static_cast<uint32_t>(s.col_int(3));
    n.gid_owner = static_cast<uint32_t>(s.col_int(4));
    n.rdev_sealed = copy(s.col_blob(5));
    n.size = static_cast<uint64_t>(s.col_int(6));
    n.nlink = static_cast<uint32_t>(s.col_int(7));
    n.atime = s.col_int(8);
    n.mtime = s.col_int(9);
    n.ctime = s.col_int(10);
    n.link_sealed = copy(s.col_blob(11));
    n.key_epoch = static_cast<uint32_t>(s.col_int(12));
    n.wrapped_key = copy(s.col_blob(13));
    n.version = s.col_id(14);
    n.content_dirty = s.col_int(15) != 0;
    return n;
}
void bind_node(Stmt& s, const NodeRow& n) {
    s.bind(2, id_span(n.gid))
        .bind(3, n.mode)
        .bind(4, n.uid)
        .bind(5, n.gid_owner)
        .bind(6, n.rdev_sealed)
        .bind(7, static_cast<int64_t>(n.size))
        .bind(8, n.nlink)
        .bind(9, n.atime)
        .bind(10, n.mtime)
        .bind(11, n.ctime)
        .bind(12, n.link_sealed)
        .bind(13, n.key_epoch)
        .bind(14, n.wrapped_key)
        .bind(15, id_span(n.version))
        .bind(16, n.content_dirty ? 1 : 0);
}
}  // namespace

namespace {
constexpr size_t kNodeCacheMax = 50000;  // ~15 MiB of rows at most
}  // namespace

void Index::cache_node(const NodeRow& n) {
    if (node_cache_.size() >= kNodeCacheMax) node_cache_.clear();
    node_cache_[n.ino] = n;
}

void Index::forget_cached() {
    node_cache_.clear();
    alloc_cache_.clear();
}

Result<std::optional<NodeRow>> Index::node(Ino ino) {
    auto hit = node_cache_.find(ino);
    if (hit != node_cache_.end()) return std::optional<NodeRow>(hit->second);
    Stmt& s = db_->cached(
        "SELECT ino, gid, mode, uid, ogid, rdev, size, nlink, atime, mtime, ctime, link, key_epoch, wkey, version, "
        "dirty FROM nodes WHERE ino=?");
    s.bind(1, static_cast<int64_t>(ino));
    COFFER_ASSIGN(bool row, s.step());
    if (!row) return std::optional<NodeRow>{};
    NodeRow n = read_node(s);
    s.reset();
    cache_node(n);
    return std::optional<NodeRow>(std::move(n));
}
Result<std::optional<Ino>> Index::ino_of(const Id128& gid) {
    Stmt& s = db_->cached("SELECT ino FROM nodes WHERE gid=?");
    s.bind(1, id_span(gid));
    COFFER_ASSIGN(bool row, s.step());
    if (!row) return std::optional<Ino>{};
    Ino ino = static_cast<Ino>(s.col_int(0));
    s.reset();
    return std::optional<Ino>(ino);
}
Result<Ino> Index::insert_node(const NodeRow& n) {
    Stmt& s = db_->cached(
        "INSERT INTO nodes(ino, gid, mode, uid, ogid, rdev, size, nlink, atime, mtime, ctime, link, key_epoch, "
        "wkey, version, dirty) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    if (next_ino_ == 0) {
        Stmt& m = db_->cached("SELECT coalesce(max(ino), 0) FROM nodes");
        COFFER_ASSIGN(bool row, m.step());
        next_ino_ = static_cast<uint64_t>(row ? m.col_int(0) : 0) + 1;
        m.reset();
    }
    const Ino ino = n.ino ? n.ino : next_ino_;
    s.bind(1, static_cast<int64_t>(ino));
    bind_node(s, n);
    COFFER_TRY(s.exec());
    next_ino_ = std::max<uint64_t>(next_ino_, ino + 1);
    NodeRow row = n;
    row.ino = ino;
    cache_node(row);
    return row.ino;
}
Status Index::update_node(const NodeRow& n) {
    Stmt& s = db_->cached(
        "UPDATE nodes SET gid=?2, mode=?3, uid=?4, ogid=?5, rdev=?6, size=?7, nlink=?8, atime=?9, mtime=?10, "
        "ctime=?11, link=?12, key_epoch=?13, wkey=?14, version=?15, dirty=?16 WHERE ino=?1");
    s.bind(1, static_cast<int64_t>(n.ino));
    bind_node(s, n);
    COFFER_TRY(s.exec());
    cache_node(n);
    return {};
}
Status Index::update_size_times(Ino ino, uint64_t size, int64_t mtime, int64_t ctime, bool dirty) {
    auto hit = node_cache_.find(ino);
    if (hit != node_cache_.end()) {
        hit->second.size = size;
        hit->second.mtime = mtime;
        hit->second.ctime = ctime;
        hit->second.content_dirty = hit->second.content_dirty || dirty;
    }
    return db_->cached("UPDATE nodes SET size=?2, mtime=?3, ctime=?4, dirty=dirty|?5 WHERE ino=?1")
        .bind(1, static_cast<int64_t>(ino))
        .bind(2, static_cast<int64_t>(size))
        .bind(3, mtime)
        .bind(4, ctime)
        .bind(5, dirty ? 1 : 0)
        .exec();
}
Status Index::delete_node(Ino ino) {
    node_cache_.erase(ino);
    forget_alloc(ino);
    int64_t i = static_cast<int64_t>(ino);
    COFFER_TRY(db_->cached("DELETE FROM xattrs WHERE ino=?").bind(1, i).exec());
    COFFER_TRY(db_->cached("DELETE FROM extents WHERE ino=?").bind(1, i).exec());
    COFFER_TRY(db_->cached("DELETE FROM staging WHERE ino=?").bind(1, i).exec());
    return db_->cached("DELETE FROM nodes WHERE ino=?").bind(1, i).exec();
}
Result<std::vector<Ino>> Index::orphan_nodes() {
    return all_inos(db_->cached("SELECT ino FROM nodes WHERE nlink=0"));
}
Result<std::vector<Ino>> Index::dirty_nodes() {
    return all_inos(db_->cached("SELECT ino FROM nodes WHERE dirty!=0"));
}
Result<uint64_t> Index::node_count() {
    Stmt& s = db_->cached("SELECT count(*) FROM nodes");
    COFFER_ASSIGN(bool row, s.step());
    uint64_t n = row ? static_cast<uint64_t>(s.col_int(0)) : 0;
    s.reset();
    return n;
}

Result<std::vector<Ino>> Index::regular_files() {
    return all_inos(db_->cached("SELECT ino FROM nodes WHERE (mode & 61440) = 32768 ORDER BY ino"));
}
Result<std::vector<Ino>> Index::inos_with_xattrs() {
    return all_inos(db_->cached("SELECT DISTINCT ino FROM xattrs"));
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

// ---------------------------------------------------------------- dirents
namespace {
DirentRow read_dirent(const Stmt& s) {
    DirentRow d;
    d.id = s.col_int(0);
    d.parent = static_cast<Ino>(s.col_int(1));
    d.tag = copy(s.col_blob(2));
    d.name_sealed = copy(s.col_blob(3));
    d.child = static_cast<Ino>(s.col_int(4));
    return d;
}
}  // namespace

Result<std::optional<DirentRow>> Index::dirent(Ino parent, ByteSpan tag) {
    Stmt& s = db_->cached("SELECT id, parent, tag, name, child FROM dirents WHERE parent=? AND tag=?");
    s.bind(1, static_cast<int64_t>(parent)).bind(2, tag);
    COFFER_ASSIGN(bool row, s.step());
    if (!row) return std::optional<DirentRow>{};
    DirentRow d = read_dirent(s);
    s.reset();
    return std::optional<DirentRow>(std::move(d));
}
Status Index::insert_dirent(Ino parent, ByteSpan tag, ByteSpan name_sealed, Ino child) {
    return db_->cached("INSERT INTO dirents(parent, tag, name, child) VALUES(?,?,?,?)")
        .bind(1, static_cast<int64_t>(parent))
        .bind(2, tag)
        .bind(3, name_sealed)
        .bind(4, static_cast<int64_t>(child))
        .exec();
}
Status Index::delete_dirent(Ino parent, ByteSpan tag) {
    return db_->cached("DELETE FROM dirents WHERE parent=? AND tag=?")
        .bind(1, static_cast<int64_t>(parent))
        .bind(2, tag)
        .exec();
}
Status Index::set_dirent_child(Ino parent, ByteSpan tag, Ino child) {
    return db_->cached("UPDATE dirents SET child=? WHERE parent=? AND tag=?")
        .bind(1, static_cast<int64_t>(child))
        .bind(2, static_cast<int64_t>(parent))
        .bind(3, tag)
        .exec();
}
Result<bool> Index::dir_empty(Ino dir) {
    Stmt& s = db_->cached("SELECT 1 FROM dirents WHERE parent=? LIMIT 1");
    s.bind(1, static_cast<int64_t>(dir));
    COFFER_ASSIGN(bool row, s.step());
    if (row) s.reset();
    return !row;
}
Status Index::list_dirents(Ino parent, int64_t after, const std::function<bool(const DirentRow&)>& fn) {
    // Not a cached statement: a readdir callback may run other queries.
    COFFER_ASSIGN(Stmt s, db_->prepare("SELECT id, parent, tag, name, child FROM dirents WHERE parent=? AND id>? "
                                       "ORDER BY id"));
    s.bind(1, static_cast<int64_t>(parent)).bind(2, after);
    for (;;) {
        COFFER_ASSIGN(bool row, s.step());
        if (!row) break;
        if (!fn(read_dirent(s))) break;
    }
    return {};
}
Result<std::optional<DirentRow>> Index::first_dirent_of(Ino child) {
    Stmt& s = db_->cached("SELECT id, parent, tag, name, child FROM dirents WHERE child=? ORDER BY id LIMIT 1");
    s.bind(1, static_cast<int64_t>(child));
    COFFER_ASSIGN(bool row, s.step());
    if (!row) return std::optional<DirentRow>{};
    DirentRow d = read_dirent(s);
    s.reset();
    return std::optional<DirentRow>(std::move(d));
}

// ---------------------------------------------------------------- xattrs
Result<std::optional<XattrRow>> Index::xattr(Ino ino, ByteSpan tag) {
    Stmt& s = db_->cached("SELECT tag, name, value FROM xattrs WHERE ino=? AND tag=?");
    s.bind(1, static_cast<int64_t>(ino)).bind(2, tag);
    COFFER_ASSIGN(bool row, s.step());
    if (!row) return std::optional<XattrRow>{};
    XattrRow x{copy(s.col_blob(0)), copy(s.col_blob(1)), copy(s.col_blob(2))};
    s.reset();
    return std::optional<XattrRow>(std::move(x));
}
Status Index::put_xattr(Ino ino, const XattrRow& x) {
    return db_->cached("INSERT OR REPLACE INTO xattrs(ino, tag, name, value) VALUES(?,?,?,?)")
        .bind(1, static_cast<int64_t>(ino))
        .bind(2, x.tag)
        .bind(3, x.name_sealed)
        .bind(4, x.value_sealed)
        .exec();
}
Status Index::delete_xattr(Ino ino, ByteSpan tag) {
    return db_->cached("DELETE FROM xattrs WHERE ino=? AND tag=?")
        .bind(1, static_cast<int64_t>(ino))
        .bind(2, tag)
        .exec();
}
Result<std::vector<XattrRow>> Index::xattrs(Ino ino) {
    std::vector<XattrRow> out;
    Stmt& s = db_->cached("SELECT tag, name, value FROM xattrs WHERE ino=?");
    s.bind(1, static_cast<int64_t>(ino));
    for (;;) {
        COFFER_ASSIGN(bool row, s.step());
        if (!row) break;
        out.push_back({copy(s.col_blob(0)), copy(s.col_blob(1)), copy(s.col_blob(2))});
    }
    return out;
}

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
constexpr int64_t i64(uint64_t v) { return v > INT64_MAX ? INT64_MAX : static_cast<int64_t>(v); }
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

Status Index::put_piece(Ino ino, const StagingPiece& np) {
    forget_alloc(ino);
    if (np.len == 0) return {};
    COFFER_ASSIGN(auto overlapping, pieces(ino, np.off, np.end()));
    for (const StagingPiece& p : overlapping) {
        COFFER_TRY(remove_piece(*db_, ino, p.off));
        if (p.off < np.off) {  // keep the left part
            StagingPiece left = p;
            left.len = np.off - p.off;
            COFFER_TRY(insert_piece(*db_, ino, left));
        }
        if (p.end() > np.end()) {  // keep the right part
            StagingPiece right = p;
            uint64_t cut = np.end() - p.off;
            right.off = np.end();
            right.len = p.len - cut;
            if (right.log) right.skip = p.skip + cut;
            COFFER_TRY(insert_piece(*db_, ino, right));
        }
    }
    return insert_piece(*db_, ino, np);
}
Status Index::cut_pieces(Ino ino, uint64_t size) {
    forget_alloc(ino);
    COFFER_ASSIGN(auto straddling, pieces(ino, size, size + 1));
    for (const StagingPiece& p : straddling) {
        if (p.off < size) {
            StagingPiece left = p;
            left.len = size - p.off;
            COFFER_TRY(insert_piece(*db_, ino, left));
        }
    }
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
    if (alloc_cache_.size() >= kNodeCacheMax) alloc_cache_.clear();
    alloc_cache_[ino] = n;
    return n;
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
    if (sqlite3_changes(db_->raw()) != 1)
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
Result<std::vector<format::VersionEntry>> Index::heads() {
    std::vector<format::VersionEntry> out;
    // SQLite: a bare column beside max() comes from the row holding the max.
    Stmt& s = db_->cached("SELECT device, max(seq), hash FROM segments GROUP BY device");
    for (;;) {
        COFFER_ASSIGN(bool row, s.step());
        if (!row) break;
        format::VersionEntry v;
        v.device = s.col_id(0);
        v.seq = static_cast<uint64_t>(s.col_int(1));
        ByteSpan h = s.col_blob(2);
        if (h.size() == v.head.size()) std::copy(h.begin(), h.end(), v.head.begin());
        out.push_back(v);
    }
    return out;
}
Status Index::set_intent(uint64_t seq, ByteSpan bytes) {
    return db_->cached("INSERT OR REPLACE INTO intent(seq, bytes) VALUES(?,?)").bind(1, i64(seq)).bind(2, bytes).exec();
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
