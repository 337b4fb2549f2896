// The vfs implementation behind Filesystem and Replica, private to src/vfs
// (and its tests). FUSE-free; every public method is thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <set>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "coffer/format/object.h"
#include "coffer/format/ops.h"
#include "coffer/format/segment.h"
#include "coffer/index/index.h"
#include "coffer/store/vault.h"
#include "coffer/util/fd.h"
#include "coffer/util/mutex.h"
#include "coffer/util/source_file.h"
#include "coffer/vfs/filesystem.h"
#include "coffer/vfs/replica.h"
#include "change_gate.h"
#include "clock.h"
#include "object_cache.h"
#include "sealing.h"
#include "staging_log.h"

namespace coffer::vfs {


class Core final : public Filesystem, public Replica {
public:
    Core(store::Vault& vault, format::Header header, crypto::SecretBytes master, Options opts);
    ~Core() override;
    Status start();  // opens local state, replays the vault, starts the committer

    // ---- Filesystem
    Result<Attr> lookup(Ino parent, std::string_view name) override;
    Result<Attr> peek(Ino parent, std::string_view name) override;
    void forget(Ino ino, uint64_t nlookup) override;
    Result<Attr> getattr(Ino ino) override;
    Result<Attr> setattr(Ino ino, const SetAttrReq& req, const Ctx& ctx) override;
    Result<std::string> readlink(Ino ino) override;
    Result<Attr> mknod(Ino parent, std::string_view name, uint32_t mode, uint64_t rdev, const Ctx& ctx) override;
    Result<Attr> mkdir(Ino parent, std::string_view name, uint32_t mode, const Ctx& ctx) override;
    Result<Attr> symlink(Ino parent, std::string_view name, std::string_view target, const Ctx& ctx) override;
    Result<Attr> link(Ino ino, Ino new_parent, std::string_view new_name) override;
    Status unlink(Ino parent, std::string_view name) override;
    Status rmdir(Ino parent, std::string_view name) override;
    Status rename(Ino parent, std::string_view name, Ino new_parent, std::string_view new_name,
                  unsigned flags) override;
    Result<uint64_t> open(Ino ino, int flags) override;
    Result<Created> create(Ino parent, std::string_view name, uint32_t mode, int flags, const Ctx& ctx) override;
    Result<size_t> read(Ino ino, uint64_t fh, uint64_t off, size_t size, uint8_t* out) override;
    Result<size_t> write(Ino ino, uint64_t fh, uint64_t off, ByteSpan data) override;
    Status flush(Ino ino, uint64_t fh) override;
    Status release(Ino ino, uint64_t fh) override;
    Status fsync(Ino ino, uint64_t fh, bool datasync) override;
    Status fallocate(Ino ino, uint64_t fh, int mode, uint64_t off, uint64_t len) override;
    Result<uint64_t> lseek(Ino ino, uint64_t fh, uint64_t off, int whence) override;
    Result<uint64_t> opendir(Ino ino) override;
    Status readdir(Ino ino, uint64_t fh, uint64_t offset, bool plus, const DirFiller& fill) override;
    Status releasedir(Ino ino, uint64_t fh) override;
    Status fsyncdir(Ino ino, uint64_t fh) override;
    Result<StatFs> statfs() override;
    Status setxattr(Ino ino, std::string_view name, ByteSpan value, int flags) override;
    Result<Bytes> getxattr(Ino ino, std::string_view name) override;
    Result<std::vector<std::string>> listxattr(Ino ino) override;
    Status removexattr(Ino ino, std::string_view name) override;
    Status flush_all() override;
    bool read_only() const override { return opts_.read_only; }
    void set_kernel_owns_file_times(bool on) override { kernel_times_ = on; }
    uint64_t content_generation() const override { return gate_.generation(); }
    bool fill_kernel_cache(Ino ino, uint64_t generation, const std::function<void()>& store) override;

    Replica& replica() override { return *this; }

    // ---- Replica (the sync layer: publish, fsck, status)
    store::Vault& vault() override { return vault_; }
    PublishKeys publish_keys() const override { return {header_, device_, device_name_, journal_key_, object_key_}; }
    std::mutex& publish_mutex() override { return publish_mu_; }
    Result<Cut> take_cut() override;
    Status load_key(NodeCut& n) override;
    Status read_cut(const NodeCut& n, uint64_t off, uint64_t len, uint8_t* out) override;
    Status encode_cut_ops(const Cut& cut, format::SegmentWriter& out) override;
    Status complete_cut(const Cut& cut, const CutResult& result) override;
    Result<std::optional<Intent>> intent() override;
    Status clear_intent(uint64_t seq, size_t segment_bytes) override;
    Result<ReplicaStatus> status() override;
    Result<MergeReport> merge() override;
    Result<std::string> digest() override;
    Result<std::vector<DeviceInfo>> devices() override;
    Result<std::vector<std::string>> conflict_copies() override;
    std::vector<std::string> journal_gaps() override;
    Result<std::vector<Id128>> referenced_objects() override;
    Result<std::vector<Ino>> regular_files() override;

