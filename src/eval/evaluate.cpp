#include <l2o/core/error.h>
#include <l2o/core/rng.h>
#include <l2o/eval/evaluate.h>
#include <l2o/learned/registry.h>
#include <l2o/meta/unroll.h>
#include <l2o/problems/registry.h>

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
    curves.losses.push_back(meta::run_inner(rule, *problem, problem->init_params(gen), options.num_steps, gen));
  }
  return curves;
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
  return s;
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
    const double score = summarize(c, options.num_steps).mean_sum;
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

}  // namespace eval
}  // namespace l2o
