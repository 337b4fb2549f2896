// Crash consistency of the vfs core under simulated power cuts (fault_fs.h).
//
// "random operations": each run is a vault in a TempDir and a Core on a
// local state folder with the fault layer underneath, then a few rounds of
//   seeded random operations → kill (abandon_for_tests, as kill -9) after a
//   random operation, or a power cut at a random I/O call inside one →
//   crash() (sometimes a second cut while the next boot recovers) → reopen,
// checking each time that the reopened tree is one the user could have seen
// since the last fsync (see Model), that every name reads back, and that
// publish, fsck and a new device then agree.
// "publish": a power cut at every mutating call of one publish, local
// (staging log, SQLite) and in the vault (each object and the segment: the
// vault sits behind a FaultBackend on the fault layer's power switch).
// "new device": a power cut at every mutating call of a first open.
// "failed batch commit": what fsyncdir / flush_all say after one.
//
// Replay one run: COFFER_CRASH_SEED=<seed> build-e/tests/coffer_unit_tests -tc='crash: random*'
//                 (COFFER_CRASH_TRACE=1 prints every operation and the model)
// More runs:      COFFER_CRASH_RUNS=<n> (default: 105 runs of 3 rounds, 315 crash points),
//                 from seed COFFER_CRASH_BASE=<seed> on (default 0xC0FFE5000);
//                 COFFER_CRASH_IDLE=1 also lets the 200 ms batch committer run
//                 between operations (slower)
// Reproducible from the seed except for the batch committer's timing (and
// vault tmp names, which come from getrandom).
#include <doctest/doctest.h>

#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <thread>

#include "coffer/format/object.h"
#include "coffer/format/segment.h"
#include "coffer/index/index.h"
#include "coffer/store/vault.h"
#include "coffer/store/vault_dir.h"
#include "coffer/sync/sync.h"
#include "coffer/util/log.h"
#include "vfs/core.h"
#include "../test_support.h"
#include "fault_fs.h"

using namespace coffer;
namespace fs = std::filesystem;

