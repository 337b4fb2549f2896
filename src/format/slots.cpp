// Key slots and the recovery key text. Layouts: docs/FORMAT.md.
#include "coffer/format/slots.h"

#include <stdexcept>

namespace coffer::format {

namespace {

constexpr uint8_t kArgon2id13 = 2;
constexpr size_t kWrappedSize = crypto::kKeySize + crypto::kSealOverhead;  // 72
constexpr size_t kPasswordPayloadSize = crypto::kSaltSize + 8 + 8 + 1 + kWrappedSize;
constexpr size_t kRecoveryPayloadSize = crypto::kSaltSize + kWrappedSize;
constexpr char kRecoveryContext[] = "coffer recovery v1";

// Binds a wrapped master key to its slot: moving the payload to another slot
// id or type makes it fail to open.
Bytes slot_aad(SlotType type, const Id128& id) {
    ByteWriter w;
    w.raw(as_bytes("COFFER"));
    w.u8('K');
    w.u8(static_cast<uint8_t>(type));
    w.id(id);
    return w.take();
}

struct PasswordPayload {
    ByteSpan salt;
    crypto::PwParams params;
    ByteSpan wrapped;
};

Result<PasswordPayload> parse_password_payload(const Slot& slot) {
    if (slot.type != SlotType::password) return make_error(Code::invalid, "not a password slot");
    ByteReader r(slot.payload, "password slot");
    PasswordPayload p;
    COFFER_ASSIGN(p.salt, r.raw(crypto::kSaltSize));
    COFFER_ASSIGN(p.params.opslimit, r.u64());
    COFFER_ASSIGN(p.params.memlimit, r.u64());
    COFFER_ASSIGN(uint8_t alg, r.u8());
    COFFER_ASSIGN(p.wrapped, r.raw(kWrappedSize));
    COFFER_TRY(r.expect_end());
    if (alg != kArgon2id13)
        return make_error(Code::unsupported, "password slot " + slot.id.hex() + " uses hashing algorithm " +
                                                 std::to_string(alg) + ", unknown to this coffer");
    return p;
}

struct RecoveryPayload {
    ByteSpan salt;
    ByteSpan wrapped;
};

Result<RecoveryPayload> parse_recovery_payload(const Slot& slot) {
    if (slot.type != SlotType::recovery_key) return make_error(Code::invalid, "not a recovery key slot");
    ByteReader r(slot.payload, "recovery key slot");
    RecoveryPayload p;
    COFFER_ASSIGN(p.salt, r.raw(crypto::kSaltSize));
    COFFER_ASSIGN(p.wrapped, r.raw(kWrappedSize));
    COFFER_TRY(r.expect_end());
    return p;
}

crypto::SecretBytes recovery_wrap_key(const crypto::SecretBytes& recovery_key, ByteSpan salt) {
    ByteWriter msg;
    msg.raw(as_bytes(kRecoveryContext));
    msg.raw(salt);
    crypto::SecretBytes k(crypto::kKeySize);
    crypto::keyed_hash(recovery_key, msg.bytes(), k.mut_span());
    return k;
}

Result<crypto::SecretBytes> unwrap(const crypto::SecretBytes& kek, const Slot& slot, ByteSpan wrapped,
                                   const char* wrong) {
    auto master = crypto::open_secret(kek, wrapped, slot_aad(slot.type, slot.id));
    if (!master.ok()) return make_error(Code::wrong_key, wrong);
    return std::move(master).value();
}

// ---- recovery key text ----
constexpr char kBase32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
constexpr size_t kGroupData = 4;
constexpr size_t kGroupChars = kGroupData + 1;
constexpr size_t kDataChars = kRecoveryKeyBytes * 8 / 5;           // 32
constexpr size_t kTextChars = kRecoveryGroups * kGroupChars;         // 40
constexpr size_t kFormattedChars = kTextChars + kRecoveryGroups - 1;  // 47
static_assert(kDataChars == kRecoveryGroups * kGroupData);

int base32_value(uint8_t c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= '2' && c <= '7') return c - '2' + 26;
    return -1;
}

// Luhn mod 32 over (group number, 4 data values): the check value that makes
// the weighted sum of the whole group 0 mod 32. Doubling mod 32 with the
// carry folded back is a permutation, so any single substitution changes the
// sum; the group number makes a group moved to another place fail too.
int luhn_check(const int (&v)[kGroupChars]) {
    int factor = 2, sum = 0;
    for (int i = static_cast<int>(kGroupChars) - 1; i >= 0; --i) {
        int addend = factor * v[i];
        factor = factor == 2 ? 1 : 2;
        sum += addend / 32 + addend % 32;
    }
    return (32 - sum % 32) % 32;
}

}  // namespace

crypto::SecretBytes generate_recovery_key() {
    crypto::SecretBytes k(kRecoveryKeyBytes);
    crypto::random_bytes(k.mut_span());
    return k;
}

