// What the replica holds of the vault: the heads it has seen, still there.
#include "core.h"

namespace coffer::vfs {


// Every device's newest segment this device has applied must still be in the
// vault, with the same bytes: otherwise the cloud folder was rolled back (or a
// segment deleted or replaced). Caller holds mu_.
Status Core::check_heads() {
    COFFER_ASSIGN(auto heads, ix_->heads());
    COFFER_ASSIGN(auto intent, ix_->intent());
    for (const auto& h : heads) {
        if (h.device == device_ && intent && intent->first == h.seq) continue;  // written at the next publish
        std::string rel = format::segment_path(h.device, h.seq);
        auto fd = vault_.backend().open_read(rel);
        if (!fd.ok()) {
            if (fd.error().code != Code::pending) return std::move(fd).error();
            return make_error(Code::rolled_back, "vault file " + rel +
                                                     ", which this device has already seen, is missing: the cloud "
                                                     "folder was rolled back or the file deleted");
        }
        // Hashed as it is read: a segment of a large publish is not held in memory.
        format::Hash32 hash{};
        if (!crypto::hash32_fd((*fd)->get(), hash)) return sys_error(errno, "cannot read vault file " + rel);
        if (hash != h.head)
            return make_error(Code::rolled_back, "vault file " + rel +
                                                     " differs from the one this device has seen: replaced by the "
                                                     "cloud folder");
    }
    return {};
}

Result<std::vector<Ino>> Core::regular_files() {
    MutexLock lk(mu_);
    return ix_->regular_files();
}

Result<std::vector<Id128>> Core::referenced_objects() {
    MutexLock lk(mu_);
    return ix_->referenced_objects();
}

}  // namespace coffer::vfs