namespace {

uint64_t env_u64(const char* name, uint64_t dflt) {
    const char* v = std::getenv(name);
    if (!v || !*v) return dflt;
    return std::strtoull(v, nullptr, 0);
}

crypto::SecretBytes secret(std::string_view s) { return crypto::SecretBytes::from(as_bytes(s)); }

constexpr uint64_t kAnyFile = uint64_t{1} << 30;  // the cap of a whole-file read, above any vault file here

// The vault folder behind a FaultBackend on the fault layer's power switch:
// each vault write is a kill point of the same count as the local state's
// I/O, and a crash drops the vault files that were not durable. Creates the
// vault first if `create` is given.
Result<std::unique_ptr<store::Vault>> vault_under(testing::FaultFs& fault, const std::string& path,
                                                  const store::CreateOptions* create) {
    COFFER_ASSIGN(std::unique_ptr<store::VaultDir> dir, store::VaultDir::open(path));
    auto backend = std::make_unique<testing::FaultBackend>(std::move(dir));
    fault.attach(*backend);
    if (create) COFFER_TRY(store::Vault::create(*backend, secret("pw"), *create));
    return store::Vault::open(std::move(backend));
}

// Thousands of reopen messages ("applied N journal segments") hide the report.
struct QuietLog {
    QuietLog() { log::set_level(log::Level::warn); }
    ~QuietLog() { log::set_level(log::Level::info); }
};

// ---------------------------------------------------------------- the model
// What the user saw: path -> (directory, or file bytes). A state is a whole
// tree, because fsync commits the whole index batch: after a crash the tree
// must be exactly one of the states acknowledged since the last completed
// fsync / fsyncdir / publish (the batch committer may have made any later
// one durable, but never a part of one).
struct Entry {
    bool dir = false;
    std::shared_ptr<const Bytes> data;  // files
    uint32_t links = 1;                 // files: names of the node in the tree
    friend bool operator==(const Entry& a, const Entry& b) {
        if (a.dir != b.dir) return false;
        if (a.dir) return true;
        return a.links == b.links && *a.data == *b.data;
    }
};
using Tree = std::map<std::string, Entry>;

std::string parent_of(const std::string& p) {
    auto i = p.rfind('/');
    return i == std::string::npos ? std::string() : p.substr(0, i);
}
std::string leaf_of(const std::string& p) {
    auto i = p.rfind('/');
    return i == std::string::npos ? p : p.substr(i + 1);
}
std::string join(const std::string& dir, const std::string& name) { return dir.empty() ? name : dir + "/" + name; }

std::string describe(const Tree& t) {
    std::ostringstream o;
    for (const auto& [p, e] : t) {
        o << "  " << p;
        if (e.dir) {
            o << "/\n";
        } else {
            uint64_t h = 1469598103934665603ull;
            for (uint8_t b : *e.data) h = (h ^ b) * 1099511628211ull;
            o << " " << e.data->size() << " bytes #" << std::hex << (h & 0xffffff) << std::dec;
            if (e.links != 1) o << " (" << e.links << " links)";
            o << "\n";
        }
    }
    return o.str();
}

std::string diff(const Tree& want, const Tree& got) {
    std::ostringstream o;
    for (const auto& [p, e] : want) {
        auto it = got.find(p);
        if (it == got.end()) o << "  missing " << p << "\n";
        else if (!(it->second == e)) {
            if (e.dir != it->second.dir) {
                o << "  type differs at " << p << "\n";
            } else if (e.links != it->second.links) {
                o << "  " << p << ": want " << e.links << " links, got " << it->second.links << "\n";
            } else {
                const Bytes& a = *e.data;
                const Bytes& b = *it->second.data;
                size_t i = 0;
                while (i < a.size() && i < b.size() && a[i] == b[i]) ++i;
                o << "  " << p << ": want " << a.size() << " bytes, got " << b.size() << ", first difference at "
                  << i << "\n";
            }
        }
    }
    for (const auto& [p, e] : got)
        if (!want.count(p)) o << "  unexpected " << p << "\n";
    return o.str();
}

// Reads the whole tree of a Core through the Filesystem interface; "" if
// fine, else what failed.
std::string read_tree(vfs::Core& core, Tree& out, std::map<std::string, vfs::Ino>* inos_out = nullptr) {
    out.clear();
    std::map<std::string, vfs::Ino> local;
    std::map<std::string, vfs::Ino>* inos = inos_out ? inos_out : &local;
    inos->clear();
    std::map<vfs::Ino, uint32_t> nlink;
    std::vector<std::pair<std::string, vfs::Ino>> todo{{"", vfs::kRootIno}};
    while (!todo.empty()) {
        auto [dir, dino] = todo.back();
        todo.pop_back();
        std::vector<vfs::DirEntry> ents;
        uint64_t off = 0;
        for (;;) {
            size_t before = ents.size();
            auto st = core.readdir(dino, 0, off, false, [&](const vfs::DirEntry& e, const vfs::Attr*, uint64_t next) {
                if (ents.size() - before >= 7) return false;  // small pages: exercise resuming
                ents.push_back(e);
                off = next;
                return true;
            });
            if (!st.ok()) return "readdir(" + dir + "): " + st.error().message();
            if (ents.size() == before) break;
        }
        for (const auto& e : ents) {
            if (e.name == "." || e.name == "..") continue;
            std::string path = join(dir, e.name);
            auto a = core.getattr(e.ino);
            if (!a.ok()) return "getattr(" + path + "): " + a.error().message();
            auto l = core.lookup(dino, e.name);
            if (!l.ok() || l->ino != e.ino) return "lookup(" + path + ") disagrees with readdir";
            core.forget(e.ino, 1);
            if (inos) (*inos)[path] = e.ino;
            if (S_ISDIR(a->mode)) {
                out[path] = Entry{true, nullptr};
                todo.emplace_back(path, e.ino);
                continue;
            }
            if (!S_ISREG(a->mode)) return "unexpected node type at " + path;
            nlink[e.ino] = a->nlink;
            auto data = std::make_shared<Bytes>(a->size);
            for (uint64_t pos = 0; pos < a->size;) {
                auto n = core.read(e.ino, 0, pos, std::min<uint64_t>(a->size - pos, 100000), data->data() + pos);
                if (!n.ok()) return "read(" + path + " at " + std::to_string(pos) + "): " + n.error().message();
                if (*n == 0) return "short read of " + path + " at " + std::to_string(pos);
                pos += *n;
            }
            out[path] = Entry{false, std::move(data)};
        }
    }
    std::map<vfs::Ino, uint32_t> names;
    for (const auto& [p, ino] : *inos)
        if (!out[p].dir) names[ino] += 1;
    for (auto& [p, e] : out) {
        if (e.dir) continue;
        vfs::Ino ino = inos->at(p);
        e.links = names[ino];
        if (nlink[ino] != names[ino])
            return p + ": nlink " + std::to_string(nlink[ino]) + " but " + std::to_string(names[ino]) + " names";
    }
    return {};
}

// Every file under objects/ and journal/ is complete: objects have a valid
// header naming them (and, from vault format 2, the length it states),
// segments authenticate.
std::string check_vault_files(store::Vault& vault, const store::Unlocked& u) {
    const crypto::SecretBytes journal_key = crypto::derive(u.master, crypto::Subkey::journal);
    const crypto::SecretBytes object_key = crypto::derive(u.master, crypto::Subkey::object_header);
    const format::Header& h = u.header;
    auto prefixes = vault.backend().list("objects");
    if (!prefixes.ok()) return "list objects: " + prefixes.error().message();
    for (const auto& p : *prefixes) {
        auto names = vault.backend().list("objects/" + p);
        if (!names.ok()) return "list objects/" + p;
        for (const auto& n : *names) {
            auto id = Id128::from_hex(n);
            if (!id.ok()) return "stray file objects/" + p + "/" + n;
            auto bytes = vault.backend().read("objects/" + p + "/" + n, kAnyFile);
            if (!bytes.ok()) return "read objects/" + p + "/" + n;
            auto info = format::check_object_header(*bytes, *id, h.version, object_key, h.key_epoch);
            if (!info.ok() || (info->length && *info->length != bytes->size()))
                return "half-written object objects/" + p + "/" + n;
        }
    }
    auto devs = vault.backend().list("journal");
    if (!devs.ok()) return "list journal";
    for (const auto& d : *devs) {
        auto segs = vault.backend().list("journal/" + d);
        if (!segs.ok()) return "list journal/" + d;
        for (const auto& s : *segs) {
            auto bytes = vault.backend().read("journal/" + d + "/" + s, kAnyFile);
            if (!bytes.ok() || !format::decode_segment(journal_key, *bytes).ok())
                return "half-written segment journal/" + d + "/" + s;
        }
    }
    return {};
}

// ---------------------------------------------------------------- one run
struct Live {
    vfs::Ino ino = 0;
    uint64_t fh = 0;  // files: an open read-write handle
};

struct CrashStats {
    uint64_t crash_points = 0;
    uint64_t power_cuts = 0;  // crash points that were an I/O kill point
    uint64_t ops = 0;
    uint64_t kept_writes = 0, dropped_writes = 0;
    uint64_t recovery_cuts = 0;  // a second power cut while reopening
};

class Run {
public:
    Run(uint64_t seed, CrashStats& stats) : seed_(seed), rng_(seed), random_(seed), stats_(stats) {}

