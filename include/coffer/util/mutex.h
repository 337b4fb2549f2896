// A mutex whose users clang can check (-Wthread-safety): what a mutex
// guards is declared with GUARDED_BY, what a function needs held with
// REQUIRES, and a clang build in CI (.ci/run tsa) proves every access holds
// it. libstdc++'s std::mutex carries no such annotations, hence this thin
// wrapper. With other compilers the annotations are empty.
#pragma once

#include <condition_variable>
#include <mutex>

#if defined(__clang__)
#define COFFER_TSA(x) __attribute__((x))
#else
#define COFFER_TSA(x)
#endif

#define CAPABILITY(x) COFFER_TSA(capability(x))
#define SCOPED_CAPABILITY COFFER_TSA(scoped_lockable)
#define GUARDED_BY(x) COFFER_TSA(guarded_by(x))
#define PT_GUARDED_BY(x) COFFER_TSA(pt_guarded_by(x))
#define REQUIRES(...) COFFER_TSA(requires_capability(__VA_ARGS__))
#define EXCLUDES(...) COFFER_TSA(locks_excluded(__VA_ARGS__))
#define ACQUIRE(...) COFFER_TSA(acquire_capability(__VA_ARGS__))
#define RELEASE(...) COFFER_TSA(release_capability(__VA_ARGS__))
#define RETURN_CAPABILITY(x) COFFER_TSA(lock_returned(x))
#define ASSERT_CAPABILITY(x) COFFER_TSA(assert_capability(x))
#define NO_THREAD_SAFETY_ANALYSIS COFFER_TSA(no_thread_safety_analysis)

namespace coffer {

class CAPABILITY("mutex") Mutex {
public:
    Mutex() = default;
    Mutex(const Mutex&) = delete;
    Mutex& operator=(const Mutex&) = delete;
    void lock() ACQUIRE() { m_.lock(); }
    void unlock() RELEASE() { m_.unlock(); }
    // Tells the analysis the caller holds it (where it cannot see the lock,
    // e.g. a callback run under it).
    void assert_held() const ASSERT_CAPABILITY(this) {}

private:
    friend class MutexLock;
    std::mutex m_;
};

// Holds a Mutex for its scope; can wait on a condition variable with it.
class SCOPED_CAPABILITY MutexLock {
public:
    explicit MutexLock(Mutex& m) ACQUIRE(m) : lk_(m.m_) {}
    ~MutexLock() RELEASE() = default;
    MutexLock(const MutexLock&) = delete;
    MutexLock& operator=(const MutexLock&) = delete;

    void wait(std::condition_variable& cv) { cv.wait(lk_); }
    template <class Pred>
    void wait(std::condition_variable& cv, Pred pred) {
        cv.wait(lk_, pred);
    }
    template <class Duration>
    void wait_for(std::condition_variable& cv, Duration d) {
        cv.wait_for(lk_, d);
    }
    // Lets go for a while (e.g. to fsync without blocking others) and takes
    // it back.
    void unlock() RELEASE() { lk_.unlock(); }
    void lock() ACQUIRE() { lk_.lock(); }

private:
    std::unique_lock<std::mutex> lk_;
};

}  // namespace coffer
