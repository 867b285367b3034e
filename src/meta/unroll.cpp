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
  L2O_CHECK(options.alpha >= 0 && options.beta >= 0, "regulariser weights must be >= 0 (alpha=", options.alpha,
            ", beta=", options.beta, ")");
  L2O_CHECK(options.teacher == nullptr || options.teacher_steps >= 1, "mt_k=", options.teacher_steps,
            " must be >= 1");
  UnrollResult result;
  TensorList params = fresh_leaves(start.params);
  optim::State state = start.state;
  optim::State teacher_state = start.teacher_state;
  const bool imitate = options.teacher != nullptr;
  // Under teacher forcing θ_t does not depend on φ, so the α term would have no meta-gradient: skip it.
  const bool alpha_on = options.alpha > 0 && !imitate;
  const bool beta_on = options.beta > 0;
  const double num_params = static_cast<double>(l2o::numel(params));
  const problems::Batch objective_batch = problem.objective_batch();
  // For deterministic problems f(θ_{t+1}) of the meta-objective is also the loss whose gradient
  // drives the next step, so it is computed once.
  torch::Tensor carried_loss;
  std::vector<torch::Tensor> terms, reg_terms;
  for (int64_t k = 0; k < options.length; ++k) {
    const bool reuse = problem.deterministic() && carried_loss.defined();
    const problems::Batch batch = reuse ? objective_batch : problem.sample_batch(gen);
    const torch::Tensor inner_loss = reuse ? carried_loss : problem.loss(params, batch);
    TensorList grads;
    if (alpha_on || beta_on) {
      // The regulariser needs ∇f with its graph: its HVPs differentiate it once more.
      TensorList g = torch::autograd::grad({inner_loss}, params, {}, /*retain_graph=*/true, /*create_graph=*/true);
      const RegularizerValue reg = regularizer(g, params, options.regularizer, gen);
      result.regularizer += reg.value.item<double>();
      result.hvps += reg.hvps;
      if (alpha_on) reg_terms.push_back(reg.value);
      if (beta_on) {
        // ∇(f + β·reg) = ∇f + β·∇reg: one more backward through the HVPs.
        const TensorList rg = torch::autograd::grad({reg.value}, params, {}, /*retain_graph=*/true,
                                                    /*create_graph=*/options.second_derivatives);
        for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] + options.beta * rg[i];
      }
      grads = options.second_derivatives ? std::move(g) : l2o::detach(g);
    } else {
      grads = torch::autograd::grad({inner_loss}, params, {}, /*retain_graph=*/true,
                                    /*create_graph=*/options.second_derivatives);
      if (!options.second_derivatives) grads = l2o::detach(grads);
    }
    grads = problem.perturb_gradients(std::move(grads), gen);
    optim::UpdateResult r = rule.update(params, grads, state);
    state = std::move(r.state);
    if (imitate) {
      // The teacher steps from the same θ_t on the same minibatch; the trajectory then follows it.
      TensorList teacher_params = l2o::detach(params);
      TensorList teacher_grads = l2o::detach(grads);
      for (int64_t s = 0; s < options.teacher_steps; ++s) {
        if (s > 0) {
          const TensorList leaves = fresh_leaves(teacher_params);
          teacher_grads = problem.perturb_gradients(
              torch::autograd::grad({problem.loss(leaves, batch)}, leaves), gen);
        }
        torch::NoGradGuard no_grad;
        optim::UpdateResult t = options.teacher->update(teacher_params, teacher_grads, teacher_state);
        teacher_params = std::move(t.params);
        teacher_state = std::move(t.state);
      }
      torch::Tensor squared;
      for (size_t i = 0; i < params.size(); ++i) {
        const torch::Tensor learned_step = r.params[i] - params[i];
        const torch::Tensor teacher_step = teacher_params[i] - params[i].detach();
        const torch::Tensor term = 0.5 * (learned_step - teacher_step).pow(2).sum();
        squared = squared.defined() ? squared + term : term;
      }
      params = fresh_leaves(teacher_params);
      terms.push_back(squared / num_params);
    } else {
      params = std::move(r.params);
    }
    const torch::Tensor f = problem.loss(params, objective_batch);
    const double fv = f.item<double>();
    result.losses.push_back(fv);
    if (!std::isfinite(fv) || (options.blowup_factor > 0 && fv > options.blowup_factor * options.f0)) {
      result.diverged = true;
      if (imitate) terms.pop_back();
      break;
    }
    carried_loss = f;
    if (imitate) continue;
    if (options.objective == Objective::kSum) {
      terms.push_back(f);
    } else {
      terms.push_back(torch::log(f / (options.f0 + 1e-6) + 1e-6));
    }
  }
  if (!terms.empty()) {
    torch::Tensor total = torch::stack(terms).sum();
    if (imitate) result.imitation = total.item<double>();
    result.meta_loss = imitate || options.objective == Objective::kSum ? total
                                                                        : total / static_cast<double>(terms.size());
    if (!reg_terms.empty()) result.meta_loss = result.meta_loss + options.alpha * torch::stack(reg_terms).sum();
  }
  result.end.params = l2o::detach(params);
  result.end.state = optim::detach(state);
  result.end.teacher_state = teacher_state;
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
