// The batch and savepoints: the only place the index's transactions are
// opened, committed and rolled back, and so the place the caches are dropped.
#include "db.h"
#include "coffer/index/index.h"

namespace coffer::index {

Index::Index(std::unique_ptr<Db> db) : db_(std::move(db)) {}

Index::~Index() {
    if (batch_) (void)db_->exec("ROLLBACK");
}

void Index::forget_cached() {
    node_cache_.clear();
    ino_cache_.clear();
    alloc_cache_.clear();
}

Status Index::begin_batch() {
    if (batch_) {
        // SQLite rolled the batch back on its own (an I/O error, a full
        // disk): nothing may be written in autocommit mode behind the
        // staging log's fsync. The loss is reported by the next commit.
        if (sqlite3_get_autocommit(db_->raw()))
            return Error{Code::io, EIO, "index: the batch was rolled back by an earlier error"};
        return {};
    }
    COFFER_TRY(db_->exec("BEGIN IMMEDIATE"));
    batch_ = true;
    return {};
}

// An error inside the batch (a full disk, an I/O error) may make SQLite roll
// the whole transaction back on its own: it is then in autocommit mode again.
Status Index::commit_batch() {
    if (!batch_) return {};
    Status st = sqlite3_get_autocommit(db_->raw())
                    ? Status(make_error(Code::io, "index: the batch was rolled back by an earlier error"))
                    : db_->exec("COMMIT");
    if (!st.ok() && sqlite3_get_autocommit(db_->raw())) {
        batch_ = false;
        forget_cached();
    }
    if (st.ok()) batch_ = false;
    return st;
}

void Index::rollback_batch() {
    if (batch_ && !sqlite3_get_autocommit(db_->raw())) (void)db_->exec("ROLLBACK");
    batch_ = false;
    forget_cached();
}

Savepoint::~Savepoint() {
    if (!open_) return;
    (void)ix_.db_->exec("ROLLBACK TO op");
    (void)ix_.db_->exec("RELEASE op");
    ix_.forget_cached();  // it may hold rows of the rolled-back operation
}

Status Savepoint::begin() {
    COFFER_TRY(ix_.begin_batch());
    // Prepared once: every operation opens and releases a savepoint.
    COFFER_TRY(ix_.db_->cached("SAVEPOINT op").exec());
    open_ = true;
    return {};
}

Status Savepoint::commit() {
    open_ = false;
    return ix_.db_->cached("RELEASE op").exec();
}

Batch::~Batch() {
    if (open_) ix_.rollback_batch();
}

Status Batch::begin() {
    if (ix_.in_batch()) return make_error(Code::internal, "index: a batch is already open");
    COFFER_TRY(ix_.begin_batch());
    open_ = true;
    return {};
}

Status Batch::commit() {
    COFFER_TRY(ix_.commit_batch());
    open_ = false;
    return {};
}

}  // namespace coffer::index
