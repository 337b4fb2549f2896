// A vault: its folder plus its header. Creates new vaults, unlocks them with
// a password or recovery key, and rewrites the header (passwd).
#pragma once

#include <memory>
#include <optional>

#include "coffer/crypto/crypto.h"
#include "coffer/format/header.h"
#include "coffer/store/vault_dir.h"

namespace coffer::store {

constexpr const char* kHeaderFile = "coffer.vault";

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
    static Result<std::unique_ptr<Vault>> open(const std::string& path);

    // Header as stored, parsed but not authenticated (for `coffer info`).
    Result<format::Header> peek_header() const;
    // Tries every slot the credentials fit; Code::wrong_key if none opens,
    // Code::corrupt if the header fails authentication after an unwrap.
    Result<Unlocked> unlock(const Credentials& creds) const;
    // Replaces every password slot with one for new_password; epoch + 1.
    Status change_password(const Unlocked& u, const crypto::SecretBytes& new_password,
                           const crypto::PwParams& params);

    VaultDir& dir() { return *dir_; }
    const VaultDir& dir() const { return *dir_; }

private:
    explicit Vault(std::unique_ptr<VaultDir> d) : dir_(std::move(d)) {}
    std::unique_ptr<VaultDir> dir_;
};

}  // namespace coffer::store
