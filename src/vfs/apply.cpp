// apply_op: the one place that changes the tree. Local operations and
// operations merged from other devices go through it alike, so every
// device that applies the same operations in the same order (merge.cpp
// gives the one order) holds the same tree.
//
// A local operation always finds what it names: the filesystem checked
// before recording it. An operation from another device may not: it was
// made concurrently with operations applied here before it. Each such case
// has one rule, the same on every device, and none loses what a user wrote
// (docs/ARCHITECTURE.md, "Merging"):
// - a name already taken: the newcomer is renamed aside as a conflict name;
// - a delete of a file whose content changed since the deleter saw it, or
//   of a folder that is not empty: the delete does nothing;
// - an edit of a deleted file, or a create, link or move into a deleted
//   folder: what was deleted comes back where it was;
// - a content change whose base is not the current version: the current
//   version becomes a conflict copy beside the file;
// - a move of a folder into its own subtree: the move does nothing
//   (Kleppmann et al.'s replicated tree move);
// - what names a node this device never had: nothing (and it is counted).
#include <sys/stat.h>

#include <cstring>
#include <ctime>

#include "aad.h"
#include "coffer/util/log.h"
#include "core.h"

namespace coffer::vfs {

using index::NodeRow;

namespace {
int64_t hlc_ns(format::Hlc h) { return static_cast<int64_t>(h >> 16) * 1000000; }
bool is_dir(uint32_t mode) { return S_ISDIR(mode); }

// How deep a chain of deleted folders a revival follows (and a cycle check walks).
constexpr int kMaxDepth = 4096;

// The name of a conflict copy: "stem (conflict DEVICE YYYY-MM-DD HHMMSS).ext",
// at most 255 bytes, the extension kept, with " 2", " 3", … inside the
// parentheses for a second one that would take the same name.
std::string conflict_name(std::string_view name, bool keep_ext, std::string_view device, format::Hlc hlc,
                          unsigned n) {
    std::string dev;
    for (char c : device) dev.push_back((c == '/' || static_cast<unsigned char>(c) < 0x20) ? '_' : c);
    if (dev.empty()) dev = "unnamed device";
    time_t secs = static_cast<time_t>((hlc >> 16) / 1000);
    struct tm tm {};
    gmtime_r(&secs, &tm);
    char when[32];
    std::strftime(when, sizeof when, "%Y-%m-%d %H%M%S", &tm);
    std::string stem(name), ext;
    if (keep_ext) {
        size_t dot = name.rfind('.');
        if (dot != std::string_view::npos && dot > 0 && name.size() - dot <= 16) {
            stem = std::string(name.substr(0, dot));
            ext = std::string(name.substr(dot));
        }
    }
    std::string tail = " (conflict " + dev + " " + when + (n > 1 ? " " + std::to_string(n) : "") + ")" + ext;
    if (tail.size() > 200) tail = " (conflict " + std::string(when) + (n > 1 ? " " + std::to_string(n) : "") + ")" + ext;
    size_t room = format::kMaxName - tail.size();
    if (stem.size() > room) {
        size_t cut = room;
        while (cut > 0 && (static_cast<unsigned char>(stem[cut]) & 0xC0) == 0x80) --cut;  // whole UTF-8 characters
        stem.resize(cut);
    }
    return stem + tail;
}

// The id of the conflict copy that keeps `version` of `node`: the same on
// every device, so each makes the same copy.
Id128 copy_id(const Id128& node, const Id128& version) {
    ByteWriter w;
    w.str("coffer conflict copy");
    w.id(node);
    w.id(version);
    auto h = crypto::hash32(w.bytes());
    Id128 id;
    std::memcpy(id.b.data(), h.data(), 16);
    return id;
}
}  // namespace

// Everything apply_op needs while it runs: the op's origin and the index.
class Core::Applier {
public:
    Applier(Core& c, const OpOrigin& origin, const format::Op& op) REQUIRES(c.mu_)
        : c_(c), ix_(*c.ix_), origin_(origin), op_(op), t_(hlc_ns(op.hlc)) {}

    Status run() NO_THREAD_SAFETY_ANALYSIS {  // under c_.mu_, as the constructor checked
        return std::visit([this](const auto& body) { return apply(body); }, op_.body);
    }

private:
    Core& c_;
    index::Index& ix_;
    const OpOrigin& origin_;
    const format::Op& op_;
    const int64_t t_;

