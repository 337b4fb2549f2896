// The only place that calls libsodium. Knows nothing of files.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "coffer/util/bytes.h"
#include "coffer/util/result.h"

namespace coffer::crypto {

constexpr size_t kKeySize = 32;
constexpr size_t kNonceSize = 24;   // XChaCha20-Poly1305 public nonce
constexpr size_t kTagSize = 16;
constexpr size_t kSealOverhead = kNonceSize + kTagSize;  // a sealed box is nonce || ct || tag

// Call once before anything else (idempotent). Aborts if libsodium fails.
void init();

// Secret bytes on sodium_malloc (guard pages, mlock), wiped on destruction.
// Not copyable: clone() says where a copy is made.
class SecretBytes {
public:
    SecretBytes() = default;
    explicit SecretBytes(size_t n);  // zero-filled
    static SecretBytes from(ByteSpan data);
    SecretBytes(SecretBytes&& o) noexcept;
    SecretBytes& operator=(SecretBytes&& o) noexcept;
    SecretBytes(const SecretBytes&) = delete;
    SecretBytes& operator=(const SecretBytes&) = delete;
    ~SecretBytes();

    SecretBytes clone() const;
    uint8_t* data() noexcept { return p_; }
    const uint8_t* data() const noexcept { return p_; }
    size_t size() const noexcept { return n_; }
    bool empty() const noexcept { return n_ == 0; }
    ByteSpan span() const noexcept { return {p_, n_}; }
    MutByteSpan mut_span() noexcept { return {p_, n_}; }
    void resize_down(size_t n);  // shrink the logical size (e.g. strip a newline)

private:
    void release() noexcept;
    uint8_t* p_ = nullptr;
    size_t n_ = 0;
    bool pooled_ = false;  // a slot of the small-secret pool (see crypto.cpp)
};

// Constant-time equality (sodium_memcmp); false when sizes differ.
bool equal(ByteSpan a, ByteSpan b) noexcept;

// ---- randomness (injectable so tests get known-answer vectors) ----
class RandomSource {
public:
    virtual ~RandomSource() = default;
    virtual void fill(MutByteSpan out) = 0;
};
// Deterministic source for tests: ChaCha20 keystream of a fixed seed.
class SeededRandom final : public RandomSource {
public:
    explicit SeededRandom(uint64_t seed);
    void fill(MutByteSpan out) override;

private:
    std::array<uint8_t, 32> key_{};
    uint64_t counter_ = 0;
};
// nullptr restores libsodium's randombytes. Not thread-safe: tests only.
void set_random_source(RandomSource* src) noexcept;
void random_bytes(MutByteSpan out);
Id128 random_id();
SecretBytes random_key();

// ---- key derivation (crypto_kdf, context "coffer01") ----
// Every subkey of the master key, one id each (docs/FORMAT.md lists them).
enum class Subkey : uint64_t {
    header_mac = 1,     // BLAKE2b MAC over coffer.vault
    file_key_wrap = 2,  // wraps per-file data keys
    names = 3,          // AEAD of names, symlink targets, xattrs, rdev in the index
    name_tag = 4,       // keyed lookup tag of (parent, name) in the index
    journal = 5,        // AEAD of journal segments
    snapshot = 6,       // AEAD of snapshots (reserved)
    local_state = 7,    // AEAD of pending operations kept in the index
    object_header = 8,  // BLAKE2b MAC over object headers (vault format 2)
};
SecretBytes derive(const SecretBytes& master, Subkey id);

// ---- AEAD: XChaCha20-Poly1305-IETF, fresh random nonce for every seal ----
// out must hold plain.size() + kSealOverhead bytes: nonce || ciphertext || tag.
void seal_into(const SecretBytes& key, ByteSpan plain, ByteSpan aad, uint8_t* out);
Bytes seal(const SecretBytes& key, ByteSpan plain, ByteSpan aad);
// Opens nonce||ct||tag; Code::corrupt if too short or authentication fails.
// out must hold sealed.size() - kSealOverhead bytes.
Status open_into(const SecretBytes& key, ByteSpan sealed, ByteSpan aad, uint8_t* out);
Result<Bytes> open(const SecretBytes& key, ByteSpan sealed, ByteSpan aad);
Result<SecretBytes> open_secret(const SecretBytes& key, ByteSpan sealed, ByteSpan aad);

// ---- hashing (BLAKE2b) ----
std::array<uint8_t, 32> hash32(ByteSpan msg);
// hash32 of everything read from `fd` (from offset 0 to its end), in 1 MiB
// pieces: a large file is hashed without being held in memory. false when a
// read fails (errno set).
bool hash32_fd(int fd, std::array<uint8_t, 32>& out);
// hash32 of a message given in pieces.
class Hasher {
public:
    Hasher();
    ~Hasher();
    Hasher(const Hasher&) = delete;
    Hasher& operator=(const Hasher&) = delete;
    void update(ByteSpan piece);
    std::array<uint8_t, 32> finish();

private:
    alignas(64) unsigned char state_[384];  // crypto_generichash_state, checked in crypto.cpp
};
// Keyed BLAKE2b with output length `out.size()` (16..64).
void keyed_hash(const SecretBytes& key, ByteSpan msg, MutByteSpan out);
std::array<uint8_t, 32> mac32(const SecretBytes& key, ByteSpan msg);

// ---- password hashing (Argon2id) ----
struct PwParams {
    uint64_t opslimit = 0;
    uint64_t memlimit = 0;  // bytes
    friend bool operator==(const PwParams&, const PwParams&) = default;
};
constexpr uint64_t kMinSecureMem = 64ull << 20;
constexpr uint64_t kMaxCalibratedMem = 256ull << 20;
// Calibrates to about `target_seconds` on this machine, memory in [64, 256] MiB.
PwParams calibrate(double target_seconds = 1.0);
// Cheap parameters for tests, only behind an explicit flag; reported insecure.
PwParams insecure_test_params();
bool is_insecure(const PwParams& p);
// 32-byte key from the password; Code::invalid for out-of-range parameters.
Result<SecretBytes> pwhash(const SecretBytes& password, ByteSpan salt16, const PwParams& p);
constexpr size_t kSaltSize = 16;

}  // namespace coffer::crypto
