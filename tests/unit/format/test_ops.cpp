#include <doctest/doctest.h>

#include <cstring>
#include <set>

#include "coffer/format/ops.h"
#include "journal_v1.h"

using namespace coffer;
using namespace coffer::format;

namespace {

Id128 id_of(uint8_t seed) {
    Id128 id;
    for (size_t i = 0; i < id.b.size(); ++i) id.b[i] = static_cast<uint8_t>(seed + i);
    return id;
}

// One op of every type, with every field set to something distinguishable.
std::vector<Op> one_of_each() {
    std::vector<Op> ops;
    ops.push_back({101, OpCreate{id_of(1), id_of(2), "report.txt", 0100644, 1000, 1001, 0, {1, -2, 3}, ""}});
    ops.push_back({102, OpCreate{id_of(3), id_of(2), "link", 0120777, 1000, 1000, 0, {4, 5, 6},
                                 std::string(kMaxSymlink, 'x')}});
    ops.push_back({103, OpCreate{id_of(4), id_of(2), "tty", 020620, 0, 5, 0x0000000500000001ull, {}, ""}});
    ops.push_back({104, OpLink{id_of(1), id_of(5), "hard link", -7}});
    ops.push_back({105, OpUnlink{id_of(2), std::string(kMaxName, 'n'), id_of(1), id_of(0x31)}});
    ops.push_back({106, OpRename{id_of(2), "old", id_of(6), "new", kRenameExchange, id_of(7), id_of(8), id_of(0x32)}});
    ops.push_back({106, OpRename{id_of(2), "x", id_of(6), "y", 0, id_of(7), id_of(8), id_of(0x33)}});
    ops.push_back({107, OpRename{id_of(2), "a", id_of(2), "b", kRenameNoReplace, id_of(7), Id128{}, {}}});
    ops.push_back({108, OpSetAttr{id_of(7), kSetMode | kSetMtime | kSetCtime, 0100600, 0, 0, {0, 9, 10}}});
    OpSetContent c{id_of(9), id_of(10), id_of(11), 12345678, 11, 12, 3, Bytes(72, 0x5c), {}};
    c.extents.push_back({0, id_of(12), 24, 4u << 20});
    c.extents.push_back({1, id_of(13), 24, 4u << 20});
    c.extents.push_back({5, id_of(12), 4194624, 1});
    ops.push_back({109, c});
    ops.push_back({110, OpSetContent{id_of(9), id_of(11), id_of(14), 0, 13, 14, 3, Bytes(kMaxWrappedKey, 1), {}}});
    ops.push_back({111, OpSetXattr{id_of(9), "user.colour", Bytes{'b', 'l', 'u', 'e'}}});
    ops.push_back({112, OpSetXattr{id_of(9), std::string(kMaxXattrName, 'u'), Bytes(kMaxXattrValue, 0xee)}});
    ops.push_back({113, OpSetXattr{id_of(9), "user.empty", Bytes{}}});
    ops.push_back({~0ull, OpRemoveXattr{id_of(9), "user.colour"}});
    return ops;
}

Error error_of(ByteSpan bytes) {
    auto r = decode_op(bytes);
    REQUIRE_FALSE(r.ok());
    return r.error();
}

// Encodes `op` (the encoder does not validate) and expects the parser to
// refuse it as corrupt, naming `field`.
void expect_corrupt(const Op& op, const std::string& field) {
    Error e = error_of(encode_op(op));
    CHECK(e.code == Code::corrupt);
    CHECK_MESSAGE(e.context.find(field) != std::string::npos, e.context);
}

Op create_named(std::string name) {
    return {1, OpCreate{id_of(1), id_of(2), std::move(name), 0100644, 0, 0, 0, {}, ""}};
}

}  // namespace

