#pragma once
/// Experiment configs: TOML files whose top-level keys are command-line flag names (read with toml++).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace l2o {
namespace io {

/// One `key = value` of a config file; `value` is the text the matching flag takes on a command line
/// (strings as they are, numbers in shortest round-trip form, booleans as true/false).
struct ConfigEntry {
  std::string key;
  std::string value;
  /// 1-based line of the key in the file, for error messages.
  int64_t line = 0;
};

/// Parses TOML `text`. Only top-level keys made of [a-z0-9_] with string, integer, float or boolean
/// values are accepted (no tables, arrays or dates; no key `config`). Entries come in file order.
/// Throws l2o::Error with one line "source:line:column: what" naming the key where there is one.
std::vector<ConfigEntry> parse_config(std::string_view text, const std::string& source);

/// Reads and parses the config file at `path` (throws l2o::Error naming it when it cannot be read).
std::vector<ConfigEntry> read_config(const std::string& path);

}  // namespace io
}  // namespace l2o
