// apply_op: the one place that changes the tree. Local operations and
// operations replayed from the journal go through it alike, so replaying
// the journal into an empty index gives the same tree.
#include <sys/stat.h>

#include "aad.h"
#include "coffer/util/log.h"
#include "core.h"

namespace coffer::vfs {

using index::NodeRow;

namespace {
int64_t hlc_ns(format::Hlc h) { return static_cast<int64_t>(h >> 16) * 1000000; }
bool is_dir(uint32_t mode) { return S_ISDIR(mode); }
}  // namespace


namespace {
struct Resolver {
    index::Index& ix;
    Result<NodeRow> node(const Id128& gid, const char* what) {
        COFFER_ASSIGN(auto ino, ix.ino_of(gid));
        if (!ino) return make_error(Code::not_found, std::string("journal names an unknown ") + what);
        COFFER_ASSIGN(auto n, ix.node(*ino));
        if (!n) return make_error(Code::not_found, std::string("journal names an unknown ") + what);
        return std::move(*n);
    }
    Result<NodeRow> dir(const Id128& gid) {
        COFFER_ASSIGN(NodeRow n, node(gid, "directory"));
        if (!is_dir(n.mode)) return make_error(Code::not_dir, "journal: parent is not a directory");
        return n;
    }
};

Status touch_dir(index::Index& ix, NodeRow& dir, int64_t t, int nlink_delta) {
    dir.mtime = dir.ctime = t;
    dir.nlink = static_cast<uint32_t>(static_cast<int64_t>(dir.nlink) + nlink_delta);
    return ix.update_node(dir);
}
}  // namespace

Status Core::apply_op(const format::Op& op) {
    Resolver r{*ix_};
    const int64_t t = hlc_ns(op.hlc);
    clock_.observe(op.hlc);

    if (auto* c = std::get_if<format::OpCreate>(&op.body)) {
        COFFER_ASSIGN(NodeRow parent, r.dir(c->parent));
        Bytes tag = names_.tag(c->parent, c->name);
        COFFER_ASSIGN(auto existing, ix_->dirent(parent.ino, tag));
        if (existing) return make_error(Code::exists, "entry exists");
        COFFER_ASSIGN(auto known, ix_->ino_of(c->node));
        if (known) return make_error(Code::exists, "journal creates a node twice");
        NodeRow n;
        n.gid = c->node;
        n.mode = c->mode;
        n.uid = c->uid;
        n.gid_owner = c->gid;
        n.nlink = is_dir(c->mode) ? 2 : 1;
        n.atime = c->times.atime_ns;
        n.mtime = c->times.mtime_ns;
        n.ctime = c->times.ctime_ns;
        n.key_epoch = header_.key_epoch;
        if (S_ISCHR(c->mode) || S_ISBLK(c->mode)) {
            n.rdev_sealed = names_.seal_rdev(c->node, c->rdev);
        }
        if (S_ISLNK(c->mode)) {
            n.link_sealed = names_.seal_symlink(c->node, c->symlink_target);
            n.size = c->symlink_target.size();
        }
        crypto::SecretBytes key;
        if (S_ISREG(c->mode)) {
            key = crypto::random_key();
            n.wrapped_key = crypto::seal(fkey_wrap_, key.span(), aad::file_key(c->node, n.key_epoch));
        }
        COFFER_ASSIGN(index::Ino ino, ix_->insert_node(n));
        if (!key.empty()) remember_key_locked(ino, std::move(key));  // the first write needs it
        COFFER_TRY(ix_->insert_dirent(parent.ino, tag, names_.seal_name(c->parent, c->name), ino));
        return touch_dir(*ix_, parent, t, is_dir(c->mode) ? 1 : 0);
    }
    if (auto* l = std::get_if<format::OpLink>(&op.body)) {
        COFFER_ASSIGN(NodeRow parent, r.dir(l->parent));
        COFFER_ASSIGN(NodeRow n, r.node(l->node, "node"));
        Bytes tag = names_.tag(l->parent, l->name);
        COFFER_ASSIGN(auto existing, ix_->dirent(parent.ino, tag));
        if (existing) return make_error(Code::exists, "entry exists");
        COFFER_TRY(ix_->insert_dirent(parent.ino, tag, names_.seal_name(l->parent, l->name), n.ino));
        n.nlink += 1;
        n.ctime = l->ctime_ns ? l->ctime_ns : t;
        COFFER_TRY(ix_->update_node(n));
        return touch_dir(*ix_, parent, t, 0);
    }
    if (auto* u = std::get_if<format::OpUnlink>(&op.body)) {
        COFFER_ASSIGN(NodeRow parent, r.dir(u->parent));
        Bytes tag = names_.tag(u->parent, u->name);
        COFFER_ASSIGN(auto d, ix_->dirent(parent.ino, tag));
        if (!d) return make_error(Code::not_found, "entry not found");
        COFFER_ASSIGN(auto child, ix_->node(d->child));
        if (!child) return make_error(Code::corrupt, "index: entry points at a missing node");
        COFFER_TRY(ix_->delete_dirent(parent.ino, tag));
        NodeRow n = std::move(*child);
        bool dir = is_dir(n.mode);
        n.nlink = dir ? 0 : n.nlink - 1;
        n.ctime = t;
        COFFER_TRY(ix_->update_node(n));
        COFFER_TRY(touch_dir(*ix_, parent, t, dir ? -1 : 0));
        maybe_delete(n.ino);
        return {};
    }
    if (auto* rn = std::get_if<format::OpRename>(&op.body)) {
        COFFER_ASSIGN(NodeRow sp, r.dir(rn->src_parent));
        Bytes stag = names_.tag(rn->src_parent, rn->src_name);
        Bytes dtag = names_.tag(rn->dst_parent, rn->dst_name);
        COFFER_ASSIGN(auto sd, ix_->dirent(sp.ino, stag));
        if (!sd) return make_error(Code::not_found, "rename: source not found");
        COFFER_ASSIGN(NodeRow dp0, r.dir(rn->dst_parent));
        COFFER_ASSIGN(auto dd, ix_->dirent(dp0.ino, dtag));
        COFFER_ASSIGN(auto moved, ix_->node(sd->child));
        if (!moved) return make_error(Code::corrupt, "index: entry points at a missing node");
        bool same_parent = sp.ino == dp0.ino;
        if (rn->flags & format::kRenameExchange) {
            if (!dd) return make_error(Code::not_found, "exchange: target not found");
            COFFER_ASSIGN(auto other, ix_->node(dd->child));
            if (!other) return make_error(Code::corrupt, "index: entry points at a missing node");
            COFFER_TRY(ix_->set_dirent_child(sp.ino, stag, other->ino));
            COFFER_TRY(ix_->set_dirent_child(dp0.ino, dtag, moved->ino));
            int delta = (is_dir(moved->mode) ? 1 : 0) - (is_dir(other->mode) ? 1 : 0);
            moved->ctime = other->ctime = t;
            COFFER_TRY(ix_->update_node(*moved));
            COFFER_TRY(ix_->update_node(*other));
            if (same_parent) return touch_dir(*ix_, sp, t, 0);
            COFFER_TRY(touch_dir(*ix_, sp, t, -delta));
            COFFER_ASSIGN(NodeRow dp, r.dir(rn->dst_parent));
            return touch_dir(*ix_, dp, t, delta);
        }
        if (dd) {
            if (dd->child == moved->ino) {  // both names link the same node: POSIX says do nothing
                return {};
            }
            COFFER_ASSIGN(auto replaced, ix_->node(dd->child));
            COFFER_TRY(ix_->delete_dirent(dp0.ino, dtag));
            if (replaced) {
                bool rdir = is_dir(replaced->mode);
                replaced->nlink = rdir ? 0 : replaced->nlink - 1;
                replaced->ctime = t;
                COFFER_TRY(ix_->update_node(*replaced));
                if (rdir) {
                    COFFER_ASSIGN(NodeRow dpx, r.dir(rn->dst_parent));
                    dpx.nlink -= 1;
                    COFFER_TRY(ix_->update_node(dpx));
                }
                maybe_delete(replaced->ino);
            }
        }
        COFFER_TRY(ix_->delete_dirent(sp.ino, stag));
        COFFER_TRY(ix_->insert_dirent(dp0.ino, dtag, names_.seal_name(rn->dst_parent, rn->dst_name), moved->ino));
        moved->ctime = t;
        COFFER_TRY(ix_->update_node(*moved));
        int delta = is_dir(moved->mode) && !same_parent ? 1 : 0;
        COFFER_ASSIGN(NodeRow sp2, r.dir(rn->src_parent));
        COFFER_TRY(touch_dir(*ix_, sp2, t, -delta));
        if (same_parent) return {};
        COFFER_ASSIGN(NodeRow dp2, r.dir(rn->dst_parent));
        return touch_dir(*ix_, dp2, t, delta);
    }
    if (auto* sa = std::get_if<format::OpSetAttr>(&op.body)) {
        COFFER_ASSIGN(NodeRow n, r.node(sa->node, "node"));
        if (sa->mask & format::kSetMode) n.mode = (n.mode & S_IFMT) | (sa->mode & 07777);
        if (sa->mask & format::kSetUid) n.uid = sa->uid;
        if (sa->mask & format::kSetGid) n.gid_owner = sa->gid;
        if (sa->mask & format::kSetAtime) n.atime = sa->times.atime_ns;
        if (sa->mask & format::kSetMtime) n.mtime = sa->times.mtime_ns;
        n.ctime = (sa->mask & format::kSetCtime) ? sa->times.ctime_ns : t;
        return ix_->update_node(n);
    }
    if (auto* sc = std::get_if<format::OpSetContent>(&op.body)) {
        COFFER_ASSIGN(NodeRow n, r.node(sc->node, "file"));
        n.size = sc->size;
        n.mtime = sc->mtime_ns;
        n.ctime = sc->ctime_ns;
        n.key_epoch = sc->key_epoch;
        n.wrapped_key = sc->wrapped_key;
        n.version = sc->version;
        n.content_dirty = false;
        keys_.erase(n.ino);
        COFFER_TRY(ix_->update_node(n));
        return ix_->replace_extents(n.ino, sc->extents);
    }
    if (auto* sx = std::get_if<format::OpSetXattr>(&op.body)) {
        COFFER_ASSIGN(NodeRow n, r.node(sx->node, "node"));
        index::XattrRow x;
        x.tag = names_.tag(sx->node, sx->name);
        x.name_sealed = names_.seal_xattr_name(sx->node, sx->name);
        x.value_sealed = names_.seal_xattr_value(sx->node, sx->value);
        COFFER_TRY(ix_->put_xattr(n.ino, x));
        mark_xattrs(n.ino);
        n.ctime = t;
        return ix_->update_node(n);
    }
    if (auto* rx = std::get_if<format::OpRemoveXattr>(&op.body)) {
        COFFER_ASSIGN(NodeRow n, r.node(rx->node, "node"));
        COFFER_TRY(ix_->delete_xattr(n.ino, names_.tag(rx->node, rx->name)));
        n.ctime = t;
        return ix_->update_node(n);
    }
    return make_error(Code::internal, "unknown operation");
}

}  // namespace coffer::vfs
