// What `coffer status`, `coffer conflicts` and `coffer devices` print: the
// same lines whether a mount's daemon answers (control commands "status",
// "digest", "conflicts", "devices") or the command opens the vault itself.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coffer/sync/sync.h"
#include "coffer/util/result.h"
#include "coffer/vfs/replica.h"

namespace coffer::cli {

// A device whose newest segment is older than this is listed as silent.
inline constexpr uint64_t kSilentAfterMs = 30ull * 24 * 3600 * 1000;

enum class Query { digest, conflicts, devices };
// The control command of a query ("digest", "conflicts", "devices"), if it is one.
std::optional<Query> query_of(std::string_view command);
std::string_view command_of(Query q);

// The lines a query prints, each in wire form. `now_ms`: milliseconds since
// the epoch (what "silent" is measured against).
Result<std::vector<std::string>> answer_query(vfs::Replica& replica, Query q, uint64_t now_ms);
uint64_t now_ms();

// The part of `coffer status` that concerns the replica (device, pending,
// conflicts, waiting segments), in wire form.
std::vector<std::string> status_lines(const sync::Summary& s);

// One line per device: name, id, last segment, last seen, "(this device)",
// "silent since DATE"; this device first, then by name.
std::vector<std::string> device_lines(std::vector<vfs::DeviceInfo> devices, uint64_t now_ms);
// "2026-11-28 12:34:56 UTC" for milliseconds since the epoch.
std::string utc_time(uint64_t ms);

// A line that can cross the control socket: text without a newline is
// sent as it is; text with one is escaped (printable()). The client runs
// printable() on every line it receives, so a command that answers without
// a daemon prints printable(wire_form(x)) to show the same bytes.
std::string wire_form(std::string_view s);

}  // namespace coffer::cli
