// Internal to src/fuse/: which messages were logged already, so a reader
// retrying a damaged file does not flood the log. Bounded: once `max` are
// remembered the set starts over (and may report one of them again).
#pragma once

#include <cstddef>
#include <mutex>
#include <set>
#include <string>

namespace coffer::fuse {

class ReportOnce {
public:
    explicit ReportOnce(size_t max) : max_(max) {}
    // True the first time `key` is seen (thread-safe).
    bool first(std::string key) {
        std::lock_guard lk(mu_);
        if (seen_.contains(key)) return false;
        if (seen_.size() >= max_) seen_.clear();
        seen_.insert(std::move(key));
        return true;
    }

private:
    const size_t max_;
    std::mutex mu_;
    std::set<std::string> seen_;  // under mu_
};

}  // namespace coffer::fuse
