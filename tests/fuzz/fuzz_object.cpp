// libFuzzer target: objects, chunks and blocks.
// Input: block size byte, key epoch byte, tamper byte, then the plaintext
// (first 256 bytes).
// Property: a sealed chunk has the advertised size and every block opens to
// its plaintext; a flipped byte fails exactly the block it lands in; a block
// opened with the wrong last flag fails; a version 2 header states the
// object's length and any flipped bit of it is refused; the header and block
// openers never crash on raw input.
// The body is also run over the seed corpus by tests/unit/format/test_fuzz_regress.cpp.
#include <algorithm>
#include <cstring>

#include "coffer/crypto/crypto.h"
#include "fuzz_entry.h"
#include "coffer/format/object.h"

namespace coffer::fuzz {

const char* fuzz_object(const uint8_t* data, size_t size) {
    using namespace coffer::format;
    static const crypto::SecretBytes key = [] {
        Bytes k(32, 0x42);
        return crypto::SecretBytes::from(k);
    }();
    static const crypto::SecretBytes mac_key = [] {
        Bytes k(32, 0x24);
        return crypto::SecretBytes::from(k);
    }();
    Id128 id;
    id.b.fill(0x5a);

    // Raw input through the parsers that see cloud bytes, as a format 1 and
    // a format 2 vault would read it.
    for (uint8_t vault_version : {1, 2}) {
        auto r = check_object_header({data, size}, id, vault_version, mac_key, 1);
        if (r.ok() && r->header_size > size) return "header accepted from fewer bytes than it has";
        if (r.ok() && r->length && *r->length < r->header_size) return "length below the header accepted";
        if (r.ok() && (vault_version == 2) != r->length.has_value()) return "length present in the wrong version";
    }
    if (size > 0) {
        Bytes sink(size > crypto::kSealOverhead ? size - crypto::kSealOverhead : 0);
        if (open_block(key, {id, 24, 0, true, 1}, {data, size}, sink.data()).ok() && size <= crypto::kSealOverhead)
            return "opened a block with no plaintext";
    }
    if (size < 4) return nullptr;

    const uint32_t bs = 1 + data[0] % 64;
    const uint32_t epoch = data[1];
    const uint8_t tamper = data[2];
    // Sealing is the slow part; a few dozen blocks cover every edge.
    ByteSpan plain(data + 3, std::min<size_t>(size - 3, 256));

    const uint8_t version = 1 + (tamper & 1);
    Bytes obj = object_header(version, id);
    const size_t H = obj.size();
    seal_chunk(key, id, H, epoch, bs, plain, obj);
    if (obj.size() != H + sealed_chunk_size(plain.size(), bs)) return "sealed size mismatch";
    if (version == 2) seal_object_header(obj, mac_key, epoch);
    {
        auto own = check_object_header(obj, id, version, mac_key, epoch);
        if (!own.ok()) return "own header refused";
        if (own->header_size != H) return "header size differs";
        if (version == 2 && *own->length != obj.size()) return "length is not the object's";
    }
    if (version == 2) {
        Bytes h(obj.begin(), obj.begin() + H);
        h[tamper % H] ^= 0x01;
        if (check_object_header(h, id, 2, mac_key, epoch).ok()) return "changed header accepted";
    }

    const uint64_t n = (plain.size() + bs - 1) / bs;
    Bytes out(bs);
    auto block_at = [&](const Bytes& f, uint64_t i) {
        uint64_t len = std::min<uint64_t>(bs, plain.size() - i * bs);
        return ByteSpan(f.data() + H + sealed_block_offset(i, bs), len + crypto::kSealOverhead);
    };
    for (uint64_t i = 0; i < n; ++i) {
        ByteSpan b = block_at(obj, i);
        if (!open_block(key, {id, H, i, i + 1 == n, epoch}, b, out.data()).ok())
            return "block does not open";
        if (std::memcmp(out.data(), plain.data() + i * bs, b.size() - crypto::kSealOverhead) != 0)
            return "block opened to other bytes";
        if (open_block(key, {id, H, i, i + 1 != n, epoch}, b, out.data()).ok())
            return "block opened with the wrong last flag";
    }

    // Flip one byte of the chunk: the block holding it, and only it, fails.
    const uint64_t chunk_size = obj.size() - H;
    const uint64_t at = (uint64_t{tamper} * 2654435761u) % chunk_size;
    obj[H + at] ^= 0x01;
    const uint64_t hit = at / (uint64_t{bs} + crypto::kSealOverhead);
    for (uint64_t i = 0; i < n; ++i) {
        bool ok = open_block(key, {id, H, i, i + 1 == n, epoch}, block_at(obj, i), out.data()).ok();
        if (ok == (i == hit)) return i == hit ? "tampered block opened" : "untouched block failed";
    }
    return nullptr;
}

}  // namespace coffer::fuzz

COFFER_FUZZ_ENTRY(coffer::fuzz::fuzz_object)
