// Control socket, line protocol and mount table lookups.
#include "control.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>

#include "coffer/crypto/crypto.h"
#include "coffer/util/log.h"
#include "coffer/util/private_fs.h"

namespace coffer::cli {

// ---- where the socket lives ----

std::string socket_name(std::string_view canonical_mountpoint) {
    auto h = crypto::hash32(as_bytes(canonical_mountpoint));
    return to_hex(ByteSpan(h.data(), 8)) + ".sock";
}

std::string socket_dir(const char* xdg_runtime_dir, uid_t uid) {
    if (xdg_runtime_dir && xdg_runtime_dir[0] == '/') return std::string(xdg_runtime_dir) + "/coffer";
    return "/tmp/coffer-" + std::to_string(uid);
}

std::string socket_path(std::string_view canonical_mountpoint, const char* xdg_runtime_dir, uid_t uid) {
    return socket_dir(xdg_runtime_dir, uid) + "/" + socket_name(canonical_mountpoint);
}

std::vector<std::string> socket_candidates(std::string_view canonical_mountpoint) {
    std::vector<std::string> out;
    out.push_back(socket_path(canonical_mountpoint, std::getenv("XDG_RUNTIME_DIR"), ::geteuid()));
    std::string fallback = socket_path(canonical_mountpoint, nullptr, ::geteuid());
    if (fallback != out.front()) out.push_back(fallback);
    return out;
}

namespace {
std::string quoted(const std::string& p) { return "'" + p + "'"; }
}  // namespace

Status ensure_private_dir(const std::string& dir) {
    auto st = priv::ensure_private_dir(dir);
    if (!st.ok()) {
        Error e = std::move(st).error();
        if (e.code != Code::permission) return e;
        e.context = "refusing to serve the control socket from " + e.context +
                    ". Another user may have made it to pose as this daemon. Remove it (as root if it is not "
                    "yours: rm -r " + quoted(dir) + ") or set XDG_RUNTIME_DIR to a private folder of yours, then mount again";
        return e;
    }
    if (st->tightened_from != 0)
        log::warn("the control socket folder " + dir + " was open to other users; made it 0700");
    return {};
}

Status check_socket_dir(const std::string& dir) {
    Status s = priv::check_private_dir(dir);
    if (s.ok() || s.error().code != Code::permission) return s;
    Error e = std::move(s).error();
    e.context = "refusing to talk to a coffer daemon through " + e.context +
                ". Another user may have made it to pose as the daemon. Remove it (as root if it is not yours: "
                "rm -r " + quoted(dir) + ") or set XDG_RUNTIME_DIR to a private folder of yours, then mount again";
    return e;
}

Result<std::string> canonical_mountpoint(const std::string& path) {
    char buf[PATH_MAX];
    if (::realpath(path.c_str(), buf)) return std::string(buf);
    int err = errno;
    if (err != ENOTCONN && err != EIO) return sys_error(err, path);
    // A stale mount cannot be resolved itself; its parent can.
    std::string p = path;
    while (p.size() > 1 && p.back() == '/') p.pop_back();
    size_t slash = p.rfind('/');
    std::string parent = slash == std::string::npos ? "." : (slash == 0 ? "/" : p.substr(0, slash));
    std::string base = slash == std::string::npos ? p : p.substr(slash + 1);
    if (!::realpath(parent.c_str(), buf)) return sys_error(errno, parent);
    std::string out(buf);
    if (out != "/") out += "/";
    return out + base;
}

// ---- the mount table ----

namespace {
// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescape_octal(std::string_view s) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '\\' && s.size() - i >= 4 && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' && s[i + 2] <= '7' && s[i + 3] >= '0' &&
            s[i + 3] <= '7') {
            out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
            i += 3;
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}
}  // namespace

