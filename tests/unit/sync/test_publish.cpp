// publish, status and fsck: idempotence, counters, and what fsck and reads
// say when the cloud tampers with or withholds an object.
#include <doctest/doctest.h>

#include <fcntl.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <set>

#include "coffer/format/object.h"
#include "coffer/format/segment.h"
#include "coffer/index/index.h"
#include "coffer/store/memory_backend.h"
#include "../vfs/core_fixture.h"

using namespace coffer;
using namespace coffer::testing;
using vfs::Ino;
using vfs::kRootIno;
namespace fs = std::filesystem;

namespace {
constexpr uint64_t MiB = 1 << 20;
constexpr uint64_t kAnyObject = uint64_t{1} << 30;  // the cap of a whole-file read, above any object here

std::set<std::string> files_under(const fs::path& dir) {
    std::set<std::string> out;
    if (!fs::exists(dir)) return out;
    for (auto& e : fs::recursive_directory_iterator(dir))
        if (e.is_regular_file()) out.insert(fs::relative(e.path(), dir).string());
    return out;
}

Bytes big_content(size_t n, uint8_t seed) {
    Bytes b(n);
    for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 7 + (i >> 12));
    return b;
}

sync::FsckReport run_fsck(VaultEnv& env) {
    auto r = sync::fsck(*env.vault, env.header, env.master);
    REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message()));
    return *r;
}

// Runs fn on the device's index, read with its core closed (one connection
// holds the index at a time), then opens the core again.
template <class Fn>
void with_core_closed(CoreFixture& f, Fn fn) {
    f.fs.reset();
    {
        auto ix = index::Index::open(f.state_dir.str() + "/index.db");
        REQUIRE_MESSAGE(ix.ok(), (ix.ok() ? "" : ix.error().message()));
        fn(**ix);
    }
    f.fs = f.open_fs(f.state_dir.str());
}

// The pending operations as the device recorded them, in order (opened with
// the local key).
std::vector<format::Op> recorded_ops(CoreFixture& f) {
    auto key = crypto::derive(f.master, crypto::Subkey::local_state);
    std::vector<format::Op> out;
    bool all_ok = true;
    with_core_closed(f, [&](index::Index& ix) {
        REQUIRE(ix.pending_ops(INT64_MAX, [&](int64_t, ByteSpan sealed) {
            auto plain = crypto::open(key, sealed, as_bytes("CFPO"));
            auto op = plain.ok() ? format::decode_op(*plain) : Result<format::Op>(plain.error());
            if (!op.ok()) all_ok = false;
            else out.push_back(std::move(*op));
        }).ok());
    });
    REQUIRE(all_ok);
    return out;
}

// This device's segment `seq`, as published.
format::Segment published_segment(CoreFixture& f, uint64_t seq) {
    auto bytes = f.vault->backend().read(format::segment_path(f.device(), seq), store::kMaxSegmentFile);
    REQUIRE_MESSAGE(bytes.ok(), (bytes.ok() ? "" : bytes.error().message()));
    auto seg = format::decode_segment(crypto::derive(f.master, crypto::Subkey::journal), *bytes);
    REQUIRE_MESSAGE(seg.ok(), (seg.ok() ? "" : seg.error().message()));
    return *seg;
}

const format::OpCreate* create_named(const format::Op& op, std::string_view name) {
    auto* c = std::get_if<format::OpCreate>(&op.body);
    return c && c->name == name ? c : nullptr;
}

std::string joined(const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v) s += x + "\n";
    return s;
}
}  // namespace

TEST_CASE("publish: nothing to do writes nothing; a second publish is a no-op") {
    CoreFixture f;
    auto before = files_under(f.vault_dir.path);
    auto p0 = f.publish();
    CHECK(p0.ops == 0);
    CHECK(p0.objects == 0);
    CHECK(p0.bytes == 0);
    CHECK(files_under(f.vault_dir.path) == before);

    f.mkdir(kRootIno, "d");
    Ino file = f.mkfile(kRootIno, "f", "hello");
    auto p1 = f.publish();
    CHECK(p1.ops >= 3);  // create d, create f, content of f
    CHECK(p1.segment_seq == 1);
    CHECK(p1.objects == 1);  // one pack for the small file
    auto after1 = files_under(f.vault_dir.path);
    CHECK(after1.size() == before.size() + 2);

    auto p2 = f.publish();
    CHECK(p2.ops == 0);
    CHECK(p2.objects == 0);
    CHECK(files_under(f.vault_dir.path) == after1);

    // Metadata only: a segment, no object.
    REQUIRE(f.fs->setxattr(file, "user.x", as_bytes("1"), 0).ok());
    auto p3 = f.publish();
    CHECK(p3.ops == 1);
    CHECK(p3.objects == 0);
    CHECK(p3.segment_seq == 2);
    CHECK(files_under(f.vault_dir.path).size() == after1.size() + 1);
    CHECK(f.publish().ops == 0);
    // Reading does not make anything to publish.
    CHECK(f.read_str(file) == "hello");
    CHECK(f.publish().ops == 0);
}

