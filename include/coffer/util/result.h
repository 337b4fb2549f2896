// Error values inside coffer; errno only at the FUSE and CLI boundaries.
#pragma once

#include <cerrno>
#include <string>
#include <utility>
#include <variant>

namespace coffer {

enum class Code {
    not_found,       // ENOENT
    exists,          // EEXIST
    not_dir,         // ENOTDIR
    is_dir,          // EISDIR
    not_empty,       // ENOTEMPTY
    invalid,         // EINVAL: bad argument
    name_too_long,   // ENAMETOOLONG
    permission,      // EPERM / EACCES (sys_errno says which)
    no_space,        // ENOSPC
    too_big,         // EFBIG / E2BIG / ERANGE (sys_errno says which)
    no_data,         // ENODATA (xattr absent)
    busy,            // EBUSY / already mounted / locked
    io,              // EIO from the OS (sys_errno may hold the real errno)
    corrupt,         // authentication failed or malformed vault bytes: tampering
    pending,         // a vault file has not arrived yet (sync client lagging)
    wrong_key,       // no key slot opens with the given password / recovery key
    unsupported,     // unknown format version or feature flag
    rolled_back,     // the vault is older than what this device has seen
    usage,           // bad command line
    internal,        // a bug
};

// Positive errno for `code` (used by the FUSE boundary).
int to_errno(Code code, int sys_errno = 0) noexcept;
const char* code_name(Code code) noexcept;

struct Error {
    Code code = Code::internal;
    int sys_errno = 0;       // the OS errno that caused it, 0 if none
    std::string context;     // human text; never holds secrets

    int to_errno() const noexcept { return coffer::to_errno(code, sys_errno); }
    std::string message() const;  // "context: strerror" or "context"
};

Error make_error(Code code, std::string context);
// From errno (captured by the caller right after the failing call).
Error sys_error(int err, std::string context);

template <class T>
class [[nodiscard]] Result {
public:
    Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}
    Result(Error error) : v_(std::in_place_index<1>, std::move(error)) {}

    bool ok() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return ok(); }
    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    const Error& error() const& { return std::get<1>(v_); }
    Error&& error() && { return std::get<1>(std::move(v_)); }

private:
    std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
public:
    Result() = default;
    Result(Error error) : err_(std::move(error)), ok_(false) {}
    bool ok() const noexcept { return ok_; }
    explicit operator bool() const noexcept { return ok_; }
    const Error& error() const& { return err_; }
    Error&& error() && { return std::move(err_); }

private:
    Error err_;
    bool ok_ = true;
};

using Status = Result<void>;
inline Status ok_status() { return {}; }

}  // namespace coffer

// COFFER_TRY(expr): return the error of a failed Result<void>-like expression.
#define COFFER_TRY(expr)                                          \
    do {                                                          \
        auto&& coffer_try_r_ = (expr);                            \
        if (!coffer_try_r_.ok()) return std::move(coffer_try_r_).error(); \
    } while (0)

#define COFFER_CAT2_(a, b) a##b
#define COFFER_CAT_(a, b) COFFER_CAT2_(a, b)
// COFFER_ASSIGN(decl, expr): `decl = std::move(value)` or return the error.
#define COFFER_ASSIGN(decl, expr) COFFER_ASSIGN_IMPL_(COFFER_CAT_(coffer_r_, __LINE__), decl, expr)
#define COFFER_ASSIGN_IMPL_(tmp, decl, expr)            \
    auto tmp = (expr);                                  \
    if (!tmp.ok()) return std::move(tmp).error();       \
    decl = std::move(tmp).value()
