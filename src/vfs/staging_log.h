// The staging log: where writes are sealed before a publish re-seals them
// into vault objects (docs/FORMAT.md, "The local state"). Files
// <state>/staging/<n>.log, append-only; a write appends one record (its
// bytes sealed frame by frame, each frame bound to the node, the record id
// and the frame index) to the current log. The index's staging map says
// which (log, position) holds the current bytes of each file range; a
// publish rotates to a new log, and a log nothing points into any more is
// removed. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "coffer/crypto/crypto.h"
#include "coffer/index/index.h"
#include "coffer/util/mutex.h"
#include "coffer/util/result.h"
#include "coffer/util/source_file.h"

namespace coffer::vfs {

// Plaintext bytes of one staging frame; a write is sealed frame by frame.
constexpr uint64_t kFrameSize = 16 * 1024;

class StagingLog {
public:
    // `dir`: the staging folder (created by the caller).
    explicit StagingLog(std::string dir) : dir_(std::move(dir)) {}

    // Starts appending to log `id` (a new session starts one past the last
    // it used, so records of a crashed session are never overwritten).
    Status start(uint64_t id) EXCLUDES(mu_);
    uint64_t current() const EXCLUDES(mu_);
    // Ids of records (part of every frame's AAD) never repeat in a log: a
    // session starts at a random point of the 63-bit space.
    uint64_t next_record_id() { return next_rec_.fetch_add(1); }

    // Appends a sealed record (sealed_size(len) bytes from seal()) to the
    // current log; where it went. A failed write leaves no torn record.
    struct Place {
        uint64_t log = 0, pos = 0;
    };
    Result<Place> append(ByteSpan sealed) EXCLUDES(mu_);
    // Appends go to log current()+1 from now on; the old log stays readable.
    Status rotate() EXCLUDES(mu_);
    // The current log's appends are durable when this returns.
    Status datasync() EXCLUDES(mu_);
    // A log for reading (Code::corrupt if it is missing).
    Result<std::shared_ptr<SourceFile>> file(uint64_t log) EXCLUDES(mu_);
    // Removes every log before the current one that `in_use` says nothing
    // points into any more.
    void drop_unused(const std::function<bool(uint64_t log)>& in_use) EXCLUDES(mu_);

    // ---- records
    static uint64_t sealed_size(uint64_t len);
    // Seals `data` as record `rec_id` of `node` into out (sealed_size bytes);
    // large records on every core.
    static void seal(const crypto::SecretBytes& key, const Id128& node, uint64_t rec_id, ByteSpan data,
                     uint8_t* out);
    // A per-thread buffer for sealing a write (reused across requests).
    static uint8_t* scratch(size_t n);
    // Opens [from, to) of a file from piece `p` of `log` into out.
    static Status read(const SourceFile& log, const Id128& node, const crypto::SecretBytes& key,
                       const index::StagingPiece& p, uint64_t from, uint64_t to, uint8_t* out);

private:
    std::string path_of(uint64_t id) const { return dir_ + "/" + std::to_string(id) + ".log"; }
    Status open_current(uint64_t id) REQUIRES(mu_);

    const std::string dir_;
    mutable Mutex mu_;
    uint64_t id_ GUARDED_BY(mu_) = 0;
    std::shared_ptr<SourceFile> fd_ GUARDED_BY(mu_);
    uint64_t end_ GUARDED_BY(mu_) = 0;
    std::map<uint64_t, std::shared_ptr<SourceFile>> old_ GUARDED_BY(mu_);  // opened for reads
    std::atomic<uint64_t> next_rec_{0};
};

}  // namespace coffer::vfs
