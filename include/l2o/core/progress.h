#pragma once
/// A progress line on stderr with rate, ETA and a caller-supplied status (e.g. the meta-loss).
/// On a terminal the line is redrawn in place; otherwise a line is printed every few seconds.
#include <chrono>
#include <string>

namespace l2o {

class Progress {
 public:
  /// `label` prefixes the line; `total` is the number of units of work; quiet silences it.
  Progress(std::string label, int64_t total, bool quiet = false);
  /// Reports that `done` units are finished; `status` is appended to the line.
  void update(int64_t done, const std::string& status = "");
  /// Ends the line (prints the final state once).
  void finish(const std::string& status = "");

 private:
  void print(int64_t done, const std::string& status, bool final);
  std::string label_;
  int64_t total_;
  bool quiet_, tty_;
  std::chrono::steady_clock::time_point start_, last_print_;
};

/// "1h02m", "3m04s" or "12s".
std::string format_duration(double seconds);

}  // namespace l2o