TEST_CASE("ops: every op type round-trips") {
    std::vector<Op> ops = one_of_each();
    std::set<size_t> types;
    for (const Op& op : ops) {
        types.insert(op.body.index());
        Bytes enc = encode_op(op);
        CHECK(enc[0] == op.body.index() + 1);
        auto back = decode_op(enc);
        REQUIRE_MESSAGE(back.ok(), back.error().context);
        CHECK(*back == op);
        CHECK(encode_op(*back) == enc);
    }
    CHECK(types.size() == std::variant_size_v<OpBody>);
}

TEST_CASE("ops: a stream of ops decodes one after another") {
    std::vector<Op> ops = one_of_each();
    ByteWriter w;
    for (const Op& op : ops) encode_op(w, op);
    Bytes all = w.take();
    ByteReader r(all);
    for (const Op& op : ops) {
        auto back = decode_op(r);
        REQUIRE(back.ok());
        CHECK(*back == op);
    }
    CHECK(r.at_end());
}

TEST_CASE("ops: byte layout of an unlink") {
    const Id128 parent = id_of(0x10), node = id_of(0x40), seen = id_of(0x70);
    Op op{0x0102030405060708ull, OpUnlink{parent, "ab", node, seen}};
    Bytes expect = {3, 8, 7, 6, 5, 4, 3, 2, 1, 16 + 4 + 2 + 16 + 16, 0, 0, 0};
    expect.insert(expect.end(), parent.b.begin(), parent.b.end());
    expect.insert(expect.end(), {2, 0, 0, 0, 'a', 'b'});
    expect.insert(expect.end(), node.b.begin(), node.b.end());
    expect.insert(expect.end(), seen.b.begin(), seen.b.end());
    CHECK(to_hex(encode_op(op)) == to_hex(expect));
    auto back = decode_op(expect);
    REQUIRE_MESSAGE(back.ok(), back.error().context);
    CHECK(*back == op);
}

TEST_CASE("ops: byte layout of a rename") {
    const Id128 sp = id_of(0x10), dp = id_of(0x20), node = id_of(0x40), replaced = id_of(0x50),
                seen = id_of(0x70);
    Op op{0x0102030405060708ull, OpRename{sp, "a", dp, "bc", kRenameNoReplace, node, replaced, seen}};
    Bytes expect = {4, 8, 7, 6, 5, 4, 3, 2, 1, 16 + 5 + 16 + 6 + 4 + 16 + 16 + 16, 0, 0, 0};
    expect.insert(expect.end(), sp.b.begin(), sp.b.end());
    expect.insert(expect.end(), {1, 0, 0, 0, 'a'});
    expect.insert(expect.end(), dp.b.begin(), dp.b.end());
    expect.insert(expect.end(), {2, 0, 0, 0, 'b', 'c', 1, 0, 0, 0});
    expect.insert(expect.end(), node.b.begin(), node.b.end());
    expect.insert(expect.end(), replaced.b.begin(), replaced.b.end());
    expect.insert(expect.end(), seen.b.begin(), seen.b.end());
    CHECK(to_hex(encode_op(op)) == to_hex(expect));
    auto back = decode_op(expect);
    REQUIRE_MESSAGE(back.ok(), back.error().context);
    CHECK(*back == op);
}

