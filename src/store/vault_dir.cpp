// The vault folder. The cloud controls what is in it, so every path is
// resolved beneath the root without following symlinks, and every new file
// appears by an atomic rename of a complete, fsynced tmp file.
#include "coffer/store/vault_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdio>

#include "rel_path.h"

namespace coffer::store {

namespace {

std::atomic<bool> g_no_openat2{false};

std::string str(std::string_view s) { return std::string(s); }

int retry_openat(int dirfd, const char* name, int flags, mode_t mode) {
    int fd;
    do fd = ::openat(dirfd, name, flags, mode);
    while (fd < 0 && errno == EINTR);
    return fd;
}

// Without openat2: one component at a time, never following a symlink.
// ".." was refused by rel_path::check, so each step stays beneath dirfd.
int walk_beneath(int dirfd, std::string_view rel, int flags, mode_t mode) {
    std::vector<std::string> comps = rel_path::components(rel);
    if (comps.empty()) comps.emplace_back(".");
    UniqueFd cur;
    int at = dirfd;
    // O_NOFOLLOW on a symlink fails with ENOTDIR or ELOOP depending on the
    // other flags; report ELOOP as openat2 does.
    auto failed = [&](const std::string& name) {
        int err = errno;
        struct stat st;
        if (::fstatat(at, name.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode)) err = ELOOP;
        return -err;
    };
    for (size_t i = 0; i + 1 < comps.size(); ++i) {
        int fd = retry_openat(at, comps[i].c_str(), O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC, 0);
        if (fd < 0) return failed(comps[i]);
        cur.reset(fd);
        at = fd;
    }
    int fd = retry_openat(at, comps.back().c_str(), flags | O_NOFOLLOW, mode);
    if (fd < 0) return failed(comps.back());
    if (flags & O_PATH) {  // O_PATH|O_NOFOLLOW opens a symlink itself
        struct stat st;
        if (::fstat(fd, &st) == 0 && S_ISLNK(st.st_mode)) {
            ::close(fd);
            return -ELOOP;
        }
    }
    return fd;
}

// An fd for rel beneath dirfd, or -errno. ELOOP: a symlink on the way;
// EXDEV: the path would leave dirfd.
int open_raw(int dirfd, std::string_view rel, int flags, mode_t mode = 0) {
    flags |= O_CLOEXEC;
    std::string path = rel.empty() ? std::string(".") : std::string(rel);
    if (!g_no_openat2.load(std::memory_order_relaxed)) {
        struct open_how how {};
        how.flags = static_cast<uint64_t>(flags);
        how.mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0;
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS;
        long fd;
        do fd = ::syscall(SYS_openat2, dirfd, path.c_str(), &how, sizeof how);
        while (fd < 0 && errno == EINTR);
        if (fd >= 0) return static_cast<int>(fd);
        if (errno != ENOSYS) return -errno;
    }
    return walk_beneath(dirfd, path, flags, mode);
}

Error open_error(int err, std::string_view rel) {
    switch (err) {
        case ENOENT:
            return make_error(Code::pending, "vault file " + str(rel) + " has not arrived (pending)");
        case ELOOP:
        case EXDEV:
            return make_error(Code::corrupt, "vault path " + str(rel) +
                                                 " goes through a symbolic link or out of the vault; refused");
        default:
            return sys_error(err, "opening vault file " + str(rel));
    }
}

Status fsync_dir(int dirfd, std::string_view what) {
    int fd = retry_openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC, 0);
    if (fd < 0) return sys_error(errno, "opening vault folder " + str(what) + " to sync it");
    UniqueFd dir(fd);
    if (::fsync(dir.get()) != 0) return sys_error(errno, "syncing vault folder " + str(what));
    return {};
}

// Opens (O_PATH) the folder rel beneath root, creating what is missing.
Result<UniqueFd> ensure_dir(int root, std::string_view rel, bool durable) {
    int fd = ::fcntl(root, F_DUPFD_CLOEXEC, 0);
    if (fd < 0) return sys_error(errno, "dup");
    UniqueFd cur(fd);
    for (const std::string& c : rel_path::components(rel)) {
        // 0700 folders, 0600 files: other local users must not copy the
        // vault to guess its password offline (docs/SECURITY.md).
        if (::mkdirat(cur.get(), c.c_str(), 0700) == 0) {
            if (durable) COFFER_TRY(fsync_dir(cur.get(), rel));
        } else if (errno != EEXIST) {
            return sys_error(errno, "creating vault folder " + str(rel));
        }
        int next = open_raw(cur.get(), c, O_PATH | O_DIRECTORY);
        if (next < 0) return open_error(-next, rel);
        cur.reset(next);
    }
    return cur;
}

std::string random_tmp_name() {
    // Not key material, so not drawn from crypto's (injectable) source: a
    // seeded test source must not make two writers pick the same name.
    uint8_t b[8];
    size_t got = 0;
    while (got < sizeof b) {
        ssize_t n = ::getrandom(b + got, sizeof b - got, 0);
        if (n > 0) got += static_cast<size_t>(n);
        else if (errno != EINTR) std::abort();
    }
    return to_hex(b);
}

// Removes the tmp file unless disarmed (after the rename).
struct TmpFile {
    int dir;
    std::string name;
    bool armed = true;
    ~TmpFile() {
        if (armed) ::unlinkat(dir, name.c_str(), 0);
    }
};

Status write_all(int fd, ByteSpan data, std::string_view rel) {
    size_t done = 0;
    while (done < data.size()) {
        ssize_t n = ::write(fd, data.data() + done, data.size() - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return sys_error(errno, "writing vault file " + str(rel));
        }
        if (n == 0) return make_error(Code::no_space, "writing vault file " + str(rel) + ": short write");
        done += static_cast<size_t>(n);
    }
    return {};
}

enum class Mode { no_replace, replace };

Status publish(int root, std::string_view rel, ByteSpan data, bool durable, Mode mode) {
    COFFER_ASSIGN(auto parts, rel_path::split_leaf(rel));
    auto& [parent, leaf] = parts;
    COFFER_ASSIGN(UniqueFd pdir, ensure_dir(root, parent, durable));
    COFFER_ASSIGN(UniqueFd tdir, ensure_dir(root, "tmp", durable));

    std::string name;
    UniqueFd file;
    for (int attempt = 0; !file; ++attempt) {
        name = random_tmp_name();
        int fd = retry_openat(tdir.get(), name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd >= 0) file.reset(fd);
        else if (errno != EEXIST || attempt > 8) return sys_error(errno, "creating tmp file for " + str(rel));
    }
    TmpFile tmp{tdir.get(), name};
    COFFER_TRY(write_all(file.get(), data, rel));
    if (durable && ::fsync(file.get()) != 0) return sys_error(errno, "syncing vault file " + str(rel));
    // close() can report a deferred write error (NFS, some FUSE folders).
    if (::close(file.release()) != 0) return sys_error(errno, "writing vault file " + str(rel));

    if (mode == Mode::replace) {
        if (::renameat(tdir.get(), name.c_str(), pdir.get(), leaf.c_str()) != 0)
            return sys_error(errno, "renaming into vault file " + str(rel));
    } else if (::renameat2(tdir.get(), name.c_str(), pdir.get(), leaf.c_str(), RENAME_NOREPLACE) != 0) {
        int err = errno;
        // Some file systems lack RENAME_NOREPLACE; link(2) also refuses to
        // replace, atomically.
        if (err == EINVAL || err == ENOSYS) {
            if (::linkat(tdir.get(), name.c_str(), pdir.get(), leaf.c_str(), 0) != 0) err = errno;
            else err = 0;
            if (err != 0 && err != EEXIST) {
                // Neither (an rclone mount, some FUSE remotes): look, then
                // rename. Not atomic, but every name coffer writes is either
                // random or this device's own next sequence number: no other
                // writer races for it.
                struct stat st;
                if (::fstatat(pdir.get(), leaf.c_str(), &st, AT_SYMLINK_NOFOLLOW) == 0) err = EEXIST;
                else if (errno == ENOENT && ::renameat(tdir.get(), name.c_str(), pdir.get(), leaf.c_str()) == 0) {
                    tmp.armed = false;
                    if (durable) COFFER_TRY(fsync_dir(pdir.get(), parent));
                    return {};
                }
            }
        }
        if (err == EEXIST) return make_error(Code::exists, "vault file " + str(rel) + " already exists");
        if (err != 0) return sys_error(err, "renaming into vault file " + str(rel));
        // linked: the tmp name is removed by the guard below
        if (durable) COFFER_TRY(fsync_dir(pdir.get(), parent));
        return {};
    }
    tmp.armed = false;
    if (durable) COFFER_TRY(fsync_dir(pdir.get(), parent));
    return {};
}

}  // namespace

