// The simulator's world (sim_world.h): devices, tracked file operations,
// convergence and the checks.
#include "sim_world.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <random>
#include <stdexcept>

#include "coffer/format/segment.h"
#include "coffer/store/memory_backend.h"

namespace coffer::sim {

namespace {

std::string str_of(ByteSpan b) { return std::string(b.begin(), b.end()); }

std::string short_hex(const std::string& digest) { return digest.substr(0, 16); }

}  // namespace

const VaultTemplate& vault_template() {
    static const VaultTemplate t = [] {
        crypto::init();
        // Seeded: the same master key in every run, so a replayed seed
        // seals, hashes and orders exactly as the failing run did.
        crypto::SeededRandom fixed(0x5eed);
        crypto::set_random_source(&fixed);
        auto mem = std::make_unique<store::MemoryBackend>();
        store::CreateOptions o;
        o.pw_params = crypto::insecure_test_params();
        auto pw = crypto::SecretBytes::from(as_bytes("simulated"));
        auto made = store::Vault::create(*mem, pw, o);
        auto header_file = mem->read(store::kHeaderFile, store::kMaxHeaderFile);
        crypto::set_random_source(nullptr);
        if (!made.ok() || !header_file.ok()) throw std::runtime_error("cannot create the simulator's vault");
        auto vault = store::Vault::open(std::move(mem));
        if (!vault.ok()) throw std::runtime_error("cannot open the simulator's vault");
        store::Credentials c;
        c.password = pw.clone();
        auto u = (*vault)->unlock(c);
        if (!u.ok()) throw std::runtime_error("cannot unlock the simulator's vault: " + u.error().message());
        return VaultTemplate{std::move(header_file).value(), u->header, std::move(u->master)};
    }();
    return t;
}

Result<std::unique_ptr<Device>> open_device(const std::string& name) {
    const VaultTemplate& t = vault_template();
    auto dev = std::make_unique<Device>();
    dev->name = name;
    dev->vault = new_vault_copy(t.header_file);
    if (!dev->vault) return make_error(Code::internal, "cannot make a vault copy in memory");
    vfs::Options o;
    o.state_dir = dev->state.path.string();
    o.device_name = name;
    COFFER_ASSIGN(dev->fs, vfs::Filesystem::open(*dev->vault, t.header, t.master.clone(), o));
    dev->id = dev->fs->replica().publish_keys().device;
    return dev;
}

// ---- reading a device's tree

Result<vfs::Attr> stat_path(vfs::Filesystem& fs, std::string_view path) {
    COFFER_ASSIGN(vfs::Attr a, fs.getattr(vfs::kRootIno));
    size_t pos = 0;
    while (pos < path.size()) {
        while (pos < path.size() && path[pos] == '/') ++pos;
        size_t end = path.find('/', pos);
        if (end == std::string_view::npos) end = path.size();
        if (end > pos) {
            COFFER_ASSIGN(a, fs.peek(a.ino, path.substr(pos, end - pos)));
        }
        pos = end;
    }
    return a;
}

Result<Bytes> read_whole(vfs::Filesystem& fs, vfs::Ino ino) {
    COFFER_ASSIGN(vfs::Attr a, fs.getattr(ino));
    Bytes out(a.size);
    size_t done = 0;
    while (done < out.size()) {
        COFFER_ASSIGN(size_t n, fs.read(ino, 0, done, out.size() - done, out.data() + done));
        if (n == 0) break;
        done += n;
    }
    out.resize(done);
    return out;
}

std::optional<std::string> read_path(vfs::Filesystem& fs, std::string_view path) {
    auto a = stat_path(fs, path);
    if (!a.ok() || !S_ISREG(a->mode)) return std::nullopt;
    auto b = read_whole(fs, a->ino);
    if (!b.ok()) return std::nullopt;
    return str_of(*b);
}

namespace {
Result<std::vector<vfs::DirEntry>> read_dir(vfs::Filesystem& fs, vfs::Ino dir) {
    std::vector<vfs::DirEntry> out;
    COFFER_ASSIGN(uint64_t fh, fs.opendir(dir));
    Status st = fs.readdir(dir, fh, 0, false, [&](const vfs::DirEntry& e, const vfs::Attr*, uint64_t) {
        if (e.name != "." && e.name != "..") out.push_back(e);
        return true;
    });
    (void)fs.releasedir(dir, fh);
    COFFER_TRY(st);
    return out;
}
}  // namespace

std::vector<std::string> names_in(vfs::Filesystem& fs, std::string_view path) {
    std::vector<std::string> out;
    auto a = stat_path(fs, path);
    if (!a.ok()) return out;
    auto entries = read_dir(fs, a->ino);
    if (!entries.ok()) return out;
    for (const auto& e : *entries) out.push_back(e.name);
    std::sort(out.begin(), out.end());
    return out;
}

TreeWalk walk(vfs::Filesystem& fs) {
    constexpr size_t kMaxEntries = 100000;  // far above any simulated tree: more means the walk does not end
    TreeWalk w;
    std::set<vfs::Ino> dirs{vfs::kRootIno};
    std::vector<std::pair<vfs::Ino, std::string>> todo{{vfs::kRootIno, ""}};
    w.reached.insert(vfs::kRootIno);
    while (!todo.empty()) {
        auto [dir, prefix] = todo.back();
        todo.pop_back();
        auto entries = read_dir(fs, dir);
        if (!entries.ok()) {
            w.problems.push_back("readdir " + (prefix.empty() ? "/" : prefix) + ": " + entries.error().message());
            continue;
        }
        for (const auto& e : *entries) {
            const std::string path = prefix + "/" + e.name;
            if (w.entries.size() >= kMaxEntries) {
                w.problems.push_back("the walk from the root does not end (" + path + ")");
                return w;
            }
            auto a = fs.getattr(e.ino);
            if (!a.ok()) {
                w.problems.push_back("getattr " + path + ": " + a.error().message());
                continue;
            }
            w.entries[path] = *a;
            w.reached.insert(e.ino);
            if (S_ISDIR(a->mode)) {
                if (dirs.insert(e.ino).second) {
                    todo.push_back({e.ino, path});
                } else {
                    w.problems.push_back("directory " + path + " reached a second time: a cycle, or a directory "
                                         "with two names");
                }
            } else if (S_ISREG(a->mode)) {
                auto b = read_whole(fs, e.ino);
                if (b.ok()) {
                    w.files[path] = std::move(b).value();
                } else {
                    w.problems.push_back("read " + path + ": " + b.error().message());
                }
            }
        }
    }
    return w;
}

// ---- the world

World::World(uint64_t seed, const std::vector<std::string>& names, SyncEngine::Config engine)
    : seed_(seed), engine_(seed * 0x9e3779b97f4a7c15ULL + 1, engine, vault_template().header_file), random_(seed) {
    // Node ids, file keys and nonces from the seed: a replayed seed makes
    // the same ids, so the merge orders ties the same way.
    crypto::set_random_source(&random_);
    for (const auto& name : names) {
        auto dev = open_device(name);
        if (!dev.ok()) throw std::runtime_error("cannot open device " + name + ": " + dev.error().message());
        engine_.attach((*dev)->copy());
        devices_.push_back(std::move(dev).value());
    }
    touched_.resize(devices_.size());
    bases_.resize(devices_.size());
}

World::~World() {
    devices_.clear();
    crypto::set_random_source(nullptr);
}

std::string World::file_id(size_t d, vfs::Ino ino) {
    auto v = fs(d).getxattr(ino, kIdXattr);
    if (v.ok()) return str_of(*v);
    return "untagged:" + device(d).name + ":" + std::to_string(ino);
}

void World::note_base(size_t d, vfs::Ino ino) {
    const std::string id = file_id(d, ino);
    if (bases_.at(d).count(id)) return;
    auto a = fs(d).getattr(ino);
    if (!a.ok() || !S_ISREG(a->mode)) return;
    auto b = read_whole(fs(d), ino);
    if (b.ok()) bases_.at(d)[id] = std::move(b).value();
}

void World::touch(size_t d, vfs::Ino ino, bool unlinked) { touch_as(d, file_id(d, ino), ino, unlinked); }

void World::touch_as(size_t d, const std::string& id, vfs::Ino ino, bool unlinked) {
    Touch& t = touched_.at(d)[id];
    t.ino = ino;
    t.unlinked = t.unlinked || unlinked;
}

bool World::create(size_t d, vfs::Ino parent, const std::string& name, ByteSpan content, uint32_t mode) {
    auto c = fs(d).create(parent, name, mode, O_RDWR, ctx_);
    if (!c.ok()) return false;
    const vfs::Ino ino = c->attr.ino;
    const std::string id = "file" + std::to_string(next_file_++);
    (void)fs(d).setxattr(ino, kIdXattr, as_bytes(id), XATTR_CREATE);
    if (!content.empty()) (void)fs(d).write(ino, c->fh, 0, content);
    (void)fs(d).release(ino, c->fh);
    fs(d).forget(ino, 1);
    touch(d, ino);
    return true;
}

bool World::write(size_t d, vfs::Ino ino, uint64_t off, ByteSpan data) {
    note_base(d, ino);
    auto fh = fs(d).open(ino, O_RDWR);
    if (!fh.ok()) return false;
    auto w = fs(d).write(ino, *fh, off, data);
    (void)fs(d).release(ino, *fh);
    if (w.ok()) touch(d, ino);
    return w.ok();
}

bool World::truncate(size_t d, vfs::Ino ino, uint64_t size) {
    vfs::SetAttrReq r;
    r.size = size;
    note_base(d, ino);
    if (!fs(d).setattr(ino, r, ctx_).ok()) return false;
    touch(d, ino);
    return true;
}

bool World::unlink(size_t d, vfs::Ino parent, const std::string& name) {
    // Its id is read before: a file whose last link goes is gone, xattrs and all.
    auto victim = fs(d).peek(parent, name);
    if (!victim.ok()) return false;
    const std::string id = file_id(d, victim->ino);
    note_base(d, victim->ino);
    if (!fs(d).unlink(parent, name).ok()) return false;
    if (S_ISREG(victim->mode)) touch_as(d, id, victim->ino, true);
    return true;
}

bool World::rename(size_t d, vfs::Ino parent, const std::string& name, vfs::Ino new_parent,
                   const std::string& new_name, unsigned flags) {
    auto moved = fs(d).peek(parent, name);
    auto victim = fs(d).peek(new_parent, new_name);
    const std::string victim_id = victim.ok() ? file_id(d, victim->ino) : std::string();
    if (victim.ok() && !(flags & RENAME_EXCHANGE)) note_base(d, victim->ino);
    if (!fs(d).rename(parent, name, new_parent, new_name, flags).ok()) return false;
    // Renaming over a file removes that link of it (an exchange removes none).
    if (!(flags & RENAME_EXCHANGE) && victim.ok() && S_ISREG(victim->mode) && moved.ok() &&
        moved->ino != victim->ino)
        touch_as(d, victim_id, victim->ino, true);
    return true;
}

bool World::mkdir(size_t d, vfs::Ino parent, const std::string& name) {
    auto a = fs(d).mkdir(parent, name, 0755, ctx_);
    if (!a.ok()) return false;
    fs(d).forget(a->ino, 1);
    return true;
}

namespace {
std::pair<std::string, std::string> split_path(std::string_view path) {
    auto i = path.rfind('/');
    if (i == std::string_view::npos) return {"/", std::string(path)};
    return {std::string(path.substr(0, i)), std::string(path.substr(i + 1))};
}
}  // namespace

bool World::create_path(size_t d, std::string_view path, std::string_view content) {
    auto [dir, leaf] = split_path(path);
    auto parent = stat_path(fs(d), dir);
    return parent.ok() && create(d, parent->ino, leaf, as_bytes(content));
}

bool World::write_path(size_t d, std::string_view path, std::string_view content) {
    auto a = stat_path(fs(d), path);
    return a.ok() && truncate(d, a->ino, 0) && write(d, a->ino, 0, as_bytes(content));
}

Result<sync::SyncStats> World::sync(size_t d) {
    vfs::Replica& replica = fs(d).replica();
    auto status = replica.status();
    const uint64_t before = status.ok() ? status->last_seq : 0;
    // What this publish carries of each touched file, taken just before it.
    std::vector<Record> captured;
    for (const auto& [id, t] : touched_.at(d)) {
        Record r{id, d, 0, std::nullopt, std::nullopt, false};
        if (auto b = bases_.at(d).find(id); b != bases_.at(d).end()) r.base = b->second;
        auto a = fs(d).getattr(t.ino);
        if (a.ok() && a->nlink > 0 && S_ISREG(a->mode) && file_id(d, t.ino) == id) {
            auto b = read_whole(fs(d), t.ino);
            if (b.ok()) r.content = std::move(b).value();
        }
        // A live file that could not be read (an object withdrawn by the
        // sync client) is recorded like a deletion: it replaces what came
        // before, and nothing of it is required.
        r.must_survive = r.content.has_value() && !t.unlinked;
        captured.push_back(std::move(r));
    }
    auto result = sync::sync(replica);
    status = replica.status();
    const uint64_t after = status.ok() ? status->last_seq : before;
    if (after > before) {
        for (auto& r : captured) {
            r.seq = after;
            records_.push_back(std::move(r));
        }
        touched_.at(d).clear();
        bases_.at(d).clear();
    } else if (result.ok()) {
        touched_.at(d).clear();  // nothing to publish: none of it reached the vault
        bases_.at(d).clear();
    }
    return result;
}

std::vector<std::string> World::converge() {
    const int rounds = 4 + 3 * static_cast<int>(devices_.size());
    std::vector<std::string> errors, waiting;
    for (int round = 0; round < rounds; ++round) {
        size_t activity = engine_.settle();
        errors.clear();
        waiting.clear();
        for (size_t d = 0; d < size(); ++d) {
            auto r = sync(d);
            if (!r.ok()) {
                errors.push_back(device(d).name + ": sync failed: " + r.error().message());
                continue;
            }
            const vfs::MergeReport& m = r->merged;
            activity += r->published.ops + m.segments + m.ops + m.redone + m.conflicts + (m.postponed ? 1 : 0);
            for (const auto& w : m.waiting) waiting.push_back(device(d).name + ": " + w);
        }
        activity += engine_.settle();
        if (activity == 0 && errors.empty()) {
            if (waiting.empty()) return {};
            waiting.insert(waiting.begin(), "everything is delivered and quiet, yet segments still wait:");
            return waiting;
        }
    }
    std::vector<std::string> problems{"not quiet after " + std::to_string(rounds) + " rounds of sync and delivery"};
    problems.insert(problems.end(), errors.begin(), errors.end());
    problems.insert(problems.end(), waiting.begin(), waiting.end());
    return problems;
}

const std::map<size_t, uint64_t>& World::vector_of(size_t d, uint64_t seq) {
    auto [it, fresh] = vectors_.try_emplace({d, seq});
    if (!fresh) return it->second;
    const std::string rel = format::segment_path(device(d).id, seq);
    auto bytes = engine_.cloud().read(rel, store::kMaxSegmentFile);
    if (!bytes.ok()) bytes = device(d).copy().read(rel, store::kMaxSegmentFile);
    if (!bytes.ok()) return it->second;
    auto seg = format::decode_segment(fs(d).replica().publish_keys().journal_key, *bytes);
    if (!seg.ok()) return it->second;
    for (const auto& v : seg->merged)
        for (size_t e = 0; e < size(); ++e)
            if (device(e).id == v.device) it->second[e] = v.seq;
    return it->second;
}

// "[desktop 2 {laptop 1}: 1290 bytes; ...]": every record of one file,
// with the version vector of its segment (for the message of a lost content).
std::string World::history(const std::vector<const Record*>& records) {
    std::string out = "[";
    for (const Record* r : records) {
        if (out.size() > 1) out += "; ";
        out += device(r->device).name + " " + std::to_string(r->seq) + " {";
        for (const auto& [d, seq] : vector_of(r->device, r->seq))
            out += device(d).name + " " + std::to_string(seq) + ",";
        out += "}: ";
        out += r->content ? std::to_string(r->content->size()) + " bytes" : std::string("deleted");
        if (r->content && !r->must_survive) out += ", a link removed";
    }
    return out + "]";
}

bool World::causally_before(const Record& a, const Record& b) {
    if (a.device == b.device) return a.seq < b.seq;
    const auto& v = vector_of(b.device, b.seq);
    auto it = v.find(a.device);
    return it != v.end() && it->second >= a.seq;
}

std::vector<std::string> World::check() {
    std::vector<std::string> problems;
    versions_checked_ = 0;
    std::vector<TreeWalk> walks;
    bool trees_ok = true;
    for (size_t d = 0; d < size(); ++d) {
        walks.push_back(walk(fs(d)));
        for (const auto& p : walks.back().problems) problems.push_back(device(d).name + ": " + p);
        trees_ok = trees_ok && walks.back().problems.empty();
        auto regular = fs(d).replica().regular_files();
        if (!regular.ok()) {
            problems.push_back(device(d).name + ": regular_files: " + regular.error().message());
            continue;
        }
        // A file with links the walk did not reach hangs off a lost subtree
        // (a node without links may be kept, as a deleted file can be).
        size_t lost = 0;
        for (vfs::Ino ino : *regular) {
            if (walks.back().reached.count(ino)) continue;
            auto a = fs(d).getattr(ino);
            lost += a.ok() && a->nlink > 0 ? 1 : 0;
        }
        if (lost)
            problems.push_back(device(d).name + ": " + std::to_string(lost) +
                               " file(s) in the index not reachable from the root (a subtree was lost)");
    }

    // The digest walks the tree without a guard: only on trees that are trees.
    std::string want;
    if (trees_ok) {
        for (size_t d = 0; d < size(); ++d) {
            auto digest = fs(d).replica().digest();
            if (!digest.ok()) {
                problems.push_back(device(d).name + ": digest: " + digest.error().message());
                continue;
            }
            if (d == 0) want = *digest;
            if (*digest != want)
                problems.push_back(device(d).name + " holds tree " + short_hex(*digest) + ", " + device(0).name +
                                   " holds " + short_hex(want));
        }
    }

    std::vector<std::set<Bytes>> contents(size());
    for (size_t d = 0; d < size(); ++d)
        for (const auto& [path, bytes] : walks[d].files) contents[d].insert(bytes);
    std::map<std::string, std::vector<const Record*>> by_file;
    std::map<Bytes, std::vector<const Record*>> by_base;
    for (const auto& r : records_) {
        by_file[r.file].push_back(&r);
        if (r.base) by_base[*r.base].push_back(&r);
    }
    // Replaced: a causally later record changed the same file, or changed
    // whatever file held this content when it did (a conflict copy the merge
    // made is a file of its own, without the id).
    auto superseded = [&](const Record& r, const std::vector<const Record*>& same_file) {
        auto later = [&](const Record* other) { return other != &r && causally_before(r, *other); };
        if (std::any_of(same_file.begin(), same_file.end(), later)) return true;
        auto it = by_base.find(*r.content);
        return it != by_base.end() && std::any_of(it->second.begin(), it->second.end(), later);
    };
    size_t lost = 0;
    for (const auto& [file, records] : by_file) {
        for (const Record* r : records) {
            if (!r->must_survive || r->content->empty()) continue;
            if (superseded(*r, records)) continue;
            ++versions_checked_;
            for (size_t d = 0; d < size(); ++d) {
                if (contents[d].count(*r->content)) continue;
                if (++lost <= 5)
                    problems.push_back(device(d).name + ": lost the content of " + file + " (" +
                                       std::to_string(r->content->size()) + " bytes) that " +
                                       device(r->device).name + " published in its segment " +
                                       std::to_string(r->seq) + ", which nothing causally later replaced " +
                                       history(records));
            }
        }
    }
    if (lost > 5) problems.push_back("... " + std::to_string(lost - 5) + " more lost contents");

    const VaultTemplate& t = vault_template();
    tamper::TmpdirScope scratch;  // fsck's scratch state
    auto fsck = sync::fsck(engine_.cloud_vault(), t.header, t.master);
    if (!fsck.ok()) {
        problems.push_back("fsck of the cloud copy failed: " + fsck.error().message());
    } else {
        for (const auto& p : fsck->tampered) problems.push_back("fsck: tampered: " + p);
        for (const auto& p : fsck->pending) problems.push_back("fsck: pending: " + p);
    }

    if (!want.empty()) {
        auto fresh = check_fresh_devices(want);
        problems.insert(problems.end(), fresh.begin(), fresh.end());
    }
    return problems;
}

// Two new devices that receive the cloud's files in two different orders,
// merging after each batch, end with the tree everyone else holds.
std::vector<std::string> World::check_fresh_devices(const std::string& want) {
    std::vector<std::string> problems;
    std::mt19937_64 rng(seed_ ^ 0xf2e5bd);
    std::vector<std::string> files;
    for (const auto& rel : list_files(engine_.cloud()))
        if (rel != store::kHeaderFile) files.push_back(rel);
    for (int order = 0; order < 2; ++order) {
        const std::string name = "fresh" + std::to_string(order + 1);
        auto dev = open_device(name);
        if (!dev.ok()) {
            problems.push_back(name + ": cannot open: " + dev.error().message());
            continue;
        }
        vfs::Replica& replica = (*dev)->fs->replica();
        std::shuffle(files.begin(), files.end(), rng);
        for (size_t i = 0; i < files.size();) {
            const size_t batch = 1 + rng() % std::max<size_t>(1, files.size() / 4);
            for (size_t end = std::min(files.size(), i + batch); i < end; ++i) {
                auto bytes = engine_.cloud().read(files[i], uint64_t{1} << 30);
                if (bytes.ok()) (void)(*dev)->copy().write_new(files[i], *bytes, false);
            }
            auto r = sync::sync(replica);
            // A vault half delivered may lack what a segment needs: that waits, it is not an error.
            if (!r.ok() && r.error().code != Code::pending)
                problems.push_back(name + ": sync with part of the vault: " + r.error().message());
        }
        for (int round = 0; round < 4; ++round) {
            auto r = sync::sync(replica);
            if (!r.ok()) {
                problems.push_back(name + ": sync with the whole vault: " + r.error().message());
                break;
            }
            if (r->merged.segments == 0 && r->merged.ops == 0 && r->merged.waiting.empty()) break;
        }
        TreeWalk w = walk(*(*dev)->fs);
        for (const auto& p : w.problems) problems.push_back(name + ": " + p);
        if (!w.problems.empty()) continue;
        auto digest = replica.digest();
        if (!digest.ok()) {
            problems.push_back(name + ": digest: " + digest.error().message());
        } else if (*digest != want) {
            problems.push_back(name + " (a new device, vault files in another order) holds tree " +
                               short_hex(*digest) + ", the devices hold " + short_hex(want));
        }
    }
    return problems;
}

}  // namespace coffer::sim
