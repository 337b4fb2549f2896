#include <doctest/doctest.h>

#include "coffer/format/segment.h"
#include "../test_support.h"
#include "journal_v1.h"

using namespace coffer;
using namespace coffer::format;

namespace {

crypto::SecretBytes fixed_key() {
    Bytes k(32);
    for (size_t i = 0; i < k.size(); ++i) k[i] = static_cast<uint8_t>(i + 1);  // 01 02 .. 20
    return crypto::SecretBytes::from(k);
}

Hash32 filled(uint8_t v) {
    Hash32 h;
    h.fill(v);
    return h;
}

// A mixed bag of `n` ops, cycling through every type.
std::vector<Op> many_ops(size_t n) {
    std::vector<Op> ops;
    for (size_t i = 0; i < n; ++i) {
        Id128 a = crypto::random_id(), b = crypto::random_id();
        std::string name = "file-" + std::to_string(i);
        switch (i % 8) {
            case 0: ops.push_back({i, OpCreate{a, b, name, 0100644, 1, 2, 0, {1, 2, 3}, ""}}); break;
            case 1: ops.push_back({i, OpLink{a, b, name, 4}}); break;
            case 2: ops.push_back({i, OpUnlink{b, name, a, crypto::random_id()}}); break;
            case 3: ops.push_back({i, OpRename{a, name, b, name + "~", 0, a, b, crypto::random_id()}}); break;
            case 4: ops.push_back({i, OpSetAttr{a, kSetMode, 0100600, 0, 0, {}}}); break;
            case 5:
                ops.push_back({i, OpSetContent{a, b, crypto::random_id(), 100, 5, 6, 1, Bytes(72, 7),
                                               {{0, crypto::random_id(), 24, 100}}}});
                break;
            case 6: ops.push_back({i, OpSetXattr{a, "user." + name, Bytes(i % 50, 9)}}); break;
            case 7: ops.push_back({i, OpRemoveXattr{a, "user." + name}}); break;
        }
    }
    return ops;
}

Segment sample(uint64_t seq, size_t n_ops) {
    Segment s;
    s.device = crypto::random_id();
    s.seq = seq;
    if (seq > 1) s.prev = filled(0x77);
    s.hlc = (uint64_t{1700000000000} << 16) | 3;
    s.key_epoch = 2;
    s.device_name = "laptop " + std::to_string(seq);
    s.merged = {{crypto::random_id(), 4, filled(0xaa)}, {crypto::random_id(), 1, filled(0xbb)}};
    s.ops = many_ops(n_ops);
    return s;
}

Code code_of(const crypto::SecretBytes& key, ByteSpan bytes) {
    auto r = decode_segment(key, bytes);
    REQUIRE_FALSE(r.ok());
    return r.error().code;
}

// A correctly sealed segment around an arbitrary plaintext body, to reach
// the body parser past authentication.
Bytes seal_body(const crypto::SecretBytes& key, ByteSpan prefix_from, ByteSpan body) {
    Bytes out(prefix_from.begin(), prefix_from.begin() + kSegmentPrefixSize);
    Bytes sealed = crypto::seal(key, body, out);
    out.insert(out.end(), sealed.begin(), sealed.end());
    return out;
}

// The known-answer segments published in docs/FORMAT.md: segment_v1 (made
// by the coffer of journal version 1) and segment_v2, which adds the device
// name and a sixth op, an unlink with the version it saw.
Segment vector_segment(uint8_t version) {
    Segment s;
    s.device = crypto::random_id();
    const Id128 dir = crypto::random_id(), file = crypto::random_id(), object = crypto::random_id(),
                version_id = crypto::random_id(), other_device = crypto::random_id();
    s.seq = 1;
    s.hlc = uint64_t{1700000000000} << 16;
    s.key_epoch = 1;
    s.merged = {{other_device, 3, filled(0xaa)}};
    const Times t{1700000000000000000, 1700000000000000000, 1700000000000000000};
    const Id128 root{};  // the root directory's id is all zero in this example
    s.ops.push_back({s.hlc + 1, OpCreate{dir, root, "docs", 040755, 1000, 1000, 0, t, ""}});
    s.ops.push_back({s.hlc + 2, OpCreate{file, dir, "a.txt", 0100644, 1000, 1000, 0, t, ""}});
    s.ops.push_back({s.hlc + 3, OpSetContent{file, {}, version_id, 20, t.mtime_ns, t.ctime_ns, 1, Bytes(72, 0x5c),
                                             {{0, object, 24, 20}}}});
    s.ops.push_back({s.hlc + 4, OpSetXattr{file, "user.tag", Bytes{'b', 'l', 'u', 'e'}}});
    s.ops.push_back({s.hlc + 5, OpRename{dir, "a.txt", dir, "b.txt", 0, file, {}, {}}});
    s.version = version;
    if (version >= 2) {
        s.device_name = "laptop";
        s.ops.push_back({s.hlc + 6, OpUnlink{dir, "b.txt", file, version_id}});
    }
    return s;
}

}  // namespace

