#include "coffer/util/source_file.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <memory>
#include <string>

namespace coffer {
namespace {

// Direct I/O wants the buffer, the offset and the length aligned to the
// device's logical block; 4 KiB covers 512-byte and 4 KiB devices alike.
constexpr uint64_t kAlign = 4096;

std::atomic<bool> g_allow_direct{true};
std::atomic<uint64_t> g_direct_reads{0};

struct FreeDeleter {
    void operator()(uint8_t* p) const noexcept { std::free(p); }
};

// The calling thread's read buffer, aligned for direct I/O.
uint8_t* buffer(size_t n) {
    thread_local std::unique_ptr<uint8_t, FreeDeleter> buf;
    thread_local size_t cap = 0;
    if (cap < n) {
        size_t want = (n + kAlign - 1) & ~(kAlign - 1);
        void* p = nullptr;
        if (::posix_memalign(&p, kAlign, want) != 0) return nullptr;
        buf.reset(static_cast<uint8_t*>(p));
        cap = want;
    }
    return buf.get();
}

// Whether the page cache holds every page of [off, off + len): cachestat(2),
// Linux 6.5 and later. Without it, the answer is no.
bool all_cached(int fd, uint64_t off, uint64_t len) {
#ifdef __NR_cachestat
    constexpr long kCachestat = __NR_cachestat;
#else
    constexpr long kCachestat = 451;  // the same number on every architecture
#endif
    struct {
        uint64_t off, len;
    } range{off, len};
    struct {
        uint64_t nr_cache, nr_dirty, nr_writeback, nr_evicted, nr_recently_evicted;
    } cs{};
    if (::syscall(kCachestat, fd, &range, &cs, 0) != 0) return false;
    static const uint64_t page = static_cast<uint64_t>(::sysconf(_SC_PAGESIZE));  // nr_cache counts pages
    uint64_t first = off / page, last = (off + len - 1) / page;
    return cs.nr_cache >= last - first + 1;
}

// Reads into buf until len bytes, the end of the file, or a direct read
// that stops at an unaligned point (the end of the file on a local disk; a
// network file system may stop anywhere, and the caller goes on buffered);
// -errno on error.
ssize_t pread_direct(int fd, uint8_t* buf, size_t len, uint64_t off) {
    size_t done = 0;
    while (done < len) {
        ssize_t n = ::pread(fd, buf + done, len - done, static_cast<off_t>(off + done));
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        if (n == 0) break;
        done += static_cast<size_t>(n);
        if (done % kAlign != 0) break;
    }
    return static_cast<ssize_t>(done);
}

}  // namespace

void SourceFile::allow_direct(bool on) noexcept { g_allow_direct = on; }
uint64_t SourceFile::direct_reads() noexcept { return g_direct_reads.load(); }

int SourceFile::direct_fd() const {
    std::call_once(direct_once_, [this] {
        // A second open file description of the same file: O_DIRECT is a
        // property of the description, and the buffered one stays as it is.
        std::string self = "/proc/self/fd/" + std::to_string(fd_.get());
        int d = ::open(self.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
        if (d < 0) direct_failed_ = true;
        direct_.reset(d);
    });
    return direct_failed_.load() ? -1 : direct_.get();
}

Result<ByteSpan> SourceFile::read(uint64_t off, size_t len) const {
    const uint64_t a = off & ~(kAlign - 1);
    const uint64_t b = (off + len + kAlign - 1) & ~(kAlign - 1);
    uint8_t* buf = buffer(b - a);
    if (!buf) return sys_error(ENOMEM, "read buffer");
    const size_t lead = off - a;
    size_t done = 0;  // bytes of [off, off + len) in buf + lead
    if (len >= kDirectFrom && g_allow_direct.load(std::memory_order_relaxed) && !direct_failed_.load() &&
        !all_cached(fd_.get(), off, len)) {
        int d = direct_fd();
        if (d >= 0) {
            ssize_t n = pread_direct(d, buf, b - a, a);
            if (n >= 0) {
                g_direct_reads.fetch_add(1, std::memory_order_relaxed);
                done = std::min(len, static_cast<size_t>(n) > lead ? static_cast<size_t>(n) - lead : 0);
                // Short: the end of the file, or a file system that stops
                // early; the buffered reads below tell which.
            } else if (n == -EINVAL) {
                direct_failed_ = true;  // the file system takes no direct reads: stay buffered
            } else {
                return sys_error(static_cast<int>(-n), "read");
            }
        }
    }
    while (done < len) {
        ssize_t n = ::pread(fd_.get(), buf + lead + done, len - done, static_cast<off_t>(off + done));
        if (n < 0) {
            if (errno == EINTR) continue;
            return sys_error(errno, "read");
        }
        if (n == 0) break;
        done += static_cast<size_t>(n);
    }
    return ByteSpan(buf + lead, done);
}

}  // namespace coffer