TEST_CASE("publish: status counters follow operations and publishes") {
    CoreFixture f;
    auto s0 = sync::status(f.fs->replica());
    REQUIRE(s0.ok());
    CHECK(s0->pending_ops == 0);
    CHECK(s0->staged_bytes == 0);
    CHECK(s0->last_seq == 0);
    CHECK(s0->device.size() == 32);
    CHECK(s0->device == f.device().hex());

    Ino a = f.mkfile(kRootIno, "a", std::string(1000, 'a'));
    f.mkdir(kRootIno, "d");
    f.write_at(a, 5000, Bytes(300, 'b'));
    auto s1 = sync::status(f.fs->replica());
    REQUIRE(s1.ok());
    CHECK(s1->pending_ops == 2);  // two creates (writes are content, not ops)
    CHECK(s1->staged_bytes == 1300);
    f.write_at(a, 0, Bytes(500, 'c'));  // overwrites: staged bytes count what is current
    CHECK(sync::status(f.fs->replica())->staged_bytes == 1300);

    f.publish();
    auto s2 = sync::status(f.fs->replica());
    REQUIRE(s2.ok());
    CHECK(s2->pending_ops == 0);
    CHECK(s2->staged_bytes == 0);
    CHECK(s2->last_seq == 1);
    CHECK(s2->device == s0->device);

    REQUIRE(f.fs->rename(kRootIno, "a", kRootIno, "b", 0).ok());
    CHECK(sync::status(f.fs->replica())->pending_ops == 1);
    f.publish();
    CHECK(sync::status(f.fs->replica())->last_seq == 2);
    CHECK(sync::status(f.fs->replica())->pending_ops == 0);

    // A new device has its own id and sequence.
    TempDir state2;
    auto fs2 = f.open_fs(state2.str());
    auto s3 = sync::status(fs2->replica());
    REQUIRE(s3.ok());
    CHECK(s3->device != s0->device);
    CHECK(s3->last_seq == 0);
    CHECK(s3->pending_ops == 0);
}

TEST_CASE("publish: fsck is clean after several publishes") {
    CoreFixture f;
    auto empty = run_fsck(f);
    CHECK(empty.clean());
    CHECK(empty.files == 0);
    CHECK(empty.segments == 0);

    Ino big = f.mkfile(kRootIno, "big");
    f.write_at(big, 0, big_content(6 * MiB, 1));
    f.mkfile(kRootIno, "small", "small file");
    f.publish();
    Ino d = f.mkdir(kRootIno, "d");
    f.mkfile(d, "inner", "inner");
    f.write_at(big, 3 * MiB, Bytes(100, 'x'));
    f.publish();
    f.write_at(big, 0, big_content(5 * MiB, 2));  // the first version's objects become orphans
    f.publish();
    auto r = run_fsck(f);
    CHECK_MESSAGE(r.clean(), joined(r.tampered) << joined(r.pending));
    CHECK(r.segments == 3);
    CHECK(r.files == 3);
    CHECK(r.objects >= 3);
    CHECK(r.chunks >= 2);
    CHECK(r.orphans >= 1);
    CHECK(r.objects == r.chunks + r.orphans);
}

