// vfs::ChangeGate on its own: which fills it refuses, and which changes wait
// for fills. Waiting is observed with a thread and bounded waits: a change
// that should wait must still be pending after a short while, and must
// finish promptly once the fill is gone.
#include <doctest/doctest.h>

#include <chrono>
#include <future>
#include <memory>
#include <optional>
#include <thread>

#include "vfs/change_gate.h"

using coffer::vfs::ChangeGate;
using namespace std::chrono_literals;

namespace {

// How long a change that must wait is watched (it must not finish), and how
// long one that must not wait (or no longer waits) may take at most.
constexpr auto kStillWaiting = 100ms;
constexpr auto kPrompt = 10s;

// begin_change(ino) on its own thread; the Change ends there right away. The
// thread is detached and owns a share of the gate, so a change that never
// returns fails the test instead of hanging it (a std::async future would
// block in its destructor).
std::future<void> change_in_thread(const std::shared_ptr<ChangeGate>& gate, ChangeGate::Ino ino) {
    std::packaged_task<void()> task([gate, ino] { auto c = gate->begin_change(ino); });
    auto done = task.get_future();
    std::thread(std::move(task)).detach();
    return done;
}

bool finishes(std::future<void>& f, std::chrono::milliseconds within) {
    return f.wait_for(within) == std::future_status::ready;
}

}  // namespace

TEST_CASE("change gate: generation increases as a change starts and as it ends") {
    ChangeGate g;
    const uint64_t g0 = g.generation();
    {
        auto c = g.begin_change(1);
        CHECK(g.generation() == g0 + 1);
        // Moving a change neither ends it nor starts another.
        ChangeGate::Change moved = std::move(c);
        CHECK(g.generation() == g0 + 1);
    }
    CHECK(g.generation() == g0 + 2);

    SUBCASE("assigning over a running change ends it") {
        auto a = g.begin_change(1);
        CHECK(g.generation() == g0 + 3);
        a = g.begin_change(2);
        CHECK(g.generation() == g0 + 5);  // 2 started, 1 ended
        CHECK(g.try_fill(1, g.generation()).has_value());
        CHECK_FALSE(g.try_fill(2, g.generation()).has_value());
    }
    SUBCASE("a default Change is nothing") {
        ChangeGate::Change none;
        none = ChangeGate::Change();
        CHECK(g.generation() == g0 + 2);
    }
}

TEST_CASE("change gate: a fill is refused after a change started or ended since its generation") {
    ChangeGate g;
    CHECK(g.try_fill(1, g.generation()).has_value());

    const uint64_t before = g.generation();
    std::optional<ChangeGate::Change> c = g.begin_change(2);
    // A change of another file still makes an older read's bytes suspect.
    CHECK_FALSE(g.try_fill(1, before).has_value());
    const uint64_t during = g.generation();
    // A read that started while the change of 2 ran may fill 1 (not 2).
    CHECK(g.try_fill(1, during).has_value());
    c.reset();
    CHECK_FALSE(g.try_fill(1, during).has_value());
    CHECK_FALSE(g.try_fill(1, before).has_value());
    CHECK(g.try_fill(1, g.generation()).has_value());
    CHECK(g.try_fill(2, g.generation()).has_value());
}

TEST_CASE("change gate: no fill of an inode while a change of it runs") {
    ChangeGate g;
    std::optional<ChangeGate::Change> a = g.begin_change(7);
    std::optional<ChangeGate::Change> b = g.begin_change(7);  // two at once do not wait for each other
    CHECK_FALSE(g.try_fill(7, g.generation()).has_value());
    CHECK(g.try_fill(8, g.generation()).has_value());
    a.reset();
    CHECK_FALSE(g.try_fill(7, g.generation()).has_value());  // b still runs
    b.reset();
    CHECK(g.try_fill(7, g.generation()).has_value());
}

TEST_CASE("change gate: a change of an inode waits while a fill of it runs") {
    auto g = std::make_shared<ChangeGate>();
    std::optional<ChangeGate::Fill> f1 = g->try_fill(1, g->generation());
    std::optional<ChangeGate::Fill> f2 = g->try_fill(1, g->generation());
    REQUIRE(f1.has_value());
    REQUIRE(f2.has_value());
    const uint64_t g0 = g->generation();

    auto change = change_in_thread(g, 1);
    CHECK_FALSE(finishes(change, kStillWaiting));
    CHECK(g->generation() == g0);  // a waiting change has not started

    f1.reset();
    CHECK_FALSE(finishes(change, kStillWaiting));  // the second fill still runs
    f2.reset();
    REQUIRE(finishes(change, kPrompt));
    CHECK(g->generation() == g0 + 2);
}

TEST_CASE("change gate: a change of another inode does not wait for a fill") {
    auto g = std::make_shared<ChangeGate>();
    std::optional<ChangeGate::Fill> f = g->try_fill(1, g->generation());
    REQUIRE(f.has_value());
    auto other = change_in_thread(g, 2);
    CHECK(finishes(other, kPrompt));
    auto same = change_in_thread(g, 1);
    CHECK_FALSE(finishes(same, kStillWaiting));
    f.reset();
    CHECK(finishes(same, kPrompt));
}

TEST_CASE("change gate: a moved fill keeps holding the change off, and ends once") {
    auto g = std::make_shared<ChangeGate>();
    std::optional<ChangeGate::Fill> f = g->try_fill(3, g->generation());
    REQUIRE(f.has_value());
    std::optional<ChangeGate::Fill> moved(std::move(*f));
    f.reset();  // the moved-from fill ends nothing
    auto change = change_in_thread(g, 3);
    CHECK_FALSE(finishes(change, kStillWaiting));
    moved.reset();
    CHECK(finishes(change, kPrompt));
}
