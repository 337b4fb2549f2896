#include "coffer/util/parallel.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace coffer::par {

namespace {
// Helper threads, started on first use. A process forked after that (the
// daemon forks once its mount is usable) has none of them: it starts its own.
class Pool {
public:
    explicit Pool(unsigned helpers) : pid_(::getpid()) {
        // Helpers take no signals: the FUSE loop wakes its own thread with one.
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        for (unsigned i = 0; i < helpers; ++i) threads_.emplace_back([this] { run(); });
        pthread_sigmask(SIG_SETMASK, &old, nullptr);
        for (auto& t : threads_) t.detach();  // they live as long as the process
    }
    pid_t pid() const { return pid_; }
    unsigned helpers() const { return static_cast<unsigned>(threads_.size()); }
    void submit(std::function<void()> job) {
        {
            std::lock_guard lk(mu_);
            jobs_.push_back(std::move(job));
        }
        cv_.notify_one();
    }

private:
    void run() {
        for (;;) {
            std::function<void()> job;
            {
                std::unique_lock lk(mu_);
                cv_.wait(lk, [this] { return !jobs_.empty(); });
                job = std::move(jobs_.front());
                jobs_.pop_front();
            }
            job();
        }
    }
    pid_t pid_;
    std::vector<std::thread> threads_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> jobs_;
};

Pool* pool() {
    static std::mutex mu;
    static Pool* p = nullptr;  // never destroyed: detached helpers may still wait on it at exit
    std::lock_guard lk(mu);
    if (!p || p->pid() != ::getpid()) {
        unsigned cores = std::max(1u, std::thread::hardware_concurrency());
        p = new Pool(std::min(cores, 4u) - 1);
    }
    return p;
}
}  // namespace

bool for_ranges(size_t n, size_t min_chunk, const std::function<bool(size_t, size_t)>& fn) {
    if (n == 0) return true;
    Pool* p = n >= 2 * std::max<size_t>(min_chunk, 1) ? pool() : nullptr;
    size_t parts = p ? std::min<size_t>(p->helpers() + 1, n / std::max<size_t>(min_chunk, 1)) : 1;
    if (parts <= 1) return fn(0, n);
    std::mutex mu;
    std::condition_variable done_cv;
    size_t running = parts - 1;
    bool ok = true;
    const size_t per = (n + parts - 1) / parts;
    for (size_t i = 1; i < parts; ++i) {
        size_t b = i * per, e = std::min(n, b + per);
        p->submit([&, b, e] {
            bool r = b >= e || fn(b, e);
            std::lock_guard lk(mu);
            ok = ok && r;
            if (--running == 0) done_cv.notify_one();
        });
    }
    bool mine = fn(0, std::min(n, per));
    std::unique_lock lk(mu);
    done_cv.wait(lk, [&] { return running == 0; });
    return ok && mine;
}

}  // namespace coffer::par
