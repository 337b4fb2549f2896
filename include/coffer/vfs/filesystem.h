// The filesystem core, FUSE-free. Every method is thread-safe. Inode numbers
// are local (1 = root); nodes are named by global ids in the vault.
// Errors are coffer::Error; the FUSE layer turns them into errno.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "coffer/crypto/crypto.h"
#include "coffer/format/header.h"
#include "coffer/util/result.h"

namespace coffer::store { class Vault; }

namespace coffer::vfs {

class Replica;  // replica.h: what the sync layer needs of the filesystem

using Ino = uint64_t;
constexpr Ino kRootIno = 1;

struct Attr {
    Ino ino = 0;
    uint32_t mode = 0;  // type bits + permissions
    uint32_t nlink = 0;
    uint32_t uid = 0, gid = 0;
    uint64_t rdev = 0;
    uint64_t size = 0;
    uint64_t blocks = 0;  // 512-byte units actually stored
    struct timespec atime{}, mtime{}, ctime{};
};

// The caller's credentials (from the FUSE request).
struct Ctx {
    uint32_t uid = 0, gid = 0;
    uint32_t umask = 0;
};

// setattr: which fields to change.
struct SetAttrReq {
    std::optional<uint32_t> mode;  // permission bits only
    std::optional<uint32_t> uid, gid;
    std::optional<uint64_t> size;
    enum class Time { keep, now, set };
    Time atime = Time::keep, mtime = Time::keep;
    struct timespec atime_val{}, mtime_val{};
    // The kernel's own ctime (FUSE write-back caching keeps times in the
    // kernel and hands them over); otherwise the change time is "now".
    std::optional<struct timespec> ctime;
    std::optional<uint64_t> fh;  // the handle, when ftruncate/futimens
    // Also drop set-user-ID, and set-group-ID when group-executable
    // (mode_without_privileges), from the mode above or the file's own: the
    // kernel asks for it with a chown, and with a truncate or write by a
    // caller without CAP_FSETID (FUSE_HANDLE_KILLPRIV_V2).
    bool kill_privileges = false;
};

struct DirEntry {
    std::string name;
    Ino ino = 0;
    uint32_t mode = 0;
};
// Return false when the reply buffer is full: that entry was not taken and
// the next readdir call resumes at it. `next` is the offset to resume after it.
using DirFiller = std::function<bool(const DirEntry& e, const Attr* plus_attr, uint64_t next)>;

struct StatFs {
    uint64_t block_size = 4096;
    uint64_t blocks = 0, blocks_free = 0, blocks_avail = 0;
    uint64_t files = 0, files_free = 0;
    uint32_t name_max = 255;
};

struct Options {
    std::string state_dir;   // local state for this vault and device
    bool read_only = false;
    // The name this device shows in conflict copies and `coffer devices`;
    // recorded when the local state is created (empty: the host name).
    std::string device_name;
};

class Filesystem {
public:
    // Opens (or creates and rebuilds from the vault) the local state.
    // The vault must stay alive as long as the Filesystem.
    static Result<std::unique_ptr<Filesystem>> open(store::Vault& vault, format::Header header,
                                                    crypto::SecretBytes master, const Options& opts);
    virtual ~Filesystem() = default;

    virtual Result<Attr> lookup(Ino parent, std::string_view name) = 0;  // +1 lookup count
    // The entry's attributes without counting a lookup (permission checks).
    virtual Result<Attr> peek(Ino parent, std::string_view name) = 0;
    virtual void forget(Ino ino, uint64_t nlookup) = 0;
    virtual Result<Attr> getattr(Ino ino) = 0;
    virtual Result<Attr> setattr(Ino ino, const SetAttrReq& req, const Ctx& ctx) = 0;
    virtual Result<std::string> readlink(Ino ino) = 0;

    // Each creating call returns the new node's Attr with +1 lookup count.
    virtual Result<Attr> mknod(Ino parent, std::string_view name, uint32_t mode, uint64_t rdev,
                               const Ctx& ctx) = 0;
    virtual Result<Attr> mkdir(Ino parent, std::string_view name, uint32_t mode, const Ctx& ctx) = 0;
    virtual Result<Attr> symlink(Ino parent, std::string_view name, std::string_view target,
                                 const Ctx& ctx) = 0;
    virtual Result<Attr> link(Ino ino, Ino new_parent, std::string_view new_name) = 0;
    virtual Status unlink(Ino parent, std::string_view name) = 0;
    virtual Status rmdir(Ino parent, std::string_view name) = 0;
    // flags: RENAME_NOREPLACE / RENAME_EXCHANGE (linux/fs.h values).
    virtual Status rename(Ino parent, std::string_view name, Ino new_parent, std::string_view new_name,
                          unsigned flags) = 0;

