#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "coffer/util/parallel.h"

using namespace coffer;

TEST_CASE("parallel: for_ranges covers every index exactly once and reports failures") {
    for (size_t n : {0u, 1u, 7u, 16u, 17u, 1000u, 4099u}) {
        std::vector<std::atomic<int>> seen(n);
        std::mutex mu;
        std::set<std::thread::id> threads;
        bool ok = par::for_ranges(n, 8, [&](size_t b, size_t e) {
            REQUIRE(b < e);
            REQUIRE(e <= n);
            for (size_t i = b; i < e; ++i) seen[i] += 1;
            std::lock_guard lk(mu);
            threads.insert(std::this_thread::get_id());
            return true;
        });
        CHECK(ok);
        for (size_t i = 0; i < n; ++i) CHECK(seen[i].load() == 1);
        // Work too small to split stays on the calling thread.
        if (n < 16) CHECK(threads.size() <= 1);
        if (n >= 16 && std::thread::hardware_concurrency() > 1) CHECK(threads.size() >= 2);
    }
    // One failing share fails the whole call (and every share still runs).
    std::atomic<size_t> covered{0};
    bool ok = par::for_ranges(1000, 8, [&](size_t b, size_t e) {
        covered += e - b;
        return b != 0;
    });
    CHECK_FALSE(ok);
    CHECK(covered.load() == 1000);
}