TEST_CASE("segment: round trip with many ops") {
    testing::FixedRandom rnd(7);
    auto key = fixed_key();
    for (auto [seq, n] : {std::pair<uint64_t, size_t>{1, 0}, {1, 1}, {2, 8}, {99, 1000}}) {
        Segment s = sample(seq, n);
        Bytes file = encode_segment(key, s);
        auto back = decode_segment(key, file);
        REQUIRE_MESSAGE(back.ok(), back.error().context);
        CHECK(*back == s);
    }
    Segment empty;
    empty.device = crypto::random_id();
    empty.seq = 1;
    Bytes file = encode_segment(key, empty);
    CHECK(file.size() == kSegmentPrefixSize + crypto::kSealOverhead + 8 + 4 + 4 + 4 + 4);
    auto back = decode_segment(key, file);
    REQUIRE(back.ok());
    CHECK(*back == empty);
}

TEST_CASE("segment: prefix layout, hash and path") {
    auto key = fixed_key();
    Segment s = sample(5, 3);
    Bytes file = encode_segment(key, s);
    CHECK(std::string(file.begin(), file.begin() + 7) == "COFFERJ");
    static_assert(kOpsVersion == 2);
    CHECK(file[7] == 2);
    CHECK(std::equal(s.device.b.begin(), s.device.b.end(), file.begin() + 8));
    CHECK(get_u64le(file.data() + 24) == 5);
    CHECK(std::equal(s.prev.begin(), s.prev.end(), file.begin() + 32));
    CHECK(segment_hash(file) == crypto::hash32(file));

    Id128 dev = Id128::from_hex("00112233445566778899aabbccddeeff").value();
    CHECK(segment_path(dev, 1) == "journal/00112233445566778899aabbccddeeff/0000000000000001");
    CHECK(segment_path(dev, 0xabcdef0123456789ull) == "journal/00112233445566778899aabbccddeeff/abcdef0123456789");
}

TEST_CASE("segment: a flipped byte anywhere is corrupt") {
    auto key = fixed_key();
    Bytes file = encode_segment(key, sample(3, 5));
    // Regions: magic 0-6, version 7, device 8-23, seq 24-31, prev 32-63,
    // nonce 64-87, ciphertext, tag (last 16). Every byte of every region.
    for (size_t i = 0; i < file.size(); ++i) {
        for (uint8_t mask : {0x01, 0x80}) {
            Bytes bad = file;
            bad[i] ^= mask;
            auto r = decode_segment(key, bad);
            REQUIRE_FALSE(r.ok());
            // Byte 7 flipped: version 3 or 0x82, both newer.
            const Code want = i == 7 ? Code::unsupported : Code::corrupt;
            CHECK_MESSAGE(r.error().code == want, "byte " << i << ": " << r.error().context);
            if (i < 7) CHECK(r.error().context == "not a coffer journal segment");
            if (i >= kSegmentPrefixSize && want == Code::corrupt)
                CHECK(r.error().context == "journal segment failed authentication");
        }
    }
}

