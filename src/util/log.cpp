#include "coffer/util/log.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <ctime>
#include <string>

namespace coffer::log {
namespace {
std::atomic<Level> g_level{Level::info};
std::mutex g_mu;
std::string g_ident = "coffer";
int g_file_fd = -1;  // the daemon's log file, if any (set_file)
const char* name(Level l) {
    switch (l) {
        case Level::debug: return "debug";
        case Level::info: return "info";
        case Level::warn: return "warning";
        case Level::error: return "error";
    }
    return "";
}
}  // namespace

void set_level(Level l) { g_level = l; }
void set_ident(std::string_view ident) {
    std::lock_guard lk(g_mu);
    g_ident = ident;
}
void write(Level l, std::string_view msg) {
    if (l < g_level.load()) return;
    std::lock_guard lk(g_mu);
    std::string line = g_ident + ": " + name(l) + ": " + std::string(msg) + "\n";
    (void)!::write(STDERR_FILENO, line.data(), line.size());
    if (g_file_fd >= 0) {
        char stamp[32];
        time_t now = ::time(nullptr);
        struct tm tm{};
        ::localtime_r(&now, &tm);
        size_t n = ::strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S ", &tm);
        std::string stamped = std::string(stamp, n) + line;
        (void)!::write(g_file_fd, stamped.data(), stamped.size());
    }
}

// Also append every line (with a timestamp) to `path`; an empty path stops.
// Declared where it is used (the daemon); returns false if the file cannot be opened.
bool set_file(std::string_view path) {
    int fd = -1;
    if (!path.empty()) {
        fd = ::open(std::string(path).c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0) return false;
    }
    std::lock_guard lk(g_mu);
    if (g_file_fd >= 0) ::close(g_file_fd);
    g_file_fd = fd;
    return true;
}

}  // namespace coffer::log