void VaultDir::set_openat2_disabled_for_tests(bool disabled) noexcept { g_no_openat2 = disabled; }

Result<std::unique_ptr<VaultDir>> VaultDir::open(const std::string& path) {
    if (path.empty()) return make_error(Code::invalid, "no vault folder given");
    int fd = ::open(path.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        if (err == ENOENT) return make_error(Code::not_found, "vault folder " + path + " does not exist");
        if (err == ENOTDIR) return make_error(Code::not_dir, path + " is not a folder");
        return sys_error(err, "opening vault folder " + path);
    }
    return std::unique_ptr<VaultDir>(new VaultDir(path, UniqueFd(fd)));
}

Result<UniqueFd> VaultDir::open_beneath(std::string_view rel, int flags, int mode) const {
    COFFER_TRY(rel_path::check(rel));
    int fd = open_raw(root_.get(), rel, flags, static_cast<mode_t>(mode));
    if (fd < 0) return open_error(-fd, rel);
    return UniqueFd(fd);
}

Result<UniqueFd> VaultDir::open_file(std::string_view rel) const {
    // O_NONBLOCK: a FIFO planted in the folder must not hang the open.
    COFFER_ASSIGN(UniqueFd fd, open_beneath(rel, O_RDONLY | O_NONBLOCK | O_NOCTTY));
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return sys_error(errno, "stat of vault file " + str(rel));
    if (!S_ISREG(st.st_mode))
        return make_error(Code::corrupt, "vault file " + str(rel) + " is not a regular file");
    return fd;
}

