// Creating, unlocking and re-keying a vault's header.
#include "coffer/store/vault.h"

#include <algorithm>

#include "coffer/format/slots.h"
#include "coffer/store/vault_dir.h"
#include "coffer/util/log.h"

namespace coffer::store {

namespace {

// Marker files sync clients put in the folders they manage; a folder holding
// only these is empty as far as `coffer init` is concerned (a new Syncthing
// share always has .stfolder).
bool is_sync_client_marker(const std::string& name) {
    static constexpr const char* kMarkers[] = {".stfolder", ".stignore", ".stversions", ".dropbox",
                                               ".dropbox.cache"};
    return std::any_of(std::begin(kMarkers), std::end(kMarkers), [&](const char* m) { return name == m; });
}

Status check_password(const crypto::SecretBytes& password) {
    if (password.empty()) return make_error(Code::invalid, "the password must not be empty");
    return {};
}

Status check_create(const crypto::SecretBytes& password, const CreateOptions& opts) {
    COFFER_TRY(check_password(password));
    COFFER_TRY(format::check_geometry(opts.block_size, opts.extent_size));
    if (opts.format_version < format::kMinFormatVersion || opts.format_version > format::kFormatVersion)
        return make_error(Code::invalid, "no vault format " + std::to_string(opts.format_version));
    return {};
}

}  // namespace

Result<crypto::SecretBytes> Vault::create(const std::string& path, const crypto::SecretBytes& password,
                                          const CreateOptions& opts) {
    COFFER_TRY(check_create(password, opts));  // before the folder: a bad option is reported first
    COFFER_ASSIGN(std::unique_ptr<VaultDir> dir, VaultDir::open(path));
    return create(*dir, password, opts);
}

Result<crypto::SecretBytes> Vault::create(Backend& dir, const crypto::SecretBytes& password,
                                          const CreateOptions& opts) {
    COFFER_TRY(check_create(password, opts));
    COFFER_ASSIGN(std::vector<std::string> names, dir.list(""));
    if (!std::all_of(names.begin(), names.end(), is_sync_client_marker))
        return make_error(Code::exists, dir.describe() + " is not empty; coffer init needs an empty folder");

    crypto::SecretBytes master = crypto::random_key();
    format::Header h;
    h.version = opts.format_version;
    h.vault_id = format::vault_id_for(master);
    h.block_size = opts.block_size;
    h.extent_size = opts.extent_size;
    COFFER_ASSIGN(format::Slot pw_slot, format::try_make_password_slot(master, password, opts.pw_params));
    h.slots.push_back(std::move(pw_slot));
    crypto::SecretBytes recovery = format::generate_recovery_key();
    h.slots.push_back(format::make_recovery_slot(master, recovery));

    // coffer.vault last: a folder without it is not (yet) a vault, so an
    // interrupted init can simply be run again.
    COFFER_TRY(dir.create_layout());
    COFFER_TRY(dir.write_new(kHeaderFile, format::encode_header(h, master)));
    return recovery;
}

Result<std::unique_ptr<Vault>> Vault::open(const std::string& path) {
    COFFER_ASSIGN(std::unique_ptr<VaultDir> dir, VaultDir::open(path));
    return open(std::move(dir));
}

Result<std::unique_ptr<Vault>> Vault::open(std::unique_ptr<Backend> backend) {
    if (!backend->exists(kHeaderFile))
        return make_error(Code::not_found,
                          backend->describe() + " is not a coffer vault (no " + kHeaderFile + ")");
    return std::unique_ptr<Vault>(new Vault(std::move(backend)));
}

Result<format::Header> Vault::peek_header() const {
    COFFER_ASSIGN(Bytes bytes, backend_->read(kHeaderFile, kMaxHeaderFile));
    return format::parse_header(bytes);
}

Result<Unlocked> Vault::unlock(const Credentials& creds) const {
    if (!creds.password && !creds.recovery_key)
        return make_error(Code::invalid, "no password or recovery key given");
    COFFER_ASSIGN(Bytes bytes, backend_->read(kHeaderFile, kMaxHeaderFile));
    COFFER_ASSIGN(format::Header h, format::parse_header(bytes));

    size_t malformed = 0;
    auto accept = [&](crypto::SecretBytes master) -> Result<Unlocked> {
        // A slot the cloud forged opens to a key of its choosing; only the
        // real master key matches the vault id and the MAC.
        COFFER_TRY(format::verify_header(bytes, h, master));
        return Unlocked{h, std::move(master)};
    };
    auto note_failure = [&](const format::Slot& s, const Error& e) {
        if (e.code == Code::wrong_key) return;
        ++malformed;
        log::warn("key slot " + s.id.hex() + " of " + backend_->describe() + " skipped: " + e.message());
    };

    // One Argon2id run per password slot: each has its own salt and parameters.
    if (creds.password)
        for (const format::Slot& s : h.slots) {
            if (s.type != format::SlotType::password) continue;
            auto m = format::unwrap_password_slot(s, *creds.password);
            if (m.ok()) return accept(std::move(m).value());
            if (m.error().code == Code::no_space) return std::move(m).error();  // out of memory: say so
            note_failure(s, m.error());
        }
    if (creds.recovery_key)
        for (const format::Slot& s : h.slots) {
            if (s.type != format::SlotType::recovery_key) continue;
            auto m = format::unwrap_recovery_slot(s, *creds.recovery_key);
            if (m.ok()) return accept(std::move(m).value());
            note_failure(s, m.error());
        }

    std::string msg = creds.password && creds.recovery_key ? "wrong password and wrong recovery key"
                      : creds.password                     ? "wrong password"
                                                           : "wrong recovery key";
    if (malformed)
        msg += " (" + std::to_string(malformed) + " key slot(s) could not be read; the vault header may have been edited)";
    return make_error(Code::wrong_key, msg);
}

Status Vault::change_password(const Unlocked& u, const crypto::SecretBytes& new_password,
                              const crypto::PwParams& params) {
    COFFER_TRY(check_password(new_password));
    // Start from the newest authentic header: another device may have added
    // a slot since this one unlocked, and that slot must survive.
    format::Header base = u.header;
    COFFER_ASSIGN(Bytes bytes, backend_->read(kHeaderFile, kMaxHeaderFile));
    COFFER_ASSIGN(format::Header current, format::parse_header(bytes));
    COFFER_TRY(format::verify_header(bytes, current, u.master));
    if (current.epoch >= base.epoch) base = std::move(current);

    std::erase_if(base.slots, [](const format::Slot& s) { return s.type == format::SlotType::password; });
    COFFER_ASSIGN(format::Slot slot, format::try_make_password_slot(u.master, new_password, params));
    base.slots.push_back(std::move(slot));
    base.epoch += 1;
    return backend_->replace(kHeaderFile, format::encode_header(base, u.master));
}

}  // namespace coffer::store
