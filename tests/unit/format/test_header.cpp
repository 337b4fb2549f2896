#include <doctest/doctest.h>

#include "coffer/format/header.h"
#include "coffer/format/slots.h"
#include "../test_support.h"

using namespace coffer;
using namespace coffer::format;

namespace {

crypto::SecretBytes secret(std::string_view s) { return crypto::SecretBytes::from(as_bytes(s)); }

// Byte offsets of coffer.vault (docs/FORMAT.md).
constexpr size_t kOffKind = 6, kOffVersion = 7, kOffBodyLen = 8, kOffFlags = 12, kOffVaultId = 16,
                 kOffCipher = 48, kOffBlock = 49, kOffExtent = 53, kOffEpoch = 57, kOffKeyEpoch = 65,
                 kOffSlotCount = 69, kOffSlots = 71;

Header sample_header(const crypto::SecretBytes& master) {
    Header h;
    h.vault_id = vault_id_for(master);
    h.slots.push_back(make_password_slot(master, secret("pw"), crypto::insecure_test_params()));
    h.slots.push_back(make_recovery_slot(master, generate_recovery_key()));
    return h;
}

// Parse, then authenticate with the master key; the error of whichever fails.
Status parse_and_verify(ByteSpan bytes, const crypto::SecretBytes& master) {
    COFFER_ASSIGN(Header h, parse_header(bytes));
    return verify_header(bytes, h, master);
}

struct Kat {
    crypto::SecretBytes master;
    crypto::SecretBytes recovery;
    Bytes header;
};

// The published known-answer header (docs/FORMAT.md, "Test vectors").
Kat make_kat(uint8_t version) {
    testing::FixedRandom fr(1);
    Kat k;
    k.master = crypto::random_key();
    k.recovery = generate_recovery_key();
    Header h;
    h.version = version;
    h.vault_id = vault_id_for(k.master);
    h.slots.push_back(make_password_slot(k.master, secret("correct horse"), crypto::insecure_test_params()));
    h.slots.push_back(make_recovery_slot(k.master, k.recovery));
    k.header = encode_header(h, k.master);
    return k;
}

}  // namespace

TEST_CASE("header: round trip and authentication") {
    crypto::SecretBytes master = crypto::random_key();
    Header h = sample_header(master);
    h.epoch = 42;
    h.key_epoch = 3;
    Bytes bytes = encode_header(h, master);
    auto p = parse_header(bytes);
    REQUIRE(p.ok());
    CHECK(*p == h);
    CHECK(verify_header(bytes, *p, master).ok());
    CHECK(encode_header(*p, master) == bytes);

    crypto::SecretBytes other = crypto::random_key();
    auto v = verify_header(bytes, *p, other);
    REQUIRE_FALSE(v.ok());
    CHECK(v.error().code == Code::corrupt);
    CHECK(v.error().context == "vault header failed authentication: edited or forged");
}

TEST_CASE("header: the vault id commits to the master key") {
    crypto::SecretBytes a = crypto::random_key(), b = crypto::random_key();
    CHECK(vault_id_for(a) == vault_id_for(a));
    CHECK(vault_id_for(a) != vault_id_for(b));
    std::string s = vault_id_short(vault_id_for(a));
    CHECK(s.size() == 32);
    CHECK(s == to_hex(ByteSpan(vault_id_for(a).data(), 16)));
}

TEST_CASE("header: every flipped byte is refused") {
    crypto::SecretBytes master = crypto::random_key();
    Bytes good = encode_header(sample_header(master), master);
    for (size_t i = 0; i < good.size(); ++i)
        for (uint8_t bit : {0x01, 0x80}) {
            Bytes bad = good;
            bad[i] ^= bit;
            auto r = parse_and_verify(bad, master);
            INFO("byte " << i << " bit " << int(bit));
            REQUIRE_FALSE(r.ok());
            CHECK((r.error().code == Code::corrupt || r.error().code == Code::unsupported));
        }
}

