// Metadata operations: what the journal records and what the index replays.
// Nodes are named by global 128-bit ids; inode numbers never appear here.
// Byte layout: docs/FORMAT.md, "Journal operations".
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "coffer/util/bytes.h"

namespace coffer::format {

// Hybrid logical clock: (milliseconds since epoch << 16) | logical counter.
using Hlc = uint64_t;

struct Times {
    int64_t atime_ns = 0;
    int64_t mtime_ns = 0;
    int64_t ctime_ns = 0;
    friend bool operator==(const Times&, const Times&) = default;
};

// Create a node and link it into parent under name (mkdir, mknod, create, symlink).
struct OpCreate {
    Id128 node;
    Id128 parent;
    std::string name;
    uint32_t mode = 0;  // includes the S_IFMT type bits
    uint32_t uid = 0, gid = 0;
    uint64_t rdev = 0;
    Times times;
    std::string symlink_target;  // only for S_IFLNK
    friend bool operator==(const OpCreate&, const OpCreate&) = default;
};
// Add a hard link.
struct OpLink {
    Id128 node;
    Id128 parent;
    std::string name;
    int64_t ctime_ns = 0;
    friend bool operator==(const OpLink&, const OpLink&) = default;
};
// Remove a directory entry (unlink, rmdir); `node` is what it pointed at.
struct OpUnlink {
    Id128 parent;
    std::string name;
    Id128 node;
    Id128 seen;  // the node's content version the remover saw (journal 2; zero before)
    friend bool operator==(const OpUnlink&, const OpUnlink&) = default;
};
constexpr uint32_t kRenameNoReplace = 1;
constexpr uint32_t kRenameExchange = 2;
struct OpRename {
    Id128 src_parent;
    std::string src_name;
    Id128 dst_parent;
    std::string dst_name;
    uint32_t flags = 0;
    Id128 node;      // the node moved from src
    Id128 replaced;  // the node that was at dst (zero if none); with exchange, moved to src
    Id128 replaced_seen;  // replaced's content version the renamer saw (journal 2; zero before)
    friend bool operator==(const OpRename&, const OpRename&) = default;
};
constexpr uint32_t kSetMode = 1, kSetUid = 2, kSetGid = 4, kSetAtime = 8, kSetMtime = 16, kSetCtime = 32;
struct OpSetAttr {
    Id128 node;
    uint32_t mask = 0;
    uint32_t mode = 0, uid = 0, gid = 0;
    Times times;
    friend bool operator==(const OpSetAttr&, const OpSetAttr&) = default;
};
// One published extent: bytes [index*extent_size, +plain_len) of the file are
// the chunk at `offset` in object `object`.
struct ExtentRef {
    uint64_t index = 0;
    Id128 object;
    uint64_t offset = 0;
    uint32_t plain_len = 0;
    friend bool operator==(const ExtentRef&, const ExtentRef&) = default;
};
// The whole content of a file at one version. Extents not listed are holes.
struct OpSetContent {
    Id128 node;
    Id128 base_version;  // the version this one replaced (zero for the first)
    Id128 version;       // random id of this version
    uint64_t size = 0;
    int64_t mtime_ns = 0;
    int64_t ctime_ns = 0;
    uint32_t key_epoch = 0;
    Bytes wrapped_key;   // the file's data key, wrapped (see FORMAT.md)
    std::vector<ExtentRef> extents;  // sorted by index, unique
    friend bool operator==(const OpSetContent&, const OpSetContent&) = default;
};
struct OpSetXattr {
    Id128 node;
    std::string name;
    Bytes value;
    friend bool operator==(const OpSetXattr&, const OpSetXattr&) = default;
};
struct OpRemoveXattr {
    Id128 node;
    std::string name;
    friend bool operator==(const OpRemoveXattr&, const OpRemoveXattr&) = default;
};

using OpBody = std::variant<OpCreate, OpLink, OpUnlink, OpRename, OpSetAttr, OpSetContent, OpSetXattr,
                            OpRemoveXattr>;

struct Op {
    Hlc hlc = 0;
    OpBody body;
    friend bool operator==(const Op&, const Op&) = default;
};

// Serialise one op (type byte, hlc, payload) and parse it back; parse checks
// every length before use and fails with Code::corrupt / Code::unsupported.
// Journal version of the operations encode_op writes; decode_op reads
// `version` and every older one.
constexpr uint8_t kOpsVersion = 2;
void encode_op(ByteWriter& w, const Op& op);
Result<Op> decode_op(ByteReader& r, uint8_t version = kOpsVersion);
Bytes encode_op(const Op& op);
Result<Op> decode_op(ByteSpan bytes);

// Limits enforced by the parser (and by the vfs before it records an op).
constexpr size_t kMaxName = 255;
constexpr size_t kMaxSymlink = 4095;
constexpr size_t kMaxXattrName = 255;
constexpr size_t kMaxXattrValue = 65536;
constexpr size_t kMaxWrappedKey = 128;
constexpr uint32_t kMaxExtents = 1u << 24;
// Smallest encoded op (type, hlc, empty payload length): bounds op counts.
constexpr size_t kMinEncodedOp = 1 + 8 + 4;

}  // namespace coffer::format
