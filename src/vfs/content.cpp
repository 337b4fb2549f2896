// File content: assembling plaintext from the staging log (append-only,
// sealed frame by frame) and from published extents (objects in the vault).
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include <set>
#include <string>
#include <tuple>

#include "aad.h"
#include "coffer/util/log.h"
#include "core.h"

namespace coffer::vfs {

namespace {
// Damage of an object is logged once per local state (one mount), object
// and block (kWholeObject: the object itself), not at every retry of a
// reader. Bounded: once kMaxReported are remembered the set starts over (and
// may log one of them again).
constexpr uint64_t kWholeObject = UINT64_MAX;
constexpr size_t kMaxReported = 4096;
Mutex g_reported_mu;
std::set<std::tuple<std::string, Id128, uint64_t>> g_reported GUARDED_BY(g_reported_mu);

void log_tampered_once(const std::string& state_dir, const Id128& object, uint64_t block,
                       const std::string& message) {
    {
        MutexLock lk(g_reported_mu);
        auto key = std::make_tuple(state_dir, object, block);
        if (g_reported.contains(key)) return;
        if (g_reported.size() >= kMaxReported) g_reported.clear();
        g_reported.insert(std::move(key));
    }
    log::error(message);
}
}  // namespace

namespace {
// A per-thread block buffer: a fresh vector per block read would be an
// allocation on every read.
uint8_t* scratch(size_t n) {
    thread_local std::vector<uint8_t> buf;
    if (buf.size() < n) buf.resize(n);
    return buf.data();
}
}  // namespace


Result<std::shared_ptr<const crypto::SecretBytes>> Core::file_key_locked(const index::NodeRow& n) {
    auto it = keys_.find(n.ino);
    if (it != keys_.end()) return it->second;
    auto key = crypto::open_secret(fkey_wrap_, n.wrapped_key, aad::file_key(n.key_owner.is_zero() ? n.gid : n.key_owner, n.key_epoch));
    if (!key.ok()) return make_error(Code::corrupt, "the data key of " + path_of(n.ino) + " failed authentication");
    return remember_key_locked(n.ino, std::move(*key));
}

std::shared_ptr<const crypto::SecretBytes> Core::remember_key_locked(Ino ino, crypto::SecretBytes key) {
    // A key takes a 64-byte slot of the secret pool; unwrapping again costs
    // one AEAD open of 32 bytes, so the cache only needs the working set.
    constexpr size_t kKeyCacheMax = 4096;
    if (keys_.size() >= kKeyCacheMax) keys_.erase(keys_.begin());
    auto p = std::make_shared<const crypto::SecretBytes>(std::move(key));
    keys_[ino] = p;
    return p;
}

Status Core::read_extent(const crypto::SecretBytes& key, uint32_t key_epoch, const format::ExtentRef& e,
                         uint64_t from, uint64_t to, uint8_t* out, const std::function<std::string()>& what) {
    const uint64_t B = header_.block_size;
    const uint64_t base = e.index * header_.extent_size;
    const uint64_t nblocks = (e.plain_len + B - 1) / B;
    auto fd = objects_.open(e.object);
    if (!fd.ok()) {
        const Error& err = fd.error();
        if (err.code == Code::pending)
            log::warn("pending: " + what() + " waits for object " + e.object.hex() + " (not synced here yet)");
        else if (err.code == Code::corrupt)
            log_tampered_once(opts_.state_dir, e.object, kWholeObject,
                              "tampered: " + what() + ": object " + e.object.hex() + ": " + err.context);
        return std::move(fd).error();
    }
    uint64_t j0 = (from - base) / B, j1 = (to - 1 - base) / B;
    uint64_t start = e.offset + format::sealed_block_offset(j0, static_cast<uint32_t>(B));
    uint64_t last_plain = std::min<uint64_t>(B, e.plain_len - j1 * B);
    uint64_t stop = e.offset + format::sealed_block_offset(j1, static_cast<uint32_t>(B)) + last_plain +
                    crypto::kSealOverhead;
    COFFER_ASSIGN(ByteSpan got, (*fd)->read(start, stop - start));
    const uint8_t* sealed = got.data();
    if (got.size() < stop - start) {
        log_tampered_once(opts_.state_dir, e.object, kWholeObject,
                          "tampered: " + what() + ": object " + e.object.hex() + " is truncated");
        return make_error(Code::corrupt, "object " + e.object.hex() + " is truncated");
    }
    uint8_t* plain = scratch(B);
    for (uint64_t j = j0; j <= j1; ++j) {
        uint64_t plen = std::min<uint64_t>(B, e.plain_len - j * B);
        format::BlockAad aad{e.object, e.offset, j, j + 1 == nblocks, key_epoch};
        ByteSpan blk(sealed + (j - j0) * (B + crypto::kSealOverhead), plen + crypto::kSealOverhead);
        auto st = format::open_block(key, aad, blk, plain);
        if (!st.ok()) {
            log_tampered_once(opts_.state_dir, e.object, j,
                              "tampered: " + what() + ": object " + e.object.hex() + " block " + std::to_string(j) +
                                  " failed authentication");
            return make_error(Code::corrupt, "tampered: " + what());
        }
        uint64_t bstart = base + j * B;
        uint64_t a = std::max(from, bstart), b = std::min(to, bstart + plen);
        if (a < b) std::memcpy(out + (a - from), plain + (a - bstart), b - a);
    }
    return {};
}

Result<ReadPlan> Core::plan_locked(const index::NodeRow& n, uint64_t off, uint64_t end, bool with_key) {
    ReadPlan plan;
    plan.gid = n.gid;
    plan.key_owner = n.key_owner.is_zero() ? n.gid : n.key_owner;
    plan.key_epoch = n.key_epoch;
    if (with_key) {
        COFFER_ASSIGN(plan.key, file_key_locked(n));
    }
    COFFER_ASSIGN(plan.pieces, ix_->pieces(n.ino, off, end));
    for (const auto& p : plan.pieces) {
        if (p.log == 0) {
            plan.piece_fds.push_back(nullptr);
        } else {
            COFFER_ASSIGN(auto fd, log_.file(p.log));
            plan.piece_fds.push_back(std::move(fd));
        }
    }
    const uint64_t E = header_.extent_size;
    if (end > off) {
        COFFER_ASSIGN(plan.extents, ix_->extents(n.ino, off / E, (end - 1) / E));
    }
    return plan;
}

Status Core::read_plan(const ReadPlan& plan, uint64_t off, uint64_t len, uint8_t* out,
                       const std::function<std::string()>& what) {
    const uint64_t end = off + len;
    const uint64_t E = header_.extent_size;
    // Bytes not covered by staging come from the published extents, or are
    // holes (zeros).
    auto from_extents = [&](uint64_t a, uint64_t b) -> Status {
        if (a >= b) return {};
        auto it = std::lower_bound(plan.extents.begin(), plan.extents.end(), a / E,
                                   [](const format::ExtentRef& e, uint64_t idx) { return e.index < idx; });
        uint64_t filled = a;
        for (; it != plan.extents.end() && it->index * E < b; ++it) {
            uint64_t ea = it->index * E, eb = ea + it->plain_len;
            uint64_t x = std::max(a, ea), y = std::min(b, eb);
            if (x >= y) continue;
            if (x > filled) std::memset(out + (filled - off), 0, x - filled);
            COFFER_TRY(read_extent(*plan.key, plan.key_epoch, *it, x, y, out + (x - off), what));
            filled = y;
        }
        if (b > filled) std::memset(out + (filled - off), 0, b - filled);
        return {};
    };
    uint64_t cursor = off;
    for (size_t i = 0; i < plan.pieces.size(); ++i) {
        const auto& p = plan.pieces[i];
        uint64_t a = std::max(p.off, off), b = std::min(p.end(), end);
        if (a >= b) continue;
        COFFER_TRY(from_extents(cursor, a));
        if (p.log != 0) {
            auto st = StagingLog::read(*plan.piece_fds[i], plan.gid, *plan.key, p, a, b, out + (a - off));
            if (!st.ok()) {
                log::error("local staging of " + what() + ": " + st.error().context);
                return st;
            }
        } else {
            std::memset(out + (a - off), 0, b - a);
        }
        cursor = b;
    }
    return from_extents(cursor, end);
}

}  // namespace coffer::vfs
