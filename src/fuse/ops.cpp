// Low-level FUSE trampolines: each turns a request into one vfs call and its
// result into one reply (request.h), as libfuse's passthrough_hp does. Errors
// become errno here (reply_error) and nowhere else. The file operations are
// in file_ops.cpp.
#include <sys/statvfs.h>

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "request.h"

namespace coffer::fuse {
namespace {

// ---- the operations ----

void op_init(void* userdata, fuse_conn_info* conn) {
    auto& ctx = *static_cast<OpsContext*>(userdata);
    if (conn->capable & FUSE_CAP_READDIRPLUS) conn->want |= FUSE_CAP_READDIRPLUS;
    // Without atomic O_TRUNC the kernel sends setattr(size=0) for open(O_TRUNC),
    // so truncation goes through the one path that records it. Splice adds
    // nothing for sealed data. The first KILLPRIV would leave coffer to
    // guess who may keep setuid bits; its second version (below) says.
    conn->want &= ~(FUSE_CAP_ATOMIC_O_TRUNC | FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE |
                    FUSE_CAP_SPLICE_MOVE | FUSE_CAP_HANDLE_KILLPRIV | FUSE_CAP_WRITEBACK_CACHE);
    // Write-back caching (SessionOptions::writeback_cache, on unless
    // -o no_writeback_cache): writes reach the
    // daemon merged into page runs, and the kernel keeps size, mtime and
    // ctime of open files itself, handing times over with setattr.
    if (ctx.writeback_allowed && !ctx.read_only && (conn->capable & FUSE_CAP_WRITEBACK_CACHE)) {
        conn->want |= FUSE_CAP_WRITEBACK_CACHE;
        ctx.writeback = true;
    }
    ctx.fs->set_kernel_owns_file_times(ctx.writeback);
    // The kernel then leaves dropping set-user-ID and set-group-ID to coffer
    // and asks two fewer questions per file written (wire.h). Read-only
    // mounts change nothing, so there is nothing to drop.
    if (ctx.wire.kernel_offers_killpriv_v2.load() && !ctx.read_only) ctx.wire.want_killpriv_v2 = true;
    conn->max_write = kMaxWrite;
    // The kernel takes the smaller of this and the read-ahead the mount has
    // when it reads the reply, which may be after Session::mount raised it.
    conn->max_readahead = ctx.read_ahead_kb != 0 ? ctx.read_ahead_kb * 1024 : kMaxReadahead;
}

void op_lookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
    guarded(req, "lookup", [&]() -> Status {
        if (checks(req)) COFFER_TRY(permissions(req).lookup(caller_of(req), parent));
        auto r = fs_of(req).lookup(parent, name);
        if (!r.ok()) {
            if (r.error().code != Code::not_found) return std::move(r).error();
            // Negative entry: the kernel may cache the absence as long as a positive one.
            fuse_entry_param e{};
            e.entry_timeout = kEntryTimeout;
            fuse_reply_entry(req, &e);
            return {};
        }
        reply_new_entry(req, *r);
        return {};
    });
}

void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
    try {
        fs_of(req).forget(ino, nlookup);
    } catch (...) {
        log::error("forget: unexpected exception");
    }
    fuse_reply_none(req);
}

void op_forget_multi(fuse_req_t req, size_t count, fuse_forget_data* forgets) {
    try {
        for (size_t i = 0; i < count; ++i) fs_of(req).forget(forgets[i].ino, forgets[i].nlookup);
    } catch (...) {
        log::error("forget: unexpected exception");
    }
    fuse_reply_none(req);
}

void op_getattr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
    guarded(req, "getattr", [&]() -> Status {
        COFFER_ASSIGN(vfs::Attr a, fs_of(req).getattr(ino));
        struct stat st;
        to_stat(a, st);
        fuse_reply_attr(req, &st, kAttrTimeout);
        return {};
    });
}

