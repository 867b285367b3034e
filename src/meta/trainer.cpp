#include <l2o/core/error.h>
#include <l2o/core/progress.h>
#include <l2o/core/rng.h>
#include <l2o/io/checkpoint.h>
#include <l2o/io/files.h>
#include <l2o/learned/registry.h>
#include <l2o/meta/estimator.h>
#include <l2o/meta/trainer.h>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <mutex>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace l2o {
namespace meta {

void TrainOptions::validate() const {
  L2O_CHECK(meta_iterations() >= 0, "meta_iterations=", meta_iterations(), " must be >= 0");
  L2O_CHECK(num_steps() > 0, "num_steps=", num_steps(), " must be > 0");
  L2O_CHECK(unroll_length() > 0 && unroll_length() <= num_steps(), "unroll_length=", unroll_length(),
            " must lie in [1, num_steps=", num_steps(), "]");
  L2O_CHECK(fix_unroll() || (num_unroll_scale() >= 0 && num_partial_unroll_itr_scale() >= 0),
            "num_unroll_scale and num_partial_unroll_itr_scale must be >= 0");
  L2O_CHECK(min_num_unrolls() >= 1, "min_num_unrolls=", min_num_unrolls(), " must be >= 1");
  L2O_CHECK(min_num_itr_partial_unroll() >= 1, "min_num_itr_partial_unroll=", min_num_itr_partial_unroll(),
            " must be >= 1");
  L2O_CHECK(max_num_itr_partial_unroll() == 0 || max_num_itr_partial_unroll() >= min_num_itr_partial_unroll(),
            "max_num_itr_partial_unroll=", max_num_itr_partial_unroll(), " must be 0 (off) or >= ",
            "min_num_itr_partial_unroll=", min_num_itr_partial_unroll());
  parse_objective(objective());
  L2O_CHECK(meta_optimizer() == "adam" || meta_optimizer() == "rmsprop", "meta_optimizer='", meta_optimizer(),
            "' is not one of adam, rmsprop");
  L2O_CHECK(meta_lr() > 0, "meta_lr=", meta_lr(), " must be > 0");
  L2O_CHECK(clip_value() > 0, "clip_value=", clip_value(), " must be > 0");
  L2O_CHECK(clip_norm() >= 0, "clip_norm=", clip_norm(), " must be >= 0 (0 disables it)");
  L2O_CHECK(blowup_factor() >= 0, "blowup_factor=", blowup_factor(), " must be >= 0 (0 disables it)");
  L2O_CHECK(evaluation_period() >= 0, "evaluation_period=", evaluation_period(), " must be >= 0");
  L2O_CHECK(evaluation_epochs() > 0, "evaluation_epochs=", evaluation_epochs(), " must be > 0");
  L2O_CHECK(max_seconds() >= 0, "max_seconds=", max_seconds(), " must be >= 0 (0 = no budget)");
  parse_regularizer(reg_option());
  parse_regularize_time(regularize_time());
  L2O_CHECK(alpha() >= 0 && beta() >= 0, "alpha=", alpha(), " and beta=", beta(), " must be >= 0");
  RegularizerOptions().hessian_itrs(hessian_itrs()).top_n(hessian_top_n()).validate();
  const auto horizons = parse_horizons(cl_horizons());
  L2O_CHECK(!if_cl() || horizons.front() >= unroll_length(), "cl_horizons start at ", horizons.front(),
            " steps, fewer than unroll_length=", unroll_length());
  L2O_CHECK(!if_cl() || evaluation_period() > 0, "if_cl needs validation: set evaluation_period > 0");
  L2O_CHECK(min_num_eval() >= 1, "min_num_eval=", min_num_eval(), " must be >= 1");
  L2O_CHECK(mt_ratio() >= 0 && mt_ratio() <= 1, "mt_ratio=", mt_ratio(), " must lie in [0, 1]");
  L2O_CHECK(mt_k() >= 1, "mt_k=", mt_k(), " must be >= 1");
  L2O_CHECK(tasks_per_worker() >= 1, "tasks_per_worker=", tasks_per_worker(), " must be >= 1");
  const EstimatorType type = parse_estimator(estimator());
  EstimatorOptions().type(type).sigma(es_sigma()).pairs(es_pairs()).cap_factor(es_cap_factor()).validate();
  L2O_CHECK(type == EstimatorType::kTbptt || !if_mt(), "if_mt (imitation) needs estimator=tbptt: its loss is a ",
            "per-step regression onto the teacher that backpropagation differentiates exactly; estimator=",
            estimator(), " would only add noise (turn if_mt off or use estimator=tbptt)");
}

std::vector<int64_t> parse_horizons(const std::string& text) {
  std::vector<int64_t> out;
  size_t begin = 0;
  while (begin <= text.size()) {
    const size_t end = std::min(text.find(',', begin), text.size());
    const std::string item = text.substr(begin, end - begin);
    size_t used = 0;
    int64_t value = 0;
    try {
      value = std::stoll(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    L2O_CHECK(used > 0 && used == item.size() && value > 0, "cl_horizons: '", item,
              "' is not a positive step count (give e.g. 100,200,500)");
    L2O_CHECK(out.empty() || value > out.back(), "cl_horizons must increase, got ", value, " after ", out.back());
    out.push_back(value);
    begin = end + 1;
  }
  return out;
}

nlohmann::json TrainOptions::to_json() const {
  return {{"optimizer", optimizer()},           {"problem", problem()},
          {"validation_problem", validation_problem()},
          {"init_from", init_from()},
          {"meta_iterations", meta_iterations()}, {"num_steps", num_steps()},
          {"unroll_length", unroll_length()},     {"objective", objective()},
          {"fix_unroll", fix_unroll()},           {"num_unroll_scale", num_unroll_scale()},
          {"min_num_unrolls", min_num_unrolls()}, {"num_partial_unroll_itr_scale", num_partial_unroll_itr_scale()},
          {"min_num_itr_partial_unroll", min_num_itr_partial_unroll()},
          {"max_num_itr_partial_unroll", max_num_itr_partial_unroll()},
          {"meta_optimizer", meta_optimizer()},   {"meta_lr", meta_lr()},
          {"clip_value", clip_value()},           {"clip_norm", clip_norm()},
          {"second_derivatives", second_derivatives()}, {"blowup_factor", blowup_factor()},
          {"evaluation_period", evaluation_period()},   {"evaluation_epochs", evaluation_epochs()},
          {"seed", seed()},                       {"output_dir", output_dir()},
          {"max_seconds", max_seconds()},         {"reg_optimizer", reg_optimizer()},
          {"reg_optimizee", reg_optimizee()},     {"reg_option", reg_option()},
          {"alpha", alpha()},                     {"beta", beta()},
          {"regularize_time", regularize_time()}, {"hessian_itrs", hessian_itrs()},
          {"hessian_top_n", hessian_top_n()},     {"if_cl", if_cl()},
          {"cl_horizons", cl_horizons()},         {"min_num_eval", min_num_eval()},
          {"if_mt", if_mt()},                     {"mt_ratio", mt_ratio()},
          {"mt_k", mt_k()},                       {"mt_teacher", mt_teacher()},
          {"tasks_per_worker", tasks_per_worker()}, {"estimator", estimator()},
          {"es_sigma", es_sigma()},               {"es_pairs", es_pairs()},
          {"es_cap_factor", es_cap_factor()}};
}

TrainOptions TrainOptions::from_json(const nlohmann::json& j) {
  TrainOptions o;
  try {
    o.optimizer(j.at("optimizer")).problem(j.at("problem")).meta_iterations(j.at("meta_iterations"));
    o.num_steps(j.at("num_steps")).unroll_length(j.at("unroll_length")).objective(j.at("objective"));
    o.meta_optimizer(j.at("meta_optimizer")).meta_lr(j.at("meta_lr")).clip_value(j.at("clip_value"));
    o.clip_norm(j.at("clip_norm")).second_derivatives(j.at("second_derivatives"));
    o.blowup_factor(j.at("blowup_factor")).evaluation_period(j.at("evaluation_period"));
    o.evaluation_epochs(j.at("evaluation_epochs")).seed(j.at("seed")).output_dir(j.at("output_dir"));
    // Runs saved before sampled horizons existed used fixed ones.
    o.fix_unroll(j.value("fix_unroll", true)).num_unroll_scale(j.value("num_unroll_scale", 40.0));
    o.min_num_unrolls(j.value("min_num_unrolls", int64_t{1}));
    o.num_partial_unroll_itr_scale(j.value("num_partial_unroll_itr_scale", 200.0));
    o.min_num_itr_partial_unroll(j.value("min_num_itr_partial_unroll", int64_t{50}));
    o.max_num_itr_partial_unroll(j.value("max_num_itr_partial_unroll", int64_t{0}));
    // Runs saved before L2O-Entropy existed had none of it.
    const TrainOptions d;
    o.max_seconds(j.value("max_seconds", d.max_seconds())).reg_optimizer(j.value("reg_optimizer", false));
    o.reg_optimizee(j.value("reg_optimizee", false)).reg_option(j.value("reg_option", d.reg_option()));
    o.alpha(j.value("alpha", d.alpha())).beta(j.value("beta", d.beta()));
    o.regularize_time(j.value("regularize_time", d.regularize_time()));
    o.hessian_itrs(j.value("hessian_itrs", d.hessian_itrs())).hessian_top_n(j.value("hessian_top_n", d.hessian_top_n()));
    o.if_cl(j.value("if_cl", false)).cl_horizons(j.value("cl_horizons", d.cl_horizons()));
    o.min_num_eval(j.value("min_num_eval", d.min_num_eval())).if_mt(j.value("if_mt", false));
    o.mt_ratio(j.value("mt_ratio", d.mt_ratio())).mt_k(j.value("mt_k", d.mt_k()));
    o.mt_teacher(j.value("mt_teacher", d.mt_teacher()));
    o.tasks_per_worker(j.value("tasks_per_worker", d.tasks_per_worker()));
    o.validation_problem(j.value("validation_problem", d.validation_problem()));
    o.init_from(j.value("init_from", d.init_from()));
    // Runs saved before the estimators existed were trained by truncated BPTT.
    o.estimator(j.value("estimator", d.estimator())).es_sigma(j.value("es_sigma", d.es_sigma()));
    o.es_pairs(j.value("es_pairs", d.es_pairs())).es_cap_factor(j.value("es_cap_factor", d.es_cap_factor()));
  } catch (const nlohmann::json::exception& e) {
    L2O_FAIL("bad training options record: ", e.what());
  }
  return o;
}

Trainer::Trainer(TrainOptions options, std::shared_ptr<Communicator> comm)
    : options_(std::move(options)),
      problems_(problems::ProblemSet::parse(options_.problem())),
      validation_problems_(options_.validation_problem().empty()
                               ? problems_
                               : problems::ProblemSet::parse(options_.validation_problem())) {
  options_.validate();
  {
    // φ's initial draw comes from the run's seed, not from whatever the global generator holds. The
    // generator is global: trainers built at once in several threads (ranks on threads, as in the
    // tests) would interleave their draws, so building is serialised.
    static std::mutex global_generator;
    std::lock_guard<std::mutex> lock(global_generator);
    torch::manual_seed(mix_seed(static_cast<uint64_t>(options_.seed()), Stream::kInit, 0));
    rule_ = learned::make_rule(options_.optimizer());
  }
  L2O_CHECK(rule_->module() != nullptr, "optimizer '", rule_->name(),
            "' has no learned parameters to meta-train (pick a learned one, e.g. lstm)");
  // Fine-tuning: φ from another run's checkpoint, of the same optimizer; its other options may differ
  // when φ's shapes do not (a lower max_log_lr, say).
  if (!options_.init_from().empty()) io::load_phi_into(options_.init_from(), *rule_);
  reduction_ = std::make_unique<MetaGradientReduction>(rule_->module()->parameters(), std::move(comm));
  estimator_ = make_estimator(*rule_, EstimatorOptions()
                                          .type(parse_estimator(options_.estimator()))
                                          .sigma(options_.es_sigma())
                                          .pairs(options_.es_pairs())
                                          .cap_factor(options_.es_cap_factor()));
  counters_.world_size = reduction_->world_size();
  // Only rank 0 writes: the other ranks' machines need not see the output folder.
  if (root() && !options_.output_dir().empty()) io::ensure_writable_dir(options_.output_dir());
  // Every rank seeds φ alike; rank 0's copy is made everyone's all the same, so that a rank built
  // differently (another LibTorch, another thread count) cannot silently train another φ.
  reduction_->broadcast_parameters();
  build_meta_optimizer();
  horizons_ = parse_horizons(options_.cl_horizons());
  if (options_.if_mt()) {
    teacher_ = learned::make_rule(options_.mt_teacher());
    L2O_CHECK(teacher_->module() == nullptr, "mt_teacher='", options_.mt_teacher(),
              "' is a learned rule; imitation needs a hand-designed teacher (adam, rmsprop, nag, ...)");
  }
}

Trainer::~Trainer() = default;

void Trainer::build_meta_optimizer() {
  auto params = rule_->module()->parameters();
  if (options_.meta_optimizer() == "adam") {
    meta_optimizer_ = std::make_unique<torch::optim::Adam>(params, torch::optim::AdamOptions(options_.meta_lr()));
  } else {
    // L2O-Scale's RMSProp: decay 0.9, ε 1e-20.
    meta_optimizer_ = std::make_unique<torch::optim::RMSprop>(
        params, torch::optim::RMSpropOptions(options_.meta_lr()).alpha(0.9).eps(1e-20));
  }
}

std::unique_ptr<Trainer> Trainer::resume(const std::string& checkpoint, int64_t meta_iterations,
                                         const std::string& output_dir, double max_seconds,
                                         std::shared_ptr<Communicator> comm) {
  const io::CheckpointInfo info = io::read_checkpoint_info(checkpoint);
  nlohmann::json record;
  try {
    record = nlohmann::json::parse(info.trainer_json);
  } catch (const nlohmann::json::exception& e) {
    L2O_FAIL("checkpoint '", checkpoint, "' has a corrupt trainer record");
  }
  L2O_CHECK(record.contains("options") && record.contains("counters"), "checkpoint '", checkpoint,
            "' was not written by the trainer (no options); it can be evaluated but not resumed");
  TrainOptions options = TrainOptions::from_json(record["options"]);
  if (meta_iterations > 0) options.meta_iterations(meta_iterations);
  if (!output_dir.empty()) options.output_dir(output_dir);
  if (max_seconds >= 0) options.max_seconds(max_seconds);
  // φ comes from the checkpoint: the run's init_from (which may be gone by now) is not read again.
  TrainOptions build = options;
  build.init_from("");
  auto trainer = std::make_unique<Trainer>(build, std::move(comm));
  trainer->options_.init_from(options.init_from());
  io::load_into(checkpoint, *trainer->rule_, trainer->meta_optimizer_.get());
  const auto& c = record["counters"];
  trainer->counters_.iteration = c.at("iteration");
  trainer->counters_.best_validation = c.at("best_validation").is_null() ? std::numeric_limits<double>::infinity()
                                                                         : c.at("best_validation").get<double>();
  trainer->counters_.best_iteration = c.at("best_iteration");
  trainer->counters_.nonfinite_entries = c.at("nonfinite_entries");
  trainer->counters_.diverged_unrolls = c.at("diverged_unrolls");
  trainer->counters_.elapsed_seconds = c.value("elapsed_seconds", 0.0);
  trainer->counters_.stage = c.value("stage", int64_t{0});
  trainer->counters_.stage_evaluations = c.value("stage_evaluations", int64_t{0});
  trainer->counters_.stage_improved = c.value("stage_improved", false);
  trainer->counters_.stopped = c.value("stopped", std::string());
  trainer->counters_.world_size = c.value("world_size", int64_t{1});
  const int64_t world = trainer->reduction_->world_size();
  if (trainer->root() && trainer->counters_.world_size != world && !trainer->finished()) {
    std::fprintf(stderr, "resuming a run of %lld process(es) on %lld: a continuation (its later draws differ from the uninterrupted run's)\n",
                 static_cast<long long>(trainer->counters_.world_size), static_cast<long long>(world));
  }
  trainer->counters_.world_size = world;
  // A run moved to a new folder takes its best checkpoint along, so best.pt always matches the
  // best_validation counter it carries.
  const auto best = std::filesystem::path(checkpoint).parent_path() / "best.pt";
  const auto moved_best = std::filesystem::path(trainer->options_.output_dir()) / "best.pt";
  if (trainer->root() && !trainer->options_.output_dir().empty() && std::filesystem::exists(best) &&
      !std::filesystem::exists(moved_best)) {
    io::write_atomic(moved_best.string(), [&](const std::string& tmp) { std::filesystem::copy_file(best, tmp); });
  }
  // The curriculum's stage best is the run's best.pt (an improvement in a stage is a new overall best).
  if (trainer->counters_.stage_improved && std::filesystem::exists(best)) {
    const optim::RulePtr held = learned::make_rule(trainer->options_.optimizer());
    io::load_into(best.string(), *held, nullptr);
    for (const auto& p : held->module()->parameters()) trainer->stage_best_.push_back(p.detach().clone());
  }
  return trainer;
}

std::string Trainer::record_json() const {
  nlohmann::json c = {{"iteration", counters_.iteration},
                      {"best_iteration", counters_.best_iteration},
                      {"nonfinite_entries", counters_.nonfinite_entries},
                      {"diverged_unrolls", counters_.diverged_unrolls},
                      {"elapsed_seconds", counters_.elapsed_seconds},
                      {"stage", counters_.stage},
                      {"stage_evaluations", counters_.stage_evaluations},
                      {"stage_improved", counters_.stage_improved},
                      {"stopped", counters_.stopped},
                      {"world_size", counters_.world_size}};
  c["best_validation"] = std::isfinite(counters_.best_validation) ? nlohmann::json(counters_.best_validation)
                                                                   : nlohmann::json(nullptr);
  return nlohmann::json{{"options", options_.to_json()}, {"counters", c}}.dump();
}

void Trainer::save(const std::string& path) const { io::save_checkpoint(path, *rule_, meta_optimizer_.get(), record_json()); }

int64_t sanitize_gradients(const std::vector<torch::Tensor>& params, double clip_value) {
  torch::NoGradGuard no_grad;
  int64_t nonfinite = 0;
  for (const auto& p : params) {
    if (!p.grad().defined()) continue;
    const auto finite = torch::isfinite(p.grad());
    nonfinite += (~finite).sum().item<int64_t>();
    p.grad().copy_(torch::where(finite, p.grad(), torch::zeros_like(p.grad())).clamp(-clip_value, clip_value));
  }
  return nonfinite;
}

Horizon draw_horizon(const TrainOptions& o, at::Generator& gen) {
  Horizon h;
  if (o.fix_unroll()) {
    h.unroll_length = o.unroll_length();
    h.unrolls = (o.num_steps() + o.unroll_length() - 1) / o.unroll_length();
    return h;
  }
  auto exponential = [&](double scale) {
    if (scale <= 0) return 0.0;
    return torch::empty({1}, torch::kDouble).exponential_(1.0 / scale, gen).item<double>();
  };
  h.unrolls = static_cast<int64_t>(std::llround(exponential(o.num_unroll_scale()))) + o.min_num_unrolls();
  h.unroll_length =
      static_cast<int64_t>(std::llround(exponential(o.num_partial_unroll_itr_scale()))) + o.min_num_itr_partial_unroll();
  if (o.max_num_itr_partial_unroll() > 0) h.unroll_length = std::min(h.unroll_length, o.max_num_itr_partial_unroll());
  return h;
}

namespace {
/// One trajectory of a meta-iteration, between its unrolls.
struct Task {
  explicit Task(at::Generator g) : gen(std::move(g)) {}
  at::Generator gen;
  problems::ProblemPtr problem;
  Trajectory traj;
  Horizon horizon;
  int64_t total_steps = 0;
  UnrollOptions uo;
  bool imitation = false;
  bool done = false;
  int64_t index = 0;
  double last_loss = 0;
  /// The estimator's own state of this inner problem (PES's pairs), if any.
  std::unique_ptr<EstimatorState> estimator_state;
};
}  // namespace

void Trainer::train_tasks(IterationRecord& rec) {
  const int64_t per_worker = options_.tasks_per_worker();
  const RegularizeTime reg_time = parse_regularize_time(options_.regularize_time());
  std::vector<Task> tasks;
  for (int64_t t = 0; t < per_worker; ++t) {
    // Counter-based seeding: task j of iteration i draws the same problem and minibatches however
    // it is reached, on whichever rank runs it (rank r runs tasks r·T .. r·T + T − 1).
    const int64_t global = reduction_->rank() * per_worker + t;
    Task task(task_generator(static_cast<uint64_t>(options_.seed()), static_cast<uint64_t>(counters_.iteration),
                             static_cast<uint64_t>(global)));
    at::Generator& gen = task.gen;
    task.problem = problems_.sample(gen);
    rec.problems.push_back(task.problem->name());
    task.traj.params = task.problem->init_params(gen);
    task.traj.state = rule_->init(task.traj.params, gen);
    task.horizon = draw_horizon(options_, gen);
    task.total_steps = options_.fix_unroll() ? options_.num_steps() : task.horizon.unrolls * task.horizon.unroll_length;
    if (options_.if_cl()) {
      task.total_steps = horizons_[static_cast<size_t>(std::min<int64_t>(counters_.stage, horizons_.size() - 1))];
      task.horizon.unroll_length = options_.unroll_length();
      task.horizon.unrolls = (task.total_steps + task.horizon.unroll_length - 1) / task.horizon.unroll_length;
    }
    // The draw happens only in imitation runs, so plain runs keep their random streams.
    if (options_.if_mt()) {
      task.imitation = torch::rand({1}, gen, torch::kDouble).item<double>() < options_.mt_ratio();
      if (task.imitation) task.traj.teacher_state = teacher_->init(task.traj.params, gen);
    }
    UnrollOptions& uo = task.uo;
    uo.objective = parse_objective(options_.objective());
    uo.second_derivatives = options_.second_derivatives();
    uo.blowup_factor = options_.blowup_factor();
    uo.regularizer = RegularizerOptions()
                         .type(parse_regularizer(options_.reg_option()))
                         .hessian_itrs(options_.hessian_itrs())
                         .top_n(options_.hessian_top_n());
    uo.teacher = task.imitation ? teacher_.get() : nullptr;
    uo.teacher_steps = options_.mt_k();
    {
      torch::NoGradGuard no_grad;
      uo.f0 = task.problem->loss(task.traj.params, task.problem->objective_batch()).item<double>();
    }
    task.estimator_state = estimator_->start(task.traj);
    tasks.push_back(std::move(task));
  }
  rec.num_steps = tasks.front().total_steps;

  // One meta-step per unroll, on the mean meta-gradient of every task (of every rank) that gave
  // one. Tasks may end after different numbers of unrolls (sampled horizons, divergence); the
  // iteration ends when none has an unroll left anywhere.
  const auto params = rule_->module()->parameters();
  double loss_sum = 0;
  double contributions = 0;
  for (int64_t unroll_index = 0;; ++unroll_index) {
    reduction_->begin();
    UnrollMetrics& local = reduction_->local();
    for (Task& task : tasks) {
      if (task.done) continue;
      UnrollOptions& uo = task.uo;
      uo.length = std::min(task.horizon.unroll_length, task.total_steps - task.traj.step);
      const bool regularize = regularize_unroll(reg_time, task.index, task.horizon.unrolls);
      ++task.index;
      uo.alpha = regularize && options_.reg_optimizer() ? options_.alpha() : 0;
      uo.beta = regularize && options_.reg_optimizee() ? options_.beta() : 0;
      TruncationResult r = estimator_->truncate(*task.problem, task.traj, uo, task.gen, task.estimator_state.get());
      local.regularizer += r.regularizer;
      local.hvps += static_cast<double>(r.hvps);
      if (r.has_gradient) {
        local.nonfinite_entries += static_cast<double>(sanitize_gradients(params, options_.clip_value()));
        reduction_->add_gradient();
        local.loss_sum += r.meta_loss;
        local.contributions += 1;
      }
      if (!r.losses.empty()) task.last_loss = r.losses.back();
      const int64_t steps = r.end.step;
      if (r.diverged) {
        task.done = true;
        local.diverged += 1;
      } else {
        task.traj = std::move(r.end);
        task.done = task.traj.step >= task.total_steps;
      }
      if (task.done) {
        local.finished += 1;
        local.final_loss_sum += task.last_loss;
        local.steps += static_cast<double>(steps);
        local.imitation += task.imitation ? 1 : 0;
      } else {
        local.active_next += 1;
      }
    }
    const UnrollMetrics global = reduction_->reduce(
        "iteration " + std::to_string(counters_.iteration) + ", unroll " + std::to_string(unroll_index));
    if (global.contributions > 0) {
      if (options_.clip_norm() > 0) torch::nn::utils::clip_grad_norm_(params, options_.clip_norm());
      meta_optimizer_->step();
    }
    loss_sum += global.loss_sum;
    contributions += global.contributions;
    rec.nonfinite_entries += static_cast<int64_t>(global.nonfinite_entries);
    rec.regularizer += global.regularizer;
    rec.hvps += static_cast<int64_t>(global.hvps);
    rec.final_loss += global.final_loss_sum;
    rec.steps += static_cast<int64_t>(global.steps);
    rec.imitation += static_cast<int64_t>(global.imitation);
    if (global.diverged > 0) {
      rec.diverged = true;
      counters_.diverged_unrolls += static_cast<int64_t>(global.diverged);
    }
    if (global.active_next <= 0) break;
  }
  const double total_tasks = static_cast<double>(per_worker * reduction_->world_size());
  rec.final_loss /= total_tasks;
  rec.unrolls = static_cast<int64_t>(contributions);
  rec.meta_loss = contributions > 0 ? loss_sum / contributions : std::nan("");
}

IterationRecord Trainer::step() {
  const auto t0 = std::chrono::steady_clock::now();
  IterationRecord rec;
  rec.iteration = counters_.iteration;
  train_tasks(rec);
  counters_.nonfinite_entries += rec.nonfinite_entries;
  ++counters_.iteration;

  // Rank 0 alone validates; every rank then takes its result and its clock, so the counters, the
  // curriculum and the time budget stay the same everywhere, and checks that φ is rank 0's.
  const bool due = options_.evaluation_period() > 0 && counters_.iteration % options_.evaluation_period() == 0;
  std::optional<double> validation;
  if (due && root()) validation = validate();
  rec.phi_checksum = checksum(rule_->module()->parameters());
  const IterationEnd end = reduction_->end_iteration(
      validation, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), rec.phi_checksum,
      rec.iteration);
  rec.validation = end.validation;
  if (rec.validation) {
    const bool better = *rec.validation < counters_.best_validation;
    if (better) {
      counters_.best_validation = *rec.validation;
      counters_.best_iteration = counters_.iteration;
    }
    if (root() && !options_.output_dir().empty() && better) save(options_.output_dir() + "/best.pt");
    if (options_.if_cl()) curriculum_step(better);
  }
  rec.seconds = end.seconds;
  counters_.elapsed_seconds += rec.seconds;
  if (root() && !options_.output_dir().empty() && (rec.validation || finished())) save(options_.output_dir() + "/latest.pt");
  append_log(rec);
  return rec;
}

void Trainer::curriculum_step(bool improved) {
  ++counters_.stage_evaluations;
  if (improved) {
    counters_.stage_improved = true;
    stage_best_.clear();
    for (const auto& p : rule_->module()->parameters()) stage_best_.push_back(p.detach().clone());
  }
  if (counters_.stage_evaluations < options_.min_num_eval()) return;
  if (!counters_.stage_improved) {
    counters_.stopped = "curriculum stage " + std::to_string(counters_.stage) + " (" +
                        std::to_string(horizons_[counters_.stage]) + " steps) did not improve in " +
                        std::to_string(counters_.stage_evaluations) + " evaluations";
    return;
  }
  {
    torch::NoGradGuard no_grad;
    const auto params = rule_->module()->parameters();
    for (size_t i = 0; i < params.size(); ++i) params[i].copy_(stage_best_[i]);
  }
  ++counters_.stage;
  counters_.stage_evaluations = 0;
  counters_.stage_improved = false;
  if (counters_.stage >= static_cast<int64_t>(horizons_.size())) {
    counters_.stopped = "curriculum complete after its last stage (" + std::to_string(horizons_.back()) + " steps)";
  }
}

bool Trainer::finished() const {
  return counters_.iteration >= options_.meta_iterations() || !counters_.stopped.empty() ||
         (options_.max_seconds() > 0 && counters_.elapsed_seconds >= options_.max_seconds());
}

double Trainer::validate() {
  const Objective objective = parse_objective(options_.objective());
  // The curriculum validates on the next stage's horizon (the last stage on its own) and scores the
  // final objective only.
  const bool curriculum = options_.if_cl();
  const int64_t steps =
      curriculum ? horizons_[static_cast<size_t>(std::min<int64_t>(counters_.stage + 1, horizons_.size() - 1))]
                 : options_.num_steps();
  double total = 0;
  for (int64_t e = 0; e < options_.evaluation_epochs(); ++e) {
    auto gen = make_generator(static_cast<uint64_t>(options_.seed()), Stream::kValidation, static_cast<uint64_t>(e));
    // A validation set given on its own is cycled through in order, so that every one of its
    // problems is scored (with evaluation_epochs >= its size); the training set is sampled as before.
    const auto& specs = validation_problems_.specs();
    const problems::ProblemPtr problem =
        options_.validation_problem().empty()
            ? validation_problems_.sample(gen)
            : problems::make_problem(specs[static_cast<size_t>(e) % specs.size()].first, gen);
    const std::vector<double> f = run_inner(*rule_, *problem, problem->init_params(gen), steps, gen);
    if (static_cast<int64_t>(f.size()) < steps + 1) return std::numeric_limits<double>::infinity();
    double value = 0;
    if (curriculum) {
      value = f.back();
    } else {
      for (size_t t = 1; t < f.size(); ++t)
        value += objective == Objective::kSum ? f[t] : std::log(f[t] / (f[0] + 1e-6) + 1e-6);
      if (objective == Objective::kLogRatio) value /= static_cast<double>(f.size() - 1);
    }
    if (!std::isfinite(value)) return std::numeric_limits<double>::infinity();
    total += value;
  }
  return total / static_cast<double>(options_.evaluation_epochs());
}

namespace {
// Starts a log anew with `header` and the rows of the old file at `path` whose first field (the
// iteration) is below `iteration`: a resumed run continues its log, a rerun in the folder replaces it.
void restart_log(const std::string& path, const std::string& header, int64_t iteration) {
  std::string kept = header;
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);  // the old header
  while (std::getline(in, line)) {
    // Keep the rows of iterations before this one; a line that is not a row ends the old log.
    char* end = nullptr;
    const long long it = std::strtoll(line.c_str(), &end, 10);
    if (end == line.c_str() || *end != ',' || it >= iteration) break;
    kept += line + "\n";
  }
  io::write_text_atomic(path, kept);
}
}  // namespace

void Trainer::append_log(const IterationRecord& r) {
  if (!root() || options_.output_dir().empty()) return;
  const std::string path = options_.output_dir() + "/train_log.csv";
  const std::string problems_path = options_.output_dir() + "/train_problems.csv";
  static const char* kHeader =
      "iteration,meta_loss,final_loss,nonfinite_entries,diverged,steps,unrolls,seconds,validation,"
      "regularizer,hvps,imitation,num_steps,phi_checksum\n";
  if (!log_started_) {
    log_started_ = true;
    restart_log(path, kHeader, r.iteration);
    restart_log(problems_path, "iteration,task,problem\n", r.iteration);
  }
  {
    std::ofstream out(problems_path, std::ios::app);
    L2O_CHECK(out.good(), "cannot append to '", problems_path, "'");
    for (size_t t = 0; t < r.problems.size(); ++t) out << r.iteration << ',' << t << ',' << io::csv_field(r.problems[t], true) << '\n';
  }
  std::ofstream out(path, std::ios::app);
  L2O_CHECK(out.good(), "cannot append to '", path, "'");
  out << r.iteration << ',' << format_double(r.meta_loss) << ',' << format_double(r.final_loss) << ','
      << r.nonfinite_entries << ',' << (r.diverged ? 1 : 0) << ',' << r.steps << ',' << r.unrolls << ','
      << format_double(r.seconds) << ','
      << (r.validation ? format_double(*r.validation) : "") << ',' << format_double(r.regularizer) << ','
      << r.hvps << ',' << r.imitation << ',' << r.num_steps << ',' << checksum_hex(r.phi_checksum) << '\n';
}

void Trainer::run(bool quiet) {
  // Progress and summary lines come from rank 0 only.
  quiet = quiet || !root();
  Progress progress("train", options_.meta_iterations(), quiet, counters_.iteration);
  const int64_t first_iteration = counters_.iteration;
  // Traffic of the meta-iterations only (not of the start-up broadcasts).
  const auto& comm = reduction_->communicator();
  const int64_t collectives0 = comm ? comm->collectives() : 0, bytes0 = comm ? comm->bytes_all_reduced() : 0;
  const double seconds0 = comm ? comm->collective_seconds() : 0;
  if (options_.max_seconds() > 0) progress.set_time_budget(options_.max_seconds(), counters_.elapsed_seconds);
  double ema = std::nan("");
  std::string last_validation;
  while (!finished()) {
    const IterationRecord r = step();
    if (std::isfinite(r.meta_loss)) ema = std::isnan(ema) ? r.meta_loss : 0.9 * ema + 0.1 * r.meta_loss;
    if (r.validation) last_validation = " val " + format_double(std::round(*r.validation * 1e4) / 1e4);
    char status[160];
    std::snprintf(status, sizeof(status), "meta-loss %.4g (avg %.4g)%s", r.meta_loss, ema, last_validation.c_str());
    progress.update(counters_.iteration, status);
  }
  if (root() && !options_.output_dir().empty()) save(options_.output_dir() + "/latest.pt");
  if (!root()) return;
  if (!counters_.stopped.empty()) std::fprintf(stderr, "stopped: %s\n", counters_.stopped.c_str());
  if (reduction_->distributed() && counters_.iteration > first_iteration) {
    const double n = static_cast<double>(counters_.iteration - first_iteration);
    std::fprintf(stderr,
                 "distributed: %d ranks x %lld task(s); per meta-iteration %.1f collectives, %.0f bytes all-reduced "
                 "(%lld per unroll), %.4f s in collectives on rank 0\n",
                 reduction_->world_size(), static_cast<long long>(options_.tasks_per_worker()),
                 static_cast<double>(comm->collectives() - collectives0) / n,
                 static_cast<double>(comm->bytes_all_reduced() - bytes0) / n,
                 static_cast<long long>(reduction_->buffer_bytes()), (comm->collective_seconds() - seconds0) / n);
  }
  if (options_.max_seconds() > 0 && counters_.elapsed_seconds >= options_.max_seconds()) {
    std::fprintf(stderr, "stopped: time budget of %g s spent after %lld meta-iterations\n", options_.max_seconds(),
                 static_cast<long long>(counters_.iteration));
  }
  char status[160];
  std::snprintf(status, sizeof(status), "best validation %.6g at iteration %lld, %lld non-finite meta-gradient entries zeroed, %lld diverged unrolls",
                counters_.best_validation, static_cast<long long>(counters_.best_iteration),
                static_cast<long long>(counters_.nonfinite_entries), static_cast<long long>(counters_.diverged_unrolls));
  progress.finish(status);
}

}  // namespace meta
}  // namespace l2o
