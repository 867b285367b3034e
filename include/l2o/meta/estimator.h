#pragma once
/// Meta-gradient estimators (SPEC §7): truncated BPTT (the seeds'), antithetic truncated ES and PES
/// (Vicol, Metz & Sohl-Dickstein 2021, "Unbiased Gradient Estimation in Unrolled Computation Graphs
/// with Persistent Evolution Strategies"). The trainer's loop calls one Estimator per task and
/// truncation; what it does with the estimate (sanitise, reduce over tasks and ranks, meta-step) is
/// the same for all of them. docs/estimators.md has the formulas, costs and when to use which.
#include <l2o/meta/unroll.h>

#include <torch/arg.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace l2o {
namespace meta {

/// Which estimator (`estimator`).
enum class EstimatorType {
  /// Truncated backpropagation through time: the exact gradient of each truncation's meta-loss
  /// with the start of the truncation held fixed (biased across truncations).
  kTbptt,
  /// Antithetic truncated ES: ĝ = Σ_i (L_i⁺ − L_i⁻) ε_i / (2Pσ²), ε_i ~ N(0, σ²I), every pair
  /// unrolled from the same start (biased across truncations, like TBPTT).
  kEs,
  /// Persistent ES: each pair keeps its own ± trajectories over the inner problem and
  /// ĝ = Σ_i (L_i⁺ − L_i⁻) ξ_i / (2Pσ²), ξ_i = Σ of the pair's ε_i so far (unbiased for the horizon).
  kPes,
};

/// Parses "tbptt", "es" or "pes".
EstimatorType parse_estimator(const std::string& name);
std::string estimator_name(EstimatorType type);

/// Options of the estimator; the trainer's es_* options (defaults: learned_optimization's).
struct EstimatorOptions {
  TORCH_ARG(EstimatorType, type) = EstimatorType::kTbptt;
  /// Standard deviation σ of every coordinate of a perturbation ε ~ N(0, σ²I) of φ.
  TORCH_ARG(double, sigma) = 0.01;
  /// Antithetic pairs P per task and truncation (2P perturbed forward unrolls).
  TORCH_ARG(int64_t, pairs) = 8;
  /// Blow-up cap M, a multiple of f₀: L± is at most the meta-objective of a truncation that stayed
  /// at f = M·f₀ for all of its steps (see loss_cap), and a perturbed unroll that diverged (non-finite
  /// f, or f > blowup_factor·f₀) scores exactly that.
  TORCH_ARG(double, cap_factor) = 1e3;

 public:
  /// Throws l2o::Error naming the bad value (under the trainer's option names es_sigma, ...).
  void validate() const;
};

/// The blow-up cap of a truncation under `options` (its objective, length and f₀), with M = cap_factor:
/// sum: length·M·(|f₀| + 1e-6); log_ratio: log(M) (the per-step term log(M·f₀/(f₀ + 1e-6) + 1e-6)).
double loss_cap(const UnrollOptions& options, double cap_factor);

/// A unroll of `options.length` steps with no graph through the rule's meta-parameters (the rule
/// steps under torch::NoGradGuard, so the HierarchicalRNN runs its fused forward step): the same
/// trajectory, minibatches and meta-objective as unroll() on the same generator, as plain numbers.
/// The regulariser terms (alpha, beta) are as in unroll(); a teacher (imitation) is refused.
struct ForwardUnroll {
  /// The truncation's meta-objective (α term included); NaN when it diverged at its first step.
  double meta_loss = 0;
  std::vector<double> losses;
  bool diverged = false;
  double regularizer = 0;
  int64_t hvps = 0;
  Trajectory end;
};
ForwardUnroll forward_unroll(const optim::UpdateRule& rule, const problems::Problem& problem, const Trajectory& start,
                             const UnrollOptions& options, at::Generator& gen);

/// What one truncation of one task gave the trainer.
struct TruncationResult {
  /// The meta-loss to log and average: TBPTT's unroll meta-loss (NaN when the unroll had none);
  /// for ES/PES the unperturbed φ's L, capped like L± (a diverged φ trajectory logs the cap).
  double meta_loss = 0;
  /// The task's estimate is in φ.grad() (TBPTT: iff meta_loss is finite; ES/PES: always).
  bool has_gradient = false;
  /// f along the carried (unperturbed) trajectory, whether it diverged, its regulariser sum, and
  /// the Hessian-vector products every unroll of the truncation took.
  std::vector<double> losses;
  bool diverged = false;
  double regularizer = 0;
  int64_t hvps = 0;
  /// Start of the task's next truncation: the unperturbed trajectory's end.
  Trajectory end;
  /// ES/PES: L_i⁺ and L_i⁻ of each pair after capping (empty for TBPTT).
  std::vector<double> plus, minus;
};

/// An estimator's own state for one task's inner problem (PES: the pairs' trajectories and ξ_i).
struct EstimatorState {
  virtual ~EstimatorState() = default;
};

/// The meta-gradient estimate of one task, one truncation at a time.
class Estimator {
 public:
  virtual ~Estimator() = default;
  virtual EstimatorType type() const = 0;
  /// A new inner problem starting at `start` (the task's state; null when the estimator has none).
  virtual std::unique_ptr<EstimatorState> start(const Trajectory& start) const { return nullptr; }
  /// One truncation of `options.length` steps from `start` with the task's generator (which it
  /// advances as the unperturbed trajectory's draws do). Replaces φ.grad() with the task's estimate
  /// when the result has_gradient; φ itself is unchanged (bit for bit) on return.
  virtual TruncationResult truncate(const problems::Problem& problem, const Trajectory& start,
                                    const UnrollOptions& options, at::Generator& gen, EstimatorState* state) = 0;
};

/// The estimator of `options` over the meta-parameters of `rule` (which must be learned; it must
/// outlive the estimator).
std::unique_ptr<Estimator> make_estimator(optim::UpdateRule& rule, const EstimatorOptions& options);

}  // namespace meta
}  // namespace l2o
