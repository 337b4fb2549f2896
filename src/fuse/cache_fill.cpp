#define FUSE_USE_VERSION 34
#include "cache_fill.h"

#include <fuse_lowlevel.h>
#include <unistd.h>

#include <system_error>

namespace coffer::fuse {
namespace {

constexpr uint64_t kFillWindow = 16 * 1024;
constexpr size_t kMaxQueued = 2;
const uint64_t kPage = static_cast<uint64_t>(sysconf(_SC_PAGESIZE));

}  // namespace

void CacheFill::start(::fuse_session* se) {
    std::lock_guard lk(mu_);
    se_ = se;
    if (thread_.joinable()) return;
    stop_ = false;
    try {
        thread_ = std::thread([this] {
            std::unique_lock lk(mu_);
            for (;;) {
                cv_.wait(lk, [&] { return stop_ || !queue_.empty(); });
                if (stop_) return;
                Fill f = std::move(queue_.front());
                queue_.pop_front();
                lk.unlock();
                run(f);
                lk.lock();
            }
        });
    } catch (const std::system_error&) {
        // No thread: reads are answered as before, without fills.
    }
}

void CacheFill::stop() {
    {
        std::lock_guard lk(mu_);
        if (!thread_.joinable()) return;
        stop_ = true;
        queue_.clear();
    }
    cv_.notify_all();
    thread_.join();
}

std::optional<CacheFill::Window> CacheFill::widen(uint64_t off, size_t size) const {
    // Whole pages only (buffered reads are; O_DIRECT ones need not be).
    if (!se_ || size == 0 || size >= kFillWindow || kFillWindow % kPage != 0 || off % kPage != 0 ||
        size % kPage != 0)
        return std::nullopt;
    Window w;
    w.begin = off / kFillWindow * kFillWindow;
    w.end = (off + size + kFillWindow - 1) / kFillWindow * kFillWindow;
    w.generation = fs_.content_generation();
    return w;
}

void CacheFill::offer(uint64_t ino, const Window& w, std::unique_ptr<uint8_t[]> buf, uint64_t a, uint64_t b,
                      uint64_t n) noexcept {
    try {
        std::lock_guard lk(mu_);
        if (thread_.joinable() && !stop_ && queue_.size() < kMaxQueued) {
            queue_.push_back(Fill{ino, w.generation, w.begin, std::move(buf), a, b, n});
            cv_.notify_one();
        }
    } catch (...) {
        // No fill: the next read asks again.
    }
}

void CacheFill::run(Fill& f) {
    try {
        fs_.fill_kernel_cache(f.ino, f.generation, [&] {
            // [x, y) of buf: whole pages, or up to EOF
            auto store = [&](uint64_t x, uint64_t y) {
                if (x >= y) return;
                fuse_bufvec bv = FUSE_BUFVEC_INIT(y - x);
                bv.buf[0].mem = f.buf.get() + x;
                fuse_lowlevel_notify_store(se_, f.ino, static_cast<off_t>(f.offset + x), &bv, fuse_buf_copy_flags{});
            };
            store(0, f.a);
            store(f.b, f.n);
        });
    } catch (...) {
        // A fill is an optimisation: without it the next read asks again.
    }
}

}  // namespace coffer::fuse
