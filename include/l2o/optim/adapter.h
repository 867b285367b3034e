#pragma once
/// Drop-in use of any update rule — learned ones included — as a torch::optim::Optimizer
/// (the "black box" use of L2O-Scale, seed 003).
#include <l2o/optim/update_rule.h>

#include <torch/optim/optimizer.h>

namespace l2o {
namespace optim {

/// Options of the adapter. The rule carries its own hyper-parameters; lr is kept only so that
/// LibTorch code that reads get_lr() keeps working and is not used by the rule.
struct RuleOptimizerOptions : public torch::optim::OptimizerCloneableOptions<RuleOptimizerOptions> {
  double get_lr() const override { return 0; }
  void set_lr(const double) override {}
};

/// Wraps `rule` as a torch::optim::Optimizer. step() reads p.grad() of every parameter (all groups,
/// in order), applies the rule without building a graph and writes the new values in place.
/// Parameters whose grad is undefined are treated as having a zero gradient.
class RuleOptimizer : public torch::optim::Optimizer {
 public:
  RuleOptimizer(std::vector<torch::Tensor> params, RulePtr rule);

  torch::Tensor step(LossClosure closure = nullptr) override;
  /// Writes the rule's state (not φ: that lives in the rule's checkpoint).
  void save(torch::serialize::OutputArchive& archive) const override;
  void load(torch::serialize::InputArchive& archive) override;

  const State& rule_state() const { return state_; }
  /// True once the first step has built the rule's state (or set_rule_state() has given one).
  bool initialised() const { return initialised_; }
  /// Replaces the rule's state, e.g. by one saved from another optimizer over the same parameters
  /// (the Python module's load_state_dict); later steps continue from it.
  void set_rule_state(State state);
  const UpdateRule& rule() const { return *rule_; }

 private:
  std::vector<torch::Tensor> all_params() const;
  RulePtr rule_;
  State state_;
  bool initialised_ = false;
};

}  // namespace optim
}  // namespace l2o