    Status skip(const char* why) NO_THREAD_SAFETY_ANALYSIS {
        ++c_.merge_skipped_;
        log::warn(std::string("merge: an operation from device ") + origin_.device.hex() + " does nothing: " + why);
        return {};
    }
    Status conflict() NO_THREAD_SAFETY_ANALYSIS {
        ++c_.merge_conflicts_;
        return {};
    }

    Result<std::optional<NodeRow>> node(const Id128& gid) {
        COFFER_ASSIGN(auto ino, ix_.ino_of(gid));
        if (!ino) return std::optional<NodeRow>{};
        return ix_.node(*ino);
    }
    Status touch(NodeRow& dir, int nlink_delta) {
        dir.mtime = dir.ctime = t_;
        dir.nlink = static_cast<uint32_t>(static_cast<int64_t>(dir.nlink) + nlink_delta);
        return ix_.update_node(dir);
    }
    Result<std::string> plain_name(const NodeRow& parent, const index::DirentRow& d) NO_THREAD_SAFETY_ANALYSIS {
        return c_.names_.open_name(parent.gid, d.name_sealed);
    }

    // The entry of `child` in `parent`: the one named `tag` if it is that,
    // else the first by tag (a conflict may have renamed it).
    Result<std::optional<index::DirentRow>> link_in(Ino parent, ByteSpan tag, Ino child) {
        COFFER_ASSIGN(auto d, ix_.dirent(parent, tag));
        if (d && d->child == child) return d;
        COFFER_ASSIGN(auto all, ix_.dirents_of(child));
        for (auto& e : all)
            if (e.parent == parent) return std::optional<index::DirentRow>(std::move(e));
        return std::optional<index::DirentRow>{};
    }

    // Is `dir` the node `ancestor` or below it?
    Result<bool> within(Ino dir, Ino ancestor) {
        Ino cur = dir;
        for (int depth = 0; depth < kMaxDepth; ++depth) {
            if (cur == ancestor) return true;
            if (cur == kRootIno) return false;
            COFFER_ASSIGN(auto links, ix_.dirents_of(cur));
            if (links.empty()) return false;
            cur = links.front().parent;
        }
        return true;  // deeper than any tree coffer makes: treat as a cycle
    }

    // Links `child` into `parent` under `name`, or under a conflict name
    // when the name is taken; true if it was renamed aside.
    Result<bool> place(NodeRow& parent, std::string_view name, Ino child, bool child_is_dir,
                       std::string_view device, format::Hlc when) NO_THREAD_SAFETY_ANALYSIS {
        std::string chosen(name);
        bool renamed = false;
        for (unsigned n = 1;; ++n) {
            Bytes tag = c_.names_.tag(parent.gid, chosen);
            COFFER_ASSIGN(auto taken, ix_.dirent(parent.ino, tag));
            if (!taken) {
                COFFER_TRY(ix_.insert_dirent(parent.ino, tag, c_.names_.seal_name(parent.gid, chosen), child));
                break;
            }
            if (origin_.local) return make_error(Code::exists, "entry exists");
            if (n > 1000) return make_error(Code::internal, "merge: no free conflict name");
            chosen = conflict_name(name, !child_is_dir, device, when, n);
            renamed = true;
        }
        if (renamed) COFFER_TRY(conflict());
        return renamed;
    }

    // Brings back a deleted node where it was last linked (and, first, the
    // deleted folders above it). Nothing to do for a linked node.
    Status revive(NodeRow& n, int depth = 0) {
        if (n.ino == kRootIno || n.nlink > 0) return {};
        COFFER_ASSIGN(auto links, ix_.dirents_of(n.ino));
        if (!links.empty()) return {};
        if (depth > kMaxDepth) return make_error(Code::corrupt, "merge: deleted folders nest too deep");
        COFFER_ASSIGN(auto tomb, ix_.tomb(n.ino));
        NodeRow parent;
        std::string name;
        bool ok = false;
        if (tomb) {
            COFFER_ASSIGN(auto p, ix_.node(tomb->parent));
            if (p && is_dir(p->mode)) {
                COFFER_TRY(revive(*p, depth + 1));
                COFFER_ASSIGN(auto again, ix_.node(p->ino));  // revive updated it
                parent = std::move(*again);
                COFFER_ASSIGN(bool loop, within(parent.ino, n.ino));
                auto nm = plain_name(parent, index::DirentRow{0, parent.ino, tomb->tag, tomb->name_sealed, 0});
                if (!loop && nm.ok()) {
                    name = std::move(*nm);
                    ok = true;
                }
            }
        }
        if (!ok) {  // nowhere to go back to: the root keeps it under its id
            COFFER_ASSIGN(auto root, ix_.node(kRootIno));
            parent = std::move(*root);
            name = "recovered " + n.gid.hex();
        }
        COFFER_TRY(ix_.delete_tomb(n.ino));
        COFFER_TRY(place(parent, name, n.ino, is_dir(n.mode), origin_.device_name, op_.hlc));
        COFFER_TRY(count_links(n));
        COFFER_TRY(ix_.update_node(n));
        return touch(parent, is_dir(n.mode) ? 1 : 0);
    }

