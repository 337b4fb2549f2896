// Directory operations: lookup, create nodes, link, unlink, rename, readdir.
#include <linux/fs.h>
#include <sys/stat.h>

#include <cstring>

#include "clock.h"
#include "core.h"

namespace coffer::vfs {

using index::NodeRow;

namespace {
Status check_name(std::string_view name) {
    if (name.size() > format::kMaxName) return make_error(Code::name_too_long, "name longer than 255 bytes");
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string_view::npos)
        return make_error(Code::invalid, "invalid name");
    return {};
}
}  // namespace

Result<std::pair<Ino, NodeRow>> Core::entry_locked(Ino parent, std::string_view name) {
    COFFER_TRY(check_name(name));
    COFFER_ASSIGN(NodeRow p, node_locked(parent));
    if (!S_ISDIR(p.mode)) return make_error(Code::not_dir, "not a directory");
    COFFER_ASSIGN(auto d, ix_->dirent(parent, names_.tag(p.gid, name)));
    if (!d) return make_error(Code::not_found, "no such entry");
    COFFER_ASSIGN(NodeRow child, node_locked(d->child));
    return std::pair<Ino, NodeRow>{d->child, std::move(child)};
}

Result<Attr> Core::lookup(Ino parent, std::string_view name) {
    MutexLock lk(mu_);
    COFFER_ASSIGN(auto e, entry_locked(parent, name));
    COFFER_ASSIGN(Attr a, attr_of(e.second));
    lookups_[e.first] += 1;
    return a;
}

Result<Attr> Core::peek(Ino parent, std::string_view name) {
    MutexLock lk(mu_);
    COFFER_ASSIGN(auto e, entry_locked(parent, name));
    return attr_of(e.second);
}

void Core::forget(Ino ino, uint64_t nlookup) {
    MutexLock lk(mu_);
    auto it = lookups_.find(ino);
    if (it == lookups_.end()) return;
    it->second = it->second > nlookup ? it->second - nlookup : 0;
    if (it->second == 0) {
        lookups_.erase(it);
        maybe_delete(ino);
    }
}

Result<Attr> Core::make_node(Ino parent, std::string_view name, uint32_t mode, uint64_t rdev,
                             std::string_view target, const Ctx& ctx) {
    COFFER_TRY(check_name(name));
    if (target.size() > format::kMaxSymlink) return make_error(Code::name_too_long, "symlink target too long");
    OpScope scope(*this);
    COFFER_TRY(scope.begin());
    COFFER_ASSIGN(NodeRow p, node_locked(parent));
    if (!S_ISDIR(p.mode)) return make_error(Code::not_dir, "not a directory");
    if (p.nlink == 0) return make_error(Code::not_found, "directory was removed");
    format::OpCreate c;
    c.node = crypto::random_id();
    c.parent = p.gid;
    c.name = std::string(name);
    c.mode = mode;
    c.uid = ctx.uid;
    c.gid = ctx.gid;
    if (p.mode & S_ISGID) {  // BSD group semantics in setgid directories
        c.gid = p.gid_owner;
        if (S_ISDIR(mode)) c.mode |= S_ISGID;
    }
    c.rdev = rdev;
    int64_t t = now_ns();
    c.times = {t, t, t};
    c.symlink_target = std::string(target);
    COFFER_TRY(record(format::Op{clock_.next(), c}));
    COFFER_ASSIGN(auto ino, ix_->ino_of(c.node));
    COFFER_ASSIGN(NodeRow n, node_locked(*ino));
    COFFER_TRY(scope.commit());
    COFFER_ASSIGN(Attr a, attr_of(n));
    lookups_[n.ino] += 1;
    return a;
}

Result<Attr> Core::mknod(Ino parent, std::string_view name, uint32_t mode, uint64_t rdev, const Ctx& ctx) {
    MutexLock lk(mu_);
    uint32_t type = mode & S_IFMT;
    if (type == 0) mode |= S_IFREG;
    else if (type != S_IFREG && type != S_IFIFO && type != S_IFSOCK && type != S_IFCHR && type != S_IFBLK)
        return make_error(Code::invalid, "unsupported node type");
    return make_node(parent, name, mode, rdev, {}, ctx);
}

Result<Attr> Core::mkdir(Ino parent, std::string_view name, uint32_t mode, const Ctx& ctx) {
    MutexLock lk(mu_);
    return make_node(parent, name, S_IFDIR | (mode & 07777), 0, {}, ctx);
}

