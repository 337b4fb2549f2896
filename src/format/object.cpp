// Content objects, chunks and blocks. Layout: docs/format-content.md, "Objects".
//
// The object header is not authenticated on its own: the object id is bound
// into every block's associated data, so a header (or a whole object) moved
// under another name fails when its first block is opened.
#include "coffer/format/object.h"

#include <cstring>
#include <stdexcept>

namespace coffer::format {

namespace {
constexpr uint8_t kMagic[7] = {'C', 'O', 'F', 'F', 'E', 'R', 'O'};
constexpr uint8_t kObjectVersion = 1;
constexpr uint8_t kBlockAadTag[4] = {'C', 'F', 'B', 'K'};

uint64_t block_count(uint64_t plain_len, uint32_t block_size) {
    if (block_size == 0) throw std::invalid_argument("block size 0");
    return plain_len / block_size + (plain_len % block_size != 0);
}
}  // namespace

Bytes object_header(const Id128& object_id) {
    ByteWriter w;
    w.raw(kMagic);
    w.u8(kObjectVersion);
    w.id(object_id);
    return w.take();
}

Status check_object_header(ByteSpan header, const Id128& expected_id) {
    const std::string name = "object " + expected_id.hex();
    if (header.size() < sizeof kMagic || std::memcmp(header.data(), kMagic, sizeof kMagic) != 0)
        return make_error(Code::corrupt, name + ": not a coffer object");
    if (header.size() <= sizeof kMagic) return make_error(Code::corrupt, name + ": truncated header");
    uint8_t version = header[sizeof kMagic];
    if (version > kObjectVersion)
        return make_error(Code::unsupported,
                          name + ": object version " + std::to_string(version) + " is newer than this coffer");
    if (version == 0) return make_error(Code::corrupt, name + ": object version 0 is not defined");
    if (header.size() < kObjectHeaderSize) return make_error(Code::corrupt, name + ": truncated header");
    Id128 id;
    std::memcpy(id.b.data(), header.data() + 8, id.b.size());
    if (id != expected_id) return make_error(Code::corrupt, name + ": header names object " + id.hex());
    return {};
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
