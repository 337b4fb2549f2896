// The vault as a folder (the cloud folder): the Backend coffer runs on.
// Paths are opened with openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS), so
// nothing planted in the folder (a symlink, "..") leads outside it; a new
// file is written as tmp/<random>, fsynced, renamed into place without
// replacing (RENAME_NOREPLACE, or link(2) where that is missing), and its
// folder fsynced. The promises of each call are in backend.h.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "coffer/store/backend.h"
#include "coffer/util/fd.h"

namespace coffer::store {

class VaultDir final : public Backend {
public:
    // Opens an existing folder; Code::not_found / Code::not_dir / Code::permission.
    static Result<std::unique_ptr<VaultDir>> open(const std::string& path);
    const std::string& path() const { return path_; }

    std::string describe() const override { return path_; }
    Result<std::vector<std::string>> list(std::string_view rel_dir) const override;
    bool exists(std::string_view rel) const override;
    Result<Bytes> read_at(std::string_view rel, uint64_t offset, size_t max_len) const override;
    Result<std::shared_ptr<SourceFile>> open_read(std::string_view rel) const override;

    Status write_new(std::string_view rel, ByteSpan data, bool durable = true) override;
    Status replace(std::string_view rel, ByteSpan data) override;
    Status remove(std::string_view rel) override;
    Status sync_dir(std::string_view rel_dir) override;
    Status create_layout() override;

    // Tests only (not thread-safe): resolve paths by walking components with
    // O_NOFOLLOW, as on a kernel without openat2 (ENOSYS).
    static void set_openat2_disabled_for_tests(bool disabled) noexcept;

private:
    VaultDir(std::string path, UniqueFd root) : path_(std::move(path)), root_(std::move(root)) {}
    Result<UniqueFd> open_beneath(std::string_view rel, int flags, int mode = 0) const;
    // A regular file, opened read-only.
    Result<UniqueFd> open_file(std::string_view rel) const;
    std::string path_;
    UniqueFd root_;
};

}  // namespace coffer::store
