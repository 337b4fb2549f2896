// vfs::HlcClock on its own: timestamps only move forward, whatever the wall
// clock does, and the milliseconds sit in the high 48 bits.
#include <doctest/doctest.h>

#include "vfs/clock.h"

using coffer::vfs::HlcClock;

TEST_CASE("hlc clock: the high 48 bits are the wall-clock milliseconds") {
    HlcClock c;
    const uint64_t ms = 1'700'000'000'123;
    const auto h = c.next_at(ms);
    CHECK((h >> 16) == ms);
    CHECK((h & 0xffff) == 0);
    CHECK(c.last() == h);
    const auto later = c.next_at(ms + 5);
    CHECK(later == (ms + 5) << 16);
}

TEST_CASE("hlc clock: monotonic when wall time stays the same or goes backwards") {
    HlcClock c;
    const uint64_t ms = 1'700'000'000'000;
    const auto h0 = c.next_at(ms);
    const auto h1 = c.next_at(ms);
    const auto h2 = c.next_at(ms - 1000);
    const auto h3 = c.next_at(ms - 1);
    CHECK(h1 > h0);
    CHECK(h2 > h1);
    CHECK(h3 > h2);
    CHECK((h1 >> 16) == ms);  // the counter absorbs it, the milliseconds stay
    CHECK((h3 >> 16) == ms);
    CHECK(c.last() == h3);
    // Wall time catching up resets to it.
    CHECK(c.next_at(ms + 1) == (ms + 1) << 16);
}

TEST_CASE("hlc clock: observing a later time makes the next one later than it") {
    HlcClock c;
    const uint64_t ms = 1'700'000'000'000;
    c.next_at(ms);
    const coffer::format::Hlc seen = ((ms + 60'000) << 16) | 7;  // another device runs a minute ahead
    c.observe(seen);
    CHECK(c.last() == seen);
    const auto n = c.next_at(ms + 1);
    CHECK(n > seen);
    // An older observation does not pull the clock back.
    c.observe(ms << 16);
    CHECK(c.last() == n);
    CHECK(c.next_at(ms + 2) > n);
}

TEST_CASE("hlc clock: next() follows the wall clock") {
    HlcClock c;
    const uint64_t before = static_cast<uint64_t>(coffer::vfs::now_ns() / 1000000);
    const auto h = c.next();
    const uint64_t after = static_cast<uint64_t>(coffer::vfs::now_ns() / 1000000);
    CHECK((h >> 16) >= before);
    CHECK((h >> 16) <= after);
    CHECK(c.next() > h);
}
