// Journal operations: type u8 | hlc u64 | payload (u32 length + bytes).
// Layout and limits: docs/FORMAT.md, "Journal operations".
//
// Each op's field order is written down once, in `fields()`, and walked by
// both the writer and the reader, so encoder and parser cannot drift apart.
#include "coffer/format/ops.h"

#include <cstdio>
#include <optional>
#include <string_view>

namespace coffer::format {

namespace {

constexpr uint8_t kFirstType = 1;
constexpr uint8_t kLastType = std::variant_size_v<OpBody>;
constexpr const char* kOpNames[] = {"create",     "link",        "unlink",   "rename",
                                    "setattr",    "set_content", "setxattr", "removexattr"};
static_assert(std::size(kOpNames) == kLastType);

constexpr size_t kExtentSize = 8 + 16 + 8 + 4;
constexpr uint32_t kKnownRenameFlags = kRenameNoReplace | kRenameExchange;
constexpr uint32_t kKnownSetAttrMask = kSetMode | kSetUid | kSetGid | kSetAtime | kSetMtime | kSetCtime;

class FieldWriter {
public:
    explicit FieldWriter(ByteWriter& w) : w_(w) {}
    void id(const char*, const Id128& v) { w_.id(v); }
    void u32(const char*, const uint32_t& v) { w_.u32(v); }
    void u64(const char*, const uint64_t& v) { w_.u64(v); }
    void i64(const char*, const int64_t& v) { w_.i64(v); }
    void entry_name(const char*, const std::string& s) { w_.str(s); }
    void xattr_name(const char*, const std::string& s) { w_.str(s); }
    void text(const char*, const std::string& s, size_t) { w_.str(s); }
    void blob(const char*, const Bytes& b, size_t) { w_.blob(b); }
    void id_since(uint8_t, const char*, const Id128& v) { w_.id(v); }
    void times(const Times& t) {
        w_.i64(t.atime_ns);
        w_.i64(t.mtime_ns);
        w_.i64(t.ctime_ns);
    }
    void extents(const std::vector<ExtentRef>& xs) {
        w_.u32(static_cast<uint32_t>(xs.size()));
        for (const ExtentRef& x : xs) {
            w_.u64(x.index);
            w_.id(x.object);
            w_.u64(x.offset);
            w_.u32(x.plain_len);
        }
    }
    // Flag checks only matter when reading.
    void check_flags(const char*, uint32_t, uint32_t) {}

private:
    ByteWriter& w_;
};

// Reads fields in order; the first failure is kept and later reads are no-ops.
class FieldReader {
public:
    FieldReader(ByteSpan payload, const char* op, uint8_t version)
        : r_(payload, "payload"), op_(op), version_(version) {}

