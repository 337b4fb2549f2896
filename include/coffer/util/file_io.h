// The few file calls whose durability matters (staging log writes and syncs).
// They go through here so a test can put a fault-injecting layer underneath
// that drops what was not made durable, as a power cut would.
#pragma once

#include <sys/types.h>

#include "coffer/util/bytes.h"
#include "coffer/util/result.h"

namespace coffer::io {

struct Hooks {
    ssize_t (*pwrite)(int fd, const void* buf, size_t len, off_t off);
    int (*fdatasync)(int fd);
    int (*ftruncate)(int fd, off_t len);
};
// nullptr restores the system calls. Tests only; not thread-safe to switch.
void set_hooks(const Hooks* hooks) noexcept;

// Writes all of data at off; retries EINTR and short writes.
Status pwrite_all(int fd, ByteSpan data, uint64_t off, const char* what);
Status datasync(int fd, const char* what);
Status truncate(int fd, uint64_t len, const char* what);

}  // namespace coffer::io
