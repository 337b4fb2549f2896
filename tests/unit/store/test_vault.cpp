#include <doctest/doctest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "coffer/format/slots.h"
#include "coffer/store/vault.h"
#include "../test_support.h"

using namespace coffer;
using namespace coffer::store;
namespace fs = std::filesystem;

namespace {

crypto::SecretBytes secret(std::string_view s) { return crypto::SecretBytes::from(as_bytes(s)); }

CreateOptions fast() {
    CreateOptions o;
    o.pw_params = crypto::insecure_test_params();
    return o;
}

Credentials with_password(std::string_view pw) {
    Credentials c;
    c.password = secret(pw);
    return c;
}

Credentials with_recovery(const crypto::SecretBytes& rk) {
    Credentials c;
    c.recovery_key = rk.clone();
    return c;
}

std::unique_ptr<Vault> open_vault(const testing::TempDir& t) {
    auto v = Vault::open(t.str());
    REQUIRE(v.ok());
    return std::move(v).value();
}

Code unlock_code(const Vault& v, const Credentials& c) {
    auto u = v.unlock(c);
    return u.ok() ? Code::internal : u.error().code;
}

}  // namespace

TEST_CASE("vault: create refuses a missing or non-empty folder") {
    testing::TempDir t;
    auto missing = Vault::create(t.str() + "/none", secret("pw"), fast());
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().code == Code::not_found);

    std::ofstream(t.path / "notes.txt") << "hello";
    auto full = Vault::create(t.str(), secret("pw"), fast());
    REQUIRE_FALSE(full.ok());
    CHECK(full.error().code == Code::exists);
    CHECK(full.error().context == t.str() + " is not empty; coffer init needs an empty folder");
    CHECK_FALSE(fs::exists(t.path / "coffer.vault"));

    testing::TempDir s;  // a fresh Syncthing share holds only its marker
    fs::create_directory(s.path / ".stfolder");
    CHECK(Vault::create(s.str(), secret("pw"), fast()).ok());

    testing::TempDir g;
    CreateOptions bad = fast();
    bad.block_size = 1000;
    CHECK(Vault::create(g.str(), secret("pw"), bad).error().code == Code::invalid);
    CHECK(Vault::create(g.str(), secret(""), fast()).error().code == Code::invalid);
}

TEST_CASE("vault: open refuses a folder that is not a vault") {
    testing::TempDir t;
    auto v = Vault::open(t.str());
    REQUIRE_FALSE(v.ok());
    CHECK(v.error().code == Code::not_found);
    CHECK(v.error().context == t.str() + " is not a coffer vault (no coffer.vault)");
    CHECK(Vault::open(t.str() + "/none").error().code == Code::not_found);
}

TEST_CASE("vault: create, then unlock with the password or the recovery key") {
    testing::TempDir t;
    auto rk = Vault::create(t.str(), secret("correct horse"), fast());
    REQUIRE(rk.ok());
    CHECK(rk->size() == format::kRecoveryKeyBytes);
    for (const char* sub : {"objects", "journal", "snapshots", "tmp"}) CHECK(fs::is_directory(t.path / sub));
    CHECK(Vault::create(t.str(), secret("again"), fast()).error().code == Code::exists);

    auto v = open_vault(t);
    auto peek = v->peek_header();
    REQUIRE(peek.ok());
    REQUIRE(peek->slots.size() == 2);
    CHECK(peek->slots[0].type == format::SlotType::password);
    CHECK(peek->slots[1].type == format::SlotType::recovery_key);
    CHECK(peek->epoch == 1);

    auto u = v->unlock(with_password("correct horse"));
    REQUIRE(u.ok());
    CHECK(u->master.size() == crypto::kKeySize);
    CHECK(u->header == *peek);
    CHECK(format::vault_id_for(u->master) == peek->vault_id);

    auto r = v->unlock(with_recovery(*rk));
    REQUIRE(r.ok());
    CHECK(crypto::equal(r->master.span(), u->master.span()));

    // The recovery key as the user would type it back.
    crypto::SecretBytes text = format::format_recovery_key(*rk);
    auto parsed = format::parse_recovery_key(text.span());
    REQUIRE(parsed.ok());
    CHECK(v->unlock(with_recovery(*parsed)).ok());
}

TEST_CASE("vault: wrong secrets are wrong_key") {
    testing::TempDir t;
    auto rk = Vault::create(t.str(), secret("correct horse"), fast());
    REQUIRE(rk.ok());
    auto v = open_vault(t);

    auto w = v->unlock(with_password("battery staple"));
    REQUIRE_FALSE(w.ok());
    CHECK(w.error().code == Code::wrong_key);
    CHECK(w.error().context == "wrong password");

    crypto::SecretBytes other = rk->clone();
    other.data()[0] ^= 1;
    auto wr = v->unlock(with_recovery(other));
    REQUIRE_FALSE(wr.ok());
    CHECK(wr.error().code == Code::wrong_key);
    CHECK(wr.error().context == "wrong recovery key");

    Credentials both = with_password("nope");
    both.recovery_key = rk->clone();
    CHECK(v->unlock(both).ok());  // the recovery key still opens

    CHECK(v->unlock(Credentials{}).error().code == Code::invalid);
}

