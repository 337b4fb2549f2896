#include <doctest/doctest.h>

#include <string>

#include "coffer/format/slots.h"
#include "../test_support.h"

using namespace coffer;
using namespace coffer::format;

namespace {

crypto::SecretBytes secret(std::string_view s) { return crypto::SecretBytes::from(as_bytes(s)); }
std::string text_of(const crypto::SecretBytes& s) { return std::string(reinterpret_cast<const char*>(s.data()), s.size()); }

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

}  // namespace

TEST_CASE("password slot: round trip, wrong password, parameters") {
    crypto::SecretBytes master = crypto::random_key();
    auto params = crypto::insecure_test_params();
    Slot s = make_password_slot(master, secret("correct horse"), params);
    CHECK(s.type == SlotType::password);
    CHECK(s.payload.size() == 16 + 8 + 8 + 1 + 72);
    CHECK(s.payload[32] == 2);  // Argon2id13

    auto m = unwrap_password_slot(s, secret("correct horse"));
    REQUIRE(m.ok());
    CHECK(crypto::equal(m->span(), master.span()));
    auto p = password_slot_params(s);
    REQUIRE(p.ok());
    CHECK(*p == params);

    auto w = unwrap_password_slot(s, secret("correct horsE"));
    REQUIRE_FALSE(w.ok());
    CHECK(w.error().code == Code::wrong_key);
    CHECK(w.error().context == "wrong password");

    // Fresh salt and slot id each time.
    Slot s2 = make_password_slot(master, secret("correct horse"), params);
    CHECK(s2.id != s.id);
    CHECK(s2.payload != s.payload);

    auto bad = try_make_password_slot(master, secret("x"), crypto::PwParams{0, 0});
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().code == Code::invalid);
}

TEST_CASE("password slot: the wrapped key is bound to its slot id and type") {
    crypto::SecretBytes master = crypto::random_key();
    Slot s = make_password_slot(master, secret("pw"), crypto::insecure_test_params());
    Slot moved = s;
    moved.id.b[0] ^= 1;
    CHECK(unwrap_password_slot(moved, secret("pw")).error().code == Code::wrong_key);
    Slot flipped = s;
    flipped.payload.back() ^= 1;
    CHECK(unwrap_password_slot(flipped, secret("pw")).error().code == Code::wrong_key);
}

TEST_CASE("password slot: malformed payloads are corrupt") {
    crypto::SecretBytes master = crypto::random_key();
    Slot s = make_password_slot(master, secret("pw"), crypto::insecure_test_params());

    Slot shorter = s;
    shorter.payload.pop_back();
    CHECK(unwrap_password_slot(shorter, secret("pw")).error().code == Code::corrupt);
    CHECK(password_slot_params(shorter).error().code == Code::corrupt);

    Slot longer = s;
    longer.payload.push_back(0);
    CHECK(unwrap_password_slot(longer, secret("pw")).error().code == Code::corrupt);

    Slot empty = s;
    empty.payload.clear();
    CHECK(unwrap_password_slot(empty, secret("pw")).error().code == Code::corrupt);

    Slot huge = s;  // memlimit far outside what any coffer writes
    put_u64le(huge.payload.data() + 24, 1ull << 40);
    CHECK(unwrap_password_slot(huge, secret("pw")).error().code == Code::corrupt);

    Slot alg = s;
    alg.payload[32] = 3;
    CHECK(unwrap_password_slot(alg, secret("pw")).error().code == Code::unsupported);

    Slot wrong_type = s;
    wrong_type.type = SlotType::recovery_key;
    CHECK_FALSE(unwrap_password_slot(wrong_type, secret("pw")).ok());
}

TEST_CASE("recovery slot: round trip, wrong key, malformed") {
    crypto::SecretBytes master = crypto::random_key();
    crypto::SecretBytes rk = generate_recovery_key();
    REQUIRE(rk.size() == kRecoveryKeyBytes);
    Slot s = make_recovery_slot(master, rk);
    CHECK(s.type == SlotType::recovery_key);
    CHECK(s.payload.size() == 16 + 72);

    auto m = unwrap_recovery_slot(s, rk);
    REQUIRE(m.ok());
    CHECK(crypto::equal(m->span(), master.span()));

    crypto::SecretBytes other = rk.clone();
    other.data()[19] ^= 1;
    auto w = unwrap_recovery_slot(s, other);
    REQUIRE_FALSE(w.ok());
    CHECK(w.error().code == Code::wrong_key);
    CHECK(w.error().context == "wrong recovery key");

    Slot shorter = s;
    shorter.payload.resize(50);
    CHECK(unwrap_recovery_slot(shorter, rk).error().code == Code::corrupt);
    Slot longer = s;
    longer.payload.push_back(1);
    CHECK(unwrap_recovery_slot(longer, rk).error().code == Code::corrupt);
    Slot salted = s;
    salted.payload[0] ^= 1;
    CHECK(unwrap_recovery_slot(salted, rk).error().code == Code::wrong_key);

    CHECK(unwrap_recovery_slot(s, secret("short")).error().code == Code::invalid);
}

