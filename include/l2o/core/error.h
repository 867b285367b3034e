#pragma once
/// Errors and checks. Library code throws l2o::Error; only main() catches, prints one line and exits.
#include <sstream>
#include <stdexcept>
#include <string>

namespace l2o {

/// The one exception type of the library; its what() is a single human-readable line.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

namespace detail {
inline void append(std::ostringstream&) {}
template <typename T, typename... Rest>
void append(std::ostringstream& os, const T& v, const Rest&... rest) {
  os << v;
  append(os, rest...);
}
/// Concatenates its arguments with operator<< into one string.
template <typename... Args>
std::string cat(const Args&... args) {
  std::ostringstream os;
  append(os, args...);
  return os.str();
}
}  // namespace detail

}  // namespace l2o

/// Throws l2o::Error with the streamed message when `cond` is false.
#define L2O_CHECK(cond, ...)                                 \
  do {                                                       \
    if (!(cond)) throw ::l2o::Error(::l2o::detail::cat(__VA_ARGS__)); \
  } while (0)

/// Throws l2o::Error unconditionally.
#define L2O_FAIL(...) throw ::l2o::Error(::l2o::detail::cat(__VA_ARGS__))