Result<std::shared_ptr<SourceFile>> VaultDir::open_read(std::string_view rel) const {
    COFFER_ASSIGN(UniqueFd fd, open_file(rel));
    return std::make_shared<SourceFile>(std::move(fd));
}

Result<Bytes> VaultDir::read_at(std::string_view rel, uint64_t offset, size_t max_len) const {
    COFFER_ASSIGN(UniqueFd fd, open_file(rel));
    struct stat st;
    if (::fstat(fd.get(), &st) != 0) return sys_error(errno, "stat of vault file " + str(rel));
    const uint64_t size = static_cast<uint64_t>(st.st_size);
    // Sized by the file, not by max_len (a cap may be far above it); a file
    // that grows meanwhile is read on up to max_len.
    Bytes out(offset < size ? static_cast<size_t>(std::min<uint64_t>(max_len, size - offset)) : 0);
    size_t done = 0;
    for (;;) {
        if (done == out.size()) {
            if (out.size() >= max_len) break;
            // Read to the size it had: grow only if the file did, probing
            // with a small buffer first (growing a full vector doubles it).
            uint8_t probe[4096];
            const size_t want = std::min<size_t>(sizeof probe, max_len - out.size());
            ssize_t n = ::pread(fd.get(), probe, want, static_cast<off_t>(offset + done));
            if (n < 0) {
                if (errno == EINTR) continue;
                return sys_error(errno, "reading vault file " + str(rel));
            }
            if (n == 0) break;
            out.insert(out.end(), probe, probe + n);
            done += static_cast<size_t>(n);
            continue;
        }
        ssize_t n = ::pread(fd.get(), out.data() + done, out.size() - done, static_cast<off_t>(offset + done));
        if (n < 0) {
            if (errno == EINTR) continue;
            return sys_error(errno, "reading vault file " + str(rel));
        }
        if (n == 0) break;
        done += static_cast<size_t>(n);
    }
    out.resize(done);
    return out;
}

Result<std::vector<std::string>> VaultDir::list(std::string_view rel_dir) const {
    COFFER_TRY(rel_path::check(rel_dir));
    int fd = open_raw(root_.get(), rel_dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) {
        if (-fd == ENOENT) return std::vector<std::string>{};
        return open_error(-fd, rel_dir);
    }
    DIR* d = ::fdopendir(fd);
    if (!d) {
        int err = errno;
        ::close(fd);
        return sys_error(err, "listing vault folder " + str(rel_dir));
    }
    std::vector<std::string> names;
    errno = 0;
    while (struct dirent* e = ::readdir(d)) {
        std::string_view n = e->d_name;
        if (n != "." && n != "..") names.emplace_back(n);
        errno = 0;
    }
    int err = errno;
    ::closedir(d);
    if (err != 0) return sys_error(err, "listing vault folder " + str(rel_dir));
    std::sort(names.begin(), names.end());
    return names;
}

bool VaultDir::exists(std::string_view rel) const { return open_beneath(rel, O_PATH).ok(); }

Status VaultDir::write_new(std::string_view rel, ByteSpan data, bool durable) {
    return publish(root_.get(), rel, data, durable, Mode::no_replace);
}

Status VaultDir::replace(std::string_view rel, ByteSpan data) {
    return publish(root_.get(), rel, data, true, Mode::replace);
}

Status VaultDir::remove(std::string_view rel) {
    COFFER_ASSIGN(auto parts, rel_path::split_leaf(rel));
    auto& [parent, leaf] = parts;
    int fd = open_raw(root_.get(), parent, O_PATH | O_DIRECTORY);
    if (fd < 0) {
        if (-fd == ENOENT) return {};
        return open_error(-fd, rel);
    }
    UniqueFd pdir(fd);
    if (::unlinkat(pdir.get(), leaf.c_str(), 0) != 0 && errno != ENOENT)
        return sys_error(errno, "removing vault file " + str(rel));
    return {};
}

Status VaultDir::sync_dir(std::string_view rel_dir) {
    COFFER_ASSIGN(UniqueFd dir, open_beneath(rel_dir, O_PATH | O_DIRECTORY));
    return fsync_dir(dir.get(), rel_dir);
}

Status VaultDir::create_layout() {
    for (const char* d : {"objects", "journal", "snapshots", "tmp"}) COFFER_TRY(ensure_dir(root_.get(), d, true));
    return fsync_dir(root_.get(), ".");
}

}  // namespace coffer::store