TEST_CASE("publish: a tampered object is reported by fsck and read as corrupt; a missing one as pending") {
    CoreFixture f;
    // Each big file gets an object of its own; publish them one by one to
    // know which object is whose.
    Ino a = f.mkfile(kRootIno, "a.bin");
    Bytes a_bytes = big_content(2 * MiB + 5, 3);
    f.write_at(a, 0, a_bytes);
    auto objects0 = files_under(f.vault_dir.path / "objects");
    f.publish();
    auto objects1 = files_under(f.vault_dir.path / "objects");
    REQUIRE(objects1.size() == objects0.size() + 1);
    std::string a_obj;
    for (const auto& o : objects1)
        if (!objects0.count(o)) a_obj = o;

    Ino d = f.mkdir(kRootIno, "docs");
    Ino b = f.mkfile(d, "b.bin");
    Bytes b_bytes = big_content(3 * MiB, 4);
    f.write_at(b, 0, b_bytes);
    f.publish();
    auto objects2 = files_under(f.vault_dir.path / "objects");
    REQUIRE(objects2.size() == objects1.size() + 1);
    std::string b_obj;
    for (const auto& o : objects2)
        if (!objects1.count(o)) b_obj = o;

    Ino c = f.mkfile(kRootIno, "c.txt", "a small file in a pack");
    f.publish();
    REQUIRE(run_fsck(f).clean());

    // Flip one byte in the middle of a.bin's object (inside a sealed block).
    {
        fs::path p = f.vault_dir.path / "objects" / a_obj;
        auto size = fs::file_size(p);
        std::fstream io(p, std::ios::in | std::ios::out | std::ios::binary);
        io.seekg(static_cast<std::streamoff>(size / 2));
        char ch = 0;
        io.read(&ch, 1);
        ch ^= 0x20;
        io.seekp(static_cast<std::streamoff>(size / 2));
        io.write(&ch, 1);
    }
    auto r1 = run_fsck(f);
    CHECK_FALSE(r1.clean());
    REQUIRE(r1.tampered.size() == 1);
    CHECK(r1.tampered[0].find("a.bin") != std::string::npos);
    CHECK(r1.pending.empty());

    // Reads: this device (objects opened fresh) and a new device.
    auto check_reads = [&](vfs::Filesystem& fs, Code a_code, Code b_code) {
        auto la = fs.lookup(kRootIno, "a.bin");
        REQUIRE(la.ok());
        Bytes buf(a_bytes.size());
        auto ra = fs.read(la->ino, 0, 0, buf.size(), buf.data());
        CHECK(code_of(ra) == a_code);
        // Blocks before the tampered one still read fine.
        auto head = fs.read(la->ino, 0, 0, 4096, buf.data());
        REQUIRE(head.ok());
        CHECK(std::equal(buf.begin(), buf.begin() + 4096, a_bytes.begin()));
        auto ld = fs.lookup(kRootIno, "docs");
        REQUIRE(ld.ok());
        auto lb = fs.lookup(ld->ino, "b.bin");
        REQUIRE(lb.ok());
        Bytes bb(b_bytes.size());
        auto rb = fs.read(lb->ino, 0, 0, bb.size(), bb.data());
        CHECK(code_of(rb) == b_code);
        if (rb.ok()) CHECK(bb == b_bytes);
        auto lc = fs.lookup(kRootIno, "c.txt");
        REQUIRE(lc.ok());
        Bytes cb(100);
        auto rc = fs.read(lc->ino, 0, 0, cb.size(), cb.data());
        REQUIRE(rc.ok());
        CHECK(std::string(cb.begin(), cb.begin() + *rc) == "a small file in a pack");
    };
    {
        TempDir s;
        auto fs2 = f.open_fs(s.str());
        check_reads(*fs2, Code::corrupt, Code::internal);
    }
    check_reads(*f.fs, Code::corrupt, Code::internal);

    // Withhold b.bin's object (the sync client has not brought it yet).
    fs::path b_path = f.vault_dir.path / "objects" / b_obj;
    fs::path aside = f.vault_dir.path / "b.aside";
    fs::rename(b_path, aside);
    auto r2 = run_fsck(f);
    REQUIRE(r2.pending.size() == 1);
    CHECK(r2.pending[0].find("docs/b.bin") != std::string::npos);
    REQUIRE(r2.tampered.size() == 1);
    CHECK(r2.tampered[0].find("a.bin") != std::string::npos);
    {
        TempDir s;
        auto fs2 = f.open_fs(s.str());
        check_reads(*fs2, Code::corrupt, Code::pending);
    }
    // When it arrives, the file reads again.
    fs::rename(aside, b_path);
    {
        TempDir s;
        auto fs2 = f.open_fs(s.str());
        check_reads(*fs2, Code::corrupt, Code::internal);
    }
    (void)b;
    (void)c;
}

