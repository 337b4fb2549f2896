// publish: seal a consistent cut of the staged content into objects (large
// extents alone, small ones together in packs), then write the metadata as
// one journal segment. Objects go first and are durable before the segment
// that names them; the segment's bytes are recorded before they are written.
#include <malloc.h>

#include <algorithm>
#include <cstring>

#include "coffer/format/object.h"
#include "coffer/format/segment.h"
#include "coffer/sync/sync.h"
#include "coffer/store/vault.h"
#include "coffer/util/log.h"
#include "coffer/vfs/filesystem.h"
#include "coffer/vfs/replica.h"

namespace coffer::sync {

namespace {
// Chunks of at least this many bytes get an object of their own; smaller
// ones share a pack, so 14 000 small files cost a few files and fsyncs.
constexpr uint64_t kOwnObjectMin = 1 << 20;
// The pack size; another only for the pack-size sweep (bench/packsize.sh
// builds coffer with -DCOFFER_PACK_TARGET_MB=N).
#ifndef COFFER_PACK_TARGET_MB
#define COFFER_PACK_TARGET_MB 8
#endif
constexpr uint64_t kPackTarget = uint64_t{COFFER_PACK_TARGET_MB} << 20;
constexpr uint64_t kTrimAfter = 1 << 20;

class ObjectWriter {
public:
    ObjectWriter(store::Backend& dir, const format::Header& h, const crypto::SecretBytes& object_key,
                 PublishStats& stats)
        : dir_(dir),
          object_key_(object_key),
          version_(format::object_version_for(h.version)),
          block_size_(h.block_size),
          key_epoch_(h.key_epoch),
          stats_(stats) {}

    // Seals `plain` as one chunk and says where it went.
    Result<format::ExtentRef> add(const crypto::SecretBytes& key, uint64_t index, ByteSpan plain) {
        format::ExtentRef ref;
        ref.index = index;
        ref.plain_len = static_cast<uint32_t>(plain.size());
        if (plain.size() >= kOwnObjectMin) {
            Id128 id = crypto::random_id();
            Bytes obj;
            {
                Bytes header = format::object_header(version_, id);
                obj.reserve(header.size() + format::sealed_chunk_size(plain.size(), block_size_));
                obj.assign(header.begin(), header.end());
            }
            ref.object = id;
            ref.offset = obj.size();
            format::seal_chunk(key, id, ref.offset, key_epoch_, block_size_, plain, obj);
            COFFER_TRY(write(id, obj));
            return ref;
        }
        if (pack_.empty()) {
            pack_id_ = crypto::random_id();
            // Room for the largest pack up front: growing a buffer of
            // megabytes by doubling holds both copies for a moment.
            pack_.reserve(kPackTarget + format::sealed_chunk_size(kOwnObjectMin, block_size_) + 4096);
            Bytes header = format::object_header(version_, pack_id_);
            pack_.assign(header.begin(), header.end());
        }
        ref.object = pack_id_;
        ref.offset = pack_.size();
        format::seal_chunk(key, pack_id_, ref.offset, key_epoch_, block_size_, plain, pack_);
        if (pack_.size() >= kPackTarget) COFFER_TRY(flush());
        return ref;
    }

