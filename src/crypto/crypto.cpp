#include "coffer/crypto/crypto.h"

#include <sodium.h>
#include <unistd.h>

#include <cerrno>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <vector>

namespace coffer::crypto {

namespace {
RandomSource* g_random = nullptr;
constexpr char kKdfContext[crypto_kdf_CONTEXTBYTES + 1] = "coffer01";
}  // namespace

void init() {
    if (sodium_init() < 0) std::abort();
}

// Small secrets (keys, 32-64 bytes) come from slots of larger sodium_malloc
// regions: each region has guard pages and is locked in memory like any
// sodium_malloc buffer, and a freed slot is wiped before reuse. A
// sodium_malloc per key costs an mmap, an mprotect and an munmap, which a
// file-creating workload pays once per file.
class SmallSecretPool {
public:
    static constexpr size_t kSlot = 64;
    static constexpr size_t kRegion = 64 * 1024;

    uint8_t* take() {
        std::lock_guard lk(mu_);
        if (free_.empty()) {
            auto* region = static_cast<uint8_t*>(sodium_malloc(kRegion));
            if (!region) throw std::bad_alloc();
            free_.reserve(free_.size() + kRegion / kSlot);
            for (size_t off = kRegion; off >= kSlot; off -= kSlot) free_.push_back(region + off - kSlot);
        }
        uint8_t* p = free_.back();
        free_.pop_back();
        return p;
    }
    void give_back(uint8_t* p) noexcept {
        sodium_memzero(p, kSlot);
        std::lock_guard lk(mu_);
        free_.push_back(p);  // capacity reserved when the region was added: no allocation
    }

private:
    std::mutex mu_;
    std::vector<uint8_t*> free_;  // regions are never unmapped: their number follows the peak of live keys
};

SmallSecretPool& small_pool() {
    static SmallSecretPool* pool = new SmallSecretPool;  // outlives every static SecretBytes
    return *pool;
}

SecretBytes::SecretBytes(size_t n) : n_(n) {
    if (n == 0) return;
    if (n <= SmallSecretPool::kSlot) {
        p_ = small_pool().take();
        pooled_ = true;
    } else {
        p_ = static_cast<uint8_t*>(sodium_malloc(n));
        if (!p_) throw std::bad_alloc();
    }
    std::memset(p_, 0, n);
}
SecretBytes SecretBytes::from(ByteSpan data) {
    SecretBytes s(data.size());
    if (!data.empty()) std::memcpy(s.p_, data.data(), data.size());
    return s;
}
SecretBytes::SecretBytes(SecretBytes&& o) noexcept : p_(o.p_), n_(o.n_), pooled_(o.pooled_) {
    o.p_ = nullptr;
    o.n_ = 0;
    o.pooled_ = false;
}
void SecretBytes::release() noexcept {
    if (!p_) return;
    if (pooled_)
        small_pool().give_back(p_);  // wiped there
    else
        sodium_free(p_);  // sodium_free wipes before freeing
    p_ = nullptr;
    n_ = 0;
    pooled_ = false;
}
SecretBytes& SecretBytes::operator=(SecretBytes&& o) noexcept {
    if (this != &o) {
        release();
        p_ = o.p_;
        n_ = o.n_;
        pooled_ = o.pooled_;
        o.p_ = nullptr;
        o.n_ = 0;
        o.pooled_ = false;
    }
    return *this;
}
SecretBytes::~SecretBytes() { release(); }
SecretBytes SecretBytes::clone() const { return from(span()); }
void SecretBytes::resize_down(size_t n) {
    if (n < n_) {
        sodium_memzero(p_ + n, n_ - n);
        n_ = n;
    }
}

bool equal(ByteSpan a, ByteSpan b) noexcept {
    if (a.size() != b.size()) return false;
    if (a.empty()) return true;
    return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

SeededRandom::SeededRandom(uint64_t seed) { put_u64le(key_.data(), seed); }
void SeededRandom::fill(MutByteSpan out) {
    uint8_t nonce[crypto_stream_chacha20_NONCEBYTES] = {};
    put_u64le(nonce, counter_++);
    crypto_stream_chacha20(out.data(), out.size(), nonce, key_.data());
}

void set_random_source(RandomSource* src) noexcept { g_random = src; }
void random_bytes(MutByteSpan out) {
    if (g_random)
        g_random->fill(out);
    else
        randombytes_buf(out.data(), out.size());
}
Id128 random_id() {
    Id128 id;
    random_bytes(id.b);
    return id;
}
SecretBytes random_key() {
    SecretBytes k(kKeySize);
    random_bytes(k.mut_span());
    return k;
}

SecretBytes derive(const SecretBytes& master, Subkey id) {
    SecretBytes out(kKeySize);
    crypto_kdf_derive_from_key(out.data(), out.size(), static_cast<uint64_t>(id), kKdfContext, master.data());
    return out;
}

void seal_into(const SecretBytes& key, ByteSpan plain, ByteSpan aad, uint8_t* out) {
    random_bytes({out, kNonceSize});
    unsigned long long clen = 0;
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + kNonceSize, &clen, plain.data(), plain.size(),
                                               aad.data(), aad.size(), nullptr, out, key.data());
}
Bytes seal(const SecretBytes& key, ByteSpan plain, ByteSpan aad) {
    Bytes out(plain.size() + kSealOverhead);
    seal_into(key, plain, aad, out.data());
    return out;
}
Status open_into(const SecretBytes& key, ByteSpan sealed, ByteSpan aad, uint8_t* out) {
    if (sealed.size() < kSealOverhead) return make_error(Code::corrupt, "sealed box too short");
    unsigned long long mlen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &mlen, nullptr, sealed.data() + kNonceSize,
                                                   sealed.size() - kNonceSize, aad.data(), aad.size(),
                                                   sealed.data(), key.data()) != 0)
        return make_error(Code::corrupt, "authentication failed");
    return {};
}
Result<Bytes> open(const SecretBytes& key, ByteSpan sealed, ByteSpan aad) {
    if (sealed.size() < kSealOverhead) return make_error(Code::corrupt, "sealed box too short");
    Bytes out(sealed.size() - kSealOverhead);
    COFFER_TRY(open_into(key, sealed, aad, out.data()));
    return out;
}
Result<SecretBytes> open_secret(const SecretBytes& key, ByteSpan sealed, ByteSpan aad) {
    if (sealed.size() < kSealOverhead) return make_error(Code::corrupt, "sealed box too short");
    SecretBytes out(sealed.size() - kSealOverhead);
    COFFER_TRY(open_into(key, sealed, aad, out.data()));
    return out;
}

