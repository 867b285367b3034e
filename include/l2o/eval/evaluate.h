#pragma once
/// Meta-testing (SPEC §5): run update rules on fresh test problems over several seeds, tune
/// hand-designed baselines over a learning-rate grid, and summarise with mean ± standard error.
#include <l2o/optim/update_rule.h>

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
};

/// Loss curves of one optimizer: losses[s][t] = f(θ_t) for seed s, t = 0..num_steps (shorter if the
/// run diverged).
struct Curves {
  std::string label;
  std::string rule_spec;
  std::vector<std::vector<double>> losses;
};

/// Per-optimizer summary over seeds. `sum` is Σ_{t=1..N} f(θ_t) (the DM meta-objective); a diverged
/// run counts as +∞.
struct Summary {
  std::string label;
  std::string rule_spec;
  double mean_sum = 0, se_sum = 0;
  double mean_final = 0, se_final = 0;
  int64_t diverged = 0;
  int64_t seeds = 0;
};

/// Runs `rule` on every seed.
Curves evaluate_rule(const optim::UpdateRule& rule, const EvalOptions& options, const std::string& label);

/// Mean and standard error (sample std / √n) of the sums and final losses.
Summary summarize(const Curves& curves, int64_t num_steps);

/// One baseline tuned over learning rates.
struct GridResult {
  Curves best;
  double best_lr = 0;
  /// (lr, mean sum of losses) for every rate tried.
  std::vector<std::pair<double, double>> scores;
};

/// Evaluates `base_spec` (e.g. "adam" or "nag") with lr set to each of `lrs`; keeps the rate with the
/// lowest mean sum of losses. The rate is tuned on the same test seeds, which can only favour the
/// baseline.
GridResult best_of_grid(const std::string& base_spec, const std::vector<double>& lrs, const EvalOptions& options);

}  // namespace eval
}  // namespace l2o
