#include <l2o/core/error.h>
#include <l2o/core/spec.h>
#include <l2o/io/config.h>

#include <toml++/toml.h>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace l2o {
namespace io {

namespace {
// toml++ descriptions are one sentence, but a quoted bad character may be a newline.
std::string one_line(std::string s) {
  std::replace(s.begin(), s.end(), '\n', ' ');
  std::replace(s.begin(), s.end(), '\r', ' ');
  return s;
}

std::string where(const std::string& source, const toml::source_region& region) {
  return detail::cat(source, ":", region.begin.line, ":", region.begin.column);
}

bool is_flag_name(std::string_view key) {
  return !key.empty() && key.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") == std::string_view::npos;
}
}  // namespace

std::vector<ConfigEntry> parse_config(std::string_view text, const std::string& source) {
  toml::table table;
  try {
    table = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    L2O_FAIL(where(source, e.source()), ": ", one_line(std::string(e.description())));
  }
  std::vector<ConfigEntry> out;
  for (const auto& [key, node] : table) {
    const std::string name(key.str());
    const std::string at = where(source, key.source());
    L2O_CHECK(is_flag_name(name), at, ": bad key '", one_line(name), "' (keys are flag names: a-z, 0-9, _)");
    L2O_CHECK(name != "config", at, ": a config file cannot include another");
    ConfigEntry entry{name, "", static_cast<int64_t>(key.source().begin.line)};
    if (const auto* s = node.as_string()) {
      entry.value = s->get();
    } else if (const auto* i = node.as_integer()) {
      entry.value = std::to_string(i->get());
    } else if (const auto* f = node.as_floating_point()) {
      entry.value = format_double(f->get());
    } else if (const auto* b = node.as_boolean()) {
      entry.value = b->get() ? "true" : "false";
    } else if (node.is_table()) {
      L2O_FAIL(at, ": key '", name, "' is a table: sections are not supported; put the keys at the top level");
    } else {
      L2O_FAIL(at, ": key '", name, "' has a ", node.type(),
               " value (use a quoted string, a number or true/false)");
    }
    out.push_back(std::move(entry));
  }
  // toml::table is ordered by key; keep the file's order so that later lines act later.
  std::stable_sort(out.begin(), out.end(), [](const ConfigEntry& a, const ConfigEntry& b) { return a.line < b.line; });
  return out;
}

std::vector<ConfigEntry> read_config(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  L2O_CHECK(in.good(), "cannot read config file '", path, "'");
  std::stringstream text;
  text << in.rdbuf();
  L2O_CHECK(!in.bad(), "cannot read config file '", path, "'");
  return parse_config(text.str(), path);
}

}  // namespace io
}  // namespace l2o
