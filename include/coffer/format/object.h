// Content objects: objects/<2 hex>/<32 hex>. An object holds one or more
// chunks; a chunk is the content of one extent (or of a whole small file)
// sealed block by block with the file's data key. Layout: docs/FORMAT.md.
#pragma once

#include "coffer/crypto/crypto.h"
#include "coffer/util/bytes.h"

namespace coffer::format {

constexpr size_t kObjectHeaderSize = 24;  // "COFFER" 'O' version(1) object-id(16)

Bytes object_header(const Id128& object_id);
Status check_object_header(ByteSpan header, const Id128& expected_id);
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
