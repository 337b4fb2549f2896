// The tree: directory entries and extended attributes.
#include "coffer/index/index.h"
#include "rows.h"

namespace coffer::index {

using namespace rows;

// ---------------------------------------------------------------- dirents

Result<std::optional<DirentRow>> Index::dirent(Ino parent, ByteSpan tag) {
    Stmt& s = db_->cached("SELECT id, parent, tag, name, child FROM dirents WHERE parent=? AND tag=?");
    s.bind(1, static_cast<int64_t>(parent)).bind(2, tag);
    COFFER_ASSIGN(bool row, s.step());
    if (!row) return std::optional<DirentRow>{};
    DirentRow d = read_dirent(s);
    s.reset();
    return std::optional<DirentRow>(std::move(d));
}
Status Index::insert_dirent(Ino parent, ByteSpan tag, ByteSpan name_sealed, Ino child) {
    return db_->cached("INSERT INTO dirents(parent, tag, name, child) VALUES(?,?,?,?)")
        .bind(1, static_cast<int64_t>(parent))
        .bind(2, tag)
        .bind(3, name_sealed)
        .bind(4, static_cast<int64_t>(child))
        .exec();
}
Status Index::delete_dirent(Ino parent, ByteSpan tag) {
    return db_->cached("DELETE FROM dirents WHERE parent=? AND tag=?")
        .bind(1, static_cast<int64_t>(parent))
        .bind(2, tag)
        .exec();
}
Status Index::set_dirent_child(Ino parent, ByteSpan tag, Ino child) {
    return db_->cached("UPDATE dirents SET child=? WHERE parent=? AND tag=?")
        .bind(1, static_cast<int64_t>(child))
        .bind(2, static_cast<int64_t>(parent))
        .bind(3, tag)
        .exec();
}
Result<bool> Index::dir_empty(Ino dir) {
    Stmt& s = db_->cached("SELECT 1 FROM dirents WHERE parent=? LIMIT 1");
    s.bind(1, static_cast<int64_t>(dir));
    COFFER_ASSIGN(bool row, s.step());
    if (row) s.reset();
    return !row;
}
Status Index::list_dirents(Ino parent, int64_t after, const std::function<bool(const DirentRow&)>& fn) {
    // Not a cached statement: a readdir callback may run other queries.
    COFFER_ASSIGN(Stmt s, db_->prepare("SELECT id, parent, tag, name, child FROM dirents WHERE parent=? AND id>? "
                                       "ORDER BY id"));
    s.bind(1, static_cast<int64_t>(parent)).bind(2, after);
    for (;;) {
        COFFER_ASSIGN(bool row, s.step());
        if (!row) break;
        if (!fn(read_dirent(s))) break;
    }
    return {};
}
Result<std::optional<DirentRow>> Index::first_dirent_of(Ino child) {
    Stmt& s = db_->cached("SELECT id, parent, tag, name, child FROM dirents WHERE child=? ORDER BY id LIMIT 1");
    s.bind(1, static_cast<int64_t>(child));
    COFFER_ASSIGN(bool row, s.step());
    if (!row) return std::optional<DirentRow>{};
    DirentRow d = read_dirent(s);
    s.reset();
    return std::optional<DirentRow>(std::move(d));
}

// ---------------------------------------------------------------- xattrs
Result<std::optional<XattrRow>> Index::xattr(Ino ino, ByteSpan tag) {
    Stmt& s = db_->cached("SELECT tag, name, value FROM xattrs WHERE ino=? AND tag=?");
    s.bind(1, static_cast<int64_t>(ino)).bind(2, tag);
    COFFER_ASSIGN(bool row, s.step());
    if (!row) return std::optional<XattrRow>{};
    XattrRow x{copy(s.col_blob(0)), copy(s.col_blob(1)), copy(s.col_blob(2))};
    s.reset();
    return std::optional<XattrRow>(std::move(x));
}
Status Index::put_xattr(Ino ino, const XattrRow& x) {
    return db_->cached("INSERT OR REPLACE INTO xattrs(ino, tag, name, value) VALUES(?,?,?,?)")
        .bind(1, static_cast<int64_t>(ino))
        .bind(2, x.tag)
        .bind(3, x.name_sealed)
        .bind(4, x.value_sealed)
        .exec();
}
Status Index::delete_xattr(Ino ino, ByteSpan tag) {
    return db_->cached("DELETE FROM xattrs WHERE ino=? AND tag=?")
        .bind(1, static_cast<int64_t>(ino))
        .bind(2, tag)
        .exec();
}
Result<std::vector<XattrRow>> Index::xattrs(Ino ino) {
    std::vector<XattrRow> out;
    Stmt& s = db_->cached("SELECT tag, name, value FROM xattrs WHERE ino=?");
    s.bind(1, static_cast<int64_t>(ino));
    for (;;) {
        COFFER_ASSIGN(bool row, s.step());
        if (!row) break;
        out.push_back({copy(s.col_blob(0)), copy(s.col_blob(1)), copy(s.col_blob(2))});
    }
    return out;
}

Result<std::vector<Ino>> Index::inos_with_xattrs() {
    return all_inos(db_->cached("SELECT DISTINCT ino FROM xattrs"));
}
}  // namespace coffer::index
