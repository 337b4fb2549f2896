#include <doctest/doctest.h>

#include "coffer/format/object.h"
#include "../test_support.h"

using namespace coffer;
using namespace coffer::format;

namespace {

constexpr uint32_t B = 16;

crypto::SecretBytes fixed_key() {
    Bytes k(32);
    for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(i + 1);  // 01 02 .. 20
    return crypto::SecretBytes::from(k);
}

Bytes pattern(size_t n, uint8_t salt = 0) {
    Bytes b(n);
    for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i * 7 + salt);
    return b;
}

uint64_t blocks_of(uint64_t len, uint32_t bs) { return (len + bs - 1) / bs; }

// The sealed bytes of block i of the chunk starting at `chunk` in `obj`.
ByteSpan stored_block(const Bytes& obj, uint64_t chunk, uint64_t plain_len, uint32_t bs, uint64_t i) {
    uint64_t start = chunk + sealed_block_offset(i, bs);
    uint64_t plain = std::min<uint64_t>(bs, plain_len - i * bs);
    return ByteSpan(obj.data() + start, plain + crypto::kSealOverhead);
}

Status open(const crypto::SecretBytes& key, const BlockAad& aad, ByteSpan sealed) {
    Bytes out(sealed.size() > crypto::kSealOverhead ? sealed.size() - crypto::kSealOverhead : 0);
    return open_block(key, aad, sealed, out.data());
}

// An object with one chunk of `plain` right after its header.
struct OneChunk {
    Id128 id = crypto::random_id();
    Bytes file = object_header(1, id);
    uint64_t chunk = kObjectHeaderSizeV1;
    OneChunk(const crypto::SecretBytes& key, ByteSpan plain, uint32_t epoch = 1, uint32_t bs = B) {
        seal_chunk(key, id, chunk, epoch, bs, plain, file);
    }
};

}  // namespace

// The object-header MAC key of the tests (any 32 bytes).
crypto::SecretBytes mac_key(uint8_t salt = 0) {
    Bytes k(32, static_cast<uint8_t>(0xa0 + salt));
    return crypto::SecretBytes::from(k);
}

Result<ObjectHeaderInfo> check(ByteSpan bytes, const Id128& id, uint8_t vault_version = 2, uint8_t salt = 0,
                               uint32_t epoch = 1) {
    return check_object_header(bytes, id, vault_version, mac_key(salt), epoch);
}

TEST_CASE("object: version 1 header and path") {
    Id128 id = Id128::from_hex("abcdef00112233445566778899aabbcc").value();
    Bytes h = object_header(1, id);
    REQUIRE(h.size() == kObjectHeaderSizeV1);
    CHECK(std::string(h.begin(), h.begin() + 7) == "COFFERO");
    CHECK(h[7] == 1);
    CHECK(std::equal(id.b.begin(), id.b.end(), h.begin() + 8));
    auto ok = check(h, id, 1);
    REQUIRE(ok.ok());
    CHECK(ok->version == 1);
    CHECK(ok->header_size == 24);
    CHECK_FALSE(ok->length.has_value());  // version 1 objects carry no length
    CHECK(object_path(id) == "objects/ab/abcdef00112233445566778899aabbcc");

    Id128 other = id;
    other.b[15] ^= 1;
    auto swapped = check(h, other, 1);
    REQUIRE_FALSE(swapped.ok());
    CHECK(swapped.error().code == Code::corrupt);

    for (size_t i = 0; i < h.size(); ++i) {
        Bytes bad = h;
        bad[i] ^= 0x01;
        auto r = check(bad, id, 1);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == Code::corrupt);  // version 1^1 = 0 is corrupt too
    }
    Bytes newer = h;
    newer[7] = 3;
    CHECK(check(newer, id, 1).error().code == Code::unsupported);
    for (size_t n = 0; n < h.size(); ++n) CHECK(check(ByteSpan(h.data(), n), id, 1).error().code == Code::corrupt);
}

