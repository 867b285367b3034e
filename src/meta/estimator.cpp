#include <l2o/core/error.h>
#include <l2o/meta/estimator.h>

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>

namespace l2o {
namespace meta {

EstimatorType parse_estimator(const std::string& name) {
  if (name == "tbptt") return EstimatorType::kTbptt;
  if (name == "es") return EstimatorType::kEs;
  if (name == "pes") return EstimatorType::kPes;
  L2O_FAIL("unknown estimator '", name, "' (known: tbptt, es, pes)");
}

std::string estimator_name(EstimatorType type) {
  switch (type) {
    case EstimatorType::kTbptt:
      return "tbptt";
    case EstimatorType::kEs:
      return "es";
    case EstimatorType::kPes:
      return "pes";
  }
  return "tbptt";
}

void EstimatorOptions::validate() const {
  L2O_CHECK(std::isfinite(sigma()) && sigma() > 0, "es_sigma=", sigma(),
            " must be a finite number > 0 (the perturbations' standard deviation; learned_optimization uses 0.01)");
  L2O_CHECK(pairs() >= 1, "es_pairs=", pairs(), " must be >= 1 (antithetic pairs per task and truncation; default 8)");
  L2O_CHECK(std::isfinite(cap_factor()) && cap_factor() >= 1, "es_cap_factor=", cap_factor(),
            " must be a finite number >= 1 (the blow-up cap as a multiple of f0; default 1000)");
}

double loss_cap(const UnrollOptions& options, double cap_factor) {
  if (options.objective == Objective::kLogRatio) return std::log(cap_factor);
  return static_cast<double>(options.length) * cap_factor * (std::abs(options.f0) + 1e-6);
}

ForwardUnroll forward_unroll(const optim::UpdateRule& rule, const problems::Problem& problem, const Trajectory& start,
                             const UnrollOptions& options, at::Generator& gen) {
  L2O_CHECK(options.length > 0, "unroll length must be > 0, got ", options.length);
  L2O_CHECK(options.teacher == nullptr, "a forward unroll has no imitation (if_mt needs estimator=tbptt)");
  L2O_CHECK(options.alpha >= 0 && options.beta >= 0, "regulariser weights must be >= 0 (alpha=", options.alpha,
            ", beta=", options.beta, ")");
  ForwardUnroll result;
  TensorList params = l2o::detach(start.params);
  optim::State state = start.state;
  const bool alpha_on = options.alpha > 0, beta_on = options.beta > 0;
  const problems::Batch objective_batch = problem.objective_batch();
  // The draws and their order are unroll()'s (minibatch, regulariser probes, gradient noise), so a
  // perturbed unroll sees the same randomness as the unperturbed one on a clone of the generator.
  // For deterministic problems f(θ_{t+1}) is also the next step's loss and is computed once, on
  // leaves that carry the optimizee's graph (the rule's graph is never built).
  torch::Tensor carried;
  TensorList carried_leaves;
  double terms = 0, reg_sum = 0;
  int64_t count = 0;
  for (int64_t k = 0; k < options.length; ++k) {
    const bool reuse = problem.deterministic() && carried.defined();
    const problems::Batch batch = reuse ? objective_batch : problem.sample_batch(gen);
    const TensorList leaves = reuse ? carried_leaves : fresh_leaves(params);
    const torch::Tensor inner = reuse ? carried : problem.loss(leaves, batch);
    TensorList grads;
    if (alpha_on || beta_on) {
      TensorList g = torch::autograd::grad({inner}, leaves, {}, /*retain_graph=*/true, /*create_graph=*/true);
      const RegularizerValue reg = regularizer(g, leaves, options.regularizer, gen);
      const double value = reg.value.item<double>();
      result.regularizer += value;
      result.hvps += reg.hvps;
      if (alpha_on) reg_sum += value;
      if (beta_on) {
        const TensorList rg = torch::autograd::grad({reg.value}, leaves, {}, /*retain_graph=*/true);
        for (size_t i = 0; i < g.size(); ++i) g[i] = g[i] + options.beta * rg[i];
      }
      grads = l2o::detach(g);
    } else {
      grads = l2o::detach(torch::autograd::grad({inner}, leaves));
    }
    grads = problem.perturb_gradients(std::move(grads), gen);
    {
      torch::NoGradGuard no_grad;
      optim::UpdateResult r = rule.update(params, grads, state);
      params = std::move(r.params);
      state = std::move(r.state);
    }
    torch::Tensor f;
    if (problem.deterministic()) {
      carried_leaves = fresh_leaves(params);
      f = problem.loss(carried_leaves, objective_batch);
    } else {
      torch::NoGradGuard no_grad;
      f = problem.loss(params, objective_batch);
    }
    const double fv = f.item<double>();
    result.losses.push_back(fv);
    if (!std::isfinite(fv) || (options.blowup_factor > 0 && fv > options.blowup_factor * options.f0)) {
      result.diverged = true;
      break;
    }
    carried = f;
    terms += options.objective == Objective::kSum ? fv : std::log(fv / (options.f0 + 1e-6) + 1e-6);
    ++count;
  }
  if (count > 0) {
    result.meta_loss = options.objective == Objective::kSum ? terms : terms / static_cast<double>(count);
    result.meta_loss += options.alpha * reg_sum;
  } else {
    result.meta_loss = std::numeric_limits<double>::quiet_NaN();
  }
  result.end.params = std::move(params);
  result.end.state = optim::detach(state);
  result.end.step = start.step + static_cast<int64_t>(result.losses.size());
  return result;
}

namespace {

/// What torch::optim::Optimizer::zero_grad() does to each φ, so TBPTT keeps its bits.
void zero_gradients(const std::vector<torch::Tensor>& params) {
  for (const auto& p : params) {
    if (p.grad().defined()) {
      p.grad().detach_();
      p.grad().zero_();
    }
  }
}

class TbpttEstimator : public Estimator {
 public:
  explicit TbpttEstimator(optim::UpdateRule& rule) : rule_(rule), params_(rule.module()->parameters()) {}
  EstimatorType type() const override { return EstimatorType::kTbptt; }

