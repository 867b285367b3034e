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

// toml++ 3.3.0 (Debian 12) reaches __builtin_unreachable() in impl::is_non_ascii_horizontal_whitespace
// for most code points of U+00A1..U+049F, U+2ED6..U+32CF and U+FB26..U+FEFE wherever it looks for
// whitespace: a lone "§" is undefined behaviour (marzer/tomlplusplus#190 and #295, fixed upstream after
// 3.3.0; found by tests/fuzz/config_fuzz.cpp). That function returns at once for code points above
// U+FEFF, so the text is parsed with U+00A1..U+FEFE moved up to plane 15 (U+F00A1..U+FFEFE, private
// use) and moved back in keys, strings and messages. One code point stays one, so columns hold.
constexpr char32_t kLow = 0xA1, kHigh = 0xFEFE, kShift = 0xF0000;

// Length and code point of the well-formed UTF-8 sequence at s[i], or 0 (ASCII or malformed bytes
// are left to toml++).
size_t decode(std::string_view s, size_t i, char32_t* cp) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
  const auto cont = [&](size_t k) { return i + k < s.size() && (b(k) & 0xC0) == 0x80; };
  const unsigned char c = b(0);
  if (c >= 0xC2 && c <= 0xDF && cont(1)) {
    *cp = (char32_t(c & 0x1F) << 6) | (b(1) & 0x3F);
    return 2;
  }
  if (c >= 0xE0 && c <= 0xEF && cont(1) && cont(2)) {
    *cp = (char32_t(c & 0x0F) << 12) | (char32_t(b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    return (*cp >= 0x800 && (*cp < 0xD800 || *cp > 0xDFFF)) ? 3 : 0;
  }
  if (c >= 0xF0 && c <= 0xF4 && cont(1) && cont(2) && cont(3)) {
    *cp = (char32_t(c & 0x07) << 18) | (char32_t(b(1) & 0x3F) << 12) | (char32_t(b(2) & 0x3F) << 6) | (b(3) & 0x3F);
    return (*cp >= 0x10000 && *cp <= 0x10FFFF) ? 4 : 0;
  }
  return 0;
}

void encode(char32_t cp, std::string* out) {
  if (cp < 0x800) {
    *out += static_cast<char>(0xC0 | (cp >> 6));
  } else if (cp < 0x10000) {
    *out += static_cast<char>(0xE0 | (cp >> 12));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
  } else {
    *out += static_cast<char>(0xF0 | (cp >> 18));
    *out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    *out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
  }
  *out += static_cast<char>(0x80 | (cp & 0x3F));
}

std::string shift_up(std::string_view text, const std::string& source) {
  std::string out;
  out.reserve(text.size());
  int64_t line = 1, column = 1;
  for (size_t i = 0; i < text.size(); ++column) {
    char32_t cp = 0;
    const size_t n = decode(text, i, &cp);
    if (n == 0) {
      if (text[i] == '\n') line += 1, column = 0;
      out += text[i++];
      continue;
    }
    L2O_CHECK(cp < kShift, source, ":", line, ":", column, ": private-use character U+", std::hex, std::uppercase,
              static_cast<uint32_t>(cp), " is not allowed in a config file");
    if (cp >= kLow && cp <= kHigh)
      encode(cp + kShift, &out);
    else
      out.append(text.substr(i, n));
    i += n;
  }
  return out;
}

std::string shift_down(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    char32_t cp = 0;
    const size_t n = decode(text, i, &cp);
    if (n == 4 && cp >= kLow + kShift && cp <= kHigh + kShift) {
      encode(cp - kShift, &out);
    } else {
      out.append(text.substr(i, n == 0 ? 1 : n));
    }
    i += n == 0 ? 1 : n;
  }
  return out;
}

bool is_flag_name(std::string_view key) {
  return !key.empty() && key.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") == std::string_view::npos;
}
}  // namespace

std::vector<ConfigEntry> parse_config(std::string_view text, const std::string& source) {
  toml::table table;
  const std::string shifted = shift_up(text, source);
  try {
    table = toml::parse(shifted, source);
  } catch (const toml::parse_error& e) {
    L2O_FAIL(where(source, e.source()), ": ", one_line(shift_down(e.description())));
  }
  std::vector<ConfigEntry> out;
  for (const auto& [key, node] : table) {
    const std::string name = shift_down(key.str());
    const std::string at = where(source, key.source());
    L2O_CHECK(is_flag_name(name), at, ": bad key '", one_line(name), "' (keys are flag names: a-z, 0-9, _)");
    L2O_CHECK(name != "config", at, ": a config file cannot include another");
    ConfigEntry entry{name, "", static_cast<int64_t>(key.source().begin.line)};
    if (const auto* s = node.as_string()) {
      entry.value = shift_down(s->get());
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
