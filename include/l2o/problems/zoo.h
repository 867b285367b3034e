#pragma once
/// The L2O-Scale problem zoo (Wichrowska et al. 2017; `problem_generator.py` of the TF reference,
/// SPEC §2) plus Lasso and Rastrigin (L2O-Entropy). Parameter shapes and initialisations follow the
/// reference (`init_tensors`: N(0,1) unless a class says otherwise). Every objective used for
/// meta-training is ≥ 0 because the log-ratio meta-loss divides by f₀; the one exception, Saddle, is
/// unbounded below and says so.
#include <l2o/core/spec.h>
#include <l2o/data/dataset.h>
#include <l2o/problems/problem.h>

#include <string>

namespace l2o {
namespace problems {

/// Random quadratic f(x) = ½‖Wx − y‖², W ∈ R^{dim×dim}, y ∈ R^{dim×1} drawn N(0,1); x is [dim, 1],
/// x₀ ~ N(0,1). Minimum: the least-squares residual (0 almost surely).
class Quadratic : public Problem {
 public:
  Quadratic(int64_t dim, at::Generator& gen);
  static ProblemPtr from_spec(const Spec& spec, at::Generator& gen);
  std::string name() const override;
  TensorList init_params(at::Generator& gen) const override;
  torch::Tensor loss(const TensorList& params, const Batch& batch) const override;
  std::optional<double> optimum_value() const override;
  TensorList optimum_params() const override;
  const torch::Tensor& w() const { return w_; }
  const torch::Tensor& y() const { return y_; }

 private:
  int64_t dim_;
  torch::Tensor w_, y_;
};

/// 2-D bowl f(x) = ½‖A x‖², A = diag(√κ, 1)·R(angle) with R the rotation by `angle` radians; x is
/// [2, 1], x₀ ~ N(0,1); minimum 0 at 0.
class Bowl : public Problem {
 public:
  Bowl(double cond, double angle);
  static ProblemPtr from_spec(const Spec& spec, at::Generator& gen);
  std::string name() const override;
  TensorList init_params(at::Generator& gen) const override;
  torch::Tensor loss(const TensorList& params, const Batch& batch) const override;
  std::optional<double> optimum_value() const override { return 0.0; }
  TensorList optimum_params() const override;
  const torch::Tensor& matrix() const { return matrix_; }

