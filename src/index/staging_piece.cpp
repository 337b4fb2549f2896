#include "coffer/index/staging_piece.h"

#include <algorithm>

namespace coffer::index {

namespace {
// Whether p shares bytes with [off, end), or is an empty piece inside it
// (nothing reads it, but it must not survive under the new piece).
bool touches(const StagingPiece& p, uint64_t off, uint64_t end) {
    if (p.off >= end) return false;
    return p.end() > off || (p.len == 0 && p.off >= off);
}
// A row at `off` is only removed if no put row takes its place (INSERT OR
// REPLACE rewrites it in one step).
void finish(PieceEdit& e, std::vector<uint64_t> gone) {
    for (uint64_t off : gone)
        if (std::none_of(e.put.begin(), e.put.end(), [&](const StagingPiece& p) { return p.off == off; }))
            e.remove.push_back(off);
}
}  // namespace

PieceEdit overlay_piece(const std::vector<StagingPiece>& existing, const StagingPiece& np) {
    PieceEdit e;
    if (np.len == 0) return e;
    std::vector<uint64_t> gone;
    for (const StagingPiece& p : existing) {
        if (!touches(p, np.off, np.end())) continue;
        gone.push_back(p.off);
        if (p.off < np.off) {  // keep the left part
            StagingPiece left = p;
            left.len = np.off - p.off;
            e.put.push_back(left);
        }
        if (p.end() > np.end()) {  // keep the right part
            StagingPiece right = p;
            uint64_t cut = np.end() - p.off;
            right.off = np.end();
            right.len = p.len - cut;
            if (right.log) right.skip = p.skip + cut;
            e.put.push_back(right);
        }
    }
    e.put.push_back(np);
    finish(e, std::move(gone));
    return e;
}

PieceEdit cut_pieces_at(const std::vector<StagingPiece>& existing, uint64_t size) {
    PieceEdit e;
    std::vector<uint64_t> gone;
    for (const StagingPiece& p : existing) {
        if (p.off >= size) {
            gone.push_back(p.off);
        } else if (p.end() > size) {
            StagingPiece left = p;
            left.len = size - p.off;
            e.put.push_back(left);
        }
    }
    finish(e, std::move(gone));
    return e;
}

}  // namespace coffer::index