    // Sets n.nlink from what links it: its entries, or for a folder 2 and
    // one per subfolder (the caller saves n).
    Status count_links(NodeRow& n) {
        if (!is_dir(n.mode)) {
            COFFER_ASSIGN(auto links, ix_.dirents_of(n.ino));
            n.nlink = static_cast<uint32_t>(links.size());
            return {};
        }
        n.nlink = 2;
        Status st;
        COFFER_TRY(ix_.list_dirents(n.ino, 0, [&](const index::DirentRow& d) {
            auto child = ix_.node(d.child);
            if (!child.ok()) {
                st = std::move(child).error();
                return false;
            }
            if (*child && is_dir((*child)->mode)) ++n.nlink;
            return true;
        }));
        return st;
    }

    // Removes one entry; a node left with no name keeps its row as a tomb.
    Status remove_entry(NodeRow& parent, const index::DirentRow& d, NodeRow& child) NO_THREAD_SAFETY_ANALYSIS {
        COFFER_TRY(ix_.delete_dirent(parent.ino, d.tag));
        bool dir = is_dir(child.mode);
        child.nlink = dir ? 0 : child.nlink - 1;
        child.ctime = t_;
        if (child.nlink == 0) COFFER_TRY(ix_.set_tomb(child.ino, index::Tomb{parent.ino, d.tag, d.name_sealed}));
        COFFER_TRY(ix_.update_node(child));
        COFFER_TRY(touch(parent, dir ? -1 : 0));
        c_.maybe_delete(child.ino);
        return {};
    }

    // May a delete that saw content version `seen` remove `n`? Not when the
    // content changed since (the edit wins) or a folder has entries the
    // deleter did not see (they win). Journal 1 did not record what a
    // delete saw: its deletes always win, as they did.
    // A version the remover wrote itself is one it saw (its segments are in
    // its own past): that covers a delete recorded while this device's
    // publish of the file was under way, which saw the version before.
    Result<bool> may_remove(const NodeRow& n, const Id128& seen) {
        if (is_dir(n.mode)) return ix_.dir_empty(n.ino);
        if (origin_.journal < 2 || !S_ISREG(n.mode)) return true;
        return n.version == seen || n.version_device == origin_.device;
    }

    Status apply(const format::OpCreate& c) NO_THREAD_SAFETY_ANALYSIS {
        COFFER_ASSIGN(auto known, node(c.node));
        if (known) {
            // A conflict copy journaled by the device that edited it: here
            // the merge made it already.
            if (known->conflict) return {};
            return skip("it creates a node that exists");
        }
        COFFER_ASSIGN(auto parent, node(c.parent));
        if (!parent || !is_dir(parent->mode)) return skip("its folder is unknown");
        COFFER_TRY(revive(*parent));
        COFFER_ASSIGN(parent, ix_.node(parent->ino));
        NodeRow n;
        COFFER_ASSIGN(auto old_ino, ix_.remembered_ino(c.node));
        n.ino = old_ino ? *old_ino : 0;
        n.gid = c.node;
        n.mode = c.mode;
        n.uid = c.uid;
        n.gid_owner = c.gid;
        n.nlink = is_dir(c.mode) ? 2 : 1;
        n.atime = c.times.atime_ns;
        n.mtime = c.times.mtime_ns;
        n.ctime = c.times.ctime_ns;
        n.key_epoch = c_.header_.key_epoch;
        n.version_device = origin_.device;
        n.version_hlc = op_.hlc;
        if (S_ISCHR(c.mode) || S_ISBLK(c.mode)) n.rdev_sealed = c_.names_.seal_rdev(c.node, c.rdev);
        if (S_ISLNK(c.mode)) {
            n.link_sealed = c_.names_.seal_symlink(c.node, c.symlink_target);
            n.size = c.symlink_target.size();
        }
        crypto::SecretBytes key;
        if (S_ISREG(c.mode)) {
            key = crypto::random_key();
            n.wrapped_key = crypto::seal(c_.fkey_wrap_, key.span(), aad::file_key(c.node, n.key_epoch));
        }
        COFFER_ASSIGN(index::Ino ino, ix_.insert_node(n));
        if (!key.empty()) c_.remember_key_locked(ino, std::move(key));  // the first write needs it
        COFFER_TRY(place(*parent, c.name, ino, is_dir(c.mode), origin_.device_name, op_.hlc));
        return touch(*parent, is_dir(c.mode) ? 1 : 0);
    }