TEST_CASE("header: each field region gives the right refusal") {
    crypto::SecretBytes master = crypto::random_key();
    Bytes good = encode_header(sample_header(master), master);
    auto code_after_flip = [&](size_t off, uint8_t bit = 0x01) {
        Bytes bad = good;
        bad[off] ^= bit;
        auto r = parse_and_verify(bad, master);
        return r.ok() ? Code::internal : r.error().code;
    };
    CHECK(code_after_flip(0) == Code::corrupt);           // magic
    CHECK(code_after_flip(kOffKind) == Code::corrupt);    // 'H'
    CHECK(code_after_flip(kOffVersion, 0x02) == Code::unsupported);
    CHECK(code_after_flip(kOffBodyLen) == Code::corrupt);
    CHECK(code_after_flip(kOffBodyLen + 3) == Code::corrupt);  // over the 1 MiB limit
    CHECK(code_after_flip(kOffFlags) == Code::unsupported);
    CHECK(code_after_flip(kOffFlags + 3, 0x80) == Code::unsupported);
    CHECK(code_after_flip(kOffVaultId + 5) == Code::corrupt);
    CHECK(code_after_flip(kOffCipher) == Code::unsupported);
    CHECK(code_after_flip(kOffBlock + 1) == Code::corrupt);   // 16 KiB -> not a power of two
    CHECK(code_after_flip(kOffExtent) == Code::corrupt);      // not a multiple
    CHECK(code_after_flip(kOffEpoch) == Code::corrupt);       // parses; MAC fails
    CHECK(code_after_flip(kOffKeyEpoch) == Code::corrupt);
    CHECK(code_after_flip(kOffSlotCount) == Code::corrupt);
    CHECK(code_after_flip(kOffSlots) == Code::corrupt);       // slot type: parses, MAC fails
    CHECK(code_after_flip(kOffSlots + 5) == Code::corrupt);   // slot id
    CHECK(code_after_flip(kOffSlots + 17) == Code::corrupt);  // slot payload length
    CHECK(code_after_flip(kOffSlots + 30) == Code::corrupt);  // slot payload
    CHECK(code_after_flip(good.size() - 1) == Code::corrupt); // MAC
}

TEST_CASE("header: truncated or extended files are corrupt") {
    crypto::SecretBytes master = crypto::random_key();
    Bytes good = encode_header(sample_header(master), master);
    for (size_t n = 0; n < good.size(); ++n) {
        auto r = parse_header(ByteSpan(good.data(), n));
        INFO("length " << n);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == Code::corrupt);
    }
    Bytes longer = good;
    longer.push_back(0);
    auto r = parse_header(longer);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Code::corrupt);
    CHECK(r.error().context.find("trailing") != std::string::npos);

    // A body length that agrees with an extended file still fails the MAC.
    Bytes grown = good;
    grown.insert(grown.end() - 32, 0);
    put_u32le(grown.data() + kOffBodyLen, get_u32le(grown.data() + kOffBodyLen) + 1);
    auto g = parse_and_verify(grown, master);
    REQUIRE_FALSE(g.ok());
    CHECK(g.error().code == Code::corrupt);
}

TEST_CASE("header: a newer version or unknown flag is unsupported, with advice") {
    crypto::SecretBytes master = crypto::random_key();
    Header h = sample_header(master);
    Bytes bytes = encode_header(h, master);
    bytes[kOffVersion] = 7;
    auto r = parse_header(bytes);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Code::unsupported);
    CHECK(r.error().context == "vault format version 7 is newer than this coffer (2); upgrade coffer");

    bytes[kOffVersion] = 0;
    CHECK(parse_header(bytes).error().code == Code::unsupported);

    h.flags = 1u << 4;
    auto f = parse_header(encode_header(h, master));
    REQUIRE_FALSE(f.ok());
    CHECK(f.error().code == Code::unsupported);
    CHECK(f.error().context.find("0x00000010") != std::string::npos);
}

TEST_CASE("header: unknown cipher and bad geometry") {
    crypto::SecretBytes master = crypto::random_key();
    Header h = sample_header(master);
    h.cipher = static_cast<Cipher>(9);
    CHECK(parse_header(encode_header(h, master)).error().code == Code::unsupported);

    struct Geo {
        uint32_t block, extent;
        bool ok;
    };
    for (Geo g : {Geo{4096, 4096, true}, Geo{1 << 20, 64 << 20, true}, Geo{16384, 4 << 20, true},
                  Geo{2048, 4 << 20, false}, Geo{2 << 20, 4 << 20, false}, Geo{12288, 12288 * 4, false},
                  Geo{16384, 16384 * 3 + 1, false}, Geo{16384, 0, false}, Geo{4096, (64 << 20) + 4096, false}}) {
        Header x = sample_header(master);
        x.block_size = g.block;
        x.extent_size = g.extent;
        auto r = parse_header(encode_header(x, master));
        INFO("block " << g.block << " extent " << g.extent);
        CHECK(r.ok() == g.ok);
        if (!r.ok()) CHECK(r.error().code == Code::corrupt);
        auto c = check_geometry(g.block, g.extent);
        CHECK(c.ok() == g.ok);
        if (!c.ok()) CHECK(c.error().code == Code::invalid);
    }
}

