// Shared fixture for the FUSE-free core tests (vfs, sync): a vault in one
// TempDir, the local state of each "device" in another, and a few helpers
// that turn Results into values or error codes.
#pragma once

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "coffer/store/vault.h"
#include "coffer/store/vault_dir.h"
#include "coffer/sync/sync.h"
#include "vfs/core.h"
#include "coffer/vfs/filesystem.h"
#include "coffer/vfs/replica.h"
#include "../store/fault_backend.h"
#include "../test_support.h"

namespace coffer::testing {

// Code of a failed Result; Code::internal stands for "it succeeded".
template <class R>
Code code_of(const R& r) {
    return r.ok() ? Code::internal : r.error().code;
}

inline Bytes bytes_of(std::string_view s) { return Bytes(s.begin(), s.end()); }

// A vault created with fast password parameters and unlocked. Its folder is
// reached through a FaultBackend, which passes everything through until a
// test arms it (faults).
struct VaultEnv {
    TempDir vault_dir;
    std::unique_ptr<store::Vault> vault;
    FaultBackend* faults = nullptr;  // owned by vault
    format::Header header;
    crypto::SecretBytes master;

    explicit VaultEnv(uint8_t format_version = format::kFormatVersion) {
        crypto::init();
        store::CreateOptions o;
        o.pw_params = crypto::insecure_test_params();
        o.format_version = format_version;
        auto pw = crypto::SecretBytes::from(as_bytes("test password"));
        auto rk = store::Vault::create(vault_dir.str(), pw, o);
        REQUIRE_MESSAGE(rk.ok(), (rk.ok() ? "" : rk.error().message()));
        auto dir = store::VaultDir::open(vault_dir.str());
        REQUIRE(dir.ok());
        auto backend = std::make_unique<FaultBackend>(std::move(dir).value());
        faults = backend.get();
        auto v = store::Vault::open(std::move(backend));
        REQUIRE(v.ok());
        vault = std::move(v).value();
        store::Credentials c;
        c.password = pw.clone();
        auto u = vault->unlock(c);
        REQUIRE_MESSAGE(u.ok(), (u.ok() ? "" : u.error().message()));
        header = u->header;
        master = std::move(u->master);
    }

    // A Filesystem (a Core) on this vault with its local state in `state_dir`.
    std::unique_ptr<vfs::Filesystem> open_fs(const std::string& state_dir, bool read_only = false) {
        vfs::Options opts;
        opts.state_dir = state_dir;
        opts.read_only = read_only;
        auto fs = vfs::Filesystem::open(*vault, header, master.clone(), opts);
        REQUIRE_MESSAGE(fs.ok(), (fs.ok() ? "" : fs.error().message()));
        return std::move(fs).value();
    }
};

// One device: a vault plus one Core with its own local state.
struct CoreFixture : VaultEnv {
    TempDir state_dir;
    std::unique_ptr<vfs::Filesystem> fs;
    vfs::Ctx ctx{1000, 1000, 022};

    explicit CoreFixture(uint8_t format_version = format::kFormatVersion) : VaultEnv(format_version) {
        fs = open_fs(state_dir.str());
    }
    // This device's id, and its operations not published yet.
    Id128 device() { return fs->replica().publish_keys().device; }
    uint64_t pending_ops() {
        auto s = fs->replica().status();
        REQUIRE(s.ok());
        return s->pending_ops;
    }

