// libFuzzer target: the coffer.vault header parser and verifier.
// Property: never crashes; refuses with corrupt/unsupported only; a parsed
// header never verifies under a key that did not make it.
// The body also runs over the seed corpus in tests/unit/format/test_fuzz_regress.cpp.
#include "coffer/crypto/crypto.h"
#include "fuzz_entry.h"
#include "coffer/format/header.h"
#include "coffer/format/slots.h"

namespace coffer::fuzz {

const char* fuzz_header(const uint8_t* data, size_t size) {
    using namespace coffer::format;
    ByteSpan in(data, size);
    auto h = parse_header(in);
    if (!h.ok()) {
        if (h.error().code != Code::corrupt && h.error().code != Code::unsupported)
            return "parse_header failed with an unexpected code";
        return nullptr;
    }
    static const crypto::SecretBytes stranger = crypto::SecretBytes(crypto::kKeySize);
    if (verify_header(in, *h, stranger).ok()) return "a header verified under the wrong master key";
    crypto::SecretBytes pw = crypto::SecretBytes::from(as_bytes("fuzz"));
    for (const auto& slot : h->slots) {
        if (slot.type == SlotType::password) {
            // Argon2 would make every input slow: check the payload parser only.
            auto p = password_slot_params(slot);
            if (!p.ok() && p.error().code != Code::corrupt && p.error().code != Code::unsupported)
                return "password slot parser failed with an unexpected code";
        } else if (slot.type == SlotType::recovery_key) {
            crypto::SecretBytes rk(kRecoveryKeyBytes);
            auto m = unwrap_recovery_slot(slot, rk);
            if (m.ok()) return "a zero recovery key opened a fuzzed slot";
            if (m.error().code != Code::corrupt && m.error().code != Code::wrong_key)
                return "recovery slot parser failed with an unexpected code";
        }
    }
    return nullptr;
}

}  // namespace coffer::fuzz

COFFER_FUZZ_ENTRY(coffer::fuzz::fuzz_header)
