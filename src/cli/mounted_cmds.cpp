// Subcommands that talk to a mounted daemon: unmount, sync, status (and
// `sync VAULT` for a vault that is not mounted).
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <iostream>
#include <thread>

#include "auto_sync.h"
#include "commands.h"
#include "control.h"
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

int run_status(const Args& a) {
    auto mp = mountpoint_arg(a.mountpoint);
    if (!mp.ok()) return report(mp.error());
    auto reply = ask_daemon(*mp, "status", false);
    if (!reply.ok()) {
        if (reply.error().code == Code::not_found && !is_coffer_mount(*mp))
            return report(make_error(Code::not_found, *mp + " is not a mounted coffer folder"));
        return report(reply.error());
    }
    return print_reply(*reply);
}

int run_sync(const Args& a) {
    struct stat st{};
    if (::stat(a.target.c_str(), &st) != 0) {
        if (errno == ENOTCONN)
            return report(make_error(Code::busy, a.target + " is a stale mount (its daemon is gone): run `coffer unmount " +
                                                     a.target + "`"));
        return report(sys_error(errno, a.target));
    }
    auto target = canonical_mountpoint(a.target);
    if (!target.ok()) return report(target.error());

    if (is_coffer_mount(*target)) {
        auto reply = ask_daemon(*target, "sync", false);
        if (!reply.ok()) return report(reply.error());
        return print_reply(*reply);
    }

    // Not mounted: a vault folder, published without FUSE.
    if (::access((*target + "/coffer.vault").c_str(), F_OK) != 0)
        return report(make_error(Code::not_found, a.target + " is neither a mounted coffer folder nor a vault"));
    harden_process();
    Args va = a;
    va.vault = a.target;
    auto ov = open_and_unlock(va);
    if (!ov.ok()) return report(ov.error());
    auto state = resolve_state_dir(va, ov->unlocked->header);
    if (!state.ok()) return report(state.error());
    auto fs = open_filesystem(*ov, *state, false, a.device_name);
    if (!fs.ok()) return report(fs.error());
    auto r = sync::sync((*fs)->replica());
    if (!r.ok()) return report(r.error());
    if (Status f = (*fs)->flush_all(); !f.ok()) return report(f.error());
    std::cout << sync_summary(*r) << "\n";
    return kExitOk;
}

}  // namespace coffer::cli