crypto::SecretBytes format_recovery_key(const crypto::SecretBytes& key) {
    if (key.size() != kRecoveryKeyBytes) throw std::invalid_argument("format_recovery_key: key must be 20 bytes");
    crypto::SecretBytes out(kFormattedChars);
    uint8_t* o = out.data();
    size_t bit = 0;  // RFC 4648: most significant bit first
    for (size_t g = 0; g < kRecoveryGroups; ++g) {
        if (g) *o++ = '-';
        int v[kGroupChars] = {static_cast<int>(g + 1)};
        for (size_t j = 0; j < kGroupData; ++j, bit += 5) {
            int x = 0;
            for (size_t b = bit; b < bit + 5; ++b) x = x << 1 | ((key.data()[b / 8] >> (7 - b % 8)) & 1);
            v[j + 1] = x;
            *o++ = static_cast<uint8_t>(kBase32[x]);
        }
        *o++ = static_cast<uint8_t>(kBase32[luhn_check(v)]);
    }
    return out;
}

Result<crypto::SecretBytes> parse_recovery_key(ByteSpan text) {
    crypto::SecretBytes clean(kTextChars);
    size_t n = 0;
    for (uint8_t c : text) {
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '-') continue;
        if (c >= 'a' && c <= 'z') c = static_cast<uint8_t>(c - 'a' + 'A');
        // Digits that base32 leaves out are read as the letters they resemble.
        if (c == '0') c = 'O';
        if (c == '1') c = 'I';
        if (c == '8') c = 'B';
        if (n < kTextChars) clean.data()[n] = c;
        ++n;
    }
    if (n != kTextChars)
        return make_error(Code::invalid,
                          "recovery key has " + std::to_string(n) + " characters, expected " + std::to_string(kTextChars));

    crypto::SecretBytes key(kRecoveryKeyBytes);
    size_t bit = 0;
    for (size_t g = 0; g < kRecoveryGroups; ++g) {
        const uint8_t* grp = clean.data() + g * kGroupChars;
        int v[kGroupChars] = {static_cast<int>(g + 1)};
        bool ok = true;
        for (size_t j = 0; j < kGroupChars && ok; ++j) {
            int x = base32_value(grp[j]);
            ok = x >= 0;
            if (j < kGroupData) v[j + 1] = x;
            else ok = ok && x == luhn_check(v);
        }
        if (!ok)
            // The group's characters are not repeated: they are part of a secret.
            return make_error(Code::invalid, "recovery key group " + std::to_string(g + 1) + " has a typo");
        for (size_t j = 0; j < kGroupData; ++j)
            for (int b = 4; b >= 0; --b, ++bit)
                if ((v[j + 1] >> b) & 1) key.data()[bit / 8] |= static_cast<uint8_t>(0x80 >> (bit % 8));
    }
    return key;
}

// ---- slots ----

Result<Slot> try_make_password_slot(const crypto::SecretBytes& master, const crypto::SecretBytes& password,
                                    const crypto::PwParams& params) {
    Slot s;
    s.type = SlotType::password;
    s.id = crypto::random_id();
    uint8_t salt[crypto::kSaltSize];
    crypto::random_bytes(salt);
    COFFER_ASSIGN(crypto::SecretBytes kek, crypto::pwhash(password, salt, params));
    ByteWriter w;
    w.raw(salt);
    w.u64(params.opslimit);
    w.u64(params.memlimit);
    w.u8(kArgon2id13);
    w.raw(crypto::seal(kek, master.span(), slot_aad(s.type, s.id)));
    s.payload = w.take();
    return s;
}

Slot make_password_slot(const crypto::SecretBytes& master, const crypto::SecretBytes& password,
                        const crypto::PwParams& params) {
    auto s = try_make_password_slot(master, password, params);
    if (!s.ok()) throw std::invalid_argument("make_password_slot: " + s.error().message());
    return std::move(s).value();
}

Slot make_recovery_slot(const crypto::SecretBytes& master, const crypto::SecretBytes& recovery_key) {
    if (recovery_key.size() != kRecoveryKeyBytes)
        throw std::invalid_argument("make_recovery_slot: recovery key must be 20 bytes");
    Slot s;
    s.type = SlotType::recovery_key;
    s.id = crypto::random_id();
    uint8_t salt[crypto::kSaltSize];
    crypto::random_bytes(salt);
    crypto::SecretBytes kek = recovery_wrap_key(recovery_key, salt);
    ByteWriter w;
    w.raw(salt);
    w.raw(crypto::seal(kek, master.span(), slot_aad(s.type, s.id)));
    s.payload = w.take();
    return s;
}

Result<crypto::PwParams> password_slot_params(const Slot& slot) {
    COFFER_ASSIGN(PasswordPayload p, parse_password_payload(slot));
    return p.params;
}

Result<crypto::SecretBytes> unwrap_password_slot(const Slot& slot, const crypto::SecretBytes& password) {
    COFFER_ASSIGN(PasswordPayload p, parse_password_payload(slot));
    auto kek = crypto::pwhash(password, p.salt, p.params);
    if (!kek.ok()) {
        if (kek.error().code == Code::invalid)  // parameters no coffer writes
            return make_error(Code::corrupt, "password slot " + slot.id.hex() + ": hashing parameters out of range");
        return std::move(kek).error();
    }
    return unwrap(*kek, slot, p.wrapped, "wrong password");
}

Result<crypto::SecretBytes> unwrap_recovery_slot(const Slot& slot, const crypto::SecretBytes& recovery_key) {
    if (recovery_key.size() != kRecoveryKeyBytes)
        return make_error(Code::invalid, "a recovery key is 20 bytes");
    COFFER_ASSIGN(RecoveryPayload p, parse_recovery_payload(slot));
    return unwrap(recovery_wrap_key(recovery_key, p.salt), slot, p.wrapped, "wrong recovery key");
}

}  // namespace coffer::format
