// The filesystem as a replica of its vault: what the sync layer needs of it
// beyond the FUSE calls. Publishing goes through three steps, each one call:
// take a consistent cut of the staged state, read the cut's bytes and
// operations, and complete the cut once its objects are in the vault. The
// segment's bytes are handed back with the completion and recorded as the
// publish intent in the same durable commit, so a crash before the segment
// file is written finishes with identical bytes (sync writes the file and
// clears the intent). fsck and `coffer status` ask what the replica holds.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "coffer/crypto/crypto.h"
#include "coffer/format/header.h"
#include "coffer/format/object.h"
#include "coffer/format/segment.h"
#include "coffer/index/index.h"
#include "coffer/util/result.h"
#include "coffer/util/source_file.h"

namespace coffer::store { class Vault; }

namespace coffer::vfs {

using Ino = uint64_t;

// Where the bytes of a file range are: taken under the lock, read without it.
struct ReadPlan {
    Id128 gid;
    Id128 key_owner;  // the node the file key's wrapping is bound to (a conflict copy's original)
    uint32_t key_epoch = 0;
    std::shared_ptr<const crypto::SecretBytes> key;
    std::vector<index::StagingPiece> pieces;            // sorted, non-overlapping
    std::vector<std::shared_ptr<SourceFile>> piece_fds;   // the staging log of each piece
    std::vector<format::ExtentRef> extents;             // sorted by index
};

// What publish needs of one file, captured under the lock.
struct NodeCut {
    Ino ino = 0;
    uint64_t shrinks = 0;  // the file's shrink count at the cut (a publish whose cut predates a shrink is redone)
    uint64_t size = 0;
    int64_t mtime = 0, ctime = 0;
    Id128 version;
    Bytes wrapped_key;
    ReadPlan plan;  // the whole file
};

struct Cut {
    std::vector<NodeCut> nodes;
    int64_t ops_upto = 0;   // pending_ops rows included
    // The pending ops are not held: publish encodes them into the segment
    // (encode_cut_ops) once the objects are written. Decided at the cut:
    std::vector<int64_t> skipped;  // rows left out (about a node removed by then)
    uint64_t ops = 0;              // rows that go into the segment
    size_t ops_bytes = 0;          // their encoded size
    size_t content_bytes = 0;      // bound of the encoded set_content ops publish adds
    uint64_t seq = 0;       // the segment this publish writes
    format::Hash32 prev{};  // hash of this device's previous segment
    format::Hlc hlc = 0;
    std::vector<format::VersionEntry> merged;  // heads at the cut
};

// What a publish made of a cut, per cut node (same order as Cut::nodes).
struct CutResult {
    std::vector<std::vector<format::ExtentRef>> extents;
    std::vector<Id128> versions;
    ByteSpan segment;  // the encoded segment (recorded as the intent)
};

// A segment recorded by complete_cut and not yet known to be in the vault.
struct Intent {
    uint64_t seq = 0;
    Bytes bytes;
};

// The subkeys and identity a publisher seals with.
struct PublishKeys {
    const format::Header& header;
    const Id128& device;
    const std::string& device_name;
    const crypto::SecretBytes& journal_key;
    const crypto::SecretBytes& object_key;
};

// What one merge of other devices' segments did (Replica::merge).
struct MergeReport {
    uint64_t segments = 0;   // other devices' segments applied
    uint64_t ops = 0;        // their operations
    uint64_t redone = 0;     // segments undone and applied again to keep the one order
    uint64_t conflicts = 0;  // conflict copies made and entries renamed aside
    // Segments not applied yet, each with its reason
    // ("journal/<dev>/<seq>: waits for journal/<dev>/<seq>").
    std::vector<std::string> waiting;
    // Local changes were not published yet, so nothing was merged (a merge
    // runs on a state whose every change is in the vault).
    bool postponed = false;
    // What the kernel may hold stale: inodes whose attributes, content or
    // entries changed, and entries (parent, name) added or removed.
    std::vector<Ino> changed_inodes;
    std::vector<std::pair<Ino, std::string>> changed_entries;
};

// A device that wrote to the vault, as far as this device knows.
struct DeviceInfo {
    Id128 id;
    std::string name;
    uint64_t last_seq = 0;      // its newest segment applied here (0: none)
    uint64_t last_hlc = 0;      // that segment's clock (when it was published)
    bool this_device = false;
};

struct ReplicaStatus {
    uint64_t pending_ops = 0;
    uint64_t staged_bytes = 0;
    uint64_t last_seq = 0;
    Id128 device;
    std::string device_name;
    uint64_t conflicts = 0;              // conflict copies still there
    std::vector<std::string> waiting;    // segments the last merge could not apply yet, with why
};

class Replica {
public:
    virtual ~Replica() = default;

    virtual store::Vault& vault() = 0;
    virtual PublishKeys publish_keys() const = 0;
    virtual bool read_only() const = 0;
    // Held by a publisher from the first step to the last: one publish at a time.
    virtual std::mutex& publish_mutex() = 0;

    // ---- publish
    virtual Result<Cut> take_cut() = 0;
    // Unwraps the file's data key into n.plan.key (a cut holds no keys, so a
    // publish of many files keeps one key in memory at a time).
    virtual Status load_key(NodeCut& n) = 0;
    // Reads [off, off+len) of a file as it was at the cut (zeros for holes).
    virtual Status read_cut(const NodeCut& n, uint64_t off, uint64_t len, uint8_t* out) = 0;
    // Adds the cut's pending operations to `out`, read in batches (the lock
    // is held per batch, not for the whole pass).
    virtual Status encode_cut_ops(const Cut& cut, format::SegmentWriter& out) = 0;
    // Installs what was published, records the segment as the intent and
    // this device's newest segment, and commits durably.
    virtual Status complete_cut(const Cut& cut, const CutResult& result) = 0;
    // The recorded intent, if its segment file may not be written yet.
    virtual Result<std::optional<Intent>> intent() = 0;
    // The intent's segment is in the vault.
    virtual Status clear_intent(uint64_t seq, size_t segment_bytes) = 0;

    // ---- merge
    // Applies every other device's segment that is causally ready, in the
    // one order all devices use; needs every local change published first
    // (otherwise postponed). Safe while mounted.
    virtual Result<MergeReport> merge() = 0;
    // A digest of the tree (ids, names, attributes, contents, xattrs):
    // two devices that applied the same segments print the same hex.
    virtual Result<std::string> digest() = 0;
    // Every device this one has applied segments of, and itself.
    virtual Result<std::vector<DeviceInfo>> devices() = 0;
    // Paths of the conflict copies merges made that are still there.
    virtual Result<std::vector<std::string>> conflict_copies() = 0;

    // ---- what the replica holds
    virtual Result<ReplicaStatus> status() = 0;
    // Journal segments missing before later ones of the same device, found
    // by the last replay ("journal/<device>/<seq>"): not delivered yet.
    virtual std::vector<std::string> journal_gaps() = 0;
    // Every object a published extent of a live file refers to.
    virtual Result<std::vector<Id128>> referenced_objects() = 0;
    // Every regular file the index holds, reachable from the root or not.
    virtual Result<std::vector<Ino>> regular_files() = 0;
};

}  // namespace coffer::vfs
