#pragma once
/// Spec strings: `name[:key=value,key=value,...]`, the one textual form of every optimizer and
/// problem in l2o (command line, configs, checkpoints). Example: `lstm:preprocess=logsign,k=5`.
#include <cstdint>
#include <map>
#include <set>
#include <string>

namespace l2o {

/// A parsed spec string. Values are kept as text; typed getters validate them and record which keys
/// were read, so that `check_all_used()` can reject unknown keys with a helpful message.
class Spec {
 public:
  Spec() = default;
  explicit Spec(std::string name) : name_(std::move(name)) {}

  /// Parses `name:key=value,...`; throws l2o::Error on malformed text.
  static Spec parse(const std::string& text);

  const std::string& name() const { return name_; }
  bool has(const std::string& key) const { return values_.count(key) > 0; }
  const std::map<std::string, std::string>& values() const { return values_; }

  /// Sets a key (used when writing options back to a spec).
  Spec& set(const std::string& key, const std::string& value);
  Spec& set(const std::string& key, double value);
  Spec& set(const std::string& key, int64_t value);
  Spec& set(const std::string& key, bool value);

  double get_double(const std::string& key, double fallback) const;
  int64_t get_int(const std::string& key, int64_t fallback) const;
  bool get_bool(const std::string& key, bool fallback) const;
  std::string get_string(const std::string& key, const std::string& fallback) const;

  /// Throws if a key was given that no getter asked for (a typo would otherwise be ignored silently).
  void check_all_used() const;

  /// Canonical text: name followed by the keys in sorted order.
  std::string str() const;

 private:
  std::string name_;
  std::map<std::string, std::string> values_;
  mutable std::set<std::string> used_;
};

/// Formats a double so that parsing it back gives the same value (shortest round-trip form).
std::string format_double(double v);

}  // namespace l2o
