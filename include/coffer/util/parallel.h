// Splitting one large piece of CPU work (sealing or opening the frames of a
// 1 MiB write or read) over the machine's cores. FUSE serves a synchronous
// writer one request at a time, so without this one core seals while the
// other waits.
#pragma once

#include <cstddef>
#include <functional>

namespace coffer::par {

// Runs fn(begin, end) over disjoint ranges covering [0, n) and returns when
// all have run. With n >= 2 * min_chunk and more than one core, the ranges
// run at the same time on the calling thread and on helper threads; fn must
// be safe to run concurrently on disjoint ranges. true when every call
// returned true.
bool for_ranges(size_t n, size_t min_chunk, const std::function<bool(size_t begin, size_t end)>& fn);

}  // namespace coffer::par