    void id(const char* f, Id128& v) { take(f, r_.id(), v); }
    void u32(const char* f, uint32_t& v) { take(f, r_.u32(), v); }
    void u64(const char* f, uint64_t& v) { take(f, r_.u64(), v); }
    void i64(const char* f, int64_t& v) { take(f, r_.i64(), v); }
    void entry_name(const char* f, std::string& s) {
        if (!take(f, r_.str(kMaxName), s)) return;
        if (s.empty()) return fail(f, "empty name");
        if (s == "." || s == "..") return fail(f, "name \"" + s + "\" is not allowed");
        if (s.find('/') != std::string::npos) return fail(f, "name contains '/'");
        if (s.find('\0') != std::string::npos) return fail(f, "name contains NUL");
    }
    void xattr_name(const char* f, std::string& s) {
        if (!take(f, r_.str(kMaxXattrName), s)) return;
        if (s.empty()) return fail(f, "empty xattr name");
        if (s.find('\0') != std::string::npos) return fail(f, "xattr name contains NUL");
    }
    void text(const char* f, std::string& s, size_t max) { take(f, r_.str(max), s); }
    // A field that journal version `since` added: absent (zero) before it.
    void id_since(uint8_t since, const char* f, Id128& v) {
        if (version_ >= since) id(f, v);
    }
    void blob(const char* f, Bytes& b, size_t max) {
        ByteSpan s;
        if (take(f, r_.blob(max), s)) b.assign(s.begin(), s.end());
    }
    void times(Times& t) {
        i64("atime", t.atime_ns);
        i64("mtime", t.mtime_ns);
        i64("ctime", t.ctime_ns);
    }
    void extents(std::vector<ExtentRef>& xs) {
        uint32_t n = 0;
        if (!take("extent count", r_.u32(), n)) return;
        if (n > kMaxExtents) return fail("extent count", std::to_string(n) + " exceeds 2^24");
        // Bound the count by the bytes present before allocating for it.
        if (n > r_.remaining() / kExtentSize)
            return fail("extent count", std::to_string(n) + " extents do not fit in " +
                                            std::to_string(r_.remaining()) + " bytes");
        xs.resize(n);
        for (uint32_t i = 0; i < n && !err_; ++i) {
            ExtentRef& x = xs[i];
            u64("extent index", x.index);
            id("extent object", x.object);
            u64("extent offset", x.offset);
            u32("extent plain_len", x.plain_len);
            if (err_) return;
            if (x.plain_len == 0) return fail("extent plain_len", "zero at extent " + std::to_string(i));
            if (i > 0 && x.index <= xs[i - 1].index)
                return fail("extent index", "not strictly increasing at extent " + std::to_string(i));
        }
    }
    // Flags from a newer writer are refused, never silently dropped.
    void check_flags(const char* f, uint32_t value, uint32_t known) {
        if (err_ || !(value & ~known)) return;
        err_ = make_error(Code::unsupported, std::string("journal operation ") + op_ + ": " + f +
                                                 " bits " + to_hex_u32(value & ~known) +
                                                 " are newer than this coffer");
    }

    Status finish() {
        if (err_) return std::move(*err_);
        if (!r_.at_end())
            return make_error(Code::corrupt, std::string("journal operation ") + op_ + ": " +
                                                 std::to_string(r_.remaining()) +
                                                 " trailing bytes in payload");
        return {};
    }
    void fail(const char* field, const std::string& why) {
        if (!err_)
            err_ = make_error(Code::corrupt, std::string("journal operation ") + op_ + ": field " + field +
                                                 ": " + why);
    }

private:
    template <class T, class V>
    bool take(const char* f, Result<T> r, V& out) {
        if (err_) return false;
        if (!r.ok()) {
            fail(f, r.error().context);
            return false;
        }
        out = std::move(r).value();
        return true;
    }
    static std::string to_hex_u32(uint32_t v) {
        char buf[16];
        std::snprintf(buf, sizeof buf, "0x%x", v);
        return buf;
    }

