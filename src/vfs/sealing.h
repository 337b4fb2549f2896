// What the local index keeps of names, symlink targets, device numbers and
// xattrs: sealed with the names subkey, bound to their node (or, for names,
// to the parent), plus the keyed lookup tag of a name (docs/FORMAT.md,
// "Keys, nonces and associated data"). Holds only immutable keys: every
// method is thread-safe without a lock.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "coffer/crypto/crypto.h"
#include "coffer/util/bytes.h"
#include "coffer/util/result.h"

namespace coffer::vfs {

class MetaSealer {
public:
    explicit MetaSealer(const crypto::SecretBytes& master);

    // Keyed hash of (parent, name): how an entry or xattr is found without
    // opening every name.
    Bytes tag(const Id128& parent, std::string_view name) const;

    Bytes seal_name(const Id128& parent, std::string_view name) const;
    Result<std::string> open_name(const Id128& parent, ByteSpan sealed) const;

    Bytes seal_symlink(const Id128& node, std::string_view target) const;
    Result<std::string> open_symlink(const Id128& node, ByteSpan sealed) const;

    Bytes seal_rdev(const Id128& node, uint64_t rdev) const;
    Result<uint64_t> open_rdev(const Id128& node, ByteSpan sealed) const;

    Bytes seal_xattr_name(const Id128& node, std::string_view name) const;
    Result<std::string> open_xattr_name(const Id128& node, ByteSpan sealed) const;
    Bytes seal_xattr_value(const Id128& node, ByteSpan value) const;
    Result<Bytes> open_xattr_value(const Id128& node, ByteSpan sealed) const;

private:
    crypto::SecretBytes names_key_, tag_key_;
};

}  // namespace coffer::vfs
