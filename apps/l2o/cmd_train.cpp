// `l2o train`: meta-train a learned optimizer (SPEC §3), or resume a run from its checkpoint.
#include "common.h"

#include <l2o/core/error.h>
#include <l2o/eval/report.h>
#include <l2o/io/checkpoint.h>
#include <l2o/learned/registry.h>
#include <l2o/meta/distributed.h>
#include <l2o/meta/trainer.h>
#include <l2o/problems/registry.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>
#include <string>

namespace l2o {
namespace app {

namespace {
struct TrainArgs {
  meta::TrainOptions options;
  std::string resume;
  bool quiet = false;
  bool plot = true;
  int threads = 0;
  int64_t num_problems = 0;
  double dist_timeout = 60;
};
}  // namespace

void add_train(CLI::App& app) {
  auto args = std::make_shared<TrainArgs>();
  auto* cmd = app.add_subcommand("train", "meta-train a learned optimizer (truncated BPTT, ES or PES)");
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
  add_problem_set_flags(cmd, &raw->problem);
  cmd->add_option("--num_problems", args->num_problems, "keep only the first N problems of the set (0 = all)")
      ->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd->add_option("--meta_iterations,--num_meta_iterations", raw->meta_iterations, "meta-iterations (one sampled problem each)")->capture_default_str();
  cmd->add_option("--num_steps", raw->num_steps, "inner steps per meta-iteration")->capture_default_str();
  cmd->add_option("--unroll_length,--fix_unroll_length", raw->unroll_length, "inner steps per truncation")->capture_default_str();
  cmd->add_option("--objective", raw->objective, "meta-objective: sum (DM) or log_ratio (L2O-Scale)")->capture_default_str();
  cmd->add_option("--meta_optimizer", raw->meta_optimizer, "adam or rmsprop")->capture_default_str();
  cmd->add_option("--meta_lr", raw->meta_lr, "meta learning rate")->capture_default_str();
  cmd->add_option("--clip_value", raw->clip_value, "clip meta-gradient entries to ±value")->capture_default_str();
  cmd->add_option("--clip_norm", raw->clip_norm, "clip the meta-gradient's global norm (0 = off)")->capture_default_str();
  cmd->add_option("--second_derivatives,--use_second_derivatives", raw->second_derivatives, "backpropagate through the optimizee gradient")
      ->capture_default_str();
  cmd->add_option("--blowup_factor", raw->blowup_factor, "stop an inner run when f > factor * f0 (0 = off)")
      ->capture_default_str();
  cmd->add_option("--evaluation_period", raw->evaluation_period, "validate every N meta-iterations (0 = never)")
      ->capture_default_str();
  cmd->add_option("--evaluation_epochs", raw->evaluation_epochs, "validation problems")->capture_default_str();
  cmd->add_option("--seed", raw->seed, "random seed of the run")->capture_default_str();
  cmd->add_option("-o,--output_dir,--train_dir", raw->output_dir, "folder for best.pt, latest.pt, train_log.csv, meta_loss.png")
      ->capture_default_str();
  cmd->add_option("--resume", args->resume, "continue the run saved in this checkpoint (its options are used; "
                                            "--meta_iterations, --max_seconds and --output_dir may extend or move it)");
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
  cmd->add_option("--validation_problem", o.validation_problem(),
                  "problem set that validation (and best.pt) uses, disjoint from training (SPEC §8); "
                  "empty = fresh draws of --problem")->capture_default_str();
  cmd->add_option("--init_from", o.init_from(),
                  "start from the phi of this checkpoint (same --optimizer; fresh meta-optimizer and counters), "
                  "e.g. to fine-tune a run under longer horizons; \"\" = phi drawn from --seed")
      ->capture_default_str();
  cmd->add_option("--max_seconds", o.max_seconds(), "stop after this many seconds of meta-training (0 = no budget)")
      ->capture_default_str();
  // L2O-Entropy (SPEC §4), under the reference's flag names.
  cmd->add_option("--reg_optimizer", o.reg_optimizer(), "add alpha * sum_t reg_t to the meta-objective")
      ->capture_default_str();
  cmd->add_option("--reg_optimizee", o.reg_optimizee(), "add beta * reg to the optimizee's loss")->capture_default_str();
  cmd->add_option("--reg_option", o.reg_option(), "regulariser: hessian, hessian-ev, hessian-esd or jacob")
      ->capture_default_str();
  cmd->add_option("--alpha", o.alpha(), "weight of the regulariser on the meta-objective")->capture_default_str();
  cmd->add_option("--beta", o.beta(), "weight of the regulariser on the optimizee loss")->capture_default_str();
  cmd->add_option("--regularize_time", o.regularize_time(),
                  "none, prior (first half of the unrolls), posterior (second half) or always")->capture_default_str();
  cmd->add_option("--hessian_itrs", o.hessian_itrs(), "probes / power iterations / Lanczos steps per regulariser")
      ->capture_default_str();
  cmd->add_option("--hessian_top_n", o.hessian_top_n(), "eigenvalues summed by hessian-ev")->capture_default_str();
  cmd->add_option("--if_cl", o.if_cl(), "curriculum over horizons (cl_horizons) with validation-gated promotion")
      ->capture_default_str();
  cmd->add_option("--cl_horizons", o.cl_horizons(), "curriculum horizons in steps")->capture_default_str();
  cmd->add_option("--min_num_eval", o.min_num_eval(), "evaluations per curriculum stage before promotion or stop")
      ->capture_default_str();
  cmd->add_option("--if_mt", o.if_mt(), "imitate a hand-designed teacher in a fraction mt_ratio of meta-iterations")
      ->capture_default_str();
  cmd->add_option("--mt_ratio", o.mt_ratio(), "probability of an imitation meta-iteration")->capture_default_str();
  cmd->add_option("--mt_k", o.mt_k(), "teacher steps per learned step")->capture_default_str();
  cmd->add_option("--mt_teacher", o.mt_teacher(), "teacher rule spec (adam:lr=0.01, rmsprop:lr=..., nag:lr=...)")
      ->capture_default_str();
  // Meta-gradient estimators (SPEC §7, docs/estimators.md).
  cmd->add_option("--estimator", o.estimator(),
                  "meta-gradient estimator: tbptt (truncated backprop), es (antithetic truncated ES) or pes "
                  "(persistent ES, unbiased over the horizon); es and pes take 2*es_pairs+1 forward unrolls per truncation")
      ->capture_default_str();
  cmd->add_option("--es_sigma", o.es_sigma(), "es/pes: standard deviation of the perturbations of phi")
      ->capture_default_str();
  cmd->add_option("--es_pairs", o.es_pairs(), "es/pes: antithetic pairs per task and truncation")->capture_default_str();
  cmd->add_option("--es_cap_factor", o.es_cap_factor(),
                  "es/pes: blow-up cap; a truncation's loss is at most its value at f = factor * f0 every step, "
                  "and a diverged perturbed run scores that")
      ->capture_default_str();
  // Distributed meta-training (SPEC §6.2, docs/distributed.md): under torchrun each process is a rank.
  cmd->add_option("--tasks_per_worker", o.tasks_per_worker(),
                  "trajectories per process per meta-iteration; each meta-step averages them over every rank")
      ->check(CLI::PositiveNumber)->capture_default_str();
  cmd->add_option("--dist_timeout", args->dist_timeout,
                  "seconds any wait for another rank may take (rendezvous, each collective, rank 0's validation)")
      ->check(CLI::PositiveNumber)->capture_default_str();

  cmd->callback([args, raw, cmd] {
    apply_threads(args->threads);
    if (!args->resume.empty()) {
      // A resumed run keeps the options it was started with: a flag that would change them is an
      // error, not silently ignored. Only its length, budget and folder may change.
      static const std::set<std::string> kResumable = {"--resume",     "--meta_iterations", "--max_seconds",
                                                       "--output_dir", "--optimizer",       "--quiet",
                                                       "--plot",       "--threads",         "--config",
                                                       "--dist_timeout"};
      for (const CLI::Option* opt : cmd->get_options()) {
        const std::string name = opt->get_name();
        L2O_CHECK(opt->count() == 0 || kResumable.count(name) > 0, name,
                  " cannot change a resumed run (its options come from the checkpoint; only --meta_iterations, "
                  "--max_seconds and --output_dir can); start a new run to change it");
      }
    }
    // Under torchrun (WORLD_SIZE set) this process is one rank of the run; the rendezvous happens
    // here, before any work, so a bad environment fails at once.
    const auto timeout = std::chrono::milliseconds(static_cast<int64_t>(args->dist_timeout * 1000));
    const std::optional<meta::DistOptions> dist = meta::DistOptions::from_env(timeout);
    std::shared_ptr<meta::Communicator> comm;
    if (dist && dist->world_size > 1) comm = std::make_shared<meta::Communicator>(*dist);
    const bool root = !dist || dist->rank == 0;
    // A job torchrun restarted (--max_restarts) carries on from the run's last checkpoint.
    std::string restart_from;
    if (dist && dist->restart_count > 0 && args->resume.empty() && root) {
      const std::string latest = raw->output_dir + "/latest.pt";
      if (std::filesystem::exists(latest)) restart_from = latest;
    }
    std::string shared;
    if (comm) {
      // Rank 0 decides whether the run resumes and sends the checkpoint to every rank.
      shared = meta::share_checkpoint(*comm, root ? (args->resume.empty() ? restart_from : args->resume) : "");
    } else {
      shared = args->resume.empty() ? restart_from : args->resume;
    }
    const bool restarted = args->resume.empty() && !shared.empty();
    std::unique_ptr<meta::Trainer> trainer;
    if (restarted) {
      // The restarted job has the first attempt's command line: the checkpoint's options are the run's.
      trainer = meta::Trainer::resume(shared, raw->meta_iterations, root ? raw->output_dir : "",
                                      args->options.max_seconds(), comm);
      if (root) {
        std::fprintf(stderr, "restart %d: resuming from %s at meta-iteration %lld\n", dist->restart_count,
                     shared.c_str(), static_cast<long long>(trainer->counters().iteration));
      }
    } else if (!args->resume.empty()) {
      const bool moved = cmd->count("--output_dir") > 0;
      // The run's own options are used; an --optimizer that contradicts the checkpoint is an error,
      // not silently ignored.
      if (cmd->count("--optimizer") > 0) {
        const std::string held = io::read_checkpoint_info(shared).rule_spec;
        const std::string asked = learned::make_rule(raw->optimizer)->spec().str();
        L2O_CHECK(held == asked, "checkpoint '", args->resume, "' holds optimizer '", held, "', not '", asked, "'");
      }
      trainer = meta::Trainer::resume(shared, cmd->count("--meta_iterations") ? raw->meta_iterations : 0,
                                      moved ? raw->output_dir : "",
                                      cmd->count("--max_seconds") ? args->options.max_seconds() : -1.0, comm);
    } else {
      meta::TrainOptions t = args->options;
      std::string problem = raw->problem;
      if (args->num_problems > 0) {
        auto specs = problems::ProblemSet::parse(problem).specs();
        if (static_cast<int64_t>(specs.size()) > args->num_problems) specs.resize(static_cast<size_t>(args->num_problems));
        problem = problems::ProblemSet(specs).str();
      }
      t.optimizer(raw->optimizer).problem(problem).meta_iterations(raw->meta_iterations);
      t.num_steps(raw->num_steps).unroll_length(raw->unroll_length).objective(raw->objective);
      t.meta_optimizer(raw->meta_optimizer).meta_lr(raw->meta_lr).clip_value(raw->clip_value);
      t.clip_norm(raw->clip_norm).second_derivatives(raw->second_derivatives).blowup_factor(raw->blowup_factor);
      t.evaluation_period(raw->evaluation_period).evaluation_epochs(raw->evaluation_epochs).seed(raw->seed);
      t.output_dir(raw->output_dir);
      trainer = std::make_unique<meta::Trainer>(t, comm);
    }
    // Other ranks resumed from a private copy of rank 0's checkpoint.
    if (!root && !shared.empty()) std::filesystem::remove_all(std::filesystem::path(shared).parent_path());
    trainer->run(args->quiet);
    if (!root) return;
    const std::string dir = trainer->options().output_dir();
    // A run of 0 meta-iterations (e.g. to save an untrained φ as latest.pt) has no log to draw.
    if (args->plot && !dir.empty() && std::filesystem::exists(dir + "/train_log.csv")) {
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
