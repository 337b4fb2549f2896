// Runs every file of the fuzz seed corpora (and any crash inputs added to
// them) through the same target bodies libFuzzer runs, so the corpus is
// exercised by every compiler in the normal test run.
//
// To regenerate the seeds after a format change:
//   COFFER_WRITE_FUZZ_CORPUS=1 coffer_unit_tests -tc='fuzz corpus: write seeds'
#include <doctest/doctest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

#define COFFER_FUZZ_NO_ENTRY
#include "../../fuzz/fuzz_object.cpp"
#include "../../fuzz/fuzz_ops.cpp"
#include "../../fuzz/fuzz_header.cpp"
#include "../../fuzz/fuzz_recovery.cpp"
#include "../../fuzz/fuzz_segment.cpp"
#include "../test_support.h"
#include "journal_v1.h"

using namespace coffer;
using namespace coffer::format;
namespace fs = std::filesystem;

namespace {

using Body = const char* (*)(const uint8_t*, size_t);

fs::path corpus_dir(const std::string& target) {
    return fs::path(COFFER_SOURCE_DIR) / "tests" / "fuzz" / "corpus" / target;
}

Bytes read_all(const fs::path& p) {
    std::ifstream in(p, std::ios::binary);
    return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

size_t run_corpus(const std::string& target, Body body) {
    size_t n = 0;
    for (const auto& entry : fs::directory_iterator(corpus_dir(target))) {
        if (!entry.is_regular_file()) continue;
        Bytes input = read_all(entry.path());
        const char* why = body(input.data(), input.size());
        CHECK_MESSAGE(why == nullptr, target << "/" << entry.path().filename().string() << ": " << why);
        ++n;
    }
    return n;
}

Id128 id_of(uint8_t v) {
    Id128 id;
    id.b.fill(v);
    return id;
}

std::vector<std::pair<std::string, Op>> seed_ops() {
    const Times t{1, 2, 3};
    return {
        {"create", {10, OpCreate{id_of(1), id_of(0), "dir", 040755, 1000, 1000, 0, t, ""}}},
        {"symlink", {11, OpCreate{id_of(2), id_of(1), "ln", 0120777, 0, 0, 0, t, "../target"}}},
        {"link", {12, OpLink{id_of(3), id_of(1), "again", 5}}},
        {"unlink", {13, OpUnlink{id_of(1), "again", id_of(3), id_of(8)}}},
        {"rename", {14, OpRename{id_of(1), "a", id_of(2), "b", kRenameExchange, id_of(3), id_of(4), id_of(9)}}},
        {"setattr", {15, OpSetAttr{id_of(3), kSetMode | kSetMtime, 0100600, 0, 0, t}}},
        {"set_content", {16, OpSetContent{id_of(3), id_of(5), id_of(6), 9000, 7, 8, 1, Bytes(72, 0x33),
                                          {{0, id_of(7), 24, 4096}, {2, id_of(7), 4160, 808}}}}},
        {"setxattr", {17, OpSetXattr{id_of(3), "user.k", Bytes{'v'}}}},
        {"removexattr", {18, OpRemoveXattr{id_of(3), "user.k"}}},
    };
}

void write_file(const fs::path& p, ByteSpan data) {
    std::ofstream out(p, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
}

Bytes tagged(uint8_t mode, ByteSpan rest) {
    Bytes b{mode};
    b.insert(b.end(), rest.begin(), rest.end());
    return b;
}

}  // namespace

TEST_CASE("fuzz corpus: ops") { CHECK(run_corpus("ops", fuzz::fuzz_ops) > 0); }
TEST_CASE("fuzz corpus: segment") { CHECK(run_corpus("segment", fuzz::fuzz_segment) > 0); }
TEST_CASE("fuzz corpus: object") { CHECK(run_corpus("object", fuzz::fuzz_object) > 0); }
TEST_CASE("fuzz corpus: header") { CHECK(run_corpus("header", fuzz::fuzz_header) > 0); }
TEST_CASE("fuzz corpus: recovery key") { CHECK(run_corpus("recovery", fuzz::fuzz_recovery) > 0); }

TEST_CASE("fuzz corpus: write seeds") {
    if (!std::getenv("COFFER_WRITE_FUZZ_CORPUS")) return;
    testing::FixedRandom rnd(99);

    const fs::path ops_dir = corpus_dir("ops");
    fs::create_directories(ops_dir);
    ByteWriter stream;
    for (const auto& [name, op] : seed_ops()) {
        write_file(ops_dir / ("seed-" + name), encode_op(op));
        encode_op(stream, op);
    }
    write_file(ops_dir / "seed-stream", stream.bytes());
    Bytes unknown = encode_op(seed_ops()[0].second);
    unknown[0] = 9;
    write_file(ops_dir / "seed-unknown-type", unknown);
    // Journal version 1 (old inputs): unlink and rename without seen versions.
    write_file(ops_dir / "seed-unlink-v1", testing::encode_op_v1({13, OpUnlink{id_of(1), "again", id_of(3), {}}}));
    write_file(ops_dir / "seed-rename-v1",
               testing::encode_op_v1({14, OpRename{id_of(1), "a", id_of(2), "b", 0, id_of(3), id_of(4), {}}}));

    const fs::path seg_dir = corpus_dir("segment");
    fs::create_directories(seg_dir);
    const auto key = fuzz::fuzz_journal_key();
    Segment empty;
    empty.device = id_of(0x11);
    empty.seq = 1;
    Segment full = empty;
    full.hlc = 1234;
    full.device_name = "fuzz device";
    full.merged = {{id_of(0x22), 3, Hash32{}}};
    for (const auto& [name, op] : seed_ops()) full.ops.push_back(op);
    Segment later = full;
    later.seq = 2;
    later.prev.fill(0x44);
    for (auto& [name, seg] : std::vector<std::pair<std::string, Segment>>{{"empty", empty}, {"full", full},
                                                                          {"later", later}}) {
        Bytes file = encode_segment(key, seg);
        write_file(seg_dir / ("seed-file-" + name), tagged(0, file));
        // Body mode: the plaintext body, sealed by the target itself.
        auto body = crypto::open(key, ByteSpan(file).subspan(kSegmentPrefixSize),
                                 ByteSpan(file).first(kSegmentPrefixSize));
        REQUIRE(body.ok());
        if (seg.seq == 1) write_file(seg_dir / ("seed-body-" + name), tagged(1, *body));
    }
    // Journal version 1 (old inputs): no device name, no seen versions.
    Segment old = full;
    old.device_name.clear();
    for (auto& op : old.ops) {
        if (auto* u = std::get_if<OpUnlink>(&op.body)) u->seen = {};
        if (auto* r = std::get_if<OpRename>(&op.body)) r->replaced_seen = {};
    }
    write_file(seg_dir / "seed-file-v1", tagged(0, testing::encode_segment_v1(key, old)));
    write_file(seg_dir / "seed-body-v1", tagged(3, testing::segment_body_v1(old)));

    const fs::path obj_dir = corpus_dir("object");
    fs::create_directories(obj_dir);
    for (auto [bs, len] : {std::pair<uint8_t, size_t>{15, 1}, {15, 16}, {15, 17}, {3, 20}, {63, 200}}) {
        Bytes in = {bs, 1, static_cast<uint8_t>(len)};
        for (size_t i = 0; i < len; ++i) in.push_back(static_cast<uint8_t>(i));
        write_file(obj_dir / ("seed-chunk-" + std::to_string(bs + 1) + "-" + std::to_string(len)), in);
    }
    write_file(obj_dir / "seed-header", object_header(1, id_of(0x5a)));
    {
        Bytes v2 = object_header(2, id_of(0x5a));
        seal_object_header(v2, crypto::SecretBytes::from(Bytes(32, 0x24)), 1);
        write_file(obj_dir / "seed-header-v2", v2);
    }
}
