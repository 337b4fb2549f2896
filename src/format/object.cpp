// Content objects, chunks and blocks. Layout: docs/FORMAT.md, "Objects".
//
// The object id is bound into every block's associated data, so a header (or
// a whole object) moved under another name fails when its first block is
// opened. Version 2 headers also carry the object's length under a MAC, so
// bytes appended past the last chunk, which no block would notice, are caught.
#include "coffer/format/object.h"

#include <cstring>
#include <stdexcept>

namespace coffer::format {

namespace {
constexpr uint8_t kMagic[7] = {'C', 'O', 'F', 'F', 'E', 'R', 'O'};
constexpr size_t kLengthAt = 24;  // version 2: u64 length . u32 key epoch
constexpr size_t kMacAt = 36;     // version 2: keyed BLAKE2b-256 of bytes [0, 36)
constexpr uint8_t kBlockAadTag[4] = {'C', 'F', 'B', 'K'};

uint64_t block_count(uint64_t plain_len, uint32_t block_size) {
    if (block_size == 0) throw std::invalid_argument("block size 0");
    return plain_len / block_size + (plain_len % block_size != 0);
}
}  // namespace

uint8_t object_version_for(uint8_t vault_version) { return vault_version >= 2 ? 2 : 1; }

size_t object_header_size(uint8_t object_version) {
    return object_version >= 2 ? kObjectHeaderSizeV2 : kObjectHeaderSizeV1;
}

Bytes object_header(uint8_t object_version, const Id128& object_id) {
    if (object_version < 1 || object_version > kObjectVersionMax)
        throw std::invalid_argument("object_header: version " + std::to_string(object_version));
    ByteWriter w;
    w.raw(kMagic);
    w.u8(object_version);
    w.id(object_id);
    Bytes out = w.take();
    out.resize(object_header_size(object_version), 0);
    return out;
}

void seal_object_header(Bytes& object, const crypto::SecretBytes& object_key, uint32_t key_epoch) {
    if (object.size() < kObjectHeaderSizeV2 || object[sizeof kMagic] != 2)
        throw std::invalid_argument("seal_object_header: not a version 2 object");
    ByteWriter w;
    w.u64(object.size());
    w.u32(key_epoch);
    std::memcpy(object.data() + kLengthAt, w.bytes().data(), w.bytes().size());
    auto mac = crypto::mac32(object_key, ByteSpan(object.data(), kMacAt));
    std::memcpy(object.data() + kMacAt, mac.data(), mac.size());
}

Result<ObjectHeaderInfo> check_object_header(ByteSpan header, const Id128& expected_id, uint8_t vault_version,
                                             const crypto::SecretBytes& object_key, uint32_t key_epoch) {
    const std::string name = "object " + expected_id.hex();
    if (header.size() < sizeof kMagic || std::memcmp(header.data(), kMagic, sizeof kMagic) != 0)
        return make_error(Code::corrupt, name + ": not a coffer object");
    if (header.size() <= sizeof kMagic) return make_error(Code::corrupt, name + ": truncated header");
    ObjectHeaderInfo info;
    info.version = header[sizeof kMagic];
    if (info.version > kObjectVersionMax)
        return make_error(Code::unsupported,
                          name + ": object version " + std::to_string(info.version) + " is newer than this coffer");
    if (info.version == 0) return make_error(Code::corrupt, name + ": object version 0 is not defined");
    const uint8_t expected = object_version_for(vault_version);
    if (info.version != expected)
        return make_error(Code::corrupt, name + ": object version " + std::to_string(info.version) +
                                             " in a vault of format " + std::to_string(vault_version) +
                                             " (which writes version " + std::to_string(expected) + ")");
    info.header_size = object_header_size(info.version);
    if (header.size() < info.header_size) return make_error(Code::corrupt, name + ": truncated header");
    Id128 id;
    std::memcpy(id.b.data(), header.data() + 8, id.b.size());
    if (id != expected_id) return make_error(Code::corrupt, name + ": header names object " + id.hex());
    if (info.version == 1) return info;
    auto mac = crypto::mac32(object_key, header.first(kMacAt));
    if (!crypto::equal(mac, header.subspan(kMacAt, mac.size())))
        return make_error(Code::corrupt, name + ": header failed authentication");
    ByteReader r(header.subspan(kLengthAt, 12));
    COFFER_ASSIGN(uint64_t length, r.u64());
    COFFER_ASSIGN(uint32_t epoch, r.u32());
    if (epoch != key_epoch)
        return make_error(Code::corrupt, name + ": sealed under key epoch " + std::to_string(epoch) +
                                             ", this vault's is " + std::to_string(key_epoch));
    if (length < info.header_size) return make_error(Code::corrupt, name + ": length below its header");
    info.length = length;
    return info;
}

std::string object_path(const Id128& object_id) {
    std::string hex = object_id.hex();
    return "objects/" + hex.substr(0, 2) + "/" + hex;
}

uint64_t sealed_chunk_size(uint64_t plain_len, uint32_t block_size) {
    return plain_len + block_count(plain_len, block_size) * crypto::kSealOverhead;
}

uint64_t sealed_block_offset(uint64_t block_index, uint32_t block_size) {
    return block_index * (uint64_t{block_size} + crypto::kSealOverhead);
}

Bytes block_aad(const BlockAad& a) {
    ByteWriter w;
    w.raw(kBlockAadTag);
    w.id(a.object);
    w.u64(a.chunk_offset);
    w.u64(a.block_index);
    w.u8(a.last ? 1 : 0);
    w.u32(a.key_epoch);
    return w.take();
}

void seal_chunk(const crypto::SecretBytes& file_key, const Id128& object, uint64_t chunk_offset,
                uint32_t key_epoch, uint32_t block_size, ByteSpan plain, Bytes& out) {
    if (plain.empty()) throw std::invalid_argument("seal_chunk: empty chunk");
    const uint64_t n = block_count(plain.size(), block_size);
    size_t at = out.size();
    out.resize(at + sealed_chunk_size(plain.size(), block_size));
    BlockAad aad{object, chunk_offset, 0, false, key_epoch};
    for (uint64_t i = 0; i < n; ++i) {
        aad.block_index = i;
        aad.last = i + 1 == n;
        ByteSpan block = plain.subspan(i * block_size, std::min<size_t>(block_size, plain.size() - i * block_size));
        crypto::seal_into(file_key, block, block_aad(aad), out.data() + at);
        at += block.size() + crypto::kSealOverhead;
    }
}

Status open_block(const crypto::SecretBytes& file_key, const BlockAad& aad, ByteSpan sealed, uint8_t* out) {
    if (sealed.size() <= crypto::kSealOverhead || !crypto::open_into(file_key, sealed, block_aad(aad), out).ok())
        return make_error(Code::corrupt, "object " + aad.object.hex() + " chunk at " +
                                             std::to_string(aad.chunk_offset) + " block " +
                                             std::to_string(aad.block_index) + " failed authentication");
    return {};
}

}  // namespace coffer::format
