// A reference writer of journal version 1 (docs/FORMAT.md), which coffer no
// longer writes but must still read: the tests build old segments and
// operations with it. It is checked against the published vector segment_v1,
// made by the coffer of journal version 1.
#pragma once

#include <cstring>
#include <stdexcept>
#include <variant>

#include "coffer/crypto/crypto.h"
#include "coffer/format/segment.h"

namespace coffer::testing {

// An op as journal version 1 framed it: unlink without `seen`, rename without
// `replaced_seen` (both must be zero: version 1 has no room for them); every
// other type is the same in both versions.
inline void encode_op_v1(ByteWriter& w, const format::Op& op) {
    Bytes enc = format::encode_op(op);
    const bool unlink = std::holds_alternative<format::OpUnlink>(op.body);
    const bool rename = std::holds_alternative<format::OpRename>(op.body);
    if (unlink || rename) {
        // The field journal version 2 added is the last 16 bytes of the payload.
        const Id128 added = unlink ? std::get<format::OpUnlink>(op.body).seen
                                   : std::get<format::OpRename>(op.body).replaced_seen;
        if (!added.is_zero()) throw std::logic_error("journal version 1 cannot hold a seen version");
        enc.resize(enc.size() - 16);
        put_u32le(enc.data() + 9, get_u32le(enc.data() + 9) - 16);
    }
    w.raw(enc);
}

inline Bytes encode_op_v1(const format::Op& op) {
    ByteWriter w;
    encode_op_v1(w, op);
    return w.take();
}

// The body of a version 1 segment: no device name after the key epoch.
inline Bytes segment_body_v1(const format::Segment& s) {
    ByteWriter body;
    body.u64(s.hlc);
    body.u32(s.key_epoch);
    body.u32(static_cast<uint32_t>(s.merged.size()));
    for (const auto& e : s.merged) {
        body.id(e.device);
        body.u64(e.seq);
        body.raw(e.head);
    }
    body.u32(static_cast<uint32_t>(s.ops.size()));
    for (const auto& op : s.ops) encode_op_v1(body, op);
    return body.take();
}

inline Bytes segment_prefix(uint8_t version, const format::Segment& s) {
    ByteWriter prefix;
    prefix.raw(as_bytes("COFFERJ"));
    prefix.u8(version);
    prefix.id(s.device);
    prefix.u64(s.seq);
    prefix.raw(s.prev);
    return prefix.take();
}

// A whole version 1 segment file (s.device_name must be empty).
inline Bytes encode_segment_v1(const crypto::SecretBytes& key, const format::Segment& s) {
    if (!s.device_name.empty()) throw std::logic_error("journal version 1 has no device name");
    Bytes out = segment_prefix(1, s);
    Bytes sealed = crypto::seal(key, segment_body_v1(s), out);
    out.insert(out.end(), sealed.begin(), sealed.end());
    return out;
}

}  // namespace coffer::testing
