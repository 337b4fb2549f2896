// The vfs implementation, visible to the sync layer (publish, fsck) and to
// tests. FUSE-free; every public method is thread-safe.
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

namespace coffer::vfs {

// Plaintext bytes of one staging frame; a write is sealed frame by frame.
constexpr uint64_t kFrameSize = 16 * 1024;

// Where the bytes of a file range are: taken under the lock, read without it.
struct ReadPlan {
    Id128 gid;
    uint32_t key_epoch = 0;
    std::shared_ptr<const crypto::SecretBytes> key;
    std::vector<index::StagingPiece> pieces;            // sorted, non-overlapping
    std::vector<std::shared_ptr<SourceFile>> piece_fds;   // the staging log of each piece
    std::vector<format::ExtentRef> extents;             // sorted by index
};

// What publish needs of one file, captured under the lock.
struct NodeCut {
    Ino ino = 0;
    uint64_t shrinks = 0;  // the file's shrink count at the cut (see Core::shrinks_)
    uint64_t size = 0;
    int64_t mtime = 0, ctime = 0;
    Id128 version;
    Bytes wrapped_key;
    ReadPlan plan;  // the whole file
};

struct Cut {
    std::vector<NodeCut> nodes;
    int64_t ops_upto = 0;   // pending_ops rows included
    // The pending ops are not held: publish encodes them into the segment
    // (encode_cut_ops) once the objects are written. Decided at the cut:
    std::vector<int64_t> skipped;  // rows left out (about a node removed by then)
    uint64_t ops = 0;              // rows that go into the segment
    size_t ops_bytes = 0;          // their encoded size
    size_t content_bytes = 0;      // bound of the encoded set_content ops publish adds
    uint64_t seq = 0;       // the segment this publish writes
    format::Hash32 prev{};  // hash of this device's previous segment
    format::Hlc hlc = 0;
    std::vector<format::VersionEntry> merged;  // heads at the cut
};

class Core final : public Filesystem {
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
    uint64_t content_generation() const override { return content_gen_.load(); }
    bool fill_kernel_cache(Ino ino, uint64_t generation, const std::function<void()>& store) override;

    // ---- for sync (publish) and fsck
    store::Vault& vault() { return vault_; }
    const format::Header& header() const { return header_; }
    const Id128& device() const { return device_; }
    const crypto::SecretBytes& journal_key() const { return journal_key_; }
    const crypto::SecretBytes& object_key() const { return object_key_; }
    std::mutex& publish_mutex() { return publish_mu_; }
    // Finishes a publish that a crash interrupted (its intent is recorded).
    Status finish_interrupted_publish();
    Result<Cut> take_cut();
    // Unwraps the file's data key into n.plan.key (a cut holds no keys, so a
    // publish of many files keeps one key in memory at a time).
    Status load_key(NodeCut& n);
    // Reads [off, off+len) of a file as it was at the cut (zeros for holes).
    Status read_cut(const NodeCut& n, uint64_t off, uint64_t len, uint8_t* out);
    // Encodes the cut's pending operations into `out`, reading them in
    // batches (the lock is held per batch, not for the whole pass).
    Status encode_cut_ops(const Cut& cut, format::SegmentWriter& out);
    // Records the intent, updates the index for what was published, commits durably.
    Status commit_publish(const Cut& cut, const std::vector<std::vector<format::ExtentRef>>& new_extents,
                          const std::vector<Id128>& new_versions, ByteSpan segment_bytes);
    // Writes the intent's segment file and clears the intent.
    Status write_intent_segment();
    // Same, right after commit_publish recorded `bytes` as segment `seq`
    // (writes them from memory instead of reading the intent back).
    Status write_intent_segment(uint64_t seq, ByteSpan bytes);
    Result<uint64_t> pending_ops_count();
    Result<uint64_t> staged_bytes();
    uint64_t last_seq();
    // Newest applied segment of every device (the version vector of a new segment).
    std::vector<format::VersionEntry> heads();
    Result<std::vector<Ino>> regular_files();
    // Journal segments missing before later ones of the same device, found
    // by the last replay ("journal/<device>/<seq>"): not delivered yet.
    std::vector<std::string> journal_gaps();
    Result<std::vector<Id128>> referenced_objects();
    // Path of a node for messages ("docs/a.txt"), best effort. Takes the lock.
    std::string describe(Ino ino);

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
    struct Log {
        uint64_t id = 0;
        std::shared_ptr<SourceFile> fd;
        std::atomic<uint64_t> end{0};
    };
    // A SAVEPOINT around one operation inside the open batch transaction:
    // an operation that fails half-way leaves nothing behind.
    class OpScope {
    public:
        explicit OpScope(Core& c) : c_(c) {}
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
        bool open_ = false;
    };

