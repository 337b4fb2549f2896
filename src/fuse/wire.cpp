#include "wire.h"

#include <linux/fuse.h>
#include <unistd.h>

#include <cstring>

#include "ops.h"
#include "coffer/util/log.h"

namespace coffer::fuse::wire {
namespace {

thread_local bool t_kill_suidgid = false;

// The u32 at `at` of a request body, or 0 when the body is too short for it.
uint32_t u32_at(const uint8_t* body, size_t body_len, size_t at) {
    uint32_t v = 0;
    if (body_len >= at + sizeof v) std::memcpy(&v, body + at, sizeof v);
    return v;
}

State& state_of(void* userdata) { return static_cast<OpsContext*>(userdata)->wire; }

}  // namespace

void note_request(State& st, const void* mem, size_t size) {
    t_kill_suidgid = false;
    fuse_in_header h;
    if (size < sizeof h) return;
    std::memcpy(&h, mem, sizeof h);
    const auto* body = static_cast<const uint8_t*>(mem) + sizeof h;
    const size_t body_len = size - sizeof h;
    switch (h.opcode) {
        case FUSE_INIT: {
            if (st.init_seen.load()) return;
            const uint32_t flags = u32_at(body, body_len, offsetof(fuse_init_in, flags));
            st.kernel_offers_killpriv_v2 = (flags & FUSE_HANDLE_KILLPRIV_V2) != 0;
            st.init_unique = h.unique;
            st.init_seen = true;
            return;
        }
        case FUSE_WRITE:
            t_kill_suidgid = (u32_at(body, body_len, offsetof(fuse_write_in, write_flags)) & FUSE_WRITE_KILL_SUIDGID) != 0;
            return;
        case FUSE_SETATTR:
            t_kill_suidgid = (u32_at(body, body_len, offsetof(fuse_setattr_in, valid)) & FATTR_KILL_SUIDGID) != 0;
            return;
        default:
            return;
    }
}

bool kill_suidgid() noexcept { return t_kill_suidgid; }

bool add_killpriv_v2(const void* reply, size_t len, void* out) noexcept {
    constexpr size_t at = offsetof(fuse_init_out, flags);
    if (len < at + sizeof(uint32_t) || len > sizeof(fuse_init_out)) return false;
    std::memcpy(out, reply, len);
    uint32_t flags;
    std::memcpy(&flags, static_cast<uint8_t*>(out) + at, sizeof flags);
    flags |= FUSE_HANDLE_KILLPRIV_V2;
    std::memcpy(static_cast<uint8_t*>(out) + at, &flags, sizeof flags);
    return true;
}

ssize_t read(int fd, void* buf, size_t len, void* userdata) {
    ssize_t n = ::read(fd, buf, len);
    if (n > 0) note_request(state_of(userdata), buf, static_cast<size_t>(n));
    return n;
}

ssize_t writev(int fd, struct iovec* iov, int count, void* userdata) {
    State& st = state_of(userdata);
    if (count == 2 && st.init_seen.load() && st.want_killpriv_v2.load() && iov[0].iov_len == sizeof(fuse_out_header)) {
        fuse_out_header h;
        std::memcpy(&h, iov[0].iov_base, sizeof h);
        fuse_init_out patched;
        if (h.unique == st.init_unique.load() && h.error == 0 &&
            add_killpriv_v2(iov[1].iov_base, iov[1].iov_len, &patched)) {
            // Once: the reply that has gone out is INIT's only one.
            st.want_killpriv_v2 = false;
            struct iovec v[2] = {iov[0], {&patched, iov[1].iov_len}};
            ssize_t n = ::writev(fd, v, 2);
            if (n > 0) {
                st.killpriv_v2 = true;
                log::info("FUSE_HANDLE_KILLPRIV_V2: coffer drops setuid and setgid bits on write, truncate and chown");
            }
            return n;
        }
    }
    return ::writev(fd, iov, count);
}

}  // namespace coffer::fuse::wire
