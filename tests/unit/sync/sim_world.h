// The multi-device simulator's world: devices, each a vfs::Filesystem with
// its own local state and its own copy of the vault folder, a SyncEngine
// between those copies and the cloud, and what the checks need to know
// about the content each device published.
//
// What must survive. Every regular file carries an xattr `user.sim.id`,
// set at its creation, that names it on every device. When a device syncs,
// the world records, for each file whose content or links it changed since
// its last publish: the content it published (or that it deleted the
// file), the content the file held before the device changed it, and the
// segment that carried it. Segments are ordered causally by the version
// vectors they carry: a record of device E in segment s comes after one of
// device D in segment t when E == D and s > t, or when E's segment s had
// merged D's segment t. A published content that no causally later record
// replaced (a record of the same file, or one whose file held that content
// before the change: a conflict copy made by a merge is a file without the
// id) must, once everything is synced, be the content of some regular file
// on every device (at its path or in a conflict copy). A device that
// removed one of several hard links of a file in an epoch does not require
// that epoch's content to survive (another device's concurrent unlink of
// the other link may rightly delete the file).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "coffer/crypto/crypto.h"
#include "coffer/format/header.h"
#include "coffer/store/vault.h"
#include "coffer/sync/sync.h"
#include "coffer/vfs/filesystem.h"
#include "coffer/vfs/replica.h"
#include "sim_engine.h"
#include "tamper_matrix.h"  // scratch space on /dev/shm

namespace coffer::sim {

constexpr const char* kIdXattr = "user.sim.id";

// The vault every simulated device opens, made once per process (making a
// vault costs a password hash).
struct VaultTemplate {
    Bytes header_file;  // coffer.vault
    format::Header header;
    crypto::SecretBytes master;
};
const VaultTemplate& vault_template();

// While one is alive, CLOCK_REALTIME in this test binary is a virtual
// clock that starts at the same instant in every run and advances one
// millisecond per reading (sim_clock.cpp says why and how).
class VirtualClock {
public:
    VirtualClock();
    ~VirtualClock();
    VirtualClock(const VirtualClock&) = delete;
    VirtualClock& operator=(const VirtualClock&) = delete;
};

struct Device {
    std::string name;
    tamper::ScratchDir state;  // local state on a tmpfs: thousands of seeds would wait on fsync
    std::unique_ptr<store::Vault> vault;  // this device's own copy of the vault folder
    std::unique_ptr<vfs::Filesystem> fs;
    Id128 id;
    store::Backend& copy() { return vault->backend(); }
};
// A device with a fresh local state on a copy holding only coffer.vault.
Result<std::unique_ptr<Device>> open_device(const std::string& name);

// ---- reading a device's tree

// The node at an absolute path ("/a/b"), through peek (no lookup counted).
Result<vfs::Attr> stat_path(vfs::Filesystem& fs, std::string_view path);
Result<Bytes> read_whole(vfs::Filesystem& fs, vfs::Ino ino);
// The content of the regular file at path, or nullopt.
std::optional<std::string> read_path(vfs::Filesystem& fs, std::string_view path);
// The names in the directory at path (no "." and ".."), sorted.
std::vector<std::string> names_in(vfs::Filesystem& fs, std::string_view path);

// The tree as a walk from the root sees it. The walk ends even on a tree
// with a cycle: a directory reached a second time is a problem, not walked.
struct TreeWalk {
    std::map<std::string, vfs::Attr> entries;  // by path
    std::map<std::string, Bytes> files;        // regular files' bytes by path
    std::set<vfs::Ino> reached;                // every node reached
    std::vector<std::string> problems;
};
TreeWalk walk(vfs::Filesystem& fs);

// ---- the world

class World {
public:
    // Devices named by `names`, each attached to a new SyncEngine.
    // Installs a random source seeded by `seed` for crypto (ids, keys,
    // nonces) and the virtual clock until it is destroyed: one World at a
    // time, and the same seed makes the same run.
    World(uint64_t seed, const std::vector<std::string>& names, SyncEngine::Config engine);
    ~World();
    World(const World&) = delete;
    World& operator=(const World&) = delete;

