// Random work for the simulator (sim_workload.h).
#include "sim_workload.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>

namespace coffer::sim {

namespace {

// Few names, so that devices often pick the same one: two files created
// under one name, a rename onto a name another device just used.
const char* const kNames[] = {"a", "b", "c.txt", "notes.md", "d", "photo.jpg"};
constexpr size_t kMaxEntries = 40;  // keeps trees small: collisions stay likely

enum class Op {
    create, mkdir, write, truncate, rmdir, unlink, rename, link, xattr, setattr, special, crossed_moves, move_dir,
};
// Drawn from uniformly, so an operation listed twice comes twice as often:
// creates and mkdirs often enough that devices share directories to move
// across each other.
constexpr Op kOps[] = {Op::create,   Op::create, Op::mkdir,   Op::mkdir,         Op::write,         Op::write,
                       Op::write,    Op::truncate, Op::rmdir, Op::unlink,        Op::rename,        Op::rename,
                       Op::link,     Op::xattr,  Op::setattr, Op::special,       Op::crossed_moves, Op::crossed_moves,
                       Op::move_dir, Op::move_dir};

bool inside(const std::string& path, const std::string& dir) { return path.rfind(dir + "/", 0) == 0; }

}  // namespace

void Workload::count(const char* kind, bool accepted, const std::string& detail) {
    if (accepted) ++done_[kind];
    if (trace_)
        std::fprintf(stderr, "sim: %s %s %s%s%s\n", w_.device(trace_device_).name.c_str(), kind, detail.c_str(),
                     detail.empty() ? "" : " ", accepted ? "" : "(refused)");
}

std::string Workload::new_name() { return kNames[rng_() % std::size(kNames)]; }

Bytes Workload::data(size_t n) {
    Bytes b(n);
    for (auto& c : b) c = static_cast<uint8_t>(rng_());
    return b;
}

// Every entry of device d's tree (a guarded walk: the tree may hold a cycle).
std::vector<Workload::Entry> Workload::entries(size_t d) {
    vfs::Filesystem& fs = w_.fs(d);
    std::vector<Entry> out;
    std::set<vfs::Ino> dirs{vfs::kRootIno};
    std::vector<std::pair<vfs::Ino, std::string>> todo{{vfs::kRootIno, ""}};
    while (!todo.empty() && out.size() < 4 * kMaxEntries) {
        auto [dir, prefix] = todo.back();
        todo.pop_back();
        auto fh = fs.opendir(dir);
        if (!fh.ok()) continue;
        std::vector<vfs::DirEntry> list;
        (void)fs.readdir(dir, *fh, 0, false, [&](const vfs::DirEntry& e, const vfs::Attr*, uint64_t) {
            if (e.name != "." && e.name != "..") list.push_back(e);
            return true;
        });
        (void)fs.releasedir(dir, *fh);
        for (const auto& e : list) {
            auto a = fs.getattr(e.ino);
            if (!a.ok()) continue;
            out.push_back({dir, e.name, prefix + "/" + e.name, *a});
            if (S_ISDIR(a->mode) && dirs.insert(e.ino).second) todo.push_back({e.ino, out.back().path});
        }
    }
    return out;
}

void Workload::plant() {
    // Directories and files every device holds before the random work, so
    // that even a short run has devices working on the same things.
    (void)w_.mkdir(0, vfs::kRootIno, "d");
    (void)w_.mkdir(0, vfs::kRootIno, "e");
    (void)w_.create_path(0, "/a", "planted a");
    (void)w_.create_path(0, "/d/notes.md", "planted notes");
    if (auto d = stat_path(w_.fs(0), "/d"); d.ok()) (void)w_.mkdir(0, d->ino, "b");
    (void)w_.converge();  // what it finds, the final checks find too
}

void Workload::step() {
    const size_t d = rng_() % w_.size();
    const unsigned roll = rng_() % 100;
    trace_device_ = d;
    if (serial_ && d != last_device_) {
        (void)w_.converge();  // what it finds, the final checks find too
        last_device_ = d;
    }
    if (roll < 60) {
        file_op(d);
    } else if (roll < 78) {
        auto r = w_.sync(d);
        count("sync", r.ok(), r.ok() ? "" : r.error().message());
    } else {
        const size_t moved = w_.engine().step();
        count("engine step", moved > 0, std::to_string(moved) + " file(s) moved");
    }
}

void Workload::file_op(size_t d) {
    vfs::Filesystem& fs = w_.fs(d);
    const auto all = entries(d);
    std::vector<Entry> dirs{{0, "", "", {}}}, files;
    dirs[0].attr.ino = vfs::kRootIno;
    dirs[0].attr.mode = S_IFDIR | 0755;
    for (const auto& e : all) {
        if (S_ISDIR(e.attr.mode)) dirs.push_back(e);
        else if (S_ISREG(e.attr.mode)) files.push_back(e);
    }
    auto pick = [&](const std::vector<Entry>& v) -> const Entry& { return v[rng_() % v.size()]; };
    const Entry& dir = pick(dirs);
    const bool room = all.size() < kMaxEntries;
    const vfs::Ctx& ctx = w_.ctx();
    switch (kOps[rng_() % std::size(kOps)]) {
        case Op::create:
            if (room) {
                const std::string name = new_name();
                count("create", w_.create(d, dir.attr.ino, name, data(rng_() % 3000)), dir.path + "/" + name);
            }
            break;
        case Op::mkdir:
            if (room) {
                const std::string name = new_name();
                count("mkdir", w_.mkdir(d, dir.attr.ino, name), dir.path + "/" + name);
            }
            break;
        case Op::write: {
            if (files.empty()) break;
            const Entry& f = pick(files);
            const uint64_t off = rng_() % (f.attr.size + 1000);
            const bool ok = w_.write(d, f.attr.ino, off, data(1 + rng_() % 3000));
            count("write", ok, f.path + " at " + std::to_string(off));
            break;
        }
        case Op::truncate: {
            if (files.empty()) break;
            const Entry& f = pick(files);
            const uint64_t size = rng_() % (f.attr.size + 2000);
            count("truncate", w_.truncate(d, f.attr.ino, size), f.path + " to " + std::to_string(size));
            break;
        }
        case Op::rmdir: {
            if (dirs.size() < 2) break;
            const Entry& victim = dirs[1 + rng_() % (dirs.size() - 1)];
            count("rmdir", fs.rmdir(victim.parent, victim.name).ok(), victim.path);
            break;
        }
        case Op::unlink: {
            if (all.empty()) break;
            const Entry& victim = pick(all);
            if (!S_ISDIR(victim.attr.mode)) count("unlink", w_.unlink(d, victim.parent, victim.name), victim.path);
            break;
        }
        case Op::rename: {
            // A rename or move: to a new name, onto an entry, or exchanged with one.
            if (all.empty()) break;
            const Entry& src = pick(all);
            const unsigned how = rng_() % 4;
            if (how < 2) {
                const unsigned flags = how == 1 ? RENAME_NOREPLACE : 0;
                const std::string name = new_name();
                count("rename", w_.rename(d, src.parent, src.name, dir.attr.ino, name, flags),
                      src.path + " -> " + dir.path + "/" + name);
            } else {
                const Entry& dst = pick(all);
                const unsigned flags = how == 3 ? RENAME_EXCHANGE : 0;
                const bool ok = w_.rename(d, src.parent, src.name, dst.parent, dst.name, flags);
                count(flags ? "exchange" : "rename over", ok, src.path + " -> " + dst.path);
            }
            break;
        }
        case Op::link: {
            if (files.empty() || !room) break;
            const Entry& f = pick(files);
            const std::string name = new_name();
            auto a = fs.link(f.attr.ino, dir.attr.ino, name);
            if (a.ok()) fs.forget(a->ino, 1);
            count("link", a.ok(), f.path + " as " + dir.path + "/" + name);
            break;
        }
        case Op::xattr: {
            // Removes one the entry has (user.sim.id excepted), or sets one.
            const Entry& e = all.empty() || rng_() % 5 == 0 ? dir : pick(all);
            std::vector<std::string> have;
            if (auto names = fs.listxattr(e.attr.ino); names.ok())
                for (const auto& n : *names)
                    if (n.starts_with("user.k")) have.push_back(n);
            if (!have.empty() && rng_() % 2 == 0) {
                const std::string& name = have[rng_() % have.size()];
                count("removexattr", fs.removexattr(e.attr.ino, name).ok(), e.path + " " + name);
            } else {
                const std::string name = "user.k" + std::to_string(rng_() % 3);
                count("setxattr", fs.setxattr(e.attr.ino, name, data(rng_() % 40), 0).ok(), e.path + " " + name);
            }
            break;
        }
        case Op::setattr: {
            // chmod and utimes; the owner keeps rwx on directories so the
            // work can go on in them.
            if (all.empty()) break;
            const Entry& e = pick(all);
            vfs::SetAttrReq r;
            if (rng_() % 2) r.mode = (S_ISDIR(e.attr.mode) ? 0700 : 0600) | (rng_() % 0100);
            if (rng_() % 2) {
                r.mtime = vfs::SetAttrReq::Time::set;
                r.mtime_val.tv_sec = static_cast<time_t>(1700000000 + rng_() % 100000000);
                r.mtime_val.tv_nsec = static_cast<long>(rng_() % 1000000000);
            } else {
                r.mtime = vfs::SetAttrReq::Time::now;
            }
            count(r.mode ? "chmod" : "utimes", fs.setattr(e.attr.ino, r, ctx).ok());
            break;
        }
        case Op::special: {
            if (!room) break;
            if (rng_() % 2) {
                auto a = fs.symlink(dir.attr.ino, new_name(), "../" + new_name(), ctx);
                if (a.ok()) fs.forget(a->ino, 1);
                count("symlink", a.ok());
            } else {
                auto a = fs.mknod(dir.attr.ino, new_name(), S_IFIFO | 0644, 0, ctx);
                if (a.ok()) fs.forget(a->ino, 1);
                count("mknod", a.ok());
            }
            break;
        }
        case Op::crossed_moves:
            crossed_moves(d, dirs);
            break;
        case Op::move_dir: {
            // A directory moved anywhere, its own subtree included (refused here,
            // but another device may make the crossing move).
            if (dirs.size() < 2) break;
            const Entry& src = dirs[1 + rng_() % (dirs.size() - 1)];
            const bool ok = w_.rename(d, src.parent, src.name, dir.attr.ino, src.name, 0);
            count("move dir", ok, src.path + " into " + dir.path);
            break;
        }
    }
}

void Workload::crossed_moves(size_t d, const std::vector<Entry>& dirs) {
    if (w_.size() < 2) return;
    // Two directories both devices hold at the same paths, neither inside the other.
    const size_t other = (d + 1 + rng_() % (w_.size() - 1)) % w_.size();
    std::map<std::string, vfs::Ino> there;
    for (const auto& e : entries(other))
        if (S_ISDIR(e.attr.mode)) there[e.path] = e.attr.ino;
    std::vector<const Entry*> shared;
    for (const auto& e : dirs)
        if (e.attr.ino != vfs::kRootIno && there.count(e.path)) shared.push_back(&e);
    if (shared.size() < 2) return;
    const Entry& x = *shared[rng_() % shared.size()];
    const Entry& y = *shared[rng_() % shared.size()];
    if (x.attr.ino == y.attr.ino || inside(y.path, x.path) || inside(x.path, y.path)) return;
    const std::string x_path = x.path, y_path = y.path, y_name = y.name;
    const bool here = w_.rename(d, x.parent, x.name, y.attr.ino, x.name, 0);
    count("move x into y", here, x_path + " into " + y_path);
    if (!here || serial_) return;
    const std::string y_parent_path = y_path.substr(0, y_path.rfind('/'));
    const vfs::Ino y_parent = y_parent_path.empty() ? vfs::kRootIno : there[y_parent_path];
    trace_device_ = other;
    count("move y into x elsewhere", w_.rename(other, y_parent, y_name, there[x_path], y_name, 0),
          y_path + " into " + x_path);
}

}  // namespace coffer::sim
