#pragma once
/// Meta-training by truncated BPTT (SPEC §3) or ES/PES (SPEC §7): sample a problem, cut its trajectory
/// of `num_steps` into unrolls of `unroll_length`, take one meta-gradient step per unroll, validate on
/// fixed fresh problems every `evaluation_period` meta-iterations, keep the best and the latest checkpoint.
#include <l2o/meta/reduction.h>
#include <l2o/meta/unroll.h>
#include <l2o/problems/registry.h>

#include <nlohmann/json_fwd.hpp>
#include <torch/arg.h>

#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace torch {
namespace optim {
class Optimizer;
}
}  // namespace torch

namespace l2o {
namespace meta {

/// Every knob of meta-training; the same names are the command-line flags and config keys.
struct TrainOptions {
  /// Spec of the learned rule, e.g. `lstm:output_scale=0.1`.
  TORCH_ARG(std::string, optimizer) = "lstm";
  /// Problem set, e.g. `dm_quadratic:batch=128,dim=10`.
  TORCH_ARG(std::string, problem) = "dm_quadratic";
  /// Problem set of validation (SPEC §8: best.pt is chosen on problems disjoint from training);
  /// "" validates on fresh draws of `problem` (the seeds' behaviour).
  TORCH_ARG(std::string, validation_problem) = "";
  /// Checkpoint whose φ starts a new run (fine-tuning under other options, e.g. longer horizons);
  /// its rule spec must equal `optimizer`; the meta-optimizer and counters start afresh. "" = φ drawn
  /// from `seed`. Kept in the run's record; a resumed run takes φ from its own checkpoint.
  TORCH_ARG(std::string, init_from) = "";
  TORCH_ARG(int64_t, meta_iterations) = 100;
  /// Inner steps per meta-iteration (DM: 100).
  TORCH_ARG(int64_t, num_steps) = 100;
  /// Inner steps per truncation (DM: 20).
  TORCH_ARG(int64_t, unroll_length) = 20;
  /// Fixed horizons (num_steps in unrolls of unroll_length; DM, L2O-Entropy) or L2O-Scale's sampled
  /// ones: round(Exp(num_unroll_scale)) + min_num_unrolls unrolls of
  /// round(Exp(num_partial_unroll_itr_scale)) + min_num_itr_partial_unroll steps each.
  TORCH_ARG(bool, fix_unroll) = true;
  TORCH_ARG(double, num_unroll_scale) = 40;
  TORCH_ARG(int64_t, min_num_unrolls) = 1;
  TORCH_ARG(double, num_partial_unroll_itr_scale) = 200;
  TORCH_ARG(int64_t, min_num_itr_partial_unroll) = 50;
  /// With sampled horizons, clip the steps per unroll to this (0 = no clip).
  TORCH_ARG(int64_t, max_num_itr_partial_unroll) = 0;
  /// "sum" (DM) or "log_ratio" (L2O-Scale).
  TORCH_ARG(std::string, objective) = "sum";
  /// "adam" (DM) or "rmsprop" (L2O-Scale).
  TORCH_ARG(std::string, meta_optimizer) = "adam";
  TORCH_ARG(double, meta_lr) = 1e-3;
  /// Meta-gradient entries are clipped to [−clip_value, clip_value] after non-finite ones are zeroed.
  TORCH_ARG(double, clip_value) = 1e4;
  /// Global-norm clipping of the meta-gradient (0 = off).
  TORCH_ARG(double, clip_norm) = 0;
  TORCH_ARG(bool, second_derivatives) = false;
  /// Stop an inner run when f > blowup_factor·f₀ (0 = only on non-finite f).
  TORCH_ARG(double, blowup_factor) = 0;
  /// Validate every this many meta-iterations (0 = never).
  TORCH_ARG(int64_t, evaluation_period) = 10;
  /// Fresh problems per validation (the same ones every time).
  TORCH_ARG(int64_t, evaluation_epochs) = 5;
  TORCH_ARG(int64_t, seed) = 0;
  /// Folder for checkpoints and the training log ("" = keep nothing on disk).
  TORCH_ARG(std::string, output_dir) = "";
  /// Stop meta-training once this many seconds of meta-iterations (validation included) have run
  /// (0 = no budget). Runs compared "under the same compute budget" share this value.
  TORCH_ARG(double, max_seconds) = 0;

