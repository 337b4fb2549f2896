// `coffer mount`: unlock in the caller, then (unless --foreground) fork a
// daemon that opens the vfs, mounts FUSE, answers the control socket, and
// on unmount or a signal publishes and exits.
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>

#include "auto_sync.h"
#include "commands.h"
#include "control.h"
#include "queries.h"
#include "secrets.h"
#include "coffer/fuse/session.h"
#include "coffer/sync/sync.h"
#include "coffer/util/log.h"
#include "coffer/util/private_fs.h"

namespace coffer::cli {
namespace {

std::atomic<int> g_signal_fd{-1};

void on_terminate_signal(int signo) {
    int fd = g_signal_fd.load();
    if (fd >= 0) {
        unsigned char b = static_cast<unsigned char>(signo);
        (void)!::write(fd, &b, 1);
    }
}

void install_signal_handlers(int fd) {
    g_signal_fd = fd;
    struct sigaction sa{};
    sa.sa_handler = on_terminate_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    for (int s : {SIGTERM, SIGINT, SIGHUP}) ::sigaction(s, &sa, nullptr);
    struct sigaction ign{};
    ign.sa_handler = SIG_IGN;
    ::sigaction(SIGPIPE, &ign, nullptr);
}

std::string absolute(const std::string& p) {
    char buf[PATH_MAX];
    if (::realpath(p.c_str(), buf)) return buf;
    return p;
}

fuse::SessionOptions session_options(const Args& a, const std::string& vault_abs) {
    fuse::SessionOptions so;
    so.vault_path = vault_abs;
    so.read_only = a.read_only;
    so.allow_other = a.allow_other;
    so.kernel_permissions = a.kernel_permissions;
    so.writeback_cache = a.writeback_cache;
    so.read_ahead_kb = a.read_ahead_kb.value_or(fuse::kDefaultReadAheadKb);
    so.debug = a.debug && a.foreground;
    if (so.debug) log::set_level(log::Level::debug);  // libfuse's trace comes through the debug level
    so.extra_options = a.fuse_options;
    return so;
}

// The kernel reads ahead at most 128 KiB on a FUSE mount (FUSE_INIT can only
// lower it); the mount's read_ahead_kb in sysfs raises it. Best effort: an
// unprivileged mount may not write sysfs and then reads ahead as the kernel
// chose. The device comes from mountinfo, without touching the mount.
void set_read_ahead(const std::string& mountpoint, unsigned kb) {
    auto m = find_mount(mountpoint);
    if (!m || m->device.empty()) {
        log::info("read-ahead left as it is: " + mountpoint + " not found in /proc/self/mountinfo");
        return;
    }
    std::string path = "/sys/class/bdi/" + m->device + "/read_ahead_kb";
    std::ofstream f(path);
    f << kb << "\n";
    f.close();
    if (f)
        log::debug("read-ahead of " + mountpoint + ": " + std::to_string(kb) + " KiB");
    else
        log::info("read-ahead left as the kernel set it (" + path + " is not writable here)");
}

std::string publish_summary(const sync::PublishStats& s) {
    return "published " + std::to_string(s.ops) + " operations, " + std::to_string(s.objects) + " objects";
}

// Tells the waiting parent how the start went (daemon mode), or prints it (foreground).
class StartReporter {
public:
    explicit StartReporter(int fd) : fd_(fd) {}
    int fail(const Error& e) {
        int code = exit_code_for(e);
        // The waiting parent prints it; in the foreground the log line is on stderr.
        if (fd_ >= 0)
            send_message("error " + std::to_string(code) + " " + e.message());
        else
            log::error(e.message());
        return code;
    }
    void ready() { send_message("ready"); }

private:
    void send_message(std::string msg) {
        if (fd_ < 0) return;
        for (char& c : msg)
            if (c == '\n') c = ' ';
        msg.push_back('\n');
        (void)write_all(fd_, as_bytes(msg));
        ::close(fd_);
        fd_ = -1;
    }
    int fd_;
};

// The parent side of the start: waits for "ready" or an error from the child.
int wait_for_child(UniqueFd r, pid_t child, const std::string& state_dir) {
    std::string msg;
    char buf[512];
    for (;;) {
        ssize_t n = ::read(r.get(), buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        msg.append(buf, static_cast<size_t>(n));
    }
    while (!msg.empty() && msg.back() == '\n') msg.pop_back();
    if (msg == "ready") return kExitOk;
    if (msg.starts_with("error ")) {
        auto reply = parse_reply(msg + "\n");
        if (reply.ok()) {
            std::cerr << "coffer: " << reply->message << "\n";
            ::waitpid(child, nullptr, 0);
            return reply->exit_code;
        }
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    std::cerr << "coffer: the daemon stopped while starting (see " << state_dir << "/coffer.log)\n";
    return kExitFailure;
}

struct Daemon {
    vfs::Filesystem* fs = nullptr;
    fuse::Session* session = nullptr;
    AutoSync* auto_sync = nullptr;
    std::string vault, mountpoint, state_dir;
    std::mutex mu;
    bool stopping = false;
    UniqueFd unmount_client;  // answered once everything is done
    std::unique_ptr<KeepAlive> unmount_alive;  // until then

    void on_request(ControlRequest& req) {
        {
            std::lock_guard lk(mu);
            if (stopping) {
                send_error(req.conn.get(), kExitBusy, "unmounting");
                return;
            }
        }
        int fd = req.conn.get();
        if (req.command == "sync") {
            auto r = [&] {
                KeepAlive alive(fd);
                return auto_sync->sync_now();
            }();
            if (r.ok()) {
                log::info("sync: " + sync_summary(*r));
                send_ok(fd, sync_summary(*r));
            } else {
                log::error("sync: " + r.error().message());
                send_error(fd, exit_code_for(r.error()), r.error().message());
            }
        } else if (req.command == "status") {
            auto s = sync::status(fs->replica());
            if (!s.ok()) {
                send_error(fd, exit_code_for(s.error()), s.error().message());
                return;
            }
            send_line(fd, wire_form("vault:                  " + vault));
            send_line(fd, wire_form("mounted on:             " + mountpoint));
            send_line(fd, wire_form("local state:            " + state_dir));
            for (const auto& l : status_lines(*s)) send_line(fd, l);
            send_ok(fd, "");
        } else if (auto q = query_of(req.command)) {
            auto lines = [&] {
                KeepAlive alive(fd);
                return answer_query(fs->replica(), *q, now_ms());
            }();
            if (!lines.ok()) {
                send_error(fd, exit_code_for(lines.error()), lines.error().message());
                return;
            }
            for (const auto& l : *lines) send_line(fd, l);
            send_ok(fd, "");
        } else if (req.command == "unmount") {
            log::info("unmount requested");
            {
                std::lock_guard lk(mu);
                stopping = true;
                unmount_client = std::move(req.conn);
                unmount_alive = std::make_unique<KeepAlive>(unmount_client.get());
            }
            session->stop();
        } else {
            send_error(fd, kExitUsage, "unknown command \"" + req.command.substr(0, 40) + "\"");
        }
    }

    void on_signal(int signo) {
        log::info(std::string("received ") + ::strsignal(signo) + ": publishing and unmounting");
        {
            std::lock_guard lk(mu);
            stopping = true;
        }
        session->stop();
    }
};

// Everything after the unlock: runs in the daemon child, or in the
// foreground process. `report_fd` is the pipe to the parent (-1 in foreground).
int serve(const Args& a, OpenedVault& ov, const std::string& vault_abs, const std::string& mountpoint,
          const std::string& state_dir, const std::string& sock_path, int report_fd) {
    StartReporter start(report_fd);
    if (!log::set_file(state_dir + "/coffer.log"))
        log::warn("cannot write " + state_dir + "/coffer.log: " + std::strerror(errno));
    log::set_ident("coffer[" + mountpoint + "]");

    auto fs = open_filesystem(ov, state_dir, a.read_only, a.device_name);
    if (!fs.ok()) return start.fail(fs.error());

    auto server = ControlServer::listen(sock_path);
    if (!server.ok()) return start.fail(server.error());
    install_signal_handlers((*server)->signal_fd());

    fuse::SessionOptions so = session_options(a, vault_abs);
    auto session = fuse::Session::mount(**fs, mountpoint, so);
    if (!session.ok()) return start.fail(session.error());
    if (so.read_ahead_kb != 0) set_read_ahead(mountpoint, so.read_ahead_kb);

    std::string pid_file = state_dir + "/daemon.pid";
    {
        auto pf = priv::open_private_file(pid_file, O_WRONLY | O_TRUNC);
        std::string pid = std::to_string(::getpid()) + "\n";
        if (!pf.ok())
            log::warn(pf.error().message());
        else if (!write_all(pf->get(), as_bytes(pid)).ok())
            log::warn("cannot write " + pid_file + ": " + std::strerror(errno));
    }

    AutoSync::Options aso;
    aso.enabled = a.auto_sync;
    aso.interval = std::chrono::seconds(a.sync_interval);
    AutoSync auto_sync(**fs, **session, vault_abs, aso);

    Daemon d;
    d.fs = fs->get();
    d.session = session->get();
    d.auto_sync = &auto_sync;
    d.vault = vault_abs;
    d.mountpoint = mountpoint;
    d.state_dir = state_dir;
    (*server)->start({[&d](ControlRequest& r) { d.on_request(r); }, [&d](int s) { d.on_signal(s); }});

    if (report_fd >= 0) {
        start.ready();
        int devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
        if (devnull >= 0) {
            ::dup2(devnull, STDIN_FILENO);
            ::dup2(devnull, STDOUT_FILENO);
            ::dup2(devnull, STDERR_FILENO);
            if (devnull > STDERR_FILENO) ::close(devnull);
        }
    }
    log::info("mounted " + vault_abs + " on " + mountpoint);
    auto_sync.start();

    Status loop = (*session)->run();
    if (!loop.ok()) log::error(loop.error().message());

    // The loop ended: an unmount request, a signal, or a kernel unmount.
    {
        std::lock_guard lk(d.mu);
        d.stopping = true;
    }
    auto_sync.stop();            // waits for a sync in hand
    (*server)->stop();           // waits for a request in hand; removes the socket
    (*session)->unmount();       // no request reaches the vfs after this
    // A read-only mount has nothing of its own to publish.
    Result<sync::PublishStats> pub = (*fs)->read_only() ? Result<sync::PublishStats>(sync::PublishStats{})
                                                        : sync::publish((*fs)->replica());
    if (pub.ok())
        log::info("unmount: " + publish_summary(*pub));
    else
        log::error("unmount: publishing failed, the changes stay staged on this device: " + pub.error().message());
    Status flushed = (*fs)->flush_all();
    if (!flushed.ok()) log::error("unmount: " + flushed.error().message());
    ::unlink(pid_file.c_str());
    session->reset();
    fs->reset();  // closes the local state (and its lock) before the client is told
    g_signal_fd = -1;

    d.unmount_alive.reset();
    int code = kExitOk;
    if (!pub.ok()) {
        code = exit_code_for(pub.error());
        if (d.unmount_client)
            send_error(d.unmount_client.get(), code,
                       "unmounted, but publishing failed (the changes stay on this device and are published by the "
                       "next mount or sync): " + pub.error().message());
    } else if (!flushed.ok()) {
        code = exit_code_for(flushed.error());
        if (d.unmount_client) send_error(d.unmount_client.get(), code, "unmounted, but " + flushed.error().message());
    } else if (d.unmount_client) {
        send_ok(d.unmount_client.get(), "unmounted " + mountpoint + "; " + publish_summary(*pub));
    }
    log::info("stopped");
    log::set_file("");
    return code;  // the client's connection closes as the process exits
}

}  // namespace

int run_mount(const Args& a) {
    harden_process();

    auto vault = store::Vault::open(a.vault);
    if (!vault.ok()) return report(vault.error());
    auto header = (*vault)->peek_header();
    if (!header.ok()) return report(header.error());

    struct stat st{};
    if (::stat(a.mountpoint.c_str(), &st) != 0) {
        int err = errno;
        if (err == ENOTCONN)
            return report(make_error(Code::busy, a.mountpoint + " is a stale mount (its daemon is gone): run `coffer unmount " +
                                                     a.mountpoint + "` first"));
        if (err == ENOENT) return report(make_error(Code::not_found, "the mountpoint " + a.mountpoint + " does not exist"));
        return report(sys_error(err, a.mountpoint));
    }
    if (!S_ISDIR(st.st_mode)) return report(make_error(Code::not_dir, a.mountpoint + " is not a directory"));
    auto mp = canonical_mountpoint(a.mountpoint);
    if (!mp.ok()) return report(mp.error());
    if (auto m = find_mount(*mp))
        return report(make_error(Code::busy, *mp + " is already a mountpoint (" + m->fstype + " " + m->source + ")"));

    auto state = resolve_state_dir(a, *header);
    if (!state.ok()) return report(state.error());
    std::string state_dir = absolute(*state);

    std::string sock_dir = socket_dir(std::getenv("XDG_RUNTIME_DIR"), ::geteuid());
    if (Status s = ensure_private_dir(sock_dir); !s.ok()) return report(s.error());
    std::string sock_path = sock_dir + "/" + socket_name(*mp);

    std::string vault_abs = absolute(a.vault);
    if (Status s = fuse::check_options(session_options(a, vault_abs)); !s.ok()) return report(s.error());

    // Argon2 runs here, before the daemon settles, so its memory is not kept.
    auto ov = open_and_unlock(a);
    if (!ov.ok()) return report(ov.error());
    // Its 64–256 MiB are unmapped again; restart the peak-RSS count (VmHWM)
    // so that it measures the daemon, not the password hashing.
    if (int fd = ::open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC); fd >= 0) {
        (void)!::write(fd, "5", 1);
        ::close(fd);
    }

    if (a.foreground) return serve(a, *ov, vault_abs, *mp, state_dir, sock_path, -1);

    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return report(sys_error(errno, "pipe"));
    UniqueFd r(p[0]), w(p[1]);
    std::cout.flush();
    std::cerr.flush();
    pid_t pid = ::fork();
    if (pid < 0) return report(sys_error(errno, "fork"));
    if (pid > 0) {
        w.reset();
        ov->unlocked.reset();  // the parent's copy of the key goes now
        return wait_for_child(std::move(r), pid, state_dir);
    }
    r.reset();
    ::setsid();
    if (::chdir("/") != 0) {
        // Not fatal: the paths in use are absolute.
    }
    return serve(a, *ov, vault_abs, *mp, state_dir, sock_path, w.release());
}

}  // namespace coffer::cli