std::array<uint8_t, 32> hash32(ByteSpan msg) {
    std::array<uint8_t, 32> h{};
    crypto_generichash(h.data(), h.size(), msg.data(), msg.size(), nullptr, 0);
    return h;
}
static_assert(sizeof(crypto_generichash_state) <= 384 && alignof(crypto_generichash_state) <= 64);
Hasher::Hasher() {
    crypto_generichash_init(reinterpret_cast<crypto_generichash_state*>(state_), nullptr, 0, 32);
}
Hasher::~Hasher() { sodium_memzero(state_, sizeof state_); }
void Hasher::update(ByteSpan piece) {
    crypto_generichash_update(reinterpret_cast<crypto_generichash_state*>(state_), piece.data(), piece.size());
}
std::array<uint8_t, 32> Hasher::finish() {
    std::array<uint8_t, 32> h{};
    crypto_generichash_final(reinterpret_cast<crypto_generichash_state*>(state_), h.data(), h.size());
    return h;
}

bool hash32_fd(int fd, std::array<uint8_t, 32>& out) {
    crypto_generichash_state st;
    crypto_generichash_init(&st, nullptr, 0, out.size());
    std::vector<uint8_t> buf(1 << 20);
    for (off_t off = 0;;) {
        ssize_t n = ::pread(fd, buf.data(), buf.size(), off);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return false;
        if (n == 0) break;
        crypto_generichash_update(&st, buf.data(), static_cast<size_t>(n));
        off += n;
    }
    crypto_generichash_final(&st, out.data(), out.size());
    return true;
}
void keyed_hash(const SecretBytes& key, ByteSpan msg, MutByteSpan out) {
    crypto_generichash(out.data(), out.size(), msg.data(), msg.size(), key.data(), key.size());
}
std::array<uint8_t, 32> mac32(const SecretBytes& key, ByteSpan msg) {
    std::array<uint8_t, 32> h{};
    keyed_hash(key, msg, h);
    return h;
}

PwParams insecure_test_params() { return {crypto_pwhash_argon2id_OPSLIMIT_MIN, 64ull << 10}; }
bool is_insecure(const PwParams& p) { return p.memlimit < kMinSecureMem || p.opslimit < 1; }

Result<SecretBytes> pwhash(const SecretBytes& password, ByteSpan salt16, const PwParams& p) {
    if (salt16.size() != crypto_pwhash_SALTBYTES) return make_error(Code::invalid, "bad salt size");
    if (p.opslimit < crypto_pwhash_argon2id_OPSLIMIT_MIN || p.opslimit > (1u << 16) ||
        p.memlimit < crypto_pwhash_argon2id_MEMLIMIT_MIN || p.memlimit > (4ull << 30))
        return make_error(Code::invalid, "password hashing parameters out of range");
    SecretBytes out(kKeySize);
    if (crypto_pwhash(out.data(), out.size(), reinterpret_cast<const char*>(password.data()), password.size(),
                      salt16.data(), p.opslimit, static_cast<size_t>(p.memlimit), crypto_pwhash_ALG_ARGON2ID13) != 0)
        return make_error(Code::no_space, "out of memory while hashing the password");
    return out;
}

PwParams calibrate(double target_seconds) {
    SecretBytes pw = SecretBytes::from(as_bytes("calibration"));
    uint8_t salt[crypto_pwhash_SALTBYTES] = {};
    auto time_one = [&](PwParams p) {
        auto t0 = std::chrono::steady_clock::now();
        (void)pwhash(pw, salt, p);
        return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    };
    // Memory first (it is what makes Argon2id costly for attackers), then passes.
    PwParams p{1, kMaxCalibratedMem};
    double t = time_one(p);
    while (t > target_seconds && p.memlimit > kMinSecureMem) {
        p.memlimit /= 2;
        t = time_one(p);
    }
    if (t < target_seconds && t > 0) {
        uint64_t ops = static_cast<uint64_t>(target_seconds / t + 0.5);  // nearest, not below
        p.opslimit = ops < 1 ? 1 : (ops > 64 ? 64 : ops);
    }
    return p;
}

}  // namespace coffer::crypto
