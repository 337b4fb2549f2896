// The coffer command line (docs/CLI-SPEC.md): parsing into Args, and the one
// mapping from an error Code to a documented exit code.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "coffer/util/result.h"

namespace coffer::cli {

constexpr const char* kVersion = "0.1.0";

// Exit codes (docs/CLI-SPEC.md, "Exit codes").
enum Exit : int {
    kExitOk = 0,
    kExitFailure = 1,
    kExitUsage = 2,
    kExitWrongKey = 10,
    kExitCorrupt = 11,
    kExitUnsupported = 12,
    kExitBusy = 13,
    kExitNotFound = 14,
    kExitRolledBack = 15,
    kExitPending = 16,
    kExitExists = 17,
};
int exit_code_for(Code code) noexcept;
inline int exit_code_for(const Error& e) noexcept { return exit_code_for(e.code); }

enum class Command { init, mount, unmount, sync, status, conflicts, devices, info, passwd, fsck };

struct Args {
    Command command = Command::info;
    std::string vault;        // init, mount, info, passwd, fsck
    std::string mountpoint;   // mount, unmount
    std::string target;       // sync, status, conflicts, devices: a mountpoint or a vault
    std::string password_file;
    std::string recovery_key_file;  // init: where to write it; otherwise: unlock with it
    std::string new_password_file;  // passwd
    std::string state_dir;
    bool insecure_fast_kdf = false;
    uint32_t block_size = 0;   // init --block-size (0: the default)
    uint32_t extent_size = 0;  // init --extent-size (0: the default)
    bool foreground = false;
    bool read_only = false;   // --read-only or -o ro
    bool allow_other = false; // -o allow_other
    std::optional<bool> kernel_permissions;  // -o [no_]default_permissions (unset: the kernel iff allow_other)
    bool debug = false;       // -o debug: libfuse's request trace (with --foreground)
    bool writeback_cache = true;  // -o [no_]writeback_cache: the kernel caches writes (see CLI-SPEC.md)
    std::optional<unsigned> read_ahead_kb;  // -o read_ahead_kb=N (unset: fuse::kDefaultReadAheadKb; 0: the kernel's)
    std::vector<std::string> fuse_options;  // the rest of -o, split on commas
    bool auto_sync = true;         // --no-auto-sync
    unsigned sync_interval = 30;   // -o sync_interval=SECONDS
    std::string device_name;       // --device-name (a new local state's name; default: the host name)
    bool digest = false;           // status --digest
};

// What parsing gave: Args to run, or an exit code with text to print
// (help, version, or a usage error).
struct Parsed {
    std::optional<Args> args;
    int exit_code = 0;
    std::string out;  // for stdout
    std::string err;  // for stderr
};
Parsed parse_args(int argc, const char* const* argv);

// Splits "-o a,b=c,d" values; allow_other / ro / rw / debug set flags, the
// rest is kept for libfuse. Code::usage for options coffer sets itself.
Status apply_mount_options(const std::string& value, Args& a);

}  // namespace coffer::cli
