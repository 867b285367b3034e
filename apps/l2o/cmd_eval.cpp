// `l2o eval`: meta-test one optimizer (a checkpoint or a rule spec) on fresh test problems.
#include "common.h"

#include <l2o/core/error.h>
#include <l2o/core/progress.h>
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
struct EvalArgs {
  std::string checkpoint, optimizer, label, output_dir = "runs/eval", train_dir, restore_model_name = "best.pt";
  eval::EvalOptions options;
  int threads = 0;
};
}  // namespace

void add_eval(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  auto* cmd = app.add_subcommand("eval", "meta-test one optimizer: per-step CSV, JSON summary, table and plot");
  add_config_option(cmd);
  auto* ck = cmd->add_option("--checkpoint", a->checkpoint, "learned optimizer checkpoint (from l2o train): PATH[:OPTION=VALUE,...] to override saved options");
  cmd->add_option("--optimizer", a->optimizer, "or a rule spec, e.g. adam:lr=0.01")->excludes(ck);
  cmd->add_option("--train_dir", a->train_dir,
                  "run folder of l2o train: the checkpoint is train_dir/restore_model_name (unless --checkpoint or "
                  "--optimizer is given)");
  cmd->add_option("--restore_model_name", a->restore_model_name, "checkpoint file inside --train_dir")
      ->capture_default_str();
  cmd->add_option("--label,--model_name", a->label, "name in tables and plots (default: the rule's name)");
  add_eval_options(cmd, &a->options);
  cmd->add_option("-o,--output_dir,--save_dir", a->output_dir, "folder for curves.csv, summary.json, loss.png")->capture_default_str();
  add_threads_option(cmd, &a->threads);
  cmd->callback([a] {
    apply_threads(a->threads);
    if (a->checkpoint.empty() && a->optimizer.empty() && !a->train_dir.empty()) a->checkpoint = a->train_dir + "/" + a->restore_model_name;
    L2O_CHECK(!a->checkpoint.empty() || !a->optimizer.empty(), "give --checkpoint, --train_dir or --optimizer");
    // Check everything the run needs before it starts, so bad input leaves no files behind.
    const optim::RulePtr rule = a->checkpoint.empty() ? learned::make_rule(a->optimizer) : load_checkpoint_arg(a->checkpoint);
    problems::ProblemSet::parse(a->options.problem);
    io::ensure_writable_dir(a->output_dir);
    const std::string label = a->label.empty() ? rule->name() : a->label;
    Progress progress("eval", a->options.seeds);
    int64_t done = 0;
    eval::EvalOptions options = a->options;
    options.on_seed_done = [&] { progress.update(++done, label); };
    const eval::Curves curves = eval::evaluate_rule(*rule, options, label);
    progress.finish();
    const eval::Summary summary = eval::summarize(curves, a->options.num_steps);
    const nlohmann::json meta = {{"problem", a->options.problem}, {"num_steps", a->options.num_steps},
                                 {"seeds", a->options.seeds}, {"seed", a->options.seed},
                                 {"checkpoint", a->checkpoint}, {"record_every", a->options.record_every}};
    std::printf("%s", eval::write_report(a->output_dir, {curves}, {summary}, meta.dump(), -1,
                                         label + " on " + a->options.problem)
                          .c_str());
  });
}

}  // namespace app
}  // namespace l2o