std::vector<MountEntry> parse_mountinfo(std::string_view text) {
    std::vector<MountEntry> out;
    std::istringstream in{std::string(text)};
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream ls(line);
        std::vector<std::string> f;
        std::string w;
        while (ls >> w) f.push_back(w);
        // id parent maj:min root mountpoint opts [optional…] - fstype source superopts
        size_t sep = 0;
        for (size_t i = 6; i < f.size(); ++i)
            if (f[i] == "-") {
                sep = i;
                break;
            }
        if (sep == 0 || sep + 1 >= f.size()) continue;
        MountEntry m;
        m.device = f[2];
        m.mountpoint = unescape_octal(f[4]);
        m.fstype = f[sep + 1];
        m.source = sep + 2 < f.size() ? unescape_octal(f[sep + 2]) : "";
        out.push_back(std::move(m));
    }
    return out;
}

std::optional<MountEntry> find_mount(const std::string& canonical_path) {
    std::ifstream f("/proc/self/mountinfo");
    std::stringstream ss;
    ss << f.rdbuf();
    std::optional<MountEntry> found;
    for (auto& m : parse_mountinfo(ss.str()))
        if (m.mountpoint == canonical_path) found = std::move(m);  // the last one is on top
    return found;
}

bool is_stale_mount(const std::string& path) {
    struct stat st{};
    return ::stat(path.c_str(), &st) != 0 && errno == ENOTCONN;
}

// ---- the line protocol ----

void send_line(int fd, std::string_view line) {
    std::string s(line);
    s.push_back('\n');
    size_t done = 0;
    while (done < s.size()) {
        ssize_t n = ::send(fd, s.data() + done, s.size() - done, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            return;  // the client went away; nothing to tell it
        }
        done += static_cast<size_t>(n);
    }
}

void send_error(int fd, int exit_code, std::string_view msg) {
    std::string m(msg);
    for (char& c : m)
        if (c == '\n') c = ' ';
    send_line(fd, "error " + std::to_string(exit_code) + " " + m);
}

std::string printable(std::string_view s) {
    static const char* const hex = "0123456789abcdef";
    std::string out;
    out.reserve(s.size());
    auto escape = [&](unsigned char c) {
        out += "\\x";
        out.push_back(hex[c >> 4]);
        out.push_back(hex[c & 15]);
    };
    for (size_t i = 0; i < s.size();) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c < 0x7f) {
            if (c == '\\') out.push_back('\\');
            out.push_back(static_cast<char>(c));
            ++i;
            continue;
        }
        // A well-formed UTF-8 sequence passes unless it encodes a C1 control
        // (U+0080..U+009F: some terminals act on those too).
        size_t len = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 : c >= 0xf0 && c <= 0xf4 ? 4 : 0;
        bool ok = len != 0 && i + len <= s.size();
        for (size_t k = 1; ok && k < len; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xc0) == 0x80;
        if (ok) {
            auto c1 = static_cast<unsigned char>(s[i + 1]);
            if (c == 0xc2 && c1 < 0xa0) ok = false;                         // C1 controls
            if ((c == 0xe0 && c1 < 0xa0) || (c == 0xf0 && c1 < 0x90)) ok = false;  // overlong
            if ((c == 0xed && c1 >= 0xa0) || (c == 0xf4 && c1 >= 0x90)) ok = false;  // surrogates, > U+10FFFF
        }
        if (!ok) {
            escape(c);
            ++i;
            continue;
        }
        out.append(s.substr(i, len));
        i += len;
    }
    return out;
}

Result<ControlReply> parse_reply(std::string_view text) {
    ControlReply r;
    std::istringstream in{std::string(text)};
    std::string line;
    while (std::getline(in, line)) {
        if (in.eof()) break;  // no newline yet: the line is not complete
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line == kKeepAlive) continue;
        line = printable(line);
        if (line == "ok" || line.starts_with("ok ")) {
            r.ok = true;
            r.message = line.size() > 3 ? line.substr(3) : "";
            return r;
        }
        if (line.starts_with("error ")) {
            std::string rest = line.substr(6);
            size_t sp = rest.find(' ');
            std::string num = rest.substr(0, sp);
            char* end = nullptr;
            long code = std::strtol(num.c_str(), &end, 10);
            r.exit_code = (end && *end == '\0' && code > 0 && code < 256) ? static_cast<int>(code) : 1;
            r.message = sp == std::string::npos ? "" : rest.substr(sp + 1);
            return r;
        }
        r.lines.push_back(line);
    }
    return make_error(Code::io, "the daemon's reply ended early");
}

