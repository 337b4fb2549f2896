// The coffer command line: parsing, exit codes, secret files, socket paths,
// the control protocol and the mount table.
#include <doctest/doctest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/control.h"
#include "cli/secrets.h"
#include "coffer/crypto/crypto.h"
#include "coffer/format/slots.h"

using namespace coffer;
using namespace coffer::cli;

namespace {

Parsed parse(std::vector<std::string> words) {
    std::vector<const char*> argv = {"coffer"};
    for (auto& w : words) argv.push_back(w.c_str());
    return parse_args(static_cast<int>(argv.size()), argv.data());
}

// A fresh folder under /tmp, removed with everything in it.
struct TempDir {
    std::string path;
    TempDir() {
        char tmpl[] = "/tmp/coffer-cli-test-XXXXXX";
        path = ::mkdtemp(tmpl);
    }
    ~TempDir() { (void)!std::system(("rm -rf '" + path + "'").c_str()); }
    std::string file(const std::string& name, const std::string& content) const {
        std::string p = path + "/" + name;
        std::ofstream(p, std::ios::binary) << content;
        return p;
    }
};

std::string str(const crypto::SecretBytes& s) { return std::string(reinterpret_cast<const char*>(s.data()), s.size()); }

}  // namespace

TEST_CASE("parse: every subcommand of the spec") {
    auto p = parse({"init", "V", "--password-file", "F", "--recovery-key-file", "OUT", "--insecure-fast-kdf"});
    REQUIRE(p.args);
    CHECK(p.args->command == Command::init);
    CHECK(p.args->vault == "V");
    CHECK(p.args->password_file == "F");
    CHECK(p.args->recovery_key_file == "OUT");
    CHECK(p.args->insecure_fast_kdf);
    CHECK(p.args->block_size == 0);
    p = parse({"init", "V", "--block-size", "65536"});
    REQUIRE(p.args);
    CHECK(p.args->block_size == 65536);
    CHECK(p.args->extent_size == 0);
    p = parse({"init", "V", "--extent-size", "1048576"});
    REQUIRE(p.args);
    CHECK(p.args->extent_size == 1048576);

    p = parse({"mount", "V", "M", "--password-file", "F", "--state", "S", "--foreground", "--read-only", "-o",
               "no_writeback_cache"});
    REQUIRE(p.args);
    CHECK_FALSE(p.args->writeback_cache);
    p = parse({"mount", "V", "M", "--password-file", "F", "--state", "S", "--foreground", "--read-only", "-o",
               "allow_other,no_writeback_cache,writeback_cache"});
    REQUIRE(p.args);
    CHECK(p.args->writeback_cache);  // the last one counts
    p = parse({"mount", "V", "M", "--password-file", "F", "--state", "S", "--foreground", "--read-only"});
    REQUIRE(p.args);
    CHECK(p.args->writeback_cache);  // the default
    REQUIRE(p.args);
    CHECK(p.args->command == Command::mount);
    CHECK(p.args->vault == "V");
    CHECK(p.args->mountpoint == "M");
    CHECK(p.args->state_dir == "S");
    CHECK(p.args->foreground);
    CHECK(p.args->read_only);

    p = parse({"unmount", "M"});
    REQUIRE(p.args);
    CHECK(p.args->command == Command::unmount);
    CHECK(p.args->mountpoint == "M");

    p = parse({"sync", "X", "--recovery-key-file", "K", "--state", "S"});
    REQUIRE(p.args);
    CHECK(p.args->command == Command::sync);
    CHECK(p.args->target == "X");
    CHECK(p.args->recovery_key_file == "K");

    p = parse({"status", "M"});
    REQUIRE(p.args);
    CHECK(p.args->command == Command::status);

    p = parse({"info", "V"});
    REQUIRE(p.args);
    CHECK(p.args->command == Command::info);

    p = parse({"passwd", "V", "--password-file", "F", "--new-password-file", "N", "--insecure-fast-kdf"});
    REQUIRE(p.args);
    CHECK(p.args->command == Command::passwd);
    CHECK(p.args->new_password_file == "N");

    p = parse({"fsck", "V", "--password-file", "F"});
    REQUIRE(p.args);
    CHECK(p.args->command == Command::fsck);
}

