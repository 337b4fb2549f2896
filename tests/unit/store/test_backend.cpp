// The store::Backend conformance suite: every implementation keeps the
// promises of backend.h. Run over VaultDir (a real folder), MemoryBackend
// and FaultBackend (unarmed, over a MemoryBackend); the fault backend's own
// behaviour follows in its own cases.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <atomic>
#include <thread>

#include "coffer/store/memory_backend.h"
#include "coffer/store/vault.h"
#include "coffer/store/vault_dir.h"
#include "../test_support.h"
#include "fault_backend.h"

using namespace coffer;
using namespace coffer::store;
using coffer::testing::FaultBackend;

namespace {

Bytes bytes_of(std::string_view s) { return Bytes(s.begin(), s.end()); }
std::string text(const Bytes& b) { return std::string(b.begin(), b.end()); }
using Names = std::vector<std::string>;

struct OnFolder {
    coffer::testing::TempDir tmp;
    std::unique_ptr<Backend> make() {
        auto d = VaultDir::open(tmp.str());
        REQUIRE(d.ok());
        return std::move(d).value();
    }
};
struct InMemory {
    std::unique_ptr<Backend> make() { return std::make_unique<MemoryBackend>(); }
};
struct ThroughFaults {
    std::unique_ptr<Backend> make() { return std::make_unique<FaultBackend>(std::make_unique<MemoryBackend>()); }
};

template <class R>
Code code_of(const R& r) {
    return r.ok() ? Code::internal : r.error().code;
}

}  // namespace

