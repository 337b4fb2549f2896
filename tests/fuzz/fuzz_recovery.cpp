// libFuzzer target: the recovery key text parser.
// Property: never crashes; refuses with `invalid` only; what it accepts
// formats back to text that parses to the same key.
#include "coffer/crypto/crypto.h"
#include "fuzz_entry.h"
#include "coffer/format/slots.h"

namespace coffer::fuzz {

const char* fuzz_recovery(const uint8_t* data, size_t size) {
    using namespace coffer::format;
    auto k = parse_recovery_key(ByteSpan(data, size));
    if (!k.ok()) return k.error().code == Code::invalid ? nullptr : "parse failed with an unexpected code";
    if (k->size() != kRecoveryKeyBytes) return "parsed key has the wrong size";
    crypto::SecretBytes text = format_recovery_key(*k);
    auto again = parse_recovery_key(text.span());
    if (!again.ok() || !crypto::equal(again->span(), k->span())) return "format/parse round trip differs";
    return nullptr;
}

}  // namespace coffer::fuzz

COFFER_FUZZ_ENTRY(coffer::fuzz::fuzz_recovery)
