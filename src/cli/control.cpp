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

Status ensure_private_dir(const std::string& dir) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return sys_error(errno, "cannot create " + dir);
    struct stat st{};
    if (::lstat(dir.c_str(), &st) != 0) return sys_error(errno, "cannot stat " + dir);
    if (!S_ISDIR(st.st_mode)) return make_error(Code::permission, dir + " is not a directory");
    if (st.st_uid != ::geteuid()) return make_error(Code::permission, dir + " belongs to another user");
    if ((st.st_mode & 077) != 0 && ::chmod(dir.c_str(), 0700) != 0)
        return sys_error(errno, "cannot make " + dir + " private");
    return {};
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

Result<ControlReply> parse_reply(std::string_view text) {
    ControlReply r;
    std::istringstream in{std::string(text)};
    std::string line;
    while (std::getline(in, line)) {
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

Result<UniqueFd> connect_unix(const std::string& path) {
    sockaddr_un addr{};
    if (path.size() >= sizeof addr.sun_path) return make_error(Code::invalid, "socket path too long: " + path);
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!fd) return sys_error(errno, "socket");
    if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        int err = errno;
        if (err == ENOENT || err == ECONNREFUSED)
            return make_error(Code::not_found, "no coffer daemon answers at " + path);
        return sys_error(err, "cannot connect to " + path);
    }
    return fd;
}

}  // namespace

Result<ControlReply> control_request(const std::string& path, std::string_view command, bool wait_for_close,
                                     int timeout_s) {
    COFFER_ASSIGN(UniqueFd fd, connect_unix(path));
    send_line(fd.get(), command);
    std::string text;
    std::optional<ControlReply> reply;
    auto deadline = std::chrono::steady_clock::time_point::max();
    char buf[4096];
    for (;;) {
        int wait_ms = -1;  // the reply itself may take as long as a publish takes
        if (reply) {
            if (!wait_for_close) return *reply;
            auto left = deadline - std::chrono::steady_clock::now();
            wait_ms = static_cast<int>(std::max<int64_t>(
                0, std::chrono::duration_cast<std::chrono::milliseconds>(left).count()));
            if (wait_ms == 0) return *reply;
        }
        pollfd p{fd.get(), POLLIN, 0};
        int pr = ::poll(&p, 1, wait_ms);
        if (pr < 0) {
            if (errno == EINTR) continue;
            return sys_error(errno, "poll");
        }
        if (pr == 0) return *reply;  // waited long enough for the daemon to exit
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
        auto r = parse_reply(text);
        if (r.ok()) {
            reply = std::move(r).value();
            deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
        }
    }
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

    // A socket file left by a daemon that died is removed; a live one is not.
    if (auto live = connect_unix(path); live.ok())
        return make_error(Code::busy, "a coffer daemon already answers at " + path);
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
