#pragma once
/// Problem wrappers of L2O-Scale (`problem_generator.py`, SPEC §2): they take any problem and change
/// its parameterisation, objective or the gradient the optimizer sees. In spec strings the wrapped
/// problem is written in the inline form of registry.h (`rescale:scale=10,of=quadratic/dim=20`).
#include <l2o/core/spec.h>
#include <l2o/problems/problem.h>

#include <string>
#include <vector>

namespace l2o {
namespace problems {

/// Forwards every call to the wrapped problem; the wrappers below override what they change.
class ProblemWrapper : public Problem {
 public:
  explicit ProblemWrapper(ProblemPtr inner);
  TensorList init_params(at::Generator& gen) const override { return inner_->init_params(gen); }
  torch::Tensor loss(const TensorList& params, const Batch& batch) const override { return inner_->loss(params, batch); }
  Batch sample_batch(at::Generator& gen) const override { return inner_->sample_batch(gen); }
  Batch objective_batch() const override { return inner_->objective_batch(); }
  Batch train_batch() const override { return inner_->train_batch(); }
  Batch test_batch() const override { return inner_->test_batch(); }
  TensorList perturb_gradients(TensorList grads, at::Generator& gen) const override {
    return inner_->perturb_gradients(std::move(grads), gen);
  }
  double accuracy(const TensorList& params, const Batch& batch) const override { return inner_->accuracy(params, batch); }
  bool deterministic() const override { return inner_->deterministic(); }
  std::optional<double> optimum_value() const override { return inner_->optimum_value(); }
  TensorList optimum_params() const override { return inner_->optimum_params(); }
  const ProblemPtr& inner() const { return inner_; }

 protected:
  ProblemPtr inner_;
};

/// Gradient noise (reference `Problem.gradients`, the `noise_stdev` of every problem): the optimizer
/// sees g + σ·ε, ε ~ N(0, I) drawn from the generator passed to perturb_gradients, after the inner
/// problem's own perturbation. The registry builds it from the `noise=σ` key any spec may carry.
class GradientNoise : public ProblemWrapper {
 public:
  GradientNoise(ProblemPtr inner, double stddev);
  std::string name() const override;
  TensorList perturb_gradients(TensorList grads, at::Generator& gen) const override;
  /// A noisy gradient differs from the objective's gradient, so it is never deterministic.
  bool deterministic() const override { return false; }

 private:
  double stddev_;
};

/// Rescaled parameters (reference `Rescale`): θ = scale·θ_inner, f(θ) = f_inner(θ/scale),
/// θ₀ = scale·θ₀_inner. Same minimum value, minimiser scaled. Gradient perturbations of the inner
/// problem apply to the gradient in θ.
class Rescale : public ProblemWrapper {
 public:
  Rescale(ProblemPtr inner, double scale);
  /// `rescale:scale=10,of=<inline spec>`.
  static ProblemPtr from_spec(const Spec& spec, at::Generator& gen);
  std::string name() const override;
  TensorList init_params(at::Generator& gen) const override;
  torch::Tensor loss(const TensorList& params, const Batch& batch) const override;
  double accuracy(const TensorList& params, const Batch& batch) const override;
  TensorList optimum_params() const override;

 private:
  TensorList unscale(const TensorList& params) const;
  double scale_;
};

/// Task augmentation by reparameterisation (SPEC §8; Celo, learned_optimization's `ReparamWeights`):
/// the optimizer sees θ' with θ = s ⊙ θ', f(θ') = f_inner(s ⊙ θ'), θ'₀ = θ₀ / s, so ∇_θ' f = s ⊙ ∇f_inner.
/// The scales are drawn once per instance (one meta-iteration's task), log-uniformly in [min, max],
/// one per tensor or one per coordinate. Same minimum value. Gradient perturbations of the inner
/// problem apply to the gradient in θ', as for Rescale.
class Reparam : public ProblemWrapper {
 public:
  enum class Per { kTensor, kCoordinate };
  /// Draws the scales with `gen` (θ₀'s shapes are read from a copy of `gen`, so the inner problem's
  /// own draws are not disturbed).
  Reparam(ProblemPtr inner, double min_scale, double max_scale, Per per, at::Generator& gen);
  /// `reparam:min=1e-3,max=1e3,per=tensor|coordinate,of=<inline spec>`.
  static ProblemPtr from_spec(const Spec& spec, at::Generator& gen);
  std::string name() const override;
  TensorList init_params(at::Generator& gen) const override;
  torch::Tensor loss(const TensorList& params, const Batch& batch) const override;
  double accuracy(const TensorList& params, const Batch& batch) const override;
  TensorList optimum_params() const override;
  /// s, one tensor per parameter tensor (shape [] per tensor, the parameter's shape per coordinate).
  const TensorList& scales() const { return scales_; }

 private:
  TensorList scaled(const TensorList& params) const;
  double min_, max_;
  Per per_;
  TensorList scales_;
};

/// f(θ) = log(f_inner(θ) + 10⁻⁶) − log(10⁻⁶) (reference `LogObjective`): ≥ 0 whenever f_inner ≥ 0.
class LogObjective : public ProblemWrapper {
 public:
  explicit LogObjective(ProblemPtr inner);
  /// `log_objective:of=<inline spec>`.
  static ProblemPtr from_spec(const Spec& spec, at::Generator& gen);
  std::string name() const override;
  torch::Tensor loss(const TensorList& params, const Batch& batch) const override;
  std::optional<double> optimum_value() const override;
};

/// Sparse gradients (reference `SparseProblem`): each gradient entry is replaced by 0 with probability
/// `prob` (0.99), independently per entry and step. As in the reference, the gradient noise σ of this
/// wrapper (`noise=σ` on the `sparse` spec) is added before the mask, so zeroed entries stay 0.
class SparseGradient : public ProblemWrapper {
 public:
  SparseGradient(ProblemPtr inner, double prob, double noise);
  /// `sparse:prob=0.99,of=<inline spec>[,noise=σ]`.
  static ProblemPtr from_spec(const Spec& spec, at::Generator& gen);
  std::string name() const override;
  TensorList perturb_gradients(TensorList grads, at::Generator& gen) const override;
  bool deterministic() const override { return false; }

 private:
  double prob_, noise_;
};

/// Sum of independent problems (reference `SumTask`): θ is the concatenation of the parts' parameter
/// lists, f(θ) = Σ_k f_k(θ_k). Parts must be data-free. Each part's gradient perturbation (e.g. its
/// own `noise=σ`) applies to its slice; the reference builds the sum's gradients itself and so
/// silently drops the parts' noise in its "noisy sum" set, which this class does not.
class SumTask : public Problem {
 public:
  explicit SumTask(std::vector<ProblemPtr> parts);
  /// `sum:of=<inline spec>+<inline spec>+...`.
  static ProblemPtr from_spec(const Spec& spec, at::Generator& gen);
  std::string name() const override;
  TensorList init_params(at::Generator& gen) const override;
  torch::Tensor loss(const TensorList& params, const Batch& batch) const override;
  TensorList perturb_gradients(TensorList grads, at::Generator& gen) const override;
  bool deterministic() const override;
  std::optional<double> optimum_value() const override;
  TensorList optimum_params() const override;
  const std::vector<ProblemPtr>& parts() const { return parts_; }

 private:
  TensorList slice(const TensorList& params, size_t part) const;
  std::vector<ProblemPtr> parts_;
  std::vector<size_t> offsets_;  // parts_[k] owns params [offsets_[k], offsets_[k+1])
};

}  // namespace problems
}  // namespace l2o