TEST_CASE("object: version 2 header authenticates the length") {
    Id128 id = Id128::from_hex("abcdef00112233445566778899aabbcc").value();
    CHECK(object_version_for(1) == 1);
    CHECK(object_version_for(2) == 2);
    Bytes obj = object_header(2, id);
    REQUIRE(obj.size() == kObjectHeaderSizeV2);
    obj.resize(obj.size() + 100, 0x33);  // stands in for the chunks
    seal_object_header(obj, mac_key(), 1);
    CHECK(obj[7] == 2);
    auto ok = check(obj, id);
    REQUIRE(ok.ok());
    CHECK(ok->version == 2);
    CHECK(ok->header_size == 68);
    REQUIRE(ok->length.has_value());
    CHECK(*ok->length == obj.size());
    // Only the header is read: the chunks after it do not matter here.
    CHECK(check(ByteSpan(obj).first(kObjectHeaderSizeV2), id).ok());

    // Every single-bit change of the header is refused; the version byte
    // 2^1 = 3 reads as a newer coffer's object.
    for (size_t i = 0; i < kObjectHeaderSizeV2; ++i) {
        CAPTURE(i);
        Bytes bad = obj;
        bad[i] ^= 0x01;
        auto r = check(bad, id);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == (i == 7 ? Code::unsupported : Code::corrupt));
    }
    for (size_t n = 0; n < kObjectHeaderSizeV2; ++n) CHECK(check(ByteSpan(obj.data(), n), id).error().code == Code::corrupt);

    // Another vault's key, another key epoch, another object's name.
    CHECK(check(obj, id, 2, 1).error().code == Code::corrupt);
    CHECK(check(obj, id, 2, 0, 2).error().code == Code::corrupt);
    Id128 other = id;
    other.b[0] ^= 1;
    CHECK(check(obj, other).error().code == Code::corrupt);

    // A version 2 object is not accepted by a format 1 vault, and the cloud
    // cannot downgrade a format 2 vault's object to version 1 (whose length
    // nobody checks).
    CHECK(check(obj, id, 1).error().code == Code::corrupt);
    Bytes down = obj;
    down[7] = 1;
    auto r = check(down, id);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Code::corrupt);
    CHECK(r.error().context.find("object version 1 in a vault of format 2") != std::string::npos);
    Bytes v1 = object_header(1, id);
    CHECK(check(v1, id, 2).error().code == Code::corrupt);

    // The MAC covers the length: a header sealed for another length fails.
    Bytes longer = obj;
    longer.push_back(0);
    seal_object_header(longer, mac_key(), 1);
    Bytes spliced = obj;
    std::copy(longer.begin() + 24, longer.begin() + 32, spliced.begin() + 24);
    CHECK(check(spliced, id).error().code == Code::corrupt);
    auto lr = check(longer, id);
    REQUIRE(lr.ok());
    CHECK(*lr->length == obj.size() + 1);
}

TEST_CASE("object: known-answer vector object_header_v2") {
    // The header of a 168-byte object (one 100-byte chunk, as chunk_v1 but at
    // offset 68) with id c5d3…, key epoch 1, MAC key 01 02 … 20.
    const Id128 id = Id128::from_hex("c5d30a7ce1ec119378c84f487d775a85").value();
    Bytes obj = object_header(2, id);
    obj.resize(168, 0);
    seal_object_header(obj, fixed_key(), 1);
    const std::string hex = to_hex(ByteSpan(obj).first(kObjectHeaderSizeV2));
    CHECK_MESSAGE(hex == testing::doc_vector("object_header_v2"), "object_header_v2: " << hex);
    auto published = from_hex(testing::doc_vector("object_header_v2"));
    REQUIRE(published.ok());
    auto info = check_object_header(*published, id, 2, fixed_key(), 1);
    REQUIRE(info.ok());
    CHECK(*info->length == 168);
    CHECK(info->header_size == 68);
}

TEST_CASE("object: sizes") {
    CHECK(sealed_chunk_size(1, B) == 41);
    CHECK(sealed_chunk_size(B - 1, B) == B - 1 + 40);
    CHECK(sealed_chunk_size(B, B) == B + 40);
    CHECK(sealed_chunk_size(B + 1, B) == B + 1 + 80);
    CHECK(sealed_chunk_size(3 * B, B) == 3 * B + 120);
    CHECK(sealed_chunk_size(4u << 20, 16384) == (4u << 20) + 256 * 40);
    CHECK(sealed_block_offset(0, B) == 0);
    CHECK(sealed_block_offset(3, B) == 3 * (B + 40));
}

TEST_CASE("object: block AAD layout") {
    Id128 id = Id128::from_hex("000102030405060708090a0b0c0d0e0f").value();
    Bytes aad = block_aad({id, 0x1122, 3, true, 7});
    CHECK(to_hex(aad) ==
          "4346424b"                          // "CFBK"
          "000102030405060708090a0b0c0d0e0f"  // object
          "2211000000000000"                  // chunk offset
          "0300000000000000"                  // block index
          "01"                                // last
          "07000000");                        // key epoch
}

TEST_CASE("object: chunks at block edges open block by block") {
    auto key = fixed_key();
    for (uint32_t bs : {B, 4096u}) {
        for (uint64_t len : {uint64_t{1}, uint64_t{bs} - 1, uint64_t{bs}, uint64_t{bs} + 1, 3 * uint64_t{bs}}) {
            CAPTURE(bs);
            CAPTURE(len);
            Bytes plain = pattern(len);
            OneChunk o(key, plain, 4, bs);
            REQUIRE(o.file.size() == kObjectHeaderSizeV1 + sealed_chunk_size(len, bs));
            CHECK(check(o.file, o.id, 1).ok());
            const uint64_t n = blocks_of(len, bs);
            Bytes back(len);
            for (uint64_t i = 0; i < n; ++i) {
                ByteSpan sealed = stored_block(o.file, o.chunk, len, bs, i);
                Status st = open_block(key, {o.id, o.chunk, i, i + 1 == n, 4}, sealed, back.data() + i * bs);
                REQUIRE_MESSAGE(st.ok(), st.error().context);
            }
            CHECK(back == plain);
        }
    }
}

