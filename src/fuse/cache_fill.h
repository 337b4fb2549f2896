// Internal to src/fuse/: filling the kernel's page cache after a read.
//
// A small read opens whole staging frames / object blocks (16 KiB) anyway:
// op_read widens it to them, answers the bytes the kernel asked for, and
// hands the rest of the window here, which stores it into the kernel's page
// cache (FUSE_NOTIFY_STORE) so the next reads there need no round trip. Only
// when nothing changed meanwhile and nobody has the file open for writing
// (vfs::Filesystem::fill_kernel_cache), after the reply (the kernel then no
// longer holds the requested pages), on a thread of its own: the worker that
// answered (on the reader's CPU, loop.cpp) is then free for the reader's next
// request at once, and a fill that waits for pages other reads hold never
// takes a worker. At most kMaxQueued fills wait; more are dropped (a fill is
// an optimisation: without it the next read asks again).
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>

#include "coffer/vfs/filesystem.h"

struct fuse_session;

namespace coffer::fuse {

class CacheFill {
public:
    explicit CacheFill(vfs::Filesystem& fs) : fs_(fs) {}
    ~CacheFill() { stop(); }
    CacheFill(const CacheFill&) = delete;
    CacheFill& operator=(const CacheFill&) = delete;

    // The fill thread: started before the loop serves `se`, stopped (queued
    // fills dropped) once it has returned and before the session is destroyed.
    void start(::fuse_session* se);
    void stop();

    // The fill window a read of [off, off + size) is widened to (whole
    // windows around it), with the content generation to fill against; none
    // when the read is not widened (not started, not whole pages, or as
    // large as a window).
    struct Window {
        uint64_t begin = 0, end = 0;
        uint64_t generation = 0;
    };
    std::optional<Window> widen(uint64_t off, size_t size) const;

    // After the reply: stores [0, a) and [b, n) of `buf` (the bytes of `w`
    // from w.begin, n of them read) into the kernel's cache of `ino`.
    void offer(uint64_t ino, const Window& w, std::unique_ptr<uint8_t[]> buf, uint64_t a, uint64_t b,
               uint64_t n) noexcept;

private:
    struct Fill {
        uint64_t ino = 0, generation = 0, offset = 0;  // offset of buf[0] in the file
        std::unique_ptr<uint8_t[]> buf;
        uint64_t a = 0, b = 0, n = 0;
    };
    void run(Fill& f);

    vfs::Filesystem& fs_;
    ::fuse_session* se_ = nullptr;  // set by start(), before any read
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Fill> queue_;  // under mu_
    bool stop_ = false;       // under mu_
    std::thread thread_;
};

}  // namespace coffer::fuse