Result<Attr> Core::symlink(Ino parent, std::string_view name, std::string_view target, const Ctx& ctx) {
    MutexLock lk(mu_);
    if (target.empty()) return make_error(Code::not_found, "empty symlink target");
    return make_node(parent, name, S_IFLNK | 0777, 0, target, ctx);
}

Result<Attr> Core::link(Ino ino, Ino new_parent, std::string_view new_name) {
    MutexLock lk(mu_);
    COFFER_TRY(check_name(new_name));
    OpScope scope(*this);
    COFFER_TRY(scope.begin());
    COFFER_ASSIGN(NodeRow n, node_locked(ino));
    if (S_ISDIR(n.mode)) return Error{Code::permission, EPERM, "hard links to directories are not allowed"};
    if (n.nlink == 0) return make_error(Code::not_found, "file was removed");
    if (n.nlink >= 65000) return Error{Code::too_big, EMLINK, "too many links"};
    COFFER_ASSIGN(NodeRow p, node_locked(new_parent));
    if (!S_ISDIR(p.mode)) return make_error(Code::not_dir, "not a directory");
    COFFER_ASSIGN(auto existing, ix_->dirent(new_parent, names_.tag(p.gid, new_name)));
    if (existing) return make_error(Code::exists, "entry exists");
    format::OpLink l{n.gid, p.gid, std::string(new_name), now_ns()};
    COFFER_TRY(record(format::Op{clock_.next(), l}));
    COFFER_ASSIGN(NodeRow after, node_locked(ino));
    COFFER_TRY(scope.commit());
    COFFER_ASSIGN(Attr a, attr_of(after));
    lookups_[ino] += 1;
    return a;
}

Status Core::unlink(Ino parent, std::string_view name) {
    MutexLock lk(mu_);
    OpScope scope(*this);
    COFFER_TRY(scope.begin(OpScope::Space::frees));
    COFFER_ASSIGN(auto e, entry_locked(parent, name));
    if (S_ISDIR(e.second.mode)) return make_error(Code::is_dir, "is a directory");
    COFFER_ASSIGN(NodeRow p, node_locked(parent));
    COFFER_TRY(record(format::Op{clock_.next(), format::OpUnlink{p.gid, std::string(name), e.second.gid, e.second.version}}));
    return scope.commit();
}

Status Core::rmdir(Ino parent, std::string_view name) {
    MutexLock lk(mu_);
    OpScope scope(*this);
    COFFER_TRY(scope.begin(OpScope::Space::frees));
    COFFER_ASSIGN(auto e, entry_locked(parent, name));
    if (!S_ISDIR(e.second.mode)) return make_error(Code::not_dir, "not a directory");
    COFFER_ASSIGN(bool empty, ix_->dir_empty(e.first));
    if (!empty) return make_error(Code::not_empty, "directory not empty");
    COFFER_ASSIGN(NodeRow p, node_locked(parent));
    COFFER_TRY(record(format::Op{clock_.next(), format::OpUnlink{p.gid, std::string(name), e.second.gid, e.second.version}}));
    return scope.commit();
}

