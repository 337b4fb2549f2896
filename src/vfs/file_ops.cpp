// File operations: open/create, read, write (append-only staging), truncate,
// fallocate, lseek, fsync.
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include "coffer/util/file_io.h"
#include "clock.h"
#include "core.h"

namespace coffer::vfs {

using index::NodeRow;

namespace {
constexpr uint64_t kMaxFileSize = (1ull << 62);

bool writable(int flags) { return (flags & O_ACCMODE) != O_RDONLY; }

// One less for `ino`; the entry goes at zero.
template <class Map>
void count_down(Map& m, Ino ino) {
    auto it = m.find(ino);
    if (it != m.end() && --it->second == 0) m.erase(it);
}
}  // namespace

Result<uint64_t> Core::open(Ino ino, int flags) {
    ChangeGate::Change change;
    if (writable(flags) || (flags & O_TRUNC)) change = gate_.begin_change(ino);
    MutexLock lk(mu_);
    COFFER_ASSIGN(NodeRow n, node_locked(ino));
    if (S_ISDIR(n.mode)) return make_error(Code::is_dir, "is a directory");
    bool writes = (flags & O_ACCMODE) != O_RDONLY;
    if (writes) COFFER_TRY(check_writable());
    if ((flags & O_TRUNC) && writes && S_ISREG(n.mode) && n.size != 0) {
        OpScope scope(*this);
        COFFER_TRY(scope.begin(OpScope::Space::frees));
        COFFER_TRY(truncate_locked(n, 0));
        COFFER_TRY(scope.commit());
    }
    uint64_t fh = next_fh_++;
    handles_[fh] = Handle{ino, flags};
    open_count_[ino] += 1;
    if (writable(flags)) writers_[ino] += 1;
    return fh;
}

Result<Filesystem::Created> Core::create(Ino parent, std::string_view name, uint32_t mode, int flags,
                                         const Ctx& ctx) {
    // A new node's number was never used in this session (Index), so no
    // fill can be storing pages under it: no content change to announce.
    MutexLock lk(mu_);
    COFFER_ASSIGN(Attr a, make_node(parent, name, S_IFREG | (mode & 07777), 0, {}, ctx));
    uint64_t fh = next_fh_++;
    handles_[fh] = Handle{a.ino, flags};
    open_count_[a.ino] += 1;
    if (writable(flags)) writers_[a.ino] += 1;
    return Created{a, fh};
}

bool Core::fill_kernel_cache(Ino ino, uint64_t generation, const std::function<void()>& store) {
    auto fill = gate_.try_fill(ino, generation);
    if (!fill) return false;
    {
        // A writable open of ino waits for this fill, so none appears
        // between this check and the end of the store.
        MutexLock lk(mu_);
        if (writers_.count(ino)) return false;
    }
    store();
    return true;
}

Status Core::flush(Ino, uint64_t) {
    MutexLock lk(mu_);
    if (has_deferred_error_) {
        has_deferred_error_ = false;
        return deferred_error_;
    }
    return {};
}

Status Core::release(Ino ino, uint64_t fh) {
    MutexLock lk(mu_);
    auto h = handles_.find(fh);
    if (h != handles_.end()) {
        if (writable(h->second.flags)) count_down(writers_, h->second.ino);
        handles_.erase(h);
    }
    auto it = open_count_.find(ino);
    if (it != open_count_.end() && --it->second == 0) {
        open_count_.erase(it);
        maybe_delete(ino);
    }
    return {};
}

Status Core::fsync(Ino, uint64_t, bool) {
    MutexLock lk(mu_);
    return commit_locked(true);
}

Result<size_t> Core::read(Ino ino, uint64_t fh, uint64_t off, size_t size, uint8_t* out) {
    ReadPlan plan;
    uint64_t len = 0;
    {
        MutexLock lk(mu_);
        COFFER_ASSIGN(NodeRow n, node_locked(ino));
        if (S_ISDIR(n.mode)) return make_error(Code::is_dir, "is a directory");
        if (off >= n.size || size == 0) return size_t{0};
        len = std::min<uint64_t>(size, n.size - off);
        COFFER_ASSIGN(plan, plan_locked(n, off, off + len));
    }
    COFFER_TRY(read_plan(plan, off, len, out, [this, ino] { return describe(ino); }));
    return static_cast<size_t>(len);
}

Result<size_t> Core::write(Ino ino, uint64_t fh, uint64_t off, ByteSpan data) {
    if (data.empty()) return size_t{0};
    std::shared_ptr<const crypto::SecretBytes> key;
    Id128 gid;
    bool append = false;
    {
        MutexLock lk(mu_);
        COFFER_TRY(check_writable());
        COFFER_ASSIGN(NodeRow n, node_locked(ino));
        if (!S_ISREG(n.mode)) return make_error(Code::invalid, "not a regular file");
        auto h = handles_.find(fh);
        append = h != handles_.end() && (h->second.flags & O_APPEND);
        gid = n.gid;
        COFFER_ASSIGN(key, file_key_locked(n));
    }
    // Sealing is the costly part and needs no lock: the frame AAD names the
    // record, not its place in the file or the log.
    uint64_t rec_id = log_.next_record_id();
    const size_t sealed_len = StagingLog::sealed_size(data.size());
    uint8_t* sealed_buf = StagingLog::scratch(sealed_len);
    StagingLog::seal(*key, gid, rec_id, data, sealed_buf);
    ByteSpan sealed(sealed_buf, sealed_len);

    auto change = gate_.begin_change(ino);
    MutexLock lk(mu_);
    OpScope scope(*this);
    COFFER_TRY(scope.begin(OpScope::Space::consumes, sealed.size()));
    COFFER_ASSIGN(NodeRow n, node_locked(ino));
    if (append) off = n.size;
    if (off + data.size() > kMaxFileSize || off + data.size() < off) return Error{Code::too_big, EFBIG, "file too large"};
    COFFER_ASSIGN(StagingLog::Place at, log_.append(sealed));
    index::StagingPiece piece{off, data.size(), at.log, at.pos, rec_id, data.size(), 0};
    COFFER_TRY(ix_->put_piece(ino, piece));
    auto [mt, ct] = content_times(n);
    COFFER_TRY(ix_->update_size_times(ino, std::max<uint64_t>(n.size, off + data.size()), mt, ct, true));
    COFFER_TRY(scope.commit());
    return data.size();
}

std::pair<int64_t, int64_t> Core::content_times(const NodeRow& n) const {
    if (kernel_times_ && S_ISREG(n.mode)) return {n.mtime, n.ctime};
    int64_t t = now_ns();
    return {t, t};
}

// Caller holds mu_ inside an OpScope.
Status Core::truncate_locked(NodeRow& n, uint64_t size) {
    if (size > kMaxFileSize) return Error{Code::too_big, EFBIG, "file too large"};
    const uint64_t E = header_.extent_size;
    if (size < n.size) {
        shrinks_[n.ino] += 1;
        COFFER_TRY(ix_->cut_pieces(n.ino, size));
        if (size % E != 0) {
            // The extent holding the new end keeps stale bytes past it: a zero
            // piece hides them, so growing the file again reads zeros.
            COFFER_ASSIGN(auto ext, ix_->extents(n.ino, size / E, size / E));
            if (!ext.empty() && ext[0].index * E + ext[0].plain_len > size) {
                uint64_t stale_end = ext[0].index * E + ext[0].plain_len;
                COFFER_TRY(ix_->put_piece(n.ino, index::StagingPiece{size, stale_end - size, 0, 0, 0, 0, 0}));
            }
        }
        COFFER_TRY(ix_->delete_extents_from(n.ino, (size + E - 1) / E));
    }
    auto [mt, ct] = content_times(n);
    COFFER_TRY(ix_->update_size_times(n.ino, size, mt, ct, true));
    n.size = size;
    return {};
}

Status Core::fallocate(Ino ino, uint64_t fh, int mode, uint64_t off, uint64_t len) {
    auto change = gate_.begin_change(ino);
    MutexLock lk(mu_);
    OpScope scope(*this);
    COFFER_TRY(scope.begin());
    COFFER_ASSIGN(NodeRow n, node_locked(ino));
    if (!S_ISREG(n.mode)) return Error{Code::invalid, ENODEV, "not a regular file"};
    if (len == 0 || off + len < off) return make_error(Code::invalid, "bad range");
    const bool keep_size = mode & FALLOC_FL_KEEP_SIZE;
    const int kind = mode & ~FALLOC_FL_KEEP_SIZE;
    uint64_t end = off + len;
    if (kind == FALLOC_FL_PUNCH_HOLE || kind == FALLOC_FL_ZERO_RANGE) {
        if (kind == FALLOC_FL_PUNCH_HOLE && !keep_size) return Error{Code::invalid, EOPNOTSUPP, "punch needs keep-size"};
        uint64_t zend = std::min(end, n.size);
        if (off < zend) COFFER_TRY(ix_->put_piece(ino, index::StagingPiece{off, zend - off, 0, 0, 0, 0, 0}));
        auto [mt, ct] = content_times(n);
        uint64_t new_size = (!keep_size && end > n.size) ? end : n.size;
        COFFER_TRY(ix_->update_size_times(ino, new_size, mt, ct, true));
    } else if (kind == 0) {
        // Space is not reserved (the vault is a synced folder); the size grows.
        if (!keep_size && end > n.size) {
            if (end > kMaxFileSize) return Error{Code::too_big, EFBIG, "file too large"};
            auto [mt, ct] = content_times(n);  // a size change is a modification (as ext4)
            COFFER_TRY(ix_->update_size_times(ino, end, mt, ct, true));
        }
    } else {
        return Error{Code::invalid, EOPNOTSUPP, "fallocate mode not supported"};
    }
    return scope.commit();
}

Result<uint64_t> Core::lseek(Ino ino, uint64_t fh, uint64_t off, int whence) {
    MutexLock lk(mu_);
    COFFER_ASSIGN(NodeRow n, node_locked(ino));
    if (whence != SEEK_DATA && whence != SEEK_HOLE) return make_error(Code::invalid, "unsupported whence");
    if (off >= n.size) return Error{Code::invalid, ENXIO, "past the end"};
    // Data map: published extents, overlaid by staged pieces (zero pieces are holes).
    const uint64_t E = header_.extent_size;
    std::map<uint64_t, std::pair<uint64_t, bool>> runs;  // start -> (end, data)
    COFFER_ASSIGN(auto ext, ix_->all_extents(ino));
    for (const auto& e : ext) runs[e.index * E] = {e.index * E + e.plain_len, true};
    COFFER_ASSIGN(auto pieces, ix_->all_pieces(ino));
    for (const auto& p : pieces) {
        // carve [p.off, p.end) out of existing runs, then insert
        auto it = runs.lower_bound(p.off);
        if (it != runs.begin()) {
            auto prev = std::prev(it);
            if (prev->second.first > p.off) {
                auto [pend, pdata] = prev->second;
                prev->second.first = p.off;
                if (pend > p.end()) runs[p.end()] = {pend, pdata};
            }
        }
        it = runs.lower_bound(p.off);
        while (it != runs.end() && it->first < p.end()) {
            auto [rend, rdata] = it->second;
            it = runs.erase(it);
            if (rend > p.end()) {
                runs[p.end()] = {rend, rdata};
                break;
            }
        }
        runs[p.off] = {p.end(), p.log != 0};
    }
    auto in_data = [&](uint64_t x) -> std::optional<uint64_t> {  // end of the data run holding x
        auto it = runs.upper_bound(x);
        if (it == runs.begin()) return std::nullopt;
        --it;
        if (it->second.second && it->second.first > x) return it->second.first;
        return std::nullopt;
    };
    if (whence == SEEK_DATA) {
        if (in_data(off)) return off;
        for (auto it = runs.upper_bound(off); it != runs.end(); ++it)
            if (it->second.second && it->first < n.size) return it->first;
        return Error{Code::invalid, ENXIO, "no data past offset"};
    }
    uint64_t x = off;
    while (auto e = in_data(x)) x = *e;
    return std::min(x, n.size);
}

}  // namespace coffer::vfs