    // "" when every round passed, else the first failure.
    std::string go(int rounds) {
        std::string state = tmp_.str() + "/state";
        vault_path_ = tmp_.str() + "/vault";
        testing::FaultFs fault(state);
        fault.install();  // before the vault is made: no real flushes from here on
        fs::create_directories(vault_path_);
        store::CreateOptions co;
        co.pw_params = crypto::insecure_test_params();
        co.block_size = 4096;
        co.extent_size = 64 * 1024;  // small extents: files span several
        auto v = vault_under(fault, vault_path_, &co);
        if (!v.ok()) return "vault create: " + v.error().message();
        vault_ = std::move(*v);
        store::Credentials cr;
        cr.password = secret("pw");
        auto u = vault_->unlock(cr);
        if (!u.ok()) return "unlock: " + u.error().message();
        unlocked_ = std::move(*u);
        opts_.state_dir = state;
        for (int r = 0; r < rounds; ++r) {
            round_ = r;
            std::string err = round(fault);
            if (!err.empty()) return "round " + std::to_string(r) + ": " + err;
        }
        return {};
    }

private:
    uint64_t pick(uint64_t n) { return n == 0 ? 0 : rng_() % n; }
    bool chance(unsigned percent) { return pick(100) < percent; }

    Result<std::unique_ptr<vfs::Core>> open_core(const vfs::Options& o) {
        auto f = vfs::Filesystem::open(*vault_, unlocked_.header, unlocked_.master.clone(), o);
        if (!f.ok()) return std::move(f).error();
        return std::unique_ptr<vfs::Core>(static_cast<vfs::Core*>(f->release()));
    }

    Tree tree_now() const {
        Tree t;
        std::map<vfs::Ino, uint32_t> names;
        for (const auto& [p, e] : model_)
            if (!e.dir) names[live_.at(p).ino] += 1;
        for (const auto& [p, e] : model_) {
            t[p] = e;
            if (!e.dir) t[p].links = names[live_.at(p).ino];
        }
        return t;
    }
    void acknowledged() { since_durable_.push_back(tree_now()); }
    void durable() { since_durable_.assign(1, tree_now()); }

    std::vector<std::string> paths(bool dirs, bool files) const {
        std::vector<std::string> out;
        for (const auto& [p, e] : model_)
            if ((e.dir && dirs) || (!e.dir && files)) out.push_back(p);
        return out;
    }
    std::string any_dir() {
        auto d = paths(true, false);
        size_t i = pick(d.size() + 1);
        return i == d.size() ? std::string() : d[i];
    }
    // New bytes of a file, under every name it has.
    void set_data(const std::string& path, std::shared_ptr<const Bytes> data) {
        vfs::Ino ino = live_.at(path).ino;
        for (auto& [p, e] : model_)
            if (!e.dir && live_.at(p).ino == ino) e.data = data;
    }
    vfs::Ino ino_of_dir(const std::string& d) const { return d.empty() ? vfs::kRootIno : live_.at(d).ino; }
    std::string fresh_name(const std::string& dir) {
        static const char* kNames[] = {"a", "b", "c", "d", "notes.txt", "e", "f", "g"};
        for (int tries = 0; tries < 8; ++tries) {
            std::string n = kNames[pick(8)];
            if (!model_.count(join(dir, n))) return n;
        }
        return "n" + std::to_string(rng_());
    }