TEST_CASE("recovery key text: format and round trip") {
    for (int i = 0; i < 200; ++i) {
        crypto::SecretBytes rk = generate_recovery_key();
        crypto::SecretBytes text = format_recovery_key(rk);
        std::string t = text_of(text);
        REQUIRE(t.size() == 47);
        for (size_t j = 0; j < t.size(); ++j) {
            if (j % 6 == 5) CHECK(t[j] == '-');
            else CHECK(std::string_view(kAlphabet).find(t[j]) != std::string_view::npos);
        }
        auto back = parse_recovery_key(text.span());
        REQUIRE(back.ok());
        CHECK(crypto::equal(back->span(), rk.span()));
    }
}

TEST_CASE("recovery key text: the data characters are RFC 4648 base32 of the key") {
    crypto::SecretBytes rk(kRecoveryKeyBytes);  // all zero -> 'A's; check chars depend on the group
    std::string t = text_of(format_recovery_key(rk));
    std::string data;
    for (size_t g = 0; g < 8; ++g) data += t.substr(g * 6, 4);
    CHECK(data == std::string(32, 'A'));

    crypto::SecretBytes ones(kRecoveryKeyBytes);
    for (auto& b : ones.mut_span()) b = 0xff;
    t = text_of(format_recovery_key(ones));
    data.clear();
    for (size_t g = 0; g < 8; ++g) data += t.substr(g * 6, 4);
    CHECK(data == std::string(32, '7'));

    // "f" -> "MY======" in RFC 4648: the first byte's bits come first.
    crypto::SecretBytes f(kRecoveryKeyBytes);
    f.data()[0] = 'f';
    CHECK(text_of(format_recovery_key(f)).substr(0, 2) == "MY");
}

TEST_CASE("recovery key text: every single substitution is caught and its group named") {
    crypto::SecretBytes rk = generate_recovery_key();
    std::string good = text_of(format_recovery_key(rk));
    size_t caught = 0;
    for (size_t g = 0; g < 8; ++g)
        for (size_t j = 0; j < 5; ++j) {
            size_t pos = g * 6 + j;
            for (char c : std::string_view(kAlphabet)) {
                if (c == good[pos]) continue;
                std::string bad = good;
                bad[pos] = c;
                auto r = parse_recovery_key(as_bytes(bad));
                INFO(bad);
                REQUIRE_FALSE(r.ok());
                CHECK(r.error().code == Code::invalid);
                CHECK(r.error().context == "recovery key group " + std::to_string(g + 1) + " has a typo");
                ++caught;
            }
        }
    CHECK(caught == 8 * 5 * 31);

    std::string nine = good;
    nine[7] = '9';
    auto r = parse_recovery_key(as_bytes(nine));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().context.find("group 2 has") != std::string::npos);
}

TEST_CASE("recovery key text: groups in the wrong order are caught") {
    for (int n = 0; n < 5; ++n) {
        std::string good = text_of(format_recovery_key(generate_recovery_key()));
        for (size_t a = 0; a < 8; ++a)
            for (size_t b = a + 1; b < 8; ++b) {
                std::string bad = good;
                std::string ga = good.substr(a * 6, 5), gb = good.substr(b * 6, 5);
                bad.replace(a * 6, 5, gb);
                bad.replace(b * 6, 5, ga);
                auto r = parse_recovery_key(as_bytes(bad));
                INFO(bad);
                REQUIRE_FALSE(r.ok());
                CHECK(r.error().context.find("group " + std::to_string(a + 1) + " ") != std::string::npos);
            }
    }
}

TEST_CASE("recovery key text: lenient about case, spacing and look-alike digits") {
    size_t mapped = 0;
    for (int i = 0; i < 50; ++i) {
        crypto::SecretBytes rk = generate_recovery_key();
        std::string t = text_of(format_recovery_key(rk));
        std::string typed;
        for (size_t j = 0; j < t.size(); ++j) {
            char c = t[j];
            if (c == 'O') c = '0', ++mapped;
            else if (c == 'I') c = '1', ++mapped;
            else if (c == 'B') c = '8', ++mapped;
            else if (c >= 'A' && c <= 'Z' && j % 2) c = static_cast<char>(c - 'A' + 'a');
            if (c == '-') typed += (j % 12 == 5) ? " " : "\n";
            else typed += c;
        }
        typed = "  " + typed + "\r\n";
        auto back = parse_recovery_key(as_bytes(typed));
        INFO(typed);
        REQUIRE(back.ok());
        CHECK(crypto::equal(back->span(), rk.span()));
    }
    CHECK(mapped > 0);
}

TEST_CASE("recovery key text: wrong length names the count") {
    std::string t = text_of(format_recovery_key(generate_recovery_key()));
    auto r = parse_recovery_key(as_bytes(t.substr(0, t.size() - 1)));
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Code::invalid);
    CHECK(r.error().context == "recovery key has 39 characters, expected 40");
    auto l = parse_recovery_key(as_bytes(t + "AB"));
    CHECK(l.error().context == "recovery key has 42 characters, expected 40");
    CHECK(parse_recovery_key({}).error().context == "recovery key has 0 characters, expected 40");
}

TEST_CASE("recovery key text: known-answer vector in docs/FORMAT.md") {
    testing::FixedRandom fr(1);
    (void)crypto::random_key();  // the header vector's master key comes first
    crypto::SecretBytes rk = generate_recovery_key();
    crypto::SecretBytes text = format_recovery_key(rk);
    std::string want = testing::doc_vector("recovery_key_text");
    if (want != to_hex(text.span())) MESSAGE("computed recovery_key_text: " << to_hex(text.span()) << " = " << text_of(text));
    CHECK(want == to_hex(text.span()));
}
