// coffer.vault encoding. Layout tables: docs/FORMAT.md.
#include "coffer/format/header.h"

#include <algorithm>
#include <cstdio>
#include <stdexcept>

namespace coffer::format {

namespace {

constexpr uint8_t kMagic[6] = {'C', 'O', 'F', 'F', 'E', 'R'};
constexpr uint8_t kHeaderKind = 'H';
constexpr size_t kPreambleSize = 12;  // magic 6 | kind 1 | version 1 | body length 4
constexpr size_t kMacSize = 32;
constexpr size_t kMaxSlotPayload = 64 * 1024;
constexpr uint32_t kKnownFlags = 0;  // no feature flags defined in version 1
constexpr char kVaultIdContext[] = "coffer vault id v1";

constexpr uint32_t kMinBlock = 4 * 1024;
constexpr uint32_t kMaxBlock = 1024 * 1024;
constexpr uint32_t kMaxExtent = 64 * 1024 * 1024;

// Empty string when the geometry is acceptable, else why not.
std::string geometry_problem(uint32_t block_size, uint32_t extent_size) {
    if (block_size < kMinBlock || block_size > kMaxBlock || (block_size & (block_size - 1)) != 0)
        return "block size " + std::to_string(block_size) + " is not a power of two between 4 KiB and 1 MiB";
    if (extent_size == 0 || extent_size % block_size != 0 || extent_size > kMaxExtent)
        return "extent size " + std::to_string(extent_size) + " is not a multiple of the block size up to 64 MiB";
    return {};
}

std::string hex32(uint32_t v) {
    char buf[16];
    std::snprintf(buf, sizeof buf, "0x%08x", v);
    return buf;
}

Error corrupt(const std::string& what) { return make_error(Code::corrupt, "vault header: " + what); }

}  // namespace

Status check_geometry(uint32_t block_size, uint32_t extent_size) {
    std::string problem = geometry_problem(block_size, extent_size);
    if (!problem.empty()) return make_error(Code::invalid, problem);
    return {};
}

VaultId vault_id_for(const crypto::SecretBytes& master) {
    VaultId id{};
    crypto::keyed_hash(master, as_bytes(kVaultIdContext), id);
    return id;
}

std::string vault_id_short(const VaultId& id) { return to_hex(ByteSpan(id.data(), 16)); }

Bytes encode_header(const Header& h, const crypto::SecretBytes& master) {
    // Limits the parser enforces; breaking them here is a bug in the caller.
    if (h.slots.size() > 0xffff) throw std::length_error("encode_header: too many key slots");
    ByteWriter body;
    body.u32(h.flags);
    body.raw(h.vault_id);
    body.u8(static_cast<uint8_t>(h.cipher));
    body.u32(h.block_size);
    body.u32(h.extent_size);
    body.u64(h.epoch);
    body.u32(h.key_epoch);
    body.u16(static_cast<uint16_t>(h.slots.size()));
    for (const Slot& s : h.slots) {
        if (s.payload.size() > kMaxSlotPayload) throw std::length_error("encode_header: slot payload too large");
        body.u8(static_cast<uint8_t>(s.type));
        body.id(s.id);
        body.blob(s.payload);
    }
    if (body.size() > kMaxHeaderBody) throw std::length_error("encode_header: header body too large");

    ByteWriter w;
    w.raw(kMagic);
    w.u8(kHeaderKind);
    w.u8(h.version);
    w.u32(static_cast<uint32_t>(body.size()));
    w.raw(body.bytes());
    auto mac = crypto::mac32(crypto::derive(master, crypto::Subkey::header_mac), w.bytes());
    w.raw(mac);
    return w.take();
}

Result<Header> parse_header(ByteSpan bytes) {
    ByteReader r(bytes, "vault header");
    COFFER_ASSIGN(ByteSpan magic, r.raw(sizeof kMagic));
    COFFER_ASSIGN(uint8_t kind, r.u8());
    if (!std::equal(magic.begin(), magic.end(), kMagic) || kind != kHeaderKind)
        return corrupt("not a coffer.vault file (bad magic)");
    Header h;
    COFFER_ASSIGN(h.version, r.u8());
    // The version decides how the rest is read, so it is checked before the
    // MAC can be: a newer vault is refused with advice, not called corrupt.
    if (h.version > kFormatVersion)
        return make_error(Code::unsupported, "vault format version " + std::to_string(h.version) +
                                                 " is newer than this coffer (" +
                                                 std::to_string(kFormatVersion) + "); upgrade coffer");
    if (h.version < kMinFormatVersion)
        return make_error(Code::unsupported,
                          "vault format version " + std::to_string(h.version) + " is not supported");
    COFFER_ASSIGN(uint32_t body_len, r.u32());
    if (body_len > kMaxHeaderBody)
        return corrupt("body length " + std::to_string(body_len) + " exceeds the limit");
    if (r.remaining() < size_t{body_len} + kMacSize) return corrupt("truncated");
    if (r.remaining() > size_t{body_len} + kMacSize)
        return corrupt(std::to_string(r.remaining() - body_len - kMacSize) + " trailing bytes");
    COFFER_ASSIGN(ByteSpan body_bytes, r.raw(body_len));

    ByteReader b(body_bytes, "vault header body");
    COFFER_ASSIGN(h.flags, b.u32());
    if ((h.flags & ~kKnownFlags) != 0)
        return make_error(Code::unsupported, "vault uses feature flags " + hex32(h.flags & ~kKnownFlags) +
                                                 " unknown to this coffer; upgrade coffer");
    COFFER_ASSIGN(ByteSpan id, b.raw(h.vault_id.size()));
    std::copy(id.begin(), id.end(), h.vault_id.begin());
    COFFER_ASSIGN(uint8_t cipher, b.u8());
    if (cipher != static_cast<uint8_t>(Cipher::xchacha20poly1305))
        return make_error(Code::unsupported,
                          "vault uses cipher " + std::to_string(cipher) + ", unknown to this coffer; upgrade coffer");
    h.cipher = static_cast<Cipher>(cipher);
    COFFER_ASSIGN(h.block_size, b.u32());
    COFFER_ASSIGN(h.extent_size, b.u32());
    std::string problem = geometry_problem(h.block_size, h.extent_size);
    if (!problem.empty()) return corrupt(problem);
    COFFER_ASSIGN(h.epoch, b.u64());
    COFFER_ASSIGN(h.key_epoch, b.u32());
    COFFER_ASSIGN(uint16_t nslots, b.u16());
    h.slots.reserve(nslots);
    for (uint16_t i = 0; i < nslots; ++i) {
        Slot s;
        COFFER_ASSIGN(uint8_t type, b.u8());
        s.type = static_cast<SlotType>(type);  // unknown types are kept as they are
        COFFER_ASSIGN(s.id, b.id());
        COFFER_ASSIGN(ByteSpan payload, b.blob(kMaxSlotPayload));
        s.payload.assign(payload.begin(), payload.end());
        h.slots.push_back(std::move(s));
    }
    COFFER_TRY(b.expect_end());
    return h;
}

Status verify_header(ByteSpan bytes, const Header& parsed, const crypto::SecretBytes& master) {
    const Error forged = make_error(Code::corrupt, "vault header failed authentication: edited or forged");
    // The id commits to the master key: a slot forged by the cloud unwraps to
    // some key, but not to one whose id is this vault's.
    VaultId expected = vault_id_for(master);
    if (!crypto::equal(expected, parsed.vault_id)) return forged;
    if (bytes.size() < kPreambleSize + kMacSize) return forged;
    // The MAC must cover the very header the caller acts on.
    auto reparsed = parse_header(bytes);
    if (!reparsed.ok() || !(*reparsed == parsed)) return forged;
    ByteSpan covered = bytes.first(bytes.size() - kMacSize);
    auto mac = crypto::mac32(crypto::derive(master, crypto::Subkey::header_mac), covered);
    if (!crypto::equal(mac, bytes.last(kMacSize))) return forged;
    return {};
}

}  // namespace coffer::format
