// Subcommands that work on the vault folder itself: init, info, passwd, fsck.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <iostream>

#include "commands.h"
#include "control.h"
#include "secrets.h"
#include "coffer/format/slots.h"
#include "coffer/sync/sync.h"

namespace coffer::cli {
namespace {

std::string size_text(uint64_t bytes) {
    if (bytes >= (1ull << 20) && bytes % (1ull << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
    if (bytes >= 1024 && bytes % 1024 == 0) return std::to_string(bytes >> 10) + " KiB";
    return std::to_string(bytes) + " bytes";
}

const char* cipher_name(format::Cipher c) {
    switch (c) {
        case format::Cipher::xchacha20poly1305: return "XChaCha20-Poly1305";
    }
    return "unknown";
}

Result<crypto::SecretBytes> new_password(const std::string& file) {
    if (!file.empty()) return read_password_file(file);
    return prompt_new_password("New password: ");
}

crypto::PwParams pw_params(bool insecure) {
    if (insecure) return crypto::insecure_test_params();
    std::cerr << "coffer: measuring this computer to tune password hashing (about a second)...\n";
    return crypto::calibrate();
}

}  // namespace

int run_init(const Args& a) {
    const uint32_t block_size = a.block_size != 0 ? a.block_size : format::kDefaultBlockSize;
    const uint32_t extent_size = a.extent_size != 0 ? a.extent_size : format::kDefaultExtentSize;
    if (a.block_size != 0 || a.extent_size != 0) {
        auto geometry = format::check_geometry(block_size, extent_size);
        if (!geometry.ok()) {
            const char* flag = a.extent_size != 0 ? "--extent-size" : "--block-size";
            return report(make_error(Code::usage, std::string(flag) + ": " + geometry.error().message()));
        }
    }
    // Refuse an existing recovery key file before anything is created.
    UniqueFd key_out;
    if (!a.recovery_key_file.empty()) {
        auto fd = create_recovery_key_file(a.recovery_key_file);
        if (!fd.ok()) return report(fd.error());
        key_out = std::move(fd).value();
    }
    bool made_dir = false;
    auto fail = [&](const Error& e) {
        if (key_out) ::unlink(a.recovery_key_file.c_str());
        if (made_dir) ::rmdir(a.vault.c_str());  // only if still empty
        return report(e);
    };
    auto pw = a.password_file.empty() ? prompt_new_password("Password for the new vault: ")
                                      : read_password_file(a.password_file);
    if (!pw.ok()) return fail(pw.error());

    // A missing vault folder is created (one level, like mkdir).
    if (::mkdir(a.vault.c_str(), 0700) == 0)
        made_dir = true;
    else if (errno != EEXIST)
        return fail(sys_error(errno, "cannot create " + a.vault));

    store::CreateOptions opts;
    opts.pw_params = pw_params(a.insecure_fast_kdf);
    opts.block_size = block_size;
    opts.extent_size = extent_size;
    auto key = store::Vault::create(a.vault, *pw, opts);
    if (!key.ok()) return fail(key.error());
    crypto::SecretBytes text = format::format_recovery_key(*key);

    if (key_out) {
        crypto::SecretBytes line(text.size() + 1);
        std::copy(text.span().begin(), text.span().end(), line.data());
        line.data()[text.size()] = '\n';
        Status st = write_all(key_out.get(), line.span());
        if (st.ok() && ::fsync(key_out.get()) != 0) st = sys_error(errno, "fsync " + a.recovery_key_file);
        if (!st.ok()) {
            // The vault exists now; its key is lost unless the user sees it.
            report(st.error());
            std::cerr << "coffer: the vault was created; its recovery key could not be saved, so here it is:\n";
            std::fwrite(text.data(), 1, text.size(), stdout);
            std::fputs("\n", stdout);
            std::fflush(stdout);
            return kExitFailure;
        }
        std::cout << "Created a vault in " << a.vault << ".\n"
                  << "The recovery key is in " << a.recovery_key_file << ". " << kRecoveryKeyWarning << "\n";
        return kExitOk;
    }

    std::cout << "Created a vault in " << a.vault << ".\n\nRecovery key:\n\n    " << std::flush;
    std::fwrite(text.data(), 1, text.size(), stdout);
    std::fputs("\n\n", stdout);
    std::cout << kRecoveryKeyWarning << "\n" << std::flush;
    return kExitOk;
}

int run_info(const Args& a) {
    auto vault = store::Vault::open(a.vault);
    if (!vault.ok()) return report(vault.error());
    auto h = (*vault)->peek_header();
    if (!h.ok()) return report(h.error());
    std::cout << "vault:          " << a.vault << "\n"
              << "format version: " << static_cast<int>(h->version) << "\n"
              << "vault id:       " << format::vault_id_short(h->vault_id) << "\n"
              << "cipher:         " << cipher_name(h->cipher) << "\n"
              << "block size:     " << size_text(h->block_size) << "\n"
              << "extent size:    " << size_text(h->extent_size) << "\n"
              << "header epoch:   " << h->epoch << "\n"
              << "key epoch:      " << h->key_epoch << "\n"
              << "key slots:      " << h->slots.size() << "\n";
    int i = 0;
    for (const auto& s : h->slots) {
        ++i;
        std::cout << "  slot " << i << " (" << s.id.hex().substr(0, 8) << "): ";
        switch (s.type) {
            case format::SlotType::password: {
                std::cout << "password";
                auto p = format::password_slot_params(s);
                if (p.ok()) {
                    std::cout << ", Argon2id ops " << p->opslimit << ", memory " << size_text(p->memlimit);
                    if (crypto::is_insecure(*p)) std::cout << ", INSECURE (test parameters)";
                } else {
                    std::cout << ", unreadable parameters (" << p.error().message() << ")";
                }
                break;
            }
            case format::SlotType::recovery_key: std::cout << "recovery key"; break;
            default: std::cout << "type " << static_cast<int>(s.type) << " (not known to this version)"; break;
        }
        std::cout << "\n";
    }
    return kExitOk;
}

int run_passwd(const Args& a) {
    auto ov = open_and_unlock(a);
    if (!ov.ok()) return report(ov.error());
    auto pw = new_password(a.new_password_file);
    if (!pw.ok()) return report(pw.error());
    Status st = ov->vault->change_password(*ov->unlocked, *pw, pw_params(a.insecure_fast_kdf));
    if (!st.ok()) return report(st.error());
    std::cout << "Password changed. The recovery key is unchanged.\n";
    return kExitOk;
}

int run_fsck(const Args& a) {
    auto ov = open_and_unlock(a);
    if (!ov.ok()) return report(ov.error());
    auto r = sync::fsck(*ov->vault, ov->unlocked->header, ov->unlocked->master);
    if (!r.ok()) return report(r.error());
    std::cout << "checked " << r->segments << " segments, " << r->objects << " objects, " << r->chunks
              << " chunks, " << r->files << " files; " << r->orphans << " unreferenced objects\n";
    for (const auto& t : r->tampered) std::cout << "TAMPERED: " << t << "\n";
    for (const auto& p : r->pending) std::cout << "pending:  " << p << "\n";
    // Names are the vault's (hex ids and a sync client's file names), not
    // the user's: printed escaped, as the cloud chose them.
    for (const auto& f : r->foreign) std::cout << "ignored:  " << printable(f) << " (not coffer's: a sync client's or another program's file)\n";
    if (!r->tampered.empty()) {
        std::cout << r->tampered.size() << " problem(s): the vault was modified outside coffer\n";
        return kExitCorrupt;
    }
    if (!r->pending.empty()) {
        std::cout << r->pending.size()
                  << " vault file(s) referenced but not here yet (is the sync client still downloading?)\n";
        return kExitPending;
    }
    std::cout << "clean\n";
    return kExitOk;
}

}  // namespace coffer::cli