    // locked helpers (mu_ held)
    std::string path_of(Ino ino);
    Result<index::NodeRow> node_locked(Ino ino);
    Result<Attr> attr_locked(Ino ino);
    Result<Attr> attr_of(const index::NodeRow& n);  // Code::corrupt if its rdev fails authentication
    Bytes tag_for(const Id128& parent, std::string_view name);
    Bytes seal_name(const Id128& parent, std::string_view name);
    Result<std::string> open_name(const Id128& parent, ByteSpan sealed);
    format::Hlc next_hlc();
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
    // A content change of one inode (see fill_mu_), for as long as it lives.
    class ContentChange {
    public:
        ContentChange() = default;
        ContentChange(Core& c, Ino ino);
        ContentChange(ContentChange&& o) noexcept : c_(o.c_), ino_(o.ino_) { o.c_ = nullptr; }
        ContentChange& operator=(ContentChange&& o) noexcept;
        ~ContentChange() { end(); }
    private:
        void end() noexcept;
        Core* c_ = nullptr;
        Ino ino_ = 0;
    };
    // The mtime and ctime a content change gives n: now, or n's own when
    // the kernel owns them (set_kernel_owns_file_times).
    std::pair<int64_t, int64_t> content_times(const index::NodeRow& n) const;
    Result<std::shared_ptr<const crypto::SecretBytes>> file_key_locked(const index::NodeRow& n);
    std::shared_ptr<const crypto::SecretBytes> remember_key_locked(Ino ino, crypto::SecretBytes key);
    Result<std::shared_ptr<SourceFile>> log_fd(uint64_t log);
    Status open_log(uint64_t id);
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
    crypto::SecretBytes master_;
    Options opts_;
    crypto::SecretBytes names_key_, tag_key_, fkey_wrap_, local_key_, journal_key_, object_key_;

    std::mutex mu_;
    std::unique_ptr<index::Index> ix_;
    UniqueFd lock_fd_;
    Id128 device_;
    format::Hlc hlc_last_ = 0;
    bool tx_open_ = false;
    // Pending ops up to this seq are never rewritten: a cut has taken them
    // and its publish has not finished (the segment is recorded, and the
    // rows deleted, in one transaction; a failed publish leaves them frozen).
    // merge_setattr_locked only touches newer ones.
    int64_t frozen_upto_ = 0;
    Error deferred_error_;
    bool has_deferred_error_ = false;
    std::atomic<bool> kernel_times_{false};  // set_kernel_owns_file_times
    // Kernel cache fills (fill_kernel_cache) against content changes, per
    // inode: a change of a file's bytes or size, or a new handle open for
    // writing, waits (before taking mu_) while a fill of that inode runs,
    // keeps new fills of it off while it runs, and bumps content_gen_ as it
    // starts and ends, so a fill whose read overlapped it is dropped. Only
    // changes of the inode being filled wait: a fill waits for pages that
    // reads of that inode hold, and those reads need free worker threads.
    std::mutex fill_mu_;
    std::condition_variable fill_cv_;
    std::unordered_map<Ino, int> filling_, changing_;
    std::atomic<uint64_t> content_gen_{0};
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
    Log log_;
    std::map<uint64_t, std::shared_ptr<SourceFile>> old_logs_;
    std::atomic<uint64_t> next_rec_{0};

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
