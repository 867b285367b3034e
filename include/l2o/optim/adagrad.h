#pragma once
/// Adagrad (Duchi et al. 2011), the functional twin of torch::optim::Adagrad.
#include <l2o/optim/update_rule.h>

#include <torch/arg.h>

namespace l2o {
namespace optim {

/// Options of torch::optim::Adagrad with the same names and defaults.
struct AdagradOptions {
  TORCH_ARG(double, lr) = 1e-2;
  TORCH_ARG(double, lr_decay) = 0;
  TORCH_ARG(double, weight_decay) = 0;
  TORCH_ARG(double, initial_accumulator_value) = 0;
  TORCH_ARG(double, eps) = 1e-10;

 public:
  void validate() const;
};

/// s ← s + g²; θ ← θ − lr/(1 + (t−1)·lr_decay) · g/(√s + ε).
class Adagrad : public UpdateRule {
 public:
  explicit Adagrad(AdagradOptions options = {});
  std::string name() const override { return "adagrad"; }
  Spec spec() const override;
  State init(const TensorList& params) const override;
  UpdateResult update(const TensorList& params, const TensorList& grads, const State& state) const override;
  const AdagradOptions& options() const { return options_; }
  static std::shared_ptr<Adagrad> from_spec(const Spec& spec);

 private:
  AdagradOptions options_;
};

}  // namespace optim
}  // namespace l2o