    Status apply(const format::OpLink& l) NO_THREAD_SAFETY_ANALYSIS {
        COFFER_ASSIGN(auto n, node(l.node));
        COFFER_ASSIGN(auto parent, node(l.parent));
        if (!n || !parent || !is_dir(parent->mode)) return skip("it links a node or into a folder that is unknown");
        if (is_dir(n->mode)) return skip("it links a folder");
        COFFER_TRY(revive(*parent));
        COFFER_ASSIGN(parent, ix_.node(parent->ino));
        COFFER_TRY(ix_.delete_tomb(n->ino));  // a link to a deleted file brings it back (add wins)
        COFFER_TRY(place(*parent, l.name, n->ino, false, origin_.device_name, op_.hlc));
        COFFER_ASSIGN(n, ix_.node(n->ino));
        n->nlink += 1;
        n->ctime = l.ctime_ns ? l.ctime_ns : t_;
        COFFER_TRY(ix_.update_node(*n));
        return touch(*parent, 0);
    }

    Status apply(const format::OpUnlink& u) NO_THREAD_SAFETY_ANALYSIS {
        COFFER_ASSIGN(auto parent, node(u.parent));
        COFFER_ASSIGN(auto child, node(u.node));
        if (!parent || !child) return skip("it removes an entry of a node that is unknown");
        COFFER_ASSIGN(auto d, link_in(parent->ino, c_.names_.tag(u.parent, u.name), child->ino));
        if (!d) return {};  // removed or moved away concurrently: nothing left here to remove
        COFFER_ASSIGN(bool may, may_remove(*child, u.seen));
        if (!may) return conflict();  // the edit (or the folder's new entries) win
        return remove_entry(*parent, *d, *child);
    }

    Status apply(const format::OpRename& r) NO_THREAD_SAFETY_ANALYSIS {
        COFFER_ASSIGN(auto sp, node(r.src_parent));
        COFFER_ASSIGN(auto dp, node(r.dst_parent));
        COFFER_ASSIGN(auto moved, node(r.node));
        if (!sp || !dp || !moved || !is_dir(dp->mode)) return skip("it moves a node that is unknown");
        Bytes stag = c_.names_.tag(r.src_parent, r.src_name);
        Bytes dtag = c_.names_.tag(r.dst_parent, r.dst_name);
        if (r.flags & format::kRenameExchange) return exchange(r, *sp, *dp, *moved, stag, dtag);

        // Where the node is now: where the mover saw it, else its first entry
        // (moved concurrently), else nowhere (deleted: the move brings it back).
        COFFER_ASSIGN(auto src, link_in(sp->ino, stag, moved->ino));
        if (!src) {
            COFFER_ASSIGN(auto links, ix_.dirents_of(moved->ino));
            if (!links.empty()) src = links.front();
        }
        COFFER_TRY(revive(*dp));
        COFFER_ASSIGN(dp, ix_.node(dp->ino));
        if (is_dir(moved->mode)) {
            COFFER_ASSIGN(bool loop, within(dp->ino, moved->ino));
            if (loop) return conflict();  // a concurrent move made this a cycle: it does nothing
        }
        if (src && src->parent == dp->ino && crypto::equal(src->tag, dtag)) return {};
        COFFER_ASSIGN(auto dst, ix_.dirent(dp->ino, dtag));
        if (dst && dst->child == moved->ino) return {};  // both names link the same node: POSIX does nothing
        if (dst) {
            COFFER_ASSIGN(auto there, ix_.node(dst->child));
            if (!there) return make_error(Code::corrupt, "index: entry points at a missing node");
            bool replace = there->gid == r.replaced && is_dir(there->mode) == is_dir(moved->mode);
            if (replace) {
                COFFER_ASSIGN(replace, may_remove(*there, r.replaced_seen));
                if (!replace) COFFER_TRY(conflict());
            }
            if (replace) {
                COFFER_TRY(remove_entry(*dp, *dst, *there));
                COFFER_ASSIGN(dp, ix_.node(dp->ino));
            }
        }
        // Out of the old place, into the new one (under a conflict name if
        // the target stayed or another took it).
        if (src) {
            COFFER_ASSIGN(auto old_parent, ix_.node(src->parent));
            COFFER_TRY(ix_.delete_dirent(src->parent, src->tag));
            if (src->parent != dp->ino) COFFER_TRY(touch(*old_parent, is_dir(moved->mode) ? -1 : 0));
        } else {
            COFFER_TRY(ix_.delete_tomb(moved->ino));
        }
        COFFER_ASSIGN(dp, ix_.node(dp->ino));
        COFFER_TRY(place(*dp, r.dst_name, moved->ino, is_dir(moved->mode), origin_.device_name, op_.hlc));
        bool counts = is_dir(moved->mode) && (!src || src->parent != dp->ino);
        COFFER_TRY(touch(*dp, counts ? 1 : 0));
        COFFER_ASSIGN(moved, ix_.node(moved->ino));
        if (!src) COFFER_TRY(count_links(*moved));  // it was deleted: the move brought it back
        moved->ctime = t_;
        return ix_.update_node(*moved);
    }