  // L2O-Entropy (SPEC §4). Flatness regularisers:
  /// α·Σ_t reg_t on the meta-objective, differentiated through the Hessian-vector products.
  TORCH_ARG(bool, reg_optimizer) = false;
  /// β·reg on the optimizee's own loss (the rule sees ∇(f + β·reg)).
  TORCH_ARG(bool, reg_optimizee) = false;
  /// hessian, hessian-ev, hessian-esd or jacob.
  TORCH_ARG(std::string, reg_option) = "hessian";
  TORCH_ARG(double, alpha) = 1e-4;
  TORCH_ARG(double, beta) = 1e-4;
  /// none, prior (first half of a meta-iteration's unrolls), posterior (second half) or always.
  TORCH_ARG(std::string, regularize_time) = "always";
  /// Hutchinson probes / power iterations / Lanczos steps per regulariser evaluation.
  TORCH_ARG(int64_t, hessian_itrs) = 10;
  /// Eigenvalues summed by hessian-ev.
  TORCH_ARG(int64_t, hessian_top_n) = 1;
  /// Curriculum (`if_cl`): training horizons in unrolls of unroll_length; validation on the next
  /// stage's horizon with the final objective; after min_num_eval evaluations in a stage with an
  /// improvement, restore the stage's best φ and advance; a stage without one ends training.
  TORCH_ARG(bool, if_cl) = false;
  TORCH_ARG(std::string, cl_horizons) = "100,200,500,1000,1500,2000,2500,3000,3500,4000,4500,5000";
  TORCH_ARG(int64_t, min_num_eval) = 3;
  /// Imitation (`if_mt`): with probability mt_ratio a meta-iteration imitates `mt_teacher`, taking
  /// mt_k teacher steps per learned step on the same minibatch, teacher-forced.
  TORCH_ARG(bool, if_mt) = false;
  TORCH_ARG(double, mt_ratio) = 0.1;
  TORCH_ARG(int64_t, mt_k) = 1;
  TORCH_ARG(std::string, mt_teacher) = "adam:lr=0.01";
  /// Trajectories per process per meta-iteration (SPEC §6.2): each meta-step averages the
  /// meta-gradients of tasks_per_worker × world size tasks, each its own problem and draws.
  TORCH_ARG(int64_t, tasks_per_worker) = 1;
  /// Meta-gradient estimator (SPEC §7, docs/estimators.md): tbptt (truncated BPTT, the seeds'), es
  /// (antithetic truncated ES) or pes (persistent ES, unbiased over the horizon). ES and PES run
  /// 2·es_pairs + 1 forward unrolls per truncation and ignore second_derivatives (they estimate the
  /// full derivative); es_cap_factor·f₀ is their blow-up cap (see meta::EstimatorOptions).
  TORCH_ARG(std::string, estimator) = "tbptt";
  TORCH_ARG(double, es_sigma) = 0.01;
  TORCH_ARG(int64_t, es_pairs) = 8;
  TORCH_ARG(double, es_cap_factor) = 1e3;

