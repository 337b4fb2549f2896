// Helpers of the tamper matrix (test_tamper_matrix.cpp): copies of a vault,
// byte mutations that never write through a hard link, a model of the tree
// a device must show, and the check of what a device (or fsck) really shows.
#pragma once

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "coffer/sync/sync.h"
#include "coffer/vfs/filesystem.h"
#include "../test_support.h"

namespace coffer::tamper {

namespace fs = std::filesystem;

// ---------------------------------------------------------------- scratch space
// The matrix opens about a thousand devices, each an SQLite index with
// synchronous=FULL: on a disk the fsyncs dominate its run time. Durability
// plays no part in what it checks, so it works on a tmpfs (/dev/shm) when
// there is one with room, else in the usual temp folder.
inline fs::path scratch_base() {
    static const fs::path base = [] {
        struct statvfs sv{};
        if (::statvfs("/dev/shm", &sv) == 0 && ::access("/dev/shm", W_OK) == 0 &&
            uint64_t(sv.f_bavail) * sv.f_frsize > (uint64_t(256) << 20))
            return fs::path("/dev/shm");
        return fs::temp_directory_path();
    }();
    return base;
}

// A fresh folder under scratch_base(), removed at the end of the scope.
struct ScratchDir {
    fs::path path;
    ScratchDir() {
        std::string tmpl = (scratch_base() / "coffer-tamper-XXXXXX").string();
        REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
        path = tmpl;
    }
    ~ScratchDir() {
        std::error_code ec;
        fs::remove_all(path, ec);
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;
};

// sync::fsck makes its scratch local state under TMPDIR: point it at the
// scratch base for the scope (tests run one at a time; restored after).
class TmpdirScope {
public:
    TmpdirScope() {
        const char* old = ::getenv("TMPDIR");
        had_ = old != nullptr;
        if (had_) old_ = old;
        ::setenv("TMPDIR", scratch_base().c_str(), 1);
    }
    ~TmpdirScope() {
        if (had_)
            ::setenv("TMPDIR", old_.c_str(), 1);
        else
            ::unsetenv("TMPDIR");
    }

private:
    bool had_ = false;
    std::string old_;
};

// Codes as the matrix prints them (the enum's own names).
inline const char* short_code(Code c) {
    switch (c) {
        case Code::not_found: return "not_found";
        case Code::exists: return "exists";
        case Code::not_dir: return "not_dir";
        case Code::is_dir: return "is_dir";
        case Code::not_empty: return "not_empty";
        case Code::invalid: return "invalid";
        case Code::name_too_long: return "name_too_long";
        case Code::permission: return "permission";
        case Code::no_space: return "no_space";
        case Code::too_big: return "too_big";
        case Code::no_data: return "no_data";
        case Code::busy: return "busy";
        case Code::io: return "io";
        case Code::corrupt: return "corrupt";
        case Code::pending: return "pending";
        case Code::wrong_key: return "wrong_key";
        case Code::unsupported: return "unsupported";
        case Code::rolled_back: return "rolled_back";
        case Code::usage: return "usage";
        case Code::internal: return "internal";
    }
    return "?";
}

// ---------------------------------------------------------------- vault files
inline Bytes slurp(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    REQUIRE_MESSAGE(in.good(), "cannot read " << p.string());
    return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Writes `b` as a NEW file at `p` (a hard link at `p` is removed first, so
// the reference vault it points into is never changed).
inline void spit(const fs::path& p, ByteSpan b) {
    std::error_code ec;
    fs::remove(p, ec);
    fs::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
    REQUIRE_MESSAGE(out.good(), "cannot write " << p.string());
}

// Relative paths of every regular file under `dir`, sorted.
inline std::vector<std::string> files_under(const fs::path& dir) {
    std::vector<std::string> out;
    if (!fs::exists(dir)) return out;
    for (auto& e : fs::recursive_directory_iterator(dir))
        if (e.is_regular_file()) out.push_back(fs::relative(e.path(), dir).string());
    std::sort(out.begin(), out.end());
    return out;
}

// A copy of `src` made of hard links (cheap; mutations go through spit()).
inline void link_tree(const fs::path& src, const fs::path& dst) {
    fs::create_directories(dst);
    for (auto& e : fs::recursive_directory_iterator(src)) {
        fs::path to = dst / fs::relative(e.path(), src);
        if (e.is_directory())
            fs::create_directories(to);
        else
            fs::create_hard_link(e.path(), to);
    }
}

inline void copy_tree(const fs::path& src, const fs::path& dst) {
    fs::copy(src, dst, fs::copy_options::recursive | fs::copy_options::copy_symlinks);
}

inline uint64_t fnv64(ByteSpan b) {
    uint64_t h = 1469598103934665603ull;
    for (uint8_t c : b) h = (h ^ c) * 1099511628211ull;
    return h;
}

// Deterministic pseudo-random bytes (no trailing zeros: publish does not
// store those, which would change the layout the matrix expects).
inline Bytes pattern(size_t n, uint64_t seed) {
    Bytes b(n);
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < n; ++i) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        b[i] = static_cast<uint8_t>(x >> 24);
    }
    if (n) b[n - 1] = 0x5a;
    return b;
}

// ---------------------------------------------------------------- stderr capture
// coffer logs to stderr; the matrix keeps each case's log to check what it
// says ("pending" vs "tampered") and to keep the test output readable.
class StderrCapture {
public:
    explicit StderrCapture(const fs::path& file) : file_(file) {
        std::fflush(stderr);
        saved_ = ::dup(STDERR_FILENO);
        int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd >= 0) {
            ::dup2(fd, STDERR_FILENO);
            ::close(fd);
        }
    }
    std::string finish() {
        restore();
        Bytes b = slurp(file_);
        return std::string(b.begin(), b.end());
    }
    ~StderrCapture() { restore(); }

private:
    void restore() {
        if (saved_ < 0) return;
        std::fflush(stderr);
        ::dup2(saved_, STDERR_FILENO);
        ::close(saved_);
        saved_ = -1;
    }
    fs::path file_;
    int saved_ = -1;
};

// ---------------------------------------------------------------- expected tree
struct Entry {
    char type = 'f';  // 'd' directory, 'f' regular file, 'l' symlink
    uint32_t perm = 0;
    Bytes content;       // files
    std::string target;  // symlinks
    std::map<std::string, Bytes> xattrs;
};
// "docs/a.txt" -> entry; the root is not listed.
using Tree = std::map<std::string, Entry>;

// What one device showed, compared with the expected tree.
struct DevReport {
    bool ran = false, opened = false;
    Code open_code = Code::internal;
    std::string open_msg;
    int files_ok = 0;
    std::map<std::string, Code> failed;  // file -> code of the whole-file read
    std::vector<std::string> wrong;      // bytes or metadata that differ from the truth: never acceptable
    std::vector<std::string> unexpected; // a file that failed (or read) against the expectation
    std::string summary() const {
        if (!ran) return "-";
        if (!opened) return std::string("refused ") + short_code(open_code);
        std::map<Code, int> by;
        for (auto& [p, c] : failed) by[c]++;
        std::string s = "opens, " + std::to_string(files_ok) + " ok";
        for (auto& [c, n] : by) s += ", " + std::to_string(n) + " " + short_code(c);
        if (!wrong.empty()) s += ", " + std::to_string(wrong.size()) + " WRONG";
        return s;
    }
};

inline std::string join(const std::vector<std::string>& v, const char* sep = "; ") {
    std::string s;
    for (const auto& x : v) s += (s.empty() ? "" : sep) + x;
    return s;
}

// Reads one file the way a user would and compares with `want`. A failed
// whole-file read is then re-read block by block: every part that does read
// must hold exactly the expected bytes.
inline void check_file(vfs::Filesystem& fs, vfs::Ino ino, const std::string& path, const Bytes& want,
                       const std::map<std::string, Code>& affected, DevReport& rep) {
    Bytes got(want.size() + 1);
    auto r = fs.read(ino, 0, 0, got.size(), got.data());
    auto it = affected.find(path);
    if (r.ok()) {
        got.resize(*r);
        if (got != want) {
            rep.wrong.push_back(path + ": read returned " + std::to_string(got.size()) + " bytes that differ");
            return;
        }
        if (it != affected.end())
            rep.unexpected.push_back(path + ": read fine, expected " + short_code(it->second));
        else
            rep.files_ok++;
        return;
    }
    Code c = r.error().code;
    rep.failed[path] = c;
    if (it == affected.end())
        rep.unexpected.push_back(path + ": untouched but fails: " + r.error().message());
    else if (c != it->second)
        rep.unexpected.push_back(path + ": fails with " + short_code(c) + " (" + r.error().message() + "), expected " +
                                 short_code(it->second));
    constexpr size_t kPiece = 16384;
    for (size_t off = 0; off < want.size(); off += kPiece) {
        size_t n = std::min(kPiece, want.size() - off);
        Bytes part(n);
        auto pr = fs.read(ino, 0, off, n, part.data());
        if (!pr.ok()) continue;
        part.resize(*pr);
        if (!std::equal(part.begin(), part.end(), want.begin() + static_cast<long>(off)) || *pr != n) {
            rep.wrong.push_back(path + ": bytes at offset " + std::to_string(off) + " differ");
            return;
        }
    }
}

// Walks the whole tree of an opened device: every entry, type, permission,
// symlink target, xattr and file content against `want`.
inline void check_tree(vfs::Filesystem& fs, const Tree& want, const std::map<std::string, Code>& affected,
                       DevReport& rep) {
    std::set<std::string> seen;
    std::vector<std::pair<vfs::Ino, std::string>> todo{{vfs::kRootIno, ""}};
    while (!todo.empty()) {
        auto [dir, prefix] = todo.back();
        todo.pop_back();
        std::vector<std::string> names;
        auto fh = fs.opendir(dir);
        if (!fh.ok()) {
            rep.wrong.push_back("opendir " + prefix + ": " + fh.error().message());
            continue;
        }
        auto st = fs.readdir(dir, *fh, 0, false, [&](const vfs::DirEntry& e, const vfs::Attr*, uint64_t) {
            if (e.name != "." && e.name != "..") names.push_back(e.name);
            return true;
        });
        (void)fs.releasedir(dir, *fh);
        if (!st.ok()) {
            rep.wrong.push_back("readdir " + prefix + ": " + st.error().message());
            continue;
        }
        for (const auto& name : names) {
            std::string path = prefix.empty() ? name : prefix + "/" + name;
            seen.insert(path);
            auto w = want.find(path);
            if (w == want.end()) {
                rep.wrong.push_back(path + ": shown but not in the expected tree");
                continue;
            }
            const Entry& e = w->second;
            auto a = fs.lookup(dir, name);
            if (!a.ok()) {
                rep.wrong.push_back(path + ": lookup: " + a.error().message());
                continue;
            }
            char type = S_ISDIR(a->mode) ? 'd' : S_ISREG(a->mode) ? 'f' : S_ISLNK(a->mode) ? 'l' : '?';
            if (type != e.type) rep.wrong.push_back(path + ": type " + type + ", expected " + e.type);
            if (type != 'l' && (a->mode & 07777) != e.perm)
                rep.wrong.push_back(path + ": mode " + std::to_string(a->mode & 07777));
            if (type == 'l') {
                auto t = fs.readlink(a->ino);
                if (!t.ok() || *t != e.target) rep.wrong.push_back(path + ": symlink target differs");
            }
            auto xl = fs.listxattr(a->ino);
            std::map<std::string, Bytes> xs;
            if (xl.ok()) {
                for (const auto& xn : *xl) {
                    auto xv = fs.getxattr(a->ino, xn);
                    if (xv.ok()) xs[xn] = *xv;
                }
            }
            if (xs != e.xattrs) rep.wrong.push_back(path + ": xattrs differ");
            if (type == 'f') {
                if (a->size != e.content.size())
                    rep.wrong.push_back(path + ": size " + std::to_string(a->size) + ", expected " +
                                        std::to_string(e.content.size()));
                else
                    check_file(fs, a->ino, path, e.content, affected, rep);
            }
            if (type == 'd') todo.push_back({a->ino, path});
            fs.forget(a->ino, 1);
        }
    }
    for (const auto& [path, e] : want)
        if (!seen.count(path)) rep.wrong.push_back(path + ": missing from the tree");
}

// ---------------------------------------------------------------- fsck
inline std::string fsck_summary(const Result<sync::FsckReport>& r) {
    if (!r.ok()) return std::string("error ") + short_code(r.error().code);
    if (r->clean()) return "clean";
    std::string s;
    if (!r->tampered.empty()) s += std::to_string(r->tampered.size()) + " tampered";
    if (!r->pending.empty()) s += std::string(s.empty() ? "" : ", ") + std::to_string(r->pending.size()) + " pending";
    return s;
}

inline bool mentions(const std::vector<std::string>& lines, const std::string& what) {
    return std::any_of(lines.begin(), lines.end(), [&](const std::string& l) { return l.find(what) != std::string::npos; });
}

}  // namespace coffer::tamper