    vfs::Ino mkdir(vfs::Ino parent, std::string_view name, uint32_t mode = 0755) {
        auto a = fs->mkdir(parent, name, mode, ctx);
        REQUIRE_MESSAGE(a.ok(), (a.ok() ? "" : a.error().message()));
        return a->ino;
    }
    // Creates a file with `content`, released again.
    vfs::Ino mkfile(vfs::Ino parent, std::string_view name, std::string_view content = {}, uint32_t mode = 0644) {
        auto c = fs->create(parent, name, mode, O_RDWR, ctx);
        REQUIRE_MESSAGE(c.ok(), (c.ok() ? "" : c.error().message()));
        if (!content.empty()) {
            auto w = fs->write(c->attr.ino, c->fh, 0, as_bytes(content));
            REQUIRE(w.ok());
            REQUIRE(*w == content.size());
        }
        REQUIRE(fs->release(c->attr.ino, c->fh).ok());
        return c->attr.ino;
    }
    void write_at(vfs::Ino ino, uint64_t off, ByteSpan data) {
        auto fh = fs->open(ino, O_RDWR);
        REQUIRE(fh.ok());
        auto w = fs->write(ino, *fh, off, data);
        REQUIRE_MESSAGE(w.ok(), (w.ok() ? "" : w.error().message()));
        REQUIRE(*w == data.size());
        REQUIRE(fs->release(ino, *fh).ok());
    }
    Bytes read_at(vfs::Ino ino, uint64_t off, size_t len) {
        Bytes out(len);
        auto r = fs->read(ino, 0, off, len, out.data());
        REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message()));
        out.resize(*r);
        return out;
    }
    std::string read_str(vfs::Ino ino) {
        auto a = fs->getattr(ino);
        REQUIRE(a.ok());
        Bytes b = read_at(ino, 0, a->size);
        return std::string(b.begin(), b.end());
    }
    vfs::Ino ino_of(vfs::Ino parent, std::string_view name) {
        auto a = fs->lookup(parent, name);
        REQUIRE_MESSAGE(a.ok(), (a.ok() ? "" : a.error().message()));
        return a->ino;
    }
    vfs::Attr attr(vfs::Ino ino) {
        auto a = fs->getattr(ino);
        REQUIRE(a.ok());
        return *a;
    }
    void truncate(vfs::Ino ino, uint64_t size) {
        vfs::SetAttrReq r;
        r.size = size;
        auto a = fs->setattr(ino, r, ctx);
        REQUIRE_MESSAGE(a.ok(), (a.ok() ? "" : a.error().message()));
    }
    sync::PublishStats publish() {
        auto p = sync::publish(fs->replica());
        REQUIRE_MESSAGE(p.ok(), (p.ok() ? "" : p.error().message()));
        return *p;
    }
};

// Every entry of a directory (without "." and ".."), read in one pass.
inline std::vector<vfs::DirEntry> list_dir(vfs::Filesystem& fs, vfs::Ino dir) {
    std::vector<vfs::DirEntry> out;
    auto fh = fs.opendir(dir);
    REQUIRE(fh.ok());
    auto st = fs.readdir(dir, *fh, 0, false, [&](const vfs::DirEntry& e, const vfs::Attr*, uint64_t) {
        if (e.name != "." && e.name != "..") out.push_back(e);
        return true;
    });
    REQUIRE(st.ok());
    REQUIRE(fs.releasedir(dir, *fh).ok());
    return out;
}

// What a person sees of one path: enough to compare two devices' trees.
struct NodeView {
    uint32_t mode = 0;
    uint32_t uid = 0, gid = 0;
    uint64_t size = 0;
    uint32_t nlink = 0;
    uint64_t rdev = 0;
    std::string target;                    // symlinks
    std::map<std::string, Bytes> xattrs;
    Bytes content;                         // regular files
    int64_t mtime_ns = 0;                  // regular files and symlinks only
    std::vector<std::string> links;        // every path of this node (hard links), sorted
    friend bool operator==(const NodeView&, const NodeView&) = default;
};

inline std::string describe(const NodeView& v) {
    std::string s = "mode=" + std::to_string(v.mode) + " uid=" + std::to_string(v.uid) +
                    " gid=" + std::to_string(v.gid) + " size=" + std::to_string(v.size) +
                    " nlink=" + std::to_string(v.nlink) + " target=" + v.target + " xattrs=" +
                    std::to_string(v.xattrs.size()) + " content=" + std::to_string(v.content.size()) + " links=";
    for (auto& l : v.links) s += l + ",";
    return s;
}