TEST_CASE("publish: a truncated object is tampered, not pending") {
    CoreFixture f;
    Ino a = f.mkfile(kRootIno, "a.bin");
    f.write_at(a, 0, big_content(2 * MiB, 9));
    auto before = files_under(f.vault_dir.path / "objects");
    f.publish();
    auto after = files_under(f.vault_dir.path / "objects");
    REQUIRE(after.size() == before.size() + 1);
    std::string obj;
    for (const auto& o : after)
        if (!before.count(o)) obj = o;
    fs::path p = f.vault_dir.path / "objects" / obj;
    fs::resize_file(p, fs::file_size(p) - 1000);
    auto r = run_fsck(f);
    REQUIRE(r.tampered.size() == 1);
    CHECK(r.tampered[0].find("a.bin") != std::string::npos);
    CHECK(r.pending.empty());
    TempDir s;
    auto fs2 = f.open_fs(s.str());
    auto l = fs2->lookup(kRootIno, "a.bin");
    REQUIRE(l.ok());
    Bytes buf(2 * MiB);
    CHECK(code_of(fs2->read(l->ino, 0, 0, buf.size(), buf.data())) == Code::corrupt);
}

namespace {
// The object files a publish of `f` added.
std::vector<fs::path> new_objects(CoreFixture& f, const std::function<void()>& publish) {
    auto before = files_under(f.vault_dir.path / "objects");
    publish();
    std::vector<fs::path> out;
    for (const auto& o : files_under(f.vault_dir.path / "objects"))
        if (!before.count(o)) out.push_back(f.vault_dir.path / "objects" / o);
    return out;
}

void append_byte(const fs::path& p) {
    std::ofstream(p, std::ios::binary | std::ios::app).put('\x5a');
}
}  // namespace

TEST_CASE("publish: bytes appended to an object (format 2) make its files tampered") {
    CoreFixture f;
    REQUIRE(f.header.version == 2);
    Ino big = f.mkfile(kRootIno, "big.bin");
    f.write_at(big, 0, big_content(2 * MiB, 3));
    Ino s1 = f.mkfile(kRootIno, "s1.txt");
    f.write_at(s1, 0, bytes_of("small one"));
    Ino s2 = f.mkfile(kRootIno, "s2.txt");
    f.write_at(s2, 0, bytes_of("small two"));
    auto objs = new_objects(f, [&] { f.publish(); });
    REQUIRE(objs.size() == 2);  // big.bin alone, the small files in a pack
    for (const auto& p : objs) {
        auto bytes = f.vault->backend().read(fs::relative(p, f.vault_dir.path).string(), kAnyObject);
        REQUIRE(bytes.ok());
        CHECK((*bytes)[7] == 2);
        CHECK(fs::file_size(p) > format::kObjectHeaderSizeV2);
    }
    CHECK(run_fsck(f).clean());
    // Pad the pack: both small files fail, the big one still reads.
    fs::path pack = fs::file_size(objs[0]) < fs::file_size(objs[1]) ? objs[0] : objs[1];
    append_byte(pack);
    auto r = run_fsck(f);
    CHECK(r.pending.empty());
    REQUIRE(r.tampered.size() == 2);
    std::string all = r.tampered[0] + r.tampered[1];
    CHECK(all.find("s1.txt") != std::string::npos);
    CHECK(all.find("s2.txt") != std::string::npos);
    CHECK(all.find("its header says") != std::string::npos);
    TempDir s;
    auto fs2 = f.open_fs(s.str());
    Bytes buf(2 * MiB);
    for (const char* name : {"s1.txt", "s2.txt"}) {
        auto l = fs2->lookup(kRootIno, name);
        REQUIRE(l.ok());
        CHECK(code_of(fs2->read(l->ino, 0, 0, buf.size(), buf.data())) == Code::corrupt);
    }
    auto l = fs2->lookup(kRootIno, "big.bin");
    REQUIRE(l.ok());
    auto n = fs2->read(l->ino, 0, 0, buf.size(), buf.data());
    REQUIRE(n.ok());
    CHECK(*n == 2 * MiB);
    CHECK(Bytes(buf.begin(), buf.end()) == big_content(2 * MiB, 3));
}

