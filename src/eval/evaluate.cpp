#include <l2o/core/error.h>
#include <l2o/core/rng.h>
#include <l2o/eval/evaluate.h>
#include <l2o/learned/registry.h>
#include <l2o/meta/unroll.h>
#include <l2o/problems/registry.h>

#include <torch/torch.h>

#include <chrono>
#include <cmath>
#include <limits>

namespace l2o {
namespace eval {

namespace {
std::pair<double, double> mean_se(const std::vector<double>& xs) {
  if (xs.empty()) return {std::nan(""), std::nan("")};
  double mean = 0;
  for (double x : xs) mean += x;
  mean /= static_cast<double>(xs.size());
  if (xs.size() < 2 || !std::isfinite(mean)) return {mean, 0.0};
  double var = 0;
  for (double x : xs) var += (x - mean) * (x - mean);
  var /= static_cast<double>(xs.size() - 1);
  return {mean, std::sqrt(var / static_cast<double>(xs.size()))};
}

// The rows of EvalOptions::record_rows: one draw per base seed, outside the per-seed streams 0..seeds-1.
constexpr uint64_t kRecordRowsCounter = 0x5245434f524453ull;

problems::Batch record_subset(const problems::Batch& b, int64_t rows, int64_t seed) {
  if (b.empty() || rows <= 0 || rows >= b.inputs.size(0)) return b;
  auto gen = make_generator(static_cast<uint64_t>(seed), Stream::kTest, kRecordRowsCounter);
  const auto index = torch::randperm(b.inputs.size(0), gen, torch::kLong).narrow(0, 0, rows);
  return {b.inputs.index_select(0, index), b.targets.defined() ? b.targets.index_select(0, index) : b.targets};
}
}  // namespace

Curves evaluate_rule(const optim::UpdateRule& rule, const EvalOptions& options, const std::string& label) {
  L2O_CHECK(options.num_steps > 0, "num_steps=", options.num_steps, " must be > 0");
  L2O_CHECK(options.seeds > 0, "seeds=", options.seeds, " must be > 0");
  Curves curves;
  curves.label = label;
  curves.rule_spec = rule.spec().str();
  const auto set = problems::ProblemSet::parse(options.problem);
  for (int64_t s = 0; s < options.seeds; ++s) {
    auto gen = make_generator(static_cast<uint64_t>(options.seed), Stream::kTest, static_cast<uint64_t>(s));
    const auto problem = set.sample(gen);
    curves.losses.emplace_back();
    curves.records.emplace_back();
    run_seed(rule, *problem, problem->init_params(gen), options, gen, curves.losses.back(), curves.records.back());
    if (options.on_seed_done) options.on_seed_done();
  }
  return curves;
}

void run_seed(const optim::UpdateRule& rule, const problems::Problem& problem, TensorList params,
              const EvalOptions& options, at::Generator& gen, std::vector<double>& losses,
              std::vector<Record>& records) {
  using Clock = std::chrono::steady_clock;
  const problems::Batch objective_batch = problem.objective_batch();
  const bool deterministic = problem.deterministic();
  const bool recording = options.record_every > 0;
  optim::State state;
  {
    torch::NoGradGuard no_grad;
    state = rule.init(params, gen);
  }
  double step_seconds = 0;
  int64_t steps_since_record = 0;
  problems::Batch train, test;
  if (recording) {
    L2O_CHECK(options.record_rows >= 0, "record_rows=", options.record_rows, " must be >= 0 (0 = whole splits)");
    train = record_subset(problem.train_batch(), options.record_rows, options.seed);
    test = record_subset(problem.test_batch(), options.record_rows, options.seed);
  }
  auto norm = [](const TensorList& xs) {
    double sq = 0;
    for (const auto& x : xs) sq += x.detach().to(torch::kDouble).pow(2).sum().item<double>();
    return std::sqrt(sq);
  };
  for (int64_t t = 0;; ++t) {
    const auto start = Clock::now();
    TensorList leaves = fresh_leaves(params);
    // For deterministic problems the loss whose gradient drives step t is f(θ_t) itself.
    const torch::Tensor inner = problem.loss(leaves, deterministic ? objective_batch : problem.sample_batch(gen));
    const double inner_value = inner.item<double>();
    TensorList grads;
    if (std::isfinite(inner_value)) grads = problem.perturb_gradients(torch::autograd::grad({inner}, leaves), gen);
    step_seconds += std::chrono::duration<double>(Clock::now() - start).count();
    if (deterministic || recording) {
      losses.push_back(inner_value);
    } else {
      torch::NoGradGuard no_grad;
      losses.push_back(problem.loss(params, objective_batch).item<double>());
    }
    const bool finite = std::isfinite(losses.back()) && std::isfinite(inner_value);
    if (recording && (t % options.record_every == 0 || t == options.num_steps || !finite)) {
      torch::NoGradGuard no_grad;
      Record r;
      r.step = t;
      r.train_loss = problem.loss(params, train).item<double>();
      r.train_accuracy = problem.accuracy(params, train);
      r.test_loss = test.empty() ? std::nan("") : problem.loss(params, test).item<double>();
      r.test_accuracy = test.empty() ? std::nan("") : problem.accuracy(params, test);
      r.grad_norm = grads.empty() ? std::nan("") : norm(grads);
      r.param_norm = norm(params);
      r.seconds_per_step = steps_since_record > 0 ? step_seconds / static_cast<double>(steps_since_record) : std::nan("");
      records.push_back(r);
      step_seconds = 0;
      steps_since_record = 0;
    }
    if (t == options.num_steps || !finite) break;
    const auto update_start = Clock::now();
    {
      torch::NoGradGuard no_grad;
      optim::UpdateResult r = rule.update(l2o::detach(leaves), grads, state);
      params = std::move(r.params);
      state = std::move(r.state);
    }
    step_seconds += std::chrono::duration<double>(Clock::now() - update_start).count();
    ++steps_since_record;
  }
}

Summary summarize(const Curves& curves, int64_t num_steps) {
  Summary s;
  s.label = curves.label;
  s.rule_spec = curves.rule_spec;
  s.seeds = static_cast<int64_t>(curves.losses.size());
  std::vector<double> sums, finals;
  for (const auto& f : curves.losses) {
    const bool complete = static_cast<int64_t>(f.size()) == num_steps + 1 && std::isfinite(f.back());
    if (!complete) ++s.diverged;
    double sum = 0;
    for (size_t t = 1; t < f.size(); ++t) sum += f[t];
    sums.push_back(complete ? sum : std::numeric_limits<double>::infinity());
    finals.push_back(complete ? f.back() : std::numeric_limits<double>::infinity());
  }
  std::tie(s.mean_sum, s.se_sum) = mean_se(sums);
  std::tie(s.mean_final, s.se_final) = mean_se(finals);
  s.has_records = !curves.records.empty() && !curves.records.front().empty();
  if (s.has_records) {
    std::vector<double> train_loss, train_acc, test_loss, test_acc, seconds;
    const double inf = std::numeric_limits<double>::infinity();
    for (size_t i = 0; i < curves.records.size(); ++i) {
      const auto& rs = curves.records[i];
      const bool complete = !rs.empty() && rs.back().step == num_steps && std::isfinite(rs.back().train_loss);
      train_loss.push_back(complete ? rs.back().train_loss : inf);
      test_loss.push_back(complete ? rs.back().test_loss : inf);
      // A diverged run classifies no better than chance; count it as 0 rather than drop it.
      train_acc.push_back(complete ? rs.back().train_accuracy : 0.0);
      test_acc.push_back(complete ? rs.back().test_accuracy : 0.0);
      double sec = 0;
      int64_t n = 0;
      for (const auto& r : rs)
        if (std::isfinite(r.seconds_per_step)) sec += r.seconds_per_step, ++n;
      if (n > 0) seconds.push_back(sec / static_cast<double>(n));
    }
    std::tie(s.mean_train_loss, s.se_train_loss) = mean_se(train_loss);
    std::tie(s.mean_train_accuracy, s.se_train_accuracy) = mean_se(train_acc);
    std::tie(s.mean_test_loss, s.se_test_loss) = mean_se(test_loss);
    std::tie(s.mean_test_accuracy, s.se_test_accuracy) = mean_se(test_acc);
    s.seconds_per_step = mean_se(seconds).first;
  }
  return s;
}

double grid_score(const Summary& summary) {
  return summary.has_records ? summary.mean_train_loss : summary.mean_sum;
}

GridResult best_of_grid(const std::string& base_spec, const std::vector<double>& lrs, const EvalOptions& options) {
  L2O_CHECK(!lrs.empty(), "empty learning-rate grid for '", base_spec, "'");
  GridResult result;
  double best = std::numeric_limits<double>::infinity();
  for (double lr : lrs) {
    Spec spec = Spec::parse(base_spec);
    spec.set("lr", lr);
    const auto rule = learned::make_rule(spec.str());
    Curves c = evaluate_rule(*rule, options, spec.name());
    const double score = grid_score(summarize(c, options.num_steps));
    result.scores.emplace_back(lr, score);
    if (score < best || result.best.losses.empty()) {
      best = score;
      result.best = std::move(c);
      result.best_lr = lr;
    }
  }
  result.best.label = Spec::parse(base_spec).name() + " (lr " + format_double(result.best_lr) + ")";
  return result;
}

namespace {
int64_t grid_seed_count(int64_t grid_seeds, int64_t seeds) {
  return grid_seeds > 0 && grid_seeds < seeds ? grid_seeds : seeds;
}
}  // namespace

int64_t compare_runs(size_t learned, const std::vector<Baseline>& baselines, int64_t seeds, int64_t grid_seeds) {
  const int64_t g = grid_seed_count(grid_seeds, seeds);
  int64_t runs = static_cast<int64_t>(learned) * seeds;
  for (const auto& b : baselines)
    runs += b.lrs.empty() ? seeds : static_cast<int64_t>(b.lrs.size()) * g + (g < seeds ? seeds : 0);
  return runs;
}

Comparison compare(const std::vector<LabelledRule>& learned, const std::vector<Baseline>& baselines,
                   const EvalOptions& options, int64_t grid_seeds,
                   const std::function<void(const std::string&)>& on_seed_done) {
  Comparison out;
  std::string current;
  EvalOptions o = options;
  o.on_seed_done = [&] {
    if (options.on_seed_done) options.on_seed_done();
    if (on_seed_done) on_seed_done(current);
  };
  auto add = [&](Curves c) {
    out.summaries.push_back(summarize(c, o.num_steps));
    out.curves.push_back(std::move(c));
  };
  for (const auto& [label, rule] : learned) {
    L2O_CHECK(rule != nullptr, "learned optimizer '", label, "' is null");
    current = label;
    add(evaluate_rule(*rule, o, label));
  }
  for (const auto& b : baselines) {
    current = b.spec;
    BaselineResult r;
    r.spec = b.spec;
    if (b.lrs.empty()) {
      const Spec spec = Spec::parse(b.spec);
      r.lr = spec.has("lr") ? spec.get_double("lr", 0) : std::nan("");
      const std::string label = spec.has("lr") ? spec.name() + " (lr " + format_double(r.lr) + ", fixed)" : b.spec;
      add(evaluate_rule(*learned::make_rule(b.spec), o, label));
      out.baselines.push_back(std::move(r));
      continue;
    }
    // Tuning on fewer seeds saves time; the chosen rate is then judged on every seed like the rest.
    EvalOptions grid = o;
    grid.seeds = grid_seed_count(grid_seeds, o.seeds);
    GridResult g = best_of_grid(b.spec, b.lrs, grid);
    r.lr = g.best_lr;
    r.scores = g.scores;
    if (grid.seeds < o.seeds) {
      Spec spec = Spec::parse(b.spec);
      spec.set("lr", g.best_lr);
      const std::string label = g.best.label;
      g.best = evaluate_rule(*learned::make_rule(spec.str()), o, label);
    }
    add(std::move(g.best));
    out.baselines.push_back(std::move(r));
  }
  return out;
}

}  // namespace eval
}  // namespace l2o
