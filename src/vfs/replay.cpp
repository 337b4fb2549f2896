// Rebuilding the index from the vault: apply every journal segment this
// device has not applied yet (all of them on a new device).
#include <malloc.h>

#include <algorithm>

#include "coffer/util/log.h"
#include "core.h"

namespace coffer::vfs {

namespace {
struct Pending {
    format::Segment seg;
    Bytes bytes;
};
bool is_hex(std::string_view s, size_t n) {
    return s.size() == n && std::all_of(s.begin(), s.end(), [](char c) {
               return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
           });
}
}  // namespace

// Every device's newest segment this device has applied must still be in the
// vault, with the same bytes: otherwise the cloud folder was rolled back (or a
// segment deleted or replaced). Caller holds mu_.
Status Core::check_heads() {
    COFFER_ASSIGN(auto heads, ix_->heads());
    COFFER_ASSIGN(auto intent, ix_->intent());
    for (const auto& h : heads) {
        if (h.device == device_ && intent && intent->first == h.seq) continue;  // written at the next publish
        std::string rel = format::segment_path(h.device, h.seq);
        auto fd = vault_.backend().open_read(rel);
        if (!fd.ok()) {
            if (fd.error().code != Code::pending) return std::move(fd).error();
            return make_error(Code::rolled_back, "vault file " + rel +
                                                     ", which this device has already seen, is missing: the cloud "
                                                     "folder was rolled back or the file deleted");
        }
        // Hashed as it is read: a segment of a large publish is not held in memory.
        format::Hash32 hash{};
        if (!crypto::hash32_fd((*fd)->get(), hash)) return sys_error(errno, "cannot read vault file " + rel);
        if (hash != h.head)
            return make_error(Code::rolled_back, "vault file " + rel +
                                                     " differs from the one this device has seen: replaced by the "
                                                     "cloud folder");
    }
    return {};
}

Result<MergeReport> Core::merge() {
    MutexLock lk(mu_);
    COFFER_TRY(replay_vault());
    return MergeReport{};
}

std::vector<std::string> Core::journal_gaps() {
    MutexLock lk(mu_);
    return journal_gaps_;
}

// Caller holds mu_.
Status Core::replay_vault() {
    COFFER_TRY(check_heads());
    COFFER_ASSIGN(auto devices, vault_.backend().list("journal"));
    std::vector<Pending> todo;
    journal_gaps_.clear();
    COFFER_ASSIGN(int64_t own_next, ix_->meta_int("next_seq", 1));
    for (const auto& dev_hex : devices) {
        if (!is_hex(dev_hex, 32)) continue;  // not ours (a sync client's stray file)
        COFFER_ASSIGN(Id128 dev, Id128::from_hex(dev_hex));
        COFFER_ASSIGN(auto names, vault_.backend().list("journal/" + dev_hex));
        std::vector<uint64_t> seqs;
        for (const auto& n : names)
            if (is_hex(n, 16)) seqs.push_back(std::stoull(n, nullptr, 16));
        std::sort(seqs.begin(), seqs.end());
        format::Hash32 prev{};
        uint64_t expect = 1;
        for (uint64_t seq : seqs) {
            if (seq != expect) {
                // Later segments are here, so the missing one exists: the
                // cloud has not delivered it yet. What follows it waits.
                std::string missing = format::segment_path(dev, expect);
                log::warn("pending: vault file " + missing + " has not arrived (later segments of that device "
                          "have); its changes and the later ones are not applied yet");
                journal_gaps_.push_back(std::move(missing));
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
            std::string rel = format::segment_path(dev, seq);
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
            prev = format::segment_hash(bytes);
            todo.push_back(Pending{std::move(*seg), std::move(bytes)});
        }
    }
    if (todo.empty()) return {};
    std::stable_sort(todo.begin(), todo.end(), [](const Pending& a, const Pending& b) {
        if (a.seg.device == b.seg.device) return a.seg.seq < b.seg.seq;
        return a.seg.hlc < b.seg.hlc;
    });
    COFFER_TRY(ensure_tx());
    for (const auto& p : todo) COFFER_TRY(apply_segment(p.seg, p.bytes));
    COFFER_TRY(ix_->set_meta_int("hlc", static_cast<int64_t>(clock_.last())));
    COFFER_TRY(commit_locked(true));
    log::info("applied " + std::to_string(todo.size()) + " journal segment(s) from the vault");
    todo.clear();
    todo.shrink_to_fit();
    ::malloc_trim(0);  // hand the decoded segments' memory back: the daemon idles from here
    return {};
}

Status Core::apply_segment(const format::Segment& seg, ByteSpan bytes) {
    size_t failed = 0;
    for (const auto& op : seg.ops) {
        index::Savepoint sp(*ix_);
        COFFER_TRY(sp.begin());
        auto st = apply_op(op);
        if (st.ok()) COFFER_TRY(sp.commit());
        if (!st.ok()) {
            keys_.clear();  // sp rolls back: a create may have cached a key for an inode number reused later
            ++failed;
            log::warn("segment " + seg.device.hex() + "/" + std::to_string(seg.seq) +
                      ": an operation did not apply: " + st.error().message());
        }
    }
    if (failed) log::warn(std::to_string(failed) + " operation(s) skipped (concurrent changes; merging comes later)");
    format::Hash32 h = format::segment_hash(bytes);
    return ix_->add_segment(seg.device, seg.seq, h);
}

Result<std::vector<Ino>> Core::regular_files() {
    MutexLock lk(mu_);
    return ix_->regular_files();
}

Result<std::vector<Id128>> Core::referenced_objects() {
    MutexLock lk(mu_);
    return ix_->referenced_objects();
}

}  // namespace coffer::vfs