 public:
  /// Throws l2o::Error naming the bad value and the fix.
  void validate() const;
  nlohmann::json to_json() const;
  static TrainOptions from_json(const nlohmann::json& j);
};

/// Counters that a checkpoint carries so that training resumes exactly where it stopped.
struct TrainerCounters {
  int64_t iteration = 0;
  double best_validation = std::numeric_limits<double>::infinity();
  int64_t best_iteration = -1;
  int64_t nonfinite_entries = 0;
  int64_t diverged_unrolls = 0;
  /// Seconds spent in meta-iterations so far (the max_seconds budget).
  double elapsed_seconds = 0;
  /// Curriculum: current stage, evaluations in it, whether one of them improved on the best.
  int64_t stage = 0;
  int64_t stage_evaluations = 0;
  bool stage_improved = false;
  /// Set when training ended before meta_iterations (curriculum stop or completion).
  std::string stopped;
  /// Processes of the run that wrote the checkpoint (a resume on another count is a continuation).
  int64_t world_size = 1;
};

/// One line of the training log.
struct IterationRecord {
  int64_t iteration = 0;
  /// Mean over unrolls (and tasks) of the meta-loss.
  double meta_loss = 0;
  /// f at the last inner step of the meta-iteration (mean over tasks).
  double final_loss = 0;
  int64_t nonfinite_entries = 0;
  bool diverged = false;
  /// Inner steps taken and unrolls that gave a meta-gradient, summed over the iteration's tasks.
  int64_t steps = 0;
  int64_t unrolls = 0;
  double seconds = 0;
  std::optional<double> validation;
  /// Σ of the regulariser over the regularised inner steps, and the Hessian-vector products taken.
  double regularizer = 0;
  int64_t hvps = 0;
  /// Imitation tasks of the meta-iteration (their meta_loss is the imitation loss; 0 or 1 with one task).
  int64_t imitation = 0;
  /// Horizon of the meta-iteration (the curriculum stage's, with if_cl; the first task's when sampled).
  int64_t num_steps = 0;
  /// Checksum of φ after the iteration's meta-steps, equal on every rank (checked each iteration).
  uint64_t phi_checksum = 0;
  /// The concrete problem of each of this process's tasks (a family's draw is its concrete spec);
  /// rank 0's tasks in a distributed run. Logged to train_problems.csv.
  std::vector<std::string> problems;
};

/// Parses a list of horizons like "100,200,500" (each > 0, increasing).
std::vector<int64_t> parse_horizons(const std::string& text);

/// Makes a meta-gradient usable: non-finite entries become 0, then every entry is clipped to
/// [−clip_value, clip_value]. Returns how many entries were non-finite.
int64_t sanitize_gradients(const std::vector<torch::Tensor>& params, double clip_value);

/// The horizon of one meta-iteration: `unrolls` truncations of `unroll_length` steps.
struct Horizon {
  int64_t unrolls = 1;
  int64_t unroll_length = 1;
};
/// Draws (sampled) or computes (fixed) the horizon of a meta-iteration from the options.
Horizon draw_horizon(const TrainOptions& options, at::Generator& gen);

class Estimator;

class Trainer {
 public:
  /// A new run: builds the rule from options.optimizer with φ seeded by options.seed. With a
  /// communicator this process is one rank of a synchronous data-parallel run (SPEC §6.2): φ is
  /// rank 0's, and rank 0 alone validates, logs and writes to output_dir.
  explicit Trainer(TrainOptions options, std::shared_ptr<Communicator> comm = nullptr);
  ~Trainer();
  /// Continues the run saved in `checkpoint` (options, φ, meta-optimizer, counters).
  /// `meta_iterations` > 0 changes the target; a non-empty `output_dir` moves where it writes;
  /// `max_seconds` >= 0 replaces the time budget (0 = none), which counts the time already spent.
  /// Every rank of a distributed run resumes from the same checkpoint (see share_checkpoint).
  static std::unique_ptr<Trainer> resume(const std::string& checkpoint, int64_t meta_iterations = 0,
                                         const std::string& output_dir = "", double max_seconds = -1,
                                         std::shared_ptr<Communicator> comm = nullptr);

  /// One meta-iteration, followed by validation and checkpoints when they are due.
  IterationRecord step();
  /// Runs until options.meta_iterations, with a progress line unless quiet.
  void run(bool quiet = false);
  /// Mean validation objective over the fixed validation problems (lower is better). With if_cl:
  /// the mean final objective at the next stage's horizon.
  double validate();
  /// True when the run has ended: meta_iterations reached, budget spent or curriculum stopped.
  bool finished() const;
  /// Writes a checkpoint of the current state.
  void save(const std::string& path) const;

  /// Rank 0 of a distributed run, or the only process: the one that validates and writes.
  bool root() const { return reduction_->rank() == 0; }
  optim::RulePtr rule() const { return rule_; }
  const TrainOptions& options() const { return options_; }
  const TrainerCounters& counters() const { return counters_; }

 private:
  void build_meta_optimizer();
  /// The unrolls of one meta-iteration over this process's tasks, one reduced meta-step per unroll.
  void train_tasks(IterationRecord& rec);
  /// Curriculum bookkeeping after a validation (promotion, restore, stop).
  void curriculum_step(bool improved);
  /// Appends one row to train_log.csv. The first row a Trainer writes first drops the rows of
  /// iterations at or after its own (a new run in an old folder, or a resume from an earlier
  /// checkpoint), so the log always describes the run that wrote the checkpoints.
  void append_log(const IterationRecord& record);
  std::string record_json() const;

  TrainOptions options_;
  optim::RulePtr rule_;
  problems::ProblemSet problems_;
  /// The validation set: validation_problem, or problems_ when that is empty.
  problems::ProblemSet validation_problems_;
  std::unique_ptr<torch::optim::Optimizer> meta_optimizer_;
  TrainerCounters counters_;
  /// The teacher of imitation meta-iterations (if_mt).
  optim::RulePtr teacher_;
  /// Curriculum horizons and the best φ of the current stage.
  std::vector<int64_t> horizons_;
  std::vector<torch::Tensor> stage_best_;
  bool log_started_ = false;
  /// Combines the tasks of a meta-step, over the ranks when distributed.
  std::unique_ptr<MetaGradientReduction> reduction_;
  /// Gives each task's meta-gradient estimate of a truncation (tbptt, es or pes).
  std::unique_ptr<Estimator> estimator_;
};

}  // namespace meta
}  // namespace l2o