// Journal version 1 (still read): unlink and rename end before the seen
// versions, which read as zero; every other type is framed the same.
TEST_CASE("ops: version 1 unlink and rename decode without seen versions") {
    const Id128 parent = id_of(0x10), node = id_of(0x40), dp = id_of(0x20), replaced = id_of(0x50);
    Bytes unlink = {3, 8, 7, 6, 5, 4, 3, 2, 1, 16 + 4 + 2 + 16, 0, 0, 0};
    unlink.insert(unlink.end(), parent.b.begin(), parent.b.end());
    unlink.insert(unlink.end(), {2, 0, 0, 0, 'a', 'b'});
    unlink.insert(unlink.end(), node.b.begin(), node.b.end());
    Bytes rename = {4, 1, 0, 0, 0, 0, 0, 0, 0, 16 + 5 + 16 + 6 + 4 + 16 + 16, 0, 0, 0};
    rename.insert(rename.end(), parent.b.begin(), parent.b.end());
    rename.insert(rename.end(), {1, 0, 0, 0, 'a'});
    rename.insert(rename.end(), dp.b.begin(), dp.b.end());
    rename.insert(rename.end(), {2, 0, 0, 0, 'b', 'c', 2, 0, 0, 0});
    rename.insert(rename.end(), node.b.begin(), node.b.end());
    rename.insert(rename.end(), replaced.b.begin(), replaced.b.end());
    const Op want_unlink{0x0102030405060708ull, OpUnlink{parent, "ab", node, Id128{}}};
    const Op want_rename{1, OpRename{parent, "a", dp, "bc", kRenameExchange, node, replaced, Id128{}}};
    // The test's version 1 writer gives these bytes (the other tests build old segments with it).
    CHECK(to_hex(testing::encode_op_v1(want_unlink)) == to_hex(unlink));
    CHECK(to_hex(testing::encode_op_v1(want_rename)) == to_hex(rename));

    Bytes both = unlink;
    both.insert(both.end(), rename.begin(), rename.end());
    ByteReader r(both);
    auto u = decode_op(r, 1);
    REQUIRE_MESSAGE(u.ok(), u.error().context);
    CHECK(*u == want_unlink);
    auto n = decode_op(r, 1);
    REQUIRE_MESSAGE(n.ok(), n.error().context);
    CHECK(*n == want_rename);
    CHECK(r.at_end());

    // Read as version 2, the seen version is missing: corrupt, never zero.
    for (const Bytes& v1 : {unlink, rename}) {
        Error e = error_of(v1);
        CHECK(e.code == Code::corrupt);
        CHECK_MESSAGE(e.context.find("seen") != std::string::npos, e.context);
    }
    // Read as version 1, a version 2 encoding has 16 bytes too many.
    for (const Op& op : {want_unlink, want_rename}) {
        Bytes v2 = encode_op(op);
        ByteReader r1(v2);
        auto old = decode_op(r1, 1);
        REQUIRE_FALSE(old.ok());
        CHECK(old.error().code == Code::corrupt);
        CHECK_MESSAGE(old.error().context.find("16 trailing") != std::string::npos, old.error().context);
    }
    // Every other type decodes the same under both versions.
    for (const Op& op : one_of_each()) {
        if (std::holds_alternative<OpUnlink>(op.body) || std::holds_alternative<OpRename>(op.body)) continue;
        Bytes enc = encode_op(op);
        ByteReader r1(enc);
        auto old = decode_op(r1, 1);
        REQUIRE_MESSAGE(old.ok(), old.error().context);
        CHECK(*old == op);
        CHECK(r1.at_end());
    }
}

TEST_CASE("ops: every truncation of a valid encoding fails cleanly") {
    for (const Op& op : one_of_each()) {
        Bytes enc = encode_op(op);
        // The long symlink and xattr value make this quadratic; sample them.
        size_t step = enc.size() > 2000 ? 7 : 1;
        for (size_t n = 0; n < enc.size(); n += step) {
            auto r = decode_op(ByteSpan(enc.data(), n));
            REQUIRE_FALSE(r.ok());
            CHECK(r.error().code == Code::corrupt);
        }
        // Shortening the payload while fixing its length prefix must also fail.
        uint32_t plen = get_u32le(enc.data() + 9);
        for (uint32_t cut = 1; cut <= plen && cut <= 64; ++cut) {
            Bytes shorter(enc.begin(), enc.end() - cut);
            put_u32le(shorter.data() + 9, plen - cut);
            auto r = decode_op(shorter);
            REQUIRE_FALSE(r.ok());
            CHECK(r.error().code == Code::corrupt);
        }
    }
}

