// Fuzz target: the --config reader (TOML through toml++).
#include <l2o/core/error.h>
#include <l2o/io/config.h>

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto entries = l2o::io::parse_config(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.toml");
    for (const auto& e : entries)
      if (e.key.empty() || e.line < 1) std::abort();
  } catch (const l2o::Error& e) {
    // Errors are one line.
    if (std::string_view(e.what()).find('\n') != std::string_view::npos) std::abort();
  }
  return 0;
}
