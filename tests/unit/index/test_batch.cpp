// The index's transactions: the batch, savepoints (nested as the vfs nests
// them), and the node cache staying true to SQLite on every rollback.
#include <doctest/doctest.h>

#include <sys/stat.h>

#include "index/db.h"
#include "coffer/index/index.h"
#include "../test_support.h"

namespace coffer::index {
// The connection under an Index, for checks the API does not offer.
struct IndexTestAccess {
    static Db& db(Index& ix) { return *ix.db_; }
};
}  // namespace coffer::index

using namespace coffer;
using namespace coffer::index;
using coffer::testing::TempDir;

namespace {

Id128 gid(uint8_t seed) {
    Id128 id;
    id.b.fill(seed);
    return id;
}
NodeRow file_row(uint8_t seed, uint64_t size) {
    NodeRow n;
    n.gid = gid(seed);
    n.mode = S_IFREG | 0644;
    n.nlink = 1;
    n.size = size;
    return n;
}

struct Fixture {
    TempDir dir;
    std::unique_ptr<Index> ix;
    Fixture() { reopen(); }
    void reopen() {
        ix.reset();
        auto r = Index::open(dir.str() + "/index.db");
        REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message()));
        ix = std::move(r).value();
    }
    uint64_t size_of(Ino ino) {
        auto n = ix->node(ino);
        REQUIRE(n.ok());
        REQUIRE(n->has_value());
        return (*n)->size;
    }
    bool has(Ino ino) {
        auto n = ix->node(ino);
        REQUIRE(n.ok());
        return n->has_value();
    }
    // A node committed before the test's own changes.
    Ino committed_node(uint8_t seed, uint64_t size) {
        REQUIRE(ix->begin_batch().ok());
        auto ino = ix->insert_node(file_row(seed, size));
        REQUIRE(ino.ok());
        REQUIRE(ix->commit_batch().ok());
        return *ino;
    }
};

}  // namespace

TEST_CASE("batch: begin and commit; every commit is durable (synchronous=FULL)") {
    Fixture f;
    CHECK_FALSE(f.ix->in_batch());
    CHECK(f.ix->commit_batch().ok());  // nothing open: nothing to do
    REQUIRE(f.ix->begin_batch().ok());
    CHECK(f.ix->in_batch());
    REQUIRE(f.ix->begin_batch().ok());  // joins the open batch
    REQUIRE(f.ix->set_meta_int("x", 7).ok());
    {
        auto sync = IndexTestAccess::db(*f.ix).prepare("PRAGMA synchronous");
        REQUIRE(sync.ok());
        REQUIRE(*sync->step());
        CHECK(sync->col_int(0) == 2);  // FULL: the WAL is synced at every COMMIT
    }
    REQUIRE(f.ix->commit_batch().ok());
    CHECK_FALSE(f.ix->in_batch());
    f.reopen();
    CHECK(*f.ix->meta_int("x", 0) == 7);
}

TEST_CASE("batch: an Index closed with its batch open loses the batch") {
    Fixture f;
    REQUIRE(f.ix->begin_batch().ok());
    REQUIRE(f.ix->set_meta_int("x", 7).ok());
    f.reopen();
    CHECK(*f.ix->meta_int("x", 0) == 0);
}

TEST_CASE("batch: rollback_batch drops the rows and the cached ones") {
    Fixture f;
    Ino a = f.committed_node(1, 10);
    REQUIRE(f.ix->begin_batch().ok());
    auto n = f.ix->node(a);
    REQUIRE(n.ok());
    NodeRow row = **n;
    row.size = 99;
    REQUIRE(f.ix->update_node(row).ok());
    auto b = f.ix->insert_node(file_row(2, 5));
    REQUIRE(b.ok());
    CHECK(f.size_of(a) == 99);
    f.ix->rollback_batch();
    CHECK_FALSE(f.ix->in_batch());
    CHECK(f.size_of(a) == 10);
    CHECK_FALSE(f.has(*b));
}

TEST_CASE("batch: a batch SQLite rolled back on its own is reported lost, and the cache follows") {
    Fixture f;
    Ino a = f.committed_node(1, 10);
    REQUIRE(f.ix->begin_batch().ok());
    REQUIRE(f.ix->update_size_times(a, 77, 1, 1, true).ok());
    CHECK(f.size_of(a) == 77);
    // What a full disk or an I/O error inside the batch can do.
    REQUIRE(IndexTestAccess::db(*f.ix).exec("ROLLBACK").ok());
    auto st = f.ix->commit_batch();
    CHECK_FALSE(st.ok());
    CHECK_FALSE(f.ix->in_batch());
    CHECK(f.size_of(a) == 10);
    // The next batch starts afresh.
    REQUIRE(f.ix->begin_batch().ok());
    REQUIRE(f.ix->update_size_times(a, 11, 1, 1, true).ok());
    REQUIRE(f.ix->commit_batch().ok());
    f.reopen();
    CHECK(f.size_of(a) == 11);
}

TEST_CASE("savepoint: begin opens the batch; commit keeps the changes for the batch's commit") {
    Fixture f;
    {
        Savepoint sp(*f.ix);
        REQUIRE(sp.begin().ok());
        CHECK(sp.open());
        CHECK(f.ix->in_batch());
        REQUIRE(f.ix->set_meta_int("x", 3).ok());
        REQUIRE(sp.commit().ok());
        CHECK_FALSE(sp.open());
    }
    CHECK(f.ix->in_batch());
    REQUIRE(f.ix->commit_batch().ok());
    f.reopen();
    CHECK(*f.ix->meta_int("x", 0) == 3);
}

