// A model of a cloud sync client (Dropbox, Nextcloud, Syncthing, ...) for the
// multi-device simulator: one "cloud" copy of the vault folder and, per
// device, that device's own copy, kept in step file by file.
//
// Vault files are immutable once written, so syncing is copying what one
// side has and the other lacks (coffer.vault, the one file rewritten in
// place, goes by last writer). What makes it a sync client rather than a
// shared folder is how badly it behaves, each behaviour seeded:
//   - every transfer waits a random number of steps, so files arrive late
//     and in any order (a segment before its objects, a later segment
//     before an earlier one);
//   - a file is sometimes delivered twice (rewritten with the same bytes);
//   - a download first shows up as a partial temp file
//     (`.syncthing.<name>.tmp`) and only later under its name;
//   - an object that has arrived is sometimes withdrawn for a while (a
//     client re-downloading it), so reads of it are pending, then work;
//   - conflict copies of vault files with identical bytes, in the naming
//     styles of real clients, and foreign files (`desktop.ini`, `.DS_Store`,
//     `~$…`, `.~lock…#`) appear and sync like any other file.
// Deletions are not modelled: coffer does not delete vault files yet.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "coffer/store/memory_backend.h"
#include "coffer/store/vault.h"

namespace coffer::sim {

// Every file of a backend, recursively, as vault-relative paths (tmp/,
// which belongs to the backend, left out).
std::vector<std::string> list_files(const store::Backend& b);
// A vault folder in memory holding only the layout and `header_file` (the
// bytes of coffer.vault): what a device's or the cloud's copy starts as.
std::unique_ptr<store::Vault> new_vault_copy(ByteSpan header_file);

class SyncEngine {
public:
    // Chances are in percent, per transfer unless said otherwise.
    struct Config {
        int max_delay = 6;          // steps a transfer may wait
        int duplicate_pct = 5;      // delivered a second time, later
        int partial_pct = 15;       // seen as a partial temp file first
        int conflict_copy_pct = 3;  // an identical conflict copy beside it
        int foreign_pct = 4;        // per step: a foreign file in some folder
        int withdraw_pct = 6;       // per step: an arrived object withdrawn
    };
    // A config where nothing misbehaves: every file moves at the next step.
    static Config polite();

    // The cloud copy starts with `header_file` (coffer.vault) only.
    SyncEngine(uint64_t seed, Config config, ByteSpan header_file);

    // The cloud copy, and a vault over it (for fsck).
    store::Backend& cloud() { return cloud_vault_->backend(); }
    store::Vault& cloud_vault() { return *cloud_vault_; }
    // Starts keeping `copy` (a device's vault folder, with the same
    // coffer.vault as the cloud's) in step; returns its index.
    size_t attach(store::Backend& copy);

    // One tick of the clock: notices new files on every side, then does the
    // transfers that are due (and the misbehaviours). Returns files moved.
    size_t step();
    // Everything now: withdrawn files back, every transfer done, until both
    // sides of every device hold the same files. Returns files moved.
    size_t settle();

    // Driven by hand (regression tests), nothing random: every file of the
    // device's copy the cloud lacks goes up; cloud files for which `want`
    // says yes come down. Return files moved.
    size_t upload(size_t device);
    size_t download(size_t device, const std::function<bool(const std::string&)>& want);

    // How often it misbehaved, so a test can see that it did.
    struct Stats {
        size_t duplicates = 0, partials = 0, conflict_copies = 0, foreign = 0, withdrawn = 0;
    };
    const Stats& stats() const { return stats_; }

private:
    struct Transfer {
        size_t device = 0;
        bool up = false;        // device → cloud
        std::string rel;
        uint64_t due = 0;
        bool delivered = false;  // a duplicate waiting to be delivered again
        bool partial = false;    // its temp file is there
    };
    struct Withdrawn {
        std::string rel;
        Bytes bytes;
        uint64_t until = 0;
    };
    using Key = std::tuple<size_t, bool, std::string>;

    store::Backend& side(size_t device, bool up_from) { return up_from ? *copies_[device] : cloud(); }
    void notice(size_t device);
    void sync_header(size_t device);
    // Copies one file; false if it was not there to copy (or already there).
    bool copy(store::Backend& from, store::Backend& to, const std::string& rel, bool again);
    size_t deliver(Transfer& t);
    void add_foreign_file();
    void withdraw_object();
    size_t restore_withdrawn(bool all);
    int roll(int pct) { return static_cast<int>(rng_() % 100) < pct; }
    std::string temp_name(const std::string& rel) const;

    std::mt19937_64 rng_;
    Config config_;
    uint64_t now_ = 0;
    std::unique_ptr<store::Vault> cloud_vault_;
    std::vector<store::Backend*> copies_;
    std::vector<Bytes> header_seen_;  // coffer.vault as last put on (or taken from) each device
    std::map<Key, Transfer> queue_;
    std::map<size_t, std::vector<Withdrawn>> withdrawn_;
    Stats stats_;
};

}  // namespace coffer::sim