    Status exchange(const format::OpRename& r, NodeRow& sp, NodeRow& dp, NodeRow& moved, ByteSpan stag,
                    ByteSpan dtag) NO_THREAD_SAFETY_ANALYSIS {
        COFFER_ASSIGN(auto other, node(r.replaced));
        if (!other) return skip("it exchanges with a node that is unknown");
        COFFER_ASSIGN(auto a, link_in(sp.ino, stag, moved.ino));
        COFFER_ASSIGN(auto b, link_in(dp.ino, dtag, other->ino));
        // Only the exchange the device saw: either side moved or deleted
        // concurrently, and it does nothing (nothing is lost either way).
        if (!a || !b) return conflict();
        if (sp.ino != dp.ino) {
            if (is_dir(moved.mode)) {
                COFFER_ASSIGN(bool loop, within(dp.ino, moved.ino));
                if (loop) return conflict();
            }
            if (is_dir(other->mode)) {
                COFFER_ASSIGN(bool loop, within(sp.ino, other->ino));
                if (loop) return conflict();
            }
        }
        COFFER_TRY(ix_.set_dirent_child(sp.ino, a->tag, other->ino));
        COFFER_TRY(ix_.set_dirent_child(dp.ino, b->tag, moved.ino));
        int delta = (is_dir(moved.mode) ? 1 : 0) - (is_dir(other->mode) ? 1 : 0);
        moved.ctime = other->ctime = t_;
        COFFER_TRY(ix_.update_node(moved));
        COFFER_TRY(ix_.update_node(*other));
        if (sp.ino == dp.ino) return touch(sp, 0);
        COFFER_TRY(touch(sp, -delta));
        COFFER_ASSIGN(auto dp2, ix_.node(dp.ino));
        return touch(*dp2, delta);
    }

    Status apply(const format::OpSetAttr& sa) {
        COFFER_ASSIGN(auto n, node(sa.node));
        if (!n) return skip("it changes a node that is unknown");
        if (sa.mask & format::kSetMode) n->mode = (n->mode & S_IFMT) | (sa.mode & 07777);
        if (sa.mask & format::kSetUid) n->uid = sa.uid;
        if (sa.mask & format::kSetGid) n->gid_owner = sa.gid;
        if (sa.mask & format::kSetAtime) n->atime = sa.times.atime_ns;
        if (sa.mask & format::kSetMtime) n->mtime = sa.times.mtime_ns;
        n->ctime = (sa.mask & format::kSetCtime) ? sa.times.ctime_ns : t_;
        return ix_.update_node(*n);
    }

