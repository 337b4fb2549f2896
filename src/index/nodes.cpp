// The nodes table, and the in-memory cache of its rows.
#include "coffer/index/index.h"
#include "rows.h"

namespace coffer::index {

using namespace rows;

// ---------------------------------------------------------------- nodes
namespace {
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
    n.key_owner = s.col_id(16);
    n.version_device = s.col_id(17);
    n.version_hlc = static_cast<uint64_t>(s.col_int(18));
    n.conflict = s.col_int(19) != 0;
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
        .bind(16, n.content_dirty ? 1 : 0)
        .bind(17, id_span(n.key_owner))
        .bind(18, id_span(n.version_device))
        .bind(19, static_cast<int64_t>(n.version_hlc))
        .bind(20, n.conflict ? 1 : 0);
}
}  // namespace

void Index::cache_node(const NodeRow& n) {
    if (node_cache_.size() >= kCacheMax) node_cache_.clear();
    node_cache_[n.ino] = n;
}

Result<std::optional<NodeRow>> Index::node(Ino ino) {
    auto hit = node_cache_.find(ino);
    if (hit != node_cache_.end()) return std::optional<NodeRow>(hit->second);
    Stmt& s = db_->cached(
        "SELECT ino, gid, mode, uid, ogid, rdev, size, nlink, atime, mtime, ctime, link, key_epoch, wkey, version, "
        "dirty, kgid, vdev, vhlc, conflict FROM nodes WHERE ino=?");
    s.bind(1, static_cast<int64_t>(ino));
    COFFER_ASSIGN(bool row, s.step());
    if (!row) return std::optional<NodeRow>{};
    NodeRow n = read_node(s);
    s.reset();
    cache_node(n);
    return std::optional<NodeRow>(std::move(n));
}
Result<std::optional<Ino>> Index::ino_of(const Id128& gid) {
    if (auto hit = ino_cache_.find(gid); hit != ino_cache_.end()) return std::optional<Ino>(hit->second);
    Stmt& s = db_->cached("SELECT ino FROM nodes WHERE gid=?");
    s.bind(1, id_span(gid));
    COFFER_ASSIGN(bool row, s.step());
    if (!row) return std::optional<Ino>{};
    Ino ino = static_cast<Ino>(s.col_int(0));
    s.reset();
    if (ino_cache_.size() >= kCacheMax) ino_cache_.clear();
    ino_cache_.emplace(gid, ino);
    return std::optional<Ino>(ino);
}
Result<Ino> Index::insert_node(const NodeRow& n) {
    Stmt& s = db_->cached(
        "INSERT INTO nodes(ino, gid, mode, uid, ogid, rdev, size, nlink, atime, mtime, ctime, link, key_epoch, "
        "wkey, version, dirty, kgid, vdev, vhlc, conflict) VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
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
        "ctime=?11, link=?12, key_epoch=?13, wkey=?14, version=?15, dirty=?16, kgid=?17, vdev=?18, vhlc=?19, "
        "conflict=?20 WHERE ino=?1");
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
    ino_cache_.clear();
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
    return all_inos(db_->cached("SELECT ino FROM nodes WHERE (mode & 61440) = 32768 AND nlink > 0 ORDER BY ino"));
}
}  // namespace coffer::index
