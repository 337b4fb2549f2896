#include "coffer/util/log.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>

namespace coffer::log {
namespace {
std::atomic<Level> g_level{Level::info};
std::mutex g_mu;
std::string g_ident = "coffer";
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
}

}  // namespace coffer::log
