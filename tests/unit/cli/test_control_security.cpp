// The control socket against a local impostor: the client checks the
// socket's folder and the server's uid, waits a bounded time, and never
// passes control characters from the socket to the terminal.
#include <doctest/doctest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <string>
#include <thread>

#include "cli/control.h"
#include "coffer/util/fd.h"
#include "../test_support.h"

using namespace coffer;
using namespace coffer::cli;

namespace {

UniqueFd listen_at(const std::string& path) {
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    REQUIRE(fd);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
    REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    REQUIRE(::listen(fd.get(), 4) == 0);
    return fd;
}

// Accepts one connection, reads the command, then sends `pieces` each after
// `gap`, and keeps the connection open for `hold`.
std::thread serve_once(int listen_fd, std::vector<std::string> pieces, std::chrono::milliseconds gap,
                       std::chrono::milliseconds hold = std::chrono::milliseconds(0)) {
    return std::thread([listen_fd, pieces = std::move(pieces), gap, hold] {
        UniqueFd c(::accept(listen_fd, nullptr, nullptr));
        if (!c) return;
        char buf[64];
        (void)!::recv(c.get(), buf, sizeof buf, 0);
        for (const auto& p : pieces) {
            std::this_thread::sleep_for(gap);
            (void)!::send(c.get(), p.data(), p.size(), MSG_NOSIGNAL);
        }
        std::this_thread::sleep_for(hold);
    });
}

}  // namespace

TEST_CASE("printable: control characters, C1 controls and bad UTF-8 are escaped; text is not") {
    CHECK(printable("published 3 operations") == "published 3 operations");
    CHECK(printable("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92") == "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92");
    CHECK(printable("\x1b[2J\x1b]0;owned\x07") == "\\x1b[2J\\x1b]0;owned\\x07");
    CHECK(printable("a\rb\tc\x7f") == "a\\x0db\\x09c\\x7f");
    CHECK(printable("\xc2\x9b" "31m") == "\\xc2\\x9b31m");         // U+009B, CSI in 8 bits
    CHECK(printable("\xff\xc3") == "\\xff\\xc3");                    // invalid, truncated
    CHECK(printable("\xe0\x80\xaf") == "\\xe0\\x80\\xaf");           // overlong
    CHECK(printable("\xed\xa0\x80") == "\\xed\\xa0\\x80");           // a surrogate
    CHECK(printable("C:\\x1b") == "C:\\\\x1b");                      // a backslash cannot fake an escape
}

TEST_CASE("parse_reply: keep-alive lines skipped, every line escaped, only complete lines count") {
    auto r = parse_reply(".\n.\nvault: \x1b[31mred\n.\nok published \x1b]0;x\x07 1\n");
    REQUIRE(r.ok());
    CHECK(r->ok);
    CHECK(r->lines == std::vector<std::string>{"vault: \\x1b[31mred"});
    CHECK(r->message == "published \\x1b]0;x\\x07 1");
    CHECK_FALSE(parse_reply("ok publ").ok());  // the rest of the line has not arrived
    auto e = parse_reply("error 13 \x1b[2Jbusy\r\n");
    REQUIRE(e.ok());
    CHECK(e->exit_code == 13);
    CHECK(e->message == "\\x1b[2Jbusy");
}

TEST_CASE("control_request: a socket folder that is not private is refused before connecting") {
    testing::TempDir t;
    std::string dir = t.str() + "/sock";
    REQUIRE(::mkdir(dir.c_str(), 0700) == 0);
    std::string path = dir + "/c.sock";
    UniqueFd l = listen_at(path);
    REQUIRE(::chmod(dir.c_str(), 0755) == 0);
    auto r = control_request(path, "sync");
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Code::permission);
    CHECK(r.error().message().find("mode is 0755") != std::string::npos);
    CHECK(r.error().message().find("rm -r") != std::string::npos);
    // Nothing connected: the listener's queue is empty.
    REQUIRE(::fcntl(l.get(), F_SETFL, O_NONBLOCK) == 0);
    CHECK(::accept(l.get(), nullptr, nullptr) < 0);

    std::string link = t.str() + "/link";
    REQUIRE(::chmod(dir.c_str(), 0700) == 0);
    REQUIRE(::symlink(dir.c_str(), link.c_str()) == 0);
    auto s = control_request(link + "/c.sock", "sync");
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().message().find("symbolic link") != std::string::npos);

    auto missing = control_request(t.str() + "/none/c.sock", "sync");
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().code == Code::not_found);
}

