#include "rel_path.h"

namespace coffer::store::rel_path {

namespace {
std::string str(std::string_view s) { return std::string(s); }

std::string joined(const std::vector<std::string>& comps, size_t n) {
    std::string out;
    for (size_t i = 0; i < n; ++i) out += (i ? "/" : "") + comps[i];
    return out;
}
}  // namespace

Status check(std::string_view rel) {
    if (rel.find('\0') != std::string_view::npos)
        return make_error(Code::invalid, "vault path contains a NUL byte");
    if (!rel.empty() && rel.front() == '/')
        return make_error(Code::invalid, "vault path " + str(rel) + " is absolute");
    size_t start = 0;
    while (start <= rel.size()) {
        size_t end = rel.find('/', start);
        if (end == std::string_view::npos) end = rel.size();
        if (rel.substr(start, end - start) == "..")
            return make_error(Code::invalid, "vault path " + str(rel) + " leads out of the vault");
        start = end + 1;
    }
    return {};
}

std::vector<std::string> components(std::string_view rel) {
    std::vector<std::string> out;
    size_t start = 0;
    while (start <= rel.size()) {
        size_t end = rel.find('/', start);
        if (end == std::string_view::npos) end = rel.size();
        std::string_view c = rel.substr(start, end - start);
        if (!c.empty() && c != ".") out.emplace_back(c);
        start = end + 1;
    }
    return out;
}

Result<std::string> normal(std::string_view rel) {
    COFFER_TRY(check(rel));
    std::vector<std::string> comps = components(rel);
    return joined(comps, comps.size());
}

Result<std::pair<std::string, std::string>> split_leaf(std::string_view rel) {
    COFFER_TRY(check(rel));
    std::vector<std::string> comps = components(rel);
    if (comps.empty()) return make_error(Code::invalid, "vault path " + str(rel) + " names no file");
    return std::make_pair(joined(comps, comps.size() - 1), comps.back());
}

}  // namespace coffer::store::rel_path