namespace {

// Connecting blocks while the listener's queue is full; SO_SNDTIMEO bounds
// that wait (and every send) on a Unix stream socket.
Result<UniqueFd> connect_unix(const std::string& path, int timeout_s) {
    sockaddr_un addr{};
    if (path.size() >= sizeof addr.sun_path) return make_error(Code::invalid, "socket path too long: " + path);
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return sys_error(errno, "socket");
    timeval tv{timeout_s, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        int err = errno;
        if (err == ENOENT || err == ECONNREFUSED)
            return make_error(Code::not_found, "no coffer daemon answers at " + path);
        if (err == EAGAIN || err == EINPROGRESS || err == ETIMEDOUT)
            return make_error(Code::busy, "the coffer daemon at " + path + " accepts no connection (waited " +
                                              std::to_string(timeout_s) + " s)");
        return sys_error(err, "cannot connect to " + path);
    }
    return fd;
}

// The uid of the process that listens at the other end (at its listen()).
Result<uid_t> peer_uid(int fd) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return sys_error(errno, "SO_PEERCRED");
    return cred.uid;
}

std::string dir_of(const std::string& path) {
    size_t slash = path.rfind('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}

}  // namespace

Result<ControlReply> control_request(const std::string& path, std::string_view command, bool wait_for_close,
                                     int timeout_s, int idle_timeout_s) {
    COFFER_TRY(check_socket_dir(dir_of(path)));
    COFFER_ASSIGN(UniqueFd fd, connect_unix(path, kConnectTimeoutSeconds));
    COFFER_ASSIGN(uid_t server, peer_uid(fd.get()));
    if (server != ::geteuid() && server != 0)
        return make_error(Code::permission, "refusing the answer at " + path + ": it comes from a process of uid " +
                                                std::to_string(server) + ", not from your coffer daemon (uid " +
                                                std::to_string(::geteuid()) + "). Another user may pose as the daemon");
    send_line(fd.get(), command);
    std::string text;
    std::optional<ControlReply> reply;
    using clock = std::chrono::steady_clock;
    auto deadline = clock::now() + std::chrono::seconds(idle_timeout_s);
    char buf[4096];
    for (;;) {
        // Before the reply, the daemon sends a keep-alive line while it works:
        // silence for idle_timeout_s means it is stuck (or not a daemon).
        auto left = deadline - clock::now();
        int wait_ms = static_cast<int>(
            std::max<int64_t>(0, std::chrono::duration_cast<std::chrono::milliseconds>(left).count()));
        if (wait_ms == 0) {
            if (reply) return *reply;  // waited long enough for the daemon to exit
            return make_error(Code::busy, "the coffer daemon at " + path + " did not answer \"" + std::string(command) +
                                              "\" within " + std::to_string(idle_timeout_s) + " s");
        }
        pollfd p{fd.get(), POLLIN, 0};
        int pr = ::poll(&p, 1, wait_ms);
        if (pr < 0) {
            if (errno == EINTR) continue;
            return sys_error(errno, "poll");
        }
        if (pr == 0) continue;  // the deadline check above decides
        ssize_t n = ::recv(fd.get(), buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (reply) return *reply;
            return sys_error(errno, "reading the daemon's reply");
        }
        if (n == 0) {
            if (reply) return *reply;
            return make_error(Code::io, "the daemon closed the connection without a reply");
        }
        if (reply) continue;  // anything after the final line is ignored
        text.append(buf, static_cast<size_t>(n));
        if (text.size() > kMaxReply) return make_error(Code::io, "the daemon's reply at " + path + " is too long");
        deadline = clock::now() + std::chrono::seconds(idle_timeout_s);
        auto r = parse_reply(text);
        if (r.ok()) {
            reply = std::move(r).value();
            if (!wait_for_close) return *reply;
            deadline = clock::now() + std::chrono::seconds(timeout_s);
        }
    }
}

KeepAlive::KeepAlive(int fd) : fd_(fd) {
    thread_ = std::thread([this] {
        std::unique_lock lk(mu_);
        while (!cv_.wait_for(lk, std::chrono::seconds(kKeepAliveSeconds), [this] { return stop_; }))
            send_line(fd_, kKeepAlive);
    });
}

KeepAlive::~KeepAlive() {
    {
        std::lock_guard lk(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
}

// ---- the server ----

namespace {
Status make_pipe(UniqueFd& r, UniqueFd& w) {
    int p[2];
    if (::pipe2(p, O_CLOEXEC | O_NONBLOCK) != 0) return sys_error(errno, "pipe");
    r.reset(p[0]);
    w.reset(p[1]);
    return {};
}
}  // namespace

Result<std::unique_ptr<ControlServer>> ControlServer::listen(const std::string& path) {
    std::unique_ptr<ControlServer> s(new ControlServer());
    sockaddr_un addr{};
    if (path.size() >= sizeof addr.sun_path) return make_error(Code::invalid, "socket path too long: " + path);
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);

    // A socket file left by a daemon that died is removed; a live one of
    // ours is not (nobody else could have bound it in our private folder).
    if (auto live = connect_unix(path, kConnectTimeoutSeconds); live.ok()) {
        auto uid = peer_uid(live->get());
        if (uid.ok() && (*uid == ::geteuid() || *uid == 0))
            return make_error(Code::busy, "a coffer daemon already answers at " + path);
    }
    ::unlink(path.c_str());

    s->listen_fd_.reset(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!s->listen_fd_) return sys_error(errno, "socket");
    mode_t old = ::umask(0177);
    int rc = ::bind(s->listen_fd_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr);
    int err = errno;
    ::umask(old);
    if (rc != 0) return sys_error(err, "cannot bind " + path);
    s->path_ = path;  // from now on the socket file is ours to remove
    if (::listen(s->listen_fd_.get(), 8) != 0) return sys_error(errno, "listen");
    COFFER_TRY(make_pipe(s->stop_r_, s->stop_w_));
    COFFER_TRY(make_pipe(s->sig_r_, s->sig_w_));
    return s;
}

ControlServer::~ControlServer() { stop(); }

void ControlServer::start(Hooks hooks) {
    hooks_ = std::move(hooks);
    thread_ = std::thread([this] { serve(); });
}

void ControlServer::stop() {
    if (thread_.joinable()) {
        char c = 's';
        (void)!::write(stop_w_.get(), &c, 1);
        thread_.join();
    }
    listen_fd_.reset();
    if (!unlinked_ && !path_.empty()) {
        ::unlink(path_.c_str());
        unlinked_ = true;
    }
}

void ControlServer::serve() {
    for (;;) {
        pollfd p[3] = {{stop_r_.get(), POLLIN, 0}, {sig_r_.get(), POLLIN, 0}, {listen_fd_.get(), POLLIN, 0}};
        int pr = ::poll(p, 3, -1);
        if (pr < 0) {
            if (errno == EINTR) continue;
            log::error(std::string("control socket: poll: ") + std::strerror(errno));
            return;
        }
        if (p[0].revents) return;
        if (p[1].revents) {
            unsigned char signo = 0;
            while (::read(sig_r_.get(), &signo, 1) == 1)
                if (hooks_.on_signal) hooks_.on_signal(signo);
        }
        if (p[2].revents & POLLIN) {
            UniqueFd conn(::accept4(listen_fd_.get(), nullptr, nullptr, SOCK_CLOEXEC));
            if (conn) handle(std::move(conn));
        }
    }
}

void ControlServer::handle(UniqueFd conn) {
    ucred cred{};
    socklen_t len = sizeof cred;
    if (::getsockopt(conn.get(), SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
        (cred.uid != ::geteuid() && cred.uid != 0)) {
        send_error(conn.get(), 1, "permission denied: only the user who mounted (or root) may control this daemon");
        return;
    }
    // A client that connects and says nothing must not hold the daemon up.
    timeval tv{5, 0};
    ::setsockopt(conn.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string line;
    char c;
    while (line.size() < 256) {
        ssize_t n = ::recv(conn.get(), &c, 1, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0 || c == '\n') break;
        line.push_back(c);
    }
    if (!line.empty() && line.back() == '\r') line.pop_back();
    ControlRequest req{line, std::move(conn)};
    if (hooks_.on_request) hooks_.on_request(req);
}

}  // namespace coffer::cli
