// Random work for the multi-device simulator: file operations of every kind
// on random devices, syncs, and steps of the sync engine, from one seed.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "sim_world.h"

namespace coffer::sim {

class Workload {
public:
    // serial: one device at a time, every device in step before the next
    // one works (World::converge at each change of device), so no two
    // changes are concurrent.
    Workload(World& world, uint64_t seed, bool serial = false) : w_(world), rng_(seed), serial_(serial) {}

    // A few directories and files made on the first device and synced to
    // all, before the random steps.
    void plant();
    // One random operation on a random device, a sync of one, or a step of
    // the sync engine. Operations the filesystem refuses (a name taken, a
    // directory not empty, a move into its own subtree) are simply refused.
    void step();

    // What was done, by kind ("write", "sync", "exchange", ...): accepted
    // operations only, so a test can see the mix is real.
    const std::map<std::string, int>& done() const { return done_; }

private:
    struct Entry {
        vfs::Ino parent = 0;
        std::string name, path;
        vfs::Attr attr;
    };
    std::vector<Entry> entries(size_t d);
    void file_op(size_t d);
    // Moves directory x into y here and y into x on another device, both
    // before either syncs: the replicated move must keep a tree.
    void crossed_moves(size_t d, const std::vector<Entry>& dirs);
    std::string new_name();
    Bytes data(size_t n);
    // Counts an accepted operation; with COFFER_SIM_TRACE set, prints it
    // (replaying a failing seed with the trace shows its history).
    void count(const char* kind, bool accepted, const std::string& detail = {});

    World& w_;
    std::mt19937_64 rng_;
    bool serial_ = false;
    size_t last_device_ = 0;
    size_t trace_device_ = 0;
    bool trace_ = std::getenv("COFFER_SIM_TRACE") != nullptr;
    std::map<std::string, int> done_;
};

}  // namespace coffer::sim
