// Kernel page-cache fills against content changes, per inode. A fill
// stores plaintext coffer already decrypted into the kernel's cache after
// the read was answered (Filesystem::fill_kernel_cache); it must not store
// bytes a change of that file made stale. So a change of a file's bytes or
// size, or a new handle open for writing:
//   - waits while a fill of that inode runs, and keeps new fills of it off
//     while it runs;
//   - bumps the generation as it starts and as it ends, so a fill whose read
//     overlapped it (its generation is older) is dropped.
// Only changes of the inode being filled wait: a fill waits for pages that
// reads of that inode hold, and those reads need free worker threads.
// Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <optional>
#include <unordered_map>

#include "coffer/util/mutex.h"

namespace coffer::vfs {

class ChangeGate {
public:
    using Ino = uint64_t;

    // One content change of one inode, for as long as it lives (move-only).
    class Change {
    public:
        Change() = default;
        Change(Change&& o) noexcept : gate_(o.gate_), ino_(o.ino_) { o.gate_ = nullptr; }
        Change& operator=(Change&& o) noexcept;
        Change(const Change&) = delete;
        Change& operator=(const Change&) = delete;
        ~Change() { end(); }

    private:
        friend class ChangeGate;
        Change(ChangeGate& g, Ino ino) : gate_(&g), ino_(ino) {}
        void end() noexcept;
        ChangeGate* gate_ = nullptr;
        Ino ino_ = 0;
    };

    // One fill of one inode, for as long as it lives (move-only).
    class Fill {
    public:
        Fill(Fill&& o) noexcept : gate_(o.gate_), ino_(o.ino_) { o.gate_ = nullptr; }
        Fill& operator=(Fill&&) = delete;
        Fill(const Fill&) = delete;
        ~Fill();

    private:
        friend class ChangeGate;
        Fill(ChangeGate& g, Ino ino) : gate_(&g), ino_(ino) {}
        ChangeGate* gate_;
        Ino ino_;
    };

    // Waits until no fill of `ino` runs, then holds fills of it off.
    Change begin_change(Ino ino) EXCLUDES(mu_);
    // A fill of `ino` for a read that started at `generation`: nothing if a
    // change of any file started or ended since, or one of `ino` is running.
    std::optional<Fill> try_fill(Ino ino, uint64_t generation) EXCLUDES(mu_);
    uint64_t generation() const { return generation_.load(); }
    // Every file may have changed (a merge): fills of reads that started
    // before are dropped.
    void invalidate_all() { generation_.fetch_add(2); }

private:
    Mutex mu_;
    std::condition_variable cv_;
    std::unordered_map<Ino, int> filling_ GUARDED_BY(mu_);
    std::unordered_map<Ino, int> changing_ GUARDED_BY(mu_);
    std::atomic<uint64_t> generation_{0};
};

}  // namespace coffer::vfs