TEST_CASE("publish: a format 1 vault keeps version 1 objects, reads them and stays format 1") {
    CoreFixture f(1);
    REQUIRE(f.header.version == 1);
    Ino a = f.mkfile(kRootIno, "a.txt");
    f.write_at(a, 0, bytes_of("written into a format 1 vault"));
    auto objs = new_objects(f, [&] { f.publish(); });
    REQUIRE(objs.size() == 1);
    auto bytes = f.vault->backend().read(fs::relative(objs[0], f.vault_dir.path).string(), kAnyObject);
    REQUIRE(bytes.ok());
    CHECK((*bytes)[7] == 1);
    CHECK(bytes->size() == format::kObjectHeaderSizeV1 + format::sealed_chunk_size(29, f.header.block_size));
    CHECK(run_fsck(f).clean());
    auto peek = f.vault->peek_header();
    REQUIRE(peek.ok());
    CHECK(peek->version == 1);
    {
        TempDir s;
        auto fs2 = f.open_fs(s.str());
        auto l = fs2->lookup(kRootIno, "a.txt");
        REQUIRE(l.ok());
        Bytes buf(64);
        auto n = fs2->read(l->ino, 0, 0, buf.size(), buf.data());
        REQUIRE(n.ok());
        CHECK(std::string(buf.begin(), buf.begin() + *n) == "written into a format 1 vault");
    }
    // The documented limit of format 1: bytes appended past the last chunk
    // are not noticed (no file reads them).
    append_byte(objs[0]);
    CHECK(run_fsck(f).clean());
    // A version 2 object does not belong in a format 1 vault.
    auto v2 = *bytes;
    v2[7] = 2;
    std::ofstream(objs[0], std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(v2.data()),
                                                                    static_cast<std::streamsize>(v2.size()));
    auto r = run_fsck(f);
    CHECK(r.tampered.size() == 1);
}

TEST_CASE("publish: a new device reads content written while the first device publishes again") {
    CoreFixture f;
    Ino a = f.mkfile(kRootIno, "a");
    f.write_at(a, 0, big_content(MiB + 17, 5));
    f.publish();
    // Writes after the publish stay local until the next one.
    f.write_at(a, 10, as_bytes("local"));
    {
        TempDir s;
        auto fs2 = f.open_fs(s.str());
        auto l = fs2->lookup(kRootIno, "a");
        REQUIRE(l.ok());
        Bytes buf(20);
        REQUIRE(fs2->read(l->ino, 0, 0, 20, buf.data()).ok());
        Bytes expect = big_content(20, 5);
        CHECK(buf == expect);
    }
    f.publish();
    TempDir s;
    auto fs2 = f.open_fs(s.str());
    auto l = fs2->lookup(kRootIno, "a");
    REQUIRE(l.ok());
    Bytes buf(20);
    REQUIRE(fs2->read(l->ino, 0, 0, 20, buf.data()).ok());
    CHECK(std::string(buf.begin() + 10, buf.begin() + 15) == "local");
}

// A file cut shorter while a publish is between its cut and its commit: the
// publish must not install extents holding the bytes the truncate removed,
// here or on another device; growing the file again reads zeros.
TEST_CASE("publish: a truncate during a publish never brings cut-off bytes back") {
    CoreFixture f;
    Ino file = f.mkfile(kRootIno, "f");
    Bytes data = big_content(300000, 3);
    f.write_at(file, 0, data);
    sync::set_after_cut_hook_for_tests([&] {
        f.truncate(file, 1000);
        f.write_at(file, 400000, as_bytes("tail"));  // grows past the old end again
    });
    f.publish();
    sync::set_after_cut_hook_for_tests(nullptr);
    auto check_content = [&](vfs::Filesystem& fs, Ino ino) {
        auto a = fs.getattr(ino);
        REQUIRE(a.ok());
        REQUIRE(a->size == 400004);
        Bytes got(a->size);
        auto r = fs.read(ino, 0, 0, got.size(), got.data());
        REQUIRE(r.ok());
        CHECK(std::equal(data.begin(), data.begin() + 1000, got.begin()));
        CHECK(std::all_of(got.begin() + 1000, got.begin() + 400000, [](uint8_t b) { return b == 0; }));
        CHECK(std::string(got.end() - 4, got.end()) == "tail");
    };
    check_content(*f.fs, file);
    f.publish();  // the node stayed dirty: this publish records the truth
    check_content(*f.fs, file);
    CHECK(f.publish().ops == 0);
    TempDir other;
    auto fs2 = f.open_fs(other.str());
    auto a = fs2->lookup(kRootIno, "f");
    REQUIRE(a.ok());
    check_content(*fs2, a->ino);
}

