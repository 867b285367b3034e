// Fuzz target: checkpoint loading (header, then the rule it names and φ).
#include "fuzz_input.h"

#include <l2o/core/error.h>
#include <l2o/io/checkpoint.h>

#include <torch/torch.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool quiet = [] {
    torch::set_num_threads(1);
    return true;
  }();
  (void)quiet;
  const std::string path = l2o::fuzz::write_input(data, size, ".pt");
  try {
    (void)l2o::io::read_checkpoint_info(path);
    const l2o::optim::RulePtr rule = l2o::io::load_rule(path);
    if (rule == nullptr || rule->module() == nullptr) std::abort();
  } catch (const l2o::Error&) {
  }
  return 0;
}
