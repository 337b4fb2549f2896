// The file trampolines: open, create, read, write and what follows them.
#include <fcntl.h>

#include <algorithm>
#include <memory>

#include "request.h"

namespace coffer::fuse {
namespace {

// Drops set-user-ID and set-group-ID of a file being written
// (FUSE_HANDLE_KILLPRIV_V2). A write's reply carries no attributes, so the
// kernel is told to forget the mode it has cached.
Status drop_privileges(fuse_req_t req, fuse_ino_t ino) {
    COFFER_ASSIGN(bool dropped, vfs::drop_privileges(fs_of(req), ino, ctx_of(req)));
    if (auto* se = context(req).se; dropped && se)
        (void)fuse_lowlevel_notify_inval_inode(se, ino, -1, 0);  // attributes only
    return {};
}

bool opens_for_writing(int flags) { return (flags & O_ACCMODE) != O_RDONLY || (flags & O_TRUNC); }

// With write-back caching the kernel reads pages of files opened write-only
// (to fill partly written pages) and places O_APPEND writes itself.
int handle_flags(fuse_req_t req, int flags) {
    if (!context(req).writeback) return flags;
    if ((flags & O_ACCMODE) == O_WRONLY) flags = (flags & ~O_ACCMODE) | O_RDWR;
    return flags & ~O_APPEND;
}

void op_open(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    if (opens_for_writing(fi->flags) && refuse_if_read_only(req)) return;
    guarded(req, "open", [&]() -> Status {
        if (checks(req)) {
            // execve opens with the kernel's __FMODE_EXEC flag (0x20, unused
            // by any O_ flag): the kernel checked only that some execute bit
            // is set.
            constexpr int kFmodeExec = 0x20;
            COFFER_TRY(permissions(req).open(caller_of(req), ino, fi->flags, (fi->flags & kFmodeExec) != 0));
        }
        COFFER_ASSIGN(uint64_t fh, fs_of(req).open(ino, handle_flags(req, fi->flags)));
        // Only this daemon changes file contents while mounted: what the
        // kernel cached for an earlier open is still right.
        fi->keep_cache = 1;
        fi->noflush = 1;  // see op_create
        fi->fh = fh;
        auto& fs = fs_of(req);  // the reply frees req, whatever it returns
        if (fuse_reply_open(req, fi) != 0) (void)fs.release(ino, fh);
        return {};
    });
}

void op_create(fuse_req_t req, fuse_ino_t parent, const char* name, mode_t mode, fuse_file_info* fi) {
    if (refuse_if_read_only(req)) return;
    guarded(req, "create", [&]() -> Status {
        if (checks(req)) COFFER_TRY(permissions(req).create(caller_of(req), parent));
        COFFER_ASSIGN(vfs::Filesystem::Created c,
                      fs_of(req).create(parent, name, mode, handle_flags(req, fi->flags), ctx_of(req)));
        fi->fh = c.fh;
        // No FLUSH request on close: it would cost every file a round trip
        // for nothing but reporting a lost batch, which the next fsync (the
        // call that promises durability) reports anyway.
        fi->noflush = 1;
        fuse_entry_param e = entry_of(c.attr);
        auto& fs = fs_of(req);  // the reply frees req, whatever it returns
        if (fuse_reply_create(req, &e, fi) != 0) {
            (void)fs.release(c.attr.ino, c.fh);
            fs.forget(c.attr.ino, 1);
        }
        return {};
    });
}

// A small read is widened to the fill window around it (cache_fill.h): the
// kernel gets the bytes it asked for, and the rest goes to its page cache.
void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info* fi) {
    auto& ctx = context(req);  // the request is gone after the reply: take
    auto& fs = fs_of(req);     // what the fill needs from it first
    guarded(req, "read", [&]() -> Status {
        const uint64_t o = static_cast<uint64_t>(off);
        const auto w = ctx.fill.widen(o, size);
        if (!w) {
            auto buf = std::make_unique_for_overwrite<uint8_t[]>(std::max<size_t>(size, 1));
            COFFER_ASSIGN(size_t n, fs.read(ino, fi->fh, o, size, buf.get()));
            fuse_reply_buf(req, reinterpret_cast<const char*>(buf.get()), n);
            return {};
        }
        auto buf = std::make_unique_for_overwrite<uint8_t[]>(w->end - w->begin);
        auto wide = fs.read(ino, fi->fh, w->begin, w->end - w->begin, buf.get());
        if (!wide.ok()) {
            // The window may reach bytes the request does not (another
            // object, pending or damaged): the request alone decides.
            COFFER_ASSIGN(size_t n, fs.read(ino, fi->fh, o, size, buf.get()));
            fuse_reply_buf(req, reinterpret_cast<const char*>(buf.get()), n);
            return {};
        }
        const uint64_t n = *wide;
        const uint64_t a = std::min<uint64_t>(o - w->begin, n), b = std::min<uint64_t>(o - w->begin + size, n);
        fuse_reply_buf(req, reinterpret_cast<const char*>(buf.get() + a), b - a);
        // req is answered: nothing below may reply again (guarded would).
        if (a != 0 || b != n) ctx.fill.offer(ino, *w, std::move(buf), a, b, n);
        return {};
    });
}

void op_write(fuse_req_t req, fuse_ino_t ino, const char* data, size_t size, off_t off, fuse_file_info* fi) {
    if (refuse_if_read_only(req)) return;
    guarded(req, "write", [&]() -> Status {
        ByteSpan bytes(reinterpret_cast<const uint8_t*>(data), size);
        // Before the bytes, as Linux does: a failed write has still dropped them.
        if (context(req).wire.killpriv_v2.load() && wire::kill_suidgid()) COFFER_TRY(drop_privileges(req, ino));
        COFFER_ASSIGN(size_t n, fs_of(req).write(ino, fi->fh, static_cast<uint64_t>(off), bytes));
        fuse_reply_write(req, n);
        return {};
    });
}

void op_flush(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    // With the write-back cache the kernel sends FLUSH on every close even
    // with noflush (after writing the file's pages and times back, which is
    // all a close needs). ENOSYS makes it stop asking, as noflush does
    // without that cache: a round trip less per file; a lost batch is still
    // reported by the next fsync, the call that promises durability, and
    // coffer keeps no POSIX locks that a flush would have to drop.
    if (context(req).writeback) {
        fuse_reply_err(req, ENOSYS);
        return;
    }
    guarded(req, "flush", [&]() -> Status {
        COFFER_TRY(fs_of(req).flush(ino, fi->fh));
        fuse_reply_err(req, 0);
        return {};
    });
}

void op_release(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
    guarded(req, "release", [&]() -> Status {
        COFFER_TRY(fs_of(req).release(ino, fi->fh));
        fuse_reply_err(req, 0);
        return {};
    });
}

void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, fuse_file_info* fi) {
    guarded(req, "fsync", [&]() -> Status {
        COFFER_TRY(fs_of(req).fsync(ino, fi->fh, datasync != 0));
        fuse_reply_err(req, 0);
        return {};
    });
}

