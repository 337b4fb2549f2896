// Internal to src/fuse/: what every trampoline uses to read its request and
// reply to it (ops.cpp, file_ops.cpp).
#pragma once

#ifndef FUSE_USE_VERSION
#define FUSE_USE_VERSION 34
#endif
#include <fuse_lowlevel.h>

#include <cerrno>
#include <exception>
#include <new>
#include <string>

#include "coffer/util/log.h"
#include "ops.h"

namespace coffer::fuse {

inline OpsContext& context(fuse_req_t req) { return *static_cast<OpsContext*>(fuse_req_userdata(req)); }
inline vfs::Filesystem& fs_of(fuse_req_t req) { return *context(req).fs; }

inline vfs::Ctx ctx_of(fuse_req_t req) {
    const fuse_ctx* c = fuse_req_ctx(req);
    return vfs::Ctx{c->uid, c->gid, c->umask};
}

void to_stat(const vfs::Attr& a, struct stat& st);

fuse_entry_param entry_of(const vfs::Attr& a);

// The one place an Error becomes an errno. Tampering and missing vault files
// are logged (the vfs message names the file); ordinary errors are not.
void reply_error(fuse_req_t req, const char* op, const Error& e);

// Runs `fn`, which replies on success and returns the Error otherwise.
template <class Fn>
void guarded(fuse_req_t req, const char* op, Fn&& fn) noexcept {
    try {
        Status st = fn();
        if (!st.ok()) reply_error(req, op, st.error());
    } catch (const std::bad_alloc&) {
        fuse_reply_err(req, ENOMEM);
    } catch (const std::exception& ex) {
        log::error(std::string(op) + ": unexpected exception: " + ex.what());
        fuse_reply_err(req, EIO);
    } catch (...) {
        log::error(std::string(op) + ": unexpected exception");
        fuse_reply_err(req, EIO);
    }
}

inline bool refuse_if_read_only(fuse_req_t req) {
    if (!context(req).read_only) return false;
    fuse_reply_err(req, EROFS);
    return true;
}

// ---- the daemon's permission checks (OpsContext::check_access)
//
// Without default_permissions the kernel checks nothing but execute bits of
// regular files: each operation asks vfs::Permissions what the kernel would
// have checked.

inline bool checks(fuse_req_t req) { return context(req).check_access; }
inline vfs::Permissions& permissions(fuse_req_t req) { return context(req).permissions; }

vfs::Caller caller_of(fuse_req_t req);

// A new node's entry; if the kernel did not take it (interrupted request),
// give back the lookup count the vfs added.
void reply_new_entry(fuse_req_t req, const vfs::Attr& a);

// The file operations (file_ops.cpp) in the table.
void add_file_ops(fuse_lowlevel_ops& o);

}  // namespace coffer::fuse