TEST_CASE("segment: version bump is unsupported, version 0 corrupt, a relabelled version fails authentication") {
    auto key = fixed_key();
    Bytes file = encode_segment(key, sample(1, 2));
    for (uint8_t v : {3, 255}) {
        file[7] = v;
        auto r = decode_segment(key, file);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == Code::unsupported);
        CHECK(r.error().context == "journal segment version " + std::to_string(v) + " is newer than this coffer");
    }
    file[7] = 0;
    CHECK(code_of(key, file) == Code::corrupt);
    // The version byte is associated data: a version 2 segment relabelled as
    // version 1 (to be read without its device name and seen versions), or
    // back, fails authentication.
    file[7] = 1;
    auto down = decode_segment(key, file);
    REQUIRE_FALSE(down.ok());
    CHECK(down.error().code == Code::corrupt);
    CHECK(down.error().context == "journal segment failed authentication");
    Segment old = sample(1, 2);
    old.device_name.clear();
    for (auto& op : old.ops) {
        if (auto* u = std::get_if<OpUnlink>(&op.body)) u->seen = {};
        if (auto* r = std::get_if<OpRename>(&op.body)) r->replaced_seen = {};
    }
    Bytes v1 = testing::encode_segment_v1(key, old);
    REQUIRE(decode_segment(key, v1).ok());
    v1[7] = 2;
    CHECK(code_of(key, v1) == Code::corrupt);
}

TEST_CASE("segment: truncation and extension are corrupt") {
    auto key = fixed_key();
    Bytes file = encode_segment(key, sample(2, 20));
    for (size_t n = 0; n < file.size(); ++n) CHECK(code_of(key, ByteSpan(file.data(), n)) == Code::corrupt);
    for (size_t extra : {1, 16, 1000}) {
        Bytes longer = file;
        longer.resize(file.size() + extra, 0);
        CHECK(code_of(key, longer) == Code::corrupt);
    }
}

TEST_CASE("segment: re-labelled, re-keyed or structurally wrong segments are corrupt") {
    auto key = fixed_key();
    Segment s = sample(5, 4);
    Bytes file = encode_segment(key, s);

    Bytes reseq = file;
    put_u64le(reseq.data() + 24, 6);
    CHECK(code_of(key, reseq) == Code::corrupt);

    Bytes redev = file;
    Id128 other = crypto::random_id();
    std::copy(other.b.begin(), other.b.end(), redev.begin() + 8);
    CHECK(code_of(key, redev) == Code::corrupt);

    Bytes reprev = file;
    reprev[40] ^= 0x10;
    CHECK(code_of(key, reprev) == Code::corrupt);

    // Seq 1 relabelled as seq 2 (its prev is zero) and back.
    Segment first = sample(1, 2);
    Bytes f1 = encode_segment(key, first);
    put_u64le(f1.data() + 24, 2);
    CHECK(code_of(key, f1) == Code::corrupt);

    auto other_key = crypto::random_key();
    CHECK(code_of(other_key, file) == Code::corrupt);

    // Written wrongly by the encoder (it does not validate): still refused.
    Segment zero_seq = s;
    zero_seq.seq = 0;
    CHECK(code_of(key, encode_segment(key, zero_seq)) == Code::corrupt);
    Segment first_with_prev = s;
    first_with_prev.seq = 1;
    CHECK(code_of(key, encode_segment(key, first_with_prev)) == Code::corrupt);
    Segment later_without_prev = s;
    later_without_prev.prev = {};
    CHECK(code_of(key, encode_segment(key, later_without_prev)) == Code::corrupt);
}

