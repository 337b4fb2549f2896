// The libfuse session: options, mount, the multi-threaded loop and how
// another thread ends it.
#define FUSE_USE_VERSION 34
#include <fuse_lowlevel.h>

#include <sys/eventfd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <mutex>
#include <thread>

#include "coffer/fuse/session.h"
#include "coffer/util/log.h"
#include "loop.h"
#include "ops.h"
#include "wire.h"

namespace coffer::fuse {
namespace {

// libfuse sometimes builds one line from several calls: collect until '\n'.
void log_from_libfuse(enum fuse_log_level level, const char* fmt, va_list ap) {
    thread_local std::string pending;
    char buf[1024];
    int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
    if (n <= 0) return;
    pending.append(buf, std::min<size_t>(static_cast<size_t>(n), sizeof buf - 1));
    if (pending.empty() || pending.back() != '\n') return;
    while (!pending.empty() && pending.back() == '\n') pending.pop_back();
    std::string line = std::move(pending);
    pending.clear();
    for (char& c : line)
        if (c == '\n') c = ' ';
    if (level <= FUSE_LOG_ERR)
        log::error(line);
    else if (level == FUSE_LOG_WARNING)
        log::warn(line);
    else if (level == FUSE_LOG_DEBUG)
        log::debug(line);
    else
        log::info(line);
}

void install_process_hooks() {
    static std::once_flag once;
    std::call_once(once, [] {
        fuse_set_log_func(log_from_libfuse);
    });
}

// libfuse splits -o on commas; a backslash escapes the next character.
std::string escape_option_value(std::string_view v) {
    std::string out;
    for (char c : v) {
        if (c == ',' || c == '\\') out.push_back('\\');
        out.push_back(c);
    }
    return out;
}

}  // namespace

std::string mount_option_string(const SessionOptions& opts) {
    std::string s = "fsname=coffer:" + escape_option_value(opts.vault_path) + ",subtype=coffer";
    if (kernel_checks_permissions(opts)) s += ",default_permissions";
    if (opts.allow_other) s += ",allow_other";
    if (opts.read_only) s += ",ro";
    for (const auto& o : opts.extra_options) {
        if (o.empty()) continue;
        s += ",";
        s += o;
    }
    return s;
}

namespace {
// A libfuse session for these options, not mounted; nullptr if libfuse refuses them.
::fuse_session* new_session(const SessionOptions& opts, void* userdata) {
    std::string optstr = mount_option_string(opts);
    std::vector<std::string> argv_s = {"coffer", "-o", optstr};
    if (opts.debug) argv_s.push_back("-d");
    std::vector<char*> argv;
    for (auto& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);
    fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv_s.size()), argv.data());
    const fuse_lowlevel_ops& ops = lowlevel_ops();
    ::fuse_session* se = fuse_session_new(&args, &ops, sizeof ops, userdata);
    fuse_opt_free_args(&args);
    return se;
}

}  // namespace

bool kernel_checks_permissions(const SessionOptions& opts) {
    return opts.allow_other || opts.kernel_permissions.value_or(false);
}

Status check_options(const SessionOptions& opts) {
    if (opts.allow_other && opts.kernel_permissions == false)
        return make_error(Code::usage,
                          "-o no_default_permissions cannot go with allow_other: the kernel walks folders it has "
                          "cached without asking coffer, so other users could pass folders they may not search");
    install_process_hooks();
    ::fuse_session* se = new_session(opts, nullptr);
    if (!se) return make_error(Code::usage, "libfuse refused the mount options \"" + mount_option_string(opts) + "\"");
    fuse_session_destroy(se);
    return {};
}

Result<std::unique_ptr<Session>> Session::mount(vfs::Filesystem& fs, const std::string& mountpoint,
                                                const SessionOptions& opts) {
    install_process_hooks();
    std::unique_ptr<Session> s(new Session());
    s->ctx_ = std::make_unique<OpsContext>(fs);
    OpsContext& ctx = *s->ctx_;
    ctx.read_only = opts.read_only || fs.read_only();
    ctx.writeback_allowed = opts.writeback_cache;
    ctx.read_ahead_kb = opts.read_ahead_kb;
    ctx.check_access = !kernel_checks_permissions(opts);

    SessionOptions effective = opts;
    effective.read_only = ctx.read_only;
    s->se_ = new_session(effective, &ctx);
    ctx.se = s->se_;
    if (!s->se_)
        return make_error(Code::usage, "libfuse refused the mount options \"" + mount_option_string(effective) + "\"");
    s->wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->wake_fd_ < 0) return sys_error(errno, "eventfd for the request loop");
    if (fuse_session_mount(s->se_, mountpoint.c_str()) != 0)
        return make_error(Code::io, "could not mount on " + mountpoint + " (libfuse's message is above)");
    s->mounted_ = true;
    // The device is read and written through wire.h, which negotiates
    // FUSE_HANDLE_KILLPRIV_V2 below libfuse 3.14. Should libfuse refuse,
    // the session runs with its own I/O and the kernel drops privileges.
    static const fuse_custom_io io{wire::writev, wire::read, nullptr, nullptr};
    if (fuse_session_custom_io(s->se_, &io, fuse_session_fd(s->se_)) != 0)
        log::warn("libfuse refused coffer's device I/O: the kernel drops setuid bits itself (slower)");
    return s;
}

Session::Session() = default;

Session::~Session() {
    if (ctx_) ctx_->fill.stop();
    unmount();
    if (se_) fuse_session_destroy(se_);
    if (wake_fd_ >= 0) ::close(wake_fd_);
}

Status Session::run() {
    running_ = true;
    int rc = 0;
    if (!exit_requested_) {
        ctx_->fill.start(se_);
        rc = serve(se_, wake_fd_, LoopLimits{});
        ctx_->fill.stop();
    }
    running_ = false;
    if (rc != 0 && !exit_requested_) {
        int err = rc < 0 ? -rc : rc;
        return sys_error(err, "the FUSE loop stopped");
    }
    return {};
}

void Session::request_exit() noexcept {
    exit_requested_ = true;
    if (se_) fuse_session_exit(se_);
    if (wake_fd_ >= 0) {
        uint64_t one = 1;
        ssize_t n = ::write(wake_fd_, &one, sizeof one);  // wakes the workers' poll
        (void)n;
    }
}

void Session::stop() {
    // The eventfd stays readable, so one knock would do; knocking again
    // costs nothing while waiting for the loop to return.
    request_exit();
    while (running_.load()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        request_exit();
    }
}

void Session::unmount() {
    std::lock_guard lk(unmount_mu_);
    if (!mounted_ || !se_) return;
    fuse_session_unmount(se_);
    mounted_ = false;
}

void Session::invalidate(const std::vector<uint64_t>& inodes,
                         const std::vector<std::pair<uint64_t, std::string>>& entries) {
    std::lock_guard lk(unmount_mu_);
    if (!mounted_ || !running_.load()) return;
    // Entries first: a lookup after them finds the new inode's attributes.
    // ENOENT means the kernel held nothing of it: nothing to forget.
    for (const auto& [parent, name] : entries)
        (void)fuse_lowlevel_notify_inval_entry(se_, parent, name.c_str(), name.size());
    for (uint64_t ino : inodes) (void)fuse_lowlevel_notify_inval_inode(se_, ino, 0, 0);
}

}  // namespace coffer::fuse
