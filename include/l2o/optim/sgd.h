#pragma once
/// Stochastic gradient descent with optional (Nesterov) momentum, the functional twin of
/// torch::optim::SGD. "momentum" and "nag" are the same rule with momentum 0.9 (and Nesterov).
#include <l2o/optim/update_rule.h>

#include <torch/arg.h>

namespace l2o {
namespace optim {

/// Options of torch::optim::SGD, same names. LibTorch has no default rate; ours is 0.01.
struct SgdOptions {
  TORCH_ARG(double, lr) = 1e-2;
  TORCH_ARG(double, momentum) = 0;
  TORCH_ARG(double, dampening) = 0;
  TORCH_ARG(double, weight_decay) = 0;
  TORCH_ARG(bool, nesterov) = false;


 public:
  /// Throws with the bad value and how to fix it.
  void validate() const;
};

/// buf ← μ·buf + (1−τ)·g (buf₀ = g); d = g + μ·buf (Nesterov) or buf; θ ← θ − lr·d.
class Sgd : public UpdateRule {
 public:
  /// `name` is "sgd", "momentum" or "nag": the preset the options came from.
  explicit Sgd(SgdOptions options = {}, std::string name = "sgd");
  std::string name() const override { return name_; }
  Spec spec() const override;
  State init(const TensorList& params) const override;
  UpdateResult update(const TensorList& params, const TensorList& grads, const State& state) const override;
  const SgdOptions& options() const { return options_; }

  /// Builds sgd / momentum / nag from a spec with that name.
  static std::shared_ptr<Sgd> from_spec(const Spec& spec);

 private:
  SgdOptions options_;
  std::string name_;
};

}  // namespace optim
}  // namespace l2o
