// fsck: rebuild the tree from the vault into a scratch local state, then
// read every block of every file, naming what is tampered or missing.
#include <stdlib.h>

#include <algorithm>
#include <filesystem>
#include <set>

#include "coffer/format/object.h"
#include "coffer/store/vault.h"
#include "coffer/sync/sync.h"
#include "coffer/util/log.h"
#include "coffer/vfs/core.h"

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

Result<FsckReport> fsck(store::Vault& vault, const format::Header& header, const crypto::SecretBytes& master) {
    FsckReport report;
    ScratchDir scratch;
    if (scratch.path.empty()) return sys_error(errno, "cannot create a scratch folder for fsck");
    vfs::Options opts;
    opts.state_dir = scratch.path;
    opts.read_only = true;
    vfs::Core core(vault, header, master.clone(), opts);
    auto started = core.start();
    if (!started.ok()) {
        const Error& e = started.error();
        if (e.code == Code::pending) {
            report.pending.push_back(e.message());
            return report;
        }
        if (e.code == Code::corrupt || e.code == Code::unsupported) {
            report.tampered.push_back(e.message());
            return report;
        }
        return std::move(started).error();
    }
    for (const auto& gap : core.journal_gaps())
        report.pending.push_back(gap + ": not arrived yet (later segments of that device have); the files it "
                                       "changes are checked as they were before it");
    // Segments: the journal folders, all applied by start() (up to a gap).
    COFFER_ASSIGN(auto devices, vault.backend().list("journal"));
    for (const auto& d : devices) {
        COFFER_ASSIGN(auto segs, vault.backend().list("journal/" + d));
        report.segments += segs.size();
    }
    COFFER_ASSIGN(auto files, core.regular_files());
    std::vector<uint8_t> buf(1 << 20);
    for (vfs::Ino ino : files) {
        report.files += 1;
        COFFER_ASSIGN(vfs::Attr a, core.getattr(ino));
        for (uint64_t off = 0; off < a.size;) {
            auto n = core.read(ino, 0, off, buf.size(), buf.data());
            if (!n.ok()) {
                const Error& e = n.error();
                std::string where = core.describe(ino) + " (offset " + std::to_string(off) + ")";
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
    COFFER_ASSIGN(auto referenced, core.referenced_objects());
    report.chunks = referenced.size();
    std::set<std::string> ref;
    for (const auto& id : referenced) ref.insert(id.hex());
    COFFER_ASSIGN(auto prefixes, vault.backend().list("objects"));
    for (const auto& p : prefixes) {
        COFFER_ASSIGN(auto names, vault.backend().list("objects/" + p));
        for (const auto& n : names) {
            report.objects += 1;
            if (!ref.count(n)) report.orphans += 1;
        }
    }
    return report;
}

}  // namespace coffer::sync
