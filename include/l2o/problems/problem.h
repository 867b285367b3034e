#pragma once
/// Optimizees (SPEC §2). A Problem is one drawn instance (e.g. one batch of 128 random quadratics);
/// the registry draws instances from spec strings and a ProblemSet samples among weighted specs.
#include <l2o/core/tensor_list.h>

#include <ATen/core/Generator.h>

#include <limits>
#include <memory>
#include <optional>
#include <string>

namespace l2o {
namespace problems {

/// A minibatch or a whole split. Both tensors are undefined for deterministic problems.
struct Batch {
  torch::Tensor inputs;
  torch::Tensor targets;
  bool empty() const { return !inputs.defined(); }
};

/// One optimisation problem f(θ; batch).
class Problem {
 public:
  virtual ~Problem() = default;
  /// The spec string this instance was drawn from.
  virtual std::string name() const = 0;
  /// Initial parameters θ₀ (drawn from `gen` where the problem says so).
  virtual TensorList init_params(at::Generator& gen) const = 0;
  /// Differentiable objective at `params` on `batch` (an empty batch for deterministic problems).
  virtual torch::Tensor loss(const TensorList& params, const Batch& batch) const = 0;
  /// The minibatch that gives the inner gradient; empty for deterministic problems.
  virtual Batch sample_batch(at::Generator& gen) const { return {}; }
  /// The batch of the meta-objective (the training split, or a fixed subset of it).
  virtual Batch objective_batch() const { return {}; }
  /// The whole training split, for reports (the objective batch may be a subset of it).
  virtual Batch train_batch() const { return objective_batch(); }
  /// The held-out split; empty when the problem has none.
  virtual Batch test_batch() const { return {}; }
  /// The gradient the optimizer sees, made from the exact minibatch gradient: identity by default;
  /// the gradient-noise and sparse-gradient wrappers of L2O-Scale override it (SPEC §2).
  virtual TensorList perturb_gradients(TensorList grads, at::Generator& gen) const { return grads; }
  /// Classification accuracy of `params` on `batch`, for problems that classify (NaN otherwise).
  virtual double accuracy(const TensorList& params, const Batch& batch) const {
    return std::numeric_limits<double>::quiet_NaN();
  }
  /// True when the gradient and the objective use the same (deterministic) function.
  virtual bool deterministic() const { return true; }
  /// Known minimum value, when there is one (tests check convergence to it).
  virtual std::optional<double> optimum_value() const { return std::nullopt; }
  /// Known minimiser, when there is one.
  virtual TensorList optimum_params() const { return {}; }
};

using ProblemPtr = std::shared_ptr<Problem>;

}  // namespace problems
}  // namespace l2o
