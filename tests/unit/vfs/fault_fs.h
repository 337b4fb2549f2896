// A power-cut simulator for crash tests (after LevelDB's fault_injection_test).
//
// While installed it sits under the two ways coffer writes local state:
//   - io::Hooks (staging logs: pwrite / fdatasync / ftruncate), and
//   - a SQLite VFS shim, registered as the default VFS, wrapping "unix"
//     (index.db, its -wal and any journal: xWrite / xTruncate / xSync).
// For every file under `root` it remembers each write and truncate that was
// not made durable yet, with the bytes and size it replaced. A sync of a file
// (fdatasync, xSync) makes everything written to that file so far durable —
// per file, not per descriptor, as a real page cache does.
//
// crash() is the power cut seen at the next boot. The model, kept simple:
//   - a write or truncate made durable by a sync survives;
//   - every other write/truncate is independently either dropped (undone)
//     or kept, whole (never torn: SQLite's "powersafe overwrite", which the
//     unix VFS reports, promises no more). With no keep seed all are dropped.
//     Kept ones are re-applied in their original order.
//   - directory entries (a file created, deleted or renamed) are durable at
//     once, without a directory fsync. Real file systems need the fsync;
//     this layer does not check that coffer does it.
//   - the SQLite -shm file is not storage (it is rebuilt from the WAL): it is
//     deleted.
// Files are tracked by path, so the process must have closed them (destroy
// the vfs::Core) before crash(); the descriptors in use at the time do not
// matter.
//
// cut_power() / cut_power_after(n) freeze the disk: from then on every
// mutating call (write, truncate, sync, delete through SQLite, and every
// mutating call of an attached vault backend — see below) fails with EIO
// and changes nothing, as if the machine had lost power at that instant
// while the process ran on. Counting mutating calls gives kill points
// inside any operation, e.g. publish.
//
// The vault is not written through these hooks but through a
// store::Backend. attach() puts a FaultBackend (tests/unit/store) under the
// same power: each of its mutating calls (write_new, replace, remove,
// sync_dir) is one step of this layer's count, and crash() also drops the
// vault files that were not durable yet (FaultBackend::crash()).
//
// While installed, fsync(2) and fdatasync(2) are interposed and flush
// nothing: the layer's record is the durability that counts (the vault's
// is the FaultBackend's), and real flushes of the test's temporary folders
// would only cost time.
//
// One instance at a time; install()/uninstall() are not thread-safe, the
// hooks are.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "coffer/util/bytes.h"
#include "../store/fault_backend.h"

namespace coffer::testing {

class FaultFs {
public:
    // Tracks files whose path starts with root (an absolute folder path).
    explicit FaultFs(std::string root);
    ~FaultFs();  // uninstalls
    FaultFs(const FaultFs&) = delete;
    FaultFs& operator=(const FaultFs&) = delete;

    void install();
    void uninstall();

    // From now on nothing reaches the disk.
    void cut_power();
    // The next n mutating calls succeed, the one after cuts the power (and fails).
    void cut_power_after(uint64_t n);
    bool power_is_cut() const;
    // Mutating calls seen (tracked files and attached vault backends), for
    // sizing kill points.
    uint64_t mutating_calls() const;
    // Puts the vault backend under this power switch for good: it must not
    // write after this layer is gone, and must live as long as crash() may
    // be called.
    void attach(FaultBackend& vault);
    // One mutating call of an attached backend: false once the power is cut.
    bool step();

    struct CrashStats {
        uint64_t files = 0;    // files with something not durable
        uint64_t dropped = 0;  // writes/truncates undone
        uint64_t kept = 0;     // writes/truncates that survived anyway
    };
    // The power cut as the next boot sees it (see above). keep_seed: each
    // non-durable write is kept with probability 1/2 (seeded); nullopt: none
    // is. Attached vault backends lose what they had not made durable. Restores power and forgets everything: the files on disk are the
    // new durable state.
    CrashStats crash(std::optional<uint64_t> keep_seed = std::nullopt);

    // ---- used by the hooks (public for the C callbacks; not for tests).
    // Each runs `real` (the system or SQLite call) under the layer's lock,
    // after recording what it changes, and returns false without running
    // it once the power is cut. Paths outside root pass straight through.
    struct Change {
        bool truncate = false;
        uint64_t off = 0;       // write: where; truncate: the new size
        Bytes old_bytes;        // bytes replaced (write) or cut off (truncate)
        uint64_t old_size = 0;  // file size before
        Bytes new_bytes;        // write: what was written
    };
    bool tracked(const std::string& path) const;
    bool write_through(const std::string& path, uint64_t off, ByteSpan data, const std::function<void()>& real);
    bool truncate_through(const std::string& path, uint64_t size, const std::function<void()>& real);
    bool sync_through(const std::string& path);  // marks durable; no real sync is needed
    bool delete_through(const std::string& path, const std::function<void()>& real);
    // A file opened by SQLite: created (so its durable state is empty) and
    // whether it is a main database (whose -shm goes at the crash).
    void opened(const std::string& path, bool created, bool main_db);
    bool installed() const { return installed_; }

private:
    bool step_locked();  // counts one mutating call; false once the power is cut

    std::string root_;
    mutable std::mutex mu_;
    std::map<std::string, std::vector<Change>> pending_;
    std::set<std::string> databases_;
    std::vector<FaultBackend*> vaults_;
    uint64_t calls_ = 0;
    std::optional<uint64_t> cut_at_;  // calls_ value at which the power goes
    bool cut_ = false;
    bool installed_ = false;
};

}  // namespace coffer::testing
