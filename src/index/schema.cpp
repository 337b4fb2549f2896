// Schema and migrations of index.db. Bump kSchemaVersion with a new step.
#include "db.h"
#include "coffer/index/index.h"

namespace coffer::index {

namespace {
constexpr const char* kSchemaV1 = R"sql(
CREATE TABLE meta(key TEXT PRIMARY KEY, value BLOB) WITHOUT ROWID;
CREATE TABLE nodes(
  ino INTEGER PRIMARY KEY,
  gid BLOB NOT NULL UNIQUE,
  mode INTEGER NOT NULL, uid INTEGER NOT NULL, ogid INTEGER NOT NULL,
  rdev BLOB, size INTEGER NOT NULL, nlink INTEGER NOT NULL,
  atime INTEGER NOT NULL, mtime INTEGER NOT NULL, ctime INTEGER NOT NULL,
  link BLOB, key_epoch INTEGER NOT NULL, wkey BLOB, version BLOB,
  dirty INTEGER NOT NULL DEFAULT 0);
CREATE INDEX nodes_dirty ON nodes(dirty) WHERE dirty != 0;
CREATE INDEX nodes_orphan ON nodes(nlink) WHERE nlink = 0;
CREATE TABLE dirents(
  id INTEGER PRIMARY KEY,
  parent INTEGER NOT NULL, tag BLOB NOT NULL, name BLOB NOT NULL, child INTEGER NOT NULL,
  UNIQUE(parent, tag));
CREATE INDEX dirents_list ON dirents(parent, id);
CREATE INDEX dirents_child ON dirents(child);
CREATE TABLE xattrs(ino INTEGER NOT NULL, tag BLOB NOT NULL, name BLOB NOT NULL, value BLOB NOT NULL,
  PRIMARY KEY(ino, tag)) WITHOUT ROWID;
CREATE TABLE extents(ino INTEGER NOT NULL, idx INTEGER NOT NULL, object BLOB NOT NULL,
  off INTEGER NOT NULL, len INTEGER NOT NULL, PRIMARY KEY(ino, idx)) WITHOUT ROWID;
CREATE TABLE staging(ino INTEGER NOT NULL, off INTEGER NOT NULL, len INTEGER NOT NULL,
  log INTEGER NOT NULL, pos INTEGER NOT NULL, rec INTEGER NOT NULL, rec_len INTEGER NOT NULL,
  skip INTEGER NOT NULL, PRIMARY KEY(ino, off)) WITHOUT ROWID;
CREATE INDEX staging_log ON staging(log);
CREATE TABLE pending_ops(seq INTEGER PRIMARY KEY, op BLOB NOT NULL);
CREATE TABLE segments(device BLOB NOT NULL, seq INTEGER NOT NULL, hash BLOB NOT NULL,
  PRIMARY KEY(device, seq)) WITHOUT ROWID;
CREATE TABLE intent(seq INTEGER PRIMARY KEY, bytes BLOB NOT NULL);
)sql";
// Version 2: what merging other devices' segments keeps (src/index/merge_state.cpp).
constexpr const char* kSchemaV2 = R"sql(
ALTER TABLE nodes ADD COLUMN kgid BLOB;
ALTER TABLE nodes ADD COLUMN vdev BLOB;
ALTER TABLE nodes ADD COLUMN vhlc INTEGER NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN conflict INTEGER NOT NULL DEFAULT 0;
CREATE INDEX nodes_conflict ON nodes(conflict) WHERE conflict != 0;
CREATE TABLE tombs(ino INTEGER PRIMARY KEY, parent INTEGER NOT NULL, tag BLOB NOT NULL, name BLOB NOT NULL);
CREATE TABLE inos(gid BLOB PRIMARY KEY, ino INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE devices(device BLOB PRIMARY KEY, name TEXT NOT NULL, seq INTEGER NOT NULL, hlc INTEGER NOT NULL)
  WITHOUT ROWID;
CREATE TABLE undo(id INTEGER PRIMARY KEY, key_lo BLOB NOT NULL, key_hi BLOB NOT NULL, segments BLOB NOT NULL,
  changes BLOB NOT NULL);
CREATE INDEX undo_key_hi ON undo(key_hi);
)sql";
}  // namespace

Status Index::migrate() {
    // One connection in one process (the state folder's lock file keeps
    // others out): holding SQLite's locks for the whole session spares every
    // statement the fcntl lock/unlock pairs of an implicit read transaction,
    // and set before WAL is first used, the WAL index lives in heap memory
    // (no -shm file to map).
    COFFER_TRY(db_->exec("PRAGMA locking_mode=EXCLUSIVE"));
    COFFER_TRY(db_->exec("PRAGMA journal_mode=WAL"));
    COFFER_TRY(db_->exec("PRAGMA synchronous=FULL"));
    // After a checkpoint the WAL is cut back to this size (a large replay
    // must not keep a large WAL on a small disk).
    COFFER_TRY(db_->exec("PRAGMA journal_size_limit=4194304"));
    COFFER_TRY(db_->exec("PRAGMA temp_store=MEMORY"));
    COFFER_TRY(db_->exec("PRAGMA cache_size=-32768"));
    COFFER_ASSIGN(Stmt s, db_->prepare("PRAGMA user_version"));
    COFFER_ASSIGN(bool row, s.step());
    int64_t version = row ? s.col_int(0) : 0;
    s.reset();
    if (version > kSchemaVersion)
        return make_error(Code::unsupported, "local index schema " + std::to_string(version) +
                                                 " is newer than this coffer (" + std::to_string(kSchemaVersion) +
                                                 "); upgrade coffer or use another --state folder");
    if (version == 0) {
        Batch tx(*this);
        COFFER_TRY(tx.begin());
        COFFER_TRY(db_->exec(kSchemaV1));
        COFFER_TRY(db_->exec("PRAGMA user_version=1"));
        COFFER_TRY(tx.commit());
    }
    if (version <= 1) {
        Batch tx(*this);
        COFFER_TRY(tx.begin());
        COFFER_TRY(db_->exec(kSchemaV2));
        COFFER_TRY(db_->exec("PRAGMA user_version=2"));
        COFFER_TRY(tx.commit());
    }
    return {};
}

Result<std::unique_ptr<Index>> Index::open(const std::string& path) {
    COFFER_ASSIGN(auto db, Db::open(path));
    std::unique_ptr<Index> ix(new Index(std::move(db)));
    COFFER_TRY(ix->migrate());
    return ix;
}

}  // namespace coffer::index
