#include "coffer/util/bytes.h"

#include <cstring>

namespace coffer {

namespace {
constexpr char kHex[] = "0123456789abcdef";
int hex_val(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
}  // namespace

bool Id128::is_zero() const noexcept {
    for (auto x : b)
        if (x) return false;
    return true;
}

std::string Id128::hex() const { return to_hex(b); }

Result<Id128> Id128::from_hex(std::string_view s) {
    if (s.size() != 32) return make_error(Code::invalid, "id must be 32 hex digits");
    COFFER_ASSIGN(Bytes raw, coffer::from_hex(s));
    Id128 id;
    std::memcpy(id.b.data(), raw.data(), 16);
    return id;
}

bool is_lower_hex(std::string_view s, size_t n) {
    if (s.size() != n) return false;
    for (char c : s)
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    return true;
}

std::string to_hex(ByteSpan data) {
    std::string s;
    s.reserve(data.size() * 2);
    for (uint8_t x : data) {
        s.push_back(kHex[x >> 4]);
        s.push_back(kHex[x & 15]);
    }
    return s;
}

Result<Bytes> from_hex(std::string_view hex) {
    if (hex.size() % 2) return make_error(Code::invalid, "odd hex length");
    Bytes out(hex.size() / 2);
    for (size_t i = 0; i < out.size(); ++i) {
        int hi = hex_val(hex[2 * i]), lo = hex_val(hex[2 * i + 1]);
        if (hi < 0 || lo < 0) return make_error(Code::invalid, "bad hex digit");
        out[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
    return out;
}

void put_u32le(uint8_t* p, uint32_t v) {
    for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
void put_u64le(uint8_t* p, uint64_t v) {
    for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint32_t get_u32le(const uint8_t* p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; --i) v = v << 8 | p[i];
    return v;
}
uint64_t get_u64le(const uint8_t* p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = v << 8 | p[i];
    return v;
}

void ByteWriter::u16(uint16_t v) {
    buf_.push_back(static_cast<uint8_t>(v));
    buf_.push_back(static_cast<uint8_t>(v >> 8));
}
void ByteWriter::u32(uint32_t v) {
    uint8_t t[4];
    put_u32le(t, v);
    buf_.insert(buf_.end(), t, t + 4);
}
void ByteWriter::u64(uint64_t v) {
    uint8_t t[8];
    put_u64le(t, v);
    buf_.insert(buf_.end(), t, t + 8);
}
void ByteWriter::blob(ByteSpan data) {
    u32(static_cast<uint32_t>(data.size()));
    raw(data);
}

Error ByteReader::short_read(size_t want) const {
    return make_error(Code::corrupt, std::string(what_) + ": truncated (wanted " + std::to_string(want) +
                                         " bytes at offset " + std::to_string(pos_) + ", " +
                                         std::to_string(remaining()) + " left)");
}

Result<ByteSpan> ByteReader::raw(size_t n) {
    if (n > remaining()) return short_read(n);
    ByteSpan s = data_.subspan(pos_, n);
    pos_ += n;
    return s;
}
Result<uint8_t> ByteReader::u8() {
    COFFER_ASSIGN(ByteSpan s, raw(1));
    return s[0];
}
Result<uint16_t> ByteReader::u16() {
    COFFER_ASSIGN(ByteSpan s, raw(2));
    return static_cast<uint16_t>(s[0] | s[1] << 8);
}
Result<uint32_t> ByteReader::u32() {
    COFFER_ASSIGN(ByteSpan s, raw(4));
    return get_u32le(s.data());
}
Result<uint64_t> ByteReader::u64() {
    COFFER_ASSIGN(ByteSpan s, raw(8));
    return get_u64le(s.data());
}
Result<int64_t> ByteReader::i64() {
    COFFER_ASSIGN(uint64_t v, u64());
    return static_cast<int64_t>(v);
}
Result<Id128> ByteReader::id() {
    COFFER_ASSIGN(ByteSpan s, raw(16));
    Id128 id;
    std::memcpy(id.b.data(), s.data(), 16);
    return id;
}
Result<ByteSpan> ByteReader::blob(size_t max) {
    COFFER_ASSIGN(uint32_t n, u32());
    if (n > max)
        return make_error(Code::corrupt, std::string(what_) + ": length " + std::to_string(n) +
                                             " exceeds limit " + std::to_string(max));
    return raw(n);
}
Result<std::string> ByteReader::str(size_t max) {
    COFFER_ASSIGN(ByteSpan s, blob(max));
    return std::string(reinterpret_cast<const char*>(s.data()), s.size());
}
Status ByteReader::expect_end() const {
    if (!at_end())
        return make_error(Code::corrupt,
                          std::string(what_) + ": " + std::to_string(remaining()) + " trailing bytes");
    return {};
}

}  // namespace coffer
