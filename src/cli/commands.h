// The subcommands of `coffer`, and what several of them share: reading the
// credentials, unlocking, the state folder, reporting an error.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "args.h"
#include "coffer/store/vault.h"
#include "coffer/util/log.h"
#include "coffer/vfs/filesystem.h"

namespace coffer::cli {

int run_init(const Args& a);
int run_info(const Args& a);
int run_passwd(const Args& a);
int run_mount(const Args& a);     // daemon.cpp
int run_unmount(const Args& a);
int run_sync(const Args& a);
int run_status(const Args& a);
int run_conflicts(const Args& a);
int run_devices(const Args& a);
int run_fsck(const Args& a);

// Prints "coffer: <message>" (plus a hint for some codes) and returns the exit code.
int report(const Error& e);

// $XDG_DATA_HOME/coffer/<id> (absolute XDG_DATA_HOME only), else $HOME/.local/share/coffer/<id>.
Result<std::string> default_state_dir(const char* xdg_data_home, const char* home, std::string_view vault_id_short);
// --state if given, else the default for this vault; created (0700, with parents).
Result<std::string> resolve_state_dir(const Args& a, const format::Header& header);
Status make_dirs(const std::string& path, mode_t mode);
// Refuses a state folder of another user; makes one open to others 0700
// (with a warning) and the files in it 0600.
Status make_state_private(const std::string& dir);

// The password or recovery key the arguments name, else a prompt on /dev/tty.
Result<store::Credentials> read_credentials(const Args& a);

struct OpenedVault {
    std::unique_ptr<store::Vault> vault;
    std::unique_ptr<store::Unlocked> unlocked;
};
Result<OpenedVault> open_and_unlock(const Args& a);

// Opens the vfs core (no FUSE); the master key is handed over.
Result<std::unique_ptr<vfs::Filesystem>> open_filesystem(OpenedVault& ov, const std::string& state_dir, bool read_only,
                                                         const std::string& device_name = {});

// Disables core dumps and ptrace attach for this process (it holds keys).
void harden_process();
// Raises the soft limit of open files to the hard one (up to 65 536): the
// daemon keeps vault objects open (two descriptors each once read directly),
// and Debian's default soft limit is 1 024.
void raise_fd_limit();

}  // namespace coffer::cli
