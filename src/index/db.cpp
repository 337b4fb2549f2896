#include "db.h"

#include <fcntl.h>

#include <cstring>
#include <unordered_map>

#include "coffer/util/private_fs.h"

namespace coffer::index {

Stmt& Stmt::operator=(Stmt&& o) noexcept {
    if (this != &o) {
        if (s_) sqlite3_finalize(s_);
        db_ = o.db_;
        s_ = std::exchange(o.s_, nullptr);
    }
    return *this;
}
Stmt::~Stmt() {
    if (s_) sqlite3_finalize(s_);
}
Stmt& Stmt::bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
}
Stmt& Stmt::bind(int i, ByteSpan v) {
    static const uint8_t kEmpty = 0;
    sqlite3_bind_blob64(s_, i, v.empty() ? &kEmpty : v.data(), v.size(), SQLITE_TRANSIENT);
    return *this;
}
Stmt& Stmt::bind(int i, std::string_view v) {
    sqlite3_bind_text64(s_, i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
    return *this;
}
Stmt& Stmt::bind_null(int i) {
    sqlite3_bind_null(s_, i);
    return *this;
}
Result<bool> Stmt::step() {
    int rc = sqlite3_step(s_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) {
        reset();
        return false;
    }
    std::string msg = std::string("index: ") + sqlite3_errmsg(db_);
    int ext = sqlite3_extended_errcode(db_);
    reset();
    if (ext == SQLITE_FULL || (ext & 0xff) == SQLITE_FULL) return make_error(Code::no_space, msg);
    if ((ext & 0xff) == SQLITE_CONSTRAINT) return make_error(Code::exists, msg);
    if ((ext & 0xff) == SQLITE_CORRUPT) return make_error(Code::corrupt, msg);
    return make_error(Code::io, msg);
}
Status Stmt::exec() {
    COFFER_ASSIGN(bool row, step());
    if (row) reset();
    return {};
}
void Stmt::reset() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
}
ByteSpan Stmt::col_blob(int i) const {
    const void* p = sqlite3_column_blob(s_, i);
    int n = sqlite3_column_bytes(s_, i);
    if (!p || n <= 0) return {};
    return {static_cast<const uint8_t*>(p), static_cast<size_t>(n)};
}
Id128 Stmt::col_id(int i) const {
    Id128 id;
    ByteSpan b = col_blob(i);
    if (b.size() == 16) std::memcpy(id.b.data(), b.data(), 16);
    return id;
}
Result<std::unique_ptr<Db>> Db::open(const std::string& path) {
    // SQLite would create the file 0644 less the umask, and it gives the WAL
    // and SHM files the database's mode: make it 0600 first.
    COFFER_TRY(priv::open_private_file(path, O_RDWR));
    for (const char* suffix : {"-wal", "-shm"}) COFFER_TRY(priv::tighten(path + suffix));
    sqlite3* raw = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             nullptr);
    if (rc != SQLITE_OK) {
        std::string msg = raw ? sqlite3_errmsg(raw) : "out of memory";
        sqlite3_close_v2(raw);
        return make_error(Code::io, "cannot open index " + path + ": " + msg);
    }
    std::unique_ptr<Db> db(new Db(raw));
    sqlite3_extended_result_codes(raw, 1);
    sqlite3_busy_timeout(raw, 5000);
    return db;
}
Db::~Db() {
    cache_.clear();  // finalize statements before closing
    sqlite3_close_v2(db_);
}
Error Db::error(const char* what) const {
    return make_error(Code::io, std::string(what) + ": " + sqlite3_errmsg(db_));
}
Status Db::exec(const char* sql) {
    char* err = nullptr;
    int rc = sqlite3_exec(db_, sql, nullptr, nullptr, &err);
    if (rc != SQLITE_OK) {
        std::string msg = std::string("index: ") + (err ? err : "error");
        sqlite3_free(err);
        if ((rc & 0xff) == SQLITE_FULL) return make_error(Code::no_space, msg);
        return make_error(Code::io, msg);
    }
    return {};
}
Result<Stmt> Db::prepare(const char* sql) {
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK)
        return error("index: prepare");
    return Stmt(db_, s);
}
Stmt& Db::cached(const char* sql) {
    auto it = cache_.find(sql);
    if (it != cache_.end()) return it->second;
    auto r = prepare(sql);
    if (!r.ok()) throw std::logic_error("bad SQL: " + r.error().message());  // a bug, not input
    return cache_.emplace(sql, std::move(r).value()).first->second;
}

}  // namespace coffer::index
