// A vault: its storage (a Backend, normally a VaultDir) plus its header.
// Creates new vaults, unlocks them with a password or recovery key, and
// rewrites the header (passwd).
#pragma once

#include <memory>
#include <optional>

#include "coffer/crypto/crypto.h"
#include "coffer/format/header.h"
#include "coffer/store/backend.h"

namespace coffer::store {

constexpr const char* kHeaderFile = "coffer.vault";
// Caps for reading whole vault files (Backend::read): a larger one is
// refused as corrupt before it is read into memory. The header is its body
// (format::kMaxHeaderBody) plus a fixed prefix and MAC; segments have no
// limit in the format yet, so theirs is far above any real publish.
constexpr uint64_t kMaxHeaderFile = format::kMaxHeaderBody + 4096;
constexpr uint64_t kMaxSegmentFile = uint64_t{1} << 30;

struct Credentials {
    std::optional<crypto::SecretBytes> password;
    std::optional<crypto::SecretBytes> recovery_key;  // raw 20 bytes (parsed)
};

struct CreateOptions {
    crypto::PwParams pw_params;  // from crypto::calibrate() or insecure_test_params()
    uint32_t block_size = format::kDefaultBlockSize;
    uint32_t extent_size = format::kDefaultExtentSize;
    // Format 1 only for tests of vaults made before format 2.
    uint8_t format_version = format::kFormatVersion;
};

struct Unlocked {
    format::Header header;
    crypto::SecretBytes master;
};

class Vault {
public:
    // Refuses a folder that is not empty (Code::exists) or missing (Code::not_found).
    // Returns the new recovery key (raw bytes) for the caller to show once.
    static Result<crypto::SecretBytes> create(const std::string& path, const crypto::SecretBytes& password,
                                              const CreateOptions& opts);
    // The same on any storage (tests: MemoryBackend, FaultBackend).
    static Result<crypto::SecretBytes> create(Backend& backend, const crypto::SecretBytes& password,
                                              const CreateOptions& opts);
    // A vault folder (VaultDir); Code::not_found if it holds no coffer.vault.
    static Result<std::unique_ptr<Vault>> open(const std::string& path);
    static Result<std::unique_ptr<Vault>> open(std::unique_ptr<Backend> backend);

    // Header as stored, parsed but not authenticated (for `coffer info`).
    Result<format::Header> peek_header() const;
    // Tries every slot the credentials fit; Code::wrong_key if none opens,
    // Code::corrupt if the header fails authentication after an unwrap.
    Result<Unlocked> unlock(const Credentials& creds) const;
    // Replaces every password slot with one for new_password; epoch + 1.
    Status change_password(const Unlocked& u, const crypto::SecretBytes& new_password,
                           const crypto::PwParams& params);

    // Every read and write of the vault's files goes through here.
    Backend& backend() { return *backend_; }
    const Backend& backend() const { return *backend_; }

private:
    explicit Vault(std::unique_ptr<Backend> b) : backend_(std::move(b)) {}
    std::unique_ptr<Backend> backend_;
};

}  // namespace coffer::store
