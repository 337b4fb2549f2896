#include "request.h"

#include "report_once.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

namespace coffer::fuse {

void to_stat(const vfs::Attr& a, struct stat& st) {
    st = {};
    st.st_ino = a.ino;
    st.st_mode = a.mode;
    st.st_nlink = a.nlink;
    st.st_uid = a.uid;
    st.st_gid = a.gid;
    st.st_rdev = a.rdev;
    st.st_size = static_cast<off_t>(a.size);
    st.st_blocks = static_cast<blkcnt_t>(a.blocks);
    st.st_blksize = 4096;
    st.st_atim = a.atime;
    st.st_mtim = a.mtime;
    st.st_ctim = a.ctime;
}

fuse_entry_param entry_of(const vfs::Attr& a) {
    fuse_entry_param e{};
    e.ino = a.ino;
    e.generation = 0;
    to_stat(a, e.attr);
    e.attr_timeout = kAttrTimeout;
    e.entry_timeout = kEntryTimeout;
    return e;
}

namespace {
// Tampering is reported once per operation and message (the message names
// the file), not at every retry of a reader.
ReportOnce g_tampering(4096);
}  // namespace

void reply_error(fuse_req_t req, const char* op, const Error& e) {
    switch (e.code) {
        case Code::corrupt:
            if (std::string m = e.message(); g_tampering.first(std::string(op) + '\0' + m))
                log::error(std::string(op) + ": " + m);
            break;
        case Code::internal:
        case Code::rolled_back:
            log::error(std::string(op) + ": " + e.message());
            break;
        case Code::pending:
            log::warn(std::string(op) + ": " + e.message());
            break;
        case Code::io:
            log::warn(std::string(op) + ": " + e.message());
            break;
        default:
            break;
    }
    fuse_reply_err(req, e.to_errno());
}

vfs::Caller caller_of(fuse_req_t req) {
    const fuse_ctx* c = fuse_req_ctx(req);
    vfs::Caller k{c->uid, c->gid, {}};
    // The supplementary groups, read from /proc by libfuse once, when a
    // check first needs them.
    k.in_supplementary = [req, groups = std::shared_ptr<std::vector<gid_t>>()](uint32_t g) mutable {
        if (!groups) {
            groups = std::make_shared<std::vector<gid_t>>(32);
            int n = fuse_req_getgroups(req, static_cast<int>(groups->size()), groups->data());
            if (n > static_cast<int>(groups->size())) {
                groups->resize(static_cast<size_t>(n));
                n = fuse_req_getgroups(req, n, groups->data());
            }
            groups->resize(n > 0 ? std::min(static_cast<size_t>(n), groups->size()) : 0);
        }
        return std::find(groups->begin(), groups->end(), g) != groups->end();
    };
    return k;
}

void reply_new_entry(fuse_req_t req, const vfs::Attr& a) {
    fuse_entry_param e = entry_of(a);
    auto& fs = fs_of(req);  // the reply frees req, whatever it returns
    if (fuse_reply_entry(req, &e) != 0) fs.forget(a.ino, 1);
}

}  // namespace coffer::fuse
