#include <l2o/core/error.h>
#include <l2o/meta/unroll.h>

#include <torch/torch.h>

#include <cmath>

namespace l2o {
namespace meta {

Objective parse_objective(const std::string& name) {
  if (name == "sum") return Objective::kSum;
  if (name == "log_ratio") return Objective::kLogRatio;
  L2O_FAIL("unknown meta-objective '", name, "' (known: sum, log_ratio)");
}

std::string objective_name(Objective objective) { return objective == Objective::kSum ? "sum" : "log_ratio"; }

UnrollResult unroll(const optim::UpdateRule& rule, const problems::Problem& problem, const Trajectory& start,
                    const UnrollOptions& options, at::Generator& gen) {
  L2O_CHECK(options.length > 0, "unroll length must be > 0, got ", options.length);
  UnrollResult result;
  TensorList params = fresh_leaves(start.params);
  optim::State state = start.state;
  const problems::Batch objective_batch = problem.objective_batch();
  // For deterministic problems f(θ_{t+1}) of the meta-objective is also the loss whose gradient
  // drives the next step, so it is computed once.
  torch::Tensor carried_loss;
  std::vector<torch::Tensor> terms;
  for (int64_t k = 0; k < options.length; ++k) {
    torch::Tensor inner_loss = problem.deterministic() && carried_loss.defined()
                                   ? carried_loss
                                   : problem.loss(params, problem.sample_batch(gen));
    TensorList grads = torch::autograd::grad({inner_loss}, params, {}, /*retain_graph=*/true,
                                             /*create_graph=*/options.second_derivatives);
    if (!options.second_derivatives) grads = l2o::detach(grads);
    grads = problem.perturb_gradients(std::move(grads), gen);
    optim::UpdateResult r = rule.update(params, grads, state);
    params = std::move(r.params);
    state = std::move(r.state);
    const torch::Tensor f = problem.loss(params, objective_batch);
    const double fv = f.item<double>();
    result.losses.push_back(fv);
    if (!std::isfinite(fv) || (options.blowup_factor > 0 && fv > options.blowup_factor * options.f0)) {
      result.diverged = true;
      break;
    }
    carried_loss = f;
    if (options.objective == Objective::kSum) {
      terms.push_back(f);
    } else {
      terms.push_back(torch::log(f / (options.f0 + 1e-6) + 1e-6));
    }
  }
  if (!terms.empty()) {
    torch::Tensor total = torch::stack(terms).sum();
    result.meta_loss = options.objective == Objective::kSum ? total : total / static_cast<double>(terms.size());
  }
  result.end.params = l2o::detach(params);
  result.end.state = optim::detach(state);
  result.end.step = start.step + static_cast<int64_t>(result.losses.size());
  return result;
}

std::vector<double> run_inner(const optim::UpdateRule& rule, const problems::Problem& problem,
                              TensorList params, int64_t steps, at::Generator& gen) {
  std::vector<double> losses;
  const problems::Batch objective_batch = problem.objective_batch();
  // For deterministic problems the loss whose gradient drives step t is f(θ_t) itself, so it is
  // computed once per step.
  const bool reuse = problem.deterministic();
  optim::State state = rule.init(params, gen);
  for (int64_t t = 0;; ++t) {
    TensorList leaves = fresh_leaves(params);
    const torch::Tensor inner = problem.loss(leaves, reuse ? objective_batch : problem.sample_batch(gen));
    if (reuse) {
      losses.push_back(inner.item<double>());
    } else {
      torch::NoGradGuard no_grad;
      losses.push_back(problem.loss(params, objective_batch).item<double>());
    }
    if (t == steps || !std::isfinite(losses.back())) break;
    const TensorList grads = problem.perturb_gradients(torch::autograd::grad({inner}, leaves), gen);
    torch::NoGradGuard no_grad;
    optim::UpdateResult r = rule.update(l2o::detach(leaves), grads, state);
    params = std::move(r.params);
    state = std::move(r.state);
  }
  return losses;
}

}  // namespace meta
}  // namespace l2o