TEST_CASE("segment: malformed bodies behind a valid seal") {
    auto key = fixed_key();
    Bytes file = encode_segment(key, sample(1, 0));

    auto body = [](uint32_t merged, uint32_t ops) {
        ByteWriter w;
        w.u64(1);
        w.u32(1);
        w.str("");
        w.u32(merged);
        w.u32(ops);
        return w.take();
    };
    CHECK(decode_segment(key, seal_body(key, file, body(0, 0))).ok());
    for (uint32_t n : {1u, 1000u, 0xffffffffu}) {
        auto r = decode_segment(key, seal_body(key, file, body(n, 0)));
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == Code::corrupt);
        CHECK(code_of(key, seal_body(key, file, body(0, n))) == Code::corrupt);
    }
    Bytes trailing = body(0, 0);
    trailing.push_back(0);
    CHECK(code_of(key, seal_body(key, file, trailing)) == Code::corrupt);
    CHECK(code_of(key, seal_body(key, file, Bytes{})) == Code::corrupt);
    CHECK(code_of(key, seal_body(key, file, Bytes(15, 0))) == Code::corrupt);
    CHECK(code_of(key, seal_body(key, file, Bytes(19, 0))) == Code::corrupt);

    // The device name: at most kMaxDeviceName bytes, its length within the body.
    auto named = [&](uint32_t len, size_t present) {
        ByteWriter w;
        w.u64(1);
        w.u32(1);
        w.u32(len);
        w.raw(Bytes(present, 'd'));
        w.u32(0);
        w.u32(0);
        return decode_segment(key, seal_body(key, file, w.bytes()));
    };
    auto longest = named(kMaxDeviceName, kMaxDeviceName);
    REQUIRE_MESSAGE(longest.ok(), longest.error().context);
    CHECK(longest->device_name == std::string(kMaxDeviceName, 'd'));
    CHECK(longest->version == 2);
    for (auto [len, present] : {std::pair<uint32_t, size_t>{kMaxDeviceName + 1, kMaxDeviceName + 1},
                                {1000, 1000}, {0xffffffffu, 8}, {9, 0}}) {
        auto r = named(len, present);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == Code::corrupt);
    }

    // Ops inside the body: a bad one is corrupt with its position named,
    // an unknown type unsupported.
    auto with_ops = [&](uint8_t last_type, const std::string& last_name) {
        ByteWriter w;
        w.u64(1);
        w.u32(1);
        w.str("phone");
        w.u32(0);
        w.u32(3);
        encode_op(w, {1, OpRemoveXattr{crypto::random_id(), "user.a"}});
        encode_op(w, {2, OpUnlink{crypto::random_id(), "x", crypto::random_id(), crypto::random_id()}});
        Bytes last = encode_op({3, OpUnlink{crypto::random_id(), last_name, crypto::random_id(), crypto::random_id()}});
        last[0] = last_type;
        w.raw(last);
        return decode_segment(key, seal_body(key, file, w.bytes()));
    };
    auto good = with_ops(3, "ok");
    REQUIRE_MESSAGE(good.ok(), good.error().context);
    CHECK(good->device_name == "phone");
    CHECK(good->ops.size() == 3);
    auto bad = with_ops(3, "a/b");
    REQUIRE_FALSE(bad.ok());
    CHECK(bad.error().code == Code::corrupt);
    CHECK_MESSAGE(bad.error().context.find("op 2") != std::string::npos, bad.error().context);
    auto newer = with_ops(77, "ok");
    REQUIRE_FALSE(newer.ok());
    CHECK(newer.error().code == Code::unsupported);
}

TEST_CASE("segment: known-answer vector segment_v2") {
    testing::FixedRandom rnd(1);
    Segment s = vector_segment(2);
    Bytes file = encode_segment(fixed_key(), s);
    const std::string hex = to_hex(file);
    CHECK_MESSAGE(hex == testing::doc_vector("segment_v2"), "segment_v2 (" << file.size() << " bytes): " << hex);
    CHECK(file.size() == 64 + 40 + 8 + 4 + 4 + 6 + 4 + 56 + 4 + 101 + 102 + 205 + 49 + 115 + 70);

    auto published = from_hex(testing::doc_vector("segment_v2"));
    REQUIRE(published.ok());
    auto back = decode_segment(fixed_key(), *published);
    REQUIRE_MESSAGE(back.ok(), back.error().context);
    CHECK(back->version == 2);
    CHECK(back->device_name == "laptop");
    CHECK(*back == s);
}

