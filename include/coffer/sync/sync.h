// sync: publish staged data as objects and the pending metadata as one
// journal segment; rebuild a device's index from the vault.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "coffer/crypto/crypto.h"
#include "coffer/format/header.h"

#include "coffer/util/result.h"
#include "coffer/vfs/filesystem.h"
#include "coffer/vfs/replica.h"

namespace coffer::sync {

struct PublishStats {
    uint64_t objects = 0;
    uint64_t bytes = 0;      // sealed bytes written to the vault
    uint64_t ops = 0;        // operations in the segment (0: nothing to do)
    uint64_t segment_seq = 0;
};

// Publishes a consistent cut of the replica to its vault. Idempotent and
// safe to call while the filesystem is mounted and in use.
Result<PublishStats> publish(vfs::Replica& replica);
// Tests only: runs between taking the cut and recording it, to interleave
// file operations with a publish deterministically. nullptr clears it.
void set_after_cut_hook_for_tests(std::function<void()> hook);

// publish, then merge other devices' segments. When local changes arrive
// between the two (the merge needs them published), publishes again, a few
// times at most; then the merge is reported postponed.
struct SyncStats {
    PublishStats published;  // summed over the publishes
    vfs::MergeReport merged;
};
Result<SyncStats> sync(vfs::Replica& replica);

// What `coffer status` shows of this device's replica.
struct Summary {
    uint64_t pending_ops = 0;   // operations not published yet
    uint64_t staged_bytes = 0;  // content bytes staged locally, not published yet
    uint64_t last_seq = 0;      // this device's newest segment
    std::string device;         // hex
    std::string device_name;
    uint64_t conflicts = 0;     // conflict copies merges made that are still there
    std::vector<std::string> waiting;  // other devices' segments not applied yet, with why
};
Result<Summary> status(vfs::Replica& replica);

}  // namespace coffer::sync

namespace coffer::store { class Vault; }

namespace coffer::sync {

// Checks every journal segment (chain, authentication), replays the metadata
// into a scratch local state (a temporary folder, removed afterwards), walks
// the tree and reads every block of every file it references. Problems are
// listed by file path where one is known; unreferenced objects are reported
// as orphans (not problems).
struct FsckReport {
    uint64_t segments = 0, objects = 0, chunks = 0, files = 0, orphans = 0;
    std::vector<std::string> tampered;  // "path/in/vault: object … block 3 failed authentication"
    std::vector<std::string> pending;   // referenced vault files that have not arrived
    std::vector<std::string> foreign;   // files in the vault that are not coffer's (ignored)
    bool clean() const { return tampered.empty() && pending.empty(); }
};
Result<FsckReport> fsck(store::Vault& vault, const format::Header& header, const crypto::SecretBytes& master);

}  // namespace coffer::sync