TEST_CASE("parse: -o options split on commas; -o takes one value and not the positionals") {
    auto p = parse({"mount", "-o", "allow_other,ro,noatime", "V", "M", "-o", "max_read=65536,rw"});
    REQUIRE(p.args);
    CHECK(p.args->vault == "V");
    CHECK(p.args->mountpoint == "M");
    CHECK(p.args->allow_other);
    CHECK(p.args->read_only);
    CHECK(p.args->fuse_options == std::vector<std::string>{"noatime", "max_read=65536"});

    p = parse({"mount", "V", "M", "-o", "fsname=evil"});
    CHECK_FALSE(p.args);
    CHECK(p.exit_code == kExitUsage);
}

TEST_CASE("parse: -o read_ahead_kb takes KiB from 0 to 65536") {
    auto p = parse({"mount", "V", "M"});
    REQUIRE(p.args);
    CHECK_FALSE(p.args->read_ahead_kb.has_value());  // the session's default
    p = parse({"mount", "V", "M", "-o", "read_ahead_kb=4096,allow_other"});
    REQUIRE(p.args);
    REQUIRE(p.args->read_ahead_kb.has_value());
    CHECK(*p.args->read_ahead_kb == 4096);
    CHECK(p.args->fuse_options.empty());  // not passed on to libfuse
    p = parse({"mount", "V", "M", "-o", "read_ahead_kb=0"});
    REQUIRE(p.args);
    CHECK(*p.args->read_ahead_kb == 0);
    for (const char* bad : {"read_ahead_kb=", "read_ahead_kb=-1", "read_ahead_kb=12k", "read_ahead_kb=65537",
                            "read_ahead_kb= 5", "read_ahead_kb=99999999999999999999"}) {
        CAPTURE(bad);
        auto b = parse({"mount", "V", "M", "-o", bad});
        CHECK_FALSE(b.args);
        CHECK(b.exit_code == kExitUsage);
    }
}

TEST_CASE("parse_mountinfo: the device of a mount point (the last mount on a path wins)") {
    auto mount_device = [](const std::string& info, const std::string& path) {
        std::string dev;
        for (const auto& m : parse_mountinfo(info))
            if (m.mountpoint == path) dev = m.device;
        return dev;
    };
    const std::string info =
        "22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/root rw\n"
        "40 22 0:51 / /mnt/a\\040b rw,nosuid,nodev shared:20 - fuse.coffer coffer:/v rw,user_id=0\n"
        "41 22 0:52 / /mnt/ab rw - fuse.coffer coffer:/w rw\n"
        "42 40 0:53 / /mnt/a\\040b rw - fuse.coffer coffer:/x rw\n"
        "broken line\n";
    CHECK(mount_device(info, "/mnt/ab") == "0:52");
    CHECK(mount_device(info, "/mnt/a b") == "0:53");  // escaped space; the last mount on top wins
    CHECK(mount_device(info, "/") == "259:2");
    CHECK(mount_device(info, "/mnt/a").empty());
    CHECK(mount_device(info, "/mnt/a\\040b").empty());  // paths are compared unescaped
    CHECK(mount_device("", "/mnt/ab").empty());
}

TEST_CASE("parse: usage errors exit 2, help exits 0") {
    for (auto words : std::vector<std::vector<std::string>>{
             {},
             {"frobnicate"},
             {"mount", "V"},
             {"init"},
             {"mount", "V", "M", "--password-file", "F", "--recovery-key-file", "K"},
             {"unmount", "M", "--bogus"},
             {"info", "V", "extra"},
         }) {
        auto p = parse(words);
        CHECK_FALSE(p.args);
        CHECK(p.exit_code == kExitUsage);
        CHECK_FALSE(p.err.empty());
    }
    auto h = parse({"--help"});
    CHECK_FALSE(h.args);
    CHECK(h.exit_code == 0);
    CHECK(h.out.find("mount") != std::string::npos);
    auto v = parse({"--version"});
    CHECK(v.exit_code == 0);
}

TEST_CASE("exit codes: one mapping, as the spec's table") {
    CHECK(exit_code_for(Code::wrong_key) == 10);
    CHECK(exit_code_for(Code::corrupt) == 11);
    CHECK(exit_code_for(Code::unsupported) == 12);
    CHECK(exit_code_for(Code::busy) == 13);
    CHECK(exit_code_for(Code::not_found) == 14);
    CHECK(exit_code_for(Code::rolled_back) == 15);
    CHECK(exit_code_for(Code::pending) == 16);
    CHECK(exit_code_for(Code::exists) == 17);
    CHECK(exit_code_for(Code::usage) == 2);
    for (Code c : {Code::io, Code::invalid, Code::permission, Code::internal, Code::no_space, Code::not_dir})
        CHECK(exit_code_for(c) == 1);
    CHECK(exit_code_for(make_error(Code::busy, "x")) == 13);
}

