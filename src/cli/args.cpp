// Command-line parsing with CLI11, exactly the shape of docs/CLI-SPEC.md.
#include "args.h"

#include <CLI/CLI.hpp>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <sstream>

namespace coffer::cli {

int exit_code_for(Code code) noexcept {
    switch (code) {
        case Code::wrong_key: return kExitWrongKey;
        case Code::corrupt: return kExitCorrupt;
        case Code::unsupported: return kExitUnsupported;
        case Code::busy: return kExitBusy;
        case Code::not_found: return kExitNotFound;
        case Code::rolled_back: return kExitRolledBack;
        case Code::pending: return kExitPending;
        case Code::exists: return kExitExists;
        case Code::usage: return kExitUsage;
        default: return kExitFailure;
    }
}

Status apply_mount_options(const std::string& value, Args& a) {
    std::string item;
    std::istringstream in(value);
    while (std::getline(in, item, ',')) {
        if (item.empty() || item == "rw") continue;
        if (item == "allow_other") {
            a.allow_other = true;
        } else if (item == "default_permissions") {
            a.kernel_permissions = true;
        } else if (item == "no_default_permissions") {
            a.kernel_permissions = false;
        } else if (item == "ro") {
            a.read_only = true;
        } else if (item == "debug") {
            a.debug = true;
        } else if (item == "writeback_cache") {
            a.writeback_cache = true;
        } else if (item == "no_writeback_cache") {
            a.writeback_cache = false;
        } else if (item.starts_with("read_ahead_kb=")) {
            std::string v = item.substr(14);
            char* end = nullptr;
            errno = 0;
            unsigned long kb = v.empty() ? 0 : std::strtoul(v.c_str(), &end, 10);
            if (v.empty() || *end != '\0' || errno != 0 || kb > 65536 || !std::isdigit(static_cast<unsigned char>(v[0])))
                return make_error(Code::usage, "-o " + item + ": read_ahead_kb takes a number of KiB from 0 to 65536");
            a.read_ahead_kb = static_cast<unsigned>(kb);
        } else if (item.starts_with("sync_interval=")) {
            std::string v = item.substr(14);
            char* end = nullptr;
            errno = 0;
            unsigned long secs = v.empty() ? 0 : std::strtoul(v.c_str(), &end, 10);
            if (v.empty() || *end != '\0' || errno != 0 || secs < 1 || secs > 86400 ||
                !std::isdigit(static_cast<unsigned char>(v[0])))
                return make_error(Code::usage, "-o " + item + ": sync_interval takes seconds from 1 to 86400");
            a.sync_interval = static_cast<unsigned>(secs);
        } else if (item == "no_auto_sync") {
            a.auto_sync = false;
        } else if (item.starts_with("fsname=") || item.starts_with("subtype=")) {
            return make_error(Code::usage, "-o " + item + ": coffer sets this option itself");
        } else {
            a.fuse_options.push_back(item);
        }
    }
    return {};
}

namespace {

// The options every unlocking subcommand shares; the two secrets exclude each other.
void add_unlock_options(CLI::App* sub, Args& a) {
    auto* pw = sub->add_option("--password-file", a.password_file,
                               "read the password from the first line of this file");
    auto* rk = sub->add_option("--recovery-key-file", a.recovery_key_file,
                               "unlock with the recovery key in this file");
    pw->excludes(rk);
}

// TARGET and what opening a vault that is not mounted takes.
void add_target_options(CLI::App* sub, Args& a) {
    sub->add_option("TARGET", a.target, "a mounted folder, or a vault that is not mounted")->required();
    add_unlock_options(sub, a);
    sub->add_option("--state", a.state_dir, "local state folder (vault not mounted)");
}

}  // namespace

Parsed parse_args(int argc, const char* const* argv) {
    Args a;
    std::vector<std::string> o_values;
    CLI::App app{"coffer: an encrypted folder inside any cloud folder", "coffer"};
    app.set_version_flag("--version", std::string("coffer ") + kVersion);
    app.require_subcommand(1);

    auto* init = app.add_subcommand("init", "create a new vault in an empty folder");
    init->add_option("VAULT", a.vault, "the vault folder (in your cloud folder)")->required();
    init->add_option("--password-file", a.password_file, "read the password from the first line of this file");
    init->add_option("--recovery-key-file", a.recovery_key_file,
                     "write the recovery key to this new file (mode 0600) instead of printing it");
    init->add_flag("--insecure-fast-kdf", a.insecure_fast_kdf, "cheap password hashing, for tests only");
    init->add_option("--block-size", a.block_size,
                     "bytes sealed per block in the vault's objects (power of two, 4096..1048576; default 16384)");
    init->add_option("--extent-size", a.extent_size,
                     "bytes of a file sealed again when any of them changes (a multiple of the block size, up to "
                     "64 MiB; default 4194304)");

    auto* mount = app.add_subcommand("mount", "unlock a vault and show it as a folder");
    mount->add_option("VAULT", a.vault, "the vault folder")->required();
    mount->add_option("MOUNTPOINT", a.mountpoint, "an existing empty folder")->required();
    add_unlock_options(mount, a);
    mount->add_option("--state", a.state_dir, "local state folder (default: $XDG_DATA_HOME/coffer/<vault id>)");
    mount->add_flag("--foreground", a.foreground, "stay in the foreground, log to stderr too");
    mount->add_flag("--read-only", a.read_only, "mount read-only");
    mount->add_flag("!--no-auto-sync", a.auto_sync,
                    "do not sync on its own (publish and merge only at `coffer sync` and unmount)");
    mount->add_option("--device-name", a.device_name,
                      "this device's name in conflict copies and `coffer devices`, set when its local state is "
                      "created (default: the host name)");
    mount->add_option("-o", o_values, "mount options: allow_other, ro, [no_]writeback_cache, [no_]default_permissions, read_ahead_kb=N, sync_interval=SECONDS, no_auto_sync, and options libfuse accepts")
        ->allow_extra_args(false);

    auto* unmount = app.add_subcommand("unmount", "sync, unmount and wait for the daemon to exit");
    unmount->add_option("MOUNTPOINT", a.mountpoint, "the mounted folder")->required();

    auto* sync = app.add_subcommand("sync", "publish changes to the vault, then merge other devices' changes");
    add_target_options(sync, a);
    sync->add_option("--device-name", a.device_name,
                     "this device's name, when the local state is new (default: the host name)");

    auto* status = app.add_subcommand("status", "this device: what is not published, conflicts, waiting segments");
    add_target_options(status, a);
    status->add_flag("--digest", a.digest, "print only the digest of the tree (one hex line), to compare devices");

    auto* conflicts = app.add_subcommand("conflicts", "list the conflict copies merges made, one path per line");
    add_target_options(conflicts, a);

    auto* devices = app.add_subcommand("devices", "list the devices that wrote to the vault");
    add_target_options(devices, a);

    auto* info = app.add_subcommand("info", "show a vault's header without unlocking it");
    info->add_option("VAULT", a.vault, "the vault folder")->required();

    auto* passwd = app.add_subcommand("passwd", "change the password");
    passwd->add_option("VAULT", a.vault, "the vault folder")->required();
    add_unlock_options(passwd, a);
    passwd->add_option("--new-password-file", a.new_password_file,
                       "read the new password from the first line of this file");
    passwd->add_flag("--insecure-fast-kdf", a.insecure_fast_kdf, "cheap password hashing, for tests only");

    auto* fsck = app.add_subcommand("fsck", "check every segment and block of a vault");
    fsck->add_option("VAULT", a.vault, "the vault folder")->required();
    add_unlock_options(fsck, a);

    Parsed p;
    std::ostringstream out, err;
    try {
        std::vector<std::string> args;
        for (int i = argc - 1; i >= 1; --i) args.emplace_back(argv[i]);  // CLI11 wants them reversed
        app.parse(args);
    } catch (const CLI::ParseError& e) {
        int rc = app.exit(e, out, err);
        p.exit_code = rc == 0 ? kExitOk : kExitUsage;
        p.out = out.str();
        p.err = err.str();
        return p;
    }

    if (init->parsed()) a.command = Command::init;
    else if (mount->parsed()) a.command = Command::mount;
    else if (unmount->parsed()) a.command = Command::unmount;
    else if (sync->parsed()) a.command = Command::sync;
    else if (status->parsed()) a.command = Command::status;
    else if (conflicts->parsed()) a.command = Command::conflicts;
    else if (devices->parsed()) a.command = Command::devices;
    else if (info->parsed()) a.command = Command::info;
    else if (passwd->parsed()) a.command = Command::passwd;
    else a.command = Command::fsck;

    for (const auto& v : o_values) {
        Status st = apply_mount_options(v, a);
        if (!st.ok()) {
            p.exit_code = kExitUsage;
            p.err = "coffer mount: " + st.error().message() + "\n";
            return p;
        }
    }
    p.args = std::move(a);
    return p;
}

}  // namespace coffer::cli
