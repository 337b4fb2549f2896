// What several subcommands share: errors, credentials, unlocking, state folder.
#include <dirent.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <iostream>

#include "commands.h"
#include "secrets.h"
#include "coffer/format/slots.h"
#include "coffer/util/private_fs.h"

namespace coffer::cli {

int report(const Error& e) {
    std::string msg = e.message();
    std::cerr << "coffer: " << msg << "\n";
    if (e.code == Code::internal) std::cerr << "coffer: this is a bug; please report it\n";
    return exit_code_for(e);
}

Result<std::string> default_state_dir(const char* xdg_data_home, const char* home, std::string_view vault_id_short) {
    std::string base;
    if (xdg_data_home && xdg_data_home[0] == '/')
        base = xdg_data_home;
    else if (home && home[0] == '/')
        base = std::string(home) + "/.local/share";
    else
        return make_error(Code::usage, "neither XDG_DATA_HOME nor HOME is set: pass --state DIR");
    return base + "/coffer/" + std::string(vault_id_short);
}

Status make_dirs(const std::string& path, mode_t mode) {
    if (path.empty()) return make_error(Code::invalid, "empty path");
    for (size_t pos = 1; pos <= path.size(); ++pos) {
        if (pos != path.size() && path[pos] != '/') continue;
        std::string prefix = path.substr(0, pos);
        if (::mkdir(prefix.c_str(), mode) != 0 && errno != EEXIST) return sys_error(errno, "cannot create " + prefix);
    }
    struct stat st{};
    if (::stat(path.c_str(), &st) != 0) return sys_error(errno, path);
    if (!S_ISDIR(st.st_mode)) return make_error(Code::not_dir, path + " is not a directory");
    return {};
}

Result<std::string> resolve_state_dir(const Args& a, const format::Header& header) {
    std::string dir = a.state_dir;
    if (dir.empty()) {
        COFFER_ASSIGN(dir, default_state_dir(std::getenv("XDG_DATA_HOME"), std::getenv("HOME"),
                                             format::vault_id_short(header.vault_id)));
    }
    COFFER_TRY(make_dirs(dir, 0700));
    COFFER_TRY(make_state_private(dir));
    return dir;
}

Status make_state_private(const std::string& dir) {
    // A symlink the user made (--state) is followed: the folder it names is checked.
    auto st = priv::ensure_private_dir(dir, true);
    if (!st.ok()) {
        Error e = std::move(st).error();
        if (e.code == Code::permission)
            e.context = "refusing the local state folder " + e.context +
                        ". The local state must be a folder of your own: pass another --state";
        return e;
    }
    if (st->tightened_from != 0) {
        char mode[16];
        std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st->tightened_from & 07777));
        log::warn("the local state folder " + dir + " was open to other users (mode " + mode +
                  "): made it and its files private (0700, 0600)");
    }
    // Files an older coffer (or another umask) left readable; a folder of
    // mode 0700 already keeps others out, this keeps a later chmod from
    // exposing them.
    for (const std::string& sub : {dir, dir + "/staging"}) {
        DIR* d = ::opendir(sub.c_str());
        if (!d) continue;
        while (struct dirent* e = ::readdir(d)) {
            std::string name = e->d_name;
            if (name == "." || name == "..") continue;
            if (Status t = priv::tighten(sub + "/" + name); !t.ok()) log::warn(t.error().message());
        }
        ::closedir(d);
    }
    return {};
}

Result<store::Credentials> read_credentials(const Args& a) {
    store::Credentials c;
    if (!a.recovery_key_file.empty()) {
        COFFER_ASSIGN(crypto::SecretBytes key, read_recovery_key_file(a.recovery_key_file));
        c.recovery_key = std::move(key);
    } else if (!a.password_file.empty()) {
        COFFER_ASSIGN(crypto::SecretBytes pw, read_password_file(a.password_file));
        c.password = std::move(pw);
    } else {
        COFFER_ASSIGN(crypto::SecretBytes pw, prompt_password("Password for " + a.vault + ": "));
        c.password = std::move(pw);
    }
    return c;
}

Result<OpenedVault> open_and_unlock(const Args& a) {
    OpenedVault ov;
    COFFER_ASSIGN(ov.vault, store::Vault::open(a.vault));
    // Fail on an unreadable or unsupported header before asking for a password.
    COFFER_TRY(ov.vault->peek_header());
    COFFER_ASSIGN(store::Credentials creds, read_credentials(a));
    COFFER_ASSIGN(store::Unlocked u, ov.vault->unlock(creds));
    ov.unlocked = std::make_unique<store::Unlocked>(std::move(u));
    return ov;
}

Result<std::unique_ptr<vfs::Filesystem>> open_filesystem(OpenedVault& ov, const std::string& state_dir,
                                                         bool read_only, const std::string& device_name) {
    vfs::Options o;
    o.state_dir = state_dir;
    o.read_only = read_only;
    o.device_name = device_name;
    auto fs = vfs::Filesystem::open(*ov.vault, ov.unlocked->header, std::move(ov.unlocked->master), o);
    ov.unlocked.reset();
    return fs;
}

void raise_fd_limit() {
    struct rlimit r{};
    if (::getrlimit(RLIMIT_NOFILE, &r) != 0) return;
    rlim_t want = r.rlim_max == RLIM_INFINITY ? 65536 : std::min<rlim_t>(r.rlim_max, 65536);
    if (r.rlim_cur != RLIM_INFINITY && r.rlim_cur < want) {
        r.rlim_cur = want;
        (void)::setrlimit(RLIMIT_NOFILE, &r);  // best effort: the object cache sizes itself to what it gets
    }
}

void harden_process() {
    struct rlimit none{0, 0};
    ::setrlimit(RLIMIT_CORE, &none);
    ::prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

}  // namespace coffer::cli