Status Core::rename(Ino parent, std::string_view name, Ino new_parent, std::string_view new_name, unsigned flags) {
    MutexLock lk(mu_);
    if (flags & ~(RENAME_NOREPLACE | RENAME_EXCHANGE)) return make_error(Code::invalid, "unsupported rename flags");
    if ((flags & RENAME_NOREPLACE) && (flags & RENAME_EXCHANGE)) return make_error(Code::invalid, "bad rename flags");
    COFFER_TRY(check_name(new_name));
    OpScope scope(*this);
    COFFER_TRY(scope.begin(OpScope::Space::frees));
    COFFER_ASSIGN(auto src, entry_locked(parent, name));
    COFFER_ASSIGN(NodeRow sp, node_locked(parent));
    COFFER_ASSIGN(NodeRow dp, node_locked(new_parent));
    if (!S_ISDIR(dp.mode)) return make_error(Code::not_dir, "not a directory");
    auto dst = entry_locked(new_parent, new_name);
    if (!dst.ok() && dst.error().code != Code::not_found) return std::move(dst).error();
    format::OpRename op;
    op.src_parent = sp.gid;
    op.src_name = std::string(name);
    op.dst_parent = dp.gid;
    op.dst_name = std::string(new_name);
    op.node = src.second.gid;
    if (flags & RENAME_EXCHANGE) {
        if (!dst.ok()) return make_error(Code::not_found, "exchange target does not exist");
        op.flags = format::kRenameExchange;
        op.replaced = dst->second.gid;
    } else if (dst.ok()) {
        if (flags & RENAME_NOREPLACE) return make_error(Code::exists, "target exists");
        if (dst->first == src.first) return scope.commit();  // same node: nothing to do
        bool sdir = S_ISDIR(src.second.mode), ddir = S_ISDIR(dst->second.mode);
        if (sdir && !ddir) return make_error(Code::not_dir, "cannot replace a file with a directory");
        if (!sdir && ddir) return make_error(Code::is_dir, "cannot replace a directory with a file");
        if (ddir) {
            COFFER_ASSIGN(bool empty, ix_->dir_empty(dst->first));
            if (!empty) return make_error(Code::not_empty, "target directory not empty");
        }
        op.replaced = dst->second.gid;
        op.replaced_seen = dst->second.version;
    }
    // Refuse to move a directory into its own subtree (the kernel checks
    // too; the journal must never describe a cycle). An exchange moves the
    // target the other way.
    auto into_itself = [&](Ino moved, Ino dest_parent) -> Result<bool> {
        mu_.assert_held();
        for (Ino cur = dest_parent; cur != kRootIno;) {
            if (cur == moved) return true;
            COFFER_ASSIGN(auto d, ix_->first_dirent_of(cur));
            if (!d) break;
            cur = d->parent;
        }
        return false;
    };
    if (parent != new_parent) {
        if (S_ISDIR(src.second.mode)) {
            COFFER_ASSIGN(bool loop, into_itself(src.first, new_parent));
            if (loop) return make_error(Code::invalid, "cannot move a directory into itself");
        }
        if ((flags & RENAME_EXCHANGE) && S_ISDIR(dst->second.mode)) {
            COFFER_ASSIGN(bool loop, into_itself(dst->first, parent));
            if (loop) return make_error(Code::invalid, "cannot move a directory into itself");
        }
    }
    COFFER_TRY(record(format::Op{clock_.next(), op}));
    return scope.commit();
}

// ---------------------------------------------------------------- readdir
Result<uint64_t> Core::opendir(Ino ino) {
    MutexLock lk(mu_);
    COFFER_ASSIGN(NodeRow n, node_locked(ino));
    if (!S_ISDIR(n.mode)) return make_error(Code::not_dir, "not a directory");
    return uint64_t{0};
}

Status Core::readdir(Ino ino, uint64_t fh, uint64_t offset, bool plus, const DirFiller& fill) {
    MutexLock lk(mu_);
    COFFER_ASSIGN(NodeRow dir, node_locked(ino));
    if (!S_ISDIR(dir.mode)) return make_error(Code::not_dir, "not a directory");
    if (offset == 0) {
        if (!fill(DirEntry{".", ino, S_IFDIR}, nullptr, 1)) return {};
        offset = 1;
    }
    if (offset == 1) {
        Ino parent = kRootIno;
        if (ino != kRootIno) {
            COFFER_ASSIGN(auto d, ix_->first_dirent_of(ino));
            if (d) parent = d->parent;
        }
        if (!fill(DirEntry{"..", parent, S_IFDIR}, nullptr, 2)) return {};
        offset = 2;
    }
    Status inner;
    COFFER_TRY(ix_->list_dirents(ino, static_cast<int64_t>(offset - 2), [&](const index::DirentRow& d) {
        mu_.assert_held();  // called back under it
        auto name = names_.open_name(dir.gid, d.name_sealed);
        if (!name.ok()) {
            inner = make_error(Code::corrupt, "local index: a name in " + path_of(ino) + " failed authentication");
            return false;
        }
        auto child = ix_->node(d.child);
        if (!child.ok()) {
            inner = std::move(child).error();
            return false;
        }
        if (!*child) return true;  // raced with a removal
        // readdirplus: an entry whose attributes cannot be read goes without
        // them (its lookup then reports why), the others are still listed.
        Result<Attr> a = plus ? attr_of(**child) : Result<Attr>(Attr{});
        const bool with_attr = plus && a.ok();
        if (!fill(DirEntry{std::move(*name), d.child, (*child)->mode & S_IFMT}, with_attr ? &*a : nullptr,
                  static_cast<uint64_t>(d.id) + 2))
            return false;
        if (with_attr) lookups_[d.child] += 1;
        return true;
    }));
    return inner;
}

Status Core::releasedir(Ino, uint64_t) { return {}; }

Status Core::fsyncdir(Ino, uint64_t) {
    MutexLock lk(mu_);
    return commit_locked(true);
}

}  // namespace coffer::vfs
