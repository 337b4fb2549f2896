// The vault folder (the cloud folder). The one narrow interface every vault
// access goes through: read, list, write-new (tmp + fsync + rename without
// replacing), replace (header only), remove. Paths are relative and opened
// with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), so nothing planted in
// the cloud folder (a symlink, "..") leads outside it.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "coffer/util/bytes.h"
#include "coffer/util/fd.h"
#include "coffer/util/result.h"

namespace coffer::store {

class VaultDir {
public:
    // Opens an existing folder; Code::not_found / Code::not_dir / Code::permission.
    static Result<std::unique_ptr<VaultDir>> open(const std::string& path);
    const std::string& path() const { return path_; }

    // Whole file; Code::pending if it does not exist (yet).
    Result<Bytes> read(std::string_view rel) const;
    // Opened read-only for pread (objects); Code::pending if absent.
    Result<UniqueFd> open_read(std::string_view rel) const;
    // Names in a sub-folder (not "." / ".."); empty if the folder is absent.
    Result<std::vector<std::string>> list(std::string_view rel_dir) const;
    bool exists(std::string_view rel) const;

    // Writes tmp/<random>, fsyncs, renames to rel without replacing
    // (RENAME_NOREPLACE), fsyncs the folder. Creates parent folders.
    // Code::exists if rel is already there (the caller decides if that is fine).
    Status write_new(std::string_view rel, ByteSpan data, bool durable = true);
    // Same, but replaces rel atomically (only for coffer.vault).
    Status replace(std::string_view rel, ByteSpan data);
    // An absent file is not an error (removal is idempotent).
    Status remove(std::string_view rel);
    // fsync a folder (after a batch of write_new with durable=false).
    Status sync_dir(std::string_view rel_dir);
    // Creates the layout of a new vault: objects/ journal/ snapshots/ tmp/.
    Status create_layout();

    // Tests only (not thread-safe): resolve paths by walking components with
    // O_NOFOLLOW, as on a kernel without openat2 (ENOSYS).
    static void set_openat2_disabled_for_tests(bool disabled) noexcept;

private:
    VaultDir(std::string path, UniqueFd root) : path_(std::move(path)), root_(std::move(root)) {}
    Result<UniqueFd> open_beneath(std::string_view rel, int flags, int mode = 0) const;
    std::string path_;
    UniqueFd root_;
};

}  // namespace coffer::store
