// Thin RAII wrapper over SQLite: Db and prepared Stmt (reused). Used only
// inside the index: transactions are Index's (index.h: Batch, Savepoint).
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "coffer/util/bytes.h"
#include "coffer/util/result.h"

namespace coffer::index {

class Stmt {
public:
    Stmt() = default;
    Stmt(sqlite3* db, sqlite3_stmt* s) : db_(db), s_(s) {}
    Stmt(Stmt&& o) noexcept : db_(o.db_), s_(std::exchange(o.s_, nullptr)) {}
    Stmt& operator=(Stmt&& o) noexcept;
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;
    ~Stmt();

    // Binding (1-based) returns *this for chaining; errors surface at step().
    Stmt& bind(int i, int64_t v);
    Stmt& bind(int i, ByteSpan v);  // blob (empty span binds a zero-length blob)
    Stmt& bind(int i, std::string_view v);
    Stmt& bind_null(int i);
    // true: a row is ready; false: done. Resets automatically when done.
    Result<bool> step();
    // Runs to completion (INSERT/UPDATE/DELETE) and resets.
    Status exec();
    void reset();

    int64_t col_int(int i) const { return sqlite3_column_int64(s_, i); }
    ByteSpan col_blob(int i) const;
    Id128 col_id(int i) const;  // 16-byte blob (zero id if not 16 bytes)

private:
    sqlite3* db_ = nullptr;
    sqlite3_stmt* s_ = nullptr;
};

class Db {
public:
    static Result<std::unique_ptr<Db>> open(const std::string& path);
    ~Db();
    Db(const Db&) = delete;
    Db& operator=(const Db&) = delete;

    Status exec(const char* sql);
    Result<Stmt> prepare(const char* sql);
    // A cached prepared statement for a string literal (pointer identity).
    Stmt& cached(const char* sql);
    int64_t changes() const { return sqlite3_changes64(db_); }
    int64_t last_rowid() const { return sqlite3_last_insert_rowid(db_); }
    sqlite3* raw() { return db_; }
    Error error(const char* what) const;

private:
    explicit Db(sqlite3* db) : db_(db) {}
    sqlite3* db_;
    std::unordered_map<const char*, Stmt> cache_;
};

}  // namespace coffer::index