// A publish encodes the pending operations into the segment one at a time
// (it holds no list of them): the segment must still hold exactly what was
// recorded up to the cut, in order, the changes of a node removed by then too,
// and after them one set_content per file; what happens while the publish
// runs goes to the next segment.
TEST_CASE("publish: a segment of many ops holds the recorded ones in order, then the contents") {
    CoreFixture f;
    // A file unlinked while open, then changed: a deleted node keeps its row
    // as a tomb (another device's edit may bring it back), so its recorded
    // changes are published like any others, for every device to apply the
    // same. One such node early (in the first batch of 4096 rows publish
    // reads back), one at the end (in the second).
    auto unlinked_then_changed = [&](const std::string& name) {
        auto c = f.fs->create(kRootIno, name, 0644, O_RDWR, f.ctx);
        REQUIRE(c.ok());
        REQUIRE(f.fs->write(c->attr.ino, c->fh, 0, as_bytes("bye")).ok());
        REQUIRE(f.fs->unlink(kRootIno, name).ok());
        REQUIRE(f.fs->setxattr(c->attr.ino, "user.late", as_bytes("x"), 0).ok());
        // A chmod of a file with no name is recorded too (only the kernel's
        // ctime-only setattr after an unlink is not).
        vfs::SetAttrReq chmod;
        chmod.mode = 0640;
        auto a = f.fs->setattr(c->attr.ino, chmod, f.ctx);
        REQUIRE(a.ok());
        CHECK((a->mode & 07777) == 0640);
        CHECK((f.fs->getattr(c->attr.ino)->mode & 07777) == 0640);
    };
    unlinked_then_changed("gone1");
    std::vector<Ino> files;
    for (int d = 0; d < 12; ++d) {
        Ino dir = f.mkdir(kRootIno, "d" + std::to_string(d));
        for (int i = 0; i < 100; ++i) {
            std::string name = "f" + std::to_string(i);
            Ino file = f.mkfile(dir, name, "content of " + std::to_string(d) + "/" + name);
            files.push_back(file);
            if (i % 3 == 0) {
                vfs::SetAttrReq r;
                r.mode = 0600;
                REQUIRE(f.fs->setattr(file, r, f.ctx).ok());
            }
            if (i % 5 == 0) REQUIRE(f.fs->setxattr(file, "user.i", as_bytes(std::to_string(i)), 0).ok());
            if (i % 17 == 0) REQUIRE(f.fs->rename(dir, name, dir, name + ".moved", 0).ok());
        }
    }
    for (int j = 0; j < 6000; ++j)
        REQUIRE(f.fs->setxattr(files[j % files.size()], "user.n", as_bytes(std::to_string(j)), 0).ok());
    unlinked_then_changed("gone2");

    std::vector<format::Op> recorded = recorded_ops(f);
    // 12 mkdir + 1200 create + 408 chmod + 240 setxattr + 72 rename + 6000
    // setxattr, and create, unlink, setxattr, chmod of each "gone".
    REQUIRE(recorded.size() == 12 + 1200 + 408 + 240 + 72 + 6000 + 2 * 4);
    std::set<Id128> gone_ids;
    for (const auto& op : recorded)
        if (auto* c = create_named(op, "gone1") ? create_named(op, "gone1") : create_named(op, "gone2"))
            gone_ids.insert(c->node);
    REQUIRE(gone_ids.size() == 2);
    const std::vector<format::Op> expected = recorded;
    size_t about_gone = 0;
    for (const auto& op : recorded) {
        auto* x = std::get_if<format::OpSetXattr>(&op.body);
        if (x && gone_ids.count(x->node)) ++about_gone;
    }
    CHECK(about_gone == 2);

    // Between the cut and the segment: new operations and a new write.
    struct ClearHook {
        ~ClearHook() { sync::set_after_cut_hook_for_tests(nullptr); }
    } clear_hook;
    sync::set_after_cut_hook_for_tests([&] {
        f.mkdir(kRootIno, "late");
        f.write_at(files[7], 0, as_bytes("rewritten"));
    });
    auto p = f.publish();
    sync::set_after_cut_hook_for_tests(nullptr);

    format::Segment seg = published_segment(f, 1);
    CHECK(p.ops == seg.ops.size());
    REQUIRE(seg.ops.size() == expected.size() + files.size());
    CHECK(std::equal(expected.begin(), expected.end(), seg.ops.begin()));
    std::set<Id128> content_nodes;
    for (size_t i = expected.size(); i < seg.ops.size(); ++i) {
        auto* sc = std::get_if<format::OpSetContent>(&seg.ops[i].body);
        REQUIRE(sc);
        CHECK(seg.ops[i].hlc == seg.hlc);
        CHECK(sc->extents.size() == 1);
        content_nodes.insert(sc->node);
    }
    CHECK(content_nodes.size() == files.size());
    for (const auto& op : seg.ops) CHECK_FALSE(create_named(op, "late"));

    // The next publish carries what happened meanwhile.
    auto p2 = f.publish();
    format::Segment seg2 = published_segment(f, 2);
    CHECK(p2.ops == seg2.ops.size());
    REQUIRE(seg2.ops.size() == 2);
    CHECK(create_named(seg2.ops[0], "late"));
    CHECK(std::holds_alternative<format::OpSetContent>(seg2.ops[1].body));
    CHECK(f.publish().ops == 0);

    CHECK(f.read_str(files[7]).substr(0, 9) == "rewritten");
    TempDir other;
    auto fs2 = f.open_fs(other.str());
    check_same_tree(snapshot_tree(*f.fs), snapshot_tree(*fs2));
    CHECK(run_fsck(f).clean());
}