TEST_CASE_TEMPLATE_DEFINE("backend conformance", Maker, backend_conformance) {
    Maker maker;
    std::unique_ptr<Backend> b = maker.make();

    SUBCASE("an absent folder lists empty; a new vault's layout lists its folders") {
        auto l = b->list("journal/0123");
        REQUIRE(l.ok());
        CHECK(l->empty());
        CHECK(b->list("")->empty());
        REQUIRE(b->create_layout().ok());
        CHECK(*b->list("") == Names{"journal", "objects", "snapshots", "tmp"});
        CHECK(b->exists("objects"));
        CHECK(b->list("objects")->empty());
        CHECK(b->sync_dir("journal").ok());
        CHECK(code_of(b->sync_dir("journal/none")) == Code::pending);
    }

    SUBCASE("write_new, then read_at at offsets, up to and past the end") {
        REQUIRE(b->write_new("objects/ab/f", bytes_of("0123456789")).ok());
        CHECK(text(*b->read_at("objects/ab/f", 0, 10)) == "0123456789");
        CHECK(text(*b->read_at("objects/ab/f", 3, 4)) == "3456");
        CHECK(text(*b->read_at("objects/ab/f", 7, 100)) == "789");  // short only at the end
        CHECK(b->read_at("objects/ab/f", 10, 5)->empty());
        CHECK(b->read_at("objects/ab/f", 1000, 5)->empty());
        CHECK(b->read_at("objects/ab/f", 2, 0)->empty());
        // A huge max_len reads what is there without allocating it.
        CHECK(text(*b->read_at("objects/ab/f", 8, SIZE_MAX)) == "89");

        auto f = b->open_read("objects/ab/f");
        REQUIRE(f.ok());
        auto span = (*f)->read(2, 5);
        REQUIRE(span.ok());
        CHECK(std::string(span->begin(), span->end()) == "23456");
        struct stat st {};
        REQUIRE(::fstat((*f)->get(), &st) == 0);
        CHECK(st.st_size == 10);

        REQUIRE(b->write_new("empty", {}).ok());
        CHECK(b->read_at("empty", 0, 10)->empty());
        CHECK(b->read("empty", 0)->empty());
    }

    SUBCASE("a whole-file read is bounded: larger than the cap is corrupt, naming the file") {
        REQUIRE(b->write_new("journal/d/1", bytes_of("twelve bytes")).ok());
        CHECK(text(*b->read("journal/d/1", 12)) == "twelve bytes");
        CHECK(text(*b->read("journal/d/1", 1000)) == "twelve bytes");
        auto r = b->read("journal/d/1", 11);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().code == Code::corrupt);
        CHECK(r.error().context.find("journal/d/1") != std::string::npos);
    }

    SUBCASE("write_new never replaces: exists, and the old bytes stay") {
        REQUIRE(b->write_new("coffer.vault", bytes_of("first")).ok());
        auto again = b->write_new("coffer.vault", bytes_of("second, longer"));
        REQUIRE_FALSE(again.ok());
        CHECK(again.error().code == Code::exists);
        CHECK(text(*b->read("coffer.vault", 100)) == "first");
        CHECK(code_of(b->write_new("coffer.vault", bytes_of("x"), false)) == Code::exists);
    }

    SUBCASE("replace swaps the bytes; a reader that opened the old file keeps reading it") {
        REQUIRE(b->write_new("coffer.vault", bytes_of("old header")).ok());
        auto before = b->open_read("coffer.vault");
        REQUIRE(before.ok());
        REQUIRE(b->replace("coffer.vault", bytes_of("new")).ok());
        CHECK(text(*b->read("coffer.vault", 100)) == "new");
        auto old = (*before)->read(0, 100);
        REQUIRE(old.ok());
        CHECK(std::string(old->begin(), old->end()) == "old header");
        REQUIRE(b->replace("fresh", bytes_of("made by replace")).ok());
        CHECK(text(*b->read("fresh", 100)) == "made by replace");
    }

    SUBCASE("remove is idempotent") {
        REQUIRE(b->write_new("objects/ab/x", bytes_of("x")).ok());
        REQUIRE(b->remove("objects/ab/x").ok());
        CHECK_FALSE(b->exists("objects/ab/x"));
        CHECK(code_of(b->read("objects/ab/x", 10)) == Code::pending);
        CHECK(b->remove("objects/ab/x").ok());
        CHECK(b->remove("no/such/folder/x").ok());
        REQUIRE(b->write_new("objects/ab/x", bytes_of("again")).ok());  // the name is free again
        CHECK(text(*b->read("objects/ab/x", 10)) == "again");
    }

    SUBCASE("an absent file is pending for every read") {
        CHECK(code_of(b->read_at("objects/cd/none", 0, 10)) == Code::pending);
        CHECK(code_of(b->read("objects/cd/none", 10)) == Code::pending);
        CHECK(code_of(b->open_read("objects/cd/none")) == Code::pending);
        CHECK_FALSE(b->exists("objects/cd/none"));
        auto r = b->read("journal/abc/0001", 10);
        REQUIRE_FALSE(r.ok());
        CHECK(r.error().context == "vault file journal/abc/0001 has not arrived (pending)");
    }

    SUBCASE("names in sub-folders: parents are made, folders list by name") {
        REQUIRE(b->create_layout().ok());  // tmp/ is there either way (VaultDir writes through it)
        REQUIRE(b->write_new("a/b/c/file1", bytes_of("1")).ok());
        REQUIRE(b->write_new("a/b/file2", bytes_of("2")).ok());
        REQUIRE(b->write_new("a/top", bytes_of("3"), false).ok());
        REQUIRE(b->sync_dir("a").ok());
        CHECK(*b->list("") == Names{"a", "journal", "objects", "snapshots", "tmp"});
        CHECK(*b->list("a") == Names{"b", "top"});
        CHECK(*b->list("a/b") == Names{"c", "file2"});
        CHECK(*b->list("a/b/c") == Names{"file1"});
        CHECK(*b->list("a/b/c/") == Names{"file1"});
        CHECK(b->exists("a/b"));
        CHECK(b->exists("a/b/c/file1"));
        CHECK(text(*b->read("a/b/c/file1", 10)) == "1");
        CHECK(code_of(b->read("a/b", 10)) == Code::corrupt);  // a folder is not a vault file
        CHECK_FALSE(b->list("a/top").ok());                   // nor a file a folder
    }

    SUBCASE("paths leading out of the vault are refused before anything is touched") {
        for (std::string_view bad : {"../x", "a/../../x", "..", "/etc/passwd", "objects/../../x"}) {
            INFO(bad);
            CHECK(code_of(b->read(bad, 10)) == Code::invalid);
            CHECK(code_of(b->read_at(bad, 0, 10)) == Code::invalid);
            CHECK(code_of(b->open_read(bad)) == Code::invalid);
            CHECK(code_of(b->write_new(bad, bytes_of("x"))) == Code::invalid);
            CHECK(code_of(b->replace(bad, bytes_of("x"))) == Code::invalid);
            CHECK(code_of(b->list(bad)) == Code::invalid);
            CHECK(code_of(b->remove(bad)) == Code::invalid);
            CHECK_FALSE(b->exists(bad));
        }
        CHECK(code_of(b->write_new(std::string("a\0b", 3), bytes_of("x"))) == Code::invalid);
        CHECK(code_of(b->write_new("", bytes_of("x"))) == Code::invalid);  // names no file
        CHECK(b->list("")->empty());
    }

    SUBCASE("write_new of one name from many threads: exactly one wins, whole") {
        constexpr int kThreads = 8;
        std::atomic<int> won{0}, refused{0}, other{0};
        std::atomic<int> winner{-1};
        std::vector<std::thread> threads;
        for (int i = 0; i < kThreads; ++i)
            threads.emplace_back([&, i] {
                Bytes mine(4096 + i, static_cast<uint8_t>('a' + i));
                Status st = b->write_new("journal/dev/0000000000000001", mine);
                if (st.ok()) {
                    won += 1;
                    winner = i;
                } else if (st.error().code == Code::exists) {
                    refused += 1;
                } else {
                    other += 1;
                }
            });
        for (auto& t : threads) t.join();
        CHECK(won == 1);
        CHECK(refused == kThreads - 1);
        CHECK(other == 0);
        REQUIRE(winner >= 0);
        auto got = b->read("journal/dev/0000000000000001", 1 << 20);
        REQUIRE(got.ok());
        CHECK(*got == Bytes(4096 + winner, static_cast<uint8_t>('a' + winner)));
    }

    SUBCASE("a vault lives on it: create, open, unlock, change the password") {
        CreateOptions o;
        o.pw_params = crypto::insecure_test_params();
        auto pw = crypto::SecretBytes::from(as_bytes("pw"));
        REQUIRE(Vault::create(*b, pw, o).ok());
        CHECK(code_of(Vault::create(*b, pw, o)) == Code::exists);  // not empty any more
        auto v = Vault::open(std::move(b));
        REQUIRE(v.ok());
        Credentials c;
        c.password = pw.clone();
        auto u = (*v)->unlock(c);
        REQUIRE(u.ok());
        auto pw2 = crypto::SecretBytes::from(as_bytes("pw2"));
        REQUIRE((*v)->change_password(*u, pw2, o.pw_params).ok());
        CHECK(code_of((*v)->unlock(c)) == Code::wrong_key);
        c.password = pw2.clone();
        CHECK((*v)->unlock(c).ok());
    }
}

