#include "auto_sync.h"

#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <dirent.h>

#include "coffer/util/log.h"

namespace coffer::cli {

namespace {
constexpr auto kTick = std::chrono::seconds(1);
// A new segment in the vault is merged this long after inotify saw it
// (a sync client writes a folder's files in a burst).
constexpr auto kSettle = std::chrono::seconds(1);
constexpr uint32_t kEvents = IN_CREATE | IN_MOVED_TO | IN_CLOSE_WRITE;
}  // namespace

std::string sync_summary(const sync::SyncStats& s) {
    std::string out;
    if (s.published.ops == 0) out = "nothing to publish";
    else
        out = "published " + std::to_string(s.published.ops) + " operation(s) as segment " +
              std::to_string(s.published.segment_seq) + " (" + std::to_string(s.published.objects) + " object(s), " +
              std::to_string(s.published.bytes) + " bytes)";
    const vfs::MergeReport& m = s.merged;
    if (m.postponed) out += "; merging postponed: local changes arrived meanwhile (the next sync merges)";
    else if (m.segments) out += "; merged " + std::to_string(m.segments) + " segment(s) of other devices";
    if (m.conflicts) out += ", " + std::to_string(m.conflicts) + " conflict(s)";
    if (!m.waiting.empty()) out += "; " + std::to_string(m.waiting.size()) + " segment(s) wait (coffer status)";
    return out;
}

AutoSync::AutoSync(vfs::Filesystem& fs, fuse::Session& session, std::string vault_dir, Options opts)
    : fs_(fs), session_(session), vault_dir_(std::move(vault_dir)), opts_(opts) {}

AutoSync::~AutoSync() { stop(); }

void AutoSync::start() {
    if (!opts_.enabled) return;
    inotify_.reset(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC));
    if (!inotify_) log::warn("auto-sync: no inotify; other devices' changes are looked for every interval only");
    watch_journal();
    thread_ = std::thread([this] { loop(); });
}

void AutoSync::stop() {
    {
        std::lock_guard lk(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
}

// Watches journal/ and every device's folder in it (added as they appear).
void AutoSync::watch_journal() {
    if (!inotify_) return;
    std::string journal = vault_dir_ + "/journal";
    (void)::inotify_add_watch(inotify_.get(), journal.c_str(), kEvents | IN_ONLYDIR);
    DIR* d = ::opendir(journal.c_str());
    if (!d) return;
    while (auto* e = ::readdir(d)) {
        std::string name = e->d_name;
        if (name.size() != 32) continue;  // a device folder's name is 32 hex digits
        (void)::inotify_add_watch(inotify_.get(), (journal + "/" + name).c_str(), kEvents | IN_ONLYDIR);
    }
    ::closedir(d);
}

Result<sync::SyncStats> AutoSync::sync_now() {
    std::lock_guard lk(sync_mu_);
    auto r = sync::sync(fs_.replica());
    if (r.ok() && !(r->merged.changed_inodes.empty() && r->merged.changed_entries.empty()))
        session_.invalidate(r->merged.changed_inodes, r->merged.changed_entries);
    return r;
}

void AutoSync::loop() {
    using clock = std::chrono::steady_clock;
    auto last_sync = clock::now();
    auto last_change = clock::now();
    std::pair<uint64_t, uint64_t> seen{0, 0};  // pending ops, staged bytes
    std::optional<clock::time_point> vault_changed;
    for (;;) {
        {
            std::unique_lock lk(mu_);
            if (cv_.wait_for(lk, kTick, [this] { return stop_; })) return;
        }
        auto now = clock::now();
        if (inotify_) {
            alignas(inotify_event) char buf[4096];
            bool any = false;
            for (;;) {
                ssize_t n = ::read(inotify_.get(), buf, sizeof buf);
                if (n <= 0) break;
                any = true;
            }
            if (any) {
                watch_journal();  // a new device's folder
                if (!vault_changed) vault_changed = now;
            }
        }
        auto st = sync::status(fs_.replica());
        if (!st.ok()) continue;
        std::pair<uint64_t, uint64_t> cur{st->pending_ops, st->staged_bytes};
        if (cur != seen) {
            seen = cur;
            last_change = now;
        }
        bool local_quiet = (cur.first || cur.second) && now - last_change >= opts_.interval;
        bool look = now - last_sync >= opts_.interval;
        bool arrived = vault_changed && now - *vault_changed >= kSettle;
        if (!local_quiet && !look && !arrived) continue;
        vault_changed.reset();
        last_sync = now;
        auto r = sync_now();
        if (!r.ok()) {
            log::warn("auto-sync: " + r.error().message());
            continue;
        }
        if (r->published.ops || r->merged.segments || r->merged.postponed)
            log::info("auto-sync: " + sync_summary(*r));
    }
}

}  // namespace coffer::cli