TEST_CASE("savepoint: destroyed without commit, it rolls back the rows and the node cache") {
    Fixture f;
    Ino a = f.committed_node(1, 10);
    Ino b = 0;
    {
        Savepoint sp(*f.ix);
        REQUIRE(sp.begin().ok());
        auto n = f.ix->node(a);
        REQUIRE(n.ok());
        NodeRow row = **n;
        row.size = 99;
        REQUIRE(f.ix->update_node(row).ok());  // cached as written
        auto ino = f.ix->insert_node(file_row(2, 5));
        REQUIRE(ino.ok());
        b = *ino;
        REQUIRE(f.ix->put_piece(a, StagingPiece{0, 10, 1, 0, 1, 10, 0}).ok());
        CHECK(*f.ix->allocated(a) == 10);
        CHECK(f.size_of(a) == 99);
    }
    CHECK(f.ix->in_batch());  // the batch itself stays open
    CHECK(f.size_of(a) == 10);
    CHECK_FALSE(f.has(b));
    CHECK_FALSE(f.ix->ino_of(gid(2))->has_value());
    CHECK(f.ix->all_pieces(a)->empty());
    CHECK(*f.ix->allocated(a) == 0);  // the allocation cache follows too
    REQUIRE(f.ix->commit_batch().ok());
}

TEST_CASE("savepoint: nested, an inner rollback keeps the outer's changes and vice versa") {
    Fixture f;
    Ino a = f.committed_node(1, 10);
    SUBCASE("inner rolled back, outer committed") {
        {
            Savepoint outer(*f.ix);
            REQUIRE(outer.begin().ok());
            REQUIRE(f.ix->update_size_times(a, 20, 1, 1, false).ok());
            {
                Savepoint inner(*f.ix);
                REQUIRE(inner.begin().ok());
                REQUIRE(f.ix->update_size_times(a, 30, 1, 1, false).ok());
                CHECK(f.size_of(a) == 30);
            }
            CHECK(f.size_of(a) == 20);
            REQUIRE(outer.commit().ok());
        }
        REQUIRE(f.ix->commit_batch().ok());
        f.reopen();
        CHECK(f.size_of(a) == 20);
    }
    SUBCASE("inner committed, outer rolled back") {
        {
            Savepoint outer(*f.ix);
            REQUIRE(outer.begin().ok());
            REQUIRE(f.ix->update_size_times(a, 20, 1, 1, false).ok());
            Savepoint inner(*f.ix);
            REQUIRE(inner.begin().ok());
            REQUIRE(f.ix->update_size_times(a, 30, 1, 1, false).ok());
            REQUIRE(inner.commit().ok());
        }
        CHECK(f.size_of(a) == 10);
        REQUIRE(f.ix->commit_batch().ok());
        f.reopen();
        CHECK(f.size_of(a) == 10);
    }
}

TEST_CASE("batch: the scoped Batch rolls back unless committed, and does not join an open batch") {
    Fixture f;
    Ino a = f.committed_node(1, 10);
    {
        Batch b(*f.ix);
        REQUIRE(b.begin().ok());
        REQUIRE(f.ix->update_size_times(a, 50, 1, 1, false).ok());
        CHECK(f.size_of(a) == 50);
    }
    CHECK_FALSE(f.ix->in_batch());
    CHECK(f.size_of(a) == 10);
    {
        Batch b(*f.ix);
        REQUIRE(b.begin().ok());
        REQUIRE(f.ix->update_size_times(a, 60, 1, 1, false).ok());
        REQUIRE(b.commit().ok());
    }
    f.reopen();
    CHECK(f.size_of(a) == 60);

    REQUIRE(f.ix->begin_batch().ok());
    Batch nested(*f.ix);
    auto st = nested.begin();
    REQUIRE_FALSE(st.ok());
    CHECK(st.error().code == Code::internal);
    CHECK(f.ix->in_batch());  // the open batch is not touched
}

TEST_CASE("index: heads() reports a malformed applied-segment row instead of a zero head") {
    Fixture f;
    uint8_t hash[32] = {1};
    REQUIRE(f.ix->add_segment(gid(1), 1, ByteSpan(hash, 32)).ok());
    REQUIRE(f.ix->heads().ok());
    REQUIRE(f.ix->add_segment(gid(2), 1, ByteSpan(hash, 5)).ok());
    auto h = f.ix->heads();
    REQUIRE_FALSE(h.ok());
    CHECK(h.error().code == Code::corrupt);
}

TEST_CASE("batch: after SQLite rolled the batch back, no savepoint writes in autocommit until the loss is reported") {
    Fixture f;
    Ino a = f.committed_node(1, 10);
    REQUIRE(f.ix->begin_batch().ok());
    REQUIRE(f.ix->update_size_times(a, 77, 1, 1, true).ok());
    REQUIRE(IndexTestAccess::db(*f.ix).exec("ROLLBACK").ok());  // as a full disk or an I/O error can
    // An operation must not start: in autocommit mode its RELEASE would
    // commit at once, ahead of the staging log's fsync.
    {
        Savepoint sp(*f.ix);
        auto begun = sp.begin();
        CHECK_FALSE(begun.ok());
        if (!begun.ok()) CHECK(begun.error().code == Code::io);
    }
    CHECK(f.ix->begin_batch().error().code == Code::io);
    CHECK(f.ix->in_batch());  // still owed a report: the next commit gives it
    CHECK_FALSE(f.ix->commit_batch().ok());
    CHECK_FALSE(f.ix->in_batch());
    CHECK(f.size_of(a) == 10);
    {
        Savepoint sp(*f.ix);
        REQUIRE(sp.begin().ok());
        REQUIRE(f.ix->update_size_times(a, 12, 1, 1, true).ok());
        REQUIRE(sp.commit().ok());
    }
    REQUIRE(f.ix->commit_batch().ok());
    f.reopen();
    CHECK(f.size_of(a) == 12);
}
