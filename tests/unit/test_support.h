// Helpers shared by unit tests.
#pragma once

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "coffer/crypto/crypto.h"

namespace coffer::testing {

// Installs a deterministic random source for the scope (known-answer tests).
struct FixedRandom {
    crypto::SeededRandom src;
    explicit FixedRandom(uint64_t seed = 1) : src(seed) { crypto::set_random_source(&src); }
    ~FixedRandom() { crypto::set_random_source(nullptr); }
};

// The hex of a test vector published in docs/*.md as a line
//   vector NAME: HEX
// (HEX may continue on following lines that start with "vector NAME+: HEX").
// Empty if the document does not have it.
inline std::string doc_vector(const std::string& name) {
    std::string out;
    for (auto& entry : std::filesystem::directory_iterator(std::string(COFFER_SOURCE_DIR) + "/docs")) {
        if (entry.path().extension() != ".md") continue;
        std::ifstream in(entry.path());
        std::string line;
        while (std::getline(in, line)) {
            for (const std::string& key : {"vector " + name + ": ", "vector " + name + "+: "}) {
                auto pos = line.find(key);
                if (pos == std::string::npos) continue;
                for (char c : line.substr(pos + key.size()))
                    if (std::isxdigit(static_cast<unsigned char>(c))) out.push_back(c);
            }
        }
    }
    return out;
}

// A fresh temporary folder, removed at the end of the scope.
struct TempDir {
    std::filesystem::path path;
    TempDir() {
        std::string tmpl = (std::filesystem::temp_directory_path() / "coffer-test-XXXXXX").string();
        path = ::mkdtemp(tmpl.data());
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    std::string str() const { return path.string(); }
};

}  // namespace coffer::testing
