// Journal segments: journal/<device hex>/<seq as 16 hex digits>.
// A segment is sealed with the journal subkey; its plaintext prefix (device,
// seq, previous hash) is the AEAD's associated data. Layout: docs/FORMAT.md.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "coffer/crypto/crypto.h"
#include "coffer/format/ops.h"

namespace coffer::format {

using Hash32 = std::array<uint8_t, 32>;

// Longest device name a segment carries (bytes of UTF-8).
constexpr size_t kMaxDeviceName = 64;

// "COFFER" 'J' version(1) device(16) seq(8) prev(32): the AEAD's associated data.
constexpr size_t kSegmentPrefixSize = 64;

struct VersionEntry {
    Id128 device;
    uint64_t seq = 0;
    Hash32 head{};  // hash of that device's segment `seq`
    friend bool operator==(const VersionEntry&, const VersionEntry&) = default;
};

struct Segment {
    Id128 device;
    uint64_t seq = 0;          // 1, 2, 3, ... per device, no gaps
    Hash32 prev{};             // hash of this device's segment seq-1 (zero for seq 1)
    Hlc hlc = 0;               // when it was published
    uint32_t key_epoch = 1;
    std::string device_name;           // the name its device goes by (journal 2; empty before)
    uint8_t version = kOpsVersion;     // the journal version it was read as (not written: encode writes the newest)
    std::vector<VersionEntry> merged;  // version vector of what the device had merged
    std::vector<Op> ops;
    friend bool operator==(const Segment&, const Segment&) = default;
};

Bytes encode_segment(const crypto::SecretBytes& journal_key, const Segment& seg);

// Builds a segment file op by op, for a publish of many operations: each op
// is encoded straight into the file's one buffer and the body is sealed in
// place, so no decoded operation and no second copy of the body is held.
// finish() gives the file encode_segment gives for the same fields and ops.
class SegmentWriter {
public:
    SegmentWriter() = default;
    // `reserve_ops`: bytes of encoded ops expected (the buffer never grows
    // by copying if they fit).
    SegmentWriter(const Id128& device, uint64_t seq, const Hash32& prev, Hlc hlc, uint32_t key_epoch,
                  std::string_view device_name, const std::vector<VersionEntry>& merged, size_t reserve_ops = 0);
    void add(const Op& op);
    // Appends `count` ops already encoded back to back (encode_op).
    void add_encoded(ByteSpan ops, uint64_t count);
    uint64_t ops() const { return ops_; }
    // Bytes of the file so far (without the tag).
    size_t size() const { return w_.size(); }
    // Seals the body in place and hands over the file; the writer is empty after.
    Bytes finish(const crypto::SecretBytes& journal_key);

private:
    ByteWriter w_;           // prefix | room for the nonce | body
    size_t count_at_ = 0;    // where the op count goes
    uint64_t ops_ = 0;
};
// Checks magic, version, AEAD; Code::corrupt for any tampering,
// Code::unsupported for a newer format version.
Result<Segment> decode_segment(const crypto::SecretBytes& journal_key, ByteSpan bytes);
// BLAKE2b-256 of the whole segment file.
Hash32 segment_hash(ByteSpan bytes);
// "journal/<device>/<seq>" relative path.
std::string segment_path(const Id128& device, uint64_t seq);

}  // namespace coffer::format