    Status apply(const format::OpSetContent& sc) NO_THREAD_SAFETY_ANALYSIS {
        COFFER_ASSIGN(auto n, node(sc.node));
        if (!n || !S_ISREG(n->mode)) return skip("it sets the content of a node that is unknown");
        if (n->version == sc.version) return {};  // this version is here already
        COFFER_TRY(revive(*n));  // an edit beats a delete
        COFFER_ASSIGN(n, ix_.node(n->ino));
        // Another device's version that this one did not start from: it
        // goes on, beside the file, as a conflict copy.
        if (n->version != sc.base_version && !n->version.is_zero()) COFFER_TRY(keep_as_copy(*n));
        n->size = sc.size;
        n->mtime = sc.mtime_ns;
        n->ctime = sc.ctime_ns;
        n->key_epoch = sc.key_epoch;
        n->wrapped_key = sc.wrapped_key;
        n->key_owner = Id128{};
        n->version = sc.version;
        n->version_device = origin_.device;
        n->version_hlc = op_.hlc;
        n->content_dirty = false;
        c_.keys_.erase(n->ino);
        COFFER_TRY(ix_.update_node(*n));
        return ix_.replace_extents(n->ino, sc.extents);
    }

    // A conflict copy of n's current version beside n's first entry.
    Status keep_as_copy(const NodeRow& n) NO_THREAD_SAFETY_ANALYSIS {
        Id128 id = copy_id(n.gid, n.version);
        COFFER_ASSIGN(auto exists, ix_.ino_of(id));
        if (exists) return {};
        COFFER_ASSIGN(auto links, ix_.dirents_of(n.ino));
        if (links.empty()) return {};
        COFFER_ASSIGN(auto parent, ix_.node(links.front().parent));
        COFFER_ASSIGN(std::string name, plain_name(*parent, links.front()));
        NodeRow copy = n;
        COFFER_ASSIGN(auto old_ino, ix_.remembered_ino(id));
        copy.ino = old_ino ? *old_ino : 0;
        copy.gid = id;
        copy.nlink = 1;
        copy.ctime = t_;
        copy.key_owner = n.key_owner.is_zero() ? n.gid : n.key_owner;
        copy.conflict = true;
        copy.content_dirty = false;
        COFFER_ASSIGN(index::Ino ino, ix_.insert_node(copy));
        COFFER_ASSIGN(auto extents, ix_.all_extents(n.ino));
        COFFER_TRY(ix_.replace_extents(ino, extents));
        COFFER_ASSIGN(auto xattrs, ix_.xattrs(n.ino));
        for (const auto& x : xattrs) {
            // Sealed to their node: opened and sealed again for the copy.
            COFFER_ASSIGN(std::string xn, c_.names_.open_xattr_name(n.gid, x.name_sealed));
            COFFER_ASSIGN(Bytes xv, c_.names_.open_xattr_value(n.gid, x.value_sealed));
            index::XattrRow cx{c_.names_.tag(id, xn), c_.names_.seal_xattr_name(id, xn),
                               c_.names_.seal_xattr_value(id, xv)};
            COFFER_TRY(ix_.put_xattr(ino, cx));
            c_.mark_xattrs(ino);
        }
        std::string author = c_.device_name_of(n.version_device);
        COFFER_TRY(place(*parent, conflict_name(name, true, author, n.version_hlc, 1), ino, false, author,
                         n.version_hlc));
        COFFER_TRY(conflict());
        return touch(*parent, 0);
    }

    Status apply(const format::OpSetXattr& sx) NO_THREAD_SAFETY_ANALYSIS {
        COFFER_ASSIGN(auto n, node(sx.node));
        if (!n) return skip("it sets an xattr of a node that is unknown");
        index::XattrRow x;
        x.tag = c_.names_.tag(sx.node, sx.name);
        x.name_sealed = c_.names_.seal_xattr_name(sx.node, sx.name);
        x.value_sealed = c_.names_.seal_xattr_value(sx.node, sx.value);
        COFFER_TRY(ix_.put_xattr(n->ino, x));
        c_.mark_xattrs(n->ino);
        n->ctime = t_;
        return ix_.update_node(*n);
    }

    Status apply(const format::OpRemoveXattr& rx) NO_THREAD_SAFETY_ANALYSIS {
        COFFER_ASSIGN(auto n, node(rx.node));
        if (!n) return skip("it removes an xattr of a node that is unknown");
        COFFER_TRY(ix_.delete_xattr(n->ino, c_.names_.tag(rx.node, rx.name)));
        n->ctime = t_;
        return ix_.update_node(*n);
    }
};

Status Core::apply_op(const format::Op& op, const OpOrigin& origin) {
    clock_.observe(op.hlc);
    Applier a(*this, origin, op);
    return a.run();
}

Status Core::apply_op(const format::Op& op) { return apply_op(op, OpOrigin{device_, device_name_, format::kOpsVersion, true}); }

}  // namespace coffer::vfs
