// fsck: rebuild the tree from the vault into a scratch local state (a
// read-only filesystem opened on a temporary folder), then read every block
// of every file, naming what is tampered or missing by its path.
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "coffer/format/object.h"
#include "coffer/store/vault.h"
#include "coffer/sync/sync.h"
#include "coffer/util/log.h"
#include "coffer/vfs/filesystem.h"
#include "coffer/vfs/replica.h"

namespace coffer::sync {


namespace {
struct ScratchDir {
    std::string path;
    ScratchDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "coffer-fsck-XXXXXX").string();
        if (::mkdtemp(tmpl.data())) path = tmpl;
    }
    ~ScratchDir() {
        std::error_code ec;
        if (!path.empty()) std::filesystem::remove_all(path, ec);
    }
};
}  // namespace

namespace {
// Every regular file of the tree, with its path, found by walking it from
// the root (a file with several links once, a folder once). A folder that
// cannot be listed is reported and skipped; files the walk does not reach
// are added by inode number, so none goes unread.
Status regular_files(vfs::Filesystem& fs, FsckReport& report, std::vector<std::pair<vfs::Ino, std::string>>& out) {
    std::set<vfs::Ino> seen, dirs_seen{vfs::kRootIno};
    std::vector<std::pair<vfs::Ino, std::string>> dirs{{vfs::kRootIno, ""}};
    while (!dirs.empty()) {
        const vfs::Ino dir = dirs.back().first;
        const std::string path = std::move(dirs.back().second);
        dirs.pop_back();
        auto fh = fs.opendir(dir);
        if (!fh.ok()) {
            report.tampered.push_back((path.empty() ? "/" : path) + ": " + fh.error().message());
            continue;
        }
        Status walked = fs.readdir(dir, *fh, 0, false, [&](const vfs::DirEntry& e, const vfs::Attr*, uint64_t) {
            if (e.name == "." || e.name == "..") return true;
            std::string p = path.empty() ? e.name : path + "/" + e.name;
            if (S_ISDIR(e.mode)) {
                if (dirs_seen.insert(e.ino).second) dirs.emplace_back(e.ino, std::move(p));
            } else if (S_ISREG(e.mode) && seen.insert(e.ino).second) {
                out.emplace_back(e.ino, std::move(p));
            }
            return true;
        });
        (void)fs.releasedir(dir, *fh);
        if (!walked.ok()) report.tampered.push_back((path.empty() ? "/" : path) + ": " + walked.error().message());
    }
    COFFER_ASSIGN(auto all, fs.replica().regular_files());
    for (vfs::Ino ino : all)
        if (seen.insert(ino).second) out.emplace_back(ino, "(file with no path, inode " + std::to_string(ino) + ")");
    return {};
}
}  // namespace

Result<FsckReport> fsck(store::Vault& vault, const format::Header& header, const crypto::SecretBytes& master) {
    FsckReport report;
    ScratchDir scratch;
    if (scratch.path.empty()) return sys_error(errno, "cannot create a scratch folder for fsck");
    vfs::Options opts;
    opts.state_dir = scratch.path;
    opts.read_only = true;
    auto opened = vfs::Filesystem::open(vault, header, master.clone(), opts);
    if (!opened.ok()) {
        const Error& e = opened.error();
        if (e.code == Code::pending) {
            report.pending.push_back(e.message());
            return report;
        }
        if (e.code == Code::corrupt || e.code == Code::unsupported) {
            report.tampered.push_back(e.message());
            return report;
        }
        return std::move(opened).error();
    }
    vfs::Filesystem& fs = **opened;
    vfs::Replica& replica = fs.replica();
    for (const auto& gap : replica.journal_gaps())
        report.pending.push_back(gap + ": not arrived yet (later segments of that device have); the files it "
                                       "changes are checked as they were before it");
    // Segments: the journal folders, all applied by the open (up to a gap).
    // Only names coffer writes count; the rest (a sync client's temporary
    // files, conflict copies, desktop.ini, …) are listed as foreign.
    COFFER_ASSIGN(auto devices, vault.backend().list("journal"));
    for (const auto& d : devices) {
        if (!is_lower_hex(d, 32)) {
            report.foreign.push_back("journal/" + d);
            continue;
        }
        auto segs = vault.backend().list("journal/" + d);
        if (!segs.ok()) {
            report.foreign.push_back("journal/" + d);
            continue;
        }
        for (const auto& n : *segs) {
            if (is_lower_hex(n, 16)) report.segments += 1;
            else report.foreign.push_back("journal/" + d + "/" + n);
        }
    }
    std::vector<std::pair<vfs::Ino, std::string>> files;
    COFFER_TRY(regular_files(fs, report, files));
    std::vector<uint8_t> buf(1 << 20);
    for (const auto& [ino, path] : files) {
        report.files += 1;
        COFFER_ASSIGN(vfs::Attr a, fs.getattr(ino));
        for (uint64_t off = 0; off < a.size;) {
            auto n = fs.read(ino, 0, off, buf.size(), buf.data());
            if (!n.ok()) {
                const Error& e = n.error();
                std::string where = path + " (offset " + std::to_string(off) + ")";
                if (e.code == Code::pending)
                    report.pending.push_back(where + ": " + e.message());
                else
                    report.tampered.push_back(where + ": " + e.message());
                break;
            }
            if (*n == 0) break;
            off += *n;
        }
    }
    // Objects: referenced ones were opened above; the others are orphans
    // (left by an interrupted publish, removed by garbage collection later).
    COFFER_ASSIGN(auto referenced, replica.referenced_objects());
    report.chunks = referenced.size();
    std::set<std::string> ref;
    for (const auto& id : referenced) ref.insert(id.hex());
    COFFER_ASSIGN(auto prefixes, vault.backend().list("objects"));
    for (const auto& p : prefixes) {
        auto names = is_lower_hex(p, 2) ? vault.backend().list("objects/" + p) : Result<std::vector<std::string>>(
                                                                              make_error(Code::invalid, "foreign"));
        if (!names.ok()) {
            report.foreign.push_back("objects/" + p);
            continue;
        }
        for (const auto& n : *names) {
            if (!is_lower_hex(n, 32) || n.compare(0, 2, p) != 0) {
                report.foreign.push_back("objects/" + p + "/" + n);
                continue;
            }
            report.objects += 1;
            if (!ref.count(n)) report.orphans += 1;
        }
    }
    return report;
}

}  // namespace coffer::sync