TEST_CASE("ops: trailing bytes are corrupt, in the payload and after it") {
    Bytes enc = encode_op(create_named("x"));
    Bytes after = enc;
    after.push_back(0);
    CHECK(error_of(after).code == Code::corrupt);

    Bytes inside = enc;
    inside.push_back(0);
    put_u32le(inside.data() + 9, get_u32le(inside.data() + 9) + 1);
    Error e = error_of(inside);
    CHECK(e.code == Code::corrupt);
    CHECK(e.context.find("trailing") != std::string::npos);

    // After the seen versions of unlink and rename, the last fields of version 2.
    for (const Op& op : {Op{1, OpUnlink{id_of(1), "x", id_of(2), id_of(3)}},
                         Op{1, OpRename{id_of(1), "a", id_of(2), "b", 0, id_of(3), id_of(4), id_of(5)}}}) {
        Bytes longer = encode_op(op);
        longer.push_back(0);
        put_u32le(longer.data() + 9, get_u32le(longer.data() + 9) + 1);
        Error t = error_of(longer);
        CHECK(t.code == Code::corrupt);
        CHECK_MESSAGE(t.context.find("1 trailing") != std::string::npos, t.context);
    }
}

TEST_CASE("ops: unknown op types") {
    Bytes enc = encode_op(create_named("x"));
    for (int type : {9, 42, 255}) {
        enc[0] = static_cast<uint8_t>(type);
        Error e = error_of(enc);
        CHECK(e.code == Code::unsupported);
        CHECK(e.context == "journal operation type " + std::to_string(type) + " is newer than this coffer");
    }
    enc[0] = 0;
    CHECK(error_of(enc).code == Code::corrupt);
}

TEST_CASE("ops: entry names") {
    CHECK(decode_op(encode_op(create_named(std::string(255, 'a')))).ok());
    CHECK(decode_op(encode_op(create_named("..."))).ok());
    CHECK(decode_op(encode_op(create_named(".hidden"))).ok());
    expect_corrupt(create_named(""), "name");
    expect_corrupt(create_named("."), "name");
    expect_corrupt(create_named(".."), "name");
    expect_corrupt(create_named("a/b"), "name");
    expect_corrupt(create_named("/"), "name");
    expect_corrupt(create_named(std::string("a\0b", 3)), "name");
    expect_corrupt(create_named(std::string(256, 'a')), "name");
    expect_corrupt({1, OpLink{id_of(1), id_of(2), "..", 0}}, "name");
    expect_corrupt({1, OpUnlink{id_of(1), "", id_of(2), {}}}, "name");
    expect_corrupt({1, OpRename{id_of(1), "a/", id_of(2), "b", 0, id_of(3), {}, {}}}, "src_name");
    expect_corrupt({1, OpRename{id_of(1), "a", id_of(2), ".", 0, id_of(3), {}, {}}}, "dst_name");
}

TEST_CASE("ops: length limits on symlinks, xattrs and wrapped keys") {
    Op link = create_named("l");
    std::get<OpCreate>(link.body).symlink_target = std::string(kMaxSymlink + 1, 's');
    expect_corrupt(link, "symlink_target");

    expect_corrupt({1, OpSetXattr{id_of(1), "", {}}}, "name");
    expect_corrupt({1, OpSetXattr{id_of(1), std::string(kMaxXattrName + 1, 'x'), {}}}, "name");
    expect_corrupt({1, OpRemoveXattr{id_of(1), std::string("user.a\0", 7)}}, "name");
    expect_corrupt({1, OpSetXattr{id_of(1), "user.big", Bytes(kMaxXattrValue + 1, 0)}}, "value");
    expect_corrupt({1, OpSetContent{id_of(1), {}, id_of(2), 0, 0, 0, 1, Bytes(kMaxWrappedKey + 1, 0), {}}},
                   "wrapped_key");
}

