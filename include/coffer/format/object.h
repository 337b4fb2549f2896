// Content objects: objects/<2 hex>/<32 hex>. An object holds one or more
// chunks; a chunk is the content of one extent (or of a whole small file)
// sealed block by block with the file's data key. Layout: docs/FORMAT.md.
#pragma once

#include <optional>

#include "coffer/crypto/crypto.h"
#include "coffer/util/bytes.h"

namespace coffer::format {

// Object format 1 (vault format 1): "COFFER" 'O' version(1) object-id(16).
// Object format 2 (vault format 2) adds the object's length and key epoch,
// authenticated with a MAC under the master key's object_header subkey, so
// a truncated or extended object is caught when it is opened.
constexpr size_t kObjectHeaderSizeV1 = 24;
constexpr size_t kObjectHeaderSizeV2 = 68;  // v1 . u64 length . u32 key epoch . MAC(32)
constexpr size_t kObjectHeaderMax = kObjectHeaderSizeV2;
constexpr uint8_t kObjectVersionMax = 2;

// The object format a vault of format `vault_version` writes and expects.
uint8_t object_version_for(uint8_t vault_version);
size_t object_header_size(uint8_t object_version);

// The header of a new object. For version 2 the length and MAC are left
// zero: seal_object_header fills them in once every chunk is appended.
Bytes object_header(uint8_t object_version, const Id128& object_id);
// Version 2 only: writes the final length (object.size()), the key epoch and
// the MAC into the header at the start of `object`.
void seal_object_header(Bytes& object, const crypto::SecretBytes& object_key, uint32_t key_epoch);

struct ObjectHeaderInfo {
    uint8_t version = 0;
    size_t header_size = 0;
    std::optional<uint64_t> length;  // the authenticated length (version 2)
};
// Checks the first bytes of an object file (at least the whole header; more
// is ignored): magic, version (the one `vault_version` expects: an older one
// is a downgrade, corrupt; a newer one is unsupported), id, and for version 2
// the key epoch and the MAC. The caller compares `length` with the file size.
Result<ObjectHeaderInfo> check_object_header(ByteSpan header, const Id128& expected_id, uint8_t vault_version,
                                             const crypto::SecretBytes& object_key, uint32_t key_epoch);
std::string object_path(const Id128& object_id);  // "objects/ab/ab…"

// Sealed size of a chunk of `plain_len` bytes with blocks of `block_size`.
uint64_t sealed_chunk_size(uint64_t plain_len, uint32_t block_size);
// Where block `i` of a chunk starts, relative to the chunk start.
uint64_t sealed_block_offset(uint64_t block_index, uint32_t block_size);

struct BlockAad {
    Id128 object;
    uint64_t chunk_offset = 0;  // byte offset of the chunk in the object file
    uint64_t block_index = 0;
    bool last = false;
    uint32_t key_epoch = 0;
};
Bytes block_aad(const BlockAad& a);

// Appends the sealed chunk for `plain` (at least 1 byte) to `out`.
void seal_chunk(const crypto::SecretBytes& file_key, const Id128& object, uint64_t chunk_offset,
                uint32_t key_epoch, uint32_t block_size, ByteSpan plain, Bytes& out);
// Opens one block (sealed bytes exactly as stored) into out (plain length
// = sealed.size() - 40). Code::corrupt when authentication fails.
Status open_block(const crypto::SecretBytes& file_key, const BlockAad& aad, ByteSpan sealed, uint8_t* out);

}  // namespace coffer::format