 private:
  double cond_, angle_;
  torch::Tensor matrix_;
};

/// The classic 2-D test functions of the reference (https://www.sfu.ca/~ssurjano/optimization.html),
/// on one parameter x = (x, y) ∈ R², each with the reference's formula and initial box:
/// - Ackley: −20 exp(−0.2 √(½(x²+y²))) − exp(½(cos 2πx + cos 2πy)) + e + 20; min 0 at 0; x₀ ~ U(±32.768).
/// - Beale: (1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)²; min 0 at (3, ½); x₀ ~ U(±4.5).
/// - Booth: (x + 2y − 7)² + (2x + y − 5)²; min 0 at (1, 3); x₀ ~ U(±10).
/// - Branin: (y − 5.1x²/(4π²) + 5x/π − 6)² + 10(1 − 1/(8π)) cos x + 10; min 5/(4π) at (π, 2.275)
///   (and two more); x₀ ~ U(−5,10)×U(0,15). Positive everywhere, so used unshifted.
/// - LogSumExp: log(e^{x+3y−0.1} + e^{x−3y−0.1} + e^{−x−0.1} + 1) > 0; min log(1 + 2√2 e^{−0.1}) at
///   (−ln2/2, 0); x₀ ~ N(0,1).
/// - Matyas: 0.26(x² + y²) − 0.48xy ≥ 0; min 0 at 0; x₀ ~ U(±10).
/// - Michalewicz (m = 5): 2 − sin x sin¹⁰(x²/π) − sin y sin¹⁰(2y²/π). The reference's "+2" shift makes
///   it ≥ 0 on all of R² (each product lies in [−1, 1]); its infimum over R² (0) is not attained, so no
///   optimum is reported (on the box [0,π]² the minimum is ≈ 0.193377 at (2.18531, π/2); the textbook
///   −1.8013 at (2.20, 1.57) is for m = 10); x₀ ~ U(0,π)².
/// - StyblinskiTang: ½ Σ (xᵢ⁴ − 16xᵢ² + 5xᵢ) + 80: the reference's "+80" shift makes it ≥ 0; min
///   80 − 78.33233… ≈ 1.66767 at xᵢ = −2.903534; x₀ ~ U(±5).
/// - Saddle: x² − y², unbounded below, x₀ ~ N(0,1): a test of behaviour near saddle points, NOT for
///   meta-training with the log-ratio objective (the reference uses it in no problem set either).
class TestFunction2D : public Problem {
 public:
  enum class Kind { kAckley, kBeale, kBooth, kBranin, kLogSumExp, kMatyas, kMichalewicz, kStyblinskiTang, kSaddle };
  explicit TestFunction2D(Kind kind) : kind_(kind) {}
  /// Builds the function whose spec name (snake_case, e.g. `styblinski_tang`) is spec.name().
  static ProblemPtr from_spec(const Spec& spec, at::Generator& gen);
  /// The Kind of a spec name, or false when `name` is not a 2-D test function.
  static bool parse_kind(const std::string& name, Kind* kind);
  std::string name() const override;
  TensorList init_params(at::Generator& gen) const override;
  torch::Tensor loss(const TensorList& params, const Batch& batch) const override;
  std::optional<double> optimum_value() const override;
  TensorList optimum_params() const override;

 private:
  Kind kind_;
};

/// p-norm of a random residual (reference `Norm`): f(x) = (Σᵢ (|Wx − y|ᵢ + 10⁻⁶)^p)^{1/p}, W, y ~ N(0,1),
/// x is [dim, 1], x₀ ~ N(0,1). Minimum dim^{1/p}·10⁻⁶ at the solution of Wx = y.
class Norm : public Problem {
 public:
  Norm(int64_t dim, double p, at::Generator& gen);
  static ProblemPtr from_spec(const Spec& spec, at::Generator& gen);
  std::string name() const override;
  TensorList init_params(at::Generator& gen) const override;
  torch::Tensor loss(const TensorList& params, const Batch& batch) const override;
  std::optional<double> optimum_value() const override;
  TensorList optimum_params() const override;
  const torch::Tensor& w() const { return w_; }
  const torch::Tensor& y() const { return y_; }

 private:
  int64_t dim_;
  double p_;
  torch::Tensor w_, y_;
};

/// Parameters that must reach 0 in order: f(x) = x₀² + Σ_{i≥1} xᵢ² / (x_{i−1}² + 10⁻⁶), x ∈ R^{dim+1},
/// x₀ ~ N(0,1); minimum 0 at 0. The reference attaches random_binary data that its objective never
/// reads, so this problem has none.
class DependencyChain : public Problem {
 public:
  explicit DependencyChain(int64_t dim);
  static ProblemPtr from_spec(const Spec& spec, at::Generator& gen);
  std::string name() const override;
  TensorList init_params(at::Generator& gen) const override;
  torch::Tensor loss(const TensorList& params, const Batch& batch) const override;
  std::optional<double> optimum_value() const override { return 0.0; }
  TensorList optimum_params() const override;

 private:
  int64_t dim_;
};

/// f(x) = max xᵢ² + 1/min xᵢ² − 2 + 10⁻¹², x ∈ R^dim: only the extreme coordinates get a gradient.
/// f ≥ 10⁻¹² with equality iff every |xᵢ| = 1; x₀ ~ N(0,1).
class MinMaxWell : public Problem {
 public:
  explicit MinMaxWell(int64_t dim);
  static ProblemPtr from_spec(const Spec& spec, at::Generator& gen);
  std::string name() const override;
  TensorList init_params(at::Generator& gen) const override;
  torch::Tensor loss(const TensorList& params, const Batch& batch) const override;
  std::optional<double> optimum_value() const override { return 1e-12; }
  TensorList optimum_params() const override;