TEST_CASE("header: an oversized body length is refused before use") {
    crypto::SecretBytes master = crypto::random_key();
    Bytes bytes = encode_header(sample_header(master), master);
    put_u32le(bytes.data() + kOffBodyLen, static_cast<uint32_t>(kMaxHeaderBody + 1));
    auto r = parse_header(bytes);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Code::corrupt);
    put_u32le(bytes.data() + kOffBodyLen, 0xffffffffu);
    CHECK(parse_header(bytes).error().code == Code::corrupt);
}

TEST_CASE("header: unknown slot types are parsed and kept on rewrite") {
    crypto::SecretBytes master = crypto::random_key();
    Header h = sample_header(master);
    Slot future{static_cast<SlotType>(9), crypto::random_id(), Bytes{1, 2, 3, 4, 5}};
    h.slots.insert(h.slots.begin() + 1, future);
    Bytes bytes = encode_header(h, master);
    auto p = parse_header(bytes);
    REQUIRE(p.ok());
    REQUIRE(p->slots.size() == 3);
    CHECK(p->slots[1] == future);
    CHECK(verify_header(bytes, *p, master).ok());
    CHECK(encode_header(*p, master) == bytes);
}

TEST_CASE("header: a slot forged from another master unwraps but fails verification") {
    crypto::SecretBytes master = crypto::random_key();
    Header h = sample_header(master);

    // The cloud makes its own key and a slot for it with a password it knows,
    // and signs the header with the only key it has: its own.
    crypto::SecretBytes evil = crypto::random_key();
    h.slots.push_back(make_password_slot(evil, secret("evil"), crypto::insecure_test_params()));
    Bytes forged = encode_header(h, evil);
    auto p = parse_header(forged);
    REQUIRE(p.ok());
    auto m = unwrap_password_slot(p->slots.back(), secret("evil"));
    REQUIRE(m.ok());
    auto v = verify_header(forged, *p, *m);
    REQUIRE_FALSE(v.ok());
    CHECK(v.error().code == Code::corrupt);

    // With the genuine master the vault id fits, but the MAC does not.
    auto real = unwrap_password_slot(p->slots.front(), secret("pw"));
    REQUIRE(real.ok());
    CHECK(verify_header(forged, *p, *real).error().code == Code::corrupt);
}

TEST_CASE("header: verify refuses a parsed header that is not the bytes'") {
    crypto::SecretBytes master = crypto::random_key();
    Header h = sample_header(master);
    Bytes bytes = encode_header(h, master);
    Header other = h;
    other.epoch = 99;
    CHECK(verify_header(bytes, other, master).error().code == Code::corrupt);
}

TEST_CASE("header: known-answer vectors header_v1 and header_v2 in docs/FORMAT.md") {
    for (uint8_t version : {1, 2}) {
        CAPTURE(int(version));
        Kat k = make_kat(version);
        const std::string name = "header_v" + std::to_string(version);
        std::string want = testing::doc_vector(name);
        if (want != to_hex(k.header)) MESSAGE("computed " << name << ": " << to_hex(k.header));
        CHECK(want == to_hex(k.header));
        CHECK(testing::doc_vector("header_v1_master") == to_hex(k.master.span()));

        // The published bytes open with the published password and recovery key.
        auto bytes = from_hex(want);
        REQUIRE(bytes.ok());
        auto h = parse_header(*bytes);
        REQUIRE(h.ok());
        REQUIRE(h->slots.size() == 2);
        CHECK(h->epoch == 1);
        CHECK(h->version == version);
        auto m = unwrap_password_slot(h->slots[0], secret("correct horse"));
        REQUIRE(m.ok());
        CHECK(crypto::equal(m->span(), k.master.span()));
        CHECK(verify_header(*bytes, *h, *m).ok());

        auto text = from_hex(testing::doc_vector("recovery_key_text"));
        REQUIRE(text.ok());
        auto rk = parse_recovery_key(*text);
        REQUIRE(rk.ok());
        auto m2 = unwrap_recovery_slot(h->slots[1], *rk);
        REQUIRE(m2.ok());
        CHECK(crypto::equal(m2->span(), k.master.span()));
    }
}
