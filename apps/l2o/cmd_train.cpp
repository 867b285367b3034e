// `l2o train`: meta-train a learned optimizer (SPEC §3), or resume a run from its checkpoint.
#include "common.h"

#include <l2o/core/error.h>
#include <l2o/eval/report.h>
#include <l2o/io/checkpoint.h>
#include <l2o/learned/registry.h>
#include <l2o/meta/trainer.h>

#include <cstdio>
#include <memory>

namespace l2o {
namespace app {

namespace {
struct TrainArgs {
  meta::TrainOptions options;
  std::string resume;
  bool quiet = false;
  bool plot = true;
  int threads = 0;
};
}  // namespace

void add_train(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  auto* cmd = app.add_subcommand("train", "meta-train a learned optimizer by truncated BPTT");
  add_config_option(cmd);
  auto& o = args->options;
  // CLI11 writes into plain variables; the options struct is refilled from them in the callback.
  struct Raw {
    std::string optimizer, problem, objective, meta_optimizer, output_dir;
    int64_t meta_iterations, num_steps, unroll_length, evaluation_period, evaluation_epochs, seed;
    double meta_lr, clip_value, clip_norm, blowup_factor;
    bool second_derivatives;
  };
  auto raw = std::make_shared<Raw>(Raw{o.optimizer(), o.problem(), o.objective(), o.meta_optimizer(), "runs/train",
                                       o.meta_iterations(), o.num_steps(), o.unroll_length(), o.evaluation_period(),
                                       o.evaluation_epochs(), o.seed(), o.meta_lr(), o.clip_value(), o.clip_norm(),
                                       o.blowup_factor(), o.second_derivatives()});
  cmd->add_option("--optimizer", raw->optimizer, "learned rule spec, e.g. lstm:output_scale=0.1")->capture_default_str();
  cmd->add_option("--problem", raw->problem, "problem set: spec[*weight];... (see l2o problems)")->capture_default_str();
  cmd->add_option("--meta_iterations", raw->meta_iterations, "meta-iterations (one sampled problem each)")->capture_default_str();
  cmd->add_option("--num_steps", raw->num_steps, "inner steps per meta-iteration")->capture_default_str();
  cmd->add_option("--unroll_length", raw->unroll_length, "inner steps per truncation")->capture_default_str();
  cmd->add_option("--objective", raw->objective, "meta-objective: sum (DM) or log_ratio (L2O-Scale)")->capture_default_str();
  cmd->add_option("--meta_optimizer", raw->meta_optimizer, "adam or rmsprop")->capture_default_str();
  cmd->add_option("--meta_lr", raw->meta_lr, "meta learning rate")->capture_default_str();
  cmd->add_option("--clip_value", raw->clip_value, "clip meta-gradient entries to ±value")->capture_default_str();
  cmd->add_option("--clip_norm", raw->clip_norm, "clip the meta-gradient's global norm (0 = off)")->capture_default_str();
  cmd->add_option("--second_derivatives", raw->second_derivatives, "backpropagate through the optimizee gradient")
      ->capture_default_str();
  cmd->add_option("--blowup_factor", raw->blowup_factor, "stop an inner run when f > factor * f0 (0 = off)")
      ->capture_default_str();
  cmd->add_option("--evaluation_period", raw->evaluation_period, "validate every N meta-iterations (0 = never)")
      ->capture_default_str();
  cmd->add_option("--evaluation_epochs", raw->evaluation_epochs, "validation problems")->capture_default_str();
  cmd->add_option("--seed", raw->seed, "random seed of the run")->capture_default_str();
  cmd->add_option("-o,--output_dir", raw->output_dir, "folder for best.pt, latest.pt, train_log.csv, meta_loss.png")
      ->capture_default_str();
  cmd->add_option("--resume", args->resume, "continue the run saved in this checkpoint (its options are used; "
                                            "--meta_iterations and --output_dir may extend or move it)");
  cmd->add_flag("--quiet", args->quiet, "no progress line");
  cmd->add_option("--plot", args->plot, "draw meta_loss.png at the end")->capture_default_str();
  add_threads_option(cmd, &args->threads);
  cmd->add_option("--fix_unroll", o.fix_unroll(), "fixed horizons (num_steps in unrolls of unroll_length); "
                  "false samples them like L2O-Scale")->capture_default_str();
  cmd->add_option("--num_unroll_scale", o.num_unroll_scale(), "sampled horizons: unrolls = round(Exp(scale)) + min")
      ->capture_default_str();
  cmd->add_option("--min_num_unrolls", o.min_num_unrolls(), "sampled horizons: minimum unrolls")->capture_default_str();
  cmd->add_option("--num_partial_unroll_itr_scale", o.num_partial_unroll_itr_scale(),
                  "sampled horizons: steps per unroll = round(Exp(scale)) + min")->capture_default_str();
  cmd->add_option("--min_num_itr_partial_unroll", o.min_num_itr_partial_unroll(),
                  "sampled horizons: minimum steps per unroll")->capture_default_str();
  cmd->add_option("--max_num_itr_partial_unroll", o.max_num_itr_partial_unroll(),
                  "sampled horizons: clip steps per unroll (0 = off)")->capture_default_str();

  cmd->callback([args, raw, cmd] {
    apply_threads(args->threads);
    std::unique_ptr<meta::Trainer> trainer;
    if (!args->resume.empty()) {
      const bool moved = cmd->count("--output_dir") > 0;
      // The run's own options are used; an --optimizer that contradicts the checkpoint is an error,
      // not silently ignored.
      if (cmd->count("--optimizer") > 0) {
        const std::string held = io::read_checkpoint_info(args->resume).rule_spec;
        const std::string asked = learned::make_rule(raw->optimizer)->spec().str();
        L2O_CHECK(held == asked, "checkpoint '", args->resume, "' holds optimizer '", held, "', not '", asked, "'");
      }
      trainer = meta::Trainer::resume(args->resume, cmd->count("--meta_iterations") ? raw->meta_iterations : 0,
                                      moved ? raw->output_dir : "");
    } else {
      meta::TrainOptions t = args->options;
      t.optimizer(raw->optimizer).problem(raw->problem).meta_iterations(raw->meta_iterations);
      t.num_steps(raw->num_steps).unroll_length(raw->unroll_length).objective(raw->objective);
      t.meta_optimizer(raw->meta_optimizer).meta_lr(raw->meta_lr).clip_value(raw->clip_value);
      t.clip_norm(raw->clip_norm).second_derivatives(raw->second_derivatives).blowup_factor(raw->blowup_factor);
      t.evaluation_period(raw->evaluation_period).evaluation_epochs(raw->evaluation_epochs).seed(raw->seed);
      t.output_dir(raw->output_dir);
      trainer = std::make_unique<meta::Trainer>(t);
    }
    trainer->run(args->quiet);
    const std::string dir = trainer->options().output_dir();
    if (args->plot && !dir.empty()) {
      eval::plot_csv(dir + "/meta_loss.png", dir + "/train_log.csv", {"meta_loss", "validation"},
                     "meta-training: " + trainer->options().optimizer() + " on " + trainer->options().problem(), true);
    }
    std::printf("checkpoints: %s/best.pt (validation %.6g at iteration %lld), %s/latest.pt\n", dir.c_str(),
                trainer->counters().best_validation, static_cast<long long>(trainer->counters().best_iteration),
                dir.c_str());
  });
}

}  // namespace app
}  // namespace l2o
