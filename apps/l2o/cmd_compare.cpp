// `l2o compare`: a learned optimizer against hand-designed baselines, each at the best rate of a
// learning-rate grid, on the same test problems; writes the table, CSV, JSON and plot.
#include "common.h"

#include <l2o/core/error.h>
#include <l2o/core/progress.h>
#include <l2o/core/spec.h>
#include <l2o/eval/report.h>
#include <l2o/io/files.h>
#include <l2o/learned/registry.h>
#include <l2o/problems/registry.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>

namespace l2o {
namespace app {

namespace {
struct CompareArgs {
  std::vector<std::string> checkpoints;
  std::string baselines = "adam,rmsprop,nag,sgd";
  std::string lr_grid = "0.0001,0.0003,0.001,0.003,0.01,0.03,0.1,0.3,1";
  std::string output_dir = "runs/compare", title;
  eval::EvalOptions options;
  int threads = 0;
};
}  // namespace

void add_compare(CLI::App& app) {
  auto a = std::make_shared<CompareArgs>();
  auto* cmd = app.add_subcommand("compare", "compare learned optimizers with baselines tuned over a learning-rate grid");
  add_config_option(cmd);
  cmd->add_option("--checkpoint", a->checkpoints, "learned optimizer checkpoint(s): [LABEL=]PATH[:OPTION=VALUE,...] (options override the saved ones, e.g. max_log_lr=-3)")
      ->required()
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--baselines", a->baselines, "comma-separated baseline rules (see l2o problems); spec@lr1/lr2/... tunes over its own grid, "
                  "a spec with lr=... is run at that rate only")->capture_default_str();
  cmd->add_option("--lr_grid", a->lr_grid, "comma-separated learning rates tried for every baseline")->capture_default_str();
  add_eval_options(cmd, &a->options);
  cmd->add_option("--title", a->title, "plot title");
  cmd->add_option("-o,--output_dir", a->output_dir, "folder for table.md, summary.json, curves.csv, loss.png/svg")
      ->capture_default_str();
  add_threads_option(cmd, &a->threads);
  cmd->callback([a] {
    apply_threads(a->threads);
    // Everything is checked before any work, so bad input leaves no files behind.
    const std::vector<eval::LabelledRule> learned_rules = load_labelled_checkpoints(a->checkpoints);
    // A baseline is `spec` (tuned over --lr_grid), `spec@lr1/lr2/...` (tuned over its own grid) or
    // `spec` with lr=... (run at that rate only, not tuned).
    const auto default_lrs = parse_doubles(a->lr_grid, "--lr_grid");
    std::vector<eval::Baseline> baselines;
    for (const auto& item : split(a->baselines, ',')) {
      const auto at = item.find('@');
      eval::Baseline b{item.substr(0, at), at == std::string::npos
                                               ? default_lrs
                                               : parse_doubles(item.substr(at + 1), "the grid of '" + item + "'", '/')};
      if (Spec::parse(b.spec).has("lr")) b.lrs.clear();
      learned::make_rule(b.spec);
      baselines.push_back(std::move(b));
    }
    problems::ProblemSet::parse(a->options.problem);
    io::ensure_writable_dir(a->output_dir);

    // The progress line counts one-seed runs: one per learned rule, one per grid point of every baseline.
    Progress progress("compare", eval::compare_runs(learned_rules.size(), baselines, a->options.seeds));
    int64_t done = 0;
    const eval::Comparison result = eval::compare(learned_rules, baselines, a->options, 0,
                                                  [&](const std::string& label) { progress.update(++done, label); });
    progress.finish();
    const std::vector<eval::Curves>& curves = result.curves;
    const std::vector<eval::Summary>& summaries = result.summaries;
    nlohmann::json grids = nlohmann::json::object(), grid_rates = nlohmann::json::object();
    for (size_t i = 0; i < baselines.size(); ++i) {
      if (baselines[i].lrs.empty()) continue;
      grid_rates[baselines[i].spec] = baselines[i].lrs;
      for (const auto& s : result.baselines[i].scores)
        grids[baselines[i].spec].push_back({{"lr", s.first}, {"score", s.second}});
    }
    const nlohmann::json meta = {{"problem", a->options.problem}, {"num_steps", a->options.num_steps},
                                 {"seeds", a->options.seeds},     {"seed", a->options.seed},
                                 {"lr_grid", grid_rates},                {"grid_scores", grids},
                                 {"record_every", a->options.record_every},
                                 {"baseline_selection", a->options.record_every > 0
                                                            ? "lowest mean final full train loss"
                                                            : "lowest mean sum of losses"},
                                 {"sum_of_losses", "sum over t=1..num_steps of the loss after step t"}};
    // Ratios are given against the first baseline (Adam by default).
    const int reference = static_cast<int>(learned_rules.size());
    const std::string title = a->title.empty() ? "mean over " + std::to_string(a->options.seeds) + " seeds: " +
                                                     a->options.problem
                                               : a->title;
    const std::string table = eval::write_report(a->output_dir, curves, summaries, meta.dump(),
                                                 reference < static_cast<int>(summaries.size()) ? reference : -1, title);
    std::printf("%s", table.c_str());
    std::printf("written: %s/{table.md,summary.json,curves.csv,loss.png,loss.svg%s}\n", a->output_dir.c_str(),
                a->options.record_every > 0 ? ",records.csv,train_loss.png,test_loss.png,test_accuracy.png" : "");
  });
}

}  // namespace app
}  // namespace l2o