    // Tests of crash consistency: from now on nothing more is committed and
    // the destructor leaves the batch uncommitted, as a killed process would.
    void abandon_for_tests();

    // Who made an operation apply_op applies, and in which journal version.
    struct OpOrigin {
        Id128 device;
        std::string_view device_name;
        uint8_t journal = format::kOpsVersion;
        // This device's own operation, just made: what it names was checked,
        // and a name taken is an error (exists), not a conflict.
        bool local = false;
    };
    // Applies one journal operation to the index: a local one (this
    // device's, just made) or another device's, in the merge order.
    Status apply_op(const format::Op& op, const OpOrigin& origin) REQUIRES(mu_);
    Status apply_op(const format::Op& op) REQUIRES(mu_);

private:
    struct Handle {
        Ino ino = 0;
        int flags = 0;
    };
    // A savepoint around one operation inside the open batch transaction:
    // an operation that fails half-way leaves nothing behind.
    class OpScope {
    public:
        explicit OpScope(Core& c) REQUIRES(c.mu_) : c_(c), sp_(*c.ix_) {}
        OpScope(const OpScope&) = delete;
        OpScope& operator=(const OpScope&) = delete;
        ~OpScope();
        // An operation that frees space (unlink, truncate, rename) may use the
        // reserve kept free on the local disk; others must leave it, so that
        // the index can always commit what was acknowledged.
        enum class Space { consumes, frees };
        // Made under c.mu_ (checked where it is constructed) and never
        // outliving that lock's scope, which the analysis cannot follow
        // through c_: these two are not checked.
        Status begin(Space space = Space::consumes, uint64_t need = 0) NO_THREAD_SAFETY_ANALYSIS;
        Status commit() NO_THREAD_SAFETY_ANALYSIS;

    private:
        Core& c_;
        index::Savepoint sp_;
    };

    // Path of a node for messages ("docs/a.txt"), best effort. Takes the lock.
    std::string describe(Ino ino) EXCLUDES(mu_);
    // locked helpers (mu_ held)
    std::string path_of(Ino ino) REQUIRES(mu_);
    Result<index::NodeRow> node_locked(Ino ino) REQUIRES(mu_);
    Result<Attr> attr_locked(Ino ino) REQUIRES(mu_);
    Result<Attr> attr_of(const index::NodeRow& n) REQUIRES(mu_);
    Status record(format::Op op) REQUIRES(mu_);  // apply + remember as pending
    // Folds a setattr into the newest pending op when that is a setattr of
    // the same node not yet taken by a cut; false if it cannot.
    Result<bool> merge_setattr_locked(format::Hlc hlc, const format::OpSetAttr& op) REQUIRES(mu_);
    // A pending op as recorded: its encoding, sealed with the local key
    // (`plain` is the caller's buffer, reused across calls).
    Result<format::Op> open_pending(ByteSpan sealed, Bytes& plain) const;
    bool about_a_removed_node(const format::Op& op) REQUIRES(mu_);
    Status materialize_copy(const index::NodeRow& n) REQUIRES(mu_);
    Status ensure_tx() REQUIRES(mu_);
    Status commit_locked(bool durable) REQUIRES(mu_);
    void maybe_delete(Ino ino) REQUIRES(mu_);
    Status drop_staged(Ino ino) REQUIRES(mu_);
    Result<Attr> make_node(Ino parent, std::string_view name, uint32_t mode, uint64_t rdev,
                           std::string_view target, const Ctx& ctx) REQUIRES(mu_);
    Result<std::pair<Ino, index::NodeRow>> entry_locked(Ino parent, std::string_view name) REQUIRES(mu_);
    Status check_writable() const;
    Status check_space(uint64_t need) REQUIRES(mu_);
    Status truncate_locked(index::NodeRow& n, uint64_t size) REQUIRES(mu_);
    // The mtime and ctime a content change gives n: now, or n's own when
    // the kernel owns them (set_kernel_owns_file_times).
    std::pair<int64_t, int64_t> content_times(const index::NodeRow& n) const;
    Result<std::shared_ptr<const crypto::SecretBytes>> file_key_locked(const index::NodeRow& n) REQUIRES(mu_);
    std::shared_ptr<const crypto::SecretBytes> remember_key_locked(Ino ino, crypto::SecretBytes key) REQUIRES(mu_);
    Status rotate_log() REQUIRES(mu_);
    void drop_unused_logs() REQUIRES(mu_);
    // merge (merge.cpp, apply.cpp)
    class Applier;
    struct Incoming;
    Result<MergeReport> merge_locked() REQUIRES(mu_);
    Status scan_journal(std::vector<std::unique_ptr<Incoming>>& out) REQUIRES(mu_);
    Status check_heads() REQUIRES(mu_);
    Status file_local_changes(bool restart = true) REQUIRES(mu_);
    Status prune_undo() REQUIRES(mu_);
    Status tell_kernel(const index::Index::Touched& t, MergeReport& rep) REQUIRES(mu_);
    std::string device_name_of(const Id128& device) REQUIRES(mu_);
    void committer_loop() EXCLUDES(mu_, commit_mu_);

