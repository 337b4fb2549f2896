// What `coffer status`, `conflicts` and `devices` print (src/cli/queries.*):
// the lines themselves, and the answers over real replicas of one vault.
#include <doctest/doctest.h>

#include <fcntl.h>

#include "../vfs/core_fixture.h"
#include "cli/args.h"
#include "cli/control.h"
#include "cli/queries.h"

namespace coffer::testing {
namespace {

using cli::Query;

Id128 id_of(uint8_t b) {
    Id128 id;
    id.b.fill(b);
    return id;
}

constexpr uint64_t kDay = 24ull * 3600 * 1000;
// 2026-11-28 12:34:56 UTC
constexpr uint64_t kWhen = 1795869296000ull;

vfs::DeviceInfo dev(const std::string& name, uint8_t id, uint64_t seq, uint64_t ms, bool self = false) {
    return vfs::DeviceInfo{id_of(id), name, seq, ms << 16, self};
}

cli::Parsed parse(std::vector<std::string> words) {
    std::vector<const char*> argv = {"coffer"};
    for (auto& w : words) argv.push_back(w.c_str());
    return cli::parse_args(static_cast<int>(argv.size()), argv.data());
}

struct Device {
    TempDir state;
    std::unique_ptr<vfs::Filesystem> fs;
    vfs::Ctx ctx{1000, 1000, 022};
    Device(VaultEnv& env, const std::string& name) {
        vfs::Options o;
        o.state_dir = state.str();
        o.device_name = name;
        auto f = vfs::Filesystem::open(*env.vault, env.header, env.master.clone(), o);
        REQUIRE_MESSAGE(f.ok(), (f.ok() ? "" : f.error().message()));
        fs = std::move(f).value();
    }
    void sync() {
        auto s = sync::sync(fs->replica());
        REQUIRE_MESSAGE(s.ok(), (s.ok() ? "" : s.error().message()));
    }
    void write(std::string_view name, std::string_view content) {
        auto e = fs->peek(vfs::kRootIno, name);
        vfs::Ino ino;
        uint64_t fh;
        if (e.ok()) {
            ino = e->ino;
            auto o = fs->open(ino, O_RDWR);
            REQUIRE(o.ok());
            fh = *o;
        } else {
            auto c = fs->create(vfs::kRootIno, name, 0644, O_RDWR, ctx);
            REQUIRE(c.ok());
            ino = c->attr.ino;
            fh = c->fh;
        }
        REQUIRE(fs->write(ino, fh, 0, as_bytes(content)).ok());
        REQUIRE(fs->release(ino, fh).ok());
    }
    std::vector<std::string> ask(Query q, uint64_t now = cli::now_ms()) {
        auto r = cli::answer_query(fs->replica(), q, now);
        REQUIRE_MESSAGE(r.ok(), (r.ok() ? "" : r.error().message()));
        return *r;
    }
};

}  // namespace

TEST_CASE("queries: parse status --digest, conflicts, devices with a mountpoint or a vault") {
    auto p = parse({"status", "--digest", "V", "--state", "S", "--password-file", "F"});
    REQUIRE(p.args);
    CHECK(p.args->command == cli::Command::status);
    CHECK(p.args->digest);
    CHECK(p.args->target == "V");
    CHECK(p.args->state_dir == "S");
    CHECK(p.args->password_file == "F");
    p = parse({"status", "M"});
    REQUIRE(p.args);
    CHECK_FALSE(p.args->digest);
    CHECK(p.args->target == "M");
    p = parse({"conflicts", "M"});
    REQUIRE(p.args);
    CHECK(p.args->command == cli::Command::conflicts);
    CHECK(p.args->target == "M");
    p = parse({"devices", "V", "--recovery-key-file", "K", "--state", "S"});
    REQUIRE(p.args);
    CHECK(p.args->command == cli::Command::devices);
    CHECK(p.args->recovery_key_file == "K");
    p = parse({"sync", "V", "--device-name", "laptop"});
    REQUIRE(p.args);
    CHECK(p.args->device_name == "laptop");
    CHECK(parse({"devices"}).exit_code == cli::kExitUsage);
    CHECK(parse({"conflicts", "V", "--password-file", "F", "--recovery-key-file", "K"}).exit_code == cli::kExitUsage);
}

TEST_CASE("queries: control commands") {
    for (Query q : {Query::digest, Query::conflicts, Query::devices}) CHECK(cli::query_of(cli::command_of(q)) == q);
    CHECK_FALSE(cli::query_of("status"));
    CHECK_FALSE(cli::query_of("Digest"));
}

TEST_CASE("queries: utc_time and wire_form") {
    CHECK(cli::utc_time(kWhen) == "2026-11-28 12:34:56 UTC");
    CHECK(cli::utc_time(0) == "1970-01-01 00:00:00 UTC");
    CHECK(cli::wire_form("a\\b c") == "a\\b c");
    CHECK(cli::wire_form("a\nb") == "a\\x0ab");
    // What a command prints without a daemon equals what the client shows of the daemon's line.
    for (std::string s : {"plain", "back\\slash", "new\nline", "esc\x1b[2J"}) {
        auto reply = cli::parse_reply(cli::wire_form(s) + "\nok\n");
        REQUIRE(reply.ok());
        REQUIRE(reply->lines.size() == 1);
        CHECK(reply->lines[0] == cli::printable(cli::wire_form(s)));
    }
}

TEST_CASE("queries: device lines: this device first, last seen from the clock, silent after 30 days") {
    std::vector<vfs::DeviceInfo> d = {
        dev("old-pc", 3, 7, kWhen - 40 * kDay),
        dev("desktop", 2, 12, kWhen - 29 * kDay),
        dev("laptop", 1, 5, kWhen - 1000, true),
        dev("new", 4, 0, 0),
    };
    auto lines = cli::device_lines(d, kWhen);
    REQUIRE(lines.size() == 4);
    CHECK(lines[0] == "laptop   " + id_of(1).hex() + "  last segment 5  last seen 2026-11-28 12:34:55 UTC  (this device)");
    CHECK(lines[1] == "desktop  " + id_of(2).hex() + "  last segment 12  last seen 2026-10-30 12:34:56 UTC");
    CHECK(lines[2] == "new      " + id_of(4).hex() + "  no segment yet");
    CHECK(lines[3] == "old-pc   " + id_of(3).hex() +
                          "  last segment 7  last seen 2026-10-19 12:34:56 UTC  silent since 2026-10-19");
    // This device is never silent: it is the one asking.
    auto self_old = cli::device_lines({dev("me", 1, 2, kWhen - 90 * kDay, true)}, kWhen);
    REQUIRE(self_old.size() == 1);
    CHECK(self_old[0].find("silent") == std::string::npos);
    // A name with a newline cannot split the reply.
    auto odd = cli::device_lines({dev("a\nb", 5, 1, kWhen)}, kWhen);
    REQUIRE(odd.size() == 1);
    CHECK(odd[0].find('\n') == std::string::npos);
}

TEST_CASE("queries: status lines count conflicts and list each waiting segment") {
    sync::Summary s;
    s.device = id_of(1).hex();
    s.device_name = "laptop";
    s.pending_ops = 3;
    s.conflicts = 2;
    s.waiting = {"journal/aa/0000000000000002: waits for journal/bb/0000000000000001"};
    auto lines = cli::status_lines(s);
    REQUIRE(lines.size() == 7);
    CHECK(lines[0] == "device:                 laptop (" + id_of(1).hex() + ")");
    CHECK(lines[1] == "pending operations:     3");
    CHECK(lines[4] == "conflict copies:        2");
    CHECK(lines[5] == "waiting segments:       1");
    CHECK(lines[6] == "  journal/aa/0000000000000002: waits for journal/bb/0000000000000001");
}

TEST_CASE("queries: two devices on one vault: digest, conflicts, devices") {
    VaultEnv env;
    Device laptop(env, "laptop");
    Device desktop(env, "desktop");
    laptop.write("note.txt", "base\n");
    laptop.sync();
    desktop.sync();
    CHECK(laptop.ask(Query::conflicts).empty());
    REQUIRE(laptop.ask(Query::digest).size() == 1);
    CHECK(laptop.ask(Query::digest) == desktop.ask(Query::digest));
    CHECK(laptop.ask(Query::digest)[0].size() == 64);

    laptop.write("note.txt", "laptop's edit\n");
    desktop.write("note.txt", "desktop's edit\n");
    laptop.sync();
    desktop.sync();
    laptop.sync();
    auto a = laptop.ask(Query::conflicts);
    auto b = desktop.ask(Query::conflicts);
    REQUIRE(a.size() == 1);
    CHECK(a == b);
    CHECK(a[0].starts_with("note (conflict "));
    CHECK(a[0].ends_with(").txt"));
    CHECK(laptop.ask(Query::digest) == desktop.ask(Query::digest));

    auto devs = laptop.ask(Query::devices);
    REQUIRE(devs.size() == 2);
    CHECK(devs[0].starts_with("laptop "));
    CHECK(devs[0].ends_with("(this device)"));
    CHECK(devs[1].starts_with("desktop "));
    CHECK(devs[1].find("last segment ") != std::string::npos);
    CHECK(devs[1].find("(this device)") == std::string::npos);
    // Seen from 31 days on, the other device is silent; this one is not.
    auto later = laptop.ask(Query::devices, cli::now_ms() + 31 * kDay);
    CHECK(later[1].find("silent since ") != std::string::npos);
    CHECK(later[0].find("silent") == std::string::npos);

    // Deleting the copy resolves it.
    REQUIRE(laptop.fs->unlink(vfs::kRootIno, a[0]).ok());
    CHECK(laptop.ask(Query::conflicts).empty());
    laptop.sync();
    desktop.sync();
    CHECK(desktop.ask(Query::conflicts).empty());
    CHECK(laptop.ask(Query::digest) == desktop.ask(Query::digest));
}

}  // namespace coffer::testing