// Written by the coffer of journal version 1: still read, without a device
// name or seen versions.
TEST_CASE("segment: known-answer vector segment_v1 still decodes") {
    Segment s;
    {
        testing::FixedRandom rnd(1);
        s = vector_segment(1);
    }
    auto published = from_hex(testing::doc_vector("segment_v1"));
    REQUIRE(published.ok());
    REQUIRE(published->size() == 736);
    CHECK((*published)[7] == 1);
    auto back = decode_segment(fixed_key(), *published);
    REQUIRE_MESSAGE(back.ok(), back.error().context);
    CHECK(back->version == 1);
    CHECK(back->device_name.empty());
    CHECK(*back == s);
    auto* rename = std::get_if<OpRename>(&back->ops.back().body);
    REQUIRE(rename);
    CHECK(rename->replaced_seen.is_zero());

    // The test's version 1 writer (journal_v1.h) makes the same bytes.
    {
        testing::FixedRandom rnd(1);
        Segment again = vector_segment(1);
        CHECK(to_hex(testing::encode_segment_v1(fixed_key(), again)) == testing::doc_vector("segment_v1"));
    }

    // Written again, it is a version 2 segment of the same content.
    Bytes now = encode_segment(fixed_key(), *back);
    CHECK(now[7] == 2);
    CHECK(now.size() == published->size() + 4 + 16);  // the empty device name, the rename's replaced_seen
    auto v2 = decode_segment(fixed_key(), now);
    REQUIRE(v2.ok());
    CHECK(v2->version == 2);
    Segment expect = *back;
    expect.version = 2;
    CHECK(*v2 == expect);
}

TEST_CASE("segment: a version 1 segment with unlinks and renames") {
    testing::FixedRandom rnd(3);
    auto key = fixed_key();
    Segment s;
    s.device = crypto::random_id();
    s.seq = 4;
    s.prev = filled(0x33);
    s.hlc = 77;
    s.merged = {{crypto::random_id(), 2, filled(0xcc)}};
    const Id128 dir = crypto::random_id(), a = crypto::random_id(), b = crypto::random_id();
    s.ops.push_back({78, OpUnlink{dir, "gone", a, {}}});
    s.ops.push_back({79, OpRename{dir, "x", dir, "y", 0, a, b, {}}});
    s.ops.push_back({80, OpRename{dir, "p", dir, "q", kRenameExchange, a, b, {}}});
    s.ops.push_back({81, OpSetXattr{a, "user.k", Bytes{'v'}}});
    s.ops.push_back({82, OpUnlink{dir, "also gone", b, {}}});
    s.version = 1;
    Bytes file = testing::encode_segment_v1(key, s);
    CHECK(file.size() == 64 + 40 + 8 + 4 + 4 + 56 + 4 + (13 + 36 + 4) + 2 * (13 + 76 + 2) + (13 + 24 + 6 + 1) +
                             (13 + 36 + 9));
    auto back = decode_segment(key, file);
    REQUIRE_MESSAGE(back.ok(), back.error().context);
    CHECK(back->version == 1);
    CHECK(*back == s);
    for (const Op& op : back->ops) {
        if (auto* u = std::get_if<OpUnlink>(&op.body)) CHECK(u->seen.is_zero());
        if (auto* r = std::get_if<OpRename>(&op.body)) CHECK(r->replaced_seen.is_zero());
    }

    // Under a version 1 prefix the body is read the old way: a version 2
    // body there (a device name, seen versions) is corrupt, and so is a
    // version 1 body under a version 2 prefix.
    Segment now = s;
    now.version = 2;
    Bytes v2 = encode_segment(key, now);
    Bytes v2_body = crypto::open(key, ByteSpan(v2).subspan(kSegmentPrefixSize), ByteSpan(v2).first(kSegmentPrefixSize))
                        .value();
    CHECK(code_of(key, seal_body(key, file, v2_body)) == Code::corrupt);
    CHECK(code_of(key, seal_body(key, v2, testing::segment_body_v1(s))) == Code::corrupt);
    CHECK(decode_segment(key, seal_body(key, v2, v2_body)).ok());
    CHECK(decode_segment(key, seal_body(key, file, testing::segment_body_v1(s))).ok());
}