    coffer::Status flush() {
        if (pack_.empty()) return {};
        COFFER_TRY(write(pack_id_, pack_));
        pack_.clear();
        return {};
    }
    // The last flush: the pack buffer is not needed any more.
    coffer::Status finish() {
        COFFER_TRY(flush());
        Bytes().swap(pack_);
        return {};
    }

private:
    coffer::Status write(const Id128& id, Bytes& bytes) {
        if (version_ >= 2) format::seal_object_header(bytes, object_key_, key_epoch_);
        COFFER_TRY(dir_.write_new(format::object_path(id), bytes));
        stats_.objects += 1;
        stats_.bytes += bytes.size();
        return {};
    }
    store::Backend& dir_;
    const crypto::SecretBytes& object_key_;
    uint8_t version_;
    uint32_t block_size_;
    uint32_t key_epoch_;
    PublishStats& stats_;
    Id128 pack_id_;
    Bytes pack_;
};

std::function<void()> g_after_cut_hook;

bool all_zero(ByteSpan b) {
    return std::all_of(b.begin(), b.end(), [](uint8_t x) { return x == 0; });
}
}  // namespace

void set_after_cut_hook_for_tests(std::function<void()> hook) { g_after_cut_hook = std::move(hook); }

namespace {

// Writes the segment a completed cut recorded as the intent, then clears
// the intent. A file already there (a crash after the rename) must hold the
// same bytes: anything else is a fork of this device's journal.
coffer::Status write_segment(vfs::Replica& replica, uint64_t seq, ByteSpan bytes) {
    const std::string rel = format::segment_path(replica.publish_keys().device, seq);
    auto st = replica.vault().backend().write_new(rel, bytes);
    if (!st.ok()) {
        if (st.error().code != Code::exists) return st;
        COFFER_ASSIGN(Bytes there, replica.vault().backend().read(rel, store::kMaxSegmentFile));
        if (!crypto::equal(there, bytes))
            return make_error(Code::corrupt, "vault file " + rel + " exists with other bytes than this device wrote");
    }
    return replica.clear_intent(seq, bytes.size());
}

// Finishes a publish that a crash interrupted after its intent was recorded.
coffer::Status finish_interrupted(vfs::Replica& replica) {
    COFFER_ASSIGN(auto intent, replica.intent());
    if (!intent) return {};
    return write_segment(replica, intent->seq, intent->bytes);
}

// Seals the staged content of the cut into objects, then builds the segment
// (the pending ops, read back one at a time, and a set_content op per file),
// records it and writes it. The pack buffer and the segment are never held
// at the same time.
coffer::Status publish_cut(vfs::Replica& replica, vfs::Cut& cut, PublishStats& stats) {
    const vfs::PublishKeys keys = replica.publish_keys();
    const format::Header& h = keys.header;
    const uint64_t E = h.extent_size;
    ObjectWriter writer(replica.vault().backend(), h, keys.object_key, stats);
    vfs::CutResult result;
    result.extents.reserve(cut.nodes.size());
    result.versions.reserve(cut.nodes.size());
    // The set_content ops, encoded; they follow the pending ops in the
    // segment, which is only assembled once the pack buffer is freed.
    ByteWriter content;
    content.bytes().reserve(cut.content_bytes);
    Bytes buf;
    for (vfs::NodeCut& n : cut.nodes) {
        COFFER_TRY(replica.load_key(n));
        const uint64_t nextents = (n.size + E - 1) / E;
        // Extents touched by staged pieces are re-sealed; the others are kept.
        std::vector<uint64_t> dirty;
        for (const auto& p : n.plan.pieces) {
            if (p.off >= n.size) continue;
            uint64_t last = std::min(p.end(), n.size) - 1;
            for (uint64_t i = p.off / E; i <= last / E; ++i)
                if (dirty.empty() || dirty.back() < i) dirty.push_back(i);
        }
        // An extent reaching past the end (the file was truncated inside it)
        // is re-sealed short, so the cut-off bytes leave the vault.
        for (const auto& e : n.plan.extents)
            if (e.index < nextents && e.index * E + e.plain_len > n.size) dirty.push_back(e.index);
        std::sort(dirty.begin(), dirty.end());
        dirty.erase(std::unique(dirty.begin(), dirty.end()), dirty.end());
        format::OpSetContent sc;
        std::vector<format::ExtentRef>& ext = sc.extents;
        for (const auto& e : n.plan.extents)
            if (e.index < nextents && !std::binary_search(dirty.begin(), dirty.end(), e.index)) ext.push_back(e);
        for (uint64_t idx : dirty) {
            if (idx >= nextents) continue;
            uint64_t len = std::min(E, n.size - idx * E);
            buf.resize(len);
            COFFER_TRY(replica.read_cut(n, idx * E, len, buf.data()));
            // Trailing zeros read back as zeros without being stored; an
            // all-zero extent is a hole.
            while (len > 0 && buf[len - 1] == 0) --len;
            if (len == 0 || all_zero(ByteSpan(buf.data(), len))) continue;
            COFFER_ASSIGN(format::ExtentRef ref, writer.add(*n.plan.key, idx, ByteSpan(buf.data(), len)));
            ext.push_back(ref);
        }
        std::sort(ext.begin(), ext.end(), [](const auto& a, const auto& b) { return a.index < b.index; });
        sc.node = n.plan.gid;
        sc.base_version = n.version;
        sc.version = crypto::random_id();
        sc.size = n.size;
        sc.mtime_ns = n.mtime;
        sc.ctime_ns = n.ctime;
        sc.key_epoch = n.plan.key_epoch;
        sc.wrapped_key = n.wrapped_key;  // complete_cut installs it too (a conflict copy's, wrapped anew)
        format::Op op{cut.hlc, std::move(sc)};
        format::encode_op(content, op);
        auto& done = std::get<format::OpSetContent>(op.body);
        result.versions.push_back(done.version);
        result.extents.push_back(std::move(done.extents));
        // What commit_publish does not need of the file goes now.
        n.plan.key.reset();
        std::vector<format::ExtentRef>().swap(n.plan.extents);
        std::vector<std::shared_ptr<SourceFile>>().swap(n.plan.piece_fds);
    }
    COFFER_TRY(writer.finish());
    Bytes().swap(buf);

    format::SegmentWriter segment(keys.device, cut.seq, cut.prev, cut.hlc, h.key_epoch, keys.device_name, cut.merged,
                                  cut.ops_bytes + content.size());
    COFFER_TRY(replica.encode_cut_ops(cut, segment));
    segment.add_encoded(content.bytes(), cut.nodes.size());
    Bytes().swap(content.bytes());
    stats.ops = segment.ops();
    stats.segment_seq = cut.seq;
    Bytes bytes = segment.finish(keys.journal_key);
    // Every reader refuses a segment above the cap: never write one.
    if (bytes.size() > store::kMaxSegmentFile)
        return make_error(Code::too_big, "this publish's segment would be " + std::to_string(bytes.size()) +
                                             " bytes, above the limit of " + std::to_string(store::kMaxSegmentFile));
    stats.bytes += bytes.size();
    result.segment = bytes;
    COFFER_TRY(replica.complete_cut(cut, result));
    return write_segment(replica, cut.seq, bytes);
}

}  // namespace

Result<PublishStats> publish(vfs::Replica& replica) {
    if (replica.read_only()) return Error{Code::permission, EROFS, "mounted read-only: nothing to publish"};
    std::lock_guard publishing(replica.publish_mutex());
    COFFER_TRY(finish_interrupted(replica));
    PublishStats stats;
    {
        COFFER_ASSIGN(vfs::Cut cut, replica.take_cut());
        if (g_after_cut_hook) g_after_cut_hook();
        if (cut.nodes.empty() && cut.ops == 0) return stats;
        COFFER_TRY(publish_cut(replica, cut, stats));
    }
    // A big publish leaves megabytes of freed heap (the segment, the cut, the
    // pack buffer, SQLite's cache) that glibc would keep; give them back.
    if (stats.bytes >= kTrimAfter) ::malloc_trim(0);
    return stats;
}

Result<Summary> status(vfs::Replica& replica) {
    COFFER_ASSIGN(vfs::ReplicaStatus r, replica.status());
    Summary s;
    s.pending_ops = r.pending_ops;
    s.staged_bytes = r.staged_bytes;
    s.last_seq = r.last_seq;
    s.device = r.device.hex();
    s.device_name = r.device_name;
    s.conflicts = r.conflicts;
    s.waiting = r.waiting;
    return s;
}

}  // namespace coffer::sync
