// The request loop.
//
// libfuse's multi-threaded loop has its workers wait in read(2) on
// /dev/fuse, and the kernel wakes the one that has waited longest, wherever
// it last ran. For a caller that makes one request at a time (tar, rm, git),
// the worker then often runs on another CPU than the caller, and every
// request crosses CPUs twice (the worker woken there, the caller woken
// back), each time an inter-processor interrupt to a CPU that went idle. The
// kernel's FUSE wake-ups carry no "sync" hint, so nothing keeps the two
// together; an untar with daemon and tar pinned to different CPUs takes
// twice as long as with both on the same one (docs/PERFORMANCE.md).
//
// Here two workers are pinned to each usable CPU (up to max_pinned_cpus)
// and wait in poll(2), which wakes every waiter: a worker on the caller's
// CPU runs as soon as the caller sleeps and usually wins the non-blocking
// read; the others find nothing and wait again (the cost: a wake-up per
// worker per request, hence the cap). It beats both libfuse's loop and one
// worker per CPU with extra workers started eagerly (docs/PERFORMANCE.md,
// "The request loop pins a worker to each CPU"). When every worker is busy
// (requests that block: fsync, the kernel's write-back sending many writes
// at once) another starts, unpinned, up to max_threads, and ends again once
// more workers wait than there are pinned ones, as libfuse's loop grows and
// shrinks.
#define FUSE_USE_VERSION 34
#include "loop.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <cstdlib>
#include <mutex>
#include <system_error>
#include <thread>
#include <vector>

#include "coffer/util/log.h"

namespace coffer::fuse {
namespace {

// Two per CPU: while one finishes a request (its reply already woke the
// caller, who sends the next), the other waits there.
constexpr int kPerCpu = 2;

class Loop {
public:
    Loop(::fuse_session* se, int wake_fd, const LoopLimits& limits)
        : se_(se), fd_(fuse_session_fd(se)), wake_fd_(wake_fd), limits_(limits) {}

    int run() {
        std::vector<int> cpus = usable_cpus();
        if (cpus.size() > limits_.max_pinned_cpus) cpus.resize(limits_.max_pinned_cpus);
        pinned_ = static_cast<int>(cpus.size()) * kPerCpu;
        {
            std::lock_guard lk(mu_);
            for (int k = 0; k < kPerCpu; ++k)
                for (int cpu : cpus) start_locked(cpu);
        }
        std::unique_lock lk(mu_);
        if (threads_ == 0) return -EAGAIN;  // not even one thread could start
        done_.wait(lk, [&] { return threads_ == 0; });
        return error_.load();
    }

private:
    static std::vector<int> usable_cpus() {
        std::vector<int> out;
        cpu_set_t set;
        CPU_ZERO(&set);
        if (sched_getaffinity(0, sizeof set, &set) == 0) {
            for (int c = 0; c < CPU_SETSIZE; ++c)
                if (CPU_ISSET(c, &set)) out.push_back(c);
        }
        if (out.empty()) out.push_back(-1);  // unknown: one unpinned worker
        return out;
    }

    // Starts a worker (pinned to `cpu`, or unpinned when -1). Caller holds mu_.
    void start_locked(int cpu) {
        ++threads_;
        idle_.fetch_add(1);
        try {
            std::thread([this, cpu] { work(cpu); }).detach();
        } catch (const std::system_error&) {
            --threads_;
            idle_.fetch_sub(1);
            if (threads_ == 0) done_.notify_all();
        }
    }

    void work(int cpu) {
        if (cpu >= 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(cpu, &set);
            pthread_setaffinity_np(pthread_self(), sizeof set, &set);  // best effort
        }
        fuse_buf buf{};
        // Whoever ends the loop marks the session exited first, then makes
        // wake_fd readable (or the kernel makes the device readable).
        while (!fuse_session_exited(se_)) {
            int r = fuse_session_receive_buf(se_, &buf);
            if (r == -EAGAIN || r == -EINTR) {
                // An extra worker leaves once more wait than there are pinned ones.
                if (cpu < 0 && idle_.load() > pinned_) break;
                pollfd p[2] = {{fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
                ::poll(p, 2, 1000);
                continue;
            }
            if (r <= 0) {  // 0: the session ended (unmounted); < 0: a read error
                if (r < 0) {
                    int expected = 0;
                    error_.compare_exchange_strong(expected, r);
                }
                fuse_session_exit(se_);
                break;
            }
            if (idle_.fetch_sub(1) == 1) {
                // This was the last waiting worker: start another, so a
                // request that blocks cannot hold up the next one.
                std::lock_guard lk(mu_);
                if (threads_ < static_cast<int>(limits_.max_threads)) start_locked(-1);
            }
            fuse_session_process_buf(se_, &buf);
            idle_.fetch_add(1);
        }
        std::free(buf.mem);
        idle_.fetch_sub(1);
        std::lock_guard lk(mu_);
        if (--threads_ == 0) done_.notify_all();
    }

    ::fuse_session* se_;
    const int fd_, wake_fd_;
    const LoopLimits limits_;
    int pinned_ = 0;
    std::atomic<int> idle_{0};  // workers not processing a request
    std::atomic<int> error_{0};
    std::mutex mu_;
    std::condition_variable done_;
    int threads_ = 0;  // under mu_
};

}  // namespace

int serve(::fuse_session* se, int wake_fd, const LoopLimits& limits) {
    int fd = fuse_session_fd(se);
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -errno;
    Loop loop(se, wake_fd, limits);
    return loop.run();
}

}  // namespace coffer::fuse
