// A Backend that fails on purpose, wrapped around another one (a VaultDir
// or a MemoryBackend): the vault side of the power-cut tests (fault_fs.h is
// the local-state side) and of tests of what coffer does when the cloud
// folder fails.
//
// Power: every mutating call (write_new, replace, remove, sync_dir,
// create_layout) counts one step. cut_power_after(n) lets n more through
// and fails the next one and every later one with EIO without touching the
// inner backend: a power cut at that instant, with the process running on.
// attach_power() hands the steps to an outside counter instead (FaultFs),
// so one count orders local-state and vault I/O and every kill point of an
// operation is reachable.
//
// Durability: a write_new(durable = true), a replace and a remove are
// durable when they return (VaultDir fsyncs file and folder); a
// write_new(durable = false) only once sync_dir() of its folder has
// returned. durable_writes() reports what would survive a power cut now,
// and crash() is that power cut as the next boot sees it: every file
// written but not durable is gone, and the power is back.
//
// Besides the power cut: fail_writes / fail_reads make the calls on paths
// a predicate picks fail with EIO (a failed upload, an unreadable file),
// changing nothing.
//
// Thread-safe; the inner backend's calls are not serialised by it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "coffer/store/backend.h"

namespace coffer::testing {

class FaultBackend final : public store::Backend {
public:
    explicit FaultBackend(std::unique_ptr<store::Backend> inner) : inner_(std::move(inner)) {}
    store::Backend& inner() { return *inner_; }

    // ---- power
    void cut_power();
    void cut_power_after(uint64_t n);
    bool power_is_cut() const;
    // Mutating calls that reached the inner backend.
    uint64_t mutating_calls() const;
    // From now on each mutating call asks `step` (true: go on; false: the
    // power is cut) instead of this backend's own switch.
    void attach_power(std::function<bool()> step);

    // ---- failures other than a power cut (nullptr: none)
    using PathFilter = std::function<bool(std::string_view rel)>;
    void fail_writes(PathFilter which);
    void fail_reads(PathFilter which);

    // ---- durability
    struct Write {
        enum class Kind { write_new, replace, remove } kind;
        std::string rel;
        bool durable;
    };
    // Every mutating call on a file that completed, in order.
    std::vector<Write> writes() const;
    // The paths of the files written (write_new, replace) durably, in order.
    std::vector<std::string> durable_writes() const;
    // The power cut at the next boot: removes every file whose write_new was
    // not durable yet, forgets the record, restores power. Returns the
    // files removed.
    std::vector<std::string> crash();

    // ---- Backend
    std::string describe() const override { return inner_->describe(); }
    Result<std::vector<std::string>> list(std::string_view rel_dir) const override;
    bool exists(std::string_view rel) const override;
    Result<Bytes> read_at(std::string_view rel, uint64_t offset, size_t max_len) const override;
    Result<std::shared_ptr<SourceFile>> open_read(std::string_view rel) const override;
    Status write_new(std::string_view rel, ByteSpan data, bool durable = true) override;
    Status replace(std::string_view rel, ByteSpan data) override;
    Status remove(std::string_view rel) override;
    Status sync_dir(std::string_view rel_dir) override;
    Status create_layout() override;

private:
    Status step(std::string_view what, std::string_view rel);
    Status read_fault(std::string_view rel) const;
    void record(Write::Kind kind, std::string_view rel, bool durable);

    std::unique_ptr<store::Backend> inner_;
    mutable std::mutex mu_;
    std::function<bool()> outside_;  // attach_power
    uint64_t calls_ = 0;
    std::optional<uint64_t> cut_at_;
    bool cut_ = false;
    PathFilter fail_writes_, fail_reads_;
    std::vector<Write> writes_;
};

}  // namespace coffer::testing