    ByteReader r_;
    const char* op_;
    uint8_t version_;
    std::optional<Error> err_;
};

// The payload of each op, in the order of its struct in ops.h. `O` is const
// for the writer.
template <class A, class O>
void fields(A& a, O& o) {
    using T = std::remove_const_t<O>;
    if constexpr (std::is_same_v<T, OpCreate>) {
        a.id("node", o.node);
        a.id("parent", o.parent);
        a.entry_name("name", o.name);
        a.u32("mode", o.mode);
        a.u32("uid", o.uid);
        a.u32("gid", o.gid);
        a.u64("rdev", o.rdev);
        a.times(o.times);
        a.text("symlink_target", o.symlink_target, kMaxSymlink);
    } else if constexpr (std::is_same_v<T, OpLink>) {
        a.id("node", o.node);
        a.id("parent", o.parent);
        a.entry_name("name", o.name);
        a.i64("ctime", o.ctime_ns);
    } else if constexpr (std::is_same_v<T, OpUnlink>) {
        a.id("parent", o.parent);
        a.entry_name("name", o.name);
        a.id("node", o.node);
        a.id_since(2, "seen", o.seen);
    } else if constexpr (std::is_same_v<T, OpRename>) {
        a.id("src_parent", o.src_parent);
        a.entry_name("src_name", o.src_name);
        a.id("dst_parent", o.dst_parent);
        a.entry_name("dst_name", o.dst_name);
        a.u32("flags", o.flags);
        a.check_flags("flags", o.flags, kKnownRenameFlags);
        a.id("node", o.node);
        a.id("replaced", o.replaced);
        a.id_since(2, "replaced_seen", o.replaced_seen);
    } else if constexpr (std::is_same_v<T, OpSetAttr>) {
        a.id("node", o.node);
        a.u32("mask", o.mask);
        a.check_flags("mask", o.mask, kKnownSetAttrMask);
        a.u32("mode", o.mode);
        a.u32("uid", o.uid);
        a.u32("gid", o.gid);
        a.times(o.times);
    } else if constexpr (std::is_same_v<T, OpSetContent>) {
        a.id("node", o.node);
        a.id("base_version", o.base_version);
        a.id("version", o.version);
        a.u64("size", o.size);
        a.i64("mtime", o.mtime_ns);
        a.i64("ctime", o.ctime_ns);
        a.u32("key_epoch", o.key_epoch);
        a.blob("wrapped_key", o.wrapped_key, kMaxWrappedKey);
        a.extents(o.extents);
    } else if constexpr (std::is_same_v<T, OpSetXattr>) {
        a.id("node", o.node);
        a.xattr_name("name", o.name);
        a.blob("value", o.value, kMaxXattrValue);
    } else {
        static_assert(std::is_same_v<T, OpRemoveXattr>);
        a.id("node", o.node);
        a.xattr_name("name", o.name);
    }
}

template <class T>
Result<OpBody> decode_body(ByteSpan payload, const char* name, uint8_t version) {
    T body;
    FieldReader a(payload, name, version);
    fields(a, body);
    COFFER_TRY(a.finish());
    if constexpr (std::is_same_v<T, OpRename>) {
        if ((body.flags & kRenameNoReplace) && (body.flags & kRenameExchange))
            return make_error(Code::corrupt, "journal operation rename: field flags: noreplace and exchange both set");
    }
    return OpBody(std::move(body));
}

}  // namespace

void encode_op(ByteWriter& w, const Op& op) {
    w.u8(static_cast<uint8_t>(op.body.index() + kFirstType));
    w.u64(op.hlc);
    ByteWriter payload;
    FieldWriter a(payload);
    std::visit([&](const auto& body) { fields(a, body); }, op.body);
    w.blob(payload.bytes());
}

Result<Op> decode_op(ByteReader& r, uint8_t version) {
    COFFER_ASSIGN(uint8_t type, r.u8());
    COFFER_ASSIGN(uint64_t hlc, r.u64());
    COFFER_ASSIGN(ByteSpan payload, r.blob());
    if (type > kLastType)
        return make_error(Code::unsupported,
                          "journal operation type " + std::to_string(type) + " is newer than this coffer");
    if (type < kFirstType) return make_error(Code::corrupt, "journal operation type 0 is not defined");

    const char* name = kOpNames[type - kFirstType];
    Result<OpBody> body = make_error(Code::internal, "unreachable");
    switch (type) {
        case 1: body = decode_body<OpCreate>(payload, name, version); break;
        case 2: body = decode_body<OpLink>(payload, name, version); break;
        case 3: body = decode_body<OpUnlink>(payload, name, version); break;
        case 4: body = decode_body<OpRename>(payload, name, version); break;
        case 5: body = decode_body<OpSetAttr>(payload, name, version); break;
        case 6: body = decode_body<OpSetContent>(payload, name, version); break;
        case 7: body = decode_body<OpSetXattr>(payload, name, version); break;
        case 8: body = decode_body<OpRemoveXattr>(payload, name, version); break;
    }
    static_assert(kLastType == 8, "add the new op type to the switch above");
    if (!body.ok()) return std::move(body).error();
    return Op{hlc, std::move(body).value()};
}

Bytes encode_op(const Op& op) {
    ByteWriter w;
    encode_op(w, op);
    return w.take();
}

Result<Op> decode_op(ByteSpan bytes) {
    ByteReader r(bytes, "journal operation");
    COFFER_ASSIGN(Op op, decode_op(r));
    COFFER_TRY(r.expect_end());
    return op;
}

}  // namespace coffer::format
