// The sync client model (sim_engine.h).
#include "sim_engine.h"

#include <algorithm>

namespace coffer::sim {

namespace {

constexpr uint64_t kMaxFile = uint64_t{1} << 30;

std::string parent_of(const std::string& rel) {
    auto i = rel.rfind('/');
    return i == std::string::npos ? std::string() : rel.substr(0, i);
}
std::string leaf_of(const std::string& rel) {
    auto i = rel.rfind('/');
    return i == std::string::npos ? rel : rel.substr(i + 1);
}
std::string join(const std::string& dir, const std::string& leaf) { return dir.empty() ? leaf : dir + "/" + leaf; }

// Where a sync client keeps a download until it is complete: its own, never synced.
bool is_engine_temp(const std::string& rel) {
    const std::string leaf = leaf_of(rel);
    return leaf.starts_with(".syncthing.") && leaf.ends_with(".tmp");
}

// The name a real client gives its conflict copy of `rel`.
std::string conflict_copy_name(const std::string& rel, uint64_t style) {
    const std::string dir = parent_of(rel), leaf = leaf_of(rel);
    const auto dot = leaf.rfind('.');
    const std::string stem = dot == std::string::npos || dot == 0 ? leaf : leaf.substr(0, dot);
    const std::string ext = stem.size() == leaf.size() ? std::string() : leaf.substr(dot);
    switch (style % 5) {
        case 0: return join(dir, stem + " (conflicted copy 2026-11-28)" + ext);          // Dropbox
        case 1: return join(dir, stem + " (conflicted copy 2026-11-28 123456)" + ext);   // Nextcloud
        case 2: return join(dir, stem + "-LAPTOP-7Q2" + ext);                            // OneDrive
        case 3: return join(dir, stem + " (1)" + ext);                                   // Google Drive
        default: return join(dir, stem + ".sync-conflict-20261128-123456-ABCDEFG" + ext);  // Syncthing
    }
}

const char* const kForeignNames[] = {
    "desktop.ini", ".DS_Store", "Thumbs.db", "~$notes.docx", ".~lock.report.odt#", ".dropbox.cache/0001",
};

void collect(const store::Backend& b, const std::string& dir, std::vector<std::string>& out) {
    auto names = b.list(dir);
    if (!names.ok()) return;
    for (const auto& n : *names) {
        const std::string rel = join(dir, n);
        if (dir.empty() && n == "tmp") continue;
        auto sub = b.list(rel);
        if (!sub.ok() && sub.error().code == Code::not_dir) {
            out.push_back(rel);
        } else {
            collect(b, rel, out);
        }
    }
}

}  // namespace

std::vector<std::string> list_files(const store::Backend& b) {
    std::vector<std::string> out;
    collect(b, "", out);
    std::sort(out.begin(), out.end());
    return out;
}

std::unique_ptr<store::Vault> new_vault_copy(ByteSpan header_file) {
    auto mem = std::make_unique<store::MemoryBackend>();
    if (!mem->create_layout().ok() || !mem->write_new(store::kHeaderFile, header_file).ok()) return nullptr;
    auto v = store::Vault::open(std::move(mem));
    return v.ok() ? std::move(v).value() : nullptr;
}

SyncEngine::Config SyncEngine::polite() {
    Config c;
    c.max_delay = 0;
    c.duplicate_pct = c.partial_pct = c.conflict_copy_pct = c.foreign_pct = c.withdraw_pct = 0;
    return c;
}

SyncEngine::SyncEngine(uint64_t seed, Config config, ByteSpan header_file)
    : rng_(seed), config_(config), cloud_vault_(new_vault_copy(header_file)) {}

size_t SyncEngine::attach(store::Backend& copy) {
    copies_.push_back(&copy);
    auto h = copy.read(store::kHeaderFile, store::kMaxHeaderFile);
    header_seen_.push_back(h.ok() ? std::move(h).value() : Bytes{});
    return copies_.size() - 1;
}

bool SyncEngine::copy(store::Backend& from, store::Backend& to, const std::string& rel, bool again) {
    auto bytes = from.read(rel, kMaxFile);
    if (!bytes.ok()) return false;  // withdrawn meanwhile: noticed again once it is back
    if (again) {
        // A second delivery rewrites the file with the same bytes (readers
        // that opened it keep theirs).
        auto there = to.read(rel, kMaxFile);
        return there.ok() && *there == *bytes && to.replace(rel, *bytes).ok();
    }
    return to.write_new(rel, *bytes, false).ok();
}

// coffer.vault is the one file rewritten in place: the last writer wins.
void SyncEngine::sync_header(size_t device) {
    store::Backend& dev = *copies_[device];
    auto mine = dev.read(store::kHeaderFile, store::kMaxHeaderFile);
    auto theirs = cloud().read(store::kHeaderFile, store::kMaxHeaderFile);
    if (!mine.ok() || !theirs.ok()) return;
    if (*mine != header_seen_[device]) {
        (void)cloud().replace(store::kHeaderFile, *mine);
        header_seen_[device] = *mine;
    } else if (*theirs != *mine) {
        (void)dev.replace(store::kHeaderFile, *theirs);
        header_seen_[device] = *theirs;
    }
}

void SyncEngine::notice(size_t device) {
    sync_header(device);
    const auto mine = list_files(*copies_[device]);
    const auto theirs = list_files(cloud());
    const std::set<std::string> have(mine.begin(), mine.end()), cloud_has(theirs.begin(), theirs.end());
    std::set<std::string> held_back;
    for (const auto& w : withdrawn_[device]) held_back.insert(w.rel);
    auto enqueue = [&](bool up, const std::string& rel) {
        Key key{device, up, rel};
        if (queue_.count(key)) return;
        const uint64_t delay = config_.max_delay > 0 ? rng_() % (config_.max_delay + 1) : 0;
        queue_[key] = Transfer{device, up, rel, now_ + delay};
    };
    for (const auto& rel : mine)
        if (rel != store::kHeaderFile && !is_engine_temp(rel) && !cloud_has.count(rel)) enqueue(true, rel);
    for (const auto& rel : theirs)
        if (rel != store::kHeaderFile && !have.count(rel) && !held_back.count(rel)) enqueue(false, rel);
}

std::string SyncEngine::temp_name(const std::string& rel) const {
    return join(parent_of(rel), ".syncthing." + leaf_of(rel) + ".tmp");
}

// Does one due transfer; returns files moved. Leaves it queued when it
// is not finished (a partial download, a duplicate still to come).
size_t SyncEngine::deliver(Transfer& t) {
    store::Backend& from = t.up ? *copies_[t.device] : cloud();
    store::Backend& to = t.up ? cloud() : *copies_[t.device];
    if (!t.delivered && !t.up && !t.partial && roll(config_.partial_pct)) {
        auto bytes = from.read(t.rel, kMaxFile);
        if (bytes.ok()) {
            bytes->resize(bytes->size() / 2);
            (void)to.write_new(temp_name(t.rel), *bytes, false);
            t.partial = true;
            ++stats_.partials;
            t.due = now_ + 1 + rng_() % 2;
            return 0;
        }
    }
    const bool again = t.delivered;
    size_t moved = copy(from, to, t.rel, again) ? 1 : 0;
    if (t.partial) {
        (void)to.remove(temp_name(t.rel));
        t.partial = false;
    }
    if (!again && moved && roll(config_.conflict_copy_pct)) {
        auto bytes = to.read(t.rel, kMaxFile);
        if (bytes.ok() && to.write_new(conflict_copy_name(t.rel, rng_()), *bytes, false).ok()) {
            ++moved;
            ++stats_.conflict_copies;
        }
    }
    t.delivered = !again && moved && roll(config_.duplicate_pct);
    if (t.delivered) {
        t.due = now_ + 1 + rng_() % (config_.max_delay + 1);
        ++stats_.duplicates;
    }
    return moved;
}

void SyncEngine::add_foreign_file() {
    const size_t pick = rng_() % (copies_.size() + 1);
    store::Backend& b = pick == copies_.size() ? cloud() : *copies_[pick];
    std::set<std::string> dirs{""};  // every folder that holds a file, and the folders above it
    for (const auto& rel : list_files(b))
        for (std::string d = parent_of(rel); !d.empty() && !d.starts_with(".dropbox.cache"); d = parent_of(d))
            dirs.insert(d);
    const std::string dir = *std::next(dirs.begin(), static_cast<long>(rng_() % dirs.size()));
    const std::string name = kForeignNames[rng_() % std::size(kForeignNames)];
    Bytes junk(rng_() % 64);
    for (auto& c : junk) c = static_cast<uint8_t>(rng_());
    if (b.write_new(join(dir, name), junk, false).ok()) ++stats_.foreign;
}

void SyncEngine::withdraw_object() {
    if (copies_.empty()) return;
    const size_t device = rng_() % copies_.size();
    std::vector<std::string> objects;
    for (const auto& rel : list_files(*copies_[device]))
        if (rel.starts_with("objects/")) objects.push_back(rel);
    if (objects.empty()) return;
    const std::string rel = objects[rng_() % objects.size()];
    auto bytes = copies_[device]->read(rel, kMaxFile);
    if (!bytes.ok() || !copies_[device]->remove(rel).ok()) return;
    withdrawn_[device].push_back({rel, std::move(bytes).value(), now_ + 1 + rng_() % (config_.max_delay + 1)});
    ++stats_.withdrawn;
}

size_t SyncEngine::restore_withdrawn(bool all) {
    size_t moved = 0;
    for (auto& [device, list] : withdrawn_) {
        for (auto it = list.begin(); it != list.end();) {
            if (!all && it->until > now_) {
                ++it;
                continue;
            }
            moved += copies_[device]->write_new(it->rel, it->bytes, false).ok() ? 1 : 0;
            it = list.erase(it);
        }
    }
    return moved;
}

size_t SyncEngine::step() {
    ++now_;
    size_t moved = restore_withdrawn(false);
    for (size_t d = 0; d < copies_.size(); ++d) notice(d);
    if (roll(config_.foreign_pct)) add_foreign_file();
    if (roll(config_.withdraw_pct)) withdraw_object();
    std::vector<Key> due;
    for (const auto& [key, t] : queue_)
        if (t.due <= now_) due.push_back(key);
    std::shuffle(due.begin(), due.end(), rng_);
    for (const auto& key : due) {
        Transfer& t = queue_.at(key);
        moved += deliver(t);
        if (!t.partial && !t.delivered) queue_.erase(key);
    }
    return moved;
}

size_t SyncEngine::settle() {
    const Config saved = config_;
    config_ = polite();  // no new misbehaviour; what is in flight lands
    size_t moved = restore_withdrawn(true);
    // Each pass lands everything noticed; a few passes settle any vault.
    for (int pass = 0; pass < 64; ++pass) {
        for (auto& [key, t] : queue_) t.due = now_;
        for (size_t d = 0; d < copies_.size(); ++d) notice(d);
        if (queue_.empty()) break;
        for (auto it = queue_.begin(); it != queue_.end();) {
            Transfer& t = it->second;
            t.due = now_;
            moved += deliver(t);
            it = t.partial || t.delivered ? std::next(it) : queue_.erase(it);
        }
    }
    config_ = saved;
    return moved;
}

size_t SyncEngine::upload(size_t device) {
    sync_header(device);
    const auto theirs = list_files(cloud());
    const std::set<std::string> cloud_has(theirs.begin(), theirs.end());
    size_t moved = 0;
    for (const auto& rel : list_files(*copies_[device]))
        if (rel != store::kHeaderFile && !is_engine_temp(rel) && !cloud_has.count(rel))
            moved += copy(*copies_[device], cloud(), rel, false) ? 1 : 0;
    return moved;
}

size_t SyncEngine::download(size_t device, const std::function<bool(const std::string&)>& want) {
    sync_header(device);
    const auto mine = list_files(*copies_[device]);
    const std::set<std::string> have(mine.begin(), mine.end());
    size_t moved = 0;
    for (const auto& rel : list_files(cloud()))
        if (rel != store::kHeaderFile && !have.count(rel) && want(rel))
            moved += copy(cloud(), *copies_[device], rel, false) ? 1 : 0;
    return moved;
}

}  // namespace coffer::sim
