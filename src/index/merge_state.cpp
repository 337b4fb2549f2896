// What merging keeps in the index: tombs, remembered inode numbers, device
// names, conflict copies, and the undo log with the change capture that
// fills it (SQLite's session extension, which Debian's libsqlite3 has).
#define SQLITE_ENABLE_SESSION 1
#define SQLITE_ENABLE_PREUPDATE_HOOK 1
#include <sqlite3.h>

#include "coffer/index/index.h"
#include "rows.h"

#include <cstring>

namespace coffer::index {

using namespace rows;

namespace {
// The tables a merge may change: what an undo puts back.
constexpr const char* kCapturedTables[] = {"nodes", "dirents", "xattrs", "extents", "tombs"};

Error sqlite_error(sqlite3* db, int rc, const std::string& what) {
    return make_error(Code::io, "local index: " + what + ": " + (db ? sqlite3_errmsg(db) : sqlite3_errstr(rc)));
}
}  // namespace

void Index::SessionDeleter::operator()(void* s) const { sqlite3session_delete(static_cast<sqlite3_session*>(s)); }

// ---------------------------------------------------------------- tombs
Result<std::optional<Tomb>> Index::tomb(Ino ino) {
    Stmt& s = db_->cached("SELECT parent, tag, name FROM tombs WHERE ino=?");
    s.bind(1, static_cast<int64_t>(ino));
    COFFER_ASSIGN(bool row, s.step());
    if (!row) return std::optional<Tomb>{};
    Tomb t{static_cast<Ino>(s.col_int(0)), copy(s.col_blob(1)), copy(s.col_blob(2))};
    s.reset();
    return std::optional<Tomb>(std::move(t));
}
Status Index::set_tomb(Ino ino, const Tomb& t) {
    return db_->cached("INSERT OR REPLACE INTO tombs(ino, parent, tag, name) VALUES(?,?,?,?)")
        .bind(1, static_cast<int64_t>(ino))
        .bind(2, static_cast<int64_t>(t.parent))
        .bind(3, t.tag)
        .bind(4, t.name_sealed)
        .exec();
}
Status Index::delete_tomb(Ino ino) {
    return db_->cached("DELETE FROM tombs WHERE ino=?").bind(1, static_cast<int64_t>(ino)).exec();
}

Result<std::vector<DirentRow>> Index::dirents_of(Ino child) {
    Stmt& s = db_->cached(
        "SELECT d.id, d.parent, d.tag, d.name, d.child FROM dirents d JOIN nodes p ON p.ino = d.parent "
        "WHERE d.child=? ORDER BY p.gid, d.tag");
    s.bind(1, static_cast<int64_t>(child));
    std::vector<DirentRow> out;
    for (;;) {
        COFFER_ASSIGN(bool row, s.step());
        if (!row) break;
        out.push_back(read_dirent(s));
    }
    return out;
}

// ---------------------------------------------------------------- inode numbers
Result<std::optional<Ino>> Index::remembered_ino(const Id128& gid) {
    if (remembered_ == Remembered::unknown) {
        Stmt& any = db_->cached("SELECT 1 FROM inos LIMIT 1");
        COFFER_ASSIGN(bool row, any.step());
        if (row) any.reset();
        remembered_ = row ? Remembered::some : Remembered::none;
    }
    if (remembered_ == Remembered::none) return std::optional<Ino>{};
    Stmt& s = db_->cached("SELECT ino FROM inos WHERE gid=?");
    s.bind(1, id_span(gid));
    COFFER_ASSIGN(bool row, s.step());
    if (!row) return std::optional<Ino>{};
    Ino ino = static_cast<Ino>(s.col_int(0));
    s.reset();
    return std::optional<Ino>(ino);
}
Status Index::remember_ino(const Id128& gid, Ino ino) {
    remembered_ = Remembered::some;
    return db_->cached("INSERT OR REPLACE INTO inos(gid, ino) VALUES(?,?)")
        .bind(1, id_span(gid))
        .bind(2, static_cast<int64_t>(ino))
        .exec();
}

Result<std::vector<Ino>> Index::conflict_copies() {
    return all_inos(db_->cached("SELECT ino FROM nodes WHERE conflict != 0 AND nlink > 0 ORDER BY ino"));
}

// ---------------------------------------------------------------- devices
Status Index::put_device(const DeviceRow& d) {
    return db_->cached("INSERT OR REPLACE INTO devices(device, name, seq, hlc) VALUES(?,?,?,?)")
        .bind(1, id_span(d.device))
        .bind(2, std::string_view(d.name))
        .bind(3, static_cast<int64_t>(d.seq))
        .bind(4, i64(d.hlc))
        .exec();
}
namespace {
DeviceRow read_device(const Stmt& s) {
    DeviceRow d;
    d.device = s.col_id(0);
    ByteSpan name = s.col_blob(1);
    d.name.assign(name.begin(), name.end());
    d.seq = static_cast<uint64_t>(s.col_int(2));
    d.hlc = static_cast<uint64_t>(s.col_int(3));
    return d;
}
}  // namespace
Result<std::vector<DeviceRow>> Index::devices() {
    Stmt& s = db_->cached("SELECT device, name, seq, hlc FROM devices ORDER BY device");
    std::vector<DeviceRow> out;
    for (;;) {
        COFFER_ASSIGN(bool row, s.step());
        if (!row) break;
        out.push_back(read_device(s));
    }
    return out;
}
Result<std::optional<DeviceRow>> Index::device(const Id128& id) {
    Stmt& s = db_->cached("SELECT device, name, seq, hlc FROM devices WHERE device=?");
    s.bind(1, id_span(id));
    COFFER_ASSIGN(bool row, s.step());
    if (!row) return std::optional<DeviceRow>{};
    DeviceRow d = read_device(s);
    s.reset();
    return std::optional<DeviceRow>(std::move(d));
}

// ---------------------------------------------------------------- capture and undo
Status Index::capture_begin() {
    if (session_) return {};
    sqlite3* db = db_->raw();
    sqlite3_session* s = nullptr;
    int rc = sqlite3session_create(db, "main", &s);
    if (rc != SQLITE_OK) return sqlite_error(db, rc, "cannot start recording changes");
    session_.reset(s);
    for (const char* table : kCapturedTables) {
        rc = sqlite3session_attach(s, table);
        if (rc != SQLITE_OK) {
            session_.reset();
            return sqlite_error(db, rc, "cannot record changes to table " + std::string(table));
        }
    }
    return {};
}

Result<Bytes> Index::capture_take() {
    if (!session_) return Bytes{};
    auto* s = static_cast<sqlite3_session*>(session_.get());
    int n = 0;
    void* raw = nullptr;
    int rc = sqlite3session_changeset(s, &n, &raw);
    session_.reset();
    if (rc != SQLITE_OK) return sqlite_error(nullptr, rc, "cannot read the recorded changes");
    Bytes out;
    if (n > 0) {
        int m = 0;
        void* inv = nullptr;
        rc = sqlite3changeset_invert(n, raw, &m, &inv);
        sqlite3_free(raw);
        if (rc != SQLITE_OK) return sqlite_error(nullptr, rc, "cannot invert the recorded changes");
        const auto* p = static_cast<const uint8_t*>(inv);
        out.assign(p, p + m);
        sqlite3_free(inv);
    } else {
        sqlite3_free(raw);
    }
    return out;
}

namespace {
// An undo puts back the rows as they were: a row changed since by what no
// capture saw (a local-only flag) is overwritten, one already gone is left
// gone. A constraint broken on the way is a real mismatch: abort.
int restore_on_conflict(void* ctx, int kind, sqlite3_changeset_iter*) {
    switch (kind) {
        case SQLITE_CHANGESET_DATA:
        case SQLITE_CHANGESET_CONFLICT:
            return SQLITE_CHANGESET_REPLACE;
        case SQLITE_CHANGESET_NOTFOUND:
            return SQLITE_CHANGESET_OMIT;
        default:
            *static_cast<bool*>(ctx) = true;
            return SQLITE_CHANGESET_ABORT;
    }
}
}  // namespace

Status Index::apply_undo(ByteSpan changes) {
    forget_cached();
    if (changes.empty()) return {};
    // The nodes this undo removes keep their inode numbers for when they
    // come back (the kernel may still know them).
    {
        sqlite3_changeset_iter* it = nullptr;
        int rc = sqlite3changeset_start(&it, static_cast<int>(changes.size()), const_cast<uint8_t*>(changes.data()));
        if (rc != SQLITE_OK) return sqlite_error(nullptr, rc, "cannot read a changeset");
        Status st;
        while (st.ok() && sqlite3changeset_next(it) == SQLITE_ROW) {
            const char* table = nullptr;
            int ncol = 0, op = 0, indirect = 0;
            sqlite3changeset_op(it, &table, &ncol, &op, &indirect);
            if (op != SQLITE_DELETE || std::string_view(table) != "nodes") continue;
            sqlite3_value *ino = nullptr, *gid = nullptr;
            sqlite3changeset_old(it, 0, &ino);
            sqlite3changeset_old(it, 1, &gid);
            if (!ino || !gid || sqlite3_value_bytes(gid) != 16) continue;
            Id128 id;
            std::memcpy(id.b.data(), sqlite3_value_blob(gid), 16);
            st = remember_ino(id, static_cast<Ino>(sqlite3_value_int64(ino)));
        }
        sqlite3changeset_finalize(it);
        COFFER_TRY(st);
    }
    bool conflict = false;
    sqlite3* db = db_->raw();
    int rc = sqlite3changeset_apply(db, static_cast<int>(changes.size()), const_cast<uint8_t*>(changes.data()),
                                    nullptr, restore_on_conflict, &conflict);
    if (conflict)
        return make_error(Code::internal, "local index: the merge's undo log does not match the tree "
                                          "(rebuild the local state with a new --state folder)");
    if (rc != SQLITE_OK) return sqlite_error(db, rc, "cannot undo a merged segment");
    return {};
}

Status Index::push_undo(const UndoEntry& e) {
    return db_->cached("INSERT INTO undo(key_lo, key_hi, segments, changes) VALUES(?,?,?,?)")
        .bind(1, e.key_lo)
        .bind(2, e.key_hi)
        .bind(3, e.segments)
        .bind(4, e.changes)
        .exec();
}
Result<std::optional<UndoEntry>> Index::top_undo() {
    Stmt& s = db_->cached("SELECT id, key_lo, key_hi, segments, changes FROM undo ORDER BY id DESC LIMIT 1");
    COFFER_ASSIGN(bool row, s.step());
    if (!row) return std::optional<UndoEntry>{};
    UndoEntry e{s.col_int(0), copy(s.col_blob(1)), copy(s.col_blob(2)), copy(s.col_blob(3)), copy(s.col_blob(4))};
    s.reset();
    return std::optional<UndoEntry>(std::move(e));
}
Status Index::pop_undo(int64_t id) { return db_->cached("DELETE FROM undo WHERE id=?").bind(1, id).exec(); }
Status Index::relabel_undo(ByteSpan from, ByteSpan key_lo, ByteSpan key_hi, ByteSpan segments) {
    COFFER_TRY(db_->cached("UPDATE undo SET key_lo=?2, key_hi=?3 WHERE key_hi=?1")
                   .bind(1, from)
                   .bind(2, key_lo)
                   .bind(3, key_hi)
                   .exec());
    // The segments go with the newest entry: an undo pops the entries of one
    // label together, newest first.
    return db_->cached("UPDATE undo SET segments=?2 WHERE id=(SELECT max(id) FROM undo WHERE key_hi=?1)")
        .bind(1, key_hi)
        .bind(2, segments)
        .exec();
}
Status Index::prune_undo(ByteSpan key) {
    return db_->cached("DELETE FROM undo WHERE key_hi < ?").bind(1, key).exec();
}
Result<uint64_t> Index::undo_count() {
    Stmt& s = db_->cached("SELECT count(*) FROM undo");
    COFFER_ASSIGN(bool row, s.step());
    uint64_t n = row ? static_cast<uint64_t>(s.col_int(0)) : 0;
    s.reset();
    return n;
}

Status Index::touched_by(ByteSpan changes, Touched& out) {
    if (changes.empty()) return {};
    sqlite3_changeset_iter* it = nullptr;
    int rc = sqlite3changeset_start(&it, static_cast<int>(changes.size()), const_cast<uint8_t*>(changes.data()));
    if (rc != SQLITE_OK) return sqlite_error(nullptr, rc, "cannot read a changeset");
    while (sqlite3changeset_next(it) == SQLITE_ROW) {
        const char* table = nullptr;
        int ncol = 0, op = 0, indirect = 0;
        sqlite3changeset_op(it, &table, &ncol, &op, &indirect);
        auto value = [&](int col) -> sqlite3_value* {
            sqlite3_value* v = nullptr;
            if (op == SQLITE_INSERT) sqlite3changeset_new(it, col, &v);
            else sqlite3changeset_old(it, col, &v);
            return v;
        };
        std::string_view t(table);
        if (t == "nodes" || t == "xattrs" || t == "extents" || t == "tombs") {
            if (auto* v = value(0)) out.nodes.push_back(static_cast<Ino>(sqlite3_value_int64(v)));
        } else if (t == "dirents") {
            sqlite3_value *id = value(0), *parent = nullptr, *name = nullptr;
            if (op != SQLITE_UPDATE) {
                parent = value(1);
                name = value(3);
            }
            if (parent && name && sqlite3_value_type(name) == SQLITE_BLOB) {
                const auto* p = static_cast<const uint8_t*>(sqlite3_value_blob(name));
                out.entries.emplace_back(static_cast<Ino>(sqlite3_value_int64(parent)),
                                         Bytes(p, p + sqlite3_value_bytes(name)));
            } else if (id) {
                out.entry_ids.push_back(sqlite3_value_int64(id));
            }
        }
    }
    rc = sqlite3changeset_finalize(it);
    if (rc != SQLITE_OK) return sqlite_error(nullptr, rc, "cannot read a changeset");
    return {};
}

Result<std::vector<Ino>> Index::nlink_mismatches() {
    return all_inos(db_->cached(
        "SELECT n.ino FROM nodes n WHERE ((n.mode & 61440) = 32768 AND "
        "n.nlink != (SELECT count(*) FROM dirents d WHERE d.child = n.ino)) OR "
        "((n.mode & 61440) = 16384 AND n.ino != 1 AND (n.nlink = 0) = EXISTS(SELECT 1 FROM dirents d WHERE d.child = n.ino))"));
}

Result<std::optional<DirentRow>> Index::dirent_by_id(int64_t id) {
    Stmt& s = db_->cached("SELECT id, parent, tag, name, child FROM dirents WHERE id=?");
    s.bind(1, id);
    COFFER_ASSIGN(bool row, s.step());
    if (!row) return std::optional<DirentRow>{};
    DirentRow d = read_dirent(s);
    s.reset();
    return std::optional<DirentRow>(std::move(d));
}

}  // namespace coffer::index