    // One operation on core_ and, if it was acknowledged, on the model.
    // Returns "" or a failure that is a bug (an error the test did not cause).
    std::string step(testing::FaultFs& fault) {
        vfs::Ctx ctx{::getuid(), ::getgid(), 022};
        auto failed = [&](const std::string& what, const Error& e) -> std::string {
            if (fault.power_is_cut()) return {};  // expected: the disk is gone
            return what + ": " + e.message();
        };
        auto files = paths(false, true);
        // Idle long enough for the batch committer to commit on its own (slow:
        // only when asked for, COFFER_CRASH_IDLE=1).
        static const bool idle = env_u64("COFFER_CRASH_IDLE", 0) != 0;
        if (idle && chance(4)) std::this_thread::sleep_for(std::chrono::milliseconds(230));
        unsigned r = static_cast<unsigned>(pick(100));
        last_kind_ = r;
        if (r < 14 || files.empty()) {  // create
            std::string dir = any_dir(), name = fresh_name(dir), path = join(dir, name);
            auto c = core_->create(ino_of_dir(dir), name, 0644, O_RDWR, ctx);
            if (!c.ok()) return failed("create " + path, c.error());
            model_[path] = Entry{false, std::make_shared<Bytes>()};
            live_[path] = Live{c->attr.ino, c->fh};
        } else if (r < 46) {  // write
            std::string path = files[pick(files.size())];
            const Bytes& old = *model_[path].data;
            uint64_t off;
            switch (pick(4)) {
                case 0: off = old.size(); break;                                         // append
                case 1: off = pick(8) * vfs::kFrameSize + vfs::kFrameSize - 1 - pick(300); break;  // across a frame
                case 2: off = pick(old.size() + 1); break;
                default: off = pick(old.size() + 70000); break;  // may leave a hole
            }
            uint64_t len = chance(20) ? 1 + pick(3 * vfs::kFrameSize) : 1 + pick(3000);
            Bytes data(len);
            for (auto& b : data) b = static_cast<uint8_t>(rng_());
            const Live& l = live_[path];
            auto w = core_->write(l.ino, l.fh, off, data);
            if (!w.ok()) return failed("write " + path, w.error());
            if (*w != len) return "short write to " + path;
            auto next = std::make_shared<Bytes>(old);
            if (next->size() < off + len) next->resize(off + len, 0);
            std::copy(data.begin(), data.end(), next->begin() + static_cast<ptrdiff_t>(off));
            set_data(path, std::move(next));
        } else if (r < 53) {  // truncate
            std::string path = files[pick(files.size())];
            const Bytes& old = *model_[path].data;
            uint64_t size = pick(old.size() * 3 / 2 + 2);
            vfs::SetAttrReq req;
            req.size = size;
            req.fh = live_[path].fh;
            auto a = core_->setattr(live_[path].ino, req, ctx);
            if (!a.ok()) return failed("truncate " + path, a.error());
            if (a->size != size) return "truncate " + path + ": size " + std::to_string(a->size);
            auto next = std::make_shared<Bytes>(old);
            next->resize(size, 0);
            set_data(path, std::move(next));
        } else if (r < 56) {  // punch a hole
            std::string path = files[pick(files.size())];
            const Bytes& old = *model_[path].data;
            if (old.empty()) return {};
            uint64_t off = pick(old.size()), len = 1 + pick(old.size() - off + 5000);
            auto st = core_->fallocate(live_[path].ino, live_[path].fh, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                                       off, len);
            if (!st.ok()) return failed("punch " + path, st.error());
            auto next = std::make_shared<Bytes>(old);
            for (uint64_t i = off; i < std::min<uint64_t>(off + len, next->size()); ++i) (*next)[i] = 0;
            set_data(path, std::move(next));
        } else if (r < 64) {  // rename (a file or a folder; may replace a file)
            auto all = paths(true, true);
            std::string src = all[pick(all.size())];
            std::string dir = any_dir();
            if (dir == src || dir.rfind(src + "/", 0) == 0) return {};  // into itself
            std::string name = fresh_name(dir);
            bool src_dir = model_[src].dir;
            if (!src_dir && chance(40)) {  // over an existing file
                auto others = paths(false, true);
                std::string victim = others[pick(others.size())];
                if (victim != src) {
                    dir = parent_of(victim);
                    name = leaf_of(victim);
                }
            }
            std::string dst = join(dir, name);
            if (dst == src) return {};
            bool same_node = live_.count(dst) && live_[dst].ino == live_[src].ino;
            auto st = core_->rename(ino_of_dir(parent_of(src)), leaf_of(src), ino_of_dir(dir), name, 0);
            if (!st.ok()) return failed("rename " + src + " -> " + dst, st.error());
            if (same_node) {  // two names of one file: rename(2) does nothing
                acknowledged();
                return {};
            }
            model_.erase(dst);
            live_.erase(dst);  // a replaced file stays open until the round ends
            std::vector<std::pair<std::string, std::string>> moves;
            for (const auto& [p, e] : model_)
                if (p == src || p.rfind(src + "/", 0) == 0) moves.emplace_back(p, dst + p.substr(src.size()));
            for (const auto& [from, to] : moves) {
                model_[to] = model_[from];
                live_[to] = live_[from];
                model_.erase(from);
                live_.erase(from);
            }
        } else if (r < 67) {  // hard link
            std::string src = files[pick(files.size())];
            std::string dir = any_dir(), name = fresh_name(dir), path = join(dir, name);
            auto a = core_->link(live_[src].ino, ino_of_dir(dir), name);
            if (!a.ok()) return failed("link " + src + " -> " + path, a.error());
            auto fh = core_->open(a->ino, O_RDWR);
            if (!fh.ok()) return failed("open " + path, fh.error());
            model_[path] = model_[src];
            live_[path] = Live{a->ino, *fh};
        } else if (r < 69) {  // open with O_TRUNC
            std::string path = files[pick(files.size())];
            auto fh = core_->open(live_[path].ino, O_RDWR | O_TRUNC);
            if (!fh.ok()) return failed("open O_TRUNC " + path, fh.error());
            live_[path].fh = *fh;
            set_data(path, std::make_shared<Bytes>());
        } else if (r < 72) {  // unlink
            std::string path = files[pick(files.size())];
            auto st = core_->unlink(ino_of_dir(parent_of(path)), leaf_of(path));
            if (!st.ok()) return failed("unlink " + path, st.error());
            model_.erase(path);
            live_.erase(path);
        } else if (r < 76) {  // mkdir
            std::string dir = any_dir(), name = fresh_name(dir), path = join(dir, name);
            if (std::count(path.begin(), path.end(), '/') > 3) return {};
            auto a = core_->mkdir(ino_of_dir(dir), name, 0755, ctx);
            if (!a.ok()) return failed("mkdir " + path, a.error());
            model_[path] = Entry{true, nullptr};
            live_[path] = Live{a->ino, 0};
        } else if (r < 79) {  // rmdir an empty folder
            for (const auto& d : paths(true, false)) {
                bool empty = true;
                for (const auto& [p, e] : model_)
                    if (p.rfind(d + "/", 0) == 0) empty = false;
                if (!empty) continue;
                auto st = core_->rmdir(ino_of_dir(parent_of(d)), leaf_of(d));
                if (!st.ok()) return failed("rmdir " + d, st.error());
                model_.erase(d);
                live_.erase(d);
                break;
            }
        } else if (r < 92) {  // fsync a file
            std::string path = files[pick(files.size())];
            auto st = core_->fsync(live_[path].ino, live_[path].fh, chance(50));
            if (!st.ok()) return failed("fsync " + path, st.error());
            durable();
            return {};
        } else if (r < 94) {  // the unmount path
            auto st = core_->flush_all();
            if (!st.ok()) return failed("flush_all", st.error());
            durable();
            return {};
        } else if (r < 96) {  // fsyncdir
            std::string dir = any_dir();
            auto st = core_->fsyncdir(ino_of_dir(dir), 0);
            if (!st.ok()) return failed("fsyncdir " + dir, st.error());
            durable();
            return {};
        } else {  // publish
            auto p = sync::publish(*core_);
            if (!p.ok()) return failed("publish", p.error());
            durable();  // its cut commits the index durably
            return {};
        }
        acknowledged();
        return {};
    }