    // content (content.cpp): assemble plaintext from staging and extents
    Result<ReadPlan> plan_locked(const index::NodeRow& n, uint64_t off, uint64_t end, bool with_key = true)
        REQUIRES(mu_);
    Status read_plan(const ReadPlan& plan, uint64_t off, uint64_t len, uint8_t* out,
                     const std::function<std::string()>& what);
    Status read_extent(const crypto::SecretBytes& key, uint32_t key_epoch, const format::ExtentRef& e,
                       uint64_t from, uint64_t to, uint8_t* out, const std::function<std::string()>& what);

    store::Vault& vault_;
    format::Header header_;
    Options opts_;
    const MetaSealer names_;
    const crypto::SecretBytes fkey_wrap_, local_key_, journal_key_, object_key_;

    // mu_ guards the tree: the index and every map below it, up to the
    // staging log (which, like the gate and the object cache after it,
    // synchronizes itself). Set by start() and read-only after it: device_.
    Mutex mu_;
    std::unique_ptr<index::Index> ix_ PT_GUARDED_BY(mu_);
    UniqueFd lock_fd_;
    Id128 device_;
    std::string device_name_;
    HlcClock clock_ GUARDED_BY(mu_);
    // Pending ops up to this seq are never rewritten: a cut has taken them
    // and its publish has not finished (the segment is recorded, and the
    // rows deleted, in one transaction; a failed publish leaves them frozen).
    // merge_setattr_locked only touches newer ones.
    int64_t frozen_upto_ GUARDED_BY(mu_) = 0;
    Error deferred_error_ GUARDED_BY(mu_);
    bool has_deferred_error_ GUARDED_BY(mu_) = false;
    std::atomic<bool> kernel_times_{false};  // set_kernel_owns_file_times
    ChangeGate gate_;  // kernel cache fills against content changes
    std::unordered_map<Ino, uint64_t> lookups_ GUARDED_BY(mu_);
    std::unordered_map<Ino, uint32_t> open_count_ GUARDED_BY(mu_);
    std::unordered_map<Ino, uint32_t> writers_ GUARDED_BY(mu_);  // handles open for writing, per inode
    std::unordered_map<uint64_t, Handle> handles_ GUARDED_BY(mu_);
    uint64_t next_fh_ GUARDED_BY(mu_) = 1;
    std::unordered_map<Ino, std::shared_ptr<const crypto::SecretBytes>> keys_ GUARDED_BY(mu_);
    std::vector<std::string> journal_gaps_ GUARDED_BY(mu_);
    std::vector<std::string> waiting_ GUARDED_BY(mu_);
    std::vector<std::string> gap_waiters_ GUARDED_BY(mu_);  // "… waits for <missing>" per gap
    std::set<std::string> gaps_logged_ GUARDED_BY(mu_);  // each missing segment is logged once  // the last merge's MergeReport::waiting
    uint64_t merge_conflicts_ GUARDED_BY(mu_) = 0;  // counted by the running merge
    uint64_t merge_skipped_ GUARDED_BY(mu_) = 0;
    bool started_ GUARDED_BY(mu_) = false;  // start() has returned: a kernel may cache the tree
    // How often each file was cut shorter: a publish whose cut predates a
    // shrink must not install its extents (they hold bytes the shrink removed).
    std::unordered_map<Ino, uint64_t> shrinks_ GUARDED_BY(mu_);
    StagingLog log_;

    ObjectCache objects_;

    // One bit per inode number that may have xattrs: set when one is stored,
    // never cleared while mounted (inode numbers are not reused). The kernel
    // asks for security.capability before every write to a file; for a file
    // with no xattrs that is answered from here, without mu_ or the index.
    void mark_xattrs(Ino ino) EXCLUDES(xattr_bits_mu_);
    bool may_have_xattrs(Ino ino) const EXCLUDES(xattr_bits_mu_);
    mutable Mutex xattr_bits_mu_;
    std::vector<uint64_t> xattr_bits_ GUARDED_BY(xattr_bits_mu_);

    // Serializes publishes (sync holds it from cut to segment); guards no field.
    std::mutex publish_mu_;
    // The committer thread's stop flag.
    Mutex commit_mu_;
    std::condition_variable commit_cv_;
    bool stop_ GUARDED_BY(commit_mu_) = false;
    bool abandoned_ GUARDED_BY(mu_) = false;
    uint64_t free_bytes_ GUARDED_BY(mu_) = 0;  // cached statvfs of the state folder
    std::chrono::steady_clock::time_point free_checked_ GUARDED_BY(mu_){};
    std::thread committer_;
};

}  // namespace coffer::vfs
