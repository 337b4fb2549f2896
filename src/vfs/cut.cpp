// What publish needs from the core: a consistent cut of the staged state,
// and the durable record of what was published (intent first, then the file).
#include <sys/stat.h>

#include <algorithm>

#include "aad.h"
#include "coffer/util/log.h"
#include "core.h"

namespace coffer::vfs {

// Attribute and xattr changes of a node this index does not hold (cannot
// happen: a deleted node keeps its row, since another device's edit may
// bring it back, and then every device must have applied the same changes).
bool Core::about_a_removed_node(const format::Op& op) {
    const Id128* node = nullptr;
    if (auto* a = std::get_if<format::OpSetAttr>(&op.body)) node = &a->node;
    if (auto* x = std::get_if<format::OpSetXattr>(&op.body)) node = &x->node;
    if (auto* x = std::get_if<format::OpRemoveXattr>(&op.body)) node = &x->node;
    if (!node) return false;
    auto ino = ix_->ino_of(*node);
    if (!ino.ok()) return false;
    return !*ino;
}

namespace {
constexpr size_t kReleaseAfter = 1 << 20;

// Upper bound of the encoded size of the set_content op publish adds for `n`
// (its kept extents plus one per extent a staged piece touches), so the
// buffer of those ops is allocated once at its final size.
size_t content_op_bound(const NodeCut& n, uint64_t extent_size) {
    static const size_t base = format::encode_op(format::Op{0, format::OpSetContent{}}).size();
    static const size_t per_extent = [] {
        format::OpSetContent one;
        one.extents.resize(1);
        return format::encode_op(format::Op{0, one}).size() - base;
    }();
    const uint64_t nextents = (n.size + extent_size - 1) / extent_size;
    uint64_t touched = n.plan.extents.size();
    for (const auto& p : n.plan.pieces)
        if (p.off < n.size) touched += (std::min(p.end(), n.size) - 1) / extent_size - p.off / extent_size + 1;
    return base + n.wrapped_key.size() + per_extent * std::min(nextents, touched);
}

}  // namespace

// A conflict copy exists because of the order this device merged in; a
// segment that arrives later may sort so that another version is the one
// displaced, and the copy is then not made. Before its first edit is
// published, the copy is journaled as a create (where it is now), so that
// the edit always has a file to land in: where the copy exists the create
// does nothing. Caller holds mu_.
Status Core::materialize_copy(const index::NodeRow& n) {
    COFFER_ASSIGN(auto links, ix_->dirents_of(n.ino));
    if (links.empty()) return {};
    COFFER_ASSIGN(auto parent, ix_->node(links.front().parent));
    if (!parent) return {};
    COFFER_ASSIGN(std::string name, names_.open_name(parent->gid, links.front().name_sealed));
    format::OpCreate c;
    c.node = n.gid;
    c.parent = parent->gid;
    c.name = std::move(name);
    c.mode = n.mode;
    c.uid = n.uid;
    c.gid = n.gid_owner;
    c.times = format::Times{n.atime, n.mtime, n.ctime};
    Bytes plain = format::encode_op(format::Op{clock_.next(), std::move(c)});
    COFFER_TRY(ensure_tx());
    COFFER_TRY(ix_->add_pending(crypto::seal(local_key_, plain, as_bytes("CFPO"))));
    return {};
}

Result<Cut> Core::take_cut() {
    MutexLock lk(mu_);
    COFFER_TRY(commit_locked(true));
    Cut cut;
    COFFER_ASSIGN(auto dirty, ix_->dirty_nodes());
    cut.nodes.reserve(dirty.size());
    size_t content_bytes = 0;
    for (Ino ino : dirty) {
        COFFER_ASSIGN(auto n, ix_->node(ino));
        if (!n || !S_ISREG(n->mode) || n->nlink == 0) continue;  // removed: nothing to publish
        if (n->conflict && !n->key_owner.is_zero()) COFFER_TRY(materialize_copy(*n));
        NodeCut c;
        c.ino = ino;
        c.shrinks = shrinks_[ino];
        c.size = n->size;
        c.mtime = n->mtime;
        c.ctime = n->ctime;
        c.version = n->version;
        c.wrapped_key = n->wrapped_key;
        COFFER_ASSIGN(c.plan, plan_locked(*n, 0, n->size, /*with_key=*/false));
        if (!n->key_owner.is_zero()) {
            // A conflict copy's key is wrapped for the file it was copied
            // from; what is published is wrapped for the copy itself.
            auto key = crypto::open_secret(fkey_wrap_, n->wrapped_key, aad::file_key(n->key_owner, n->key_epoch));
            if (!key.ok()) return make_error(Code::corrupt, "the data key of " + path_of(ino) + " failed authentication");
            c.wrapped_key = crypto::seal(fkey_wrap_, key->span(), aad::file_key(n->gid, n->key_epoch));
            c.plan.key_owner = n->gid;
        }
        // Zero pieces past the end (left by a truncate inside an extent) are
        // published too: the extent is re-sealed without the cut-off bytes.
        COFFER_ASSIGN(auto tail, ix_->pieces(ino, std::max<uint64_t>(n->size, 1), UINT64_MAX));
        for (const auto& p : tail) {
            if (p.off < n->size) continue;
            c.plan.pieces.push_back(p);
            c.plan.piece_fds.push_back(nullptr);
        }
        content_bytes += content_op_bound(c, header_.extent_size);
        cut.nodes.push_back(std::move(c));
    }
    COFFER_ASSIGN(int64_t seq, ix_->meta_int("next_seq", 1));
    cut.seq = static_cast<uint64_t>(seq);
    if (cut.seq > 1) {
        COFFER_ASSIGN(auto prev, ix_->segment_hash(device_, cut.seq - 1));
        if (!prev || prev->size() != cut.prev.size())
            return make_error(Code::corrupt, "local index lost the hash of this device's last segment");
        std::copy(prev->begin(), prev->end(), cut.prev.begin());
    }
    cut.hlc = clock_.next();
    COFFER_ASSIGN(cut.merged, ix_->heads());
    cut.content_bytes = content_bytes;
    // Each pending op is opened and checked now; publish reads them again
    // (encode_cut_ops) when it writes the segment, so none is held here.
    Status inner;
    int64_t upto = 0;
    Bytes plain;
    COFFER_TRY(ix_->pending_ops(INT64_MAX, [&](int64_t seq, ByteSpan sealed) {
        mu_.assert_held();  // called back under it
        upto = seq;
        if (!inner.ok()) return;
        auto op = open_pending(sealed, plain);
        if (!op.ok()) {
            inner = std::move(op).error();
            return;
        }
        if (about_a_removed_node(*op)) {
            cut.skipped.push_back(seq);
            return;
        }
        cut.ops += 1;
        cut.ops_bytes += plain.size();
    }));
    COFFER_TRY(inner);
    cut.ops_upto = upto;
    frozen_upto_ = std::max(frozen_upto_, upto);
    // Writes from now on go to a new log; the old one is dropped once published.
    if (!cut.nodes.empty()) {
        COFFER_TRY(ensure_tx());
        COFFER_TRY(rotate_log());
        COFFER_TRY(commit_locked(true));
    }
    return cut;
}

Status Core::encode_cut_ops(const Cut& cut, format::SegmentWriter& out) {
    constexpr int64_t kBatch = 4096;
    int64_t after = 0;
    auto skipped = cut.skipped.begin();
    Bytes plain;
    while (after < cut.ops_upto) {
        MutexLock lk(mu_);
        Status inner;
        int64_t last = after;
        COFFER_TRY(ix_->pending_ops_batch(after, cut.ops_upto, kBatch, [&](int64_t seq, ByteSpan sealed) {
            last = seq;
            if (!inner.ok()) return;
            while (skipped != cut.skipped.end() && *skipped < seq) ++skipped;
            if (skipped != cut.skipped.end() && *skipped == seq) return;
            auto op = open_pending(sealed, plain);
            if (!op.ok()) {
                inner = std::move(op).error();
                return;
            }
            out.add(*op);
        }));
        COFFER_TRY(inner);
        // Rows up to ops_upto stay until commit_publish deletes them: an empty batch is a bug.
        if (last == after) return make_error(Code::internal, "pending operations vanished during a publish");
        after = last;
    }
    if (out.ops() != cut.ops)
        return make_error(Code::internal, "pending operations changed during a publish");
    return {};
}

Status Core::load_key(NodeCut& n) {
    auto key = crypto::open_secret(fkey_wrap_, n.wrapped_key, aad::file_key(n.plan.key_owner, n.plan.key_epoch));
    if (!key.ok()) return make_error(Code::corrupt, "the data key of " + describe(n.ino) + " failed authentication");
    n.plan.key = std::make_shared<const crypto::SecretBytes>(std::move(*key));
    return {};
}

Status Core::read_cut(const NodeCut& n, uint64_t off, uint64_t len, uint8_t* out) {
    return read_plan(n.plan, off, len, out, [this, ino = n.ino] { return describe(ino); });
}

Status Core::complete_cut(const Cut& cut, const CutResult& result) {
    if (result.extents.size() != cut.nodes.size() || result.versions.size() != cut.nodes.size())
        return make_error(Code::internal, "a publish result does not match its cut");
    MutexLock lk(mu_);
    COFFER_TRY(commit_locked(true));
    // All of it or nothing: a failure half-way (a full disk while the
    // segment is stored) must not leave published ops deleted without their
    // intent, or an intent of zeros. A publish may use the reserve kept
    // free on the local disk: it is how a full disk gets its space back
    // (the staging logs it published are dropped).
    OpScope scope(*this);
    COFFER_TRY(scope.begin(OpScope::Space::frees));
    const uint64_t E = header_.extent_size;
    for (size_t i = 0; i < cut.nodes.size(); ++i) {
        const NodeCut& c = cut.nodes[i];
        COFFER_ASSIGN(auto row, ix_->node(c.ino));
        if (!row || row->gid != c.plan.gid) continue;  // deleted since the cut (its inode may be reused)
        if (shrinks_[c.ino] != c.shrinks) {
            // Cut shorter since the cut: the new extents may hold bytes the
            // shrink removed. Keep the staged state; the next publish redoes it.
            row->version = result.versions[i];
            row->content_dirty = true;
            COFFER_TRY(ix_->update_node(*row));
            continue;
        }
        for (const auto& p : c.plan.pieces) COFFER_TRY(ix_->delete_piece_if_same(c.ino, p));
        std::vector<format::ExtentRef> ext;
        uint64_t live = (row->size + E - 1) / E;  // a truncate since the cut drops extents past the end
        for (const auto& e : result.extents[i])
            if (e.index < live) ext.push_back(e);
        COFFER_TRY(ix_->replace_extents(c.ino, ext));
        COFFER_ASSIGN(auto left, ix_->all_pieces(c.ino));
        row->version = result.versions[i];
        if (!row->key_owner.is_zero() && !c.wrapped_key.empty()) {
            row->wrapped_key = c.wrapped_key;  // as published: wrapped for this node
            row->key_owner = Id128{};
        }
        row->version_device = device_;
        row->version_hlc = cut.hlc;  // the set_content op's clock, as every device records it
        row->content_dirty = !left.empty() || row->size != c.size || row->mtime != c.mtime;
        COFFER_TRY(ix_->update_node(*row));
    }
    COFFER_TRY(ix_->delete_pending_upto(cut.ops_upto));
    COFFER_TRY(ix_->put_intent(cut.seq, result.segment));
    COFFER_TRY(ix_->set_meta_int("next_seq", static_cast<int64_t>(cut.seq + 1)));
    format::Hash32 h = format::segment_hash(result.segment);
    COFFER_TRY(ix_->add_segment(device_, cut.seq, h));
    COFFER_TRY(ix_->put_device(index::DeviceRow{device_, device_name_, cut.seq, cut.hlc}));
    COFFER_ASSIGN(int64_t own_from, ix_->meta_int("merge_own_from", 0));
    if (own_from == 0) {
        // The first segment since the last merge: where an undo of the local changes starts.
        COFFER_TRY(ix_->set_meta_int("merge_own_from", static_cast<int64_t>(cut.seq)));
        COFFER_TRY(ix_->set_meta_int("merge_own_from_hlc", static_cast<int64_t>(cut.hlc)));
    }
    COFFER_TRY(ix_->set_meta_int("hlc", static_cast<int64_t>(clock_.last())));
    COFFER_TRY(scope.commit());
    frozen_upto_ = 0;  // the rows the cut took are gone (row ids may start again at 1)
    return commit_locked(true);
}

Result<std::optional<Intent>> Core::intent() {
    MutexLock lk(mu_);
    COFFER_ASSIGN(auto i, ix_->intent());
    if (!i) return std::optional<Intent>{};
    return std::optional<Intent>(Intent{i->first, std::move(i->second)});
}

Status Core::clear_intent(uint64_t seq, size_t segment_bytes) {
    MutexLock lk(mu_);
    COFFER_ASSIGN(auto i, ix_->intent());
    if (!i || i->first != seq) return make_error(Code::internal, "the publish intent changed while its segment was written");
    COFFER_TRY(ensure_tx());
    COFFER_TRY(ix_->clear_intent());
    COFFER_TRY(commit_locked(true));
    // A big publish leaves SQLite's page cache full of pages no one reads
    // again (the pending ops it deleted, the intent): give that memory back.
    if (segment_bytes >= kReleaseAfter) ix_->release_memory();
    drop_unused_logs();
    return {};
}

Result<ReplicaStatus> Core::status() {
    MutexLock lk(mu_);
    ReplicaStatus s;
    COFFER_ASSIGN(s.pending_ops, ix_->pending_count());
    COFFER_ASSIGN(s.staged_bytes, ix_->staged_bytes());
    COFFER_ASSIGN(int64_t next, ix_->meta_int("next_seq", 1));
    s.last_seq = static_cast<uint64_t>(next - 1);
    s.device = device_;
    s.device_name = device_name_;
    COFFER_ASSIGN(auto copies, ix_->conflict_copies());
    s.conflicts = copies.size();
    s.waiting = waiting_;
    return s;
}

}  // namespace coffer::vfs