TEST_CASE("recovery key file: created 0600, never overwritten") {
    TempDir t;
    std::string out = t.path + "/key.txt";
    {
        auto fd = create_recovery_key_file(out);
        REQUIRE(fd.ok());
        REQUIRE(write_all(fd->get(), as_bytes("ABCDE\n")).ok());
    }
    struct stat st{};
    REQUIRE(::stat(out.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0600);

    auto again = create_recovery_key_file(out);
    REQUIRE_FALSE(again.ok());
    CHECK(again.error().code == Code::exists);
    CHECK(exit_code_for(again.error()) == kExitExists);
    std::ifstream in(out);
    std::string content;
    std::getline(in, content);
    CHECK(content == "ABCDE");  // untouched

    // A symlink planted where the key should go is refused, not followed.
    std::string link = t.path + "/link";
    REQUIRE(::symlink((t.path + "/elsewhere").c_str(), link.c_str()) == 0);
    CHECK_FALSE(create_recovery_key_file(link).ok());
    CHECK(::access((t.path + "/elsewhere").c_str(), F_OK) != 0);
}

TEST_CASE("password file: the first line, newline stripped") {
    TempDir t;
    auto pw = read_password_file(t.file("pw", "correct horse\nsecond line\n"));
    REQUIRE(pw.ok());
    CHECK(str(*pw) == "correct horse");
    pw = read_password_file(t.file("pw2", "no newline"));
    REQUIRE(pw.ok());
    CHECK(str(*pw) == "no newline");
    auto empty = read_password_file(t.file("pw3", "\nsecond"));
    REQUIRE_FALSE(empty.ok());
    CHECK(empty.error().code == Code::usage);
    auto missing = read_password_file(t.path + "/absent");
    REQUIRE_FALSE(missing.ok());
    CHECK(missing.error().code == Code::not_found);
    auto huge = read_password_file(t.file("big", std::string(kMaxSecretFile + 10, 'x')));
    CHECK_FALSE(huge.ok());
}

TEST_CASE("recovery key file: read back what init writes") {
    TempDir t;
    crypto::SecretBytes key = format::generate_recovery_key();
    crypto::SecretBytes text = format::format_recovery_key(key);
    auto parsed = read_recovery_key_file(t.file("rk", str(text) + "\n"));
    REQUIRE(parsed.ok());
    CHECK(crypto::equal(parsed->span(), key.span()));
    auto bad = read_recovery_key_file(t.file("bad", "not a key\n"));
    REQUIRE_FALSE(bad.ok());
    CHECK(exit_code_for(bad.error()) == kExitWrongKey);
}

TEST_CASE("socket path: 16 hex of BLAKE2b of the canonical mountpoint") {
    std::string name = socket_name("/home/ann/Private");
    REQUIRE(name.size() == 16 + 5);
    CHECK(name.ends_with(".sock"));
    CHECK(name.find_first_not_of("0123456789abcdef") == 16);
    auto h = crypto::hash32(as_bytes("/home/ann/Private"));
    CHECK(name.substr(0, 16) == to_hex(ByteSpan(h.data(), 8)));
    CHECK(socket_name("/home/ann/Private") == name);
    CHECK(socket_name("/home/ann/Private2") != name);

    CHECK(socket_dir("/run/user/1000", 1000) == "/run/user/1000/coffer");
    CHECK(socket_dir(nullptr, 1000) == "/tmp/coffer-1000");
    CHECK(socket_dir("", 42) == "/tmp/coffer-42");
    CHECK(socket_dir("relative/dir", 42) == "/tmp/coffer-42");
    CHECK(socket_path("/m", "/run/user/7", 7) == "/run/user/7/coffer/" + socket_name("/m"));
}

TEST_CASE("socket folder: created private, refused when it is not a folder") {
    TempDir t;
    std::string dir = t.path + "/sock";
    REQUIRE(ensure_private_dir(dir).ok());
    struct stat st{};
    REQUIRE(::stat(dir.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
    REQUIRE(::chmod(dir.c_str(), 0755) == 0);
    REQUIRE(ensure_private_dir(dir).ok());
    REQUIRE(::stat(dir.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0700);
    std::string f = t.file("plain", "x");
    CHECK_FALSE(ensure_private_dir(f).ok());
}

TEST_CASE("state folder default") {
    CHECK(*default_state_dir("/xdg", "/home/a", "abcd") == "/xdg/coffer/abcd");
    CHECK(*default_state_dir(nullptr, "/home/a", "abcd") == "/home/a/.local/share/coffer/abcd");
    CHECK(*default_state_dir("relative", "/home/a", "abcd") == "/home/a/.local/share/coffer/abcd");
    auto none = default_state_dir(nullptr, nullptr, "abcd");
    REQUIRE_FALSE(none.ok());
    CHECK(none.error().code == Code::usage);
}

TEST_CASE("control replies") {
    auto ok = parse_reply("line one\nline two\nok published 3 operations, 1 objects\n");
    REQUIRE(ok.ok());
    CHECK(ok->ok);
    CHECK(ok->lines == std::vector<std::string>{"line one", "line two"});
    CHECK(ok->message == "published 3 operations, 1 objects");

    auto bare = parse_reply("ok\n");
    REQUIRE(bare.ok());
    CHECK(bare->ok);
    CHECK(bare->message.empty());

    auto err = parse_reply("error 13 unmounting\n");
    REQUIRE(err.ok());
    CHECK_FALSE(err->ok);
    CHECK(err->exit_code == 13);
    CHECK(err->message == "unmounting");

    CHECK(parse_reply("error nonsense here\n")->exit_code == 1);
    CHECK_FALSE(parse_reply("half a reply").ok());
}

TEST_CASE("mount table: escapes, and the topmost mount wins") {
    std::string text =
        "22 1 0:21 / /proc rw,nosuid shared:5 - proc proc rw\n"
        "80 22 0:50 / /home/ann/My\\040Files rw,nosuid,nodev - fuse.coffer coffer:/cloud/v rw,user_id=1000\n"
        "81 80 0:51 / /home/ann/My\\040Files rw - tmpfs tmpfs rw\n"
        "garbage line\n";
    auto all = parse_mountinfo(text);
    REQUIRE(all.size() == 3);
    CHECK(all[1].mountpoint == "/home/ann/My Files");
    CHECK(all[1].fstype == "fuse.coffer");
    CHECK(all[1].source == "coffer:/cloud/v");
    CHECK(is_fuse(all[1]));
    CHECK_FALSE(is_fuse(all[2]));
    CHECK_FALSE(is_fuse(all[0]));
}

TEST_CASE("mount options") {
    Args a;
    REQUIRE(apply_mount_options("allow_other,,rw,default_permissions,debug,uid=5", a).ok());
    CHECK(a.allow_other);
    CHECK(a.debug);
    CHECK_FALSE(a.read_only);
    CHECK(a.fuse_options == std::vector<std::string>{"uid=5"});
    CHECK(apply_mount_options("subtype=x", a).error().code == Code::usage);
}

TEST_CASE("control socket: a round trip through the server, and a stale socket file") {
    TempDir t;
    std::string path = t.path + "/c.sock";
    {
        std::ofstream(path) << "left over";  // a stale file where the socket goes
    }
    auto server = ControlServer::listen(path);
    REQUIRE(server.ok());
    (*server)->start({[](ControlRequest& r) {
                          if (r.command == "status") {
                              send_line(r.conn.get(), "pending operations: 0");
                              send_ok(r.conn.get(), "");
                          } else {
                              send_error(r.conn.get(), 2, "unknown command");
                          }
                      },
                      nullptr});
    auto second = ControlServer::listen(path);
    REQUIRE_FALSE(second.ok());
    CHECK(second.error().code == Code::busy);

    auto r = control_request(path, "status");
    if (!r.ok()) MESSAGE(r.error().message());
    REQUIRE(r.ok());
    CHECK(r->ok);
    CHECK(r->lines == std::vector<std::string>{"pending operations: 0"});
    auto e = control_request(path, "dance");
    REQUIRE(e.ok());
    CHECK_FALSE(e->ok);
    CHECK(e->exit_code == 2);
    (*server)->stop();
    CHECK(::access(path.c_str(), F_OK) != 0);
    auto gone = control_request(path, "status");
    REQUIRE_FALSE(gone.ok());
    CHECK(gone.error().code == Code::not_found);
}
