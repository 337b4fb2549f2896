// vfs::MetaSealer on its own: what the index keeps of names, symlink
// targets, device numbers and xattrs opens only for the node (or parent) and
// kind it was sealed for, and lookup tags are keyed and deterministic.
#include <doctest/doctest.h>

#include <memory>

#include "vfs/aad.h"
#include "vfs/sealing.h"

using namespace coffer;
using vfs::MetaSealer;

namespace {

template <class R>
Code code_of(const R& r) {
    return r.ok() ? Code::internal : r.error().code;
}

struct SealEnv {
    crypto::SecretBytes master;
    std::unique_ptr<MetaSealer> s;
    Id128 a, b;
    SealEnv() {
        crypto::init();
        master = crypto::random_key();
        s = std::make_unique<MetaSealer>(master);
        a = crypto::random_id();
        b = crypto::random_id();
    }
};

}  // namespace

TEST_CASE("meta sealer: everything round trips") {
    SealEnv e;
    for (std::string name : {std::string("report.txt"), std::string(), std::string(255, 'x'),
                             std::string("caf\xc3\xa9\0z", 7)}) {
        CAPTURE(name.size());
        auto n = e.s->open_name(e.a, e.s->seal_name(e.a, name));
        REQUIRE(n.ok());
        CHECK(*n == name);
        auto t = e.s->open_symlink(e.a, e.s->seal_symlink(e.a, name));
        REQUIRE(t.ok());
        CHECK(*t == name);
        auto xn = e.s->open_xattr_name(e.a, e.s->seal_xattr_name(e.a, name));
        REQUIRE(xn.ok());
        CHECK(*xn == name);
        const Bytes value(name.begin(), name.end());
        auto xv = e.s->open_xattr_value(e.a, e.s->seal_xattr_value(e.a, value));
        REQUIRE(xv.ok());
        CHECK(*xv == value);
    }
    for (uint64_t rdev : {uint64_t(0), uint64_t(0x0801), ~uint64_t(0), uint64_t(0x1234567890abcdef)}) {
        auto r = e.s->open_rdev(e.a, e.s->seal_rdev(e.a, rdev));
        REQUIRE(r.ok());
        CHECK(*r == rdev);
    }
    // Seals are randomized: the same name sealed twice differs.
    CHECK(e.s->seal_name(e.a, "n") != e.s->seal_name(e.a, "n"));
}

TEST_CASE("meta sealer: a seal opens only for its own parent or node") {
    SealEnv e;
    CHECK(code_of(e.s->open_name(e.b, e.s->seal_name(e.a, "file"))) == Code::corrupt);
    CHECK(code_of(e.s->open_symlink(e.b, e.s->seal_symlink(e.a, "/etc/passwd"))) == Code::corrupt);
    CHECK(code_of(e.s->open_rdev(e.b, e.s->seal_rdev(e.a, 0x0801))) == Code::corrupt);
    CHECK(code_of(e.s->open_xattr_name(e.b, e.s->seal_xattr_name(e.a, "user.k"))) == Code::corrupt);
    const Bytes v = {1, 2, 3};
    CHECK(code_of(e.s->open_xattr_value(e.b, e.s->seal_xattr_value(e.a, v))) == Code::corrupt);
}

TEST_CASE("meta sealer: a seal opens only as its own kind") {
    SealEnv e;
    const Bytes name = e.s->seal_name(e.a, "x");
    CHECK(code_of(e.s->open_symlink(e.a, name)) == Code::corrupt);
    CHECK(code_of(e.s->open_xattr_name(e.a, name)) == Code::corrupt);
    CHECK(code_of(e.s->open_xattr_value(e.a, name)) == Code::corrupt);
    const Bytes xname = e.s->seal_xattr_name(e.a, "user.x");
    CHECK(code_of(e.s->open_name(e.a, xname)) == Code::corrupt);
    CHECK(code_of(e.s->open_xattr_value(e.a, xname)) == Code::corrupt);
    const Bytes target = e.s->seal_symlink(e.a, "12345678");  // 8 bytes, like an rdev
    CHECK(code_of(e.s->open_rdev(e.a, target)) == Code::corrupt);
    CHECK(code_of(e.s->open_name(e.a, e.s->seal_rdev(e.a, 5))) == Code::corrupt);
}

TEST_CASE("meta sealer: another master opens nothing; a flipped byte opens nothing") {
    SealEnv e;
    MetaSealer other(crypto::random_key());
    CHECK(code_of(other.open_name(e.a, e.s->seal_name(e.a, "file"))) == Code::corrupt);
    CHECK(code_of(other.open_rdev(e.a, e.s->seal_rdev(e.a, 1))) == Code::corrupt);
    Bytes sealed = e.s->seal_xattr_value(e.a, Bytes{9, 9, 9});
    sealed[sealed.size() / 2] ^= 1;
    CHECK(code_of(e.s->open_xattr_value(e.a, sealed)) == Code::corrupt);
    CHECK(code_of(e.s->open_name(e.a, Bytes(5, 0))) == Code::corrupt);  // shorter than a seal
}

TEST_CASE("meta sealer: tags are deterministic per (parent, name) and keyed") {
    SealEnv e;
    const Bytes t = e.s->tag(e.a, "name");
    CHECK(t.size() == 16);
    CHECK(e.s->tag(e.a, "name") == t);
    MetaSealer same_master(e.master);
    CHECK(same_master.tag(e.a, "name") == t);
    CHECK(e.s->tag(e.b, "name") != t);
    CHECK(e.s->tag(e.a, "Name") != t);
    CHECK(e.s->tag(e.a, "name2") != t);
    CHECK(e.s->tag(e.a, "") != t);
    MetaSealer other(crypto::random_key());
    CHECK(other.tag(e.a, "name") != t);
}

TEST_CASE("meta sealer: a device number of the wrong length is corrupt") {
    SealEnv e;
    const auto names_key = crypto::derive(e.master, crypto::Subkey::names);
    for (size_t len : {size_t(0), size_t(7), size_t(9), size_t(16)}) {
        CAPTURE(len);
        const Bytes plain(len, 0x11);
        const Bytes sealed = crypto::seal(names_key, plain, vfs::aad::rdev(e.a));
        CHECK(code_of(e.s->open_rdev(e.a, sealed)) == Code::corrupt);
    }
    // The same construction with 8 bytes is what seal_rdev makes.
    Bytes eight(8, 0);
    put_u64le(eight.data(), 0x0801);
    auto r = e.s->open_rdev(e.a, crypto::seal(names_key, eight, vfs::aad::rdev(e.a)));
    REQUIRE(r.ok());
    CHECK(*r == 0x0801);
}
