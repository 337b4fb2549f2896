// The local index: the materialised tree of one vault on one device.
// Names, symlink targets, xattrs and device numbers are stored sealed (the
// vfs seals them); this layer only stores rows. Schema: src/index/schema.cpp.
//
// Thread safety: none inside. An Index, and every Batch and Savepoint on it,
// is used by one thread at a time: the vfs holds its mutex around every call
// (the committer thread included).
//
// Transactions: writes collect in a batch, one SQLite write transaction that
// the vfs commits every few hundred milliseconds or on fsync; each operation
// runs in a Savepoint inside it, so one that fails half-way leaves nothing.
// Every rollback (savepoint, batch, a COMMIT SQLite rolled back) also drops
// the cached node rows, so the cache never shows rolled-back state.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "coffer/format/ops.h"
#include "coffer/format/segment.h"
#include "coffer/index/staging_piece.h"
#include "coffer/util/bytes.h"
#include "coffer/util/result.h"

namespace coffer::index {

class Db;
using Ino = uint64_t;
constexpr int kSchemaVersion = 2;

struct NodeRow {
    Ino ino = 0;
    Id128 gid;             // global node id
    uint32_t mode = 0;
    uint32_t uid = 0, gid_owner = 0;
    Bytes rdev_sealed;     // sealed u64 for device nodes, else empty
    uint64_t size = 0;
    uint32_t nlink = 0;
    int64_t atime = 0, mtime = 0, ctime = 0;  // ns
    Bytes link_sealed;     // sealed symlink target
    uint32_t key_epoch = 0;
    Bytes wrapped_key;     // the file's data key, wrapped (regular files)
    Id128 version;         // current published content version
    bool content_dirty = false;  // content changed since the last publish
    // The node whose id the wrapped key is bound to (zero: this one); a
    // conflict copy keeps the key of the file it was copied from.
    Id128 key_owner;
    Id128 version_device;   // who wrote the current version
    uint64_t version_hlc = 0;  // and when (its op's clock)
    bool conflict = false;  // a conflict copy a merge made
};

// Where a node was linked when it lost its last name (a merge may bring it
// back there: an edit on another device beats the delete).
struct Tomb {
    Ino parent = 0;
    Bytes tag;
    Bytes name_sealed;
};

// One entry of the merge's undo log: the inverse of what applying the
// segments in [key_lo, key_hi] did (docs/ARCHITECTURE.md, "Merging").
struct UndoEntry {
    int64_t id = 0;
    Bytes key_lo, key_hi;  // order keys (memcmp order)
    Bytes segments;        // the segments to apply again, (device, seq) pairs
    Bytes changes;         // an SQLite changeset
};

struct DeviceRow {
    Id128 device;
    std::string name;
    uint64_t seq = 0;  // its newest segment applied here
    uint64_t hlc = 0;  // that segment's clock
};

struct DirentRow {
    int64_t id = 0;        // stable cookie for readdir
    Ino parent = 0;
    Bytes tag;             // keyed lookup tag of (parent gid, name)
    Bytes name_sealed;
    Ino child = 0;
};

struct XattrRow {
    Bytes tag;
    Bytes name_sealed;
    Bytes value_sealed;
};

class Index {
public:
    static Result<std::unique_ptr<Index>> open(const std::string& path);
    ~Index();  // an uncommitted batch is rolled back
    Index(const Index&) = delete;
    Index& operator=(const Index&) = delete;

    // ---- the batch (src/index/batch.cpp)
    // Opens the batch (BEGIN IMMEDIATE) unless one is open.
    Status begin_batch();
    bool in_batch() const { return batch_; }
    // Commits the open batch, durably (synchronous=FULL): on success its
    // rows survive a power cut. No batch: nothing to do. On failure the
    // batch either stays open (the next commit retries it) or SQLite has
    // rolled it back: then in_batch() is false, the cached rows are
    // forgotten, and what the batch held is lost.
    Status commit_batch();
    // Throws the open batch away (a killed process, in tests).
    void rollback_batch();

    // ---- meta (key → blob / integer)
    Result<std::optional<Bytes>> meta(std::string_view key);
    Status set_meta(std::string_view key, ByteSpan value);
    Result<int64_t> meta_int(std::string_view key, int64_t dflt);
    Status set_meta_int(std::string_view key, int64_t value);

