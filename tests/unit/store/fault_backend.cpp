#include "fault_backend.h"

#include <cerrno>
#include <stdexcept>

namespace coffer::testing {

namespace {
// The folder a write_new lands in, spelled as sync_dir() is given it.
std::string folder_of(std::string_view rel) {
    auto i = rel.rfind('/');
    return i == std::string_view::npos ? std::string() : std::string(rel.substr(0, i));
}
std::string trimmed(std::string_view dir) {
    while (!dir.empty() && dir.back() == '/') dir.remove_suffix(1);
    return std::string(dir);
}
}  // namespace

void FaultBackend::cut_power() {
    std::lock_guard lk(mu_);
    cut_ = true;
}

void FaultBackend::cut_power_after(uint64_t n) {
    std::lock_guard lk(mu_);
    cut_at_ = calls_ + n;
}

bool FaultBackend::power_is_cut() const {
    std::lock_guard lk(mu_);
    return cut_;
}

uint64_t FaultBackend::mutating_calls() const {
    std::lock_guard lk(mu_);
    return calls_;
}

void FaultBackend::attach_power(std::function<bool()> step) {
    std::lock_guard lk(mu_);
    outside_ = std::move(step);
}

void FaultBackend::fail_writes(PathFilter which) {
    std::lock_guard lk(mu_);
    fail_writes_ = std::move(which);
}

void FaultBackend::fail_reads(PathFilter which) {
    std::lock_guard lk(mu_);
    fail_reads_ = std::move(which);
}

std::vector<FaultBackend::Write> FaultBackend::writes() const {
    std::lock_guard lk(mu_);
    return writes_;
}

std::vector<std::string> FaultBackend::durable_writes() const {
    std::lock_guard lk(mu_);
    std::vector<std::string> out;
    for (const Write& w : writes_)
        if (w.durable && w.kind != Write::Kind::remove) out.push_back(w.rel);
    return out;
}

std::vector<std::string> FaultBackend::crash() {
    std::vector<Write> lost;
    {
        std::lock_guard lk(mu_);
        for (const Write& w : writes_)
            if (!w.durable) lost.push_back(w);
        writes_.clear();
        cut_ = false;
        cut_at_.reset();
    }
    std::vector<std::string> removed;
    for (const Write& w : lost) {
        // Straight to the inner backend: this is the next boot, not a call
        // the power cut stops.
        if (!inner_->remove(w.rel).ok()) throw std::runtime_error("fault backend: cannot drop " + w.rel);
        removed.push_back(w.rel);
    }
    return removed;
}

Status FaultBackend::step(std::string_view what, std::string_view rel) {
    auto fail = [&](std::string_view why) {
        return Error{Code::io, EIO, std::string(what) + " vault file " + std::string(rel) + ": " + std::string(why)};
    };
    std::function<bool()> outside;
    {
        std::lock_guard lk(mu_);
        if (fail_writes_ && fail_writes_(rel)) return fail("failed on purpose (fault backend)");
        if (!outside_) {
            if (!cut_ && cut_at_ && calls_ >= *cut_at_) cut_ = true;
            if (cut_) return fail("the power is cut (fault backend)");
            ++calls_;
            return {};
        }
        outside = outside_;
    }
    // Called without mu_: the outside counter has a lock of its own.
    if (!outside()) return fail("the power is cut (fault backend)");
    std::lock_guard lk(mu_);
    ++calls_;
    return {};
}

Status FaultBackend::read_fault(std::string_view rel) const {
    std::lock_guard lk(mu_);
    if (fail_reads_ && fail_reads_(rel))
        return Error{Code::io, EIO, "reading vault file " + std::string(rel) + ": failed on purpose (fault backend)"};
    return {};
}

void FaultBackend::record(Write::Kind kind, std::string_view rel, bool durable) {
    std::lock_guard lk(mu_);
    writes_.push_back(Write{kind, std::string(rel), durable});
}

Result<std::vector<std::string>> FaultBackend::list(std::string_view rel_dir) const {
    COFFER_TRY(read_fault(rel_dir));
    return inner_->list(rel_dir);
}

bool FaultBackend::exists(std::string_view rel) const { return read_fault(rel).ok() && inner_->exists(rel); }

Result<Bytes> FaultBackend::read_at(std::string_view rel, uint64_t offset, size_t max_len) const {
    COFFER_TRY(read_fault(rel));
    return inner_->read_at(rel, offset, max_len);
}

Result<std::shared_ptr<SourceFile>> FaultBackend::open_read(std::string_view rel) const {
    COFFER_TRY(read_fault(rel));
    return inner_->open_read(rel);
}

Status FaultBackend::write_new(std::string_view rel, ByteSpan data, bool durable) {
    COFFER_TRY(step("writing", rel));
    COFFER_TRY(inner_->write_new(rel, data, durable));
    record(Write::Kind::write_new, rel, durable);
    return {};
}

Status FaultBackend::replace(std::string_view rel, ByteSpan data) {
    COFFER_TRY(step("replacing", rel));
    COFFER_TRY(inner_->replace(rel, data));
    record(Write::Kind::replace, rel, true);
    return {};
}

Status FaultBackend::remove(std::string_view rel) {
    COFFER_TRY(step("removing", rel));
    COFFER_TRY(inner_->remove(rel));
    // A file removed before its write was durable cannot come back either.
    std::lock_guard lk(mu_);
    std::erase_if(writes_, [&](const Write& w) { return w.rel == rel && !w.durable; });
    writes_.push_back(Write{Write::Kind::remove, std::string(rel), true});
    return {};
}

Status FaultBackend::sync_dir(std::string_view rel_dir) {
    COFFER_TRY(step("syncing", rel_dir));
    COFFER_TRY(inner_->sync_dir(rel_dir));
    const std::string dir = trimmed(rel_dir);
    std::lock_guard lk(mu_);
    for (Write& w : writes_)
        if (folder_of(w.rel) == dir) w.durable = true;
    return {};
}

Status FaultBackend::create_layout() {
    COFFER_TRY(step("creating", "objects/ journal/ snapshots/ tmp/"));
    return inner_->create_layout();
}

}  // namespace coffer::testing
