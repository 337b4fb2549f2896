// coffer.vault: format version, vault id, cipher, sizes, epoch, key slots.
// Authenticated with a MAC under a subkey of the master key; the vault id is
// a keyed commitment to the master key. Layout: docs/FORMAT.md.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "coffer/crypto/crypto.h"
#include "coffer/util/bytes.h"

namespace coffer::format {

// Format 2 (new vaults) differs from format 1 only in its objects, whose
// headers carry an authenticated length. Format 1 vaults stay readable and
// writable (with format 1 objects).
constexpr uint8_t kFormatVersion = 2;
constexpr uint8_t kMinFormatVersion = 1;
constexpr uint32_t kDefaultBlockSize = 16 * 1024;
constexpr uint32_t kDefaultExtentSize = 4 * 1024 * 1024;
constexpr size_t kMaxHeaderBody = 1 << 20;

enum class Cipher : uint8_t { xchacha20poly1305 = 1 };

// Slot types. Unknown types are kept on rewrite and ignored on unlock, so a
// newer slot type never locks an older build out of a slot it understands.
enum class SlotType : uint8_t {
    password = 1,
    recovery_key = 2,
    // reserved for later issues: contact_share = 3, pkcs11 = 4, tpm2 = 5, fido2 = 6
};

struct Slot {
    SlotType type{};
    Id128 id;        // random; lets slot changes from two devices merge
    Bytes payload;   // type-specific, see slots.h
    friend bool operator==(const Slot&, const Slot&) = default;
};

using VaultId = std::array<uint8_t, 32>;

struct Header {
    uint8_t version = kFormatVersion;
    uint32_t flags = 0;  // feature flags; any unknown bit means refuse
    VaultId vault_id{};
    Cipher cipher = Cipher::xchacha20poly1305;
    uint32_t block_size = kDefaultBlockSize;
    uint32_t extent_size = kDefaultExtentSize;
    uint64_t epoch = 1;      // +1 on every change of the header
    uint32_t key_epoch = 1;  // epoch of the current master key (rotation)
    std::vector<Slot> slots;
    friend bool operator==(const Header&, const Header&) = default;
};

// The vault id: BLAKE2b-256 keyed with the master key over "coffer vault id v1".
VaultId vault_id_for(const crypto::SecretBytes& master);
// 32 lowercase hex digits naming the vault (first 16 bytes of the id).
std::string vault_id_short(const VaultId& id);

// Code::invalid unless block_size is a power of two in [4 KiB, 1 MiB] and
// extent_size a non-zero multiple of it up to 64 MiB (parse_header refuses
// the same as corrupt).
Status check_geometry(uint32_t block_size, uint32_t extent_size);

Bytes encode_header(const Header& h, const crypto::SecretBytes& master);
// Parses structure only (not authenticated yet): Code::corrupt for malformed
// bytes, Code::unsupported for an unknown version or feature flag.
Result<Header> parse_header(ByteSpan bytes);
// After an unwrap: checks the vault id commitment (constant time) and the MAC.
// Code::corrupt if either fails (a forged slot or an edited header).
Status verify_header(ByteSpan bytes, const Header& parsed, const crypto::SecretBytes& master);

}  // namespace coffer::format
