#include "coffer/store/backend.h"

#include <limits>

namespace coffer::store {

Result<Bytes> Backend::read(std::string_view rel, uint64_t max_size) const {
    // One byte more than allowed tells "exactly max_size" from "larger".
    const size_t want = max_size >= std::numeric_limits<size_t>::max() ? std::numeric_limits<size_t>::max()
                                                                        : static_cast<size_t>(max_size) + 1;
    COFFER_ASSIGN(Bytes bytes, read_at(rel, 0, want));
    if (bytes.size() > max_size)
        return make_error(Code::corrupt, "vault file " + std::string(rel) + " is larger than " +
                                             std::to_string(max_size) + " bytes; refused");
    return bytes;
}

}  // namespace coffer::store
