// The seam between coffer and wherever the vault's files live. Every access
// to the vault goes through this interface: VaultDir (a local or synced
// folder) is the real one, MemoryBackend an in-memory one; a vault on object
// storage or behind rclone would be a third (docs/ARCHITECTURE.md).
//
// Paths are relative to the vault, '/'-separated ("objects/ab/<id>"); an
// absolute path, ".." or a NUL byte is refused with Code::invalid before
// anything is touched. The cloud controls what is in the vault, so every
// read is bounded by the caller and everything read is checked by format/.
//
// Errors every call may give: Code::invalid (the path), Code::io or another
// OS code (the storage failed). Code::pending means "not there (yet)": the
// sync client may not have delivered it. Code::corrupt means the storage
// holds something a vault never does (a symlink, a FIFO, a file larger
// than the caller's cap).
//
// tmp/ belongs to the backend (VaultDir stages its writes there): what is
// in it is never a vault file.
//
// Thread safety: every call may run on any thread at the same time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "coffer/util/bytes.h"
#include "coffer/util/result.h"
#include "coffer/util/source_file.h"

namespace coffer::store {

class Backend {
public:
    virtual ~Backend() = default;

    // Where the vault is, for messages: a folder path, "memory", ...
    virtual std::string describe() const = 0;

    // ---- reads
    // Names directly in folder rel_dir ("" is the vault), sorted, without
    // "." and ".."; sub-folders are listed by name too. An absent folder
    // lists empty (a vault fresh from the cloud may lack journal/<device>).
    virtual Result<std::vector<std::string>> list(std::string_view rel_dir) const = 0;
    // Whether rel (a file or a folder) is there; false on any error.
    virtual bool exists(std::string_view rel) const = 0;
    // At most max_len bytes of rel from offset on: fewer only where the file
    // ends (none at or past its end). Allocates no more than it returns.
    // Code::pending if rel is absent.
    virtual Result<Bytes> read_at(std::string_view rel, uint64_t offset, size_t max_len) const = 0;
    // rel opened for many reads (objects; segments hashed as they stream).
    // The file seen is the one there at the call: a later replace() does not
    // change what the returned file reads. Reads through it are pread(2) on
    // a descriptor (VaultDir: the vault file itself, with SourceFile's
    // direct reads), so the hot path costs nothing over using the folder
    // directly. Code::pending if absent.
    virtual Result<std::shared_ptr<SourceFile>> open_read(std::string_view rel) const = 0;

    // The whole of rel, built on read_at: Code::corrupt naming rel if it is
    // larger than max_size (nothing larger is read into memory).
    Result<Bytes> read(std::string_view rel, uint64_t max_size) const;

    // ---- changes
    // rel appears complete or not at all (never a prefix of data), and never
    // replaces a file already there: Code::exists, the old bytes unchanged.
    // Parent folders are created. durable: the file and its name survive a
    // power cut once this returns; otherwise only after sync_dir() of its
    // folder (a batch of files, one folder sync).
    virtual Status write_new(std::string_view rel, ByteSpan data, bool durable = true) = 0;
    // rel is atomically the new bytes, durably: a reader sees the old file
    // or the new one, never a mix. Only for coffer.vault (the one file a
    // vault changes in place).
    virtual Status replace(std::string_view rel, ByteSpan data) = 0;
    // rel is gone; an absent file (or folder on the way) is not an error.
    virtual Status remove(std::string_view rel) = 0;
    // Makes every write_new(durable = false) into folder rel_dir durable.
    // Code::pending if the folder is absent.
    virtual Status sync_dir(std::string_view rel_dir) = 0;
    // The folders of a new vault: objects/ journal/ snapshots/ tmp/, durably.
    virtual Status create_layout() = 0;
};

}  // namespace coffer::store
