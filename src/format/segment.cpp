// Journal segment files. Layout: docs/format-content.md, "Journal segments".
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
constexpr uint8_t kSegmentVersion = 1;
constexpr size_t kVersionEntrySize = 16 + 8 + 32;

Error corrupt(const std::string& what) { return make_error(Code::corrupt, "journal segment: " + what); }

bool is_zero(const Hash32& h) {
    for (uint8_t b : h)
        if (b) return false;
    return true;
}

// Parses the decrypted body; every count is bounded by the bytes left
// before anything is allocated for it.
Status decode_body(ByteSpan plain, Segment& seg) {
    ByteReader r(plain, "journal segment body");
    COFFER_ASSIGN(seg.hlc, r.u64());
    COFFER_ASSIGN(seg.key_epoch, r.u32());
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
        auto op = decode_op(r);
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

Bytes encode_segment(const crypto::SecretBytes& journal_key, const Segment& seg) {
    ByteWriter w;
    w.raw(kMagic);
    w.u8(kSegmentVersion);
    w.id(seg.device);
    w.u64(seg.seq);
    w.raw(seg.prev);

    ByteWriter body;
    body.u64(seg.hlc);
    body.u32(seg.key_epoch);
    body.u32(static_cast<uint32_t>(seg.merged.size()));
    for (const VersionEntry& e : seg.merged) {
        body.id(e.device);
        body.u64(e.seq);
        body.raw(e.head);
    }
    body.u32(static_cast<uint32_t>(seg.ops.size()));
    for (const Op& op : seg.ops) encode_op(body, op);

    Bytes out = w.take();
    const size_t prefix = out.size();
    out.resize(prefix + body.size() + crypto::kSealOverhead);
    crypto::seal_into(journal_key, body.bytes(), {out.data(), prefix}, out.data() + prefix);
    return out;
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
    COFFER_TRY(decode_body(plain, seg));
    return seg;
}

Hash32 segment_hash(ByteSpan bytes) { return crypto::hash32(bytes); }

std::string segment_path(const Id128& device, uint64_t seq) {
    char s[17];
    std::snprintf(s, sizeof s, "%016llx", static_cast<unsigned long long>(seq));
    return "journal/" + device.hex() + "/" + s;
}

}  // namespace coffer::format
