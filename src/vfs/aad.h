// Associated data of everything the vfs seals in the local state and of the
// wrapped file keys (docs/FORMAT.md, "Keys, nonces and associated data").
// Fixed-size arrays: these are built on every read and write.
#pragma once

#include <array>
#include <cstring>

#include "coffer/util/bytes.h"

namespace coffer::vfs::aad {

using Aad20 = std::array<uint8_t, 20>;

inline Aad20 labelled(const char (&label)[5], const Id128& id) {
    Aad20 a{};
    std::memcpy(a.data(), label, 4);
    std::memcpy(a.data() + 4, id.b.data(), 16);
    return a;
}
inline Aad20 name(const Id128& parent) { return labelled("CFNM", parent); }
inline Aad20 symlink(const Id128& node) { return labelled("CFSL", node); }
inline Aad20 rdev(const Id128& node) { return labelled("CFRD", node); }
inline Aad20 xattr_name(const Id128& node) { return labelled("CFXN", node); }
inline Aad20 xattr_value(const Id128& node) { return labelled("CFXV", node); }

inline std::array<uint8_t, 24> file_key(const Id128& node, uint32_t key_epoch) {
    std::array<uint8_t, 24> a{};
    Aad20 head = labelled("CFFK", node);
    std::memcpy(a.data(), head.data(), head.size());
    put_u32le(a.data() + 20, key_epoch);
    return a;
}

inline std::array<uint8_t, 32> frame(const Id128& node, uint64_t rec_id, uint64_t frame_index) {
    std::array<uint8_t, 32> a{};
    Aad20 head = labelled("CFST", node);
    std::memcpy(a.data(), head.data(), head.size());
    put_u64le(a.data() + 20, rec_id);
    put_u32le(a.data() + 28, static_cast<uint32_t>(frame_index));
    return a;
}

}  // namespace coffer::vfs::aad
