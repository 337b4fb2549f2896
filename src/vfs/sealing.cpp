#include "sealing.h"

#include "aad.h"

namespace coffer::vfs {

namespace {
std::string as_string(const Bytes& b) { return std::string(b.begin(), b.end()); }
}  // namespace

MetaSealer::MetaSealer(const crypto::SecretBytes& master)
    : names_key_(crypto::derive(master, crypto::Subkey::names)),
      tag_key_(crypto::derive(master, crypto::Subkey::name_tag)) {}

Bytes MetaSealer::tag(const Id128& parent, std::string_view name) const {
    Bytes msg(parent.b.begin(), parent.b.end());
    msg.insert(msg.end(), name.begin(), name.end());
    Bytes tag(16);
    crypto::keyed_hash(tag_key_, msg, tag);
    return tag;
}

Bytes MetaSealer::seal_name(const Id128& parent, std::string_view name) const {
    return crypto::seal(names_key_, as_bytes(name), aad::name(parent));
}

Result<std::string> MetaSealer::open_name(const Id128& parent, ByteSpan sealed) const {
    COFFER_ASSIGN(Bytes plain, crypto::open(names_key_, sealed, aad::name(parent)));
    return as_string(plain);
}

Bytes MetaSealer::seal_symlink(const Id128& node, std::string_view target) const {
    return crypto::seal(names_key_, as_bytes(target), aad::symlink(node));
}

Result<std::string> MetaSealer::open_symlink(const Id128& node, ByteSpan sealed) const {
    COFFER_ASSIGN(Bytes plain, crypto::open(names_key_, sealed, aad::symlink(node)));
    return as_string(plain);
}

Bytes MetaSealer::seal_rdev(const Id128& node, uint64_t rdev) const {
    uint8_t b[8];
    put_u64le(b, rdev);
    return crypto::seal(names_key_, ByteSpan(b, 8), aad::rdev(node));
}

Result<uint64_t> MetaSealer::open_rdev(const Id128& node, ByteSpan sealed) const {
    COFFER_ASSIGN(Bytes plain, crypto::open(names_key_, sealed, aad::rdev(node)));
    if (plain.size() != 8) return make_error(Code::corrupt, "a sealed device number has the wrong length");
    return get_u64le(plain.data());
}

Bytes MetaSealer::seal_xattr_name(const Id128& node, std::string_view name) const {
    return crypto::seal(names_key_, as_bytes(name), aad::xattr_name(node));
}

Result<std::string> MetaSealer::open_xattr_name(const Id128& node, ByteSpan sealed) const {
    COFFER_ASSIGN(Bytes plain, crypto::open(names_key_, sealed, aad::xattr_name(node)));
    return as_string(plain);
}

Bytes MetaSealer::seal_xattr_value(const Id128& node, ByteSpan value) const {
    return crypto::seal(names_key_, value, aad::xattr_value(node));
}

Result<Bytes> MetaSealer::open_xattr_value(const Id128& node, ByteSpan sealed) const {
    return crypto::open(names_key_, sealed, aad::xattr_value(node));
}

}  // namespace coffer::vfs
