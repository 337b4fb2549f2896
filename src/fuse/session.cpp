// The libfuse session: options, mount, the multi-threaded loop and how
// another thread ends it.
#define FUSE_USE_VERSION 312  // fuse_loop_cfg_* (the loop's thread limit)
#include <fuse_lowlevel.h>

#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <mutex>
#include <thread>

#include "coffer/fuse/session.h"
#include "coffer/util/log.h"

namespace coffer::fuse {
namespace {

constexpr int kWakeSignal = SIGUSR2;

void wake_handler(int) {}

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
        // No SA_RESTART: the loop thread's sem_wait must return EINTR.
        struct sigaction sa{};
        sa.sa_handler = wake_handler;
        sigemptyset(&sa.sa_mask);
        sa.sa_flags = 0;
        sigaction(kWakeSignal, &sa, nullptr);
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
    std::string s = "fsname=coffer:" + escape_option_value(opts.vault_path) + ",subtype=coffer,default_permissions";
    if (opts.allow_other) s += ",allow_other";
    if (opts.read_only) s += ",ro";
    for (const auto& o : opts.extra_options) {
        if (o.empty()) continue;
        s += ",";
        s += o;
    }
    return s;
}

int Session::wake_signal() noexcept { return kWakeSignal; }

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

Status check_options(const SessionOptions& opts) {
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
    s->ctx_.fs = &fs;
    s->ctx_.read_only = opts.read_only || fs.read_only();
    s->ctx_.writeback_allowed = opts.writeback_cache;
    s->ctx_.read_ahead_kb = opts.read_ahead_kb;

    SessionOptions effective = opts;
    effective.read_only = s->ctx_.read_only;
    s->se_ = new_session(effective, &s->ctx_);
    s->ctx_.se = s->se_;
    if (!s->se_)
        return make_error(Code::usage, "libfuse refused the mount options \"" + mount_option_string(effective) + "\"");
    if (fuse_session_mount(s->se_, mountpoint.c_str()) != 0)
        return make_error(Code::io, "could not mount on " + mountpoint + " (libfuse's message is above)");
    s->mounted_ = true;
    return s;
}

Session::~Session() {
    unmount();
    if (se_) fuse_session_destroy(se_);
}

Status Session::run() {
    loop_thread_ = pthread_self();
    have_loop_thread_ = true;
    sigset_t wake, old;
    sigemptyset(&wake);
    sigaddset(&wake, kWakeSignal);
    pthread_sigmask(SIG_UNBLOCK, &wake, &old);
    running_ = true;
    int rc = 0;
    if (!exit_requested_) {
        fuse_loop_config* cfg = fuse_loop_cfg_create();
        if (!cfg) {
            rc = -ENOMEM;
        } else {
            fuse_loop_cfg_set_clone_fd(cfg, 1);
            fuse_loop_cfg_set_idle_threads(cfg, kMaxIdleThreads);
            fuse_loop_cfg_set_max_threads(cfg, kMaxThreads);
            rc = fuse_session_loop_mt(se_, cfg);
            fuse_loop_cfg_destroy(cfg);
        }
    }
    running_ = false;
    have_loop_thread_ = false;
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
    if (rc != 0 && !exit_requested_) {
        int err = rc < 0 ? -rc : rc;
        return sys_error(err, "the FUSE loop stopped");
    }
    return {};
}

void Session::request_exit() noexcept {
    exit_requested_ = true;
    if (se_) fuse_session_exit(se_);
    if (have_loop_thread_ && running_) pthread_kill(loop_thread_, kWakeSignal);
}

void Session::stop() {
    // A wake-up can land between the loop's "exited?" check and its sem_wait,
    // so keep knocking until it has returned.
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

}  // namespace coffer::fuse