TEST_CASE("segment: the writer cuts a device name to kMaxDeviceName bytes") {
    auto key = fixed_key();
    Segment s = sample(1, 3);
    s.device_name = std::string(kMaxDeviceName, 'n');
    auto back = decode_segment(key, encode_segment(key, s));
    REQUIRE(back.ok());
    CHECK(*back == s);
    s.device_name += "tail";
    back = decode_segment(key, encode_segment(key, s));
    REQUIRE(back.ok());
    CHECK(back->device_name == std::string(kMaxDeviceName, 'n'));
}

// The writer publish uses: ops encoded one by one (or as a block already
// encoded) into the file's buffer and sealed in place give the bytes of the
// body sealed apart, as the format defines them, whatever the reservation.
TEST_CASE("segment: SegmentWriter gives the bytes of the body sealed apart") {
    auto key = fixed_key();
    auto reference = [&](const Segment& s, uint64_t seed) {
        ByteWriter body;
        body.u64(s.hlc);
        body.u32(s.key_epoch);
        body.str(s.device_name);
        body.u32(static_cast<uint32_t>(s.merged.size()));
        for (const auto& e : s.merged) {
            body.id(e.device);
            body.u64(e.seq);
            body.raw(e.head);
        }
        body.u32(static_cast<uint32_t>(s.ops.size()));
        for (const auto& op : s.ops) encode_op(body, op);
        testing::FixedRandom rnd(seed);
        Bytes out = testing::segment_prefix(2, s);
        Bytes sealed = crypto::seal(key, body.bytes(), out);
        out.insert(out.end(), sealed.begin(), sealed.end());
        return out;
    };
    uint64_t seed = 100;
    for (size_t n : {size_t{0}, size_t{1}, size_t{9}, size_t{3000}}) {
        Segment s = sample(n % 2 ? 7 : 1, n);
        ByteWriter all;
        for (const auto& op : s.ops) encode_op(all, op);
        for (size_t reserve : {size_t{0}, all.size(), all.size() / 3}) {
            for (bool as_block : {false, true}) {
                CAPTURE(n);
                CAPTURE(reserve);
                CAPTURE(as_block);
                ++seed;
                SegmentWriter w(s.device, s.seq, s.prev, s.hlc, s.key_epoch, s.device_name, s.merged, reserve);
                if (as_block) {
                    // the first half one by one, the rest as one encoded block
                    size_t half = s.ops.size() / 2;
                    ByteWriter rest;
                    for (size_t i = 0; i < half; ++i) w.add(s.ops[i]);
                    for (size_t i = half; i < s.ops.size(); ++i) encode_op(rest, s.ops[i]);
                    w.add_encoded(rest.bytes(), s.ops.size() - half);
                } else {
                    for (const auto& op : s.ops) w.add(op);
                }
                CHECK(w.ops() == s.ops.size());
                Bytes file;
                {
                    testing::FixedRandom rnd(seed);
                    file = w.finish(key);
                }
                CHECK(file == reference(s, seed));
                CHECK(file.size() == kSegmentPrefixSize + crypto::kSealOverhead + 8 + 4 + 4 + s.device_name.size() +
                                         4 + s.merged.size() * (16 + 8 + 32) + 4 + all.size());
                auto back = decode_segment(key, file);
                REQUIRE_MESSAGE(back.ok(), back.error().context);
                CHECK(*back == s);
                // The writer is empty afterwards.
                CHECK(w.ops() == 0);
                CHECK(w.size() == 0);
            }
        }
    }
}