// Walks the whole tree with lookup/readdir/getattr/readlink/read/listxattr.
inline std::map<std::string, NodeView> snapshot_tree(vfs::Filesystem& fs) {
    std::map<std::string, NodeView> out;
    std::map<vfs::Ino, std::vector<std::string>> paths_of;
    std::vector<std::pair<vfs::Ino, std::string>> todo{{vfs::kRootIno, ""}};
    while (!todo.empty()) {
        auto [dir, prefix] = todo.back();
        todo.pop_back();
        for (const auto& e : list_dir(fs, dir)) {
            std::string path = prefix + "/" + e.name;
            auto a = fs.lookup(dir, e.name);
            REQUIRE_MESSAGE(a.ok(), path);
            CHECK(a->ino == e.ino);
            CHECK((a->mode & S_IFMT) == e.mode);
            NodeView v;
            v.mode = a->mode;
            v.uid = a->uid;
            v.gid = a->gid;
            v.size = a->size;
            v.nlink = a->nlink;
            v.rdev = a->rdev;
            if (S_ISLNK(a->mode)) {
                auto t = fs.readlink(a->ino);
                REQUIRE(t.ok());
                v.target = *t;
            }
            if (S_ISREG(a->mode) || S_ISLNK(a->mode))
                v.mtime_ns = int64_t(a->mtime.tv_sec) * 1000000000 + a->mtime.tv_nsec;
            auto xl = fs.listxattr(a->ino);
            REQUIRE(xl.ok());
            for (const auto& xn : *xl) {
                auto xv = fs.getxattr(a->ino, xn);
                REQUIRE(xv.ok());
                v.xattrs[xn] = *xv;
            }
            if (S_ISREG(a->mode)) {
                // Whole files up to 64 MiB; of bigger (sparse) ones, 1 MiB
                // windows at the start, the end and 16 places in between.
                constexpr uint64_t kWhole = 64 << 20, kWindow = 1 << 20;
                std::vector<uint64_t> starts;
                if (a->size <= kWhole) {
                    starts.push_back(0);
                } else {
                    for (uint64_t i = 0; i <= 16; ++i) starts.push_back((a->size - kWindow) / 16 * i);
                }
                for (uint64_t start : starts) {
                    uint64_t len = a->size <= kWhole ? a->size : kWindow;
                    Bytes part(len);
                    auto r = fs.read(a->ino, 0, start, len, part.data());
                    REQUIRE_MESSAGE(r.ok(), path << ": " << (r.ok() ? "" : r.error().message()));
                    CHECK(*r == len);
                    v.content.insert(v.content.end(), part.begin(), part.end());
                }
            }
            fs.forget(a->ino, 1);
            paths_of[a->ino].push_back(path);
            out[path] = std::move(v);
            if (S_ISDIR(a->mode)) todo.push_back({a->ino, path});
        }
    }
    for (auto& [ino, paths] : paths_of) {
        std::sort(paths.begin(), paths.end());
        for (const auto& p : paths) out[p].links = paths;
    }
    return out;
}

// CHECKs that two trees are the same, naming the first differences.
inline void check_same_tree(const std::map<std::string, NodeView>& a, const std::map<std::string, NodeView>& b) {
    std::set<std::string> names;
    for (auto& [k, v] : a) names.insert(k);
    for (auto& [k, v] : b) names.insert(k);
    int reported = 0;
    for (const auto& n : names) {
        auto ia = a.find(n), ib = b.find(n);
        if (ia == a.end() || ib == b.end()) {
            CHECK_MESSAGE(false, "only on one device: " << n);
        } else if (!(ia->second == ib->second)) {
            CHECK_MESSAGE(false, n << ": " << describe(ia->second) << " vs " << describe(ib->second));
        } else {
            continue;
        }
        if (++reported > 10) break;
    }
    CHECK(a.size() == b.size());
}

}  // namespace coffer::testing