    size_t size() const { return devices_.size(); }
    Device& device(size_t i) { return *devices_.at(i); }
    vfs::Filesystem& fs(size_t i) { return *devices_.at(i)->fs; }
    SyncEngine& engine() { return engine_; }
    const vfs::Ctx& ctx() const { return ctx_; }

    // ---- file operations the content tracking follows. Each returns
    // whether the filesystem accepted it (refusals are part of the game).
    bool create(size_t d, vfs::Ino parent, const std::string& name, ByteSpan content, uint32_t mode = 0644);
    bool write(size_t d, vfs::Ino ino, uint64_t off, ByteSpan data);
    bool truncate(size_t d, vfs::Ino ino, uint64_t size);
    bool unlink(size_t d, vfs::Ino parent, const std::string& name);
    bool rename(size_t d, vfs::Ino parent, const std::string& name, vfs::Ino new_parent,
                const std::string& new_name, unsigned flags);
    bool mkdir(size_t d, vfs::Ino parent, const std::string& name);
    // By path, for the regression tests (REQUIREd by the caller).
    bool create_path(size_t d, std::string_view path, std::string_view content);
    bool write_path(size_t d, std::string_view path, std::string_view content);  // replaces the content

    // sync::sync on device d, recording what it published.
    Result<sync::SyncStats> sync(size_t d);

    // Every device syncs and the engine delivers everything, over and over,
    // until a round moves no file, publishes nothing and applies nothing.
    // Returns problems (empty: quiet).
    std::vector<std::string> converge();
    // The checks on a quiet world: every walk from the root ends and reaches
    // each directory once and every file of the index; every device holds
    // the same digest; what must survive (above) did; fsck of the cloud copy
    // is clean; two new devices that get the cloud's files in two
    // different orders hold the same digest. Returns problems.
    std::vector<std::string> check();
    // Published contents the last check() required to survive (not
    // superseded), so a test can see the check is not vacuous.
    size_t versions_checked() const { return versions_checked_; }

private:
    struct Touch {
        vfs::Ino ino = 0;
        bool unlinked = false;  // a link of it was removed this epoch
    };
    struct Record {
        std::string file;  // its user.sim.id
        size_t device = 0;
        uint64_t seq = 0;  // the segment that carried it
        std::optional<Bytes> content;  // nullopt: the device deleted it
        std::optional<Bytes> base;     // its content before this device changed it
        bool must_survive = false;
    };

    std::string file_id(size_t d, vfs::Ino ino);
    // Before a change: what the file held when this device first changed it since its last publish.
    void note_base(size_t d, vfs::Ino ino);
    void touch(size_t d, vfs::Ino ino, bool unlinked = false);
    void touch_as(size_t d, const std::string& id, vfs::Ino ino, bool unlinked);
    // The version vector of a device's segment, by device index (from the cloud's copy).
    const std::map<size_t, uint64_t>& vector_of(size_t d, uint64_t seq);
    bool causally_before(const Record& a, const Record& b);
    std::string history(const std::vector<const Record*>& records);
    std::vector<std::string> check_fresh_devices(const std::string& want_digest);

    VirtualClock clock_;
    uint64_t seed_;
    SyncEngine engine_;
    crypto::SeededRandom random_;
    std::vector<std::unique_ptr<Device>> devices_;
    vfs::Ctx ctx_{1000, 1000, 0};
    uint64_t next_file_ = 0;
    std::vector<std::map<std::string, Touch>> touched_;  // per device, by file id
    std::vector<std::map<std::string, Bytes>> bases_;    // per device, by file id
    std::vector<Record> records_;
    std::map<std::pair<size_t, uint64_t>, std::map<size_t, uint64_t>> vectors_;
    size_t versions_checked_ = 0;
};

}  // namespace coffer::sim
