// Byte buffers and bounds-checked little-endian encoding of vault bytes.
// Every parser reads through ByteReader, which refuses to read past the end
// before any length it read is used.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "coffer/util/result.h"

namespace coffer {

using Bytes = std::vector<uint8_t>;
using ByteSpan = std::span<const uint8_t>;
using MutByteSpan = std::span<uint8_t>;

// A global 128-bit id (node, object, device, version).
struct Id128 {
    std::array<uint8_t, 16> b{};
    bool is_zero() const noexcept;
    std::string hex() const;
    static Result<Id128> from_hex(std::string_view s);
    friend bool operator==(const Id128&, const Id128&) = default;
    friend auto operator<=>(const Id128&, const Id128&) = default;
};

std::string to_hex(ByteSpan data);
// Exactly n lowercase hex digits: how coffer names vault files (ids, sequence numbers).
bool is_lower_hex(std::string_view s, size_t n);
Result<Bytes> from_hex(std::string_view hex);
inline ByteSpan as_bytes(std::string_view s) {
    return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

class ByteWriter {
public:
    void u8(uint8_t v) { buf_.push_back(v); }
    void u16(uint16_t v);
    void u32(uint32_t v);
    void u64(uint64_t v);
    void i64(int64_t v) { u64(static_cast<uint64_t>(v)); }
    void raw(ByteSpan data) { buf_.insert(buf_.end(), data.begin(), data.end()); }
    void id(const Id128& id) { raw(id.b); }
    // u32 length prefix, then the bytes.
    void blob(ByteSpan data);
    void str(std::string_view s) { blob(as_bytes(s)); }
    Bytes& bytes() { return buf_; }
    Bytes take() { return std::move(buf_); }
    size_t size() const { return buf_.size(); }

private:
    Bytes buf_;
};

// Reads little-endian values; every read checks the remaining length first
// and fails with Code::corrupt (never reads out of bounds).
class ByteReader {
public:
    explicit ByteReader(ByteSpan data, const char* what = "record") : data_(data), what_(what) {}
    Result<uint8_t> u8();
    Result<uint16_t> u16();
    Result<uint32_t> u32();
    Result<uint64_t> u64();
    Result<int64_t> i64();
    Result<Id128> id();
    Result<ByteSpan> raw(size_t n);
    // u32 length prefix; refuses a length above `max` or past the end.
    Result<ByteSpan> blob(size_t max = 1u << 30);
    Result<std::string> str(size_t max = 1u << 20);
    size_t remaining() const { return data_.size() - pos_; }
    size_t position() const { return pos_; }
    bool at_end() const { return pos_ == data_.size(); }
    Status expect_end() const;

private:
    Error short_read(size_t want) const;
    ByteSpan data_;
    size_t pos_ = 0;
    const char* what_;
};

void put_u32le(uint8_t* p, uint32_t v);
void put_u64le(uint8_t* p, uint64_t v);
uint32_t get_u32le(const uint8_t* p);
uint64_t get_u64le(const uint8_t* p);

}  // namespace coffer
