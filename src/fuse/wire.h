// Internal to src/fuse/: what coffer reads from, and adds to, the FUSE
// protocol below libfuse.
//
// FUSE_HANDLE_KILLPRIV_V2 makes the server, not the kernel, drop set-user-ID
// and set-group-ID when a file is written, truncated or given away. The
// kernel then no longer refreshes a file's attributes before every chown
// (one GETATTR per file of an untar) and stops asking for
// security.capability before every write once it knows a file has none (a
// GETXATTR per write after the first). libfuse 3.14 (Debian 12) neither
// negotiates the flag nor passes on the per-request bits that say when to
// drop the privileges (FUSE_WRITE_KILL_SUIDGID, FATTR_KILL_SUIDGID). So the
// session reads the device through these functions (fuse_session_custom_io):
// `read` notes, for the thread that will dispatch the request, whether it
// carries one of those bits, and whether the kernel's INIT offers the flag;
// `writev` adds the flag to the INIT reply when op_init asked for it.
#pragma once

#include <sys/types.h>
#include <sys/uio.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace coffer::fuse::wire {

struct State {
    std::atomic<bool> init_seen{false};
    std::atomic<uint64_t> init_unique{0};
    std::atomic<bool> kernel_offers_killpriv_v2{false};
    std::atomic<bool> want_killpriv_v2{false};  // set by op_init before libfuse replies
    std::atomic<bool> killpriv_v2{false};       // the INIT reply went out with the flag
};

// Custom I/O for libfuse; `userdata` is the session's OpsContext, whose
// `wire` member the functions use.
ssize_t read(int fd, void* buf, size_t len, void* userdata);
ssize_t writev(int fd, struct iovec* iov, int count, void* userdata);

// Notes what one raw request asks (also used by the tests): the INIT offer,
// and for this thread whether the request asks to drop set-user-ID and
// set-group-ID.
void note_request(State& st, const void* mem, size_t size);

// Whether the request this thread is dispatching asks coffer to drop
// set-user-ID, and set-group-ID when group-executable.
bool kill_suidgid() noexcept;

// The INIT reply with FUSE_HANDLE_KILLPRIV_V2 added: `out` gets a copy of
// `reply` (a fuse_init_out of `len` bytes) with the flag set; false when the
// reply is too short to hold the flags.
bool add_killpriv_v2(const void* reply, size_t len, void* out) noexcept;

}  // namespace coffer::fuse::wire