TEST_CASE("ops: extents") {
    auto content = [](std::vector<ExtentRef> xs) {
        return Op{1, OpSetContent{id_of(1), {}, id_of(2), 1 << 30, 0, 0, 1, Bytes(72, 0), std::move(xs)}};
    };
    CHECK(decode_op(encode_op(content({{0, id_of(3), 24, 1}, {7, id_of(3), 65, 9}}))).ok());
    expect_corrupt(content({{3, id_of(3), 24, 1}, {3, id_of(3), 65, 1}}), "extent index");
    expect_corrupt(content({{3, id_of(3), 24, 1}, {2, id_of(3), 65, 1}}), "extent index");
    expect_corrupt(content({{0, id_of(3), 24, 0}}), "extent plain_len");

    // A count larger than the bytes present is refused before allocating.
    Bytes enc = encode_op(content({{0, id_of(3), 24, 1}}));
    const size_t count_at = enc.size() - 36 - 4;
    REQUIRE(get_u32le(enc.data() + count_at) == 1);
    for (uint32_t n : {2u, 1000u, (1u << 24), (1u << 24) + 1, 0xffffffffu}) {
        put_u32le(enc.data() + count_at, n);
        Error e = error_of(enc);
        CHECK(e.code == Code::corrupt);
        CHECK(e.context.find("extent count") != std::string::npos);
    }
}

TEST_CASE("ops: rename flags and setattr mask") {
    auto rename = [](uint32_t flags) { return Op{1, OpRename{id_of(1), "a", id_of(2), "b", flags, id_of(3), {}, {}}}; };
    CHECK(decode_op(encode_op(rename(0))).ok());
    expect_corrupt(rename(kRenameNoReplace | kRenameExchange), "flags");
    CHECK(error_of(encode_op(rename(4))).code == Code::unsupported);

    Op attr{1, OpSetAttr{id_of(1), kSetMode | kSetUid | kSetGid | kSetAtime | kSetMtime | kSetCtime, 0, 0, 0, {}}};
    CHECK(decode_op(encode_op(attr)).ok());
    std::get<OpSetAttr>(attr.body).mask = 64;
    CHECK(error_of(encode_op(attr)).code == Code::unsupported);
}

TEST_CASE("ops: a payload length past the end is corrupt") {
    Bytes enc = encode_op(create_named("x"));
    put_u32le(enc.data() + 9, 0xffffffffu);
    CHECK(error_of(enc).code == Code::corrupt);
}

TEST_CASE("ops: encoded sizes match docs/FORMAT.md") {
    const Id128 a = id_of(1), b = id_of(2);
    auto size = [](OpBody body) { return encode_op({1, std::move(body)}).size(); };
    CHECK(size(OpCreate{a, b, "a.txt", 0100644, 0, 0, 0, {}, ""}) == 97 + 5);
    CHECK(size(OpCreate{a, b, "l", 0120777, 0, 0, 0, {}, "target"}) == 97 + 1 + 6);
    CHECK(size(OpLink{a, b, "ab", 0}) == 13 + 44 + 2);
    CHECK(size(OpUnlink{a, "ab", b, a}) == 13 + 52 + 2);
    CHECK(size(OpRename{a, "a.txt", b, "b.txt", 0, a, {}, {}}) == 115);
    // Journal version 1 (read only): 16 bytes fewer each.
    CHECK(testing::encode_op_v1({1, OpUnlink{a, "ab", b, {}}}).size() == 13 + 36 + 2);
    CHECK(testing::encode_op_v1({1, OpRename{a, "a.txt", b, "b.txt", 0, a, {}, {}}}).size() == 99);
    CHECK(size(OpSetAttr{a, 0, 0, 0, 0, {}}) == 13 + 56);
    CHECK(size(OpSetContent{a, {}, b, 20, 0, 0, 1, Bytes(72, 0), {{0, a, 24, 20}}}) == 205);
    CHECK(size(OpSetContent{a, {}, b, 20, 0, 0, 1, Bytes(72, 0), {{0, a, 24, 20}, {1, a, 85, 1}}}) == 205 + 36);
    CHECK(size(OpSetXattr{a, "user.tag", Bytes(4, 0)}) == 13 + 24 + 8 + 4);
    CHECK(size(OpRemoveXattr{a, "user.tag"}) == 13 + 20 + 8);
}
