#include "staging_log.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "aad.h"
#include "coffer/util/file_io.h"
#include "coffer/util/parallel.h"

namespace coffer::vfs {

namespace {
// Frames per share of a parallel seal/open: 128 KiB, so small writes and
// reads stay on their own thread.
constexpr size_t kParallelFrames = 8;

// Per-thread buffers: a fresh vector per FUSE request would be a fresh mmap
// (and page faults) for every read or write over 128 KiB.
uint8_t* thread_buffer(size_t n, int slot) {
    thread_local std::vector<uint8_t> bufs[2];
    auto& b = bufs[slot];
    if (b.size() < n) b.resize(n);
    return b.data();
}
}  // namespace

Status StagingLog::start(uint64_t id) {
    uint64_t seed = 0;
    crypto::random_bytes({reinterpret_cast<uint8_t*>(&seed), sizeof seed});
    next_rec_ = seed >> 1;
    MutexLock lk(mu_);
    return open_current(id);
}

Status StagingLog::open_current(uint64_t id) {
    const std::string path = path_of(id);
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return sys_error(errno, "cannot open staging log " + path);
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        int e = errno;
        ::close(fd);
        return sys_error(e, "cannot stat staging log " + path);
    }
    if (fd_) old_[id_] = fd_;
    id_ = id;
    fd_ = std::make_shared<SourceFile>(UniqueFd(fd));
    end_ = static_cast<uint64_t>(st.st_size);
    return {};
}

uint64_t StagingLog::current() const {
    MutexLock lk(mu_);
    return id_;
}

Result<StagingLog::Place> StagingLog::append(ByteSpan sealed) {
    MutexLock lk(mu_);
    const uint64_t pos = end_;
    auto wrote = io::pwrite_all(fd_->get(), sealed, pos, "staging log");
    if (!wrote.ok()) {
        (void)io::truncate(fd_->get(), pos, "staging log");  // drop a torn record
        return std::move(wrote).error();
    }
    end_ = pos + sealed.size();
    return Place{id_, pos};
}

Status StagingLog::rotate() {
    MutexLock lk(mu_);
    return open_current(id_ + 1);
}

Status StagingLog::datasync() {
    std::shared_ptr<SourceFile> fd;
    {
        MutexLock lk(mu_);
        fd = fd_;
    }
    // Outside the lock: appends go on while the disk flushes.
    return io::datasync(fd->get(), "staging log");
}

Result<std::shared_ptr<SourceFile>> StagingLog::file(uint64_t log) {
    MutexLock lk(mu_);
    if (log == id_) return fd_;
    auto it = old_.find(log);
    if (it != old_.end()) return it->second;
    const std::string path = path_of(log);
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return make_error(Code::corrupt, "staging log " + path + " is missing");
    auto p = std::make_shared<SourceFile>(UniqueFd(fd));
    old_[log] = p;
    return p;
}

void StagingLog::drop_unused(const std::function<bool(uint64_t log)>& in_use) {
    MutexLock lk(mu_);
    for (uint64_t id = 1; id < id_; ++id) {
        const std::string path = path_of(id);
        if (::access(path.c_str(), F_OK) != 0) continue;
        if (!in_use(id)) {
            ::unlink(path.c_str());
            old_.erase(id);
        }
    }
}

uint64_t StagingLog::sealed_size(uint64_t len) {
    uint64_t frames = (len + kFrameSize - 1) / kFrameSize;
    return len + frames * crypto::kSealOverhead;
}

void StagingLog::seal(const crypto::SecretBytes& key, const Id128& node, uint64_t rec_id, ByteSpan data,
                      uint8_t* out) {
    const uint64_t frames = (data.size() + kFrameSize - 1) / kFrameSize;
    const uint64_t stride = kFrameSize + crypto::kSealOverhead;
    // Frames are independent: a large write is sealed on every core.
    par::for_ranges(frames, kParallelFrames, [&](size_t f0, size_t f1) {
        for (uint64_t f = f0; f < f1; ++f) {
            uint64_t off = f * kFrameSize;
            uint64_t n = std::min<uint64_t>(kFrameSize, data.size() - off);
            crypto::seal_into(key, data.subspan(off, n), aad::frame(node, rec_id, f), out + f * stride);
        }
        return true;
    });
}

uint8_t* StagingLog::scratch(size_t n) { return thread_buffer(n, 1); }

Status StagingLog::read(const SourceFile& log, const Id128& node, const crypto::SecretBytes& key,
                        const index::StagingPiece& p, uint64_t from, uint64_t to, uint8_t* out) {
    uint64_t r0 = p.skip + (from - p.off), r1 = r0 + (to - from);
    uint64_t f0 = r0 / kFrameSize, f1 = (r1 - 1) / kFrameSize;
    const uint64_t stride = kFrameSize + crypto::kSealOverhead;
    uint64_t last_plain = std::min<uint64_t>(kFrameSize, p.rec_len - f1 * kFrameSize);
    uint64_t start = p.pos + f0 * stride;
    uint64_t stop = p.pos + f1 * stride + last_plain + crypto::kSealOverhead;
    COFFER_ASSIGN(ByteSpan got, log.read(start, stop - start));
    const uint8_t* sealed = got.data();
    if (got.size() < stop - start) return make_error(Code::corrupt, "staging log is truncated");
    // Frames wholly inside the range open straight into `out`; the partial
    // ones at either end go through a scratch frame. A large read opens its
    // frames on every core.
    bool ok = par::for_ranges(f1 - f0 + 1, kParallelFrames, [&](size_t i0, size_t i1) {
        for (uint64_t f = f0 + i0; f < f0 + i1; ++f) {
            uint64_t plen = std::min<uint64_t>(kFrameSize, p.rec_len - f * kFrameSize);
            ByteSpan box(sealed + (f - f0) * stride, plen + crypto::kSealOverhead);
            uint64_t fstart = f * kFrameSize;
            uint64_t a = std::max(r0, fstart), b = std::min(r1, fstart + plen);
            if (a >= b) continue;
            bool whole = a == fstart && b == fstart + plen;
            uint8_t* plain = whole ? out + (a - r0) : thread_buffer(kFrameSize, 0);
            if (!crypto::open_into(key, box, aad::frame(node, p.rec_id, f), plain).ok()) return false;
            if (!whole) std::memcpy(out + (a - r0), plain + (a - fstart), b - a);
        }
        return true;
    });
    if (!ok) return make_error(Code::corrupt, "staging log frame failed authentication");
    return {};
}

}  // namespace coffer::vfs