    std::string round(testing::FaultFs& fault) {
        auto c = open_core(opts_);
        if (!c.ok()) return "open: " + c.error().message();
        core_ = std::move(*c);
        if (round_ == 0) {
            durable();
        } else {
            // Handles for the files that survived the last crash.
            for (auto& [p, l] : live_) {
                if (model_[p].dir) continue;
                auto fh = core_->open(l.ino, O_RDWR);
                if (!fh.ok()) return "open " + p + ": " + fh.error().message();
                l.fh = *fh;
            }
        }
        // Kill point: after a random number of operations, or at a random
        // mutating I/O call (a power cut in the middle of an operation).
        int nops = 5 + static_cast<int>(pick(30));
        bool io_kill = chance(50);
        if (io_kill) fault.cut_power_after(pick(static_cast<uint64_t>(nops) * 2 + 2));
        static const bool trace = env_u64("COFFER_CRASH_TRACE", 0) != 0;
        for (int i = 0; i < nops && !fault.power_is_cut(); ++i) {
            stats_.ops += 1;
            uint64_t calls0 = fault.mutating_calls();
            size_t states0 = since_durable_.size();
            std::string err = step(fault);
            if (trace)
                std::cerr << "round " << round_ << " op " << i << " (kind " << last_kind_ << "): I/O calls " << calls0
                          << ".." << fault.mutating_calls() << (fault.power_is_cut() ? " POWER CUT" : "")
                          << ", states since durable " << states0 << " -> " << since_durable_.size() << "\n"
                          << describe(tree_now());
            if (!err.empty()) return "operation " + std::to_string(i) + ": " + err;
        }
        if (fault.power_is_cut()) stats_.power_cuts += 1;
        core_->abandon_for_tests();
        fault.cut_power();  // a killed process writes nothing more (no checkpoint at close)
        core_.reset();
        std::optional<uint64_t> keep;
        if (chance(50)) keep = rng_();
        auto cs = fault.crash(keep);
        stats_.kept_writes += cs.kept;
        stats_.dropped_writes += cs.dropped;
        stats_.crash_points += 1;

        // Sometimes the power goes again while the next boot recovers.
        if (chance(25)) {
            fault.cut_power_after(pick(12));
            {
                auto again = open_core(opts_);
                if (!again.ok() && !fault.power_is_cut())
                    return "reopen after the crash (before the second cut): " + again.error().message();
                if (again.ok()) (*again)->abandon_for_tests();
                fault.cut_power();
            }
            std::optional<uint64_t> keep2;
            if (chance(50)) keep2 = rng_();
            auto cs2 = fault.crash(keep2);
            stats_.kept_writes += cs2.kept;
            stats_.dropped_writes += cs2.dropped;
            stats_.recovery_cuts += 1;
        }

        // ---- the next boot
        c = open_core(opts_);
        if (!c.ok()) return "reopen after the crash: " + c.error().message();
        core_ = std::move(*c);
        Tree got;
        std::map<std::string, vfs::Ino> inos;
        std::string err = read_tree(*core_, got, &inos);
        if (!err.empty()) return "after the crash: " + err;
        bool match = false;
        for (const Tree& t : since_durable_) match = match || t == got;
        if (!match) {
            std::ostringstream o;
            o << "the tree after the crash is none of the " << since_durable_.size()
              << " states since the last fsync\n last durable state:\n"
              << describe(since_durable_.front()) << " newest acknowledged state:\n"
              << describe(since_durable_.back()) << " found:\n"
              << describe(got) << " difference from the last durable state:\n"
              << diff(since_durable_.front(), got) << " difference from the newest state:\n"
              << diff(since_durable_.back(), got);
            return o.str();
        }
        auto p = sync::publish(*core_);
        if (!p.ok()) return "publish after the crash: " + p.error().message();
        err = check_vault_files(*vault_, unlocked_);
        if (!err.empty()) return err;
        auto report = sync::fsck(*vault_, unlocked_.header, unlocked_.master);
        if (!report.ok()) return "fsck: " + report.error().message();
        if (!report->clean()) {
            std::string s = "fsck is not clean:";
            for (const auto& t : report->tampered) s += "\n  tampered: " + t;
            for (const auto& t : report->pending) s += "\n  pending: " + t;
            return s;
        }
        // What was published is what a new device sees.
        {
            vfs::Options fresh;
            fresh.state_dir = tmp_.str() + "/fresh" + std::to_string(round_);
            fresh.read_only = true;
            auto other = open_core(fresh);
            if (!other.ok()) return "a new device cannot open the vault: " + other.error().message();
            Tree theirs;
            err = read_tree(**other, theirs);
            if (!err.empty()) return "on a new device: " + err;
            if (!(theirs == got)) return "a new device sees another tree than the one published:\n" + diff(got, theirs);
        }
        // The recovered tree is the model of the next round.
        model_ = got;
        live_.clear();
        for (const auto& [path, ino] : inos) live_[path] = Live{ino, 0};
        durable();
        core_.reset();
        return {};
    }

    uint64_t seed_;
    std::mt19937_64 rng_;
    testing::FixedRandom random_;
    CrashStats& stats_;
    testing::TempDir tmp_;
    std::string vault_path_;
    std::unique_ptr<store::Vault> vault_;
    store::Unlocked unlocked_;
    vfs::Options opts_;
    std::unique_ptr<vfs::Core> core_;
    int round_ = 0;
    unsigned last_kind_ = 0;
    std::map<std::string, Entry> model_;
    std::map<std::string, Live> live_;
    std::vector<Tree> since_durable_;
};

}  // namespace

