// The staging map's arithmetic: which rows change when a new piece covers
// part of a file, or when a file is cut at a size. Pure functions; the index
// applies their result to the staging table (src/index/content.cpp).
#pragma once

#include <cstdint>
#include <vector>

namespace coffer::index {

// A range of a file whose current bytes are in the staging log.
// log == 0 means "zeros" (a punched hole or the tail cut by a truncate).
struct StagingPiece {
    uint64_t off = 0, len = 0;
    uint64_t log = 0;       // staging log file number
    uint64_t pos = 0;       // where the record starts in the log
    uint64_t rec_id = 0;    // record id (part of every frame's AAD)
    uint64_t rec_len = 0;   // plaintext length of the whole record
    uint64_t skip = 0;      // offset of `off` inside the record's plaintext
    friend bool operator==(const StagingPiece&, const StagingPiece&) = default;
    uint64_t end() const { return off + len; }
};

// Rows of one file's staging map (keyed by offset) to change: first the
// rows at `remove` go, then every row of `put` is written, replacing a row
// at the same offset (a trimmed piece keeps its offset: an update).
struct PieceEdit {
    std::vector<uint64_t> remove;
    std::vector<StagingPiece> put;
    friend bool operator==(const PieceEdit&, const PieceEdit&) = default;
};

// Makes [np.off, np.end()) come from np. `existing` holds the file's pieces
// that may overlap it (others are left alone): each is trimmed, split in two
// or removed, and a part kept on the right reads further into its record
// (skip grows by what was cut). A zero-length np changes nothing.
PieceEdit overlay_piece(const std::vector<StagingPiece>& existing, const StagingPiece& np);

// Drops everything at or beyond `size`: a piece straddling it is trimmed to
// end there; pieces at or past it are removed (`existing` holds those the
// caller found; the index also deletes the rest of the range itself).
PieceEdit cut_pieces_at(const std::vector<StagingPiece>& existing, uint64_t size);

}  // namespace coffer::index