// The segment's bytes are recorded (the intent) before the file is written;
// a publish that stops in between is finished by the next one with exactly
// the recorded bytes, even though the segment was never held as a list of ops.
TEST_CASE("publish: setattrs of one node in a row are recorded as one op, never one a cut has taken") {
    CoreFixture f;
    Ino a = f.mkfile(kRootIno, "a", "aaa");
    Ino b = f.mkfile(kRootIno, "b", "bbb");
    f.publish();
    REQUIRE(f.pending_ops() == 0);
    auto set = [&](Ino ino, std::optional<uint32_t> mode, std::optional<uint32_t> uid, int64_t mtime_s) {
        vfs::SetAttrReq r;
        r.mode = mode;
        r.uid = uid;
        if (mtime_s >= 0) {
            r.mtime = vfs::SetAttrReq::Time::set;
            r.mtime_val = timespec{mtime_s, 0};
        }
        REQUIRE(f.fs->setattr(ino, r, f.ctx).ok());
    };
    // As tar does it: times, owner, mode, one after another.
    set(a, std::nullopt, std::nullopt, 1000);
    set(a, std::nullopt, 4242, -1);
    set(a, 0600, std::nullopt, -1);
    set(a, std::nullopt, std::nullopt, 2000);
    CHECK(f.pending_ops() == 1);
    // Another node in between: no merging across it.
    set(b, 0640, std::nullopt, -1);
    set(a, 0604, std::nullopt, -1);
    CHECK(f.pending_ops() == 3);
    auto ops = recorded_ops(f);
    REQUIRE(ops.size() == 3);
    auto* first = std::get_if<format::OpSetAttr>(&ops[0].body);
    REQUIRE(first);
    CHECK(first->mask == (format::kSetMode | format::kSetUid | format::kSetMtime | format::kSetCtime));
    CHECK(first->mode == 0600);
    CHECK(first->uid == 4242);
    CHECK(first->times.mtime_ns == 2000 * 1000000000LL);
    CHECK(ops[0].hlc < ops[1].hlc);
    CHECK(ops[1].hlc < ops[2].hlc);

    // A setattr while a publish holds the cut goes into a new op, not into
    // the one the segment is being made of.
    struct ClearHook {
        ~ClearHook() { sync::set_after_cut_hook_for_tests(nullptr); }
    } clear_hook;
    sync::set_after_cut_hook_for_tests([&] { set(a, 0644, std::nullopt, 3000); });
    f.publish();
    sync::set_after_cut_hook_for_tests(nullptr);
    CHECK(f.pending_ops() == 1);
    f.publish();
    CHECK(f.pending_ops() == 0);

    // A new device sees the last of everything.
    TempDir s;
    auto fs2 = f.open_fs(s.str());
    auto la = fs2->lookup(kRootIno, "a");
    REQUIRE(la.ok());
    CHECK((la->mode & 07777) == 0644);
    CHECK(la->uid == 4242);
    CHECK(la->mtime.tv_sec == 3000);
    auto lb = fs2->lookup(kRootIno, "b");
    REQUIRE(lb.ok());
    CHECK((lb->mode & 07777) == 0640);
}

