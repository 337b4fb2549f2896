// Journal segment files. Layout: docs/FORMAT.md, "Journal segments".
//
//   prefix (64 bytes, the AEAD's associated data)
//     "COFFER" 'J' version device(16) seq(u64) prev(32)
//   sealed body: nonce(24) | ciphertext | tag(16), under the journal subkey
#include "coffer/format/segment.h"

#include <cstdio>
#include <cstring>

namespace coffer::format {

namespace {

constexpr uint8_t kMagic[7] = {'C', 'O', 'F', 'F', 'E', 'R', 'J'};
constexpr uint8_t kSegmentVersion = kOpsVersion;  // 2: device name, seen versions
constexpr size_t kVersionEntrySize = 16 + 8 + 32;

Error corrupt(const std::string& what) { return make_error(Code::corrupt, "journal segment: " + what); }

bool is_zero(const Hash32& h) {
    for (uint8_t b : h)
        if (b) return false;
    return true;
}

// Parses the decrypted body; every count is bounded by the bytes left
// before anything is allocated for it.
Status decode_body(ByteSpan plain, uint8_t version, Segment& seg) {
    ByteReader r(plain, "journal segment body");
    COFFER_ASSIGN(seg.hlc, r.u64());
    COFFER_ASSIGN(seg.key_epoch, r.u32());
    if (version >= 2) {
        COFFER_ASSIGN(seg.device_name, r.str(kMaxDeviceName));
    }
    COFFER_ASSIGN(uint32_t merged, r.u32());
    if (merged > r.remaining() / kVersionEntrySize)
        return corrupt("merged count " + std::to_string(merged) + " does not fit in the body");
    seg.merged.resize(merged);
    for (VersionEntry& e : seg.merged) {
        COFFER_ASSIGN(e.device, r.id());
        COFFER_ASSIGN(e.seq, r.u64());
        COFFER_ASSIGN(ByteSpan head, r.raw(e.head.size()));
        std::memcpy(e.head.data(), head.data(), e.head.size());
    }
    COFFER_ASSIGN(uint32_t ops, r.u32());
    if (ops > r.remaining() / kMinEncodedOp)
        return corrupt("op count " + std::to_string(ops) + " does not fit in the body");
    seg.ops.reserve(ops);
    for (uint32_t i = 0; i < ops; ++i) {
        auto op = decode_op(r, version);
        if (!op.ok()) {
            Error e = std::move(op).error();
            e.context = "journal segment op " + std::to_string(i) + ": " + e.context;
            return e;
        }
        seg.ops.push_back(std::move(op).value());
    }
    return r.expect_end();
}

}  // namespace

SegmentWriter::SegmentWriter(const Id128& device, uint64_t seq, const Hash32& prev, Hlc hlc, uint32_t key_epoch,
                             std::string_view device_name, const std::vector<VersionEntry>& merged,
                             size_t reserve_ops) {
    const size_t head = kSegmentPrefixSize + crypto::kNonceSize + 8 + 4 + 4 + device_name.size() + 4 +
                        merged.size() * kVersionEntrySize + 4;
    w_.bytes().reserve(head + reserve_ops + crypto::kTagSize);
    w_.raw(kMagic);
    w_.u8(kSegmentVersion);
    w_.id(device);
    w_.u64(seq);
    w_.raw(prev);
    w_.bytes().resize(kSegmentPrefixSize + crypto::kNonceSize);  // the nonce goes here at finish()
    w_.u64(hlc);
    w_.u32(key_epoch);
    w_.str(device_name.substr(0, kMaxDeviceName));
    w_.u32(static_cast<uint32_t>(merged.size()));
    for (const VersionEntry& e : merged) {
        w_.id(e.device);
        w_.u64(e.seq);
        w_.raw(e.head);
    }
    count_at_ = w_.size();
    w_.u32(0);
}

void SegmentWriter::add(const Op& op) {
    encode_op(w_, op);
    ++ops_;
}

void SegmentWriter::add_encoded(ByteSpan ops, uint64_t count) {
    w_.raw(ops);
    ops_ += count;
}

Bytes SegmentWriter::finish(const crypto::SecretBytes& journal_key) {
    Bytes out = w_.take();
    w_ = ByteWriter();
    put_u32le(out.data() + count_at_, static_cast<uint32_t>(ops_));
    const size_t body_at = kSegmentPrefixSize + crypto::kNonceSize;
    const size_t body_len = out.size() - body_at;
    out.resize(out.size() + crypto::kTagSize);
    // In place: XChaCha20 XORs the body where it lies, the tag goes after it.
    crypto::seal_into(journal_key, {out.data() + body_at, body_len}, {out.data(), kSegmentPrefixSize},
                      out.data() + kSegmentPrefixSize);
    ops_ = 0;
    count_at_ = 0;
    return out;
}

Bytes encode_segment(const crypto::SecretBytes& journal_key, const Segment& seg) {
    SegmentWriter w(seg.device, seg.seq, seg.prev, seg.hlc, seg.key_epoch, seg.device_name, seg.merged);
    for (const Op& op : seg.ops) w.add(op);
    return w.finish(journal_key);
}

Result<Segment> decode_segment(const crypto::SecretBytes& journal_key, ByteSpan bytes) {
    if (bytes.size() < sizeof kMagic || std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0)
        return make_error(Code::corrupt, "not a coffer journal segment");
    ByteReader r(bytes, "journal segment");
    COFFER_TRY(r.raw(sizeof kMagic));
    COFFER_ASSIGN(uint8_t version, r.u8());
    // The version is checked before authentication: a newer format may seal
    // differently. Tampering with it can only make the segment unreadable.
    if (version > kSegmentVersion)
        return make_error(Code::unsupported, "journal segment version " + std::to_string(version) +
                                                 " is newer than this coffer");
    if (version == 0) return corrupt("version 0 is not defined");
    if (bytes.size() < kSegmentPrefixSize + crypto::kSealOverhead)
        return corrupt("truncated (" + std::to_string(bytes.size()) + " bytes)");

    Segment seg;
    seg.version = version;
    COFFER_ASSIGN(seg.device, r.id());
    COFFER_ASSIGN(seg.seq, r.u64());
    COFFER_ASSIGN(ByteSpan prev, r.raw(seg.prev.size()));
    std::memcpy(seg.prev.data(), prev.data(), seg.prev.size());
    if (seg.seq == 0) return corrupt("sequence number 0");
    if ((seg.seq == 1) != is_zero(seg.prev))
        return corrupt(seg.seq == 1 ? "first segment names a previous one" : "previous hash missing");

    ByteSpan sealed = bytes.subspan(kSegmentPrefixSize);
    Bytes plain(sealed.size() - crypto::kSealOverhead);
    if (!crypto::open_into(journal_key, sealed, bytes.first(kSegmentPrefixSize), plain.data()).ok())
        return make_error(Code::corrupt, "journal segment failed authentication");
    COFFER_TRY(decode_body(plain, version, seg));
    return seg;
}

Hash32 segment_hash(ByteSpan bytes) { return crypto::hash32(bytes); }

std::string segment_path(const Id128& device, uint64_t seq) {
    char s[17];
    std::snprintf(s, sizeof s, "%016llx", static_cast<unsigned long long>(seq));
    return "journal/" + device.hex() + "/" + s;
}

}  // namespace coffer::format
