// vfs::ObjectCache on its own, over a MemoryBackend: a format-2 object is
// checked once as it is opened (id, key epoch and MAC of its header, its size
// against the authenticated length) and then served from the cache.
#include <doctest/doctest.h>

#include <set>

#include "coffer/format/header.h"
#include "coffer/format/object.h"
#include "coffer/store/memory_backend.h"
#include "vfs/object_cache.h"

using namespace coffer;
using vfs::ObjectCache;

namespace {

template <class R>
Code code_of(const R& r) {
    return r.ok() ? Code::internal : r.error().code;
}

Bytes pattern(size_t n, uint8_t salt) {
    Bytes b(n);
    for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i * 13 + salt);
    return b;
}

struct CacheEnv {
    store::MemoryBackend vault;
    format::Header header;  // format 2
    crypto::SecretBytes master, object_key, file_key;
    std::unique_ptr<ObjectCache> cache;

    CacheEnv() {
        crypto::init();
        REQUIRE(header.version == 2);
        REQUIRE(vault.create_layout().ok());
        master = crypto::random_key();
        object_key = crypto::derive(master, crypto::Subkey::object_header);
        file_key = crypto::random_key();
        cache = std::make_unique<ObjectCache>(vault, header, object_key);
    }

    // An object as publish writes it: header, one chunk, the sealed header.
    Bytes make(const Id128& id, ByteSpan plain) {
        Bytes obj = format::object_header(format::object_version_for(header.version), id);
        format::seal_chunk(file_key, id, obj.size(), header.key_epoch, header.block_size, plain, obj);
        format::seal_object_header(obj, object_key, header.key_epoch);
        return obj;
    }
    Id128 put(const Bytes& obj, Id128 id = crypto::random_id()) {
        REQUIRE(vault.write_new(format::object_path(id), obj).ok());
        return id;
    }
    Bytes read_all(const SourceFile& f, size_t n) {
        auto got = f.read(0, n + 1);
        REQUIRE(got.ok());
        return Bytes(got->begin(), got->end());
    }
};

}  // namespace

TEST_CASE("object cache: opens a valid format-2 object") {
    CacheEnv e;
    const Id128 id = crypto::random_id();
    const Bytes obj = e.make(id, pattern(10000, 1));
    e.put(obj, id);
    auto f = e.cache->open(id);
    REQUIRE_MESSAGE(f.ok(), (f.ok() ? "" : f.error().message()));
    CHECK(e.read_all(**f, obj.size()) == obj);
}

TEST_CASE("object cache: an absent object is pending") {
    CacheEnv e;
    CHECK(code_of(e.cache->open(crypto::random_id())) == Code::pending);
}

TEST_CASE("object cache: an object copied under another id is corrupt") {
    CacheEnv e;
    const Id128 id = crypto::random_id();
    const Bytes obj = e.make(id, pattern(500, 2));
    e.put(obj, id);
    const Id128 copy = e.put(obj);
    CHECK(code_of(e.cache->open(copy)) == Code::corrupt);
    CHECK(e.cache->open(id).ok());
}

TEST_CASE("object cache: a padded or truncated object is corrupt (authenticated length)") {
    CacheEnv e;
    const Id128 id = crypto::random_id();
    Bytes obj = e.make(id, pattern(3000, 3));

    SUBCASE("one byte appended") {
        obj.push_back(0);
    }
    SUBCASE("a whole block appended") {
        Bytes more = pattern(4096 + crypto::kSealOverhead, 9);
        obj.insert(obj.end(), more.begin(), more.end());
    }
    SUBCASE("one byte cut off") {
        obj.pop_back();
    }
    SUBCASE("cut to its header") {
        obj.resize(format::kObjectHeaderSizeV2);
    }
    SUBCASE("cut inside its header") {
        obj.resize(format::kObjectHeaderSizeV2 - 1);
    }
    e.put(obj, id);
    CHECK(code_of(e.cache->open(id)) == Code::corrupt);
}

TEST_CASE("object cache: a header under another object key or key epoch is corrupt") {
    CacheEnv e;
    const Id128 obj_id = crypto::random_id();
    e.put(e.make(obj_id, pattern(700, 4)), obj_id);
    REQUIRE(e.cache->open(obj_id).ok());

    SUBCASE("another master's object key") {
        auto other_key = crypto::derive(crypto::random_key(), crypto::Subkey::object_header);
        ObjectCache other(e.vault, e.header, other_key);
        CHECK(code_of(other.open(obj_id)) == Code::corrupt);
    }
    SUBCASE("another key epoch") {
        format::Header h2 = e.header;
        h2.key_epoch = e.header.key_epoch + 1;
        ObjectCache other(e.vault, h2, e.object_key);
        CHECK(code_of(other.open(obj_id)) == Code::corrupt);
    }
    SUBCASE("a flipped bit in the sealed length") {
        const Id128 id2 = crypto::random_id();
        Bytes obj = e.make(id2, pattern(700, 4));
        obj[format::kObjectHeaderSizeV1] ^= 1;  // the u64 length right after the format-1 part
        e.put(obj, id2);
        CHECK(code_of(e.cache->open(id2)) == Code::corrupt);
    }
}

TEST_CASE("object cache: a second open returns the cached file") {
    CacheEnv e;
    const Id128 a = crypto::random_id(), b = crypto::random_id();
    e.put(e.make(a, pattern(100, 5)), a);
    e.put(e.make(b, pattern(100, 6)), b);
    auto fa = e.cache->open(a);
    auto fb = e.cache->open(b);
    REQUIRE(fa.ok());
    REQUIRE(fb.ok());
    CHECK(fa->get() != fb->get());
    auto fa2 = e.cache->open(a);
    REQUIRE(fa2.ok());
    CHECK(fa2->get() == fa->get());
    // Served without going back to the vault: objects are immutable.
    REQUIRE(e.vault.remove(format::object_path(a)).ok());
    auto fa3 = e.cache->open(a);
    REQUIRE(fa3.ok());
    CHECK(fa3->get() == fa->get());
    // A failed open is not cached: the object may arrive later.
    const Id128 late = crypto::random_id();
    CHECK(code_of(e.cache->open(late)) == Code::pending);
    e.put(e.make(late, pattern(100, 7)), late);
    CHECK(e.cache->open(late).ok());
}

TEST_CASE("object cache: the budget stays within its bounds") {
    const size_t b = ObjectCache::budget();
    CHECK(b >= 16);
    CHECK(b <= 512);
}
