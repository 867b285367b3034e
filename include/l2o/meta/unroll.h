#pragma once
/// One truncation of truncated backpropagation through time (SPEC §3).
#include <l2o/meta/regularizer.h>
#include <l2o/optim/update_rule.h>
#include <l2o/problems/problem.h>

namespace l2o {
namespace meta {

/// The meta-objective of an unroll.
enum class Objective {
  /// DM 2016: Σ_t f(θ_t).
  kSum,
  /// L2O-Scale: mean_t log(f(θ_t)/(f₀ + 1e-6) + 1e-6).
  kLogRatio,
};

/// Parses "sum" or "log_ratio".
Objective parse_objective(const std::string& name);
std::string objective_name(Objective objective);

/// Where an inner trajectory stands between unrolls: θ and the optimizer state (both detached).
struct Trajectory {
  TensorList params;
  optim::State state;
  /// The teacher's state in an imitation meta-iteration (empty otherwise).
  optim::State teacher_state;
  /// Inner steps taken so far in this meta-iteration.
  int64_t step = 0;
};

/// Options of one unroll.
struct UnrollOptions {
  int64_t length = 20;
  Objective objective = Objective::kSum;
  /// Keep ∂g/∂θ in the meta-gradient (second-order); false detaches the optimizee gradient.
  bool second_derivatives = false;
  /// f₀ of the log-ratio objective (the objective at the start of the meta-iteration).
  double f0 = 1;
  /// Stop when f > blowup_factor·f₀ (0 disables).
  double blowup_factor = 0;

  /// Flatness regulariser (SPEC §4), at θ_t on the minibatch before each update. `alpha` > 0 adds
  /// α·Σ_t reg_t to the meta-loss (differentiated through the HVPs); `beta` > 0 adds β·reg to the
  /// optimizee loss whose gradient the rule sees. Both 0: nothing is computed.
  RegularizerOptions regularizer;
  double alpha = 0;
  double beta = 0;

  /// Imitation (SPEC §4): when set, the teacher takes `teacher_steps` steps on the same minibatch per
  /// learned step, the trajectory follows the teacher (teacher forcing), and the meta-loss is
  /// Σ_t ½‖Δθ_learned − Δθ_teacher‖² / num_params (plus the α term).
  const optim::UpdateRule* teacher = nullptr;
  int64_t teacher_steps = 1;
};

/// What one unroll produced.
struct UnrollResult {
  /// Differentiable in the rule's meta-parameters; undefined if the unroll diverged at its first step.
  torch::Tensor meta_loss;
  /// f(θ_t) after each update, detached.
  std::vector<double> losses;
  /// True when a non-finite objective (or blow-up) stopped the unroll early.
  bool diverged = false;
  /// Σ_t reg_t (detached) and the Hessian-vector products it took; 0 when the regulariser is off.
  double regularizer = 0;
  int64_t hvps = 0;
  /// The imitation term of the meta-loss (detached); 0 without a teacher.
  double imitation = 0;
  /// End point, detached: the start of the next unroll.
  Trajectory end;
};

/// Runs `options.length` updates of `rule` on `problem` from `start`, building the graph from the
/// rule's meta-parameters through every update. Gradients come from minibatches drawn with `gen`;
/// the meta-objective uses the problem's objective batch. A teacher's state, if any, is
/// `start.teacher_state` (initialise it with teacher.init).
UnrollResult unroll(const optim::UpdateRule& rule, const problems::Problem& problem, const Trajectory& start,
                    const UnrollOptions& options, at::Generator& gen);

/// Runs `steps` updates with no graph through the rule (evaluation). Returns f(θ_t) for
/// t = 0..steps on the objective batch; stops early (shorter vector) on a non-finite objective.
std::vector<double> run_inner(const optim::UpdateRule& rule, const problems::Problem& problem,
                              TensorList params, int64_t steps, at::Generator& gen);

}  // namespace meta
}  // namespace l2o