  TruncationResult truncate(const problems::Problem& problem, const Trajectory& start, const UnrollOptions& options,
                            at::Generator& gen, EstimatorState*) override {
    UnrollResult r = unroll(rule_, problem, start, options, gen);
    TruncationResult out;
    out.meta_loss = r.meta_loss.defined() ? r.meta_loss.item<double>() : std::nan("");
    if (std::isfinite(out.meta_loss)) {
      zero_gradients(params_);
      r.meta_loss.backward();
      out.has_gradient = true;
    }
    out.losses = std::move(r.losses);
    out.diverged = r.diverged;
    out.regularizer = r.regularizer;
    out.hvps = r.hvps;
    out.end = std::move(r.end);
    return out;
  }

 private:
  optim::UpdateRule& rule_;
  std::vector<torch::Tensor> params_;
};

/// PES's per-task state: each pair's ± trajectories (stopped once diverged) and ξ_i.
struct PesState : EstimatorState {
  struct Pair {
    Trajectory plus, minus;
    bool plus_dead = false, minus_dead = false;
    TensorList xi;
  };
  std::vector<Pair> pairs;
};

/// Sets φ to given values for the perturbed unrolls and puts the original bits back on every exit.
class PhiGuard {
 public:
  explicit PhiGuard(const std::vector<torch::Tensor>& params) : params_(params) {
    torch::NoGradGuard no_grad;
    for (const auto& p : params_) saved_.push_back(p.detach().clone());
  }
  ~PhiGuard() { set({}, 0); }
  const TensorList& phi() const { return saved_; }
  /// φ + sign·perturbation (or φ itself with an empty perturbation).
  void set(const TensorList& perturbation, double sign) {
    torch::NoGradGuard no_grad;
    for (size_t j = 0; j < params_.size(); ++j) {
      if (perturbation.empty()) {
        params_[j].copy_(saved_[j]);
      } else {
        params_[j].copy_(saved_[j] + sign * perturbation[j]);
      }
    }
  }

 private:
  std::vector<torch::Tensor> params_;
  TensorList saved_;
};

/// Antithetic truncated ES and, with `persistent`, PES.
class PerturbationEstimator : public Estimator {
 public:
  PerturbationEstimator(optim::UpdateRule& rule, EstimatorOptions options)
      : rule_(rule), params_(rule.module()->parameters()), options_(std::move(options)) {}
  EstimatorType type() const override { return options_.type(); }
  bool persistent() const { return options_.type() == EstimatorType::kPes; }

  std::unique_ptr<EstimatorState> start(const Trajectory& start) const override {
    if (!persistent()) return nullptr;
    auto state = std::make_unique<PesState>();
    torch::NoGradGuard no_grad;
    for (int64_t i = 0; i < options_.pairs(); ++i) {
      PesState::Pair pair;
      pair.plus = start;
      pair.minus = start;
      for (const auto& p : params_)
        pair.xi.push_back(torch::zeros_like(p, torch::TensorOptions().requires_grad(false)));
      state->pairs.push_back(std::move(pair));
    }
    return state;
  }