    // Handles: a number the FUSE layer passes back; flags are open(2) flags.
    virtual Result<uint64_t> open(Ino ino, int flags) = 0;
    struct Created {
        Attr attr;
        uint64_t fh = 0;
    };
    virtual Result<Created> create(Ino parent, std::string_view name, uint32_t mode, int flags,
                                   const Ctx& ctx) = 0;
    // Returns the bytes read into out (short only at end of file).
    virtual Result<size_t> read(Ino ino, uint64_t fh, uint64_t off, size_t size, uint8_t* out) = 0;
    // O_APPEND handles write at the end whatever `off` says. Returns bytes written.
    virtual Result<size_t> write(Ino ino, uint64_t fh, uint64_t off, ByteSpan data) = 0;
    virtual Status flush(Ino ino, uint64_t fh) = 0;
    virtual Status release(Ino ino, uint64_t fh) = 0;
    // Durable on this device when it returns (staging log + index).
    virtual Status fsync(Ino ino, uint64_t fh, bool datasync) = 0;
    // mode: 0 or FALLOC_FL_KEEP_SIZE / FALLOC_FL_PUNCH_HOLE|KEEP_SIZE / FALLOC_FL_ZERO_RANGE.
    virtual Status fallocate(Ino ino, uint64_t fh, int mode, uint64_t off, uint64_t len) = 0;
    // SEEK_DATA / SEEK_HOLE (others: Code::invalid); Code::not_found→ENXIO is
    // signalled as Error{Code::invalid, ENXIO}.
    virtual Result<uint64_t> lseek(Ino ino, uint64_t fh, uint64_t off, int whence) = 0;

    virtual Result<uint64_t> opendir(Ino ino) = 0;
    // Offsets: 0 = start; "." and ".." come first.
    virtual Status readdir(Ino ino, uint64_t fh, uint64_t offset, bool plus, const DirFiller& fill) = 0;
    virtual Status releasedir(Ino ino, uint64_t fh) = 0;
    virtual Status fsyncdir(Ino ino, uint64_t fh) = 0;

    virtual Result<StatFs> statfs() = 0;
    // flags: XATTR_CREATE / XATTR_REPLACE.
    virtual Status setxattr(Ino ino, std::string_view name, ByteSpan value, int flags) = 0;
    virtual Result<Bytes> getxattr(Ino ino, std::string_view name) = 0;
    virtual Result<std::vector<std::string>> listxattr(Ino ino) = 0;
    virtual Status removexattr(Ino ino, std::string_view name) = 0;

    // Commits everything acknowledged so far durably (used at unmount).
    virtual Status flush_all() = 0;
    virtual bool read_only() const = 0;

    // With the kernel's write-back cache, the kernel keeps mtime and ctime of
    // regular files itself (it stamps them when a write() enters its page
    // cache and hands them over with setattr later; writes reach us after).
    // Then content changes (write, fallocate, truncate without explicit
    // times) leave a regular file's times to those setattr calls: stamping
    // them on arrival would put the daemon's clock after the kernel's and
    // the times would jump at the next mount.
    virtual void set_kernel_owns_file_times(bool on) = 0;

    // Filling the kernel's page cache with plaintext coffer opened anyway (the
    // rest of the frames a small read decrypts). Take content_generation()
    // before the read; fill_kernel_cache runs `store` only if no file's
    // bytes or size changed since and ino has no handle open for writing
    // (the kernel may then hold newer pages of it), and no change of ino can
    // start until `store` returns (changes of other files go on). `store`
    // must not call into this object.
    virtual uint64_t content_generation() const = 0;
    virtual bool fill_kernel_cache(Ino ino, uint64_t generation, const std::function<void()>& store) = 0;

    // The same filesystem as a replica of its vault, for the sync layer.
    virtual Replica& replica() = 0;
};

}  // namespace coffer::vfs
