#include <doctest/doctest.h>

#include <string>

#include "fuse/report_once.h"

TEST_CASE("report_once: a message is reported the first time only, within a bounded memory") {
    coffer::fuse::ReportOnce once(3);
    CHECK(once.first("read: tampered: a"));
    CHECK_FALSE(once.first("read: tampered: a"));
    CHECK(once.first("read: tampered: b"));
    CHECK(once.first("getattr: tampered: a"));  // another operation, another line
    CHECK_FALSE(once.first("read: tampered: b"));
    // Full: it starts over rather than grow.
    CHECK(once.first("read: tampered: c"));
    CHECK(once.first("read: tampered: a"));
    CHECK_FALSE(once.first("read: tampered: c"));
}
