// The vfs implementation behind Filesystem and Replica, private to src/vfs
// (and its tests). FUSE-free; every public method is thread-safe.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
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
#include "coffer/util/source_file.h"
#include "coffer/vfs/filesystem.h"
#include "coffer/vfs/replica.h"
#include "change_gate.h"
#include "clock.h"
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
    PublishKeys publish_keys() const override { return {header_, device_, journal_key_, object_key_}; }
    std::mutex& publish_mutex() override { return publish_mu_; }
    Result<Cut> take_cut() override;
    Status load_key(NodeCut& n) override;
    Status read_cut(const NodeCut& n, uint64_t off, uint64_t len, uint8_t* out) override;
    Status encode_cut_ops(const Cut& cut, format::SegmentWriter& out) override;
    Status complete_cut(const Cut& cut, const CutResult& result) override;
    Result<std::optional<Intent>> intent() override;
    Status clear_intent(uint64_t seq, size_t segment_bytes) override;
    Result<ReplicaStatus> status() override;
    std::vector<std::string> journal_gaps() override;
    Result<std::vector<Id128>> referenced_objects() override;

    // Tests of crash consistency: from now on nothing more is committed and
    // the destructor leaves the batch uncommitted, as a killed process would.
    void abandon_for_tests();

    // Applies one journal operation to the index (local and replayed ops alike).
    Status apply_op(const format::Op& op);

private:
    struct Handle {
        Ino ino = 0;
        int flags = 0;
    };
    // A savepoint around one operation inside the open batch transaction:
    // an operation that fails half-way leaves nothing behind.
    class OpScope {
    public:
        explicit OpScope(Core& c) : c_(c), sp_(*c.ix_) {}
        OpScope(const OpScope&) = delete;
        OpScope& operator=(const OpScope&) = delete;
        ~OpScope();
        // An operation that frees space (unlink, truncate, rename) may use the
        // reserve kept free on the local disk; others must leave it, so that
        // the index can always commit what was acknowledged.
        enum class Space { consumes, frees };
        Status begin(Space space = Space::consumes, uint64_t need = 0);
        Status commit();

    private:
        Core& c_;
        index::Savepoint sp_;
    };

    // Path of a node for messages ("docs/a.txt"), best effort. Takes the lock.
    std::string describe(Ino ino);
    // locked helpers (mu_ held)
    std::string path_of(Ino ino);
    Result<index::NodeRow> node_locked(Ino ino);
    Result<Attr> attr_locked(Ino ino);
    Attr attr_of(const index::NodeRow& n);
    Status record(format::Op op);  // apply + remember as pending
    // Folds a setattr into the newest pending op when that is a setattr of
    // the same node not yet taken by a cut; false if it cannot.
    Result<bool> merge_setattr_locked(format::Hlc hlc, const format::OpSetAttr& op);
    // A pending op as recorded: its encoding, sealed with the local key
    // (`plain` is the caller's buffer, reused across calls).
    Result<format::Op> open_pending(ByteSpan sealed, Bytes& plain) const;
    bool about_a_removed_node(const format::Op& op);
    Status ensure_tx();
    Status commit_locked(bool durable);
    void maybe_delete(Ino ino);
    Result<Attr> make_node(Ino parent, std::string_view name, uint32_t mode, uint64_t rdev,
                           std::string_view target, const Ctx& ctx);
    Result<std::pair<Ino, index::NodeRow>> entry_locked(Ino parent, std::string_view name);
    Status check_writable() const;
    Status check_space(uint64_t need);
    Status truncate_locked(index::NodeRow& n, uint64_t size);
    // The mtime and ctime a content change gives n: now, or n's own when
    // the kernel owns them (set_kernel_owns_file_times).
    std::pair<int64_t, int64_t> content_times(const index::NodeRow& n) const;
    Result<std::shared_ptr<const crypto::SecretBytes>> file_key_locked(const index::NodeRow& n);
    std::shared_ptr<const crypto::SecretBytes> remember_key_locked(Ino ino, crypto::SecretBytes key);
    Status rotate_log();
    void drop_unused_logs();
    Status replay_vault();
    Status check_heads();
    Status apply_segment(const format::Segment& seg, ByteSpan bytes);
    void committer_loop();

    // content (content.cpp): assemble plaintext from staging and extents
    Result<ReadPlan> plan_locked(const index::NodeRow& n, uint64_t off, uint64_t end, bool with_key = true);
    Status read_plan(const ReadPlan& plan, uint64_t off, uint64_t len, uint8_t* out,
                     const std::function<std::string()>& what);
    Status read_extent(const crypto::SecretBytes& key, uint32_t key_epoch, const format::ExtentRef& e,
                       uint64_t from, uint64_t to, uint8_t* out, const std::function<std::string()>& what);
    Result<std::shared_ptr<SourceFile>> object_fd(const Id128& id);

    store::Vault& vault_;
    format::Header header_;
    Options opts_;
    const MetaSealer names_;
    const crypto::SecretBytes fkey_wrap_, local_key_, journal_key_, object_key_;

    std::mutex mu_;
    std::unique_ptr<index::Index> ix_;
    UniqueFd lock_fd_;
    Id128 device_;
    HlcClock clock_;
    // Pending ops up to this seq are never rewritten: a cut has taken them
    // and its publish has not finished (the segment is recorded, and the
    // rows deleted, in one transaction; a failed publish leaves them frozen).
    // merge_setattr_locked only touches newer ones.
    int64_t frozen_upto_ = 0;
    Error deferred_error_;
    bool has_deferred_error_ = false;
    std::atomic<bool> kernel_times_{false};  // set_kernel_owns_file_times
    ChangeGate gate_;  // kernel cache fills against content changes
    std::unordered_map<Ino, uint64_t> lookups_;
    std::unordered_map<Ino, uint32_t> open_count_;
    std::unordered_map<Ino, uint32_t> writers_;  // handles open for writing, per inode
    std::unordered_map<uint64_t, Handle> handles_;
    uint64_t next_fh_ = 1;
    std::unordered_map<Ino, std::shared_ptr<const crypto::SecretBytes>> keys_;
    std::vector<std::string> journal_gaps_;
    // How often each file was cut shorter: a publish whose cut predates a
    // shrink must not install its extents (they hold bytes the shrink removed).
    std::unordered_map<Ino, uint64_t> shrinks_;
    StagingLog log_;

    std::mutex obj_mu_;
    std::unordered_map<std::string, std::shared_ptr<SourceFile>> objects_;
    // Each open object may hold two descriptors (SourceFile's direct one):
    // at most half of what the open-files limit leaves after a reserve for
    // logs, SQLite and the vault folder, and never more than 512.
    const size_t max_open_objects_ = open_object_budget();
    static size_t open_object_budget();

    // One bit per inode number that may have xattrs: set when one is stored,
    // never cleared while mounted (inode numbers are not reused). The kernel
    // asks for security.capability before every write to a file; for a file
    // with no xattrs that is answered from here, without mu_ or the index.
    void mark_xattrs(Ino ino);
    bool may_have_xattrs(Ino ino) const;
    mutable std::mutex xattr_bits_mu_;
    std::vector<uint64_t> xattr_bits_;

    std::mutex publish_mu_;
    std::mutex commit_mu_;
    std::condition_variable commit_cv_;
    bool stop_ = false;
    bool abandoned_ = false;
    uint64_t free_bytes_ = 0;                       // cached statvfs of the state folder
    std::chrono::steady_clock::time_point free_checked_{};
    std::thread committer_;
};

}  // namespace coffer::vfs