void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat* attr, int to_set, fuse_file_info* fi) {
    if (refuse_if_read_only(req)) return;
    guarded(req, "setattr", [&]() -> Status {
        vfs::SetAttrReq r;
        if (to_set & FUSE_SET_ATTR_MODE) r.mode = attr->st_mode & 07777;
        if (to_set & FUSE_SET_ATTR_UID) r.uid = attr->st_uid;
        if (to_set & FUSE_SET_ATTR_GID) r.gid = attr->st_gid;
        if (to_set & FUSE_SET_ATTR_SIZE) r.size = static_cast<uint64_t>(attr->st_size);
        if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
            r.atime = vfs::SetAttrReq::Time::now;
        } else if (to_set & FUSE_SET_ATTR_ATIME) {
            r.atime = vfs::SetAttrReq::Time::set;
            r.atime_val = attr->st_atim;
        }
        if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
            r.mtime = vfs::SetAttrReq::Time::now;
        } else if (to_set & FUSE_SET_ATTR_MTIME) {
            r.mtime = vfs::SetAttrReq::Time::set;
            r.mtime_val = attr->st_mtim;
        }
        if (to_set & FUSE_SET_ATTR_CTIME) r.ctime = attr->st_ctim;
        const bool killpriv_v2 = context(req).wire.killpriv_v2.load();
        if (killpriv_v2 && wire::kill_suidgid()) r.kill_privileges = true;
        vfs::settle_empty_setattr(r, killpriv_v2);
        if (fi) r.fh = fi->fh;
        if (checks(req))
            COFFER_TRY(permissions(req).setattr(caller_of(req), ino, r, fi != nullptr, context(req).writeback));
        COFFER_ASSIGN(vfs::Attr a, fs_of(req).setattr(ino, r, ctx_of(req)));
        struct stat st;
        to_stat(a, st);
        fuse_reply_attr(req, &st, kAttrTimeout);
        return {};
    });
}

void op_readlink(fuse_req_t req, fuse_ino_t ino) {
    guarded(req, "readlink", [&]() -> Status {
        COFFER_ASSIGN(std::string target, fs_of(req).readlink(ino));
        fuse_reply_readlink(req, target.c_str());
        return {};
    });
}

void op_mknod(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, dev_t rdev) {
    if (refuse_if_read_only(req)) return;
    guarded(req, "mknod", [&]() -> Status {
        if (checks(req)) COFFER_TRY(permissions(req).create(caller_of(req), parent));
        COFFER_ASSIGN(vfs::Attr a, fs_of(req).mknod(parent, name, mode, rdev, ctx_of(req)));
        reply_new_entry(req, a);
        return {};
    });
}

void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode) {
    if (refuse_if_read_only(req)) return;
    guarded(req, "mkdir", [&]() -> Status {
        if (checks(req)) COFFER_TRY(permissions(req).create(caller_of(req), parent));
        COFFER_ASSIGN(vfs::Attr a, fs_of(req).mkdir(parent, name, mode, ctx_of(req)));
        reply_new_entry(req, a);
        return {};
    });
}

void op_symlink(fuse_req_t req, const char* target, fuse_ino_t parent, const char* name) {
    if (refuse_if_read_only(req)) return;
    guarded(req, "symlink", [&]() -> Status {
        if (checks(req)) COFFER_TRY(permissions(req).create(caller_of(req), parent));
        COFFER_ASSIGN(vfs::Attr a, fs_of(req).symlink(parent, name, target, ctx_of(req)));
        reply_new_entry(req, a);
        return {};
    });
}

void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t new_parent, const char* new_name) {
    if (refuse_if_read_only(req)) return;
    guarded(req, "link", [&]() -> Status {
        if (checks(req)) COFFER_TRY(permissions(req).link(caller_of(req), ino, new_parent));
        COFFER_ASSIGN(vfs::Attr a, fs_of(req).link(ino, new_parent, new_name));
        reply_new_entry(req, a);
        return {};
    });
}

void op_unlink(fuse_req_t req, fuse_ino_t parent, const char* name) {
    if (refuse_if_read_only(req)) return;
    guarded(req, "unlink", [&]() -> Status {
        if (checks(req)) COFFER_TRY(permissions(req).remove(caller_of(req), parent, name));
        COFFER_TRY(fs_of(req).unlink(parent, name));
        fuse_reply_err(req, 0);
        return {};
    });
}

