// The in-memory vault. Files are immutable values swapped under one mutex,
// so write_new's check-and-insert is atomic and a reader keeps the version
// it found.
#include "coffer/store/memory_backend.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "rel_path.h"

namespace coffer::store {

namespace {
std::string str(std::string_view s) { return std::string(s); }

Error absent(std::string_view rel) {
    return make_error(Code::pending, "vault file " + str(rel) + " has not arrived (pending)");
}

std::string parent_of(const std::string& rel) {
    auto i = rel.rfind('/');
    return i == std::string::npos ? std::string() : rel.substr(0, i);
}
}  // namespace

Result<MemoryBackend::File> MemoryBackend::find(std::string_view rel) const {
    COFFER_ASSIGN(std::string key, rel_path::normal(rel));
    std::lock_guard lk(mu_);
    auto it = files_.find(key);
    if (it == files_.end()) {
        if (dirs_.count(key)) return make_error(Code::corrupt, "vault file " + str(rel) + " is not a regular file");
        return absent(rel);
    }
    return it->second;
}

Result<std::vector<std::string>> MemoryBackend::list(std::string_view rel_dir) const {
    COFFER_ASSIGN(std::string dir, rel_path::normal(rel_dir));
    const std::string prefix = dir.empty() ? dir : dir + "/";
    std::lock_guard lk(mu_);
    if (files_.count(dir)) return make_error(Code::not_dir, "vault path " + str(rel_dir) + " is not a folder");
    std::vector<std::string> names;
    auto direct_child = [&](const std::string& path) -> bool {
        if (path.size() <= prefix.size() || path.compare(0, prefix.size(), prefix) != 0) return false;
        return path.find('/', prefix.size()) == std::string::npos;
    };
    for (auto it = files_.lower_bound(prefix); it != files_.end() && it->first.starts_with(prefix); ++it)
        if (direct_child(it->first)) names.push_back(it->first.substr(prefix.size()));
    for (auto it = dirs_.lower_bound(prefix); it != dirs_.end() && it->starts_with(prefix); ++it)
        if (direct_child(*it)) names.push_back(it->substr(prefix.size()));
    std::sort(names.begin(), names.end());
    return names;
}

bool MemoryBackend::exists(std::string_view rel) const {
    auto key = rel_path::normal(rel);
    if (!key.ok()) return false;
    std::lock_guard lk(mu_);
    return files_.count(*key) || dirs_.count(*key);
}

Result<Bytes> MemoryBackend::read_at(std::string_view rel, uint64_t offset, size_t max_len) const {
    COFFER_ASSIGN(File f, find(rel));
    if (offset >= f->size()) return Bytes{};
    const size_t n = static_cast<size_t>(std::min<uint64_t>(max_len, f->size() - offset));
    return Bytes(f->begin() + static_cast<ptrdiff_t>(offset), f->begin() + static_cast<ptrdiff_t>(offset + n));
}

Result<std::shared_ptr<SourceFile>> MemoryBackend::open_read(std::string_view rel) const {
    COFFER_ASSIGN(File f, find(rel));
    int fd = ::memfd_create("coffer-vault-file", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) return sys_error(errno, "memfd for vault file " + str(rel));
    UniqueFd file(fd);
    size_t done = 0;
    while (done < f->size()) {
        ssize_t n = ::pwrite(file.get(), f->data() + done, f->size() - done, static_cast<off_t>(done));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return sys_error(n < 0 ? errno : ENOSPC, "memfd for vault file " + str(rel));
        done += static_cast<size_t>(n);
    }
    // Sealed: the reader holds the file as it was, like an open descriptor
    // of a folder's file that replace() renames over.
    if (::fcntl(file.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0)
        return sys_error(errno, "sealing memfd of vault file " + str(rel));
    return std::make_shared<SourceFile>(std::move(file));
}

void MemoryBackend::add_parents_locked(const std::string& rel) {
    for (std::string d = parent_of(rel); !d.empty(); d = parent_of(d)) dirs_.insert(d);
}

Status MemoryBackend::write_new(std::string_view rel, ByteSpan data, bool) {
    COFFER_TRY(rel_path::split_leaf(rel));  // names a file
    COFFER_ASSIGN(std::string key, rel_path::normal(rel));
    auto file = std::make_shared<const Bytes>(data.begin(), data.end());
    std::lock_guard lk(mu_);
    if (files_.count(key) || dirs_.count(key))
        return make_error(Code::exists, "vault file " + str(rel) + " already exists");
    for (std::string d = parent_of(key); !d.empty(); d = parent_of(d))
        if (files_.count(d)) return make_error(Code::not_dir, "vault path " + d + " is not a folder");
    add_parents_locked(key);
    files_.emplace(std::move(key), std::move(file));
    return {};
}

Status MemoryBackend::replace(std::string_view rel, ByteSpan data) {
    COFFER_TRY(rel_path::split_leaf(rel));
    COFFER_ASSIGN(std::string key, rel_path::normal(rel));
    auto file = std::make_shared<const Bytes>(data.begin(), data.end());
    std::lock_guard lk(mu_);
    if (dirs_.count(key)) return make_error(Code::is_dir, "vault path " + str(rel) + " is a folder");
    for (std::string d = parent_of(key); !d.empty(); d = parent_of(d))
        if (files_.count(d)) return make_error(Code::not_dir, "vault path " + d + " is not a folder");
    add_parents_locked(key);
    files_[std::move(key)] = std::move(file);
    return {};
}

Status MemoryBackend::remove(std::string_view rel) {
    COFFER_TRY(rel_path::split_leaf(rel));
    COFFER_ASSIGN(std::string key, rel_path::normal(rel));
    std::lock_guard lk(mu_);
    if (dirs_.count(key)) return make_error(Code::is_dir, "vault path " + str(rel) + " is a folder");
    files_.erase(key);
    return {};
}

Status MemoryBackend::sync_dir(std::string_view rel_dir) {
    COFFER_ASSIGN(std::string dir, rel_path::normal(rel_dir));
    std::lock_guard lk(mu_);
    if (!dir.empty() && !dirs_.count(dir))
        return make_error(Code::pending, "vault folder " + str(rel_dir) + " has not arrived (pending)");
    return {};
}

Status MemoryBackend::create_layout() {
    std::lock_guard lk(mu_);
    for (const char* d : {"objects", "journal", "snapshots", "tmp"}) dirs_.insert(d);
    return {};
}

}  // namespace coffer::store
