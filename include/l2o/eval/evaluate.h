#pragma once
/// Meta-testing (SPEC §5): run update rules on fresh test problems over several seeds, tune
/// hand-designed baselines over a learning-rate grid, and summarise with mean ± standard error.
#include <l2o/optim/update_rule.h>
#include <l2o/problems/problem.h>

#include <functional>
#include <string>
#include <vector>

namespace l2o {
namespace eval {

/// What to run: problem spec, horizon and seeds. Seed s draws its problem, θ₀ and minibatches from
/// the test stream of `seed`, disjoint from the streams meta-training and validation use.
struct EvalOptions {
  std::string problem = "dm_quadratic";
  int64_t num_steps = 100;
  int64_t seeds = 5;
  int64_t seed = 0;
  /// Every this many steps (and at the last step) record the full train and test loss and accuracy,
  /// gradient and parameter norms and seconds per step (SPEC §5). 0 = no records; then `losses` holds
  /// the objective f(θ_t) at every step. With records on a stochastic problem `losses` holds the
  /// minibatch loss of every step (cheap), the full-split values being in the records.
  int64_t record_every = 0;
  /// Records evaluate the whole train and test splits; with record_rows > 0, a fixed random subset of
  /// at most that many rows of each (the same rows for every optimizer and seed under `seed`), for
  /// problems whose full-split pass costs more than the run (convnets on 60000 images).
  int64_t record_rows = 0;
  /// Called after every finished seed (progress lines); may be empty.
  std::function<void()> on_seed_done;
};

/// The state of one run at a recorded step.
struct Record {
  int64_t step = 0;
  double train_loss = 0, train_accuracy = 0;
  double test_loss = 0, test_accuracy = 0;
  /// ‖g_t‖ of the minibatch gradient at θ_t and ‖θ_t‖ (over all tensors).
  double grad_norm = 0, param_norm = 0;
  /// Mean wall-clock of one step (gradient + update, records excluded) since the previous record.
  double seconds_per_step = 0;
};

/// Loss curves of one optimizer: losses[s][t] = f(θ_t) for seed s, t = 0..num_steps (shorter if the
/// run diverged).
struct Curves {
  std::string label;
  std::string rule_spec;
  std::vector<std::vector<double>> losses;
  /// records[s]: the records of seed s (empty without record_every).
  std::vector<std::vector<Record>> records;
};

/// Runs `rule` for `options.num_steps` steps on `problem` from `params`: one seed of evaluate_rule.
/// Stops early on a non-finite loss.
void run_seed(const optim::UpdateRule& rule, const problems::Problem& problem, TensorList params,
              const EvalOptions& options, at::Generator& gen, std::vector<double>& losses,
              std::vector<Record>& records);

/// Per-optimizer summary over seeds. `sum` is Σ_{t=1..N} f(θ_t) (the DM meta-objective); a diverged
/// run counts as +∞.
struct Summary {
  std::string label;
  std::string rule_spec;
  double mean_sum = 0, se_sum = 0;
  double mean_final = 0, se_final = 0;
  int64_t diverged = 0;
  int64_t seeds = 0;
  /// From the last record of every seed (NaN without records): full train loss, test loss and
  /// accuracy, mean seconds per step.
  bool has_records = false;
  double mean_train_loss = 0, se_train_loss = 0;
  double mean_train_accuracy = 0, se_train_accuracy = 0;
  double mean_test_loss = 0, se_test_loss = 0;
  double mean_test_accuracy = 0, se_test_accuracy = 0;
  double seconds_per_step = 0;
};

/// Runs `rule` on every seed.
Curves evaluate_rule(const optim::UpdateRule& rule, const EvalOptions& options, const std::string& label);

/// Mean and standard error (sample std / √n) of the sums and final losses.
Summary summarize(const Curves& curves, int64_t num_steps);

/// One baseline tuned over learning rates.
struct GridResult {
  Curves best;
  double best_lr = 0;
  /// (lr, grid_score) for every rate tried.
  std::vector<std::pair<double, double>> scores;
};

/// The score a learning-rate grid minimises: the mean final full train loss when there are records,
/// else the mean sum of losses.
double grid_score(const Summary& summary);

/// Evaluates `base_spec` (e.g. "adam" or "nag") with lr set to each of `lrs`; keeps the rate with the
/// lowest grid_score. The rate is tuned on the same test seeds, which can only favour the
/// baseline.
GridResult best_of_grid(const std::string& base_spec, const std::vector<double>& lrs, const EvalOptions& options);

/// A hand-designed optimizer of a comparison: `spec` tuned over `lrs` (best_of_grid), or, when `lrs`
/// is empty, run as it is (a spec that sets lr=...).
struct Baseline {
  std::string spec;
  std::vector<double> lrs;
};

/// What compare() ran for one baseline.
struct BaselineResult {
  std::string spec;
  /// The rate it ran at: the grid's best, or the spec's own (NaN when the spec sets none).
  double lr = 0;
  /// (lr, grid_score) of every rate tried; empty for a baseline run as it is.
  std::vector<std::pair<double, double>> scores;
};

/// A learned optimizer of a comparison and the label of its rows.
using LabelledRule = std::pair<std::string, optim::RulePtr>;

/// Learned rules and baselines on the same seeds: curves and summaries hold the learned rules in
/// order, then the baselines in order; `baselines[i]` belongs to entry learned.size() + i.
struct Comparison {
  std::vector<Curves> curves;
  std::vector<Summary> summaries;
  std::vector<BaselineResult> baselines;
};

/// Runs every learned rule and every baseline on the seeds of `options` (SPEC §5, `l2o compare`). A
/// tuned baseline searches its grid on the first `grid_seeds` seeds (0, or >= options.seeds: on all of
/// them); with fewer, its best rate then runs again on all seeds. A baseline run as it is is labelled
/// "name (lr x, fixed)", a tuned one "name (lr x)". `on_seed_done(label)` is called after every
/// one-seed run, with the label of the optimizer (or grid) being run; it may be empty.
Comparison compare(const std::vector<LabelledRule>& learned, const std::vector<Baseline>& baselines,
                   const EvalOptions& options, int64_t grid_seeds = 0,
                   const std::function<void(const std::string&)>& on_seed_done = {});

/// The number of one-seed runs compare() makes (for progress lines).
int64_t compare_runs(size_t learned, const std::vector<Baseline>& baselines, int64_t seeds, int64_t grid_seeds = 0);

}  // namespace eval
}  // namespace l2o
