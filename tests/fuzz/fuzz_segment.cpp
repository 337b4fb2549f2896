// libFuzzer target: journal segments.
// The first input byte picks a mode:
//   even: the rest is a segment file, decoded with the fixed fuzz key
//         (reaches the prefix checks and the AEAD; seeds are sealed with that key);
//   odd:  the rest is a plaintext body, sealed here under a valid prefix, so
//         the fuzzer reaches the body parser behind authentication: of the
//         newest journal version (1, 5, ...) or of journal version 1 (3, 7, ...).
// Property: no crash, only corrupt/unsupported errors, and an accepted body is
// canonical (re-encoding the decoded segment seals exactly the same body).
// A segment of an older journal version is re-encoded as the newest: that
// decodes to the same segment, with the fields the old one lacked empty.
// The body is also run over the seed corpus by tests/unit/format/test_fuzz_regress.cpp.
#include "coffer/crypto/crypto.h"
#include "fuzz_entry.h"
#include "coffer/format/segment.h"

namespace coffer::fuzz {

inline crypto::SecretBytes fuzz_journal_key() {
    Bytes k(32);
    for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(i + 1);  // 01 02 .. 20
    return crypto::SecretBytes::from(k);
}

// The prefix every odd-mode input is sealed under: device 11.., seq 1, no prev.
inline Bytes fuzz_segment_prefix(uint8_t version = format::kOpsVersion) {
    ByteWriter w;
    w.raw(as_bytes("COFFERJ"));
    w.u8(version);
    Id128 device;
    device.b.fill(0x11);
    w.id(device);
    w.u64(1);
    w.raw(format::Hash32{});
    return w.take();
}

const char* fuzz_segment(const uint8_t* data, size_t size) {
    using namespace coffer::format;
    if (size == 0) return nullptr;
    static const crypto::SecretBytes key = fuzz_journal_key();
    ByteSpan rest(data + 1, size - 1);

    Bytes file;
    if (data[0] % 2 == 0) {
        file.assign(rest.begin(), rest.end());
    } else {
        file = fuzz_segment_prefix(data[0] & 2 ? 1 : kOpsVersion);
        Bytes sealed = crypto::seal(key, rest, file);
        file.insert(file.end(), sealed.begin(), sealed.end());
    }
    auto seg = decode_segment(key, file);
    if (!seg.ok()) {
        Code c = seg.error().code;
        return c == Code::corrupt || c == Code::unsupported ? nullptr : "unexpected error code";
    }
    if (seg->version != kOpsVersion) {
        if (!seg->device_name.empty()) return "an old segment has a device name";
        for (const Op& op : seg->ops) {
            if (auto* u = std::get_if<OpUnlink>(&op.body); u && !u->seen.is_zero()) return "an old unlink has a seen version";
            if (auto* r = std::get_if<OpRename>(&op.body); r && !r->replaced_seen.is_zero())
                return "an old rename has a seen version";
        }
        auto now = decode_segment(key, encode_segment(key, *seg));
        if (!now.ok() || now->version != kOpsVersion) return "an old segment re-encoded does not decode";
        now->version = seg->version;
        if (!(*now == *seg)) return "an old segment re-encoded decodes to another";
        return nullptr;
    }
    Bytes again = encode_segment(key, *seg);
    if (again.size() != file.size()) return "re-encoded segment has another size";
    if (!std::equal(again.begin(), again.begin() + kSegmentPrefixSize, file.begin())) return "prefix changed";
    auto body = crypto::open(key, ByteSpan(again).subspan(kSegmentPrefixSize), ByteSpan(again).first(kSegmentPrefixSize));
    auto orig = crypto::open(key, ByteSpan(file).subspan(kSegmentPrefixSize), ByteSpan(file).first(kSegmentPrefixSize));
    if (!body.ok() || !orig.ok() || *body != *orig) return "accepted body is not canonical";
    auto back = decode_segment(key, again);
    if (!back.ok() || !(*back == *seg)) return "re-encoded segment does not decode to the same";
    return nullptr;
}

}  // namespace coffer::fuzz

COFFER_FUZZ_ENTRY(coffer::fuzz::fuzz_segment)
