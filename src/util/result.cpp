#include "coffer/util/result.h"

#include <cstring>

namespace coffer {

int to_errno(Code code, int sys_errno) noexcept {
    switch (code) {
        case Code::not_found: return ENOENT;
        case Code::exists: return EEXIST;
        case Code::not_dir: return ENOTDIR;
        case Code::is_dir: return EISDIR;
        case Code::not_empty: return ENOTEMPTY;
        case Code::invalid: return sys_errno ? sys_errno : EINVAL;
        case Code::name_too_long: return ENAMETOOLONG;
        case Code::permission: return sys_errno ? sys_errno : EPERM;
        case Code::no_space: return ENOSPC;
        case Code::too_big: return sys_errno ? sys_errno : EFBIG;
        case Code::no_data: return ENODATA;
        case Code::busy: return EBUSY;
        case Code::io: return sys_errno ? sys_errno : EIO;
        case Code::corrupt: return EIO;
        case Code::pending: return EIO;
        case Code::wrong_key: return EACCES;
        case Code::unsupported: return EPROTO;
        case Code::rolled_back: return EIO;
        case Code::usage: return EINVAL;
        case Code::internal: return EIO;
    }
    return EIO;
}

const char* code_name(Code code) noexcept {
    switch (code) {
        case Code::not_found: return "not found";
        case Code::exists: return "exists";
        case Code::not_dir: return "not a directory";
        case Code::is_dir: return "is a directory";
        case Code::not_empty: return "directory not empty";
        case Code::invalid: return "invalid argument";
        case Code::name_too_long: return "name too long";
        case Code::permission: return "permission denied";
        case Code::no_space: return "no space left";
        case Code::too_big: return "too big";
        case Code::no_data: return "no data";
        case Code::busy: return "busy";
        case Code::io: return "I/O error";
        case Code::corrupt: return "tampered or corrupt";
        case Code::pending: return "pending (not yet synced here)";
        case Code::wrong_key: return "wrong password or key";
        case Code::unsupported: return "unsupported format";
        case Code::rolled_back: return "rolled back";
        case Code::usage: return "usage error";
        case Code::internal: return "internal error";
    }
    return "error";
}

std::string Error::message() const {
    std::string m = context.empty() ? std::string(code_name(code)) : context;
    if (sys_errno != 0) {
        m += ": ";
        m += std::strerror(sys_errno);
    }
    return m;
}

Error make_error(Code code, std::string context) { return Error{code, 0, std::move(context)}; }

Error sys_error(int err, std::string context) {
    Code c = Code::io;
    switch (err) {
        case ENOENT: c = Code::not_found; break;
        case EEXIST: c = Code::exists; break;
        case ENOTDIR: c = Code::not_dir; break;
        case EISDIR: c = Code::is_dir; break;
        case ENOTEMPTY: c = Code::not_empty; break;
        case EINVAL: c = Code::invalid; break;
        case ENAMETOOLONG: c = Code::name_too_long; break;
        case EPERM: case EACCES: case EROFS: c = Code::permission; break;
        case ENOSPC: case EDQUOT: c = Code::no_space; break;
        case EFBIG: case E2BIG: case ERANGE: c = Code::too_big; break;
        case ENODATA: c = Code::no_data; break;
        case EBUSY: c = Code::busy; break;
        default: c = Code::io; break;
    }
    return Error{c, err, std::move(context)};
}

}  // namespace coffer
