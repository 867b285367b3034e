#include <l2o/autodiff/curvature.h>
#include <l2o/core/error.h>

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

namespace l2o {
namespace autodiff {

namespace {

// Power iteration and Lanczos do their vector algebra on one flat vector over all parameter tensors;
// only the HVP itself sees the parameters' shapes.
torch::Tensor flatten(const TensorList& xs) {
  TensorList flat;
  flat.reserve(xs.size());
  for (const auto& x : xs) flat.push_back(x.reshape({-1}));
  return torch::cat(flat);
}

TensorList unflatten(const torch::Tensor& flat, const TensorList& like) {
  TensorList out;
  out.reserve(like.size());
  int64_t offset = 0;
  for (const auto& x : like) {
    out.push_back(flat.narrow(0, offset, x.numel()).view(x.sizes()).to(x.dtype()));
    offset += x.numel();
  }
  return out;
}

torch::Tensor dot(const TensorList& a, const TensorList& b) {
  torch::Tensor s;
  for (size_t i = 0; i < a.size(); ++i) {
    const auto term = (a[i] * b[i]).sum();
    s = s.defined() ? s + term : term;
  }
  return s;
}

torch::TensorOptions flat_options(const TensorList& params) {
  return torch::TensorOptions().dtype(params.front().dtype()).device(params.front().device());
}

void check_params(const TensorList& params, const char* who) {
  L2O_CHECK(!params.empty(), who, ": no parameters; pass the tensors the loss is a function of");
  for (size_t i = 0; i < params.size(); ++i) {
    L2O_CHECK(params[i].defined(), who, ": parameter ", i, " is undefined");
    L2O_CHECK(params[i].requires_grad(), who, ": parameter ", i,
              " does not require grad; make it a leaf with requires_grad_(true) (see l2o::fresh_leaves)");
  }
}

// Lanczos stops when a new β falls below this fraction of ‖H‖ (as seen so far): the Krylov space is
// then invariant, and normalising the round-off that is left would add spurious Ritz values.
double breakdown_tolerance(const torch::Tensor& x) {
  const double eps = x.scalar_type() == torch::kDouble ? std::numeric_limits<double>::epsilon()
                                                       : static_cast<double>(std::numeric_limits<float>::epsilon());
  return 1e3 * eps;
}

}  // namespace

TensorList gradients(const torch::Tensor& loss, const TensorList& params) {
  check_params(params, "gradients");
  L2O_CHECK(loss.defined() && loss.numel() == 1, "gradients: the loss must be a scalar, got ",
            loss.defined() ? loss.numel() : 0, " elements");
  L2O_CHECK(loss.requires_grad(),
            "gradients: the loss does not depend on the parameters (it has no graph); "
            "compute it from tensors that require grad, outside torch::NoGradGuard");
  auto grads = torch::autograd::grad({loss}, params, /*grad_outputs=*/{}, /*retain_graph=*/true,
                                     /*create_graph=*/true, /*allow_unused=*/true);
  for (size_t i = 0; i < grads.size(); ++i)
    if (!grads[i].defined()) grads[i] = torch::zeros_like(params[i]);
  return grads;
}

TensorList hvp_from_grads(const TensorList& grads, const TensorList& params, const TensorList& v, bool create_graph) {
  L2O_CHECK(grads.size() == params.size() && v.size() == params.size(), "hvp: got ", grads.size(), " gradients and ",
            v.size(), " vector tensors for ", params.size(), " parameters; pass one of each");
  // ⟨g, v⟩ must be recorded even when the caller holds a torch::NoGradGuard (evaluation, analysis):
  // it is the graph the second backward pass runs through.
  torch::AutoGradMode enable_grad(true);
  // ⟨g, v⟩ over the gradients that carry a graph; the others are constant in θ (that block of H is 0).
  torch::Tensor inner;
  for (size_t i = 0; i < params.size(); ++i) {
    L2O_CHECK(v[i].sizes() == params[i].sizes(), "hvp: vector tensor ", i, " has shape ", v[i].sizes(),
              " but parameter ", i, " has shape ", params[i].sizes());
    if (!grads[i].requires_grad()) continue;
    const auto term = (grads[i] * v[i]).sum();
    inner = inner.defined() ? inner + term : term;
  }
  TensorList out(params.size());
  if (inner.defined()) {
    // retain_graph: the same g serves every probe and iteration.
    out = torch::autograd::grad({inner}, params, /*grad_outputs=*/{}, /*retain_graph=*/true, create_graph,
                                /*allow_unused=*/true);
  }
  for (size_t i = 0; i < out.size(); ++i)
    if (!out[i].defined()) out[i] = torch::zeros_like(params[i]);
  return out;
}

TensorList hvp(const torch::Tensor& loss, const TensorList& params, const TensorList& v, bool create_graph) {
  return hvp_from_grads(gradients(loss, params), params, v, create_graph);
}

HessianOperator::HessianOperator(const torch::Tensor& loss, TensorList params)
    : HessianOperator(gradients(loss, params), params, l2o::numel(params)) {}

HessianOperator::HessianOperator(TensorList grads, TensorList params, int64_t numel)
    : grads_(std::move(grads)), params_(std::move(params)), numel_(numel) {}

HessianOperator HessianOperator::from_gradients(TensorList grads, TensorList params) {
  check_params(params, "HessianOperator::from_gradients");
  L2O_CHECK(grads.size() == params.size(), "HessianOperator::from_gradients: ", grads.size(), " gradients for ",
            params.size(), " parameters; pass one gradient per parameter");
  for (size_t i = 0; i < grads.size(); ++i)
    L2O_CHECK(grads[i].defined() && grads[i].sizes() == params[i].sizes(),
              "HessianOperator::from_gradients: ", "gradient ", i, " is undefined or shaped unlike its parameter ",
              params[i].sizes());
  const int64_t n = l2o::numel(params);
  return HessianOperator(std::move(grads), std::move(params), n);
}

TensorList HessianOperator::apply(const TensorList& v, bool create_graph) const {
  ++products_;
  return hvp_from_grads(grads_, params_, v, create_graph);
}

TensorList rademacher_like(const TensorList& like, at::Generator& gen) {
  TensorList out;
  out.reserve(like.size());
  for (const auto& x : like) {
    const auto options = torch::TensorOptions().dtype(x.dtype()).device(x.device());
    out.push_back(torch::randint(0, 2, x.sizes(), gen, options) * 2 - 1);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------

HutchinsonResult hutchinson_trace(const HessianOperator& hessian, int64_t probes, at::Generator& gen,
                                  bool create_graph) {
  L2O_CHECK(probes >= 1, "hutchinson_trace: probes=", probes, " must be >= 1 (hessian_itrs)");
  // A differentiable result must be recorded even under a caller's torch::NoGradGuard.
  torch::AutoGradMode grad_mode(create_graph || torch::GradMode::is_enabled());
  HutchinsonResult r;
  torch::Tensor total;
  for (int64_t k = 0; k < probes; ++k) {
    const auto v = rademacher_like(hessian.params(), gen);
    const auto vhv = dot(hessian.apply(v, create_graph), v);
    r.samples.push_back(vhv.item<double>());
    total = total.defined() ? total + vhv : vhv;
  }
  r.trace = total / static_cast<double>(probes);
  if (probes == 1) {
    r.standard_error = std::numeric_limits<double>::quiet_NaN();
  } else {
    double mean = 0;
    for (double s : r.samples) mean += s;
    mean /= static_cast<double>(probes);
    double ss = 0;
    for (double s : r.samples) ss += (s - mean) * (s - mean);
    r.standard_error = std::sqrt(ss / static_cast<double>(probes - 1) / static_cast<double>(probes));
  }
  return r;
}

HutchinsonResult hutchinson_trace(const torch::Tensor& loss, const TensorList& params, int64_t probes,
                                  at::Generator& gen, bool create_graph) {
  return hutchinson_trace(HessianOperator(loss, params), probes, gen, create_graph);
}

// ---------------------------------------------------------------------------------------------------

void PowerIterationOptions::validate() const {
  L2O_CHECK(top_n() >= 1, "power iteration: top_n=", top_n(), " must be >= 1");
  L2O_CHECK(max_iterations() >= 1, "power iteration: max_iterations=", max_iterations(), " must be >= 1");
  L2O_CHECK(tolerance() >= 0, "power iteration: tolerance=", tolerance(), " must be >= 0 (0 runs every iteration)");
}

EigenResult top_eigenpairs(const HessianOperator& hessian, at::Generator& gen, const PowerIterationOptions& options,
                           bool create_graph) {
  options.validate();
  const auto& like = hessian.params();
  const int64_t n = hessian.numel();
  L2O_CHECK(options.top_n() <= n, "power iteration: top_n=", options.top_n(), " exceeds the ", n,
            " parameters; ask for at most ", n);
  const auto opts = flat_options(like);
  torch::AutoGradMode grad_mode(create_graph || torch::GradMode::is_enabled());
  std::vector<torch::Tensor> found;
  // Projection rather than subtracting λuuᵀ: it deflates without trusting λ, and is repeated because
  // one Gram-Schmidt pass loses orthogonality when the iterate is nearly inside span(found).
  const auto project = [&found](torch::Tensor v) {
    for (int pass = 0; pass < 2; ++pass)
      for (const auto& u : found) v = v - torch::dot(u, v) * u;
    return v;
  };
  EigenResult r;
  for (int64_t k = 0; k < options.top_n(); ++k) {
    auto v = project(torch::randn({n}, gen, opts));
    v = v / v.norm();
    double lambda = 0, previous = 0;
    int64_t it = 1;
    for (;; ++it) {
      const auto hv = flatten(hessian.apply(unflatten(v, like)));
      lambda = torch::dot(v, hv).item<double>();
      const bool converged = it > 1 && std::abs(lambda - previous) <= options.tolerance() * (std::abs(previous) + 1e-6);
      if (converged || it == options.max_iterations()) break;
      previous = lambda;
      const auto w = project(hv);
      const double norm = w.norm().item<double>();
      if (norm == 0) break;  // H vanishes on the complement: λ = 0 for any v there
      v = w / norm;
    }
    found.push_back(v);
    r.eigenvalues.push_back(lambda);
    r.iterations.push_back(it);
    r.eigenvectors.push_back(unflatten(v, like));
  }
  if (create_graph) {
    // The iterates are held fixed (see EigenResult::sum): only the final Rayleigh quotients carry a graph.
    torch::Tensor sum;
    for (const auto& u : r.eigenvectors) {
      const auto quotient = dot(hessian.apply(u, true), u);
      sum = sum.defined() ? sum + quotient : quotient;
    }
    r.sum = sum;
  } else {
    double s = 0;
    for (double l : r.eigenvalues) s += l;
    r.sum = torch::tensor(s, opts);
  }
  return r;
}

EigenResult top_eigenpairs(const torch::Tensor& loss, const TensorList& params, at::Generator& gen,
                           const PowerIterationOptions& options, bool create_graph) {
  return top_eigenpairs(HessianOperator(loss, params), gen, options, create_graph);
}

// ---------------------------------------------------------------------------------------------------

void LanczosOptions::validate() const {
  L2O_CHECK(iterations() >= 1, "lanczos: iterations=", iterations(), " must be >= 1 (hessian_itrs)");
  L2O_CHECK(probes() >= 1, "lanczos: probes=", probes(), " must be >= 1");
}

torch::Tensor LanczosRun::tridiagonal() const {
  auto t = torch::diag(alphas);
  if (betas.numel() > 0) t = t + torch::diag(betas, 1) + torch::diag(betas, -1);
  return t;
}

LanczosResult lanczos(const HessianOperator& hessian, at::Generator& gen, const LanczosOptions& options,
                      bool create_graph) {
  options.validate();
  const auto& like = hessian.params();
  const int64_t n = hessian.numel();
  const int64_t m = std::min(options.iterations(), n);  // a Krylov space has at most n dimensions
  const auto opts = flat_options(like);
  const double tolerance = breakdown_tolerance(like.front());
  torch::AutoGradMode grad_mode(create_graph || torch::GradMode::is_enabled());
  LanczosResult r;
  torch::Tensor ritz_sum;
  std::vector<torch::Tensor> nodes, weights;
  for (int64_t p = 0; p < options.probes(); ++p) {
    torch::Tensor q = (torch::randint(0, 2, {n}, gen, opts) * 2 - 1) / std::sqrt(static_cast<double>(n));
    std::vector<torch::Tensor> basis{q}, alphas, betas;
    double scale = 0;
    for (int64_t j = 0; j < m; ++j) {
      auto w = flatten(hessian.apply(unflatten(q, like), create_graph));
      auto alpha = torch::dot(w, q);
      alphas.push_back(alpha);
      if (options.fixed_vectors()) {
        // The graph stays on α_j only; the recurrence runs on constants.
        w = w.detach();
        alpha = alpha.detach();
      }
      if (j + 1 == m) break;
      w = w - alpha * q;
      if (j > 0) w = w - betas.back() * basis[basis.size() - 2];
      // Full re-orthogonalisation, twice ("twice is enough", Parlett): without it the Lanczos vectors
      // lose orthogonality as Ritz values converge and T grows ghost copies of them.
      const auto qs = torch::stack(basis);
      for (int pass = 0; pass < 2; ++pass) w = w - torch::mv(qs.t(), torch::mv(qs, w));
      const auto beta = w.norm();
      const double beta_value = beta.item<double>();
      scale = std::max({scale, std::abs(alpha.item<double>()), beta_value});
      if (beta_value <= tolerance * scale) break;
      betas.push_back(beta);
      q = w / beta;
      basis.push_back(q);
    }
    LanczosRun run;
    run.alphas = torch::stack(alphas).detach().to(torch::kDouble);
    run.betas = betas.empty() ? torch::empty({0}, torch::kDouble) : torch::stack(betas).detach().to(torch::kDouble);
    auto [values, vectors] = torch::linalg_eigh(run.tridiagonal());
    run.ritz_values = values;
    run.weights = vectors.select(0, 0).pow(2);
    nodes.push_back(run.ritz_values);
    weights.push_back(run.weights);
    const auto trace_t = torch::stack(alphas).sum();
    ritz_sum = ritz_sum.defined() ? ritz_sum + trace_t : trace_t;
    r.runs.push_back(std::move(run));
  }
  const auto probes = static_cast<double>(options.probes());
  r.density.nodes = torch::cat(nodes);
  r.density.weights = torch::cat(weights) / probes;
  r.ritz_sum = ritz_sum / probes;
  return r;
}

LanczosResult lanczos(const torch::Tensor& loss, const TensorList& params, at::Generator& gen,
                      const LanczosOptions& options, bool create_graph) {
  return lanczos(HessianOperator(loss, params), gen, options, create_graph);
}

torch::Tensor gaussian_density(const SpectralDensity& density, const torch::Tensor& grid, double sigma) {
  L2O_CHECK(sigma > 0, "gaussian_density: sigma=", sigma, " must be > 0 (a kernel width in eigenvalue units)");
  L2O_CHECK(density.nodes.defined() && density.weights.defined() && density.nodes.numel() == density.weights.numel(),
            "gaussian_density: the density needs as many weights as nodes");
  constexpr double kSqrt2Pi = 2.50662827463100050242;
  const auto x = grid.detach().to(torch::kDouble).reshape({-1, 1});
  const auto nodes = density.nodes.detach().to(torch::kDouble).reshape({1, -1});
  const auto w = density.weights.detach().to(torch::kDouble).reshape({1, -1});
  const auto kernel = torch::exp(-(x - nodes).pow(2) / (2 * sigma * sigma)) / (sigma * kSqrt2Pi);
  return (kernel * w).sum(1).view(grid.sizes());
}

// ---------------------------------------------------------------------------------------------------

torch::Tensor jacobian_penalty(const TensorList& grads) {
  L2O_CHECK(!grads.empty(), "jacobian_penalty: no gradients");
  torch::AutoGradMode grad_mode(true);  // differentiable whenever the gradients carry a graph
  torch::Tensor sum;
  for (const auto& g : grads) {
    const auto term = g.pow(2).sum();
    sum = sum.defined() ? sum + term : term;
  }
  return sum / static_cast<double>(l2o::numel(grads));
}

torch::Tensor jacobian_penalty(const torch::Tensor& loss, const TensorList& params) {
  return jacobian_penalty(gradients(loss, params));
}

}  // namespace autodiff
}  // namespace l2o
