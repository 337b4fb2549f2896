// Key slots: each wraps the master key. Payload layouts: docs/FORMAT.md.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "coffer/crypto/crypto.h"
#include "coffer/format/header.h"

namespace coffer::format {

// ---- recovery key: 160 random bits, shown as 8 groups of 4 base32 data
// characters plus one check character each (Luhn mod 32 over the group number
// and its characters), e.g. ABCD7-…; a mistyped group is named by number.
constexpr size_t kRecoveryKeyBytes = 20;
constexpr size_t kRecoveryGroups = 8;
crypto::SecretBytes generate_recovery_key();
// Formatted text in secret memory ("XXXXX-XXXXX-…", no newline).
crypto::SecretBytes format_recovery_key(const crypto::SecretBytes& key);
// Accepts upper/lower case, spaces, dashes, newlines; maps 0→O, 1→I, 8→B.
// Code::invalid with a message naming the bad group.
Result<crypto::SecretBytes> parse_recovery_key(ByteSpan text);

// Code::invalid for parameters out of Argon2id's range, Code::no_space when
// the memory cannot be had.
Result<Slot> try_make_password_slot(const crypto::SecretBytes& master, const crypto::SecretBytes& password,
                                    const crypto::PwParams& params);
// Same; throws std::invalid_argument where try_make_password_slot fails
// (parameters must come from calibrate(), insecure_test_params() or a slot).
Slot make_password_slot(const crypto::SecretBytes& master, const crypto::SecretBytes& password,
                        const crypto::PwParams& params);
Slot make_recovery_slot(const crypto::SecretBytes& master, const crypto::SecretBytes& recovery_key);
Result<crypto::PwParams> password_slot_params(const Slot& slot);
// Code::wrong_key if the secret does not open the slot; Code::corrupt if the
// payload is malformed.
Result<crypto::SecretBytes> unwrap_password_slot(const Slot& slot, const crypto::SecretBytes& password);
Result<crypto::SecretBytes> unwrap_recovery_slot(const Slot& slot, const crypto::SecretBytes& recovery_key);

}  // namespace coffer::format
