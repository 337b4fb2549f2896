// Staging records: a write's bytes sealed frame by frame (docs/FORMAT.md,
// "The local state"). Shared by the write path and the read path.
#pragma once

#include <cstdint>

#include "coffer/crypto/crypto.h"
#include "coffer/util/bytes.h"

namespace coffer::vfs::staging {

// Sealed size of a record of `len` plaintext bytes.
uint64_t sealed_record_size(uint64_t len);
// Seals `data` as one record into out (sealed_record_size(data.size()) bytes).
void seal_record(const crypto::SecretBytes& key, const Id128& node, uint64_t rec_id, ByteSpan data, uint8_t* out);
// A per-thread buffer for sealing a write (reused across requests).
uint8_t* write_scratch(size_t n);

}  // namespace coffer::vfs::staging
