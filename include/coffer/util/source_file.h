// A file coffer reads ciphertext from: a staging log or a vault object.
//
// A large read of a range the page cache does not hold goes around it
// (O_DIRECT): the disk then writes straight into a buffer this thread
// reuses. Read through the page cache, every byte lands in a fresh page
// first and is copied out of it, and on a virtual machine that copy can
// cost as much CPU as decrypting the bytes (docs/PERFORMANCE.md, session 6,
// has the measurements). Small reads and ranges already cached stay
// buffered, so neighbouring random reads keep hitting the cache. Where the
// file system refuses O_DIRECT (tmpfs, some FUSE cloud mounts), reads stay
// buffered.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>

#include "coffer/util/bytes.h"
#include "coffer/util/fd.h"
#include "coffer/util/result.h"

namespace coffer {

class SourceFile {
public:
    // Reads of at least this many bytes may go direct.
    static constexpr size_t kDirectFrom = 256 * 1024;

    explicit SourceFile(UniqueFd fd) noexcept : fd_(std::move(fd)) {}
    SourceFile(const SourceFile&) = delete;
    SourceFile& operator=(const SourceFile&) = delete;

    int get() const noexcept { return fd_.get(); }

    // Reads [off, off + len). The bytes are in a buffer of the calling
    // thread, valid until its next read(); fewer than len only at the end
    // of the file.
    Result<ByteSpan> read(uint64_t off, size_t len) const;

    // Whether reads may go direct at all (tests turn it off to compare).
    static void allow_direct(bool on) noexcept;
    // Large reads that went direct, over the process (tests and counters).
    static uint64_t direct_reads() noexcept;

private:
    int direct_fd() const;

    UniqueFd fd_;
    mutable std::once_flag direct_once_;
    mutable UniqueFd direct_;
    mutable std::atomic<bool> direct_failed_{false};
};

}  // namespace coffer