TEST_CASE("publish: a publish stopped after recording its segment is finished with the recorded bytes") {
    CoreFixture f;
    for (int d = 0; d < 4; ++d) {
        Ino dir = f.mkdir(kRootIno, "d" + std::to_string(d));
        for (int i = 0; i < 150; ++i) f.mkfile(dir, "f" + std::to_string(i), std::string(100 + i, 'a' + d));
    }
    Ino big = f.mkfile(kRootIno, "big");
    f.write_at(big, 0, big_content(2 * MiB + 3, 8));  // an object of its own besides the pack
    // The segment's write fails (the objects' went through): after the intent is committed.
    const std::string seg_path = format::segment_path(f.device(), 1);
    f.faults->fail_writes([&](std::string_view rel) { return rel == seg_path; });
    auto failed = sync::publish(f.fs->replica());
    REQUIRE_FALSE(failed.ok());
    CHECK(failed.error().code == Code::io);
    CHECK_FALSE(f.vault->backend().exists(seg_path));
    CHECK(files_under(f.vault_dir.path / "objects").size() == 2);  // the pack and big's own object

    std::optional<std::pair<uint64_t, Bytes>> intent;
    auto read_intent = [&] {
        with_core_closed(f, [&](index::Index& ix) {
            auto i = ix.intent();
            REQUIRE(i.ok());
            intent = *i;
        });
    };
    read_intent();
    REQUIRE(intent.has_value());
    CHECK(intent->first == 1);
    const Bytes recorded = intent->second;
    auto seg = format::decode_segment(crypto::derive(f.master, crypto::Subkey::journal), recorded);
    REQUIRE(seg.ok());
    CHECK(seg->ops.size() == 4 + 600 + 1 + 601);  // creates, then one set_content per file
    // Nothing left pending: what the intent holds is published by finishing it.
    CHECK(sync::status(f.fs->replica())->pending_ops == 0);

    f.faults->fail_writes(nullptr);
    auto p = f.publish();
    CHECK(p.ops == 0);
    auto written = f.vault->backend().read(format::segment_path(f.device(), 1), store::kMaxSegmentFile);
    REQUIRE(written.ok());
    CHECK(*written == recorded);
    read_intent();
    CHECK_FALSE(intent.has_value());
    TempDir other;
    auto fs2 = f.open_fs(other.str());
    check_same_tree(snapshot_tree(*f.fs), snapshot_tree(*fs2));
    CHECK(run_fsck(f).clean());
}

TEST_CASE("publish: a vault on a MemoryBackend publishes, and a new device reads it back, with fsck clean") {
    crypto::init();
    auto mem = std::make_unique<store::MemoryBackend>();
    store::MemoryBackend* storage = mem.get();
    store::CreateOptions o;
    o.pw_params = crypto::insecure_test_params();
    auto pw = crypto::SecretBytes::from(as_bytes("pw"));
    REQUIRE(store::Vault::create(*mem, pw, o).ok());
    auto vault = store::Vault::open(std::move(mem));
    REQUIRE(vault.ok());
    store::Credentials c;
    c.password = pw.clone();
    auto u = (*vault)->unlock(c);
    REQUIRE(u.ok());
    auto open_fs = [&](const std::string& state) {
        vfs::Options opts;
        opts.state_dir = state;
        auto fs = vfs::Filesystem::open(**vault, u->header, u->master.clone(), opts);
        REQUIRE_MESSAGE(fs.ok(), (fs.ok() ? "" : fs.error().message()));
        return std::move(fs).value();
    };
    TempDir s1, s2;
    auto fs1 = open_fs(s1.str());
    vfs::Ctx ctx{1000, 1000, 022};
    auto cf = fs1->create(kRootIno, "big", 0644, O_RDWR, ctx);
    REQUIRE(cf.ok());
    const Bytes data = big_content(2 * MiB + 77, 3);  // an object of its own
    REQUIRE(fs1->write(cf->attr.ino, cf->fh, 0, data).ok());
    REQUIRE(fs1->release(cf->attr.ino, cf->fh).ok());
    auto p = sync::publish(fs1->replica());
    REQUIRE(p.ok());
    CHECK(p->objects == 1);
    CHECK(storage->list("journal")->size() == 1);  // the segment is in memory, not on disk

    auto fs2 = open_fs(s2.str());
    check_same_tree(snapshot_tree(*fs1), snapshot_tree(*fs2));
    auto l = fs2->lookup(kRootIno, "big");
    REQUIRE(l.ok());
    Bytes back(data.size());
    auto r = fs2->read(l->ino, 0, 0, back.size(), back.data());
    REQUIRE(r.ok());
    CHECK(*r == data.size());
    CHECK(back == data);
    auto report = sync::fsck(**vault, u->header, u->master);
    REQUIRE(report.ok());
    CHECK(report->clean());
}
