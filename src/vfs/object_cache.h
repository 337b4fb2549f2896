// Vault objects opened for reading, each checked once as it is opened: its
// header (format 2: the object's id, length and key epoch under a MAC) and
// its size against the authenticated length. Objects are immutable, so an
// open one serves every later read; the cache is bounded by the open-files
// limit. Thread-safe.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <unordered_map>

#include "coffer/crypto/crypto.h"
#include "coffer/format/header.h"
#include "coffer/store/vault.h"
#include "coffer/util/mutex.h"
#include "coffer/util/result.h"
#include "coffer/util/source_file.h"

namespace coffer::vfs {

class ObjectCache {
public:
    ObjectCache(store::Backend& vault, const format::Header& header, const crypto::SecretBytes& object_key)
        : vault_(vault), header_(header), object_key_(object_key) {}

    // The object, checked; Code::pending if it has not arrived, Code::corrupt
    // if its header or length is wrong.
    Result<std::shared_ptr<SourceFile>> open(const Id128& id) EXCLUDES(mu_);

    // How many objects stay open: each may hold two descriptors
    // (SourceFile's direct one), so at most half of what the open-files
    // limit leaves after a reserve for logs, SQLite and the vault folder,
    // and never more than 512.
    static size_t budget();

private:
    store::Backend& vault_;
    const format::Header& header_;
    const crypto::SecretBytes& object_key_;
    const size_t max_open_ = budget();
    Mutex mu_;
    std::unordered_map<std::string, std::shared_ptr<SourceFile>> open_ GUARDED_BY(mu_);
};

}  // namespace coffer::vfs
