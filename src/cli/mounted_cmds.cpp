// Subcommands that talk to a mounted daemon: unmount, sync, status,
// conflicts, devices; all but unmount also take a vault that is not
// mounted, and then open it here.
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstdlib>
#include <chrono>
#include <iostream>
#include <thread>

#include "auto_sync.h"
#include "commands.h"
#include "control.h"
#include "queries.h"
#include "coffer/sync/sync.h"

namespace coffer::cli {
namespace {

constexpr int kUnmountWaitSeconds = 60;

bool is_coffer_mount(const std::string& canonical) {
    auto m = find_mount(canonical);
    return m && is_fuse(*m);
}

// Sends `command` to the daemon of `canonical`; not_found if none answers.
Result<ControlReply> ask_daemon(const std::string& canonical, std::string_view command, bool wait_for_close) {
    Error last = make_error(Code::not_found, "no coffer daemon answers for " + canonical);
    for (const auto& path : socket_candidates(canonical)) {
        int idle = command == "status" ? kReplyIdleSeconds : kLongReplyIdleSeconds;
        auto r = control_request(path, command, wait_for_close, kUnmountWaitSeconds, idle);
        if (r.ok()) return r;
        if (r.error().code != Code::not_found) return r;
        last = std::move(r).error();
    }
    return last;
}

int print_reply(const ControlReply& r) {
    for (const auto& l : r.lines) std::cout << l << "\n";
    if (r.ok) {
        if (!r.message.empty()) std::cout << r.message << "\n";
        return kExitOk;
    }
    std::cerr << "coffer: " << r.message << "\n";
    return r.exit_code;
}

Status detach_mount(const std::string& mp) {
    if (::geteuid() == 0) {
        if (::umount2(mp.c_str(), MNT_DETACH) != 0) return sys_error(errno, "cannot detach " + mp);
        return {};
    }
    pid_t pid = ::fork();
    if (pid < 0) return sys_error(errno, "fork");
    if (pid == 0) {
        ::execlp("fusermount3", "fusermount3", "-u", "-z", "--", mp.c_str(), static_cast<char*>(nullptr));
        ::_exit(127);
    }
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return make_error(Code::io, "fusermount3 -u -z " + mp + " failed");
    return {};
}

// A mountpoint argument: a missing folder is "not found", a stale one resolves.
Result<std::string> mountpoint_arg(const std::string& path) {
    auto mp = canonical_mountpoint(path);
    if (!mp.ok() && mp.error().code == Code::not_found)
        return make_error(Code::not_found, path + " does not exist");
    return mp;
}

}  // namespace

int run_unmount(const Args& a) {
    auto mp = mountpoint_arg(a.mountpoint);
    if (!mp.ok()) return report(mp.error());

    auto reply = ask_daemon(*mp, "unmount", true);
    if (reply.ok()) {
        int code = print_reply(*reply);
        // The daemon has closed the socket as it exited; make sure the kernel
        // mount is gone too before returning.
        auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(kUnmountWaitSeconds);
        while (is_coffer_mount(*mp) && std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
        if (is_coffer_mount(*mp)) {
            std::cerr << "coffer: " << *mp << " is still mounted after " << kUnmountWaitSeconds << " s\n";
            return code == kExitOk ? kExitBusy : code;
        }
        return code;
    }
    if (reply.error().code != Code::not_found) return report(reply.error());

    // No daemon answers: a stale mount (or none at all).
    auto m = find_mount(*mp);
    bool stale = is_stale_mount(a.mountpoint);
    if (!m && !stale) return report(make_error(Code::not_found, *mp + " is not mounted"));
    if (m && !is_fuse(*m))
        return report(make_error(Code::invalid, *mp + " is a " + m->fstype + " mount, not a coffer one"));
    Status st = detach_mount(*mp);
    if (!st.ok()) return report(st.error());
    std::cout << "cleaned up a stale mount on " << *mp
              << " (no coffer daemon was running for it; changes it had staged are published by the next mount)\n";
    return kExitOk;
}

namespace {

// Where TARGET points: a mounted coffer folder (its daemon answers) or a
// vault folder that this command opens itself.
struct Target {
    std::string path;  // canonical
    bool mounted = false;
};

Result<Target> resolve_target(const std::string& arg) {
    struct stat st{};
    if (::stat(arg.c_str(), &st) != 0) {
        if (errno == ENOTCONN)
            return make_error(Code::busy, arg + " is a stale mount (its daemon is gone): run `coffer unmount " + arg + "`");
        if (errno == ENOENT) return make_error(Code::not_found, arg + " does not exist");
        return sys_error(errno, arg);
    }
    COFFER_ASSIGN(std::string path, canonical_mountpoint(arg));
    if (is_coffer_mount(path)) return Target{path, true};
    if (::access((path + "/coffer.vault").c_str(), F_OK) != 0)
        return make_error(Code::not_found, arg + " is neither a mounted coffer folder nor a vault");
    return Target{path, false};
}

// A vault that is not mounted, opened here with this device's local state.
// Opening merges the other devices' segments that are ready; `read_only`
// publishes nothing and changes no file.
struct OpenedHere {
    OpenedVault ov;                       // outlives fs, which uses the vault
    std::unique_ptr<vfs::Filesystem> fs;
    std::string state_dir;
};

Result<OpenedHere> open_here(const Args& a, const std::string& vault, bool read_only) {
    Args va = a;
    va.vault = vault;
    OpenedHere h;
    COFFER_ASSIGN(h.ov, open_and_unlock(va));
    COFFER_ASSIGN(h.state_dir, resolve_state_dir(va, h.ov.unlocked->header));
    if (read_only && ::access((h.state_dir + "/index.db").c_str(), F_OK) != 0)
        std::cerr << "coffer: no local state in " << h.state_dir
                  << " yet: rebuilding it from the vault (a new device, which publishes nothing until it syncs)\n";
    COFFER_ASSIGN(h.fs, open_filesystem(h.ov, h.state_dir, read_only, a.device_name));
    return h;
}

std::string absolute_path(const std::string& p) {
    char buf[PATH_MAX];
    return ::realpath(p.c_str(), buf) ? std::string(buf) : p;
}

// Lines built here are printed as the client prints a daemon's lines.
void print_lines(const std::vector<std::string>& lines) {
    for (const auto& l : lines) std::cout << printable(l) << "\n";
}

int run_query(const Args& a, Query q) {
    auto t = resolve_target(a.target);
    if (!t.ok()) return report(t.error());
    if (t->mounted) {
        auto reply = ask_daemon(t->path, command_of(q), false);
        if (!reply.ok()) return report(reply.error());
        return print_reply(*reply);
    }
    auto h = open_here(a, t->path, true);
    if (!h.ok()) return report(h.error());
    auto lines = answer_query(h->fs->replica(), q, now_ms());
    if (!lines.ok()) return report(lines.error());
    print_lines(*lines);
    return kExitOk;
}

}  // namespace

int run_status(const Args& a) {
    if (a.digest) return run_query(a, Query::digest);
    auto t = resolve_target(a.target);
    if (!t.ok()) return report(t.error());
    if (t->mounted) {
        auto reply = ask_daemon(t->path, "status", false);
        if (!reply.ok()) return report(reply.error());
        return print_reply(*reply);
    }
    auto h = open_here(a, t->path, true);
    if (!h.ok()) return report(h.error());
    auto s = sync::status(h->fs->replica());
    if (!s.ok()) return report(s.error());
    std::vector<std::string> lines = {wire_form("vault:                  " + t->path + " (not mounted)"),
                                      wire_form("local state:            " + absolute_path(h->state_dir))};
    for (auto& l : status_lines(*s)) lines.push_back(std::move(l));
    print_lines(lines);
    return kExitOk;
}

int run_conflicts(const Args& a) { return run_query(a, Query::conflicts); }
int run_devices(const Args& a) { return run_query(a, Query::devices); }

int run_sync(const Args& a) {
    auto t = resolve_target(a.target);
    if (!t.ok()) return report(t.error());
    if (t->mounted) {
        auto reply = ask_daemon(t->path, "sync", false);
        if (!reply.ok()) return report(reply.error());
        return print_reply(*reply);
    }
    auto h = open_here(a, t->path, false);
    if (!h.ok()) return report(h.error());
    auto r = sync::sync(h->fs->replica());
    if (!r.ok()) return report(r.error());
    if (Status f = h->fs->flush_all(); !f.ok()) return report(f.error());
    std::cout << sync_summary(*r) << "\n";
    return kExitOk;
}

}  // namespace coffer::cli