    // ---- nodes (rows are cached in memory, written through)
    Result<std::optional<NodeRow>> node(Ino ino);
    Result<std::optional<Ino>> ino_of(const Id128& gid);
    Result<Ino> insert_node(const NodeRow& n);  // n.ino == 0: allocate
    Status update_node(const NodeRow& n);
    Status update_size_times(Ino ino, uint64_t size, int64_t mtime, int64_t ctime, bool dirty);
    // Deletes the node and its xattrs, extents and staging pieces.
    Status delete_node(Ino ino);
    Result<std::vector<Ino>> orphan_nodes();  // nlink == 0
    Result<std::vector<Ino>> dirty_nodes();
    Result<uint64_t> node_count();
    Result<std::vector<Ino>> regular_files();  // linked ones (not tombs)
    Result<std::vector<Id128>> referenced_objects();

    // ---- directory entries
    Result<std::optional<DirentRow>> dirent(Ino parent, ByteSpan tag);
    Status insert_dirent(Ino parent, ByteSpan tag, ByteSpan name_sealed, Ino child);
    Status delete_dirent(Ino parent, ByteSpan tag);
    Status set_dirent_child(Ino parent, ByteSpan tag, Ino child);
    Result<bool> dir_empty(Ino dir);
    // Entries with id > after, in id order; stop early when fn returns false.
    Status list_dirents(Ino parent, int64_t after, const std::function<bool(const DirentRow&)>& fn);
    Result<std::optional<DirentRow>> first_dirent_of(Ino child);

    // ---- xattrs
    Result<std::optional<XattrRow>> xattr(Ino ino, ByteSpan tag);
    Status put_xattr(Ino ino, const XattrRow& x);
    Status delete_xattr(Ino ino, ByteSpan tag);
    Result<std::vector<XattrRow>> xattrs(Ino ino);
    Result<std::vector<Ino>> inos_with_xattrs();

    // ---- published extents
    Result<std::vector<format::ExtentRef>> extents(Ino ino, uint64_t first_idx, uint64_t last_idx);
    Result<std::vector<format::ExtentRef>> all_extents(Ino ino);
    Status replace_extents(Ino ino, const std::vector<format::ExtentRef>& ext);
    Status delete_extents_from(Ino ino, uint64_t first_idx);

    // ---- staging map
    Result<std::vector<StagingPiece>> pieces(Ino ino, uint64_t off, uint64_t end);  // overlapping, sorted
    Result<std::vector<StagingPiece>> all_pieces(Ino ino);
    // Makes [p.off, p.end()) come from p, trimming/splitting what overlaps.
    Status put_piece(Ino ino, const StagingPiece& p);
    // Drops everything at or beyond `size` (trims a straddling piece).
    Status cut_pieces(Ino ino, uint64_t size);
    Status delete_piece_if_same(Ino ino, const StagingPiece& p);
    Result<bool> log_in_use(uint64_t log);
    Result<uint64_t> staged_bytes();
    // Bytes stored for a file (published extents + staged data), for st_blocks.
    Result<uint64_t> allocated(Ino ino);

    // ---- pending operations (sealed by the vfs) and applied segments
    Result<int64_t> add_pending(ByteSpan sealed_op);
    Status pending_ops(int64_t upto, const std::function<void(int64_t seq, ByteSpan sealed)>& fn);
    Status delete_pending_upto(int64_t seq);
    // The newest pending operation (seq and sealed bytes), if any.
    Result<std::optional<std::pair<int64_t, Bytes>>> last_pending();
    // Rewrites pending operation `seq` (Code::internal if there is none).
    Status replace_pending(int64_t seq, ByteSpan sealed_op);
    Result<uint64_t> pending_count();
    Status add_segment(const Id128& device, uint64_t seq, ByteSpan hash);
    Result<std::optional<Bytes>> segment_hash(const Id128& device, uint64_t seq);
    // The newest applied segment of every device: its seq and hash.
    Result<std::vector<format::VersionEntry>> heads();
    // Publish intent: the exact segment bytes, recorded before they are written.
    Result<std::optional<std::pair<uint64_t, Bytes>>> intent();
    Status clear_intent();
    // Up to `limit` pending operations after `after` and up to `upto`, in
    // order (a publish reads a long list in batches).
    Status pending_ops_batch(int64_t after, int64_t upto, int64_t limit,
                             const std::function<void(int64_t seq, ByteSpan sealed)>& fn);
    // Records the publish intent for a segment of any size: writes the blob
    // in place (zeroblob, then incremental blob I/O), so SQLite holds no copy.
    Status put_intent(uint64_t seq, ByteSpan bytes);
    // ---- merge state (src/index/merge_state.cpp)
    Result<std::optional<Tomb>> tomb(Ino ino);
    Status set_tomb(Ino ino, const Tomb& t);
    Status delete_tomb(Ino ino);
    // Every entry that names `child`, ordered by (parent's global id, tag):
    // the same order on every device.
    Result<std::vector<DirentRow>> dirents_of(Ino child);
    // The inode number a global id had here before: a node that an undo
    // removed (apply_undo records it) and a redo brings back keeps its
    // number (the kernel may know it).
    Result<std::optional<Ino>> remembered_ino(const Id128& gid);
    Status remember_ino(const Id128& gid, Ino ino);
    // Conflict copies that are still linked.
    Result<std::vector<Ino>> conflict_copies();
    Status put_device(const DeviceRow& d);
    Result<std::vector<DeviceRow>> devices();
    Result<std::optional<DeviceRow>> device(const Id128& id);