void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len, fuse_file_info* fi) {
    if (refuse_if_read_only(req)) return;
    guarded(req, "fallocate", [&]() -> Status {
        COFFER_TRY(fs_of(req).fallocate(ino, fi->fh, mode, static_cast<uint64_t>(off), static_cast<uint64_t>(len)));
        fuse_reply_err(req, 0);
        return {};
    });
}

void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence, fuse_file_info* fi) {
    // With write-back caching, data may still sit in the kernel's page cache
    // where the daemon's map of data and holes cannot see it (the kernel does
    // not write it back before asking). ENOSYS makes the kernel answer
    // SEEK_DATA/SEEK_HOLE itself from then on, as POSIX allows: the whole
    // file is data, the only hole is at the end.
    if (context(req).writeback) {
        fuse_reply_err(req, ENOSYS);
        return;
    }
    guarded(req, "lseek", [&]() -> Status {
        COFFER_ASSIGN(uint64_t pos, fs_of(req).lseek(ino, fi->fh, static_cast<uint64_t>(off), whence));
        fuse_reply_lseek(req, static_cast<off_t>(pos));
        return {};
    });
}

}  // namespace

void add_file_ops(fuse_lowlevel_ops& o) {
    o.open = op_open;
    o.create = op_create;
    o.read = op_read;
    o.write = op_write;
    o.flush = op_flush;
    o.release = op_release;
    o.fsync = op_fsync;
    o.fallocate = op_fallocate;
    o.lseek = op_lseek;
}

}  // namespace coffer::fuse
