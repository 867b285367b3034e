#pragma once
/// TrainableAdam of L2O-Scale (Wichrowska et al. 2017; reference `trainable_adam.py`, SPEC §1.4):
/// Adam (Kingma & Ba 2015) whose hyper-parameters are meta-parameters.
///
/// As in the reference, φ is four scalars shared by every tensor of the problem (global, not
/// per-tensor): log lr, logit β₁, logit β₂, log ε.
#include <l2o/optim/update_rule.h>

#include <torch/arg.h>
#include <torch/nn/module.h>

namespace l2o {
namespace learned {

/// Initial hyper-parameters (the reference's defaults, which are torch::optim::Adam's) and the
/// reference's two stabilisers.
struct TrainableAdamOptions {
  TORCH_ARG(double, lr) = 1e-3;
  TORCH_ARG(double, beta1) = 0.9;
  TORCH_ARG(double, beta2) = 0.999;
  TORCH_ARG(double, eps) = 1e-8;
  /// Added to exp(log ε), so that ε stays positive however far log ε is trained (reference: 1e-10).
  TORCH_ARG(double, eps_offset) = 1e-10;
  /// Added to v̂ under the square root: d√v/dv is infinite at v = 0 (any coordinate whose gradient has
  /// always been zero), which would make meta-gradients NaN (reference: 1e-10).
  TORCH_ARG(double, sqrt_eps) = 1e-10;

 public:
  void validate() const;
};

/// With β₁ = σ(logit β₁), β₂ = σ(logit β₂), ε = exp(log ε) + eps_offset, lr = exp(log lr):
///   m ← β₁m + (1−β₁)g;  v ← β₂v + (1−β₂)g²;  m̂ = m/(1−β₁ᵗ);  v̂ = v/(1−β₂ᵗ);
///   θ ← θ − lr·m̂ / (√(v̂ + sqrt_eps) + ε).
/// With eps_offset = sqrt_eps = 0 and φ at its initial value this is torch::optim::Adam.
class TrainableAdam : public optim::UpdateRule, public torch::nn::Module {
 public:
  explicit TrainableAdam(TrainableAdamOptions options = {});
  std::string name() const override { return "trainable_adam"; }
  Spec spec() const override;
  optim::State init(const TensorList& params) const override;
  optim::UpdateResult update(const TensorList& params, const TensorList& grads,
                             const optim::State& state) const override;
  torch::nn::Module* module() override { return this; }
  /// Sets φ to the initial hyper-parameters, computed in φ's current dtype (call after .to(kDouble)
  /// to have them exact in float64).
  void reset_parameters();
  const TrainableAdamOptions& options() const { return options_; }
  static std::shared_ptr<TrainableAdam> from_spec(const Spec& spec);

 private:
  TrainableAdamOptions options_;
  torch::Tensor log_lr_, beta1_logit_, beta2_logit_, log_eps_;
};

}  // namespace learned
}  // namespace l2o
