#include <l2o/core/progress.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace l2o {

double estimate_eta(int64_t done, int64_t done_at_start, int64_t total, double elapsed, double budget_left) {
  double eta = 0;
  if (done < total) {
    const int64_t since = done - done_at_start;
    eta = since > 0 ? elapsed * static_cast<double>(total - done) / static_cast<double>(since)
                    : std::numeric_limits<double>::infinity();
  }
  return budget_left >= 0 ? std::min(eta, budget_left) : eta;
}

std::string format_duration(double seconds) {
  if (!std::isfinite(seconds)) return "?";
  const long s = static_cast<long>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) {
    std::snprintf(buf, sizeof(buf), "%ldh%02ldm", s / 3600, (s % 3600) / 60);
  } else if (s >= 60) {
    std::snprintf(buf, sizeof(buf), "%ldm%02lds", s / 60, s % 60);
  } else {
    std::snprintf(buf, sizeof(buf), "%lds", s);
  }
  return buf;
}

Progress::Progress(std::string label, int64_t total, bool quiet, int64_t done_at_start)
    : label_(std::move(label)),
      total_(total),
      done_at_start_(done_at_start),
      done_(done_at_start),
      quiet_(quiet),
      tty_(::isatty(STDERR_FILENO) != 0) {
  start_ = last_print_ = std::chrono::steady_clock::now();
}

void Progress::set_time_budget(double budget_seconds, double spent_seconds) {
  budget_ = budget_seconds;
  spent_ = spent_seconds;
}

void Progress::update(int64_t done, const std::string& status) {
  done_ = done;
  if (quiet_) return;
  const auto now = std::chrono::steady_clock::now();
  const double since = std::chrono::duration<double>(now - last_print_).count();
  // Off a terminal (CI logs) a line every 5 s is enough; on one, redraw at most 10 times a second.
  if (since < (tty_ ? 0.1 : 5.0) && done < total_) return;
  last_print_ = now;
  print(done, status, false);
}

void Progress::finish(const std::string& status) {
  if (quiet_) return;
  print(done_, status, true);
}

void Progress::print(int64_t done, const std::string& status, bool final) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double budget_left = budget_ > 0 ? std::max(0.0, budget_ - spent_ - elapsed) : -1;
  const double eta = estimate_eta(done, done_at_start_, total_, elapsed, budget_left);
  double pct = total_ > 0 ? 100.0 * static_cast<double>(done) / static_cast<double>(total_) : 100.0;
  if (budget_ > 0) pct = std::max(pct, std::min(100.0, 100.0 * (spent_ + elapsed) / budget_));
  std::fprintf(stderr, "%s[%s] %lld/%lld %3.0f%% elapsed %s ETA %s %s%s", tty_ ? "\r\033[K" : "", label_.c_str(),
               static_cast<long long>(done), static_cast<long long>(total_), pct, format_duration(elapsed).c_str(),
               final ? "0s" : format_duration(eta).c_str(), status.c_str(), (tty_ && !final) ? "" : "\n");
  std::fflush(stderr);
}

}  // namespace l2o
