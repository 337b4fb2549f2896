// Helpers shared by the index's table files (not part of its interface).
#pragma once

#include <cstdint>
#include <vector>

#include "db.h"
#include "coffer/index/index.h"

namespace coffer::index::rows {

inline ByteSpan id_span(const Id128& id) { return id.b; }
inline Bytes copy(ByteSpan s) { return Bytes(s.begin(), s.end()); }
// SQLite integers are signed: larger values are clamped (offsets "to the end").
constexpr int64_t i64(uint64_t v) { return v > INT64_MAX ? INT64_MAX : static_cast<int64_t>(v); }
// The first column of every row, as inode numbers.
inline Result<std::vector<Ino>> all_inos(Stmt& s) {
    std::vector<Ino> out;
    for (;;) {
        COFFER_ASSIGN(bool row, s.step());
        if (!row) break;
        out.push_back(static_cast<Ino>(s.col_int(0)));
    }
    return out;
}
// A dirents row selected as (id, parent, tag, name, child).
inline DirentRow read_dirent(const Stmt& s) {
    DirentRow d;
    d.id = s.col_int(0);
    d.parent = static_cast<Ino>(s.col_int(1));
    d.tag = copy(s.col_blob(2));
    d.name_sealed = copy(s.col_blob(3));
    d.child = static_cast<Ino>(s.col_int(4));
    return d;
}
// The most rows each in-memory cache holds.
constexpr size_t kCacheMax = 50000;  // ~15 MiB of node rows at most

}  // namespace coffer::index::rows
