#include "coffer/util/file_io.h"

#include <unistd.h>

#include <atomic>
#include <string>

namespace coffer::io {

namespace {
const Hooks kSystem{::pwrite, ::fdatasync, ::ftruncate};
std::atomic<const Hooks*> g_hooks{&kSystem};
}  // namespace

void set_hooks(const Hooks* hooks) noexcept { g_hooks = hooks ? hooks : &kSystem; }

Status pwrite_all(int fd, ByteSpan data, uint64_t off, const char* what) {
    const Hooks* h = g_hooks.load();
    size_t done = 0;
    while (done < data.size()) {
        ssize_t n = h->pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(off + done));
        if (n < 0) {
            if (errno == EINTR) continue;
            return sys_error(errno, std::string(what) + ": write");
        }
        if (n == 0) return sys_error(ENOSPC, std::string(what) + ": write");
        done += static_cast<size_t>(n);
    }
    return {};
}

Status datasync(int fd, const char* what) {
    if (g_hooks.load()->fdatasync(fd) != 0) return sys_error(errno, std::string(what) + ": fdatasync");
    return {};
}

Status truncate(int fd, uint64_t len, const char* what) {
    if (g_hooks.load()->ftruncate(fd, static_cast<off_t>(len)) != 0)
        return sys_error(errno, std::string(what) + ": ftruncate");
    return {};
}

}  // namespace coffer::io
