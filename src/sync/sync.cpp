// sync: publish this device's changes, then merge the other devices'.
#include "coffer/sync/sync.h"

namespace coffer::sync {

Result<SyncStats> sync(vfs::Replica& replica) {
    // A merge needs every local change in the vault; changes made while a
    // publish runs are published by the next round.
    constexpr int kRounds = 3;
    SyncStats out;
    for (int round = 0; round < kRounds; ++round) {
        if (!replica.read_only()) {
            COFFER_ASSIGN(PublishStats p, publish(replica));
            out.published.objects += p.objects;
            out.published.bytes += p.bytes;
            out.published.ops += p.ops;
            if (p.segment_seq) out.published.segment_seq = p.segment_seq;
        }
        COFFER_ASSIGN(out.merged, replica.merge());
        if (!out.merged.postponed) break;
    }
    return out;
}

}  // namespace coffer::sync
