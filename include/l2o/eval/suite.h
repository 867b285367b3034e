#pragma once
/// The held-out suite (SPEC §8): a named, versioned list of problems disjoint from every training set,
/// run for learned optimizers and for hand-designed baselines tuned per problem over a learning-rate
/// grid, and scored against Adam at its best grid rate and Adam at a fixed rate (1e-3).
///
/// A suite is a TOML file `<suite_dir>/<name>.toml`:
///
///     name = "heldout_v1"            # must equal the file's stem
///     version = 1
///     description = "..."
///     seed = 0                       # base seed of the test stream (EvalOptions::seed)
///     adam_fixed_lr = 0.001          # the second reference: Adam run at this rate as it is
///     [baselines]                    # rule spec = learning-rate grid, in file order;
///     adam = [1e-4, 3e-4, 1e-3]      # `adam` is required: at its best rate it is the first reference
///     momentum = [0.01, 0.1]
///     [[problem]]
///     name = "mnist_mlp_relu_10k"    # the folder of its report: a-z, A-Z, 0-9, _ and -
///     spec = "mnist_mlp_relu"
///     steps = 10000
///     seeds = 5
///     record_every = 500             # optional, default 0 (no records)
///     grid_seeds = 2                 # optional: seeds the grids are tuned on, default all
///     record_rows = 2000             # optional: records on a fixed subset of each split, default 0 (all)
///
/// The file must be ASCII (toml++ 3.3 has undefined behaviour on some non-ASCII text, see io/config).
#include <l2o/eval/evaluate.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace l2o {
namespace eval {

/// One problem of a suite.
struct SuiteProblem {
  std::string name;
  std::string spec;
  int64_t steps = 0;
  int64_t seeds = 0;
  int64_t record_every = 0;
  /// EvalOptions::record_rows: records on a fixed subset of each split (0 = the whole splits).
  int64_t record_rows = 0;
  /// Seeds the baselines' grids are tuned on (1..seeds); the chosen rate then runs on all seeds.
  int64_t grid_seeds = 0;
};

/// A parsed suite file.
struct Suite {
  std::string name;
  int64_t version = 0;
  std::string description;
  int64_t seed = 0;
  double adam_fixed_lr = 1e-3;
  /// Tuned baselines, in file order; the one whose spec is `adam` is the first reference.
  std::vector<Baseline> baselines;
  std::vector<SuiteProblem> problems;
  /// The file it was read from ("" when parsed from text).
  std::string path;

