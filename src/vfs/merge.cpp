// Merging other devices' journal segments (docs/ARCHITECTURE.md, "Merging").
//
// Every device applies all segments in one order: by the segment's clock,
// then device id, then sequence number. The clocks are hybrid logical
// clocks that every merge advances past what it applied, so a segment made
// after another was merged sorts after it: the order respects causality.
// A segment is applied only once everything its version vector says its
// device had merged is applied here (causal apply); until then it waits.
//
// A segment that sorts before segments applied already is put in its place:
// the later ones are undone (the undo log holds, per applied segment, the
// SQLite changeset that reverses it), the new one is applied, and the
// undone ones are applied again. Local changes since the last merge are
// captured the same way as they are made, and a merge runs only when all of
// them are published (every one is in a segment it can apply again).
#include <malloc.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <optional>
#include <set>

#include "coffer/util/log.h"
#include "core.h"

namespace coffer::vfs {

namespace {
using SegId = std::pair<Id128, uint64_t>;

// hlc | device | seq, big-endian: memcmp order is the merge order.
Bytes order_key(format::Hlc hlc, const Id128& device, uint64_t seq) {
    Bytes k(32);
    for (int i = 0; i < 8; ++i) k[i] = static_cast<uint8_t>(hlc >> (56 - 8 * i));
    std::memcpy(k.data() + 8, device.b.data(), 16);
    for (int i = 0; i < 8; ++i) k[24 + i] = static_cast<uint8_t>(seq >> (56 - 8 * i));
    return k;
}
// Local changes not yet placed in the order: always undone first.
const Bytes kLocalKey(32, 0xff);
const Bytes kNeverKey(32, 0x00);

// The key just before k (k is never all zeros: a clock is never zero).
Bytes key_before(Bytes k) {
    for (size_t i = k.size(); i-- > 0;)
        if (k[i]-- != 0) break;
    return k;
}

int key_cmp(ByteSpan a, ByteSpan b) { return std::memcmp(a.data(), b.data(), std::min(a.size(), b.size())); }

Bytes encode_segs(const std::vector<SegId>& segs) {
    ByteWriter w;
    for (const auto& [dev, seq] : segs) {
        w.id(dev);
        w.u64(seq);
    }
    return w.take();
}
Result<std::vector<SegId>> decode_segs(ByteSpan b) {
    std::vector<SegId> out;
    ByteReader r(b, "undo log");
    while (!r.at_end()) {
        COFFER_ASSIGN(Id128 dev, r.id());
        COFFER_ASSIGN(uint64_t seq, r.u64());
        out.emplace_back(dev, seq);
    }
    return out;
}

std::string seq_name(const Id128& dev, uint64_t seq) { return format::segment_path(dev, seq); }
}  // namespace

struct Core::Incoming {
    format::Segment seg;
    format::Hash32 hash{};
    Bytes key;
    bool fresh = true;  // not applied here before (false: applied again after an undo)
};

Result<MergeReport> Core::merge() {
    MutexLock lk(mu_);
    return merge_locked();
}

std::vector<std::string> Core::journal_gaps() {
    MutexLock lk(mu_);
    return journal_gaps_;
}

Result<std::vector<DeviceInfo>> Core::devices() {
    MutexLock lk(mu_);
    COFFER_ASSIGN(auto rows, ix_->devices());
    std::vector<DeviceInfo> out;
    bool self = false;
    for (const auto& r : rows) {
        out.push_back(DeviceInfo{r.device, r.name, r.seq, r.hlc, r.device == device_});
        self = self || r.device == device_;
    }
    if (!self) out.push_back(DeviceInfo{device_, device_name_, 0, 0, true});  // has not published yet
    return out;
}

Result<std::vector<std::string>> Core::conflict_copies() {
    MutexLock lk(mu_);
    COFFER_ASSIGN(auto inos, ix_->conflict_copies());
    std::vector<std::string> out;
    for (Ino ino : inos) out.push_back(path_of(ino));
    std::sort(out.begin(), out.end());
    return out;
}

std::string Core::device_name_of(const Id128& device) {
    if (device == device_) return device_name_;
    auto d = ix_->device(device);
    if (d.ok() && *d && !(*d)->name.empty()) return (*d)->name;
    return device.hex().substr(0, 8);
}

// Ends the capture of local changes so far and files it under kLocalKey;
// starts a new one unless `restart` is false (a merge, which captures each
// segment on its own). Caller holds mu_, inside the batch.
Status Core::file_local_changes(bool restart) {
    if (!ix_->capturing()) return {};
    COFFER_ASSIGN(Bytes undo, ix_->capture_take());
    if (!undo.empty()) COFFER_TRY(ix_->push_undo(index::UndoEntry{0, kLocalKey, kLocalKey, {}, std::move(undo)}));
    return restart ? ix_->capture_begin() : Status{};
}

// Reads every segment of other devices that is not applied here and
// checks each device's chain. Caller holds mu_.
Status Core::scan_journal(std::vector<std::unique_ptr<Incoming>>& out) {
    COFFER_ASSIGN(auto devices, vault_.backend().list("journal"));
    COFFER_ASSIGN(int64_t own_next, ix_->meta_int("next_seq", 1));
    journal_gaps_.clear();
    gap_waiters_.clear();
    for (const auto& dev_hex : devices) {
        if (!is_lower_hex(dev_hex, 32)) continue;  // not coffer's (a sync client's file)
        COFFER_ASSIGN(Id128 dev, Id128::from_hex(dev_hex));
        COFFER_ASSIGN(auto names, vault_.backend().list("journal/" + dev_hex));
        std::vector<uint64_t> seqs;
        for (const auto& n : names)
            if (is_lower_hex(n, 16)) seqs.push_back(std::stoull(n, nullptr, 16));
        std::sort(seqs.begin(), seqs.end());
        seqs.erase(std::unique(seqs.begin(), seqs.end()), seqs.end());
        format::Hash32 prev{};
        uint64_t expect = 1;
        for (uint64_t seq : seqs) {
            if (seq != expect) {
                // Later segments are here, so the missing one exists: the
                // cloud has not delivered it yet. What follows it waits.
                std::string missing = seq_name(dev, expect);
                if (gaps_logged_.insert(missing).second)
                    log::warn("pending: vault file " + missing + " has not arrived (later segments of that device "
                              "have); its changes and the later ones are not applied yet");
                journal_gaps_.push_back(missing);
                gap_waiters_.push_back(seq_name(dev, seq) + ": waits for " + missing + ", which has not arrived");
                break;
            }
            ++expect;
            COFFER_ASSIGN(auto known, ix_->segment_hash(dev, seq));
            if (known) {
                std::copy(known->begin(), known->end(), prev.begin());
                continue;
            }
            if (dev == device_ && static_cast<int64_t>(seq) < own_next) continue;  // published here
            if (dev == device_) {
                return make_error(Code::rolled_back,
                                  "the vault holds segments of this device that its local state does not know: "
                                  "the local state was restored from an older copy; use a new --state folder");
            }
            std::string rel = seq_name(dev, seq);
            COFFER_ASSIGN(Bytes bytes, vault_.backend().read(rel, store::kMaxSegmentFile));
            auto seg = format::decode_segment(journal_key_, bytes);
            if (!seg.ok()) {
                Error e = std::move(seg).error();
                e.context = "vault file " + rel + ": " + e.context;
                return e;
            }
            if (seg->device != dev || seg->seq != seq)
                return make_error(Code::corrupt, "vault file " + rel + " holds another segment (moved by the cloud)");
            if (seg->prev != prev)
                return make_error(Code::corrupt, "vault file " + rel + " does not follow the previous segment "
                                                 "(replaced or rolled back)");
            auto in = std::make_unique<Incoming>();
            in->hash = format::segment_hash(bytes);
            prev = in->hash;
            in->key = order_key(seg->hlc, dev, seq);
            in->seg = std::move(*seg);
            out.push_back(std::move(in));
        }
    }
    return {};
}

// What the kernel may cache of what a merge changed: the inodes, and the
// entries by (parent, name). Caller holds mu_.
Status Core::tell_kernel(const index::Index::Touched& t, MergeReport& rep) {
    std::set<Ino> inodes(t.nodes.begin(), t.nodes.end());
    std::set<std::pair<Ino, std::string>> entries;
    auto add_entry = [&](Ino parent, ByteSpan sealed) -> Status {
        mu_.assert_held();
        COFFER_ASSIGN(auto p, ix_->node(parent));
        if (!p) return {};  // the folder itself is gone: invalidating its inode is enough
        auto name = names_.open_name(p->gid, sealed);
        if (name.ok()) entries.emplace(parent, std::move(*name));
        inodes.insert(parent);
        return {};
    };
    for (const auto& [parent, sealed] : t.entries) COFFER_TRY(add_entry(parent, sealed));
    // A changed regular file's entries too: with the write-back cache the
    // kernel keeps its own size of a file it holds, whatever getattr says;
    // forgetting the entries lets it drop the inode (unless open) and look
    // it up afresh.
    for (Ino ino : t.nodes) {
        COFFER_ASSIGN(auto n, ix_->node(ino));
        if (!n || !S_ISREG(n->mode)) continue;
        COFFER_ASSIGN(auto links, ix_->dirents_of(ino));
        for (const auto& d : links) COFFER_TRY(add_entry(d.parent, d.name_sealed));
    }
    for (int64_t id : t.entry_ids) {
        COFFER_ASSIGN(auto d, ix_->dirent_by_id(id));
        if (d) COFFER_TRY(add_entry(d->parent, d->name_sealed));
    }
    rep.changed_inodes.assign(inodes.begin(), inodes.end());
    rep.changed_entries.assign(entries.begin(), entries.end());
    return {};
}

// Undo entries are kept for as long as a segment may still arrive that
// sorts before them: every known device's next segment sorts after its
// newest one here, and a device that has not published yet is allowed a
// week. Caller holds mu_, inside the batch.
Status Core::prune_undo() {
    constexpr uint64_t kWeekMs = 7ull * 24 * 3600 * 1000;
    const uint64_t now_ms = static_cast<uint64_t>(now_ns() / 1000000);
    format::Hlc cutoff = static_cast<format::Hlc>(now_ms > kWeekMs ? now_ms - kWeekMs : 0) << 16;
    COFFER_ASSIGN(auto devices, ix_->devices());
    for (const auto& d : devices)
        if (d.device != device_) cutoff = std::min<format::Hlc>(cutoff, d.hlc);
    COFFER_ASSIGN(int64_t before, ix_->meta_int("undo_pruned_below", 0));
    if (cutoff <= static_cast<uint64_t>(before)) return {};
    COFFER_TRY(ix_->prune_undo(order_key(cutoff, Id128{}, 0)));
    return ix_->set_meta_int("undo_pruned_below", static_cast<int64_t>(cutoff));
}

Result<MergeReport> Core::merge_locked() {
    MergeReport rep;
    COFFER_ASSIGN(uint64_t pending, ix_->pending_count());
    COFFER_ASSIGN(auto dirty, ix_->dirty_nodes());
    COFFER_ASSIGN(auto intent, ix_->intent());
    if (pending || !dirty.empty() || intent) {
        rep.postponed = true;
        return rep;
    }
    COFFER_TRY(check_heads());
    std::vector<std::unique_ptr<Incoming>> fresh;
    COFFER_TRY(scan_journal(fresh));
    rep.waiting = gap_waiters_;

    // Causal readiness, to a fixed point: a segment is ready when its
    // device's previous one and everything its vector names are applied
    // here or ready.
    COFFER_ASSIGN(int64_t own_next, ix_->meta_int("next_seq", 1));
    std::map<SegId, Incoming*> by_id;
    for (auto& in : fresh) by_id[{in->seg.device, in->seg.seq}] = in.get();
    std::set<SegId> ready;
    std::map<SegId, std::string> blocked;
    auto have = [&](const Id128& dev, uint64_t seq, const format::Hash32* head, std::string& why) -> Result<bool> {
        mu_.assert_held();
        if (seq == 0) return true;
        if (dev == device_ && static_cast<int64_t>(seq) >= own_next) {
            why = "names a segment of this device that it never published: " + seq_name(dev, seq);
            return false;
        }
        // Its hash: applied here (this device's own included), or ready in this merge.
        std::optional<format::Hash32> h;
        COFFER_ASSIGN(auto known, ix_->segment_hash(dev, seq));
        if (known && known->size() == format::Hash32{}.size()) {
            h.emplace();
            std::copy(known->begin(), known->end(), h->begin());
        } else if (ready.count({dev, seq})) {
            h = by_id.at({dev, seq})->hash;
        }
        if (!h) {
            why = "waits for " + seq_name(dev, seq);
            return false;
        }
        if (head && *h != *head) {
            why = "names a different " + seq_name(dev, seq) + " than this device holds (a fork or tampering)";
            return false;
        }
        return true;
    };
    for (bool progress = true; progress;) {
        progress = false;
        for (auto& in : fresh) {
            SegId id{in->seg.device, in->seg.seq};
            if (ready.count(id)) continue;
            std::string why;
            COFFER_ASSIGN(bool ok, have(id.first, id.second - 1, nullptr, why));
            for (const auto& e : in->seg.merged) {
                if (!ok) break;
                COFFER_ASSIGN(ok, have(e.device, e.seq, &e.head, why));
            }
            if (ok) {
                ready.insert(id);
                progress = true;
                blocked.erase(id);
            } else {
                blocked[id] = why;
            }
        }
    }
    for (const auto& [id, why] : blocked) rep.waiting.push_back(seq_name(id.first, id.second) + ": " + why);
    waiting_ = rep.waiting;
    std::vector<std::unique_ptr<Incoming>> todo;
    for (auto& in : fresh)
        if (ready.count({in->seg.device, in->seg.seq})) todo.push_back(std::move(in));
    fresh.clear();
    std::sort(todo.begin(), todo.end(), [](const auto& a, const auto& b) { return key_cmp(a->key, b->key) < 0; });

    COFFER_TRY(ensure_tx());
    // Place the local changes since the last merge in the order: they are
    // this device's segments since then (all published, checked above).
    COFFER_TRY(file_local_changes(/*restart=*/false));
    COFFER_ASSIGN(int64_t own_from, ix_->meta_int("merge_own_from", 0));
    Bytes own_first;  // the key of this device's first segment since the last merge
    if (own_from > 0) {
        COFFER_ASSIGN(int64_t from_hlc, ix_->meta_int("merge_own_from_hlc", 0));
        COFFER_ASSIGN(auto self, ix_->device(device_));
        if (!self) return make_error(Code::internal, "local index: this device's newest segment is not recorded");
        std::vector<SegId> own;
        for (uint64_t s = static_cast<uint64_t>(own_from); s <= self->seq; ++s) own.emplace_back(device_, s);
        own_first = order_key(static_cast<format::Hlc>(from_hlc), device_, own_from);
        COFFER_TRY(ix_->relabel_undo(kLocalKey, own_first,
                                     order_key(self->hlc, device_, self->seq), encode_segs(own)));
        COFFER_TRY(ix_->set_meta_int("merge_own_from", 0));
    } else {
        COFFER_TRY(ix_->relabel_undo(kLocalKey, kNeverKey, kNeverKey, {}));
    }
    COFFER_TRY(prune_undo());
    // Local changes that did more than their segments say (content staged
    // and then dropped with a deleted file leaves that file's row as this
    // device alone has it) are undone and their segments applied again, so
    // the row is every device's.
    COFFER_ASSIGN(int64_t diverged, ix_->meta_int("local_diverged", 0));
    const bool normalize = diverged && !own_first.empty();
    if (diverged) COFFER_TRY(ix_->set_meta_int("local_diverged", 0));
    if (todo.empty() && !normalize) {
        if (!opts_.read_only) COFFER_TRY(ix_->capture_begin());
        return rep;  // the committer commits the bookkeeping
    }
    // Undo from the first new segment, or from this device's own since the
    // last merge when they are to be normalized and sort earlier.
    Bytes first = todo.empty() ? kLocalKey : todo.front()->key;
    if (normalize && key_cmp(own_first, first) <= 0) first = key_before(own_first);
    COFFER_ASSIGN(int64_t pruned_below, ix_->meta_int("undo_pruned_below", 0));
    if (!todo.empty() && todo.front()->seg.hlc < static_cast<uint64_t>(pruned_below))
        log::warn("merge: a segment of device " + todo.front()->seg.device.hex() +
                  " sorts before changes too old to undo: it is applied after them, and this device's tree may "
                  "differ from others' until a new local state is made");

    // Undo what sorts after the first new segment.
    std::vector<SegId> again;
    index::Index::Touched touched;
    for (;;) {
        COFFER_ASSIGN(auto top, ix_->top_undo());
        if (!top || key_cmp(top->key_hi, first) <= 0) break;
        COFFER_TRY(ix_->touched_by(top->changes, touched));
        COFFER_TRY(ix_->apply_undo(top->changes));
        COFFER_ASSIGN(auto segs, decode_segs(top->segments));
        again.insert(again.end(), segs.begin(), segs.end());
        COFFER_TRY(ix_->pop_undo(top->id));
    }
    for (const auto& [dev, seq] : again) {
        std::string rel = seq_name(dev, seq);
        COFFER_ASSIGN(Bytes bytes, vault_.backend().read(rel, store::kMaxSegmentFile));
        COFFER_ASSIGN(auto known, ix_->segment_hash(dev, seq));
        format::Hash32 h = format::segment_hash(bytes);
        if (!known || !crypto::equal(*known, h))
            return make_error(Code::rolled_back, "vault file " + rel + " differs from the one this device applied");
        COFFER_ASSIGN(format::Segment seg, format::decode_segment(journal_key_, bytes));
        auto in = std::make_unique<Incoming>();
        in->key = order_key(seg.hlc, dev, seq);
        in->hash = h;
        in->seg = std::move(seg);
        in->fresh = false;
        todo.push_back(std::move(in));
    }
    std::sort(todo.begin(), todo.end(), [](const auto& a, const auto& b) { return key_cmp(a->key, b->key) < 0; });

    merge_conflicts_ = merge_skipped_ = 0;
    for (const auto& in : todo) {
        const format::Segment& seg = in->seg;
        COFFER_TRY(ix_->capture_begin());
        OpOrigin origin{seg.device, seg.device == device_ ? std::string_view(device_name_) : seg.device_name,
                        seg.version};
        for (const auto& op : seg.ops) COFFER_TRY(apply_op(op, origin));
        clock_.observe(seg.hlc);
        COFFER_ASSIGN(Bytes undo, ix_->capture_take());
        if (started_) COFFER_TRY(ix_->touched_by(undo, touched));  // before start() no kernel knows anything
        COFFER_TRY(ix_->push_undo(index::UndoEntry{0, in->key, in->key, encode_segs({{seg.device, seg.seq}}),
                                                   std::move(undo)}));
        if (in->fresh) {
            COFFER_TRY(ix_->add_segment(seg.device, seg.seq, in->hash));
            COFFER_TRY(ix_->put_device(index::DeviceRow{seg.device, seg.device_name, seg.seq, seg.hlc}));
            rep.segments += 1;
            rep.ops += seg.ops.size();
        } else {
            rep.redone += 1;
        }
    }
    rep.conflicts = merge_conflicts_;
    todo.clear();
    COFFER_TRY(tell_kernel(touched, rep));
    keys_.clear();  // an undo may have removed nodes whose keys were cached
    COFFER_TRY(ix_->set_meta_int("hlc", static_cast<int64_t>(clock_.last())));
    if (!opts_.read_only) COFFER_TRY(ix_->capture_begin());
    COFFER_TRY(commit_locked(true));
    gate_.invalidate_all();
    if (rep.segments)
        log::info("merged " + std::to_string(rep.segments) + " segment(s) from other devices" +
                  (rep.redone ? " (" + std::to_string(rep.redone) + " applied again to keep the order)" : "") +
                  (rep.conflicts ? ", " + std::to_string(rep.conflicts) + " conflict(s)" : ""));
    ::malloc_trim(0);  // hand the decoded segments' memory back
    return rep;
}

}  // namespace coffer::vfs
