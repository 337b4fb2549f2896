// The FUSE session: mounts a vfs::Filesystem with libfuse3's low-level API
// and serves it until the loop is asked to stop. This header does not include
// <fuse_lowlevel.h>: only src/fuse/ does.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "coffer/util/result.h"
#include "coffer/vfs/filesystem.h"

struct fuse_session;

namespace coffer::fuse {

struct OpsContext;  // src/fuse/ops.h

// The kernel reads ahead at most 128 KiB on a FUSE mount, whatever FUSE_INIT
// says (it can only lower it); its read_ahead_kb in sysfs raises it. With
// 2 MiB a sequential read keeps four 512 KiB READs in flight, so two workers
// decrypt at once (docs/PERFORMANCE.md).
constexpr unsigned kDefaultReadAheadKb = 2048;

struct SessionOptions {
    std::string vault_path;  // shown as fsname=coffer:<vault_path>
    bool read_only = false;
    bool allow_other = false;
    // Who checks permissions: the kernel (default_permissions) or the daemon
    // at each request (vfs/permissions.h). The kernel always when other users
    // may reach the mount (allow_other; false is then refused); unset: the
    // daemon. Its checks save a GETATTR of the parent before every create
    // and unlink (the kernel's cached attributes of a changed folder are
    // stale), but the kernel then walks entries it has cached without
    // asking, so search permission on a folder holds only for entries not
    // looked up yet: harmless when only the mounting user (who may chmod
    // the folder anyway) reaches the mount, a hole for other users.
    std::optional<bool> kernel_permissions;
    bool debug = false;                       // libfuse's request trace on stderr
    bool writeback_cache = false;             // let the kernel cache writes (-o writeback_cache)
    unsigned read_ahead_kb = 0;               // max_readahead offered at INIT (0: the kernel's own); the
                                              // caller raises the mount's sysfs value to match
    std::vector<std::string> extra_options;   // further -o options, passed to libfuse as they are
};

// The -o option string libfuse is given (fsname, subtype, default_permissions, …).
std::string mount_option_string(const SessionOptions& opts);
// Whether the kernel checks permissions (default_permissions) for these options.
bool kernel_checks_permissions(const SessionOptions& opts);
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

    // Serves requests on several threads (src/fuse/loop.cpp) until
    // request_exit() or a kernel unmount ends the loop.
    Status run();

    // Thread-safe and async-signal-safe: asks the loop to return (marks the
    // session exited and wakes the workers through an eventfd).
    void request_exit() noexcept;
    bool loop_running() const noexcept { return running_.load(); }
    // Not signal-safe: requests exit and waits until run() has returned (or
    // returns at once when the loop has not started; run() then returns at once).
    void stop();

    // Unmounts (lazily, as libfuse does). Idempotent, thread-safe.
    void unmount();

    // Tells the kernel to forget what it caches of these inodes (attributes
    // and pages) and entries (parent, name): a merge changed them. Call
    // while the loop runs and without holding any vfs lock.
    void invalidate(const std::vector<uint64_t>& inodes,
                    const std::vector<std::pair<uint64_t, std::string>>& entries);

private:
    Session();
    std::unique_ptr<OpsContext> ctx_;
    ::fuse_session* se_ = nullptr;
    std::mutex unmount_mu_;
    bool mounted_ = false;
    std::atomic<bool> running_{false};
    std::atomic<bool> exit_requested_{false};
    int wake_fd_ = -1;  // eventfd: request_exit makes it readable, waking the loop's workers
};

}  // namespace coffer::fuse
