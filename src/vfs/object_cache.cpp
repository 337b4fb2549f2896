#include "object_cache.h"

#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include "coffer/format/object.h"

namespace coffer::vfs {

size_t ObjectCache::budget() {
    struct rlimit r{};
    if (::getrlimit(RLIMIT_NOFILE, &r) != 0 || r.rlim_cur == RLIM_INFINITY) return 512;
    constexpr rlim_t kReserve = 256;
    rlim_t spare = r.rlim_cur > kReserve + 32 ? (r.rlim_cur - kReserve) / 2 : 16;
    return static_cast<size_t>(std::min<rlim_t>(spare, 512));
}

Result<std::shared_ptr<SourceFile>> ObjectCache::open(const Id128& id) {
    std::string rel = format::object_path(id);
    {
        MutexLock lk(mu_);
        auto it = open_.find(rel);
        if (it != open_.end()) return it->second;
    }
    COFFER_ASSIGN(std::shared_ptr<SourceFile> fd, vault_.open_read(rel));
    const size_t want = format::object_header_size(format::object_version_for(header_.version));
    COFFER_ASSIGN(ByteSpan head, fd->read(0, want));
    if (head.size() < want) return make_error(Code::corrupt, "object " + id.hex() + " is truncated");
    COFFER_ASSIGN(auto info, format::check_object_header(head, id, header_.version, object_key_,
                                                         header_.key_epoch));
    if (info.length) {
        // The authenticated length: bytes cut off or appended are tampering
        // even where no chunk a file reads is touched.
        struct stat st {};
        if (::fstat(fd->get(), &st) != 0) return sys_error(errno, "stat object " + id.hex());
        if (static_cast<uint64_t>(st.st_size) != *info.length)
            return make_error(Code::corrupt, "object " + id.hex() + " is " + std::to_string(st.st_size) +
                                                 " bytes, its header says " + std::to_string(*info.length));
    }
    auto p = std::move(fd);
    MutexLock lk(mu_);
    if (open_.size() >= max_open_) open_.clear();  // bounded; objects are immutable
    open_[rel] = p;
    return p;
}

}  // namespace coffer::vfs
