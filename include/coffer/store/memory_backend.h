// A vault held in memory: the reference Backend. Every promise of
// backend.h holds (a power cut aside: nothing here outlives the process).
// Tests of any layer run a vault on it without a folder, and the backend
// conformance suite runs it beside VaultDir, so the contract is checked
// against something other than a POSIX folder (as an object store would
// be). Files opened for reading are sealed memfds: the same SourceFile
// reads as from a folder.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "coffer/store/backend.h"

namespace coffer::store {

class MemoryBackend final : public Backend {
public:
    std::string describe() const override { return "memory"; }
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
    using File = std::shared_ptr<const Bytes>;  // immutable once written: readers keep their version
    Result<File> find(std::string_view rel) const;
    void add_parents_locked(const std::string& rel);

    mutable std::mutex mu_;
    std::map<std::string, File> files_;  // by normal path
    std::set<std::string> dirs_;         // every folder, by normal path ("" is the vault)
};

}  // namespace coffer::store
