// Fuzz target: spec strings of optimizers, problems (wrappers with inline specs included) and problem
// sets. Every spec that parses must print back to itself; a rule that builds must take a step.
// Rules and problems are built only when every number in the text is at most 64: the harness measures
// parsing and validation, not how much memory `dim=1e12` or `hidden_size=1e9` asks for (the
// allocator's error by design, and a libFuzzer out-of-memory report here).
#include <l2o/core/error.h>
#include <l2o/core/rng.h>
#include <l2o/core/spec.h>
#include <l2o/learned/registry.h>
#include <l2o/problems/registry.h>

#include <torch/torch.h>

#include <cmath>
#include <cstdlib>
#include <string>

namespace {
bool small_numbers(const std::string& s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(s[i]))) continue;
    char* end = nullptr;
    const double v = std::strtod(s.c_str() + i, &end);
    if (!(std::fabs(v) <= 64)) return false;
    i = static_cast<size_t>(end - s.c_str());
  }
  return true;
}

bool synthetic_data_only(const std::string& s) {
  // Real data sets are large and read from disk; the synthetic ones exercise the same code.
  return s.find("mnist") == std::string::npos && s.find("cifar") == std::string::npos &&
         s.find("data_dir") == std::string::npos && s.find('@') == std::string::npos;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool once = [] {
    torch::set_num_threads(1);
    return true;
  }();
  (void)once;
  if (size > 512) return 0;
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const l2o::Spec spec = l2o::Spec::parse(text);
    if (l2o::Spec::parse(spec.str()).str() != spec.str()) std::abort();
  } catch (const l2o::Error&) {
  }
  try {
    const auto inline_form = l2o::problems::to_inline_spec(text);
    (void)l2o::problems::expand_inline_spec(inline_form);
    (void)l2o::problems::split_inline_list(text);
  } catch (const l2o::Error&) {
  }
  if (!small_numbers(text)) return 0;
  try {
    torch::NoGradGuard no_grad;
    const l2o::optim::RulePtr rule = l2o::learned::make_rule(text);
    if (l2o::learned::make_rule(rule->spec().str())->spec().str() != rule->spec().str()) std::abort();
    const l2o::TensorList params = {torch::ones({3}), torch::ones({2, 2})};
    const l2o::TensorList grads = {torch::full({3}, 0.5), torch::full({2, 2}, -0.25)};
    at::Generator gen = l2o::make_generator(0);
    (void)rule->update(params, grads, rule->init(params, gen));
  } catch (const l2o::Error&) {
  }
  if (synthetic_data_only(text)) {
    try {
      at::Generator gen = l2o::make_generator(0);
      const l2o::problems::ProblemPtr p = l2o::problems::make_problem(text, gen);
      (void)p->init_params(gen);
      (void)l2o::problems::ProblemSet::parse(text + "*2;" + text);
    } catch (const l2o::Error&) {
    }
  }
  return 0;
}
