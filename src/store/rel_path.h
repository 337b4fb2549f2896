// Vault-relative paths, checked the same way by every backend: the cloud
// (or a bug) must not name a file outside the vault.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "coffer/util/result.h"

namespace coffer::store::rel_path {

// Code::invalid for a NUL byte, an absolute path or a ".." component.
Status check(std::string_view rel);
// The components, without empty ones and "." ("a//./b/" -> {"a", "b"}).
std::vector<std::string> components(std::string_view rel);
// check(), then the components joined by '/': one spelling per file.
Result<std::string> normal(std::string_view rel);
// check(), then ("a/b", "c") for "a/b/c"; Code::invalid if rel names no file.
Result<std::pair<std::string, std::string>> split_leaf(std::string_view rel);

}  // namespace coffer::store::rel_path