TEST_CASE("object: seal_chunk appends and every block has its own nonce") {
    auto key = fixed_key();
    Bytes out = {1, 2, 3};
    Id128 id = crypto::random_id();
    seal_chunk(key, id, 3, 1, B, Bytes(3 * B, 0), out);
    CHECK(out.size() == 3 + sealed_chunk_size(3 * B, B));
    CHECK(out[0] == 1);
    // Same plaintext in every block; fresh nonces make every sealed block differ.
    ByteSpan b0 = stored_block(out, 3, 3 * B, B, 0), b1 = stored_block(out, 3, 3 * B, B, 1);
    CHECK_FALSE(std::equal(b0.begin(), b0.end(), b1.begin()));
}

TEST_CASE("object: tampering with blocks is corrupt") {
    auto key = fixed_key();
    const uint64_t len = 3 * B;
    OneChunk o(key, pattern(len), 2);
    auto aad = [&](uint64_t i, bool last) { return BlockAad{o.id, o.chunk, i, last, 2}; };
    auto block = [&](const Bytes& f, uint64_t i) { return stored_block(f, o.chunk, len, B, i); };

    SUBCASE("flipped byte in each block, nonce to tag") {
        for (uint64_t i = 0; i < 3; ++i)
            for (size_t at = 0; at < B + crypto::kSealOverhead; ++at) {
                Bytes bad = o.file;
                bad[o.chunk + sealed_block_offset(i, B) + at] ^= 0x04;
                Status st = open(key, aad(i, i == 2), block(bad, i));
                REQUIRE_FALSE(st.ok());
                CHECK(st.error().code == Code::corrupt);
            }
    }
    SUBCASE("block swap within a chunk") {
        CHECK(open(key, aad(0, false), block(o.file, 0)).ok());
        Status st = open(key, aad(0, false), block(o.file, 1));
        REQUIRE_FALSE(st.ok());
        CHECK(st.error().code == Code::corrupt);
        CHECK(st.error().context.find(o.id.hex()) != std::string::npos);
        CHECK(st.error().context.find("block 0") != std::string::npos);
    }
    SUBCASE("block swap between chunks of one object") {
        Bytes f = o.file;
        const uint64_t second = f.size();
        seal_chunk(key, o.id, second, 2, B, pattern(len), f);
        CHECK(open(key, {o.id, second, 0, false, 2}, stored_block(f, second, len, B, 0)).ok());
        CHECK(open(key, {o.id, second, 0, false, 2}, stored_block(f, o.chunk, len, B, 0)).error().code ==
              Code::corrupt);
        CHECK(open(key, {o.id, o.chunk, 0, false, 2}, stored_block(f, second, len, B, 0)).error().code ==
              Code::corrupt);
    }
    SUBCASE("block swap between objects (same key, offset and index)") {
        OneChunk other(key, pattern(len), 2);
        CHECK(open(key, aad(1, false), block(other.file, 1)).error().code == Code::corrupt);
    }
    SUBCASE("truncation: opening block n-2 as the last one") {
        CHECK(open(key, aad(1, true), block(o.file, 1)).error().code == Code::corrupt);
        CHECK(open(key, aad(2, false), block(o.file, 2)).error().code == Code::corrupt);
        CHECK(open(key, aad(2, true), block(o.file, 2)).ok());
    }
    SUBCASE("wrong key epoch, wrong key, short blocks") {
        CHECK(open(key, {o.id, o.chunk, 0, false, 3}, block(o.file, 0)).error().code == Code::corrupt);
        CHECK(open(crypto::random_key(), aad(0, false), block(o.file, 0)).error().code == Code::corrupt);
        ByteSpan b0 = block(o.file, 0);
        for (size_t n : {size_t{0}, size_t{1}, crypto::kSealOverhead, crypto::kSealOverhead + 1, b0.size() - 1})
            CHECK(open(key, aad(0, false), b0.first(n)).error().code == Code::corrupt);
    }
}

TEST_CASE("object: known-answer vector chunk_v1") {
    testing::FixedRandom rnd(1);
    const Id128 id = crypto::random_id();
    const std::string text = "hello, coffer chunk!";
    REQUIRE(text.size() == 20);
    Bytes out;
    seal_chunk(fixed_key(), id, kObjectHeaderSizeV1, 1, B, as_bytes(text), out);
    REQUIRE(out.size() == 20 + 2 * 40);
    const std::string hex = to_hex(out);
    CHECK_MESSAGE(hex == testing::doc_vector("chunk_v1"), "object id " << id.hex() << ", chunk_v1: " << hex);

    auto published = from_hex(testing::doc_vector("chunk_v1"));
    REQUIRE(published.ok());
    REQUIRE(published->size() == 100);
    Bytes back(20);
    REQUIRE(open_block(fixed_key(), {id, kObjectHeaderSizeV1, 0, false, 1}, ByteSpan(*published).first(56), back.data())
                .ok());
    REQUIRE(open_block(fixed_key(), {id, kObjectHeaderSizeV1, 1, true, 1}, ByteSpan(*published).subspan(56),
                       back.data() + 16)
                .ok());
    CHECK(std::string(back.begin(), back.end()) == text);
}