TEST_CASE("crash: random operations, killed or power-cut at random points, recover to an acknowledged state") {
    QuietLog quiet;
    const uint64_t fixed = env_u64("COFFER_CRASH_SEED", 0);
    const int rounds = 3;
    const uint64_t runs = fixed ? 1 : env_u64("COFFER_CRASH_RUNS", 105);
    const uint64_t base = env_u64("COFFER_CRASH_BASE", 0xC0FFE5000ull);  // other seeds: another base
    CrashStats stats;
    auto t0 = std::chrono::steady_clock::now();
    for (uint64_t i = 0; i < runs; ++i) {
        uint64_t seed = fixed ? fixed : base + i;
        Run run(seed, stats);
        std::string err = run.go(rounds);
        if (!err.empty()) {
            FAIL_CHECK("crash run with seed " << seed << " failed: " << err
                                               << "\nreplay with: COFFER_CRASH_SEED=" << seed
                                               << " build-e/tests/coffer_unit_tests -tc='crash: random*'");
            break;
        }
    }
    auto secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    MESSAGE("crash points: " << stats.crash_points << " (" << stats.power_cuts << " power cuts inside an operation), "
                             << stats.recovery_cuts << " more cuts while recovering, " << stats.ops
                             << " operations, non-durable writes kept " << stats.kept_writes
                             << " / dropped " << stats.dropped_writes << ", " << secs << " s");
    if (!fixed && runs >= 105) CHECK(stats.crash_points >= 300);
}

// ---------------------------------------------------------------- kill points inside publish
namespace {

// A vault with one published version and edits on top, all fsynced; then a
// publish that the power cut stops after `kill_after` mutating calls (none
// if nullopt). Returns "" or what failed; `out` says what the cut hit.
struct KillOutcome {
    uint64_t calls = 0;           // mutating calls the publish made
    bool intent = false;          // an intent was recorded when the power went
    bool segment_missing = false; // ... and its segment was not in the vault yet
};
std::string publish_killed_at(std::optional<uint64_t> kill_after, std::optional<uint64_t> keep_seed,
                              KillOutcome& out) {
    testing::FixedRandom random(77);
    testing::TempDir tmp;
    std::string vault_path = tmp.str() + "/vault", state = tmp.str() + "/state";
    testing::FaultFs fault(state);
    fault.install();  // no real flushes from here on
    fs::create_directories(vault_path);
    store::CreateOptions co;
    co.pw_params = crypto::insecure_test_params();
    auto vr = vault_under(fault, vault_path, &co);
    if (!vr.ok()) return "vault create: " + vr.error().message();
    std::unique_ptr<store::Vault> vault = std::move(*vr);
    store::Credentials cr;
    cr.password = secret("pw");
    auto u = vault->unlock(cr);
    if (!u.ok()) return "unlock";
    crypto::SecretBytes journal_key = crypto::derive(u->master, crypto::Subkey::journal);

    vfs::Options opts;
    opts.state_dir = state;
    auto open_core = [&]() -> Result<std::unique_ptr<vfs::Core>> {
        auto f = vfs::Filesystem::open(*vault, u->header, u->master.clone(), opts);
        if (!f.ok()) return std::move(f).error();
        return std::unique_ptr<vfs::Core>(static_cast<vfs::Core*>(f->release()));
    };
    auto c = open_core();
    if (!c.ok()) return "open: " + c.error().message();
    std::unique_ptr<vfs::Core> core = std::move(*c);

    std::mt19937_64 rng(5);
    Tree model;
    vfs::Ctx ctx{::getuid(), ::getgid(), 022};
    auto make = [&](vfs::Ino dir, const std::string& dir_path, const std::string& name, size_t size,
                    vfs::Ino* ino_out = nullptr, uint64_t* fh_out = nullptr) -> std::string {
        auto cf = core->create(dir, name, 0644, O_RDWR, ctx);
        if (!cf.ok()) return "create " + name + ": " + cf.error().message();
        auto data = std::make_shared<Bytes>(size);
        for (auto& b : *data) b = static_cast<uint8_t>(rng());
        if (size && !core->write(cf->attr.ino, cf->fh, 0, *data).ok()) return "write " + name;
        model[join(dir_path, name)] = Entry{false, data};
        if (ino_out) *ino_out = cf->attr.ino;
        if (fh_out) *fh_out = cf->fh;
        return {};
    };
    auto md = core->mkdir(vfs::kRootIno, "docs", 0755, ctx);
    if (!md.ok()) return "mkdir";
    model["docs"] = Entry{true, nullptr};
    vfs::Ino big = 0;
    uint64_t big_fh = 0;
    std::string err = make(vfs::kRootIno, "", "big.bin", (3 << 20) / 2, &big, &big_fh);  // its own object
    for (int i = 0; err.empty() && i < 6; ++i)
        err = make(md->ino, "docs", "small" + std::to_string(i), 100 + rng() % 40000);  // a pack
    if (!err.empty()) return err;
    if (!sync::publish(*core).ok()) return "first publish";
    // Edits on top of the published version.
    Bytes patch(70000, 0x5a);
    if (!core->write(big, big_fh, 1000000, patch).ok()) return "patch big.bin";
    {
        auto next = std::make_shared<Bytes>(*model["big.bin"].data);
        std::copy(patch.begin(), patch.end(), next->begin() + 1000000);
        model["big.bin"].data = next;
    }
    err = make(md->ino, "docs", "new.txt", 5000);
    if (!err.empty()) return err;
    if (!core->rename(md->ino, "small0", vfs::kRootIno, "moved", 0).ok()) return "rename";
    model["moved"] = model["docs/small0"];
    model.erase("docs/small0");
    if (!core->unlink(md->ino, "small1").ok()) return "unlink";
    model.erase("docs/small1");
    if (!core->fsync(big, big_fh, false).ok()) return "fsync";

    // ---- the publish that the power cut stops
    uint64_t before = fault.mutating_calls();
    if (kill_after) fault.cut_power_after(*kill_after);
    auto p = sync::publish(*core);
    out.calls = fault.mutating_calls() - before;
    if (!kill_after && !p.ok()) return "publish: " + p.error().message();
    core->abandon_for_tests();
    fault.cut_power();
    core.reset();
    fault.crash(keep_seed);

    // Nothing half-written under objects/ or journal/ (a tmp file may be left in tmp/).
    err = check_vault_files(*vault, *u);
    if (!err.empty()) return "after the crash: " + err;
    // The recorded intent, read before anything finishes it.
    std::optional<std::pair<uint64_t, Bytes>> intent;
    Id128 device;
    {
        auto ix = index::Index::open(state + "/index.db");
        if (!ix.ok()) return "index: " + ix.error().message();
        auto i = (*ix)->intent();
        if (!i.ok()) return "intent: " + i.error().message();
        intent = std::move(*i);
        auto d = (*ix)->meta("device");
        if (!d.ok() || !*d || (*d)->size() != 16) return "device id";
        std::copy((*d)->begin(), (*d)->end(), device.b.begin());
    }
    out.intent = intent.has_value();
    out.segment_missing = intent && !vault->backend().exists(format::segment_path(device, intent->first));

    c = open_core();
    if (!c.ok()) return "reopen after the crash: " + c.error().message();
    core = std::move(*c);
    Tree got;
    err = read_tree(*core, got);
    if (!err.empty()) return "after the crash: " + err;
    if (!(got == model)) return "the tree after the crash differs from the fsynced one:\n" + diff(model, got);
    auto again = sync::publish(*core);
    if (!again.ok()) return "publish after the crash: " + again.error().message();
    if (intent) {
        auto there = vault->backend().read(format::segment_path(device, intent->first), store::kMaxSegmentFile);
        if (!there.ok()) return "the segment of the recorded intent was not written: " + there.error().message();
        if (*there != intent->second) return "the segment written differs from the recorded intent";
    }
    auto third = sync::publish(*core);
    if (!third.ok() || third->ops != 0) return "a publish after the recovery still found work to do";
    err = check_vault_files(*vault, *u);
    if (!err.empty()) return err;
    auto report = sync::fsck(*vault, u->header, u->master);
    if (!report.ok()) return "fsck: " + report.error().message();
    if (!report->clean()) return "fsck is not clean after the recovery";
    vfs::Options fresh;
    fresh.state_dir = tmp.str() + "/fresh";
    fresh.read_only = true;
    auto f = vfs::Filesystem::open(*vault, u->header, u->master.clone(), fresh);
    if (!f.ok()) return "a new device cannot open the vault: " + f.error().message();
    Tree theirs;
    err = read_tree(*static_cast<vfs::Core*>(f->get()), theirs);
    if (!err.empty()) return "on a new device: " + err;
    if (!(theirs == model)) return "a new device sees another tree:\n" + diff(model, theirs);
    core.reset();
    return {};
}

}  // namespace

