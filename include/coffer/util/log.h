// Minimal logging to stderr (or syslog-style file when daemonised).
// Never log secrets: messages name files, blocks and codes only.
#pragma once

#include <string_view>

namespace coffer::log {

enum class Level { debug, info, warn, error };
void set_level(Level l);
void set_ident(std::string_view ident);  // prefix, e.g. "coffer[mnt]"
// Also append timestamped lines to `path` ("" stops); false if it cannot be opened.
bool set_file(std::string_view path);
void write(Level l, std::string_view msg);
inline void debug(std::string_view m) { write(Level::debug, m); }
inline void info(std::string_view m) { write(Level::info, m); }
inline void warn(std::string_view m) { write(Level::warn, m); }
inline void error(std::string_view m) { write(Level::error, m); }

}  // namespace coffer::log
