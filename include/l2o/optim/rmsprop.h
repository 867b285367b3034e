#pragma once
/// RMSProp (Tieleman & Hinton 2012), the functional twin of torch::optim::RMSprop.
#include <l2o/optim/update_rule.h>

#include <torch/arg.h>

namespace l2o {
namespace optim {

/// Options of torch::optim::RMSprop with the same names and defaults.
struct RmspropOptions {
  TORCH_ARG(double, lr) = 1e-2;
  TORCH_ARG(double, alpha) = 0.99;
  TORCH_ARG(double, eps) = 1e-8;
  TORCH_ARG(double, weight_decay) = 0;
  TORCH_ARG(double, momentum) = 0;
  TORCH_ARG(bool, centered) = false;

 public:
  void validate() const;
};

/// s ← αs + (1−α)g²; θ ← θ − lr·g/(√s + ε) (centred: √(s − ḡ²); with momentum buffer b ← μb + g/(…)).
class Rmsprop : public UpdateRule {
 public:
  explicit Rmsprop(RmspropOptions options = {});
  std::string name() const override { return "rmsprop"; }
  Spec spec() const override;
  State init(const TensorList& params) const override;
  UpdateResult update(const TensorList& params, const TensorList& grads, const State& state) const override;
  const RmspropOptions& options() const { return options_; }
  static std::shared_ptr<Rmsprop> from_spec(const Spec& spec);

 private:
  RmspropOptions options_;
};

}  // namespace optim
}  // namespace l2o