TEST_CASE("crash: a power cut at every I/O call of publish leaves a vault the next publish completes") {
    QuietLog quiet;
    KillOutcome full;
    std::string err = publish_killed_at(std::nullopt, std::nullopt, full);
    REQUIRE_MESSAGE(err.empty(), err);
    const uint64_t calls = full.calls;
    REQUIRE(calls > 3);
    int points = 0, intents = 0, missing = 0;
    for (uint64_t k = 0; k <= calls; ++k) {
        for (std::optional<uint64_t> keep : {std::optional<uint64_t>{}, std::optional<uint64_t>{k * 31 + 7}}) {
            KillOutcome o;
            err = publish_killed_at(k, keep, o);
            ++points;
            intents += o.intent;
            missing += o.segment_missing;
            CHECK_MESSAGE(err.empty(), "kill after " << k << " of " << calls << " calls of publish, keep seed "
                                                      << (keep ? std::to_string(*keep) : "none") << ": " << err);
        }
    }
    MESSAGE("publish kill points: " << points << " (" << calls << " mutating calls in one publish); "
                                     << intents << " left an intent, " << missing
                                     << " of them before the segment reached the vault");
    // The interesting case must be among them: intent recorded, segment not written.
    CHECK(missing > 0);
}

// ---------------------------------------------------------------- kill points in the first open
namespace {

// A new device's first open (creating the local state, replaying what
// another device published if `published`), cut after `kill_after` mutating
// calls; the next open must work without repair and show the vault's tree.
std::string first_open_killed_at(bool published, std::optional<uint64_t> kill_after,
                                 std::optional<uint64_t> keep_seed, uint64_t& calls) {
    testing::FixedRandom random(91);
    testing::TempDir tmp;
    std::string vault_path = tmp.str() + "/vault", state = tmp.str() + "/state";
    testing::FaultFs fault(state);
    fault.install();  // no real flushes from here on
    fs::create_directories(vault_path);
    store::CreateOptions co;
    co.pw_params = crypto::insecure_test_params();
    auto vr = vault_under(fault, vault_path, &co);
    if (!vr.ok()) return "vault create: " + vr.error().message();
    std::unique_ptr<store::Vault> vault = std::move(*vr);
    store::Credentials cr;
    cr.password = secret("pw");
    auto u = vault->unlock(cr);
    if (!u.ok()) return "unlock";

    Tree theirs;  // what the other device published
    if (published) {
        vfs::Options other;
        other.state_dir = tmp.str() + "/other";
        auto f = vfs::Filesystem::open(*vault, u->header, u->master.clone(), other);
        if (!f.ok()) return "other device: " + f.error().message();
        auto* core = static_cast<vfs::Core*>(f->get());
        vfs::Ctx ctx{::getuid(), ::getgid(), 022};
        auto d = core->mkdir(vfs::kRootIno, "d", 0755, ctx);
        if (!d.ok()) return "other device: mkdir";
        for (int i = 0; i < 3; ++i) {
            auto c = core->create(d->ino, "f" + std::to_string(i), 0644, O_RDWR, ctx);
            if (!c.ok()) return "other device: create";
            Bytes data(1000 + 30000 * i, static_cast<uint8_t>(i + 1));
            if (!core->write(c->attr.ino, c->fh, 0, data).ok()) return "other device: write";
        }
        if (!sync::publish(*core).ok()) return "other device: publish";
        std::string err = read_tree(*core, theirs);
        if (!err.empty()) return "other device: " + err;
    }

    vfs::Options opts;
    opts.state_dir = state;
    uint64_t before = fault.mutating_calls();
    if (kill_after) fault.cut_power_after(*kill_after);
    {
        auto f = vfs::Filesystem::open(*vault, u->header, u->master.clone(), opts);
        calls = fault.mutating_calls() - before;
        if (!f.ok() && !fault.power_is_cut()) return "first open: " + f.error().message();
        if (f.ok()) static_cast<vfs::Core*>(f->get())->abandon_for_tests();
        fault.cut_power();
    }
    fault.crash(keep_seed);

    auto f = vfs::Filesystem::open(*vault, u->header, u->master.clone(), opts);
    if (!f.ok()) return "open after the crash: " + f.error().message();
    auto* core = static_cast<vfs::Core*>(f->get());
    vfs::Ctx ctx{::getuid(), ::getgid(), 022};
    auto a = core->getattr(vfs::kRootIno);
    if (!a.ok() || !S_ISDIR(a->mode)) return "no root folder after the crash";
    auto c = core->create(vfs::kRootIno, "x", 0644, O_RDWR, ctx);
    if (!c.ok()) return "create after the crash: " + c.error().message();
    Bytes data(5000, 7);
    if (!core->write(c->attr.ino, c->fh, 0, data).ok()) return "write after the crash";
    if (!core->fsync(c->attr.ino, c->fh, false).ok()) return "fsync after the crash";
    Tree got;
    std::string err = read_tree(*core, got);
    if (!err.empty()) return err;
    Tree want = theirs;
    want["x"] = Entry{false, std::make_shared<Bytes>(data)};
    if (!(got == want)) return "unexpected tree:\n" + diff(want, got);
    auto p = sync::publish(*core);
    if (!p.ok()) return "publish after the crash: " + p.error().message();
    auto report = sync::fsck(*vault, u->header, u->master);
    if (!report.ok() || !report->clean()) return "fsck is not clean";
    return {};
}

}  // namespace

