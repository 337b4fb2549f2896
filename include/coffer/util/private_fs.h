// Files and folders only their owner may read: the local state, the
// control socket's folder. Modes are set explicitly (fchmod), so the umask
// of whoever runs coffer does not decide who can read index.db.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <string>

#include "coffer/util/fd.h"
#include "coffer/util/result.h"

namespace coffer::priv {

// What a private folder turned out to be.
struct DirState {
    bool created = false;
    mode_t tightened_from = 0;  // the mode it had when it was made 0700, else 0
};

// Problems of a folder that should be private to `uid`: "" when it is a
// real folder (not a symlink), owned by uid, mode 0700 (no group or other
// bits). Otherwise a sentence naming what is wrong.
std::string describe_unsafe_dir(const struct stat& st, uid_t uid);

// Checks, without changing anything, that `path` is a private folder of
// the effective user (see describe_unsafe_dir). Code::not_found when it
// does not exist; Code::permission, with the reason, when it is unsafe.
Status check_private_dir(const std::string& path);

// Creates `path` (one level, mode 0700) if missing; opens it without
// following a symlink; refuses (Code::permission) one that belongs to
// another user or is not a folder; removes group and other bits from one
// of ours. With follow_symlink, a symlink the user made (--state) is
// followed, and its target checked the same way.
Result<DirState> ensure_private_dir(const std::string& path, bool follow_symlink = false);

// open(path, flags | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600), then makes
// sure the file is 0600 even if it existed with a wider mode.
Result<UniqueFd> open_private_file(const std::string& path, int flags);

// Removes group and other bits from `path` if it is a file or folder of
// ours; nothing if it is missing or a symlink. For files other code creates
// (SQLite's WAL) or made by an older coffer.
Status tighten(const std::string& path);

}  // namespace coffer::priv
