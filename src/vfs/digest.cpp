// The tree digest (`coffer status --digest`): what two devices compare to
// know they hold the same tree. Covers what every device derives alike from
// the journal: ids, names, types and modes, owners, sizes, mtimes, content
// versions, symlink targets, device numbers and xattrs, walked from the
// root with each folder's entries in name order. Not covered: inode
// numbers, atime and ctime, and content staged here but not published.
#include <sys/stat.h>

#include <algorithm>

#include "coffer/util/bytes.h"
#include "core.h"

namespace coffer::vfs {

namespace {
void put_u64(crypto::Hasher& h, uint64_t v) {
    uint8_t b[8];
    for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(v >> (8 * i));
    h.update(ByteSpan(b, 8));
}
void put_str(crypto::Hasher& h, std::string_view s) {
    put_u64(h, s.size());
    h.update(as_bytes(s));
}
}  // namespace

Result<std::string> Core::digest() {
    MutexLock lk(mu_);
    crypto::Hasher h;
    put_str(h, "coffer tree digest 1");
    struct Entry {
        std::string name;
        Ino child;
    };
    std::vector<Ino> stack{kRootIno};
    while (!stack.empty()) {
        Ino ino = stack.back();
        stack.pop_back();
        COFFER_ASSIGN(auto row, ix_->node(ino));
        if (!row) return make_error(Code::corrupt, "index: an entry points at a missing node");
        const index::NodeRow& n = *row;
        h.update(n.gid.b);
        put_u64(h, n.mode);
        put_u64(h, n.uid);
        put_u64(h, n.gid_owner);
        put_u64(h, n.nlink);
        if (!S_ISDIR(n.mode)) {
            put_u64(h, n.size);
            put_u64(h, static_cast<uint64_t>(n.mtime));
        }
        h.update(n.version.b);
        if (S_ISLNK(n.mode)) {
            COFFER_ASSIGN(std::string target, names_.open_symlink(n.gid, n.link_sealed));
            put_str(h, target);
        }
        if (S_ISCHR(n.mode) || S_ISBLK(n.mode)) {
            COFFER_ASSIGN(uint64_t rdev, names_.open_rdev(n.gid, n.rdev_sealed));
            put_u64(h, rdev);
        }
        COFFER_ASSIGN(auto xs, ix_->xattrs(ino));
        std::vector<std::pair<std::string, Bytes>> xattrs;
        for (const auto& x : xs) {
            COFFER_ASSIGN(std::string name, names_.open_xattr_name(n.gid, x.name_sealed));
            COFFER_ASSIGN(Bytes value, names_.open_xattr_value(n.gid, x.value_sealed));
            xattrs.emplace_back(std::move(name), std::move(value));
        }
        std::sort(xattrs.begin(), xattrs.end());
        put_u64(h, xattrs.size());
        for (const auto& [name, value] : xattrs) {
            put_str(h, name);
            put_u64(h, value.size());
            h.update(value);
        }
        if (!S_ISDIR(n.mode)) continue;
        std::vector<Entry> entries;
        Status st;
        COFFER_TRY(ix_->list_dirents(ino, 0, [&](const index::DirentRow& d) {
            auto name = names_.open_name(n.gid, d.name_sealed);
            if (!name.ok()) {
                st = std::move(name).error();
                return false;
            }
            entries.push_back({std::move(*name), d.child});
            return true;
        }));
        COFFER_TRY(st);
        std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) { return a.name < b.name; });
        put_u64(h, entries.size());
        // Children are hashed after the whole list, deepest-first: push in
        // reverse so the first name is walked first.
        for (const auto& e : entries) put_str(h, e.name);
        for (auto it = entries.rbegin(); it != entries.rend(); ++it) stack.push_back(it->child);
    }
    return to_hex(h.finish());
}

}  // namespace coffer::vfs
