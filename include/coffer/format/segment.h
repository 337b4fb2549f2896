// Journal segments: journal/<device hex>/<seq as 16 hex digits>.
// A segment is sealed with the journal subkey; its plaintext prefix (device,
// seq, previous hash) is the AEAD's associated data. Layout: docs/FORMAT.md.
#pragma once

#include <array>
#include <vector>

#include "coffer/crypto/crypto.h"
#include "coffer/format/ops.h"

namespace coffer::format {

using Hash32 = std::array<uint8_t, 32>;

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
    std::vector<VersionEntry> merged;  // version vector of what the device had merged
    std::vector<Op> ops;
    friend bool operator==(const Segment&, const Segment&) = default;
};

Bytes encode_segment(const crypto::SecretBytes& journal_key, const Segment& seg);
// Checks magic, version, AEAD; Code::corrupt for any tampering,
// Code::unsupported for a newer format version.
Result<Segment> decode_segment(const crypto::SecretBytes& journal_key, ByteSpan bytes);
// BLAKE2b-256 of the whole segment file.
Hash32 segment_hash(ByteSpan bytes);
// "journal/<device>/<seq>" relative path.
std::string segment_path(const Id128& device, uint64_t seq);

}  // namespace coffer::format