    // Capturing changes (SQLite's session extension) to the tree's tables:
    // capture_begin starts recording, capture_take ends it and gives the
    // changeset that undoes what was recorded. apply_undo applies one.
    Status capture_begin();
    bool capturing() const { return session_ != nullptr; }
    Result<Bytes> capture_take();
    Status apply_undo(ByteSpan changes);
    Status push_undo(const UndoEntry& e);
    Result<std::optional<UndoEntry>> top_undo();
    Status pop_undo(int64_t id);
    // Relabels the undo entries whose key_hi is `from`.
    Status relabel_undo(ByteSpan from, ByteSpan key_lo, ByteSpan key_hi, ByteSpan segments);
    Result<uint64_t> undo_count();
    // Drops the undo entries whose key_hi sorts below `key`.
    Status prune_undo(ByteSpan key);
    // The rows a changeset (capture_take's or its inverse) touches: nodes by
    // inode number (their xattrs and extents included), and directory
    // entries (parent, sealed name) it adds or removes, or by row id where
    // a change left the name out.
    struct Touched {
        std::vector<Ino> nodes;
        std::vector<std::pair<Ino, Bytes>> entries;
        std::vector<int64_t> entry_ids;
    };
    Status touched_by(ByteSpan changes, Touched& out);
    Result<std::optional<DirentRow>> dirent_by_id(int64_t id);
    // Regular files whose link count differs from their entries (a check
    // for tests and fsck).
    Result<std::vector<Ino>> nlink_mismatches();

    // Hands the page cache's unused memory back (after a big publish).
    void release_memory();

private:
    friend class Savepoint;
    friend class Batch;
    friend struct IndexTestAccess;  // tests only: the SQLite connection
    explicit Index(std::unique_ptr<Db> db);
    Status migrate();
    // Drops the cached rows: after any rollback they may be rows that are gone.
    void forget_cached();
    // The next inode number: one past the highest ever used by this Index,
    // so a number is not reused while the kernel may still know it (the
    // kernel cache fill stores pages by inode number).
    uint64_t next_ino_ = 0;
    void cache_node(const NodeRow& n);
    void forget_alloc(Ino ino) { alloc_cache_.erase(ino); }
    std::unique_ptr<Db> db_;
    struct SessionDeleter {
        void operator()(void* s) const;
    };
    std::unique_ptr<void, SessionDeleter> session_;
    enum class Remembered { unknown, none, some };
    Remembered remembered_ = Remembered::unknown;  // whether the inos table has rows
    std::unordered_map<Ino, NodeRow> node_cache_;
    struct IdHash {
        size_t operator()(const Id128& id) const noexcept {
            size_t h;
            std::memcpy(&h, id.b.data(), sizeof h);  // ids are random
            return h;
        }
    };
    std::unordered_map<Id128, Ino, IdHash> ino_cache_;  // global id → inode number, rows that exist
    std::unordered_map<Ino, uint64_t> alloc_cache_;
    bool batch_ = false;
};

// One operation inside the batch: begin() opens the batch if needed and a
// savepoint in it; commit() keeps the operation's changes (they are then
// committed with the batch); destroyed without commit(), it rolls them back
// and drops the index's cached rows. Savepoints nest (innermost first).
class Savepoint {
public:
    explicit Savepoint(Index& ix) : ix_(ix) {}
    Savepoint(const Savepoint&) = delete;
    Savepoint& operator=(const Savepoint&) = delete;
    ~Savepoint();
    Status begin();
    Status commit();
    bool open() const { return open_; }

private:
    Index& ix_;
    bool open_ = false;
};

// A batch for one scope (setting up a new index): begin() opens it (an open
// batch is an error), commit() commits it; destroyed without commit(), it
// is rolled back.
class Batch {
public:
    explicit Batch(Index& ix) : ix_(ix) {}
    Batch(const Batch&) = delete;
    Batch& operator=(const Batch&) = delete;
    ~Batch();
    Status begin();
    Status commit();

private:
    Index& ix_;
    bool open_ = false;
};

}  // namespace coffer::index
