#include <l2o/core/progress.h>

#include <unistd.h>

#include <cstdio>

namespace l2o {

std::string format_duration(double seconds) {
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

Progress::Progress(std::string label, int64_t total, bool quiet)
    : label_(std::move(label)), total_(total), quiet_(quiet), tty_(::isatty(STDERR_FILENO) != 0) {
  start_ = last_print_ = std::chrono::steady_clock::now();
}

void Progress::update(int64_t done, const std::string& status) {
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
  print(total_, status, true);
}

void Progress::print(int64_t done, const std::string& status, bool final) {
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const double eta = done > 0 ? elapsed * static_cast<double>(total_ - done) / static_cast<double>(done) : 0;
  const double pct = total_ > 0 ? 100.0 * static_cast<double>(done) / static_cast<double>(total_) : 100.0;
  std::fprintf(stderr, "%s[%s] %lld/%lld %3.0f%% elapsed %s ETA %s %s%s", tty_ ? "\r\033[K" : "", label_.c_str(),
               static_cast<long long>(done), static_cast<long long>(total_), pct, format_duration(elapsed).c_str(),
               final ? "0s" : format_duration(eta).c_str(), status.c_str(), (tty_ && !final) ? "" : "\n");
  std::fflush(stderr);
}

}  // namespace l2o