void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char* name) {
    if (refuse_if_read_only(req)) return;
    guarded(req, "rmdir", [&]() -> Status {
        if (checks(req)) COFFER_TRY(permissions(req).remove(caller_of(req), parent, name));
        COFFER_TRY(fs_of(req).rmdir(parent, name));
        fuse_reply_err(req, 0);
        return {};
    });
}

void op_rename(fuse_req_t req, fuse_ino_t parent, const char* name, fuse_ino_t new_parent,
               const char* new_name, unsigned int flags) {
    if (refuse_if_read_only(req)) return;
    guarded(req, "rename", [&]() -> Status {
        if (checks(req))
            COFFER_TRY(permissions(req).rename(caller_of(req), parent, name, new_parent, new_name, flags));
        COFFER_TRY(fs_of(req).rename(parent, name, new_parent, new_name, flags));
        fuse_reply_err(req, 0);
        return {};
    });
}

void op_opendir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    guarded(req, "opendir", [&]() -> Status {
        if (checks(req)) COFFER_TRY(permissions(req).opendir(caller_of(req), ino));
        COFFER_ASSIGN(uint64_t fh, fs_of(req).opendir(ino));
        fi->fh = fh;
        // The kernel may keep the listing: only this daemon changes the tree
        // while mounted, through this mount, and the kernel drops a cached
        // listing when an entry of that directory is created or removed.
        fi->cache_readdir = 1;
        fi->keep_cache = 1;
        auto& fs = fs_of(req);  // the reply frees req, whatever it returns
        if (fuse_reply_open(req, fi) != 0) (void)fs.releasedir(ino, fh);
        return {};
    });
}

// Fills a reply buffer of the size the kernel asked for; the filler says
// "full" (false) for the first entry that does not fit.
void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi, bool plus) {
    guarded(req, plus ? "readdirplus" : "readdir", [&]() -> Status {
        auto buf = std::make_unique_for_overwrite<char[]>(std::max<size_t>(size, 1));
        size_t pos = 0;
        vfs::DirFiller fill = [&](const vfs::DirEntry& e, const vfs::Attr* attr, uint64_t next) -> bool {
            size_t room = size - pos;
            size_t need;
            if (plus) {
                fuse_entry_param ep{};
                if (attr) {
                    ep = entry_of(*attr);
                } else {
                    // No attributes: nodeid 0 tells the kernel not to link the entry.
                    ep.attr.st_ino = e.ino;
                    ep.attr.st_mode = e.mode;
                }
                need = fuse_add_direntry_plus(req, buf.get() + pos, room, e.name.c_str(), &ep,
                                              static_cast<off_t>(next));
            } else {
                struct stat st{};
                st.st_ino = e.ino;
                st.st_mode = e.mode;
                need = fuse_add_direntry(req, buf.get() + pos, room, e.name.c_str(), &st, static_cast<off_t>(next));
            }
            if (need > room) return false;
            pos += need;
            return true;
        };
        COFFER_TRY(fs_of(req).readdir(ino, fi->fh, static_cast<uint64_t>(off), plus, fill));
        fuse_reply_buf(req, buf.get(), pos);
        return {};
    });
}

void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
    do_readdir(req, ino, size, off, fi, false);
}

void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
    do_readdir(req, ino, size, off, fi, true);
}

void op_releasedir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    guarded(req, "releasedir", [&]() -> Status {
        COFFER_TRY(fs_of(req).releasedir(ino, fi->fh));
        fuse_reply_err(req, 0);
        return {};
    });
}

void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int, fuse_file_info* fi) {
    guarded(req, "fsyncdir", [&]() -> Status {
        COFFER_TRY(fs_of(req).fsyncdir(ino, fi->fh));
        fuse_reply_err(req, 0);
        return {};
    });
}