TEST_CASE("vault: change_password replaces the password slots and bumps the epoch") {
    testing::TempDir t;
    auto rk = Vault::create(t.str(), secret("old"), fast());
    REQUIRE(rk.ok());
    auto v = open_vault(t);
    auto old_bytes = v->backend().read(kHeaderFile, kMaxHeaderFile);
    REQUIRE(old_bytes.ok());

    auto u = v->unlock(with_password("old"));
    REQUIRE(u.ok());
    REQUIRE(v->change_password(*u, secret("new"), crypto::insecure_test_params()).ok());
    CHECK(v->backend().list("tmp")->empty());

    CHECK(unlock_code(*v, with_password("old")) == Code::wrong_key);
    auto n = v->unlock(with_password("new"));
    REQUIRE(n.ok());
    CHECK(crypto::equal(n->master.span(), u->master.span()));
    CHECK(n->header.epoch == 2);
    CHECK(n->header.vault_id == u->header.vault_id);
    size_t pw_slots = 0;
    for (auto& s : n->header.slots) pw_slots += s.type == format::SlotType::password;
    CHECK(pw_slots == 1);
    CHECK(v->unlock(with_recovery(*rk)).ok());

    SUBCASE("an older header put back still unlocks, with the lower epoch") {
        // The cloud replays coffer.vault from before the change. It is
        // authentic, so it unlocks; the caller refuses it by comparing epochs.
        REQUIRE(v->backend().replace(kHeaderFile, *old_bytes).ok());
        auto p = v->peek_header();
        REQUIRE(p.ok());
        CHECK(p->epoch == 1);
        CHECK(p->epoch < n->header.epoch);
        auto o = v->unlock(with_password("old"));
        REQUIRE(o.ok());
        CHECK(o->header.epoch == 1);
    }
}

TEST_CASE("vault: a slot added elsewhere, of a type unknown here, survives change_password") {
    testing::TempDir t;
    REQUIRE(Vault::create(t.str(), secret("pw"), fast()).ok());
    auto v = open_vault(t);
    auto u = v->unlock(with_password("pw"));
    REQUIRE(u.ok());

    // Another (newer) device adds a slot after this one unlocked.
    format::Header h = u->header;
    format::Slot future{static_cast<format::SlotType>(9), crypto::random_id(), Bytes{9, 9, 9}};
    h.slots.push_back(future);
    h.epoch += 1;
    REQUIRE(v->backend().replace(kHeaderFile, format::encode_header(h, u->master)).ok());
    CHECK(v->unlock(with_password("pw")).ok());  // the unknown slot is ignored

    REQUIRE(v->change_password(*u, secret("pw2"), crypto::insecure_test_params()).ok());
    auto after = v->unlock(with_password("pw2"));
    REQUIRE(after.ok());
    CHECK(after->header.epoch == 3);
    CHECK(std::find(after->header.slots.begin(), after->header.slots.end(), future) != after->header.slots.end());
    CHECK(after->header.slots.size() == 3);
}

TEST_CASE("vault: every password slot is tried, each with its own parameters") {
    testing::TempDir t;
    REQUIRE(Vault::create(t.str(), secret("first"), fast()).ok());
    auto v = open_vault(t);
    auto u = v->unlock(with_password("first"));
    REQUIRE(u.ok());
    format::Header h = u->header;
    crypto::PwParams other = crypto::insecure_test_params();
    other.opslimit += 1;
    other.memlimit *= 2;
    h.slots.push_back(format::make_password_slot(u->master, secret("second"), other));
    h.epoch += 1;
    REQUIRE(v->backend().replace(kHeaderFile, format::encode_header(h, u->master)).ok());
    CHECK(v->unlock(with_password("first")).ok());
    CHECK(v->unlock(with_password("second")).ok());
    CHECK(unlock_code(*v, with_password("third")) == Code::wrong_key);
}

TEST_CASE("vault: a forged slot or an edited header is corrupt, not a wrong password") {
    testing::TempDir t;
    REQUIRE(Vault::create(t.str(), secret("pw"), fast()).ok());
    auto v = open_vault(t);
    auto good = v->backend().read(kHeaderFile, kMaxHeaderFile);
    REQUIRE(good.ok());

    SUBCASE("a slot of the cloud's own key") {
        auto h = format::parse_header(*good);
        REQUIRE(h.ok());
        crypto::SecretBytes evil = crypto::random_key();
        h->slots.push_back(format::make_password_slot(evil, secret("evil"), crypto::insecure_test_params()));
        REQUIRE(v->backend().replace(kHeaderFile, format::encode_header(*h, evil)).ok());
        auto e = v->unlock(with_password("evil"));
        REQUIRE_FALSE(e.ok());
        CHECK(e.error().code == Code::corrupt);
        CHECK(e.error().context == "vault header failed authentication: edited or forged");
        CHECK(unlock_code(*v, with_password("pw")) == Code::corrupt);
    }

    SUBCASE("edited bytes") {
        auto code_after = [&](size_t off, uint8_t value) {
            Bytes bad = *good;
            bad[off] = value;
            REQUIRE(v->backend().replace(kHeaderFile, bad).ok());
            return unlock_code(*v, with_password("pw"));
        };
        CHECK(code_after(57, static_cast<uint8_t>((*good)[57] + 1)) == Code::corrupt);  // epoch
        CHECK(code_after(good->size() - 1, static_cast<uint8_t>(~good->back())) == Code::corrupt);  // MAC
        CHECK(code_after(7, 3) == Code::unsupported);  // a newer version
        CHECK(code_after(7, 1) == Code::corrupt);      // format 1: the MAC covers the version
        CHECK(code_after(12, 1) == Code::unsupported);  // a feature flag

        REQUIRE(v->backend().replace(kHeaderFile, ByteSpan(good->data(), good->size() - 10)).ok());
        CHECK(unlock_code(*v, with_password("pw")) == Code::corrupt);
    }
}
