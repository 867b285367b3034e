#pragma once
/// A progress line on stderr with rate, ETA and a caller-supplied status (e.g. the meta-loss).
/// On a terminal the line is redrawn in place; otherwise a line is printed every few seconds.
#include <chrono>
#include <string>

namespace l2o {

class Progress {
 public:
  /// `label` prefixes the line; `total` is the number of units of work; quiet silences it.
  /// `done_at_start` units were finished before this line started (a resumed job): the rate, and so
  /// the ETA, counts only the units done since.
  Progress(std::string label, int64_t total, bool quiet = false, int64_t done_at_start = 0);
  /// The job also ends when `budget_seconds` are spent, `spent_seconds` of them before this line
  /// started: the ETA is the sooner of the two ends and the percentage the larger share.
  void set_time_budget(double budget_seconds, double spent_seconds = 0);
  /// Reports that `done` units are finished; `status` is appended to the line.
  void update(int64_t done, const std::string& status = "");
  /// Ends the line: prints once the units last reported by update (a job may end before its total).
  void finish(const std::string& status = "");

 private:
  void print(int64_t done, const std::string& status, bool final);
  std::string label_;
  int64_t total_, done_at_start_, done_;
  double budget_ = 0, spent_ = 0;
  bool quiet_, tty_;
  std::chrono::steady_clock::time_point start_, last_print_;
};

/// Seconds left of a job with `done` of `total` units finished, `done_at_start` of them before the
/// `elapsed` seconds measured; `budget_left` >= 0 caps it (the job also stops when that time is
/// spent). Infinity when no unit has been done since the start and there is no budget.
double estimate_eta(int64_t done, int64_t done_at_start, int64_t total, double elapsed, double budget_left = -1);

/// "1h02m", "3m04s" or "12s"; "?" for infinity or NaN.
std::string format_duration(double seconds);

}  // namespace l2o
