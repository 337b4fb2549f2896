// The mounted daemon's control socket (docs/CLI-SPEC.md): where it lives,
// the line protocol, a small server and the client; plus the mount table
// lookups `mount`, `unmount` and `sync` need.
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "coffer/util/fd.h"
#include "coffer/util/result.h"

namespace coffer::cli {

// ---- where the socket lives ----
// 16 hex digits: the first 8 bytes of BLAKE2b-256 over the canonical mountpoint.
std::string socket_name(std::string_view canonical_mountpoint);
// $XDG_RUNTIME_DIR/coffer when set (and absolute), else /tmp/coffer-<uid>.
std::string socket_dir(const char* xdg_runtime_dir, uid_t uid);
std::string socket_path(std::string_view canonical_mountpoint, const char* xdg_runtime_dir, uid_t uid);
// The daemon's path first, then the fallback a daemon started without
// XDG_RUNTIME_DIR would have used (e.g. from fstab).
std::vector<std::string> socket_candidates(std::string_view canonical_mountpoint);
// The daemon's side: creates `dir` (mode 0700) if missing; refuses one that
// is a symlink or belongs to another user (saying how to fix it); makes one
// of ours that is open to others 0700, with a warning.
Status ensure_private_dir(const std::string& dir);
// The client's side: `dir` must be a folder of ours, mode 0700, not a
// symlink (Code::permission, saying what is wrong and how to fix it);
// Code::not_found when it does not exist. Changes nothing.
Status check_socket_dir(const std::string& dir);

// realpath(path); for a stale FUSE mount (ENOTCONN), realpath of the parent
// plus the last name, so the socket of a dead daemon can still be named.
Result<std::string> canonical_mountpoint(const std::string& path);

// ---- the mount table ----
struct MountEntry {
    std::string mountpoint, fstype, source;
    std::string device;  // "major:minor" (its bdi in /sys/class/bdi/)
};
std::vector<MountEntry> parse_mountinfo(std::string_view text);
// The topmost mount on exactly this canonical path, from /proc/self/mountinfo.
std::optional<MountEntry> find_mount(const std::string& canonical_path);
inline bool is_fuse(const MountEntry& m) { return m.fstype == "fuse" || m.fstype.starts_with("fuse."); }
// stat() says "Transport endpoint is not connected": a FUSE mount whose daemon died.
bool is_stale_mount(const std::string& path);

// ---- the line protocol ----
// A reply is any number of lines, then "ok …" or "error <exit code> <message>".
void send_line(int fd, std::string_view line);
inline void send_ok(int fd, std::string_view msg) { send_line(fd, msg.empty() ? "ok" : "ok " + std::string(msg)); }
void send_error(int fd, int exit_code, std::string_view msg);

struct ControlReply {
    std::vector<std::string> lines;  // before the final line
    bool ok = false;
    int exit_code = 0;               // from "error <code> …"
    std::string message;
};
// Sent by the daemon while it works on a request, so that a client can
// tell a long publish from a daemon that hangs; never shown.
inline constexpr std::string_view kKeepAlive = ".";
inline constexpr int kKeepAliveSeconds = 10;
inline constexpr int kConnectTimeoutSeconds = 10;
inline constexpr int kReplyIdleSeconds = 60;
// The daemon serves one request at a time: a sync or unmount may wait,
// without keep-alives, behind another client's publish.
inline constexpr int kLongReplyIdleSeconds = 600;
inline constexpr size_t kMaxReply = 1 << 20;

// `s` with every control character (C0, DEL, C1), invalid UTF-8 byte and
// backslash written as \xNN (\\ for a backslash): text received from a
// socket never drives the terminal.
std::string printable(std::string_view s);

// Parses reply text; Code::io if it has no complete final ok/error line.
// Keep-alive lines are skipped; every line is passed through printable().
Result<ControlReply> parse_reply(std::string_view text);

// Sends one command and reads the reply. Before connecting, checks the
// socket's folder (check_socket_dir); after, that the server runs as this
// user or root (SO_PEERCRED), else Code::permission. Code::not_found when
// nothing listens at `path`; Code::busy when the daemon stays silent for
// idle_timeout_s. With wait_for_close, returns only once the daemon has
// closed the connection (it does so as it exits), waiting at most timeout_s.
Result<ControlReply> control_request(const std::string& path, std::string_view command, bool wait_for_close = false,
                                     int timeout_s = 60, int idle_timeout_s = kReplyIdleSeconds);

// While alive, sends kKeepAlive on `fd` every kKeepAliveSeconds. Destroy
// it before sending the final line.
class KeepAlive {
public:
    explicit KeepAlive(int fd);
    ~KeepAlive();
    KeepAlive(const KeepAlive&) = delete;
    KeepAlive& operator=(const KeepAlive&) = delete;

private:
    int fd_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::thread thread_;
};

// ---- the server ----
struct ControlRequest {
    std::string command;
    UniqueFd conn;  // a handler may keep it to answer later
};

class ControlServer {
public:
    struct Hooks {
        std::function<void(ControlRequest&)> on_request;  // runs on the server thread
        std::function<void(int signo)> on_signal;          // a signal written to signal_fd()
    };
    // Binds `path` (refuses, Code::busy, if a live daemon answers there).
    static Result<std::unique_ptr<ControlServer>> listen(const std::string& path);
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

    void start(Hooks hooks);
    // Wakes the server thread, waits for the request in hand, joins, and
    // removes the socket file.
    void stop();
    // A signal handler writes the signal number (one byte) here; async-signal-safe.
    int signal_fd() const { return sig_w_.get(); }
    const std::string& path() const { return path_; }

private:
    ControlServer() = default;
    void serve();
    void handle(UniqueFd conn);
    std::string path_;
    UniqueFd listen_fd_, stop_r_, stop_w_, sig_r_, sig_w_;
    Hooks hooks_;
    std::thread thread_;
    bool unlinked_ = false;
};

}  // namespace coffer::cli