TEST_CASE("crash: a power cut while a new device creates its local state") {
    QuietLog quiet;
    int points = 0;
    for (bool published : {false, true}) {
        uint64_t calls = 0;
        std::string err = first_open_killed_at(published, std::nullopt, std::nullopt, calls);
        REQUIRE_MESSAGE(err.empty(), err);
        REQUIRE(calls > 0);
        for (uint64_t k = 0; k <= calls; ++k) {
            for (std::optional<uint64_t> keep : {std::optional<uint64_t>{}, std::optional<uint64_t>{k * 13 + 1}}) {
                uint64_t ignored = 0;
                err = first_open_killed_at(published, k, keep, ignored);
                ++points;
                CHECK_MESSAGE(err.empty(), "power cut after " << k << " of " << calls
                                                              << " mutating calls of the first open ("
                                                              << std::string(published ? "a vault with content" : "an empty vault")
                                                              << "), keep seed "
                                                              << (keep ? std::to_string(*keep) : "none") << ": "
                                                              << err);
            }
        }
    }
    MESSAGE("first-open kill points: " << points);
}

// ---------------------------------------------------------------- a failed batch commit is reported
// When a batch commit fails, SQLite rolls the batch back: operations that
// were acknowledged are gone. The next fsync reports it (deferred error); an
// fsyncdir or flush_all must not report success either.
TEST_CASE("crash: fsyncdir and flush_all after a failed batch commit do not report success") {
    QuietLog quiet;
    for (bool use_flush_all : {false, true}) {
        CAPTURE(use_flush_all);
        testing::FixedRandom random(5);
        testing::TempDir tmp;
        std::string vault_path = tmp.str() + "/vault", state = tmp.str() + "/state";
        fs::create_directories(vault_path);
        store::CreateOptions co;
        co.pw_params = crypto::insecure_test_params();
        REQUIRE(store::Vault::create(vault_path, secret("pw"), co).ok());
        testing::FaultFs fault(state);
        auto vault = vault_under(fault, vault_path, nullptr);
        REQUIRE(vault.ok());
        store::Credentials cr;
        cr.password = secret("pw");
        auto u = (*vault)->unlock(cr);
        REQUIRE(u.ok());
        fault.install();
        vfs::Options opts;
        opts.state_dir = state;
        auto f = vfs::Filesystem::open(**vault, u->header, u->master.clone(), opts);
        REQUIRE(f.ok());
        auto* core = static_cast<vfs::Core*>(f->get());
        vfs::Ctx ctx{::getuid(), ::getgid(), 022};
        auto a = core->create(vfs::kRootIno, "a", 0644, O_RDWR, ctx);
        REQUIRE(a.ok());
        REQUIRE(core->fsync(a->attr.ino, a->fh, false).ok());
        REQUIRE(core->mkdir(vfs::kRootIno, "d", 0755, ctx).ok());  // acknowledged, in the open batch

        // The disk fails in the middle of the next commit (here publish's; the
        // 200 ms batch committer meets the same): the log sync passes, the
        // index write does not.
        fault.cut_power_after(1);
        CHECK_FALSE(sync::publish(*core).ok());
        Status st = use_flush_all ? core->flush_all() : core->fsyncdir(vfs::kRootIno, 0);
        core->abandon_for_tests();
        fault.cut_power();
        f->reset();
        fault.crash();
        auto again = vfs::Filesystem::open(**vault, u->header, u->master.clone(), opts);
        REQUIRE(again.ok());
        bool survived = (*again)->lookup(vfs::kRootIno, "d").ok();
        CHECK_MESSAGE((!st.ok() || survived),
                      std::string(use_flush_all ? "flush_all" : "fsyncdir")
                          << " reported success, but the acknowledged mkdir of d was lost with the failed batch");
    }
}
