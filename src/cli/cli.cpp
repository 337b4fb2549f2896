// The coffer command: parse, then run one subcommand.
#include "coffer/cli/cli.h"

#include <iostream>

#include "args.h"
#include "commands.h"
#include "coffer/crypto/crypto.h"

namespace coffer::cli {

int main(int argc, char** argv) {
    crypto::init();
    // Most subcommands hold a password or key at some point: no core dumps, no ptrace.
    harden_process();
    raise_fd_limit();
    Parsed p = parse_args(argc, argv);
    std::cout << p.out;
    std::cerr << p.err;
    if (!p.args) return p.exit_code;
    const Args& a = *p.args;
    try {
        switch (a.command) {
            case Command::init: return run_init(a);
            case Command::mount: return run_mount(a);
            case Command::unmount: return run_unmount(a);
            case Command::sync: return run_sync(a);
            case Command::status: return run_status(a);
            case Command::conflicts: return run_conflicts(a);
            case Command::devices: return run_devices(a);
            case Command::info: return run_info(a);
            case Command::passwd: return run_passwd(a);
            case Command::fsck: return run_fsck(a);
        }
    } catch (const std::bad_alloc&) {
        std::cerr << "coffer: out of memory\n";
    } catch (const std::exception& e) {
        std::cerr << "coffer: unexpected error (a bug): " << e.what() << "\n";
    }
    return kExitFailure;
}

}  // namespace coffer::cli