  /// Throws l2o::Error naming the suite and the bad field.
  void validate() const;
};

/// The spec of the second reference, Adam at the suite's fixed rate (`adam:lr=0.001`).
std::string fixed_adam_spec(const Suite& suite);

/// Parses suite TOML `text`; `source` names it in errors ("file:line:column: ..."). Validates.
Suite parse_suite(const std::string& text, const std::string& source);

/// The folder of the shipped suites: $L2O_SUITE_DIR when set, else <prefix>/share/l2o/suites of an
/// installed l2o (cmake --install puts configs/suites there), else the source tree's configs/suites.
std::string default_suite_dir();
/// Names (file stems) of the `*.toml` files in `dir`, sorted.
std::vector<std::string> list_suites(const std::string& dir);
/// Reads the suite `name_or_path`: a path to a .toml file, or a name looked up as `dir/<name>.toml`.
/// An unknown name throws l2o::Error listing the known suites of `dir`.
Suite load_suite(const std::string& name_or_path, const std::string& dir);

/// The score of one optimizer on one problem.
struct SuiteScore {
  /// Stable across problems: the learned optimizer's label, a tuned baseline's spec (`adam`) or the
  /// fixed Adam's spec (`adam:lr=0.001`).
  std::string optimizer;
  /// The row label of the problem's report (a tuned baseline's carries its rate).
  std::string label;
  bool learned = false;
  /// The rate a baseline ran at (NaN for learned optimizers).
  double lr = 0;
  /// Mean ± s.e. over seeds of the final full-train loss (the final objective without records);
  /// a diverged seed counts as +inf (eval::summarize).
  double final_train_loss = 0, final_train_loss_se = 0;
  /// Mean ± s.e. of the final test accuracy (NaN without records or a test split).
  double test_accuracy = 0, test_accuracy_se = 0;
  /// final_train_loss / the reference's: Adam at its best grid rate, Adam at the fixed rate.
  /// Equal values (both infinite included) give 1.
  double ratio_best = 0, ratio_fixed = 0;
  /// test_accuracy − the reference's (NaN without test accuracies).
  double accuracy_diff_best = 0, accuracy_diff_fixed = 0;
  int64_t seeds = 0;
  /// Seeds that stopped on a non-finite loss.
  int64_t diverged = 0;
  /// Seeds that finished with a final train loss above ½ of their initial one (diverged seeds excluded).
  int64_t not_learned = 0;
};

/// The scores of every optimizer on one problem.
struct ProblemScores {
  SuiteProblem problem;
  std::vector<SuiteScore> scores;
  /// The problem's comparison took this long.
  double seconds = 0;
};

/// An optimizer's summary over the suite (SPEC §8).
struct SuiteSummary {
  std::string optimizer;
  bool learned = false;
  int64_t problems = 0;
  /// Median over problems of the ratios to Adam-best and to Adam at the fixed rate.
  double median_ratio_best = 0, median_ratio_fixed = 0;
  /// Problems where the ratio is < 1.
  int64_t wins_best = 0, wins_fixed = 0;
  /// Largest ratio to Adam-best and the problem where it occurs; the same for the fixed rate.
  double worst_ratio_best = 0, worst_ratio_fixed = 0;
  std::string worst_problem_best, worst_problem_fixed;
  /// Totals over problems.
  int64_t diverged = 0, not_learned = 0, seeds = 0;
};

/// ratio(a, b) = a / b, and 1 when a == b (so two infinite losses tie).
double loss_ratio(double a, double b);
/// Median of `xs` (mean of the two middle values for an even count); NaN when empty.
double median(std::vector<double> xs);
/// Seeds of `curves` that finished (did not diverge) with a final train loss above ½ of the initial
/// one: records' full train loss when there are records, else the objective f(θ_t).
int64_t count_not_learned(const Curves& curves, int64_t num_steps);

/// Scores one problem's comparison: `optimizers` names its entries in order (SuiteScore::optimizer),
/// the first `learned` of them learned; `best` and `fixed` index the two references. The curves give
/// the not-learned counts, comparison.baselines the rates.
std::vector<SuiteScore> score_problem(const Comparison& comparison, const std::vector<std::string>& optimizers,
                                      size_t learned, int best, int fixed, int64_t num_steps);

/// Summary rows of every optimizer but the Adam-best reference, in their order in the first problem.
std::vector<SuiteSummary> summarize_suite(const std::vector<ProblemScores>& problems, const std::string& best_optimizer);

/// How run_suite reports progress: `done` and `total` inner steps over the whole suite, and what runs.
using SuiteProgress = std::function<void(int64_t done, int64_t total, const std::string& status)>;

/// The result of a whole suite.
struct SuiteResult {
  std::vector<ProblemScores> problems;
  std::vector<SuiteSummary> summaries;
  double seconds = 0;
};

/// The tuned baselines' rates per problem (problem name → baseline spec → rate), as an earlier run of
/// the same suite chose them. With them run_suite runs each tuned baseline at its rate on all seeds
/// instead of searching its grid again: the same numbers (the runs are deterministic for a thread
/// count) for a third to a half of the baseline runs, e.g. to score a new checkpoint.
using SuiteRates = std::map<std::string, std::map<std::string, double>>;
/// Reads the rates from `path`, a suite.json of a run of `suite` (same name and version, and every
/// problem of `suite` in it with the same spec, steps and seeds). Throws l2o::Error naming what differs.
SuiteRates read_suite_rates(const std::string& path, const Suite& suite);

/// Total inner steps run_suite will take (the unit of its progress).
int64_t suite_steps(const Suite& suite, size_t learned, const SuiteRates* rates = nullptr);

/// Runs every problem of `suite` for the `learned` optimizers and the baselines (eval::compare),
/// writing each problem's report to `output_dir/<problem>/` (write_report) as soon as it is done, and
/// at the end `output_dir/{table.md,suite.json,suite.csv,ratios.png,ratios.svg}`. Every problem spec
/// and baseline is checked before any work. Returns the scores.
SuiteResult run_suite(const Suite& suite, const std::vector<LabelledRule>& learned, const std::string& output_dir,
                      const SuiteProgress& progress = {}, const SuiteRates* rates = nullptr);

/// The top-level report of a suite: Markdown tables (summary rows, then one table per problem),
/// JSON and CSV.
std::string suite_table(const Suite& suite, const SuiteResult& result);
std::string suite_json(const Suite& suite, const SuiteResult& result);
std::string suite_csv(const Suite& suite, const SuiteResult& result);
/// Bar chart of log10(final train loss / Adam-best's) per problem and optimizer to `<prefix>.png/.svg`
/// (gnuplot); bars of infinite ratios are drawn at ±3 and the title says so.
void plot_suite(const std::string& prefix, const Suite& suite, const SuiteResult& result);
/// Writes table.md, suite.json, suite.csv and ratios.png/svg into `dir`.
void write_suite_report(const std::string& dir, const Suite& suite, const SuiteResult& result);

}  // namespace eval
}  // namespace l2o