  TruncationResult truncate(const problems::Problem& problem, const Trajectory& start, const UnrollOptions& options,
                            at::Generator& gen, EstimatorState* state) override {
    auto* pes = persistent() ? dynamic_cast<PesState*>(state) : nullptr;
    L2O_CHECK(!persistent() || (pes != nullptr && static_cast<int64_t>(pes->pairs.size()) == options_.pairs()),
              "pes needs the task state its start() made");
    const int64_t pairs = options_.pairs();
    const double sigma = options_.sigma();
    // ε_i ~ N(0, σ²I) from the task's generator: a resumed run draws the same ones.
    std::vector<TensorList> eps(static_cast<size_t>(pairs));
    {
      torch::NoGradGuard no_grad;
      for (auto& e : eps)
        for (const auto& p : params_)
          e.push_back(torch::randn(p.sizes(), gen, p.options().requires_grad(false)) * sigma);
    }
    // Every unroll of the truncation starts from a clone of the generator here: the same minibatches
    // (common random numbers), so L⁺ − L⁻ measures the perturbation and not the draws.
    const at::Generator base = gen.clone();
    const double cap = loss_cap(options, options_.cap_factor());
    auto score = [&](const ForwardUnroll& r) {
      return r.diverged || !std::isfinite(r.meta_loss) ? cap : std::min(r.meta_loss, cap);
    };
    PhiGuard guard(params_);
    TruncationResult out;
    // The unperturbed φ carries the task on (one more forward unroll than learned_optimization, which
    // carries the + trajectory): the trajectory, its log and its divergence are φ's, as under TBPTT.
    at::Generator center_gen = base.clone();
    ForwardUnroll center = forward_unroll(rule_, problem, start, options, center_gen);
    gen = center_gen;
    out.hvps = center.hvps;
    // One perturbed unroll's capped L. A trajectory that diverges scores the cap; under PES it then
    // stays stopped, scoring the cap, for the rest of the inner problem.
    const auto run = [&](const TensorList& e, double sign, const Trajectory& from, bool* dead, Trajectory* keep) {
      if (dead != nullptr && *dead) return cap;
      guard.set(e, sign);
      at::Generator g = base.clone();
      ForwardUnroll r = forward_unroll(rule_, problem, from, options, g);
      out.hvps += r.hvps;
      if (dead != nullptr && r.diverged) *dead = true;
      if (keep != nullptr) *keep = std::move(r.end);
      return score(r);
    };
    for (int64_t i = 0; i < pairs; ++i) {
      const TensorList& e = eps[static_cast<size_t>(i)];
      if (pes == nullptr) {
        out.plus.push_back(run(e, +1, start, nullptr, nullptr));
        out.minus.push_back(run(e, -1, start, nullptr, nullptr));
      } else {
        PesState::Pair& pair = pes->pairs[static_cast<size_t>(i)];
        out.plus.push_back(run(e, +1, pair.plus, &pair.plus_dead, &pair.plus));
        out.minus.push_back(run(e, -1, pair.minus, &pair.minus_dead, &pair.minus));
      }
    }
    guard.set({}, 0);
    // ĝ = Σ_i (L_i⁺ − L_i⁻) ξ_i / (2Pσ²), summed in float64; ξ_i = ε_i (ES) or Σ of the pair's ε (PES).
    {
      torch::NoGradGuard no_grad;
      std::vector<torch::Tensor> sum;
      for (const auto& p : params_) sum.push_back(torch::zeros(p.sizes(), torch::kDouble));
      const double scale = 1.0 / (2.0 * static_cast<double>(pairs) * sigma * sigma);
      for (int64_t i = 0; i < pairs; ++i) {
        const auto k = static_cast<size_t>(i);
        const double c = (out.plus[k] - out.minus[k]) * scale;
        for (size_t j = 0; j < params_.size(); ++j) {
          torch::Tensor xi = eps[k][j];
          if (pes != nullptr) {
            pes->pairs[k].xi[j] = pes->pairs[k].xi[j] + eps[k][j];
            xi = pes->pairs[k].xi[j];
          }
          sum[j].add_(xi.to(torch::kDouble), c);
        }
      }
      for (size_t j = 0; j < params_.size(); ++j) params_[j].mutable_grad() = sum[j].to(params_[j].scalar_type());
    }
    out.meta_loss = score(center);
    out.has_gradient = true;
    out.losses = std::move(center.losses);
    out.diverged = center.diverged;
    out.regularizer = center.regularizer;
    out.end = std::move(center.end);
    return out;
  }

 private:
  optim::UpdateRule& rule_;
  std::vector<torch::Tensor> params_;
  EstimatorOptions options_;
};

}  // namespace

std::unique_ptr<Estimator> make_estimator(optim::UpdateRule& rule, const EstimatorOptions& options) {
  options.validate();
  L2O_CHECK(rule.module() != nullptr, "estimator ", estimator_name(options.type()), ": rule '", rule.name(),
            "' has no meta-parameters");
  if (options.type() == EstimatorType::kTbptt) return std::make_unique<TbpttEstimator>(rule);
  return std::make_unique<PerturbationEstimator>(rule, options);
}

}  // namespace meta
}  // namespace l2o
