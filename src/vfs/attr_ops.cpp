// Attributes, symlinks, xattrs, statfs.
#include <algorithm>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>

#include "aad.h"
#include "clock.h"
#include "coffer/vfs/access.h"
#include "core.h"

namespace coffer::vfs {

using index::NodeRow;


namespace {
struct timespec to_ts(int64_t ns) {
    struct timespec ts;
    ts.tv_sec = ns / 1000000000;
    ts.tv_nsec = ns % 1000000000;
    if (ts.tv_nsec < 0) {
        ts.tv_nsec += 1000000000;
        ts.tv_sec -= 1;
    }
    return ts;
}
// Times are stored as signed 64-bit nanoseconds (docs/FORMAT.md): 1677-09-21
// to 2262-04-11. Outside that they are clamped, never wrapped around.
int64_t from_ts(const struct timespec& ts) {
    constexpr int64_t kMaxSec = INT64_MAX / 1000000000 - 1;
    if (ts.tv_sec > kMaxSec) return INT64_MAX;
    if (ts.tv_sec < -kMaxSec) return INT64_MIN;
    return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}
}  // namespace

Result<NodeRow> Core::node_locked(Ino ino) {
    COFFER_ASSIGN(auto n, ix_->node(ino));
    if (!n) return make_error(Code::not_found, "no such inode");
    // A deleted node keeps its row as a tomb; to this device it is gone
    // once nothing holds it open or looked up.
    if (n->nlink == 0 && ino != kRootIno && !lookups_.count(ino) && !open_count_.count(ino))
        return make_error(Code::not_found, "no such inode");
    return std::move(*n);
}

Result<Attr> Core::attr_of(const NodeRow& n) {
    Attr a;
    a.ino = n.ino;
    a.mode = n.mode;
    a.nlink = n.nlink;
    a.uid = n.uid;
    a.gid = n.gid_owner;
    a.size = S_ISDIR(n.mode) ? 4096 : n.size;
    a.atime = to_ts(n.atime);
    a.mtime = to_ts(n.mtime);
    a.ctime = to_ts(n.ctime);
    if (!n.rdev_sealed.empty()) {
        auto r = names_.open_rdev(n.gid, n.rdev_sealed);
        if (!r.ok())
            return make_error(Code::corrupt,
                              "local index: the device number of " + path_of(n.ino) + " failed authentication");
        a.rdev = *r;
    }
    if (S_ISREG(n.mode)) {
        auto alloc = ix_->allocated(n.ino);
        uint64_t bytes = alloc.ok() ? *alloc : 0;
        if (bytes > n.size) bytes = n.size;
        a.blocks = (bytes + 511) / 512;
    } else {
        a.blocks = S_ISDIR(n.mode) ? 8 : 0;
    }
    return a;
}

Result<Attr> Core::attr_locked(Ino ino) {
    COFFER_ASSIGN(NodeRow n, node_locked(ino));
    return attr_of(n);
}

Result<Attr> Core::getattr(Ino ino) {
    MutexLock lk(mu_);
    return attr_locked(ino);
}

Result<Attr> Core::setattr(Ino ino, const SetAttrReq& req, const Ctx& ctx) {
    ChangeGate::Change change;
    if (req.size) change = gate_.begin_change(ino);
    MutexLock lk(mu_);
    OpScope scope(*this);
    COFFER_TRY(scope.begin(OpScope::Space::frees));
    COFFER_ASSIGN(NodeRow n, node_locked(ino));
    int64_t now = now_ns();
    if (req.size) {
        if (S_ISDIR(n.mode)) return make_error(Code::is_dir, "is a directory");
        if (!S_ISREG(n.mode)) return make_error(Code::invalid, "not a regular file");
        COFFER_TRY(truncate_locked(n, *req.size));
        if (req.mtime == SetAttrReq::Time::keep && !kernel_times_) {
            COFFER_TRY(ix_->update_size_times(ino, n.size, now, now, true));
        }
        COFFER_ASSIGN(n, node_locked(ino));
    }
    format::OpSetAttr op;
    op.node = n.gid;
    if (req.mode) {
        op.mask |= format::kSetMode;
        op.mode = *req.mode & 07777;
    }
    if (req.kill_privileges && !S_ISDIR(n.mode)) {
        const uint32_t base = req.mode ? (*req.mode & 07777) : (n.mode & 07777);
        const uint32_t kept = mode_without_privileges(base);
        if (kept != base || req.mode) {
            op.mask |= format::kSetMode;
            op.mode = kept;
        }
    }
    if (req.uid) {
        op.mask |= format::kSetUid;
        op.uid = *req.uid;
    }
    if (req.gid) {
        op.mask |= format::kSetGid;
        op.gid = *req.gid;
    }
    if (req.atime != SetAttrReq::Time::keep) {
        op.mask |= format::kSetAtime;
        op.times.atime_ns = req.atime == SetAttrReq::Time::now ? now : from_ts(req.atime_val);
    }
    if (req.mtime != SetAttrReq::Time::keep) {
        op.mask |= format::kSetMtime;
        op.times.mtime_ns = req.mtime == SetAttrReq::Time::now ? now : from_ts(req.mtime_val);
    }
    if (op.mask != 0 || req.ctime) {
        op.mask |= format::kSetCtime;
        // With the write-back cache the kernel keeps a regular file's ctime
        // and sends it when it changes it; a setattr without one (the
        // kernel dropping setuid bits before a write) leaves it as it is.
        if (req.ctime)
            op.times.ctime_ns = from_ts(*req.ctime);
        else
            op.times.ctime_ns = kernel_times_ && S_ISREG(n.mode) ? n.ctime : now;
        if (n.nlink == 0 && !req.size && op.mask == format::kSetCtime) {
            // The kernel sends one such setattr after every unlink with the
            // write-back cache (the new ctime of the unlinked inode): not
            // journaled, ctime is this device's own. Anything else about a
            // deleted node is journaled: another device's edit may bring it
            // back, and every device must then hold the same node.
            COFFER_TRY(apply_op(format::Op{clock_.next(), op}));
        } else {
            COFFER_TRY(record(format::Op{clock_.next(), op}));
        }
        if (req.size && (op.mask & format::kSetMtime)) {
            // A truncate with an explicit mtime: the content change carries it.
            COFFER_ASSIGN(NodeRow after, node_locked(ino));
            COFFER_TRY(ix_->update_size_times(ino, after.size, op.times.mtime_ns, op.times.ctime_ns, true));
        }
    }
    (void)ctx;
    COFFER_ASSIGN(Attr a, attr_locked(ino));
    COFFER_TRY(scope.commit());
    return a;
}

Result<std::string> Core::readlink(Ino ino) {
    MutexLock lk(mu_);
    COFFER_ASSIGN(NodeRow n, node_locked(ino));
    if (!S_ISLNK(n.mode)) return make_error(Code::invalid, "not a symlink");
    auto t = names_.open_symlink(n.gid, n.link_sealed);
    if (!t.ok()) return make_error(Code::corrupt, "local index: symlink " + path_of(ino) + " failed authentication");
    return std::string(t->begin(), t->end());
}

Result<StatFs> Core::statfs() {
    MutexLock lk(mu_);
    struct statvfs sv;
    StatFs s;
    if (::statvfs(opts_.state_dir.c_str(), &sv) == 0) {
        s.block_size = sv.f_frsize;
        s.blocks = sv.f_blocks;
        s.blocks_free = sv.f_bfree;
        s.blocks_avail = sv.f_bavail;
        s.files_free = sv.f_ffree;
    }
    COFFER_ASSIGN(uint64_t nodes, ix_->node_count());
    s.files = nodes + s.files_free;
    return s;
}

// ---------------------------------------------------------------- xattrs
namespace {
// Names coffer does not keep: POSIX ACLs (system.*; they would need
// FUSE_CAP_POSIX_ACL to be enforced: refuse rather than pretend) and SELinux
// labels. Reading them says "not supported" rather than "no such attribute":
// ls -l then stops asking for every file of the mount (coreutils remembers
// a device that lacks ACL or label support), a round trip per name and file.
bool unsupported_xattr(std::string_view name) {
    return name.rfind("system.", 0) == 0 || name == "security.selinux";
}

Status check_xattr_name(std::string_view name) {
    if (name.empty()) return make_error(Code::invalid, "empty xattr name");
    if (name.size() > format::kMaxXattrName) return Error{Code::too_big, ERANGE, "xattr name too long"};
    if (unsupported_xattr(name)) return Error{Code::invalid, EOPNOTSUPP, "xattr not supported"};
    // Linux knows these namespaces (setxattr(2)); any other prefix is refused
    // as ext4 refuses it, and a namespace needs a name after its dot.
    for (std::string_view ns : {"user.", "trusted.", "security."}) {
        if (name.rfind(ns, 0) == 0) {
            if (name.size() == ns.size()) return make_error(Code::invalid, "xattr name is only a namespace");
            return {};
        }
    }
    return Error{Code::invalid, EOPNOTSUPP, "xattr namespace not supported"};
}
}  // namespace

Status Core::setxattr(Ino ino, std::string_view name, ByteSpan value, int flags) {
    MutexLock lk(mu_);
    COFFER_TRY(check_xattr_name(name));
    if (value.size() > format::kMaxXattrValue) return Error{Code::too_big, E2BIG, "xattr value too large"};
    OpScope scope(*this);
    COFFER_TRY(scope.begin());
    COFFER_ASSIGN(NodeRow n, node_locked(ino));
    COFFER_ASSIGN(auto existing, ix_->xattr(ino, names_.tag(n.gid, name)));
    if ((flags & XATTR_CREATE) && existing) return make_error(Code::exists, "xattr exists");
    if ((flags & XATTR_REPLACE) && !existing) return make_error(Code::no_data, "no such xattr");
    format::OpSetXattr op{n.gid, std::string(name), Bytes(value.begin(), value.end())};
    COFFER_TRY(record(format::Op{clock_.next(), op}));
    return scope.commit();
}

void Core::mark_xattrs(Ino ino) {
    MutexLock lk(xattr_bits_mu_);
    const size_t word = static_cast<size_t>(ino / 64);
    if (word >= xattr_bits_.size()) xattr_bits_.resize(std::max(word + 1, xattr_bits_.size() * 2), 0);
    xattr_bits_[word] |= uint64_t{1} << (ino % 64);
}

bool Core::may_have_xattrs(Ino ino) const {
    MutexLock lk(xattr_bits_mu_);
    const size_t word = static_cast<size_t>(ino / 64);
    return word < xattr_bits_.size() && (xattr_bits_[word] >> (ino % 64) & 1) != 0;
}

// Not known to have xattrs: ENODATA without mu_ or the index (an inode the
// kernel asks about exists; an unknown number also gets ENODATA here).
Result<Bytes> Core::getxattr(Ino ino, std::string_view name) {
    if (unsupported_xattr(name)) return Error{Code::invalid, EOPNOTSUPP, "xattr not supported"};
    if (!may_have_xattrs(ino)) return make_error(Code::no_data, "no such xattr");
    MutexLock lk(mu_);
    COFFER_ASSIGN(NodeRow n, node_locked(ino));
    COFFER_ASSIGN(auto x, ix_->xattr(ino, names_.tag(n.gid, name)));
    if (!x) return make_error(Code::no_data, "no such xattr");
    auto v = names_.open_xattr_value(n.gid, x->value_sealed);
    if (!v.ok()) return make_error(Code::corrupt, "local index: xattr of " + path_of(ino) + " failed authentication");
    return std::move(*v);
}

Result<std::vector<std::string>> Core::listxattr(Ino ino) {
    MutexLock lk(mu_);
    COFFER_ASSIGN(NodeRow n, node_locked(ino));
    COFFER_ASSIGN(auto rows, ix_->xattrs(ino));
    std::vector<std::string> names;
    for (const auto& x : rows) {
        auto nm = names_.open_xattr_name(n.gid, x.name_sealed);
        if (!nm.ok()) return make_error(Code::corrupt, "local index: xattr of " + path_of(ino) + " failed authentication");
        names.emplace_back(nm->begin(), nm->end());
    }
    return names;
}

Status Core::removexattr(Ino ino, std::string_view name) {
    MutexLock lk(mu_);
    COFFER_TRY(check_xattr_name(name));
    OpScope scope(*this);
    COFFER_TRY(scope.begin(OpScope::Space::frees));
    COFFER_ASSIGN(NodeRow n, node_locked(ino));
    COFFER_ASSIGN(auto existing, ix_->xattr(ino, names_.tag(n.gid, name)));
    if (!existing) return make_error(Code::no_data, "no such xattr");
    COFFER_TRY(record(format::Op{clock_.next(), format::OpRemoveXattr{n.gid, std::string(name)}}));
    return scope.commit();
}

}  // namespace coffer::vfs
