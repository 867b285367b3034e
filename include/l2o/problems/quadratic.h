#pragma once
/// Quadratic problems: the DM family of "learning to learn" and a closed-form isotropic bowl.
#include <l2o/core/spec.h>
#include <l2o/problems/problem.h>

namespace l2o {
namespace problems {

/// DM quadratic (Andrychowicz et al. 2016 §3.1, seed 001): `batch` independent functions
/// f_b(θ_b) = ‖W_b θ_b − y_b‖², W_b ∈ R^{dim×dim} and y_b ∈ R^dim drawn i.i.d. N(0,1);
/// the objective is their mean over b. θ is one tensor [batch, dim], θ₀ = stddev·N(0,1) (0 by default).
class DmQuadratic : public Problem {
 public:
  DmQuadratic(int64_t batch, int64_t dim, double stddev, at::Generator& gen);
  static ProblemPtr from_spec(const Spec& spec, at::Generator& gen);
  std::string name() const override;
  TensorList init_params(at::Generator& gen) const override;
  torch::Tensor loss(const TensorList& params, const Batch& batch) const override;
  /// The mean over b of each function's minimum (least-squares residual; 0 when W_b is invertible).
  std::optional<double> optimum_value() const override;
  TensorList optimum_params() const override;
  const torch::Tensor& w() const { return w_; }
  const torch::Tensor& y() const { return y_; }

 private:
  int64_t batch_, dim_;
  double stddev_;
  torch::Tensor w_, y_;
};

/// Isotropic quadratic f(θ) = ½‖θ − c‖² with c ~ N(0,1) and θ₀ ~ N(0,1); minimum 0 at c.
class IsotropicQuadratic : public Problem {
 public:
  IsotropicQuadratic(int64_t dim, at::Generator& gen);
  static ProblemPtr from_spec(const Spec& spec, at::Generator& gen);
  std::string name() const override;
  TensorList init_params(at::Generator& gen) const override;
  torch::Tensor loss(const TensorList& params, const Batch& batch) const override;
  std::optional<double> optimum_value() const override { return 0.0; }
  TensorList optimum_params() const override { return {center_}; }

 private:
  int64_t dim_;
  torch::Tensor center_;
};

/// Rosenbrock f(x, y) = (1 − x)² + 100(y − x²)²; minimum 0 at (1, 1); θ₀ ~ U(low, high)², by default
/// U(−2, 2)² (the L2O-Scale reference draws U(−5, 10)²: `rosenbrock:low=-5,high=10`).
class Rosenbrock : public Problem {
 public:
  explicit Rosenbrock(double low = -2, double high = 2);
  static ProblemPtr from_spec(const Spec& spec, at::Generator& gen);
  std::string name() const override;
  TensorList init_params(at::Generator& gen) const override;
  torch::Tensor loss(const TensorList& params, const Batch& batch) const override;
  std::optional<double> optimum_value() const override { return 0.0; }
  TensorList optimum_params() const override;

 private:
  double low_, high_;
};

}  // namespace problems
}  // namespace l2o
