// `l2o compare`: a learned optimizer against hand-designed baselines, each at the best rate of a
// learning-rate grid, on the same test problems; writes the table, CSV, JSON and plot.
#include "common.h"

#include <l2o/core/error.h>
#include <l2o/core/progress.h>
#include <l2o/core/spec.h>
#include <l2o/eval/report.h>
#include <l2o/io/checkpoint.h>
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
  cmd->add_option("--checkpoint", a->checkpoints, "learned optimizer checkpoint(s); label with LABEL=PATH")
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
    std::vector<std::pair<std::string, optim::RulePtr>> learned_rules;
    for (const auto& item : a->checkpoints) {
      const auto eq = item.find('=');
      const std::string path = eq == std::string::npos ? item : item.substr(eq + 1);
      optim::RulePtr rule = io::load_rule(path);
      learned_rules.emplace_back(eq == std::string::npos ? rule->name() + " (learned)" : item.substr(0, eq), rule);
    }
    // A baseline is `spec` (tuned over --lr_grid), `spec@lr1/lr2/...` (tuned over its own grid) or
    // `spec` with lr=... (run at that rate only).
    const auto default_lrs = parse_doubles(a->lr_grid, "--lr_grid");
    std::vector<std::string> baselines;
    std::vector<std::vector<double>> baseline_lrs;
    for (const auto& item : split(a->baselines, ',')) {
      const auto at = item.find('@');
      baselines.push_back(item.substr(0, at));
      baseline_lrs.push_back(at == std::string::npos ? default_lrs
                                                     : parse_doubles(item.substr(at + 1), "the grid of '" + item + "'", '/'));
      learned::make_rule(baselines.back());
    }
    problems::ProblemSet::parse(a->options.problem);
    io::ensure_writable_dir(a->output_dir);

    std::vector<eval::Curves> curves;
    std::vector<eval::Summary> summaries;
    nlohmann::json grids = nlohmann::json::object();
    // The progress line counts seeds: one per learned rule, one per grid point of every baseline.
    // A baseline given with its rate (adam:lr=0.001) is run at that rate only, not tuned.
    auto fixed_rate = [](const std::string& b) { return Spec::parse(b).has("lr"); };
    int64_t configs = static_cast<int64_t>(learned_rules.size());
    for (size_t i = 0; i < baselines.size(); ++i)
      configs += fixed_rate(baselines[i]) ? 1 : static_cast<int64_t>(baseline_lrs[i].size());
    const int64_t runs = configs * a->options.seeds;
    Progress progress("compare", runs);
    int64_t done = 0;
    std::string current;
    eval::EvalOptions options = a->options;
    options.on_seed_done = [&] { progress.update(++done, current); };
    for (const auto& lr : learned_rules) {
      current = lr.first;
      curves.push_back(eval::evaluate_rule(*lr.second, options, lr.first));
      summaries.push_back(eval::summarize(curves.back(), options.num_steps));
    }
    nlohmann::json grid_rates = nlohmann::json::object();
    for (size_t i = 0; i < baselines.size(); ++i) {
      const std::string& b = baselines[i];
      current = b;
      if (fixed_rate(b)) {
        const Spec spec = Spec::parse(b);
        const std::string label = spec.name() + " (lr " + format_double(spec.get_double("lr", 0)) + ", fixed)";
        curves.push_back(eval::evaluate_rule(*learned::make_rule(b), options, label));
        summaries.push_back(eval::summarize(curves.back(), options.num_steps));
        continue;
      }
      grid_rates[b] = baseline_lrs[i];
      eval::GridResult g = eval::best_of_grid(b, baseline_lrs[i], options);
      for (const auto& s : g.scores) grids[b].push_back({{"lr", s.first}, {"score", s.second}});
      curves.push_back(std::move(g.best));
      summaries.push_back(eval::summarize(curves.back(), options.num_steps));
    }
    progress.finish();
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
