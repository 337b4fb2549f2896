// The power-cut simulator: io::Hooks and a SQLite VFS shim feeding one
// record of what is not durable yet, and attached vault backends sharing its
// power switch. See fault_fs.h.
#include "fault_fs.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <new>
#include <random>
#include <stdexcept>

#include "coffer/util/file_io.h"

namespace coffer::testing {

namespace {

std::atomic<FaultFs*> g_fs{nullptr};

// ---------------------------------------------------------------- raw file helpers
Bytes pread_range(int fd, uint64_t off, uint64_t len) {
    Bytes out(len);
    size_t done = 0;
    while (done < len) {
        ssize_t n = ::pread(fd, out.data() + done, len - done, static_cast<off_t>(off + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        done += static_cast<size_t>(n);
    }
    out.resize(done);
    return out;
}

void pwrite_range(int fd, ByteSpan data, uint64_t off) {
    size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::pwrite(fd, data.data() + done, data.size() - done, static_cast<off_t>(off + done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) throw std::runtime_error("fault_fs: cannot restore a file: " + std::string(strerror(errno)));
        done += static_cast<size_t>(n);
    }
}

// Current size and the bytes of [off, off+len) that exist (a missing file is empty).
void snapshot_range(const std::string& path, uint64_t off, uint64_t len, uint64_t& size, Bytes& bytes) {
    size = 0;
    bytes.clear();
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    struct stat st;
    if (::fstat(fd, &st) == 0) size = static_cast<uint64_t>(st.st_size);
    if (off < size) bytes = pread_range(fd, off, std::min(len, size - off));
    ::close(fd);
}

std::string fd_path(int fd) {
    char link[64], buf[4096];
    std::snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = ::readlink(link, buf, sizeof buf - 1);
    if (n <= 0) return {};
    return std::string(buf, static_cast<size_t>(n));
}

// ---------------------------------------------------------------- io::Hooks
ssize_t hook_pwrite(int fd, const void* buf, size_t len, off_t off) {
    FaultFs* fs = g_fs.load();
    if (!fs) return ::pwrite(fd, buf, len, off);
    std::string path = fd_path(fd);
    ssize_t r = -1;
    int err = 0;
    bool ok = fs->write_through(path, static_cast<uint64_t>(off),
                                ByteSpan(static_cast<const uint8_t*>(buf), len), [&] {
                                    r = ::pwrite(fd, buf, len, off);
                                    err = errno;
                                });
    if (!ok) {
        errno = EIO;
        return -1;
    }
    errno = err;
    return r;
}

int hook_fdatasync(int fd) {
    FaultFs* fs = g_fs.load();
    if (!fs) return ::fdatasync(fd);
    std::string path = fd_path(fd);
    if (!fs->tracked(path)) return ::fdatasync(fd);
    if (!fs->sync_through(path)) {
        errno = EIO;
        return -1;
    }
    return 0;
}

int hook_ftruncate(int fd, off_t len) {
    FaultFs* fs = g_fs.load();
    if (!fs) return ::ftruncate(fd, len);
    std::string path = fd_path(fd);
    int r = -1, err = 0;
    bool ok = fs->truncate_through(path, static_cast<uint64_t>(len), [&] {
        r = ::ftruncate(fd, len);
        err = errno;
    });
    if (!ok) {
        errno = EIO;
        return -1;
    }
    errno = err;
    return r;
}

const io::Hooks kHooks{hook_pwrite, hook_fdatasync, hook_ftruncate};

// ---------------------------------------------------------------- SQLite VFS shim
sqlite3_vfs* g_real_vfs = nullptr;
sqlite3_vfs g_shim_vfs{};
sqlite3_io_methods g_shim_methods{};

struct ShimFile {
    sqlite3_file base;
    sqlite3_file* real;
    std::string* path;  // nullptr: not tracked
};

constexpr int shim_header_size() { return static_cast<int>((sizeof(ShimFile) + 15) & ~size_t{15}); }

ShimFile* shim(sqlite3_file* f) { return reinterpret_cast<ShimFile*>(f); }
sqlite3_file* real_of(sqlite3_file* f) { return shim(f)->real; }

int x_close(sqlite3_file* f) {
    ShimFile* s = shim(f);
    int rc = s->real->pMethods ? s->real->pMethods->xClose(s->real) : SQLITE_OK;
    delete s->path;
    s->path = nullptr;
    return rc;
}
int x_read(sqlite3_file* f, void* buf, int amt, sqlite3_int64 off) {
    return real_of(f)->pMethods->xRead(real_of(f), buf, amt, off);
}
int x_write(sqlite3_file* f, const void* buf, int amt, sqlite3_int64 off) {
    ShimFile* s = shim(f);
    FaultFs* fs = g_fs.load();
    if (!s->path || !fs) return s->real->pMethods->xWrite(s->real, buf, amt, off);
    int rc = SQLITE_OK;
    bool ok = fs->write_through(*s->path, static_cast<uint64_t>(off),
                                ByteSpan(static_cast<const uint8_t*>(buf), static_cast<size_t>(amt)),
                                [&] { rc = s->real->pMethods->xWrite(s->real, buf, amt, off); });
    return ok ? rc : SQLITE_IOERR_WRITE;
}
int x_truncate(sqlite3_file* f, sqlite3_int64 size) {
    ShimFile* s = shim(f);
    FaultFs* fs = g_fs.load();
    if (!s->path || !fs) return s->real->pMethods->xTruncate(s->real, size);
    int rc = SQLITE_OK;
    bool ok = fs->truncate_through(*s->path, static_cast<uint64_t>(size),
                                   [&] { rc = s->real->pMethods->xTruncate(s->real, size); });
    return ok ? rc : SQLITE_IOERR_TRUNCATE;
}
int x_sync(sqlite3_file* f, int flags) {
    ShimFile* s = shim(f);
    FaultFs* fs = g_fs.load();
    if (!s->path || !fs) return s->real->pMethods->xSync(s->real, flags);
    // Durability is what this layer records; the real disk need not be flushed.
    return fs->sync_through(*s->path) ? SQLITE_OK : SQLITE_IOERR_FSYNC;
}
int x_file_size(sqlite3_file* f, sqlite3_int64* size) { return real_of(f)->pMethods->xFileSize(real_of(f), size); }
int x_lock(sqlite3_file* f, int l) { return real_of(f)->pMethods->xLock(real_of(f), l); }
int x_unlock(sqlite3_file* f, int l) { return real_of(f)->pMethods->xUnlock(real_of(f), l); }
int x_check_reserved(sqlite3_file* f, int* out) {
    return real_of(f)->pMethods->xCheckReservedLock(real_of(f), out);
}
int x_file_control(sqlite3_file* f, int op, void* arg) {
    return real_of(f)->pMethods->xFileControl(real_of(f), op, arg);
}
int x_sector_size(sqlite3_file* f) { return real_of(f)->pMethods->xSectorSize(real_of(f)); }
int x_device_chars(sqlite3_file* f) { return real_of(f)->pMethods->xDeviceCharacteristics(real_of(f)); }
// The wal-index (-shm) is shared memory, not storage: passed through untouched.
int x_shm_map(sqlite3_file* f, int pg, int pgsz, int extend, void volatile** pp) {
    return real_of(f)->pMethods->xShmMap(real_of(f), pg, pgsz, extend, pp);
}
int x_shm_lock(sqlite3_file* f, int offset, int n, int flags) {
    return real_of(f)->pMethods->xShmLock(real_of(f), offset, n, flags);
}
void x_shm_barrier(sqlite3_file* f) { real_of(f)->pMethods->xShmBarrier(real_of(f)); }
int x_shm_unmap(sqlite3_file* f, int del) { return real_of(f)->pMethods->xShmUnmap(real_of(f), del); }
// No memory-mapped reads: every read goes through xRead (SQLite falls back).
int x_fetch(sqlite3_file*, sqlite3_int64, int, void** pp) {
    *pp = nullptr;
    return SQLITE_OK;
}
int x_unfetch(sqlite3_file*, sqlite3_int64, void*) { return SQLITE_OK; }

int v_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* f, int flags, int* out_flags) {
    ShimFile* s = shim(f);
    s->base.pMethods = nullptr;
    s->real = reinterpret_cast<sqlite3_file*>(reinterpret_cast<char*>(f) + shim_header_size());
    s->path = nullptr;
    FaultFs* fs = g_fs.load();
    bool track = name && fs && fs->tracked(name);
    bool existed = track && ::access(name, F_OK) == 0;
    int rc = g_real_vfs->xOpen(g_real_vfs, name, s->real, flags, out_flags);
    if (rc != SQLITE_OK) {
        s->real->pMethods = nullptr;
        return rc;
    }
    s->base.pMethods = &g_shim_methods;
    if (track) {
        s->path = new std::string(name);
        fs->opened(*s->path, !existed, (flags & SQLITE_OPEN_MAIN_DB) != 0);
    }
    return SQLITE_OK;
}
int v_delete(sqlite3_vfs*, const char* name, int sync_dir) {
    FaultFs* fs = g_fs.load();
    if (!fs || !fs->tracked(name)) return g_real_vfs->xDelete(g_real_vfs, name, sync_dir);
    int rc = SQLITE_OK;
    bool ok = fs->delete_through(name, [&] { rc = g_real_vfs->xDelete(g_real_vfs, name, sync_dir); });
    return ok ? rc : SQLITE_IOERR_DELETE;
}
int v_access(sqlite3_vfs*, const char* name, int flags, int* out) {
    return g_real_vfs->xAccess(g_real_vfs, name, flags, out);
}
int v_full_pathname(sqlite3_vfs*, const char* name, int n, char* out) {
    return g_real_vfs->xFullPathname(g_real_vfs, name, n, out);
}
void* v_dlopen(sqlite3_vfs*, const char* name) { return g_real_vfs->xDlOpen(g_real_vfs, name); }
void v_dlerror(sqlite3_vfs*, int n, char* out) { g_real_vfs->xDlError(g_real_vfs, n, out); }
void (*v_dlsym(sqlite3_vfs*, void* h, const char* sym))(void) { return g_real_vfs->xDlSym(g_real_vfs, h, sym); }
void v_dlclose(sqlite3_vfs*, void* h) { g_real_vfs->xDlClose(g_real_vfs, h); }
int v_randomness(sqlite3_vfs*, int n, char* out) { return g_real_vfs->xRandomness(g_real_vfs, n, out); }
int v_sleep(sqlite3_vfs*, int us) { return g_real_vfs->xSleep(g_real_vfs, us); }
int v_current_time(sqlite3_vfs*, double* t) { return g_real_vfs->xCurrentTime(g_real_vfs, t); }
int v_last_error(sqlite3_vfs*, int n, char* out) { return g_real_vfs->xGetLastError(g_real_vfs, n, out); }
int v_current_time64(sqlite3_vfs*, sqlite3_int64* t) { return g_real_vfs->xCurrentTimeInt64(g_real_vfs, t); }
int v_set_syscall(sqlite3_vfs*, const char* name, sqlite3_syscall_ptr p) {
    return g_real_vfs->xSetSystemCall(g_real_vfs, name, p);
}
sqlite3_syscall_ptr v_get_syscall(sqlite3_vfs*, const char* name) {
    return g_real_vfs->xGetSystemCall(g_real_vfs, name);
}
const char* v_next_syscall(sqlite3_vfs*, const char* name) { return g_real_vfs->xNextSystemCall(g_real_vfs, name); }

void register_shim() {
    g_real_vfs = sqlite3_vfs_find("unix");
    if (!g_real_vfs) throw std::runtime_error("fault_fs: SQLite has no unix VFS");
    if (g_real_vfs->iVersion < 3) throw std::runtime_error("fault_fs: the unix VFS is too old");
    g_shim_methods = sqlite3_io_methods{};
    g_shim_methods.iVersion = 3;
    g_shim_methods.xClose = x_close;
    g_shim_methods.xRead = x_read;
    g_shim_methods.xWrite = x_write;
    g_shim_methods.xTruncate = x_truncate;
    g_shim_methods.xSync = x_sync;
    g_shim_methods.xFileSize = x_file_size;
    g_shim_methods.xLock = x_lock;
    g_shim_methods.xUnlock = x_unlock;
    g_shim_methods.xCheckReservedLock = x_check_reserved;
    g_shim_methods.xFileControl = x_file_control;
    g_shim_methods.xSectorSize = x_sector_size;
    g_shim_methods.xDeviceCharacteristics = x_device_chars;
    g_shim_methods.xShmMap = x_shm_map;
    g_shim_methods.xShmLock = x_shm_lock;
    g_shim_methods.xShmBarrier = x_shm_barrier;
    g_shim_methods.xShmUnmap = x_shm_unmap;
    g_shim_methods.xFetch = x_fetch;
    g_shim_methods.xUnfetch = x_unfetch;

    g_shim_vfs = sqlite3_vfs{};
    g_shim_vfs.iVersion = 3;
    g_shim_vfs.szOsFile = shim_header_size() + g_real_vfs->szOsFile;
    g_shim_vfs.mxPathname = g_real_vfs->mxPathname;
    g_shim_vfs.zName = "coffer-fault";
    g_shim_vfs.xOpen = v_open;
    g_shim_vfs.xDelete = v_delete;
    g_shim_vfs.xAccess = v_access;
    g_shim_vfs.xFullPathname = v_full_pathname;
    g_shim_vfs.xDlOpen = v_dlopen;
    g_shim_vfs.xDlError = v_dlerror;
    g_shim_vfs.xDlSym = v_dlsym;
    g_shim_vfs.xDlClose = v_dlclose;
    g_shim_vfs.xRandomness = v_randomness;
    g_shim_vfs.xSleep = v_sleep;
    g_shim_vfs.xCurrentTime = v_current_time;
    g_shim_vfs.xGetLastError = v_last_error;
    g_shim_vfs.xCurrentTimeInt64 = v_current_time64;
    g_shim_vfs.xSetSystemCall = v_set_syscall;
    g_shim_vfs.xGetSystemCall = v_get_syscall;
    g_shim_vfs.xNextSystemCall = v_next_syscall;
    if (sqlite3_vfs_register(&g_shim_vfs, 1) != SQLITE_OK) throw std::runtime_error("fault_fs: cannot register VFS");
}

}  // namespace

// ---------------------------------------------------------------- FaultFs
FaultFs::FaultFs(std::string root) : root_(std::move(root)) {
    if (!root_.empty() && root_.back() != '/') root_.push_back('/');
}

FaultFs::~FaultFs() { uninstall(); }

void FaultFs::install() {
    if (installed_) return;
    FaultFs* expected = nullptr;
    if (!g_fs.compare_exchange_strong(expected, this)) throw std::logic_error("fault_fs: another one is installed");
    register_shim();
    io::set_hooks(&kHooks);
    installed_ = true;
}

void FaultFs::uninstall() {
    if (!installed_) return;
    io::set_hooks(nullptr);
    sqlite3_vfs_unregister(&g_shim_vfs);
    g_fs = nullptr;
    installed_ = false;
}

bool FaultFs::tracked(const std::string& path) const {
    return !path.empty() && path.compare(0, root_.size(), root_) == 0;
}

void FaultFs::cut_power() {
    std::lock_guard lk(mu_);
    cut_ = true;
}

void FaultFs::cut_power_after(uint64_t n) {
    std::lock_guard lk(mu_);
    cut_at_ = calls_ + n;
}

bool FaultFs::power_is_cut() const {
    std::lock_guard lk(mu_);
    return cut_;
}

uint64_t FaultFs::mutating_calls() const {
    std::lock_guard lk(mu_);
    return calls_;
}

bool FaultFs::step_locked() {
    if (cut_) return false;
    if (cut_at_ && calls_ >= *cut_at_) {
        cut_ = true;
        return false;
    }
    ++calls_;
    return true;
}

bool FaultFs::write_through(const std::string& path, uint64_t off, ByteSpan data,
                            const std::function<void()>& real) {
    if (!tracked(path)) {
        real();
        return true;
    }
    std::lock_guard lk(mu_);
    if (!step_locked()) return false;
    Change c;
    c.off = off;
    snapshot_range(path, off, data.size(), c.old_size, c.old_bytes);
    c.new_bytes.assign(data.begin(), data.end());
    pending_[path].push_back(std::move(c));
    real();
    return true;
}

bool FaultFs::truncate_through(const std::string& path, uint64_t size, const std::function<void()>& real) {
    if (!tracked(path)) {
        real();
        return true;
    }
    std::lock_guard lk(mu_);
    if (!step_locked()) return false;
    Change c;
    c.truncate = true;
    c.off = size;
    snapshot_range(path, size, UINT64_MAX / 2, c.old_size, c.old_bytes);
    pending_[path].push_back(std::move(c));
    real();
    return true;
}

bool FaultFs::sync_through(const std::string& path) {
    std::lock_guard lk(mu_);
    if (!step_locked()) return false;
    pending_.erase(path);
    return true;
}

bool FaultFs::delete_through(const std::string& path, const std::function<void()>& real) {
    std::lock_guard lk(mu_);
    if (!step_locked()) return false;
    pending_.erase(path);  // the directory entry is durable at once (see fault_fs.h)
    real();
    return true;
}

void FaultFs::attach(FaultBackend& vault) {
    {
        std::lock_guard lk(mu_);
        vaults_.push_back(&vault);
    }
    vault.attach_power([this] { return step(); });
}

bool FaultFs::step() {
    std::lock_guard lk(mu_);
    return step_locked();
}

void FaultFs::opened(const std::string& path, bool created, bool main_db) {
    std::lock_guard lk(mu_);
    if (created) pending_.erase(path);  // a new (empty) file: nothing of an old one can come back
    if (main_db) databases_.insert(path);
}

FaultFs::CrashStats FaultFs::crash(std::optional<uint64_t> keep_seed) {
    std::vector<FaultBackend*> vaults;
    {
        std::lock_guard lk(mu_);
        vaults = vaults_;
    }
    for (FaultBackend* v : vaults) v->crash();
    std::lock_guard lk(mu_);
    CrashStats stats;
    std::mt19937_64 rng(keep_seed.value_or(0));
    for (auto& [path, changes] : pending_) {
        if (changes.empty()) continue;
        int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
        if (fd < 0) continue;  // deleted since: deletion is durable
        stats.files += 1;
        // Undo everything, newest first: back to the durable state.
        for (auto it = changes.rbegin(); it != changes.rend(); ++it) {
            if (it->truncate) {
                if (::ftruncate(fd, static_cast<off_t>(it->old_size)) != 0)
                    throw std::runtime_error("fault_fs: ftruncate failed");
                pwrite_range(fd, it->old_bytes, it->off);
            } else {
                pwrite_range(fd, it->old_bytes, it->off);
                if (::ftruncate(fd, static_cast<off_t>(it->old_size)) != 0)
                    throw std::runtime_error("fault_fs: ftruncate failed");
            }
        }
        // Then the ones the disk happened to keep, in their order.
        for (const Change& c : changes) {
            bool keep = keep_seed && (rng() & 1);
            if (!keep) {
                stats.dropped += 1;
                continue;
            }
            stats.kept += 1;
            if (c.truncate) {
                if (::ftruncate(fd, static_cast<off_t>(c.off)) != 0)
                    throw std::runtime_error("fault_fs: ftruncate failed");
            } else {
                pwrite_range(fd, c.new_bytes, c.off);
            }
        }
        ::close(fd);
    }
    for (const auto& db : databases_) ::unlink((db + "-shm").c_str());
    pending_.clear();
    databases_.clear();
    cut_ = false;
    cut_at_.reset();
    return stats;
}

}  // namespace coffer::testing

// While the layer is installed the real disk is never flushed: durability is
// what the layer (and an attached FaultBackend) records, and the flushes of
// the test's temporary folders only cost time. The executable's definitions
// win over libc's; the static hooks above call the real calls by syscall.
namespace {
int flush_skipped(int fd) {
    if (::fcntl(fd, F_GETFD) < 0) return -1;  // EBADF as the real call
    return 0;
}
}  // namespace

extern "C" int fsync(int fd) {
    if (coffer::testing::g_fs.load()) return flush_skipped(fd);
    return static_cast<int>(::syscall(SYS_fsync, fd));
}

extern "C" int fdatasync(int fd) {
    if (coffer::testing::g_fs.load()) return flush_skipped(fd);
    return static_cast<int>(::syscall(SYS_fdatasync, fd));
}
