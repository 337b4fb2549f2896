#include "change_gate.h"

namespace coffer::vfs {

namespace {
// One less for `ino`; the entry goes at zero.
void count_down(std::unordered_map<uint64_t, int>& m, uint64_t ino) {
    auto it = m.find(ino);
    if (it != m.end() && --it->second == 0) m.erase(it);
}
}  // namespace

ChangeGate::Change ChangeGate::begin_change(Ino ino) {
    MutexLock lk(mu_);
    lk.wait(cv_, [&]() NO_THREAD_SAFETY_ANALYSIS { return filling_.find(ino) == filling_.end(); });
    changing_[ino] += 1;
    generation_.fetch_add(1);
    return Change(*this, ino);
}

ChangeGate::Change& ChangeGate::Change::operator=(Change&& o) noexcept {
    if (this != &o) {
        end();
        gate_ = o.gate_;
        ino_ = o.ino_;
        o.gate_ = nullptr;
    }
    return *this;
}

void ChangeGate::Change::end() noexcept {
    if (!gate_) return;
    {
        MutexLock lk(gate_->mu_);
        count_down(gate_->changing_, ino_);
        gate_->generation_.fetch_add(1);
    }
    gate_->cv_.notify_all();
    gate_ = nullptr;
}

std::optional<ChangeGate::Fill> ChangeGate::try_fill(Ino ino, uint64_t generation) {
    MutexLock lk(mu_);
    if (generation_.load() != generation || changing_.count(ino)) return std::nullopt;
    filling_[ino] += 1;
    return Fill(*this, ino);
}

ChangeGate::Fill::~Fill() {
    if (!gate_) return;
    {
        MutexLock lk(gate_->mu_);
        count_down(gate_->filling_, ino_);
    }
    gate_->cv_.notify_all();
}

}  // namespace coffer::vfs