 private:
  int64_t dim_;
};

/// Search for a bilinear algorithm multiplying n×n matrices with k products (reference
/// `MatMulAlgorithm`): θ_a, θ_b ∈ R^{n²×k}; on the n⁴ pairs of one-hot matrices (a, b) with c = ab,
/// P = (vec(a)θ_a) ∘ (vec(b)θ_b), θ_c = (PᵀP)⁻¹Pᵀ C is solved in closed form and
/// f = ‖P θ_c − C‖²_F ≥ 0 (0 iff an exact algorithm with k products exists). x₀: N(0,1) with every
/// column normalised to unit length. Requires n ≥ 2, n² ≤ k ≤ n³.
class MatMulAlgorithm : public Problem {
 public:
  MatMulAlgorithm(int64_t n, int64_t k);
  static ProblemPtr from_spec(const Spec& spec, at::Generator& gen);
  std::string name() const override;
  TensorList init_params(at::Generator& gen) const override;
  torch::Tensor loss(const TensorList& params, const Batch& batch) const override;

 private:
  int64_t n_, k_;
  torch::Tensor a_, b_, c_;
};

/// Lasso (L2O-Entropy), the standard form f(x) = ½‖Ax − b‖² + λ‖x‖₁ with A ∈ R^{rows×dim} and
/// b ∈ R^rows drawn N(0,1); x₀ ~ N(0,1). The minimum has no closed form: optimum_value() runs FISTA in
/// float64 to convergence; optimum_params() returns that float64 minimiser.
class Lasso : public Problem {
 public:
  Lasso(int64_t dim, int64_t rows, double lambda, at::Generator& gen);
  static ProblemPtr from_spec(const Spec& spec, at::Generator& gen);
  std::string name() const override;
  TensorList init_params(at::Generator& gen) const override;
  torch::Tensor loss(const TensorList& params, const Batch& batch) const override;
  std::optional<double> optimum_value() const override;
  TensorList optimum_params() const override;

 private:
  int64_t dim_, rows_;
  double lambda_;
  torch::Tensor a_, b_;
};

/// Rastrigin (L2O-Entropy), the standard form f(x) = a·dim + Σᵢ (xᵢ² − a cos 2πxᵢ); minimum 0 at 0,
/// many local minima near the integer lattice; x₀ ~ U(±5.12)^dim.
class Rastrigin : public Problem {
 public:
  Rastrigin(int64_t dim, double a);
  static ProblemPtr from_spec(const Spec& spec, at::Generator& gen);
  std::string name() const override;
  TensorList init_params(at::Generator& gen) const override;
  torch::Tensor loss(const TensorList& params, const Batch& batch) const override;
  std::optional<double> optimum_value() const override { return 0.0; }
  TensorList optimum_params() const override;

 private:
  int64_t dim_;
  double a_;
};

/// A zoo problem whose objective reads rows of a synthetic data set: minibatches of `batch` rows
/// drawn without replacement (batch=0: the whole train split), the meta-objective on the whole train
/// split, the test split held out. `name` is the canonical spec it was built from (given keys plus
/// the problem's defaults), so that make_problem(name()) draws from the same distribution.
class DataProblem : public Problem {
 public:
  DataProblem(std::string name, data::DataSplits splits, int64_t batch);
  std::string name() const override { return name_; }
  Batch sample_batch(at::Generator& gen) const override;
  Batch objective_batch() const override;
  Batch test_batch() const override;
  bool deterministic() const override;
  const data::DataSplits& splits() const { return splits_; }

