// Core: local state, batching of index commits, names, the op recorder.
#include "clock.h"
#include "core.h"

#include <fcntl.h>
#include <malloc.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

#include "aad.h"
#include "coffer/util/file_io.h"
#include "coffer/util/log.h"

namespace coffer::vfs {

using index::NodeRow;

namespace {
constexpr auto kCommitInterval = std::chrono::milliseconds(200);


Status mkdir_p(const std::string& path) {
    std::string cur;
    for (size_t i = 0; i <= path.size(); ++i) {
        if (i == path.size() || path[i] == '/') {
            if (!cur.empty() && ::mkdir(cur.c_str(), 0700) != 0 && errno != EEXIST)
                return sys_error(errno, "cannot create local state folder " + cur);
        }
        if (i < path.size()) cur.push_back(path[i]);
    }
    return {};
}
}  // namespace

Result<std::unique_ptr<Filesystem>> Filesystem::open(store::Vault& vault, format::Header header,
                                                      crypto::SecretBytes master, const Options& opts) {
    auto core = std::make_unique<Core>(vault, std::move(header), std::move(master), opts);
    COFFER_TRY(core->start());
    return std::unique_ptr<Filesystem>(std::move(core));
}

// The master key is only read here: every key the core uses is derived
// now, and `master` is wiped when the constructor returns.
Core::Core(store::Vault& vault, format::Header header, crypto::SecretBytes master, Options opts)
    : vault_(vault),
      header_(std::move(header)),
      opts_(std::move(opts)),
      names_(master),
      fkey_wrap_(crypto::derive(master, crypto::Subkey::file_key_wrap)),
      local_key_(crypto::derive(master, crypto::Subkey::local_state)),
      journal_key_(crypto::derive(master, crypto::Subkey::journal)),
      object_key_(crypto::derive(master, crypto::Subkey::object_header)),
      log_(opts_.state_dir + "/staging"),
      objects_(vault_.backend(), header_, object_key_) {}

Core::~Core() {
    {
        MutexLock lk(commit_mu_);
        stop_ = true;
    }
    commit_cv_.notify_all();
    if (committer_.joinable()) committer_.join();
    MutexLock lk(mu_);
    if (!ix_) return;  // start() failed before opening the index
    if (abandoned_) {
        ix_->rollback_batch();
        return;
    }
    if (ix_->in_batch()) {
        auto st = commit_locked(true);
        if (!st.ok()) log::error("final commit of the local index failed: " + st.error().message());
    }
}

Status Core::start() {
    const std::string& dir = opts_.state_dir;
    COFFER_TRY(mkdir_p(dir + "/staging"));
    lock_fd_.reset(::open((dir + "/lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600));
    if (!lock_fd_) return sys_error(errno, "cannot open " + dir + "/lock");
    if (::flock(lock_fd_.get(), LOCK_EX | LOCK_NB) != 0)
        return make_error(Code::busy, "the local state " + dir + " is in use by another coffer process (already mounted?)");

    COFFER_ASSIGN(ix_, index::Index::open(dir + "/index.db"));
    MutexLock lk(mu_);
    format::VaultId vid = header_.vault_id;
    COFFER_ASSIGN(auto stored_vid, ix_->meta("vault_id"));
    if (!stored_vid) {
        // A new device: fresh local state, rebuilt from the vault below. One
        // transaction, so a crash here leaves no half-made identity.
        index::Batch tx(*ix_);
        COFFER_TRY(tx.begin());
        device_ = crypto::random_id();
        COFFER_TRY(ix_->set_meta("vault_id", vid));
        COFFER_TRY(ix_->set_meta("device", device_.b));
        COFFER_TRY(ix_->set_meta_int("next_seq", 1));
        NodeRow root;
        root.ino = kRootIno;
        root.mode = S_IFDIR | 0755;
        root.uid = ::getuid();
        root.gid_owner = ::getgid();
        root.nlink = 2;
        root.atime = root.mtime = root.ctime = now_ns();
        COFFER_ASSIGN(index::Ino ino, ix_->insert_node(root));
        (void)ino;
        COFFER_TRY(tx.commit());
    } else {
        if (!crypto::equal(*stored_vid, vid))
            return make_error(Code::invalid, "the local state " + dir + " belongs to another vault");
        COFFER_ASSIGN(auto dev, ix_->meta("device"));
        if (!dev || dev->size() != 16) return make_error(Code::corrupt, "local index has no device id");
        std::memcpy(device_.b.data(), dev->data(), 16);
    }
    COFFER_ASSIGN(auto stored_name, ix_->meta("device_name"));
    if (stored_name) {
        device_name_.assign(stored_name->begin(), stored_name->end());
    } else {
        device_name_ = opts_.device_name;
        if (device_name_.empty()) {
            char host[256] = {};
            if (::gethostname(host, sizeof host - 1) == 0) device_name_ = host;
        }
        if (device_name_.size() > format::kMaxDeviceName) device_name_.resize(format::kMaxDeviceName);
        COFFER_TRY(ix_->set_meta("device_name", as_bytes(device_name_)));
    }
    COFFER_ASSIGN(int64_t seen_epoch, ix_->meta_int("header_epoch", 0));
    if (static_cast<int64_t>(header_.epoch) < seen_epoch)
        return make_error(Code::rolled_back, "the vault header (epoch " + std::to_string(header_.epoch) +
                                                 ") is older than one this device has seen (epoch " +
                                                 std::to_string(seen_epoch) + "): the cloud folder was rolled back");
    COFFER_TRY(ix_->set_meta_int("header_epoch", static_cast<int64_t>(header_.epoch)));
    COFFER_ASSIGN(int64_t hlc, ix_->meta_int("hlc", 0));
    clock_.observe(static_cast<format::Hlc>(hlc));

    // Every change to the tree from here on is captured for the undo log
    // (merge.cpp), this start's own included.
    if (!opts_.read_only) COFFER_TRY(ix_->capture_begin());

    // Nodes left with no name keep their rows (a merge may bring them
    // back), not their staged bytes (deleted here, never to be published).
    COFFER_ASSIGN(auto orphans, ix_->orphan_nodes());
    for (auto o : orphans) COFFER_TRY(drop_staged(o));

    COFFER_ASSIGN(auto with_xattrs, ix_->inos_with_xattrs());
    for (Ino ino : with_xattrs) mark_xattrs(ino);

    COFFER_ASSIGN(int64_t log_id, ix_->meta_int("log", 0));
    COFFER_TRY(log_.start(static_cast<uint64_t>(log_id + 1)));
    COFFER_TRY(ix_->set_meta_int("log", static_cast<int64_t>(log_.current())));
    drop_unused_logs();

    COFFER_ASSIGN(auto merged, merge_locked());
    (void)merged;  // postponed when local changes wait: the first sync publishes them, then merges
    if (!opts_.read_only) COFFER_TRY(ix_->capture_begin());
    started_ = true;
    if (!opts_.read_only) committer_ = std::thread([this] { committer_loop(); });
    return {};
}

// ---------------------------------------------------------------- staging log files
Status Core::rotate_log() {
    COFFER_TRY(ix_->set_meta_int("log", static_cast<int64_t>(log_.current() + 1)));
    return log_.rotate();
}

void Core::drop_unused_logs() {
    log_.drop_unused([this](uint64_t log) {
        mu_.assert_held();  // called back under it
        auto used = ix_->log_in_use(log);
        return !used.ok() || *used;  // kept when in doubt
    });
}

// ---------------------------------------------------------------- batching
Core::OpScope::~OpScope() {
    // sp_ rolls back: a key may be cached for a node the operation created
    if (sp_.open()) c_.keys_.clear();
}

Status Core::OpScope::begin(Space space, uint64_t need) {
    COFFER_TRY(c_.check_writable());
    if (space == Space::consumes) COFFER_TRY(c_.check_space(need));
    return sp_.begin();
}

Status Core::OpScope::commit() { return sp_.commit(); }

Status Core::check_writable() const {
    if (opts_.read_only) return Error{Code::permission, EROFS, "mounted read-only"};
    return {};
}

// SQLite rolls back the whole transaction when COMMIT meets a full disk, so
// operations that consume space stop while less than kReserve is free: what
// was acknowledged can always be committed, and deleting files still works.
Status Core::check_space(uint64_t need) {
    constexpr uint64_t kReserve = 16ull << 20;
    auto now = std::chrono::steady_clock::now();
    if (now - free_checked_ > std::chrono::milliseconds(50) || free_bytes_ < need + 2 * kReserve) {
        struct statvfs sv;
        if (::statvfs(opts_.state_dir.c_str(), &sv) == 0) free_bytes_ = static_cast<uint64_t>(sv.f_bavail) * sv.f_frsize;
        free_checked_ = now;
    }
    if (free_bytes_ < need + kReserve)
        return Error{Code::no_space, ENOSPC, "the local state's disk is full (" + opts_.state_dir + ")"};
    free_bytes_ -= need;
    return {};
}

Status Core::ensure_tx() { return ix_->begin_batch(); }

// The staging log is made durable before the index that points into it.
// A durable commit also reports a batch lost earlier (a failed background
// commit): whoever asks for durability must not hear "done" after a loss.
Status Core::commit_locked(bool durable) {
    if (durable && has_deferred_error_) {
        has_deferred_error_ = false;
        if (ix_->in_batch() && !abandoned_) (void)commit_locked(false);
        return deferred_error_;
    }
    if (!ix_->in_batch() || abandoned_) return {};
    auto filed = file_local_changes();
    if (!filed.ok()) {
        ix_->rollback_batch();
        keys_.clear();
        log::error("the local index could not record its undo log (" + filed.error().message() +
                   "): changes since the last fsync were lost");
        deferred_error_ = Error{Code::io, EIO, "local index commit failed"};
        has_deferred_error_ = true;
        return filed;
    }
    auto synced = log_.datasync();
    if (!synced.ok()) {
        // After a failed fsync the kernel may drop the dirty pages and a
        // later fsync succeed: treat it as a loss, reported once (fsyncgate).
        deferred_error_ = synced.error();
        has_deferred_error_ = true;
        return synced;
    }
    auto st = ix_->commit_batch();
    if (!st.ok()) {
        if (!ix_->in_batch()) {
            keys_.clear();  // it may hold keys of nodes the lost batch created
            // SQLite rolled the batch back: operations acknowledged since the
            // last commit are gone. Say so loudly; later fsyncs fail.
            log::error("the local index could not commit (" + st.error().message() +
                       "): changes since the last fsync were lost");
            deferred_error_ = Error{Code::io, EIO, "local index commit failed"};
            has_deferred_error_ = true;
        }
        return st;
    }
    return {};  // synchronous=FULL: every commit is durable
}

void Core::committer_loop() {
    MutexLock lk(commit_mu_);
    bool wrote_before = false;
    while (!stop_) {
        lk.wait_for(commit_cv_, kCommitInterval);
        if (stop_) break;
        lk.unlock();
        bool wrote;
        {
            MutexLock g(mu_);
            wrote = ix_->in_batch();
        }
        if (wrote_before && !wrote) {
            // Writing has paused: hand the heap's free memory back (worker
            // threads that ended leave their 1 MiB request buffers there).
            ::malloc_trim(0);
        }
        wrote_before = wrote;
        // Most of the log reaches the disk here, outside the lock.
        (void)log_.datasync();
        {
            MutexLock g(mu_);
            if (ix_->in_batch()) {
                (void)ix_->set_meta_int("hlc", static_cast<int64_t>(clock_.last()));
                // A failure that loses the batch is recorded by commit_locked
                // (reported at the next fsync); otherwise the batch stays open
                // and the next commit retries it.
                auto st = commit_locked(false);
                if (!st.ok()) log::warn("committing the local index failed (will retry): " + st.error().message());
            }
        }
        lk.lock();
    }
}

void Core::abandon_for_tests() {
    {
        MutexLock lk(commit_mu_);
        stop_ = true;
    }
    commit_cv_.notify_all();
    if (committer_.joinable()) committer_.join();
    MutexLock lk(mu_);
    abandoned_ = true;
}

Status Core::flush_all() {
    MutexLock lk(mu_);
    if (ix_->in_batch()) (void)ix_->set_meta_int("hlc", static_cast<int64_t>(clock_.last()));
    return commit_locked(true);
}

// ---------------------------------------------------------------- the op recorder
Status Core::record(format::Op op) {
    COFFER_TRY(apply_op(op));
    if (const auto* sa = std::get_if<format::OpSetAttr>(&op.body)) {
        COFFER_ASSIGN(bool merged, merge_setattr_locked(op.hlc, *sa));
        if (merged) return {};
    }
    Bytes plain = format::encode_op(op);
    Bytes sealed = crypto::seal(local_key_, plain, as_bytes("CFPO"));
    COFFER_ASSIGN(int64_t seq, ix_->add_pending(sealed));
    (void)seq;
    return {};
}

Result<format::Op> Core::open_pending(ByteSpan sealed, Bytes& plain) const {
    plain.resize(sealed.size() >= crypto::kSealOverhead ? sealed.size() - crypto::kSealOverhead : 0);
    if (!crypto::open_into(local_key_, sealed, as_bytes("CFPO"), plain.data()).ok())
        return make_error(Code::corrupt, "local index: a pending operation failed authentication");
    return format::decode_op(plain);
}

// tar sends four setattrs per file (the kernel's own times, futimens, chown,
// chmod) and nothing is recorded between them: one op instead of four costs
// the publish three decodes and the segment about 240 bytes. The newest
// pending row is read back rather than remembered, so a rolled-back
// operation can never leave a stale copy to merge into. The merged op takes
// the later one's clock: the node's state after it is the same.
Result<bool> Core::merge_setattr_locked(format::Hlc hlc, const format::OpSetAttr& b) {
    COFFER_ASSIGN(auto last, ix_->last_pending());
    if (!last || last->first <= frozen_upto_) return false;
    Bytes plain;
    COFFER_ASSIGN(format::Op prev, open_pending(last->second, plain));
    const auto* a = std::get_if<format::OpSetAttr>(&prev.body);
    if (!a || a->node != b.node) return false;
    format::OpSetAttr m = *a;
    m.mask |= b.mask;
    if (b.mask & format::kSetMode) m.mode = b.mode;
    if (b.mask & format::kSetUid) m.uid = b.uid;
    if (b.mask & format::kSetGid) m.gid = b.gid;
    if (b.mask & format::kSetAtime) m.times.atime_ns = b.times.atime_ns;
    if (b.mask & format::kSetMtime) m.times.mtime_ns = b.times.mtime_ns;
    if (b.mask & format::kSetCtime) m.times.ctime_ns = b.times.ctime_ns;
    plain = format::encode_op(format::Op{hlc, m});
    COFFER_TRY(ix_->replace_pending(last->first, crypto::seal(local_key_, plain, as_bytes("CFPO"))));
    return true;
}

// ---------------------------------------------------------------- lifetime of nodes
void Core::maybe_delete(Ino ino) {
    if (ino == kRootIno) return;
    auto lit = lookups_.find(ino);
    if (lit != lookups_.end() && lit->second > 0) return;
    auto oit = open_count_.find(ino);
    if (oit != open_count_.end() && oit->second > 0) return;
    auto n = ix_->node(ino);
    if (!n.ok() || !*n || (*n)->nlink > 0) return;
    if (ensure_tx().ok()) (void)drop_staged(ino);
    keys_.erase(ino);
    shrinks_.erase(ino);
}

// A deleted node's row stays (a tomb another device's edit may revive);
// what it staged here and never published goes.
Status Core::drop_staged(Ino ino) {
    COFFER_TRY(ix_->cut_pieces(ino, 0));
    COFFER_ASSIGN(auto n, ix_->node(ino));
    if (!n || !n->content_dirty) return {};
    n->content_dirty = false;
    // Its size and times are now this device's alone: the next merge
    // undoes them (merge.cpp, "local_diverged").
    COFFER_TRY(ix_->set_meta_int("local_diverged", 1));
    return ix_->update_node(*n);
}

std::string Core::describe(Ino ino) {
    MutexLock lk(mu_);
    return path_of(ino);
}

std::string Core::path_of(Ino ino) {
    std::string path;
    for (int depth = 0; ino != kRootIno && depth < 4096; ++depth) {
        auto d = ix_->first_dirent_of(ino);
        if (!d.ok() || !*d) return path.empty() ? "(deleted file)" : "…/" + path;
        auto parent = ix_->node((*d)->parent);
        if (!parent.ok() || !*parent) break;
        auto name = names_.open_name((*parent)->gid, (*d)->name_sealed);
        std::string n = name.ok() ? *name : "?";
        path = path.empty() ? n : n + "/" + path;
        ino = (*d)->parent;
    }
    return path.empty() ? "/" : path;
}

}  // namespace coffer::vfs
