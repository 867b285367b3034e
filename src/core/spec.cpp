#include <l2o/core/error.h>
#include <l2o/core/spec.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace l2o {

namespace {
std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  const auto e = s.find_last_not_of(" \t");
  return s.substr(b, e - b + 1);
}
}  // namespace

Spec Spec::parse(const std::string& text) {
  const auto colon = text.find(':');
  Spec spec(trim(text.substr(0, colon)));
  L2O_CHECK(!spec.name_.empty(), "empty name in spec '", text, "' (expected name[:key=value,...])");
  if (colon == std::string::npos) return spec;
  std::string rest = text.substr(colon + 1);
  size_t pos = 0;
  while (pos <= rest.size()) {
    auto comma = rest.find(',', pos);
    if (comma == std::string::npos) comma = rest.size();
    const std::string item = trim(rest.substr(pos, comma - pos));
    if (!item.empty()) {
      const auto eq = item.find('=');
      L2O_CHECK(eq != std::string::npos && eq > 0,
                "malformed item '", item, "' in spec '", text, "' (expected key=value)");
      const std::string key = trim(item.substr(0, eq));
      L2O_CHECK(!spec.has(key), "key '", key, "' given twice in spec '", text, "'");
      spec.values_[key] = trim(item.substr(eq + 1));
    }
    pos = comma + 1;
  }
  return spec;
}

Spec& Spec::set(const std::string& key, const std::string& value) {
  values_[key] = value;
  return *this;
}
Spec& Spec::set(const std::string& key, double value) { return set(key, format_double(value)); }
Spec& Spec::set(const std::string& key, int64_t value) { return set(key, std::to_string(value)); }
Spec& Spec::set(const std::string& key, bool value) { return set(key, std::string(value ? "true" : "false")); }

double Spec::get_double(const std::string& key, double fallback) const {
  used_.insert(key);
  auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  errno = 0;
  char* end = nullptr;
  const double v = std::strtod(it->second.c_str(), &end);
  L2O_CHECK(end != it->second.c_str() && *end == '\0' && errno == 0,
            "option ", key, "='", it->second, "' of '", name_, "' is not a number");
  return v;
}

int64_t Spec::get_int(const std::string& key, int64_t fallback) const {
  used_.insert(key);
  auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  errno = 0;
  char* end = nullptr;
  const long long v = std::strtoll(it->second.c_str(), &end, 10);
  L2O_CHECK(end != it->second.c_str() && *end == '\0' && errno == 0,
            "option ", key, "='", it->second, "' of '", name_, "' is not an integer");
  return v;
}

bool Spec::get_bool(const std::string& key, bool fallback) const {
  used_.insert(key);
  auto it = values_.find(key);
  if (it == values_.end()) return fallback;
  const std::string& v = it->second;
  if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "0" || v == "no" || v == "off") return false;
  L2O_FAIL("option ", key, "='", v, "' of '", name_, "' is not a boolean (use true or false)");
}

std::string Spec::get_string(const std::string& key, const std::string& fallback) const {
  used_.insert(key);
  auto it = values_.find(key);
  return it == values_.end() ? fallback : it->second;
}

void Spec::check_all_used() const {
  for (const auto& kv : values_) {
    if (used_.count(kv.first)) continue;
    std::string known;
    for (const auto& u : used_) known += (known.empty() ? "" : ", ") + u;
    L2O_FAIL("unknown option '", kv.first, "' for '", name_, "' (known options: ",
             known.empty() ? "none" : known, ")");
  }
}

std::string Spec::str() const {
  std::string out = name_;
  char sep = ':';
  for (const auto& kv : values_) {
    out += sep + kv.first + "=" + kv.second;
    sep = ',';
  }
  return out;
}

std::string format_double(double v) {
  char buf[64];
  for (int precision = 6; precision <= 17; ++precision) {
    std::snprintf(buf, sizeof(buf), "%.*g", precision, v);
    if (std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

}  // namespace l2o