TEST_CASE_TEMPLATE_INVOKE(backend_conformance, OnFolder, InMemory, ThroughFaults);

TEST_CASE("vault: open on a backend without coffer.vault is not_found") {
    auto v = Vault::open(std::make_unique<MemoryBackend>());
    REQUIRE_FALSE(v.ok());
    CHECK(v.error().code == Code::not_found);
    CHECK(v.error().context == "memory is not a coffer vault (no coffer.vault)");
}

// ---------------------------------------------------------------- the fault backend
namespace {
struct Faulty {
    MemoryBackend* mem;
    std::unique_ptr<FaultBackend> fb;
    Faulty() {
        auto m = std::make_unique<MemoryBackend>();
        mem = m.get();
        fb = std::make_unique<FaultBackend>(std::move(m));
    }
};
}  // namespace

TEST_CASE("fault backend: a power cut fails the Nth mutating call and every later one, changing nothing") {
    Faulty f;
    REQUIRE(f.fb->write_new("objects/ab/1", bytes_of("1")).ok());
    CHECK(f.fb->mutating_calls() == 1);
    f.fb->cut_power_after(2);
    REQUIRE(f.fb->write_new("objects/ab/2", bytes_of("2")).ok());
    REQUIRE(f.fb->remove("objects/ab/1").ok());
    CHECK_FALSE(f.fb->power_is_cut());
    // The third call after arming: the power goes.
    auto st = f.fb->write_new("objects/ab/3", bytes_of("3"));
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == Code::io);
    CHECK(st.error().sys_errno == EIO);
    CHECK(f.fb->power_is_cut());
    CHECK(code_of(f.fb->replace("coffer.vault", bytes_of("h"))) == Code::io);
    CHECK(code_of(f.fb->remove("objects/ab/2")) == Code::io);
    CHECK(code_of(f.fb->sync_dir("objects/ab")) == Code::io);
    CHECK(code_of(f.fb->create_layout()) == Code::io);
    CHECK(f.fb->mutating_calls() == 3);
    // Nothing reached the storage after the cut; reads go on.
    CHECK(*f.mem->list("objects/ab") == Names{"2"});
    CHECK_FALSE(f.mem->exists("coffer.vault"));
    CHECK(text(*f.fb->read("objects/ab/2", 10)) == "2");
    f.fb->crash();
    CHECK_FALSE(f.fb->power_is_cut());
    CHECK(f.fb->write_new("objects/ab/3", bytes_of("3")).ok());
}

