// Passwords and recovery keys in and out of the process.
#include "secrets.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iterator>

#include "coffer/format/slots.h"

namespace coffer::cli {

const char* const kRecoveryKeyWarning =
    "Write this recovery key down and keep it away from this computer. If you lose both "
    "your password and this key, your files are gone for good — nobody, not even the coffer "
    "developers, can get them back.";

Result<crypto::SecretBytes> read_secret_file(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY));
    if (!fd) return sys_error(errno, "cannot open " + path);
    struct stat st{};
    if (::fstat(fd.get(), &st) != 0) return sys_error(errno, "cannot stat " + path);
    if (S_ISDIR(st.st_mode)) return make_error(Code::usage, path + " is a directory");
    // Read into a buffer one byte larger than allowed to notice an oversized file.
    crypto::SecretBytes buf(kMaxSecretFile + 1);
    size_t got = 0;
    while (got < buf.size()) {
        ssize_t n = ::read(fd.get(), buf.data() + got, buf.size() - got);
        if (n < 0) {
            if (errno == EINTR) continue;
            return sys_error(errno, "cannot read " + path);
        }
        if (n == 0) break;
        got += static_cast<size_t>(n);
    }
    if (got > kMaxSecretFile) return make_error(Code::usage, path + " is too large for a password or key file");
    buf.resize_down(got);
    return buf;
}

Result<crypto::SecretBytes> read_password_file(const std::string& path) {
    COFFER_ASSIGN(crypto::SecretBytes buf, read_secret_file(path));
    const void* nl = buf.empty() ? nullptr : std::memchr(buf.data(), '\n', buf.size());
    if (nl) buf.resize_down(static_cast<size_t>(static_cast<const uint8_t*>(nl) - buf.data()));
    if (buf.empty()) return make_error(Code::usage, "the password file " + path + " has an empty first line");
    return buf;
}

Result<crypto::SecretBytes> read_recovery_key_file(const std::string& path) {
    COFFER_ASSIGN(crypto::SecretBytes text, read_secret_file(path));
    auto key = format::parse_recovery_key(text.span());
    if (!key.ok()) {
        // A mistyped key is a wrong key (exit 10); the message names the bad group.
        Error e = std::move(key).error();
        if (e.code == Code::invalid) e.code = Code::wrong_key;
        e.context = path + ": " + e.context;
        return e;
    }
    return std::move(key).value();
}

namespace {

// While echo is off, a signal that would end the process (Ctrl-C, a
// closed terminal, kill) first puts the terminal back as it was, then ends
// the process as that signal would have: the shell still sees the signal.
// (A shell restores the terminal of a job that Ctrl-Z stops.) The saved
// state lives in globals for the handler; one prompt at a time.
constexpr int kFatalSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE, SIGALRM, SIGUSR1, SIGUSR2};
volatile sig_atomic_t g_tty_fd = -1;
struct termios g_saved_tty{};

void restore_and_reraise(int signo) {
    int saved_errno = errno;
    if (g_tty_fd >= 0) {
        ::tcsetattr(g_tty_fd, TCSANOW, &g_saved_tty);
        (void)!::write(g_tty_fd, "\n", 1);
    }
    struct sigaction dfl{};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    ::sigaction(signo, &dfl, nullptr);
    // Blocked while this handler runs: delivered, with its default action, on return.
    ::raise(signo);
    errno = saved_errno;
}

// Turns echo off, and on again when it goes out of scope or a signal comes.
class EchoOff {
public:
    explicit EchoOff(int fd) : fd_(fd) {
        if (::tcgetattr(fd_, &g_saved_tty) != 0) return;
        struct termios quiet = g_saved_tty;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO | ECHONL);
        quiet.c_lflag |= ICANON;
        g_tty_fd = fd_;
        struct sigaction sa{};
        sigemptyset(&sa.sa_mask);
        for (size_t i = 0; i < std::size(kFatalSignals); ++i) {
            sa.sa_handler = restore_and_reraise;
            ::sigaction(kFatalSignals[i], nullptr, &old_[i]);
            // A signal the caller ignores (nohup) stays ignored.
            if (old_[i].sa_handler != SIG_IGN) ::sigaction(kFatalSignals[i], &sa, nullptr);
        }
        active_ = ::tcsetattr(fd_, TCSAFLUSH, &quiet) == 0;
        if (!active_) restore_handlers();
    }
    ~EchoOff() {
        if (!active_) return;
        ::tcsetattr(fd_, TCSAFLUSH, &g_saved_tty);
        restore_handlers();
    }
    EchoOff(const EchoOff&) = delete;
    EchoOff& operator=(const EchoOff&) = delete;

private:
    void restore_handlers() {
        for (size_t i = 0; i < std::size(kFatalSignals); ++i) ::sigaction(kFatalSignals[i], &old_[i], nullptr);
        g_tty_fd = -1;
    }
    int fd_;
    struct sigaction old_[std::size(kFatalSignals)]{};
    bool active_ = false;
};

void tty_write(int fd, std::string_view s) { (void)write_all(fd, as_bytes(s)); }

Result<crypto::SecretBytes> read_tty_line(int fd, const std::string& prompt) {
    tty_write(fd, prompt);
    crypto::SecretBytes buf(kMaxPassword);
    size_t got = 0;
    {
        EchoOff guard(fd);
        for (;;) {
            uint8_t c;
            ssize_t n = ::read(fd, &c, 1);
            if (n < 0) {
                if (errno == EINTR) continue;
                tty_write(fd, "\n");
                return sys_error(errno, "cannot read the password from the terminal");
            }
            if (n == 0 || c == '\n' || c == '\r') break;
            if (got == buf.size()) {
                tty_write(fd, "\n");
                return make_error(Code::usage, "password too long");
            }
            buf.data()[got++] = c;
        }
    }
    tty_write(fd, "\n");
    buf.resize_down(got);
    return buf;
}

Result<UniqueFd> open_tty() {
    UniqueFd fd(::open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY));
    if (!fd) return make_error(Code::usage, "no terminal to ask for the password: use --password-file");
    return fd;
}

}  // namespace

Result<crypto::SecretBytes> prompt_password(const std::string& prompt) {
    COFFER_ASSIGN(UniqueFd tty, open_tty());
    return read_tty_line(tty.get(), prompt);
}

Result<crypto::SecretBytes> prompt_new_password(const std::string& prompt) {
    COFFER_ASSIGN(UniqueFd tty, open_tty());
    COFFER_ASSIGN(crypto::SecretBytes first, read_tty_line(tty.get(), prompt));
    if (first.empty()) return make_error(Code::usage, "the password must not be empty");
    COFFER_ASSIGN(crypto::SecretBytes second, read_tty_line(tty.get(), "Repeat the password: "));
    if (!crypto::equal(first.span(), second.span()))
        return make_error(Code::usage, "the two passwords differ");
    return first;
}

Result<UniqueFd> create_recovery_key_file(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
    if (!fd) {
        int err = errno;
        if (err == EEXIST) return make_error(Code::exists, path + " already exists; coffer will not overwrite it");
        return sys_error(err, "cannot create " + path);
    }
    // The umask may only have removed bits; make sure of 0600 anyway.
    (void)::fchmod(fd.get(), 0600);
    return fd;
}

Status write_all(int fd, ByteSpan data) {
    size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return sys_error(errno, "write failed");
        }
        done += static_cast<size_t>(n);
    }
    return {};
}

}  // namespace coffer::cli