 protected:
  std::string name_;
  data::DataSplits splits_;
  int64_t batch_;
};

/// Probes the parameters along data rows: f(x) = Σ_b Σᵢ (xᵢ d_{bi})², x ∈ R^{1×dim}, d from
/// `random_symmetric`; minimum 0 at 0.
class ProjectionQuadratic : public DataProblem {
 public:
  ProjectionQuadratic(std::string name, int64_t dim, data::DataSplits splits, int64_t batch);
  static ProblemPtr from_spec(const Spec& spec, at::Generator& gen);
  TensorList init_params(at::Generator& gen) const override;
  torch::Tensor loss(const TensorList& params, const Batch& batch) const override;
  std::optional<double> optimum_value() const override { return 0.0; }
  TensorList optimum_params() const override;

 private:
  int64_t dim_;
};

/// f(x) = Σ_b ‖x − d_b‖² − Σ_b ‖d_b‖² + 10⁻¹² = Σ_b (‖x‖² − 2x·d_b) + 10⁻¹², x ∈ R^{1×dim}, d from
/// `random_symmetric`. On a whole split (mean exactly 0) this is B‖x‖² + 10⁻¹² ≥ 0 with minimum 10⁻¹²
/// at 0, so the meta-objective is ≥ 0; a minibatch value can be negative (only gradients use it).
class SumOfQuadratics : public DataProblem {
 public:
  SumOfQuadratics(std::string name, int64_t dim, data::DataSplits splits, int64_t batch);
  static ProblemPtr from_spec(const Spec& spec, at::Generator& gen);
  TensorList init_params(at::Generator& gen) const override;
  torch::Tensor loss(const TensorList& params, const Batch& batch) const override;
  std::optional<double> optimum_value() const override { return 1e-12; }
  TensorList optimum_params() const override;

 private:
  int64_t dim_;
};

/// A winding path out to infinity: with r = ‖x‖, f(x) = Σ_b d_{b0}/(r + 10⁻⁶) +
/// Σ_b Σ_{i≥1} ((xᵢ − π cos x_{i−1}) d_{bi})², x ∈ R^dim, d from `random_binary` (so f ≥ 0); no
/// minimum (f → 0 as r → ∞ along the path).
class OutwardSnake : public DataProblem {
 public:
  OutwardSnake(std::string name, int64_t dim, data::DataSplits splits, int64_t batch);
  static ProblemPtr from_spec(const Spec& spec, at::Generator& gen);
  TensorList init_params(at::Generator& gen) const override;
  torch::Tensor loss(const TensorList& params, const Batch& batch) const override;

 private:
  int64_t dim_;
};

/// Softmax regression on bags of token ids (reference `SparseSoftmaxRegression`): params
/// E ∈ R^{classes×dim} (one embedding per id; the ids range over [0, classes) as in the reference),
/// W ∈ R^{dim×classes}, b ∈ R^classes; logits = (Σ_ids E[id]) W + b. The loss is the reference's
/// SoftmaxClassifier loss: with 2 classes the sigmoid cross-entropy of logit 0 against the label
/// (its convention: logit 0 large means label 1), otherwise softmax cross-entropy; plus
/// 10⁻³·mean over tensors of ‖θ‖². x₀ ~ N(0,1)·1.2/√(shape[0]). Data: `noisy_parity`.
class SparseSoftmaxRegression : public DataProblem {
 public:
  SparseSoftmaxRegression(std::string name, int64_t dim, data::DataSplits splits, int64_t batch);
  static ProblemPtr from_spec(const Spec& spec, at::Generator& gen);
  TensorList init_params(at::Generator& gen) const override;
  torch::Tensor loss(const TensorList& params, const Batch& batch) const override;
  /// Accuracy under the loss's own convention (see the class comment); the reference's argmax of
  /// the softmax contradicts its 2-class loss.
  double accuracy(const TensorList& params, const Batch& batch) const override;

 private:
  torch::Tensor logits(const TensorList& params, const torch::Tensor& inputs) const;
  int64_t dim_, classes_;
};

}  // namespace problems
}  // namespace l2o
