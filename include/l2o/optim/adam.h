#pragma once
/// Adam (Kingma & Ba 2015), the functional twin of torch::optim::Adam (including amsgrad).
#include <l2o/optim/update_rule.h>

#include <torch/arg.h>

namespace l2o {
namespace optim {

/// Options of torch::optim::Adam with the same names and defaults.
struct AdamOptions {
  TORCH_ARG(double, lr) = 1e-3;
  TORCH_ARG(double, beta1) = 0.9;
  TORCH_ARG(double, beta2) = 0.999;
  TORCH_ARG(double, eps) = 1e-8;
  TORCH_ARG(double, weight_decay) = 0;
  TORCH_ARG(bool, amsgrad) = false;

 public:
  void validate() const;
};

/// m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²; θ ← θ − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε).
class Adam : public UpdateRule {
 public:
  explicit Adam(AdamOptions options = {});
  std::string name() const override { return "adam"; }
  Spec spec() const override;
  State init(const TensorList& params) const override;
  UpdateResult update(const TensorList& params, const TensorList& grads, const State& state) const override;
  const AdamOptions& options() const { return options_; }
  static std::shared_ptr<Adam> from_spec(const Spec& spec);

 private:
  AdamOptions options_;
};

}  // namespace optim
}  // namespace l2o