TEST_CASE("fault backend: a crash drops what was not durable; sync_dir makes a folder's files durable") {
    Faulty f;
    REQUIRE(f.fb->write_new("objects/ab/durable", bytes_of("d")).ok());
    REQUIRE(f.fb->write_new("objects/ab/synced", bytes_of("s"), false).ok());
    REQUIRE(f.fb->write_new("objects/cd/lost", bytes_of("l"), false).ok());
    REQUIRE(f.fb->sync_dir("objects/ab").ok());
    REQUIRE(f.fb->write_new("objects/ab/late", bytes_of("late"), false).ok());  // after the sync
    REQUIRE(f.fb->replace("coffer.vault", bytes_of("h")).ok());
    CHECK(f.fb->durable_writes() == Names{"objects/ab/durable", "objects/ab/synced", "coffer.vault"});
    auto w = f.fb->writes();
    REQUIRE(w.size() == 5);
    CHECK(w[2].rel == "objects/cd/lost");
    CHECK_FALSE(w[2].durable);
    CHECK(w[2].kind == FaultBackend::Write::Kind::write_new);

    f.fb->cut_power();
    auto removed = f.fb->crash();
    CHECK(removed == Names{"objects/cd/lost", "objects/ab/late"});
    CHECK(*f.mem->list("objects/ab") == Names{"durable", "synced"});
    CHECK(f.mem->list("objects/cd")->empty());
    CHECK(f.mem->exists("coffer.vault"));
    CHECK(f.fb->writes().empty());  // the next boot starts a new record
}

TEST_CASE("fault backend: a file removed before it was durable stays gone after a crash") {
    Faulty f;
    REQUIRE(f.fb->write_new("tmp/x", bytes_of("x"), false).ok());
    REQUIRE(f.fb->remove("tmp/x").ok());
    CHECK(f.fb->crash().empty());
    CHECK_FALSE(f.mem->exists("tmp/x"));
}

TEST_CASE("fault backend: failing reads and writes by path, without a power cut") {
    Faulty f;
    REQUIRE(f.fb->write_new("journal/d/1", bytes_of("seg")).ok());
    REQUIRE(f.fb->write_new("objects/ab/o", bytes_of("obj")).ok());
    f.fb->fail_reads([](std::string_view rel) { return rel.starts_with("objects"); });
    CHECK(code_of(f.fb->read("objects/ab/o", 10)) == Code::io);
    CHECK(code_of(f.fb->read_at("objects/ab/o", 0, 1)) == Code::io);
    CHECK(code_of(f.fb->open_read("objects/ab/o")) == Code::io);
    CHECK(code_of(f.fb->list("objects/ab")) == Code::io);
    CHECK_FALSE(f.fb->exists("objects/ab/o"));
    CHECK(text(*f.fb->read("journal/d/1", 10)) == "seg");
    f.fb->fail_reads(nullptr);
    CHECK(text(*f.fb->read("objects/ab/o", 10)) == "obj");

    f.fb->fail_writes([](std::string_view rel) { return rel.starts_with("journal/"); });
    CHECK(code_of(f.fb->write_new("journal/d/2", bytes_of("x"))) == Code::io);
    CHECK(f.fb->write_new("objects/ab/p", bytes_of("p")).ok());
    CHECK_FALSE(f.fb->power_is_cut());
    CHECK_FALSE(f.mem->exists("journal/d/2"));
}

TEST_CASE("fault backend: an attached power switch decides instead of its own") {
    Faulty f;
    int budget = 2, asked = 0;
    f.fb->attach_power([&] {
        ++asked;
        return budget-- > 0;
    });
    CHECK(f.fb->write_new("a", bytes_of("a")).ok());
    CHECK(f.fb->sync_dir("").ok());
    CHECK(code_of(f.fb->write_new("b", bytes_of("b"))) == Code::io);
    CHECK(asked == 3);
    CHECK(f.fb->mutating_calls() == 2);
    CHECK_FALSE(f.mem->exists("b"));
}