void op_statfs(fuse_req_t req, fuse_ino_t) {
    guarded(req, "statfs", [&]() -> Status {
        COFFER_ASSIGN(vfs::StatFs s, fs_of(req).statfs());
        struct statvfs st{};
        st.f_bsize = s.block_size;
        st.f_frsize = s.block_size;
        st.f_blocks = s.blocks;
        st.f_bfree = s.blocks_free;
        st.f_bavail = s.blocks_avail;
        st.f_files = s.files;
        st.f_ffree = s.files_free;
        st.f_favail = s.files_free;
        st.f_namemax = s.name_max;
        fuse_reply_statfs(req, &st);
        return {};
    });
}

void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char* name, const char* value, size_t size, int flags) {
    if (refuse_if_read_only(req)) return;
    guarded(req, "setxattr", [&]() -> Status {
        if (checks(req)) COFFER_TRY(permissions(req).change_xattr(caller_of(req), ino, name));
        ByteSpan v(reinterpret_cast<const uint8_t*>(value), size);
        COFFER_TRY(fs_of(req).setxattr(ino, name, v, flags));
        fuse_reply_err(req, 0);
        return {};
    });
}

// size 0 is a probe for the needed size; a buffer too small is ERANGE.
void reply_sized(fuse_req_t req, size_t want, const char* data, size_t n) {
    if (want == 0)
        fuse_reply_xattr(req, n);
    else if (want < n)
        fuse_reply_err(req, ERANGE);
    else
        fuse_reply_buf(req, data, n);
}

void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
    guarded(req, "getxattr", [&]() -> Status {
        if (checks(req)) COFFER_TRY(permissions(req).getxattr(caller_of(req), ino, name));
        COFFER_ASSIGN(Bytes v, fs_of(req).getxattr(ino, name));
        reply_sized(req, size, reinterpret_cast<const char*>(v.data()), v.size());
        return {};
    });
}

void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
    guarded(req, "listxattr", [&]() -> Status {
        COFFER_ASSIGN(std::vector<std::string> names, fs_of(req).listxattr(ino));
        std::string joined;
        for (const auto& n : names) {
            joined += n;
            joined.push_back('\0');
        }
        reply_sized(req, size, joined.data(), joined.size());
        return {};
    });
}

void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char* name) {
    if (refuse_if_read_only(req)) return;
    guarded(req, "removexattr", [&]() -> Status {
        if (checks(req)) COFFER_TRY(permissions(req).change_xattr(caller_of(req), ino, name));
        COFFER_TRY(fs_of(req).removexattr(ino, name));
        fuse_reply_err(req, 0);
        return {};
    });
}

// access(2) and chdir: the kernel asks only without default_permissions.
// Root too is checked here (execute needs some execute bit).
void op_access(fuse_req_t req, fuse_ino_t ino, int mask) {
    if ((mask & W_OK) && context(req).read_only) {
        fuse_reply_err(req, EROFS);
        return;
    }
    guarded(req, "access", [&]() -> Status {
        COFFER_TRY(permissions(req).access(caller_of(req), ino, mask));
        fuse_reply_err(req, 0);
        return {};
    });
}

fuse_lowlevel_ops make_ops() {
    fuse_lowlevel_ops o{};
    o.init = op_init;
    o.lookup = op_lookup;
    o.forget = op_forget;
    o.forget_multi = op_forget_multi;
    o.getattr = op_getattr;
    o.setattr = op_setattr;
    o.readlink = op_readlink;
    o.mknod = op_mknod;
    o.mkdir = op_mkdir;
    o.unlink = op_unlink;
    o.rmdir = op_rmdir;
    o.symlink = op_symlink;
    o.rename = op_rename;
    o.link = op_link;
    o.opendir = op_opendir;
    o.readdir = op_readdir;
    o.readdirplus = op_readdirplus;
    o.releasedir = op_releasedir;
    o.fsyncdir = op_fsyncdir;
    o.statfs = op_statfs;
    o.setxattr = op_setxattr;
    o.getxattr = op_getxattr;
    o.listxattr = op_listxattr;
    o.removexattr = op_removexattr;
    o.access = op_access;
    add_file_ops(o);
    return o;
}

}  // namespace

const fuse_lowlevel_ops& lowlevel_ops() {
    static const fuse_lowlevel_ops ops = make_ops();
    return ops;
}

}  // namespace coffer::fuse
