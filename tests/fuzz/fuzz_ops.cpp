// libFuzzer target: journal operation parser.
// Property: the parser never crashes, and whatever it accepts is canonical
// (encoding the decoded op gives back exactly the bytes it consumed). The
// input is also read as journal version 1: what that accepts has no seen
// versions, and encodes (as the newest version) to an op that decodes the same.
// The body is also run over the seed corpus by tests/unit/format/test_fuzz_regress.cpp.
#include <cstring>

#include "coffer/crypto/crypto.h"
#include "fuzz_entry.h"
#include "coffer/format/ops.h"

namespace coffer::fuzz {

// nullptr when every property holds, otherwise what broke.
const char* fuzz_ops(const uint8_t* data, size_t size) {
    using namespace coffer::format;
    ByteSpan in(data, size);

    // The whole input as one op.
    if (auto op = decode_op(in); op.ok()) {
        if (encode_op(*op) != Bytes(in.begin(), in.end())) return "accepted op is not canonical";
    } else if (op.error().code != Code::corrupt && op.error().code != Code::unsupported) {
        return "decode_op failed with an unexpected code";
    }

    {
        ByteReader r1(in);
        if (auto old = decode_op(r1, 1); old.ok()) {
            if (auto* u = std::get_if<OpUnlink>(&old->body); u && !u->seen.is_zero())
                return "a version 1 unlink has a seen version";
            if (auto* n = std::get_if<OpRename>(&old->body); n && !n->replaced_seen.is_zero())
                return "a version 1 rename has a seen version";
            auto now = decode_op(encode_op(*old));
            if (!now.ok() || !(*now == *old)) return "a version 1 op re-encoded decodes to another";
        } else if (old.error().code != Code::corrupt && old.error().code != Code::unsupported) {
            return "decode_op (version 1) failed with an unexpected code";
        }
    }

    // The input as a stream of ops, as a segment body holds them.
    ByteReader r(in);
    while (!r.at_end()) {
        const size_t start = r.position();
        auto op = decode_op(r);
        if (!op.ok()) break;
        Bytes again = encode_op(*op);
        if (again.size() != r.position() - start ||
            std::memcmp(again.data(), data + start, again.size()) != 0)
            return "op in a stream is not canonical";
    }
    return nullptr;
}

}  // namespace coffer::fuzz

COFFER_FUZZ_ENTRY(coffer::fuzz::fuzz_ops)
