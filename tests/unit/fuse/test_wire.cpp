#include <doctest/doctest.h>
#include <linux/fuse.h>

#include <cstring>
#include <vector>

#include "fuse/wire.h"

using namespace coffer;

namespace {

// A raw request: the header, then `body`.
template <class Body>
std::vector<uint8_t> request(uint32_t opcode, uint64_t unique, const Body& body) {
    fuse_in_header h{};
    h.len = sizeof h + sizeof body;
    h.opcode = opcode;
    h.unique = unique;
    std::vector<uint8_t> out(sizeof h + sizeof body);
    std::memcpy(out.data(), &h, sizeof h);
    std::memcpy(out.data() + sizeof h, &body, sizeof body);
    return out;
}

}  // namespace

TEST_CASE("wire: the INIT offer and the per-request drop bits are read from the raw request") {
    fuse::wire::State st;
    fuse_init_in init{};
    init.major = 7;
    init.minor = 38;
    init.flags = FUSE_HANDLE_KILLPRIV_V2 | FUSE_ASYNC_READ;
    auto r = request(FUSE_INIT, 2, init);
    fuse::wire::note_request(st, r.data(), r.size());
    CHECK(st.init_seen.load());
    CHECK(st.init_unique.load() == 2);
    CHECK(st.kernel_offers_killpriv_v2.load());
    CHECK_FALSE(fuse::wire::kill_suidgid());

    // A second INIT (there is none; a forged one) changes nothing.
    init.flags = 0;
    r = request(FUSE_INIT, 9, init);
    fuse::wire::note_request(st, r.data(), r.size());
    CHECK(st.init_unique.load() == 2);
    CHECK(st.kernel_offers_killpriv_v2.load());

    fuse_write_in w{};
    w.write_flags = FUSE_WRITE_KILL_SUIDGID;
    r = request(FUSE_WRITE, 10, w);
    fuse::wire::note_request(st, r.data(), r.size());
    CHECK(fuse::wire::kill_suidgid());
    w.write_flags = FUSE_WRITE_CACHE;  // a write-back write: no drop
    r = request(FUSE_WRITE, 11, w);
    fuse::wire::note_request(st, r.data(), r.size());
    CHECK_FALSE(fuse::wire::kill_suidgid());

    fuse_setattr_in sa{};
    sa.valid = FATTR_SIZE | FATTR_KILL_SUIDGID;
    r = request(FUSE_SETATTR, 12, sa);
    fuse::wire::note_request(st, r.data(), r.size());
    CHECK(fuse::wire::kill_suidgid());

    // Any other request clears the bit: it belongs to one request only.
    fuse_getattr_in ga{};
    r = request(FUSE_GETATTR, 13, ga);
    fuse::wire::note_request(st, r.data(), r.size());
    CHECK_FALSE(fuse::wire::kill_suidgid());

    // Cut short before the field: read as "no drop", never past the end.
    r = request(FUSE_SETATTR, 14, sa);
    fuse::wire::note_request(st, r.data(), sizeof(fuse_in_header) + 2);
    CHECK_FALSE(fuse::wire::kill_suidgid());
    fuse::wire::note_request(st, r.data(), 3);
    CHECK_FALSE(fuse::wire::kill_suidgid());
}

TEST_CASE("wire: an INIT without the offer leaves KILLPRIV_V2 off") {
    fuse::wire::State st;
    fuse_init_in init{};
    init.major = 7;
    init.minor = 31;
    init.flags = FUSE_ASYNC_READ;
    auto r = request(FUSE_INIT, 1, init);
    fuse::wire::note_request(st, r.data(), r.size());
    CHECK(st.init_seen.load());
    CHECK_FALSE(st.kernel_offers_killpriv_v2.load());
}

TEST_CASE("wire: the INIT reply gains FUSE_HANDLE_KILLPRIV_V2 and keeps everything else") {
    fuse_init_out reply{};
    reply.major = 7;
    reply.minor = 38;
    reply.max_readahead = 1 << 20;
    reply.flags = FUSE_ASYNC_READ | FUSE_WRITEBACK_CACHE | FUSE_INIT_EXT;
    reply.max_write = 1 << 19;
    reply.flags2 = 1;
    fuse_init_out patched{};
    REQUIRE(fuse::wire::add_killpriv_v2(&reply, sizeof reply, &patched));
    CHECK(patched.flags == (reply.flags | FUSE_HANDLE_KILLPRIV_V2));
    fuse_init_out back = patched;
    back.flags = reply.flags;
    CHECK(std::memcmp(&back, &reply, sizeof reply) == 0);
    // Too short to hold the flags, or longer than the structure: refused.
    CHECK_FALSE(fuse::wire::add_killpriv_v2(&reply, offsetof(fuse_init_out, flags) + 2, &patched));
    uint8_t big[sizeof(fuse_init_out) + 8] = {};
    CHECK_FALSE(fuse::wire::add_killpriv_v2(big, sizeof big, &patched));
}
