// The FUSE session: mounts a vfs::Filesystem with libfuse3's low-level API
// and serves it until the loop is asked to stop. This header does not include
// <fuse_lowlevel.h>: only src/fuse/ does.
#pragma once

#include <pthread.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "coffer/fuse/ops.h"
#include "coffer/util/result.h"
#include "coffer/vfs/filesystem.h"

struct fuse_session;

namespace coffer::fuse {

// Entry and attribute timeouts handed to the kernel, in seconds. While
// mounted only this daemon changes the tree (other devices' segments are
// applied at mount), so the kernel may cache for a while; a sync that merges
// while mounted must invalidate what it changes (fuse_lowlevel_notify_inval_*).
constexpr double kEntryTimeout = 10.0;
constexpr double kAttrTimeout = 10.0;
constexpr unsigned kMaxWrite = 1u << 19;
constexpr unsigned kMaxReadahead = 1u << 20;
// The kernel reads ahead at most 128 KiB on a FUSE mount, whatever FUSE_INIT
// says (it can only lower it); its read_ahead_kb in sysfs raises it. With
// 2 MiB a sequential read keeps four 512 KiB READs in flight, so two workers
// decrypt at once (1 GiB cold: 1.6 s instead of 2.0 s here).
constexpr unsigned kDefaultReadAheadKb = 2048;
// Idle workers kept; more start when requests arrive together (the kernel's
// write-back sends up to 12 at once) and end again when idle: each holds a
// request buffer of max_write and coffer's per-thread scratch (~3 MiB).
constexpr unsigned kMaxIdleThreads = 4;
// Worker threads at most (libfuse's default is 10). A kernel cache fill may
// wait for a page that a read of the same file holds, and changes of that
// file wait for the fill (see vfs Core::ContentChange); the reads need free
// workers, so there must be more workers than such waiters can ever be.
constexpr unsigned kMaxThreads = 64;

struct SessionOptions {
    std::string vault_path;  // shown as fsname=coffer:<vault_path>
    bool read_only = false;
    bool allow_other = false;
    bool debug = false;                       // libfuse's request trace on stderr
    bool writeback_cache = false;             // let the kernel cache writes (-o writeback_cache)
    unsigned read_ahead_kb = 0;               // max_readahead offered at INIT (0: the kernel's own); the
                                              // caller raises the mount's sysfs value to match
    std::vector<std::string> extra_options;   // further -o options, passed to libfuse as they are
};

// The -o option string libfuse is given (fsname, subtype, default_permissions, …).
std::string mount_option_string(const SessionOptions& opts);
// Code::usage if libfuse would refuse these options (checked without mounting).
Status check_options(const SessionOptions& opts);

class Session {
public:
    // Creates the libfuse session and mounts it on `mountpoint`. The
    // filesystem must outlive the session.
    static Result<std::unique_ptr<Session>> mount(vfs::Filesystem& fs, const std::string& mountpoint,
                                                  const SessionOptions& opts);
    ~Session();  // unmounts if still mounted
    Session(const Session&) = delete;
    Session& operator=(const Session&) = delete;

    // Serves requests on several threads until request_exit(), a kernel
    // unmount or a signal handled by the caller ends the loop. Call on the
    // thread that should receive the wake-up signal (see request_exit).
    Status run();

    // Thread-safe and async-signal-safe: asks the loop to return. The loop
    // thread sleeps in sem_wait, so it is woken with kWakeSignal.
    void request_exit() noexcept;
    bool loop_running() const noexcept { return running_.load(); }
    // Not signal-safe: requests exit and waits until run() has returned (or
    // returns at once when the loop has not started; run() then returns at once).
    void stop();

    // Unmounts (lazily, as libfuse does). Idempotent, thread-safe.
    void unmount();

    // The signal used to wake the loop thread (its handler does nothing).
    static int wake_signal() noexcept;

private:
    Session() = default;
    OpsContext ctx_;
    ::fuse_session* se_ = nullptr;
    std::mutex unmount_mu_;
    bool mounted_ = false;
    std::atomic<bool> running_{false};
    std::atomic<bool> exit_requested_{false};
    pthread_t loop_thread_{};
    std::atomic<bool> have_loop_thread_{false};
};

}  // namespace coffer::fuse