TEST_CASE("control_request: a server that stays silent is given up on; keep-alives keep it waiting") {
    testing::TempDir t;
    std::string path = t.str() + "/c.sock";
    UniqueFd l = listen_at(path);
    {
        auto th = serve_once(l.get(), {}, std::chrono::milliseconds(0), std::chrono::seconds(3));
        auto start = std::chrono::steady_clock::now();
        auto r = control_request(path, "sync", false, 60, 1);
        auto took = std::chrono::steady_clock::now() - start;
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == Code::busy);
        CHECK(r.error().message().find("did not answer") != std::string::npos);
        CHECK(took < std::chrono::seconds(10));
        th.join();
    }
    {
        // Silent longer than the idle limit in all, but never for that long at once.
        auto th = serve_once(l.get(), {".\n", ".\n", ".\n", ".\n", "ok published 1 operations\n"},
                             std::chrono::milliseconds(400));
        auto r = control_request(path, "sync", false, 60, 1);
        th.join();
        REQUIRE(r.ok());
        CHECK(r->ok);
        CHECK(r->lines.empty());
        CHECK(r->message == "published 1 operations");
    }
}

TEST_CASE("control_request: a server of another uid is refused (SO_PEERCRED)") {
    if (::geteuid() != 0) {
        MESSAGE("skipped: needs root to listen as another uid");
        return;
    }
    testing::TempDir t;
    std::string path = t.str() + "/c.sock";
    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        // Bound by root in root's private folder; listening (where the
        // kernel records the peer's credentials) as uid 65534.
        int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        sockaddr_un addr{};
        addr.sun_family = AF_UNIX;
        std::strncpy(addr.sun_path, path.c_str(), sizeof addr.sun_path - 1);
        if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) ::_exit(2);
        if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0) ::_exit(3);
        if (::listen(fd, 4) != 0) ::_exit(4);
        (void)!::write(ready[1], "r", 1);
        int c = ::accept(fd, nullptr, nullptr);
        const char reply[] = "ok published 42 operations\n";
        if (c >= 0) (void)!::send(c, reply, sizeof reply - 1, MSG_NOSIGNAL);
        ::_exit(0);
    }
    ::close(ready[1]);
    char b;
    REQUIRE(::read(ready[0], &b, 1) == 1);
    ::close(ready[0]);
    auto r = control_request(path, "sync", false, 60, 5);
    ::kill(pid, SIGKILL);
    ::waitpid(pid, nullptr, 0);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == Code::permission);
    CHECK(r.error().message().find("uid 65534") != std::string::npos);
}

TEST_CASE("ensure_private_dir (daemon): a folder of another user is refused, saying how to fix it") {
    testing::TempDir t;
    std::string dir = t.str() + "/coffer";
    REQUIRE(::mkdir(dir.c_str(), 0700) == 0);
    REQUIRE(::chmod(dir.c_str(), 0777) == 0);
    if (::geteuid() != 0) {
        MESSAGE("skipped: needs root to give the folder away");
        return;
    }
    REQUIRE(::chown(dir.c_str(), 65534, 65534) == 0);
    auto s = ensure_private_dir(dir);
    REQUIRE_FALSE(s.ok());
    CHECK(s.error().code == Code::permission);
    CHECK(s.error().message().find("belongs to uid 65534") != std::string::npos);
    CHECK(s.error().message().find("rm -r '" + dir + "'") != std::string::npos);
    struct stat st{};
    REQUIRE(::stat(dir.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0777);  // not "fixed" by chmod: it is not ours
}
