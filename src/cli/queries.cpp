// The lines of status, conflicts and devices, shared by the daemon and the
// commands that open a vault that is not mounted.
#include "queries.h"

#include <algorithm>
#include <chrono>
#include <ctime>

#include "control.h"

namespace coffer::cli {

std::optional<Query> query_of(std::string_view command) {
    if (command == "digest") return Query::digest;
    if (command == "conflicts") return Query::conflicts;
    if (command == "devices") return Query::devices;
    return std::nullopt;
}

std::string_view command_of(Query q) {
    switch (q) {
        case Query::digest: return "digest";
        case Query::conflicts: return "conflicts";
        case Query::devices: return "devices";
    }
    return "";
}

uint64_t now_ms() {
    auto t = std::chrono::system_clock::now().time_since_epoch();
    return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(t).count());
}

std::string wire_form(std::string_view s) {
    if (s.find('\n') == std::string_view::npos) return std::string(s);
    return printable(s);
}

std::string utc_time(uint64_t ms) {
    std::time_t secs = static_cast<std::time_t>(ms / 1000);
    struct tm tm{};
    if (!::gmtime_r(&secs, &tm)) return "?";
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
    return buf;
}

std::vector<std::string> device_lines(std::vector<vfs::DeviceInfo> devices, uint64_t now) {
    std::stable_sort(devices.begin(), devices.end(), [](const vfs::DeviceInfo& a, const vfs::DeviceInfo& b) {
        if (a.this_device != b.this_device) return a.this_device;
        if (a.name != b.name) return a.name < b.name;
        return a.id.hex() < b.id.hex();
    });
    size_t width = 0;
    for (const auto& d : devices) width = std::max(width, d.name.size());
    std::vector<std::string> out;
    for (const auto& d : devices) {
        std::string line = d.name.empty() ? "(no name)" : d.name;
        line.resize(std::max(width, line.size()), ' ');
        line += "  " + d.id.hex() + "  ";
        if (d.last_seq == 0) {
            line += "no segment yet";
        } else {
            uint64_t seen = d.last_hlc >> 16;
            line += "last segment " + std::to_string(d.last_seq) + "  last seen " + utc_time(seen);
            if (!d.this_device && now > seen && now - seen > kSilentAfterMs)
                line += "  silent since " + utc_time(seen).substr(0, 10);
        }
        if (d.this_device) line += "  (this device)";
        out.push_back(wire_form(line));
    }
    return out;
}

std::vector<std::string> status_lines(const sync::Summary& s) {
    std::vector<std::string> out = {
        "device:                 " + s.device_name + " (" + s.device + ")",
        "pending operations:     " + std::to_string(s.pending_ops),
        "staged bytes:           " + std::to_string(s.staged_bytes),
        "last published segment: " + std::to_string(s.last_seq),
        "conflict copies:        " + std::to_string(s.conflicts),
        "waiting segments:       " + std::to_string(s.waiting.size()),
    };
    for (const auto& w : s.waiting) out.push_back("  " + w);
    for (auto& l : out) l = wire_form(l);
    return out;
}

Result<std::vector<std::string>> answer_query(vfs::Replica& replica, Query q, uint64_t now) {
    std::vector<std::string> out;
    switch (q) {
        case Query::digest: {
            COFFER_ASSIGN(std::string d, replica.digest());
            out.push_back(std::move(d));
            break;
        }
        case Query::conflicts: {
            COFFER_ASSIGN(auto paths, replica.conflict_copies());
            for (const auto& p : paths) out.push_back(wire_form(p));
            break;
        }
        case Query::devices: {
            COFFER_ASSIGN(auto devs, replica.devices());
            out = device_lines(std::move(devs), now);
            break;
        }
    }
    return out;
}

}  // namespace coffer::cli
