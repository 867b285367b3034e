#pragma once
/// Curvature of an optimizee's loss at θ (SPEC §4, L2O-Entropy): Hessian-vector products by double
/// backward, Hutchinson's trace estimator, power iteration with deflation, Lanczos with full
/// re-orthogonalisation and stochastic Lanczos quadrature, and the Jacobian penalty.
///
/// Every function here reaches the Hessian through hvp_from_grads(), the one Hessian-vector product
/// of the library. With `create_graph` the results stay differentiable (the meta-gradient of a
/// flatness regulariser differentiates through the HVPs: third-order autograd); without it they are
/// plain numbers for analysis.
#include <l2o/core/tensor_list.h>

#include <ATen/core/Generator.h>
#include <torch/arg.h>
#include <torch/types.h>

#include <cstdint>
#include <vector>

namespace l2o {
namespace autodiff {

/// ∇loss with respect to `params`, built with create_graph so that it can be differentiated again.
/// Parameters the loss does not use get zero gradients. Throws when the loss has no graph.
TensorList gradients(const torch::Tensor& loss, const TensorList& params);

/// The Hessian-vector product H·v from gradients that carry their graph (Pearlmutter 1994):
/// Hv = ∇_θ ⟨g, v⟩ where g = ∇_θ loss was computed with create_graph=true. The graph of `grads` is
/// retained, so one g serves many products. With `create_graph` Hv is itself differentiable (with
/// respect to θ, anything the loss depends on, and v). Zero where g does not depend on θ.
TensorList hvp_from_grads(const TensorList& grads, const TensorList& params, const TensorList& v,
                          bool create_graph = false);

/// H·v of `loss` at `params`: gradients(loss, params) then hvp_from_grads(). Callers that need several
/// products (or already hold g) should use HessianOperator or hvp_from_grads() to differentiate once.
TensorList hvp(const torch::Tensor& loss, const TensorList& params, const TensorList& v, bool create_graph = false);

/// The Hessian of a loss at θ as a linear operator v ↦ Hv, holding g = ∇loss (with its graph) so every
/// product is one extra backward pass. Counts the products it has made (costs are reported in HVPs).
class HessianOperator {
 public:
  /// Differentiates `loss` once with create_graph.
  HessianOperator(const torch::Tensor& loss, TensorList params);
  /// Reuses gradients the caller computed with create_graph=true (e.g. the inner step's gradients).
  static HessianOperator from_gradients(TensorList grads, TensorList params);

  /// H·v through hvp_from_grads().
  TensorList apply(const TensorList& v, bool create_graph = false) const;
  const TensorList& params() const { return params_; }
  const TensorList& grads() const { return grads_; }
  /// Number of coordinates n (H is n × n).
  int64_t numel() const { return numel_; }
  /// Hessian-vector products made through this operator so far.
  int64_t products() const { return products_; }

 private:
  HessianOperator(TensorList grads, TensorList params, int64_t numel);
  TensorList grads_;
  TensorList params_;
  int64_t numel_ = 0;
  mutable int64_t products_ = 0;
};

/// Independent Rademacher (±1 with probability ½) tensors shaped like `like`, drawn from `gen`.
TensorList rademacher_like(const TensorList& like, at::Generator& gen);

// ---------------------------------------------------------------------------------------------------
// Hutchinson

/// Hutchinson's estimate of tr(H) and its spread over probes.
struct HutchinsonResult {
  /// (1/N) Σ_k v_kᵀ H v_k, a 0-dim tensor in the parameters' dtype; differentiable when create_graph.
  torch::Tensor trace;
  /// Sample standard deviation of v_kᵀ H v_k over the N probes divided by √N (NaN when N = 1).
  double standard_error = 0;
  /// The N values v_kᵀ H v_k.
  std::vector<double> samples;
};

/// tr(H) ≈ (1/N) Σ_k v_kᵀ H v_k with N = `probes` Rademacher vectors (Hutchinson 1990), the `hessian`
/// regulariser of L2O-Entropy. Probes are drawn from `gen` on every call, so successive calls use
/// fresh probes (the reference draws them once when it builds its graph; SPEC §4 calls that a bug).
/// Costs N HVPs.
HutchinsonResult hutchinson_trace(const HessianOperator& hessian, int64_t probes, at::Generator& gen,
                                  bool create_graph = false);
/// As above from a loss; differentiates it once.
HutchinsonResult hutchinson_trace(const torch::Tensor& loss, const TensorList& params, int64_t probes,
                                  at::Generator& gen, bool create_graph = false);

// ---------------------------------------------------------------------------------------------------
// Power iteration

/// Options of top_eigenpairs(). Defaults follow PyHessian, from which L2O-Entropy's hessian-ev derives.
struct PowerIterationOptions {
  /// How many eigenpairs (largest |λ| first).
  TORCH_ARG(int64_t, top_n) = 1;
  /// Iteration cap per eigenpair.
  TORCH_ARG(int64_t, max_iterations) = 100;
  /// Stop when |λ_k − λ_{k−1}| ≤ tolerance · (|λ_{k−1}| + 1e-6).
  TORCH_ARG(double, tolerance) = 1e-3;

 public:
  void validate() const;
};

/// Eigenpairs found by power iteration.
struct EigenResult {
  /// λ_1, …, λ_n ordered by decreasing magnitude, as Rayleigh quotients of `eigenvectors`.
  std::vector<double> eigenvalues;
  /// Unit eigenvectors (over all parameter tensors together), each shaped like the parameters; detached.
  std::vector<TensorList> eigenvectors;
  /// Power iterations spent on each eigenpair (== max_iterations when it did not converge).
  std::vector<int64_t> iterations;
  /// Σ_i u_iᵀ H u_i with the eigenvectors u_i held fixed, as a 0-dim tensor: the `hessian-ev`
  /// regulariser. Differentiable when create_graph; since dλ = uᵀ dH u for a unit eigenvector u, its
  /// derivative is the derivative of Σ λ_i at convergence. Without create_graph, a constant.
  torch::Tensor sum;
};

/// The top-n eigenvalues of H by magnitude, by power iteration with deflation (the hessian-ev
/// regulariser of L2O-Entropy, after PyHessian): each pair starts from a Gaussian vector drawn from
/// `gen`, and every iterate is projected orthogonally to the eigenvectors already found, so iteration
/// k converges to the largest-|λ| eigenvalue of H restricted to their complement. Negative
/// eigenvalues are found when they dominate; eigenvalues ±λ of equal magnitude make it stall.
/// Costs Σ iterations HVPs, plus top_n more when create_graph.
EigenResult top_eigenpairs(const HessianOperator& hessian, at::Generator& gen,
                           const PowerIterationOptions& options = {}, bool create_graph = false);
/// As above from a loss; differentiates it once.
EigenResult top_eigenpairs(const torch::Tensor& loss, const TensorList& params, at::Generator& gen,
                           const PowerIterationOptions& options = {}, bool create_graph = false);

// ---------------------------------------------------------------------------------------------------
// Lanczos and stochastic Lanczos quadrature

/// Options of lanczos(). `iterations` is the reference's max_iter (hessian_itrs, 10), `probes` its n_v.
struct LanczosOptions {
  /// Lanczos steps m per probe (the size of T); capped at n, and fewer on breakdown.
  TORCH_ARG(int64_t, iterations) = 10;
  /// Independent Rademacher starting vectors.
  TORCH_ARG(int64_t, probes) = 1;
  /// With create_graph: hold the Lanczos vectors fixed, so only each α_j = q_jᵀH(θ)q_j carries a graph
  /// (the convention of power iteration's iterates). The recurrence's graph then stays out of the
  /// meta-graph: what meta-training's hessian-esd regulariser uses, since differentiating through
  /// the whole recurrence of every inner step exhausts memory on an MNIST MLP. Exact when the Krylov
  /// space is the whole space (tr T = tr H).
  TORCH_ARG(bool, fixed_vectors) = false;

 public:
  void validate() const;
};

/// One Lanczos run: Qᵀ H Q = T = tridiag(betas; alphas; betas) with orthonormal Q (m columns).
struct LanczosRun {
  /// Diagonal of T (m), float64, detached.
  torch::Tensor alphas;
  /// Off-diagonal of T (m − 1), float64, detached.
  torch::Tensor betas;
  /// Eigenvalues θ_j of T (the Ritz values), ascending.
  torch::Tensor ritz_values;
  /// τ_j², the squared first components of T's unit eigenvectors: the SLQ weights (sum to 1).
  torch::Tensor weights;
  /// T as a dense m × m float64 matrix.
  torch::Tensor tridiagonal() const;
};

/// A discrete spectral density Σ_j w_j δ(λ − node_j) with Σ_j w_j = 1.
struct SpectralDensity {
  /// float64, 1-D.
  torch::Tensor nodes;
  /// float64, 1-D, same length, non-negative, summing to 1.
  torch::Tensor weights;
};

/// What lanczos() returns.
struct LanczosResult {
  /// One run per probe.
  std::vector<LanczosRun> runs;
  /// Stochastic Lanczos quadrature (Ubaru, Chen & Saad 2017; Ghorbani et al. 2019): the Ritz values of
  /// every run as nodes, weighted τ_j² / probes. Its mean Σ w·node = mean_k q_kᵀHq_k ≈ tr(H)/n.
  SpectralDensity density;
  /// Σ Ritz values = tr(T) = Σ alphas, averaged over probes, as a 0-dim tensor: what the reference's
  /// hessian-esd regulariser returns (it sums over its n_v probes; with the default single probe the
  /// two agree). Differentiable through the whole recurrence, Lanczos vectors included, when
  /// create_graph (through the α_j alone with fixed_vectors); a constant otherwise.
  torch::Tensor ritz_sum;
};

/// Lanczos tridiagonalisation of H with full re-orthogonalisation (every new vector is made orthogonal
/// to all previous ones, twice), started from normalised Rademacher vectors drawn from `gen`: the
/// `hessian-esd` regulariser of L2O-Entropy and its spectral density. Its extreme Ritz values converge
/// to H's extreme eigenvalues. Costs iterations × probes HVPs.
LanczosResult lanczos(const HessianOperator& hessian, at::Generator& gen, const LanczosOptions& options = {},
                      bool create_graph = false);
/// As above from a loss; differentiates it once.
LanczosResult lanczos(const torch::Tensor& loss, const TensorList& params, at::Generator& gen,
                      const LanczosOptions& options = {}, bool create_graph = false);

/// The density smoothed with a Gaussian kernel of width `sigma` on `grid`:
/// ρ(x) = Σ_j w_j · exp(−(x − node_j)² / 2σ²) / (σ√(2π)), float64, shaped like `grid` (for plots).
torch::Tensor gaussian_density(const SpectralDensity& density, const torch::Tensor& grid, double sigma);

// ---------------------------------------------------------------------------------------------------
// Jacobian penalty

/// The `jacob` regulariser of L2O-Entropy: the mean over all n coordinates of g², (1/n) Σ_i g_i², as a
/// 0-dim tensor; differentiable when `grads` carry their graph.
torch::Tensor jacobian_penalty(const TensorList& grads);
/// As above from a loss (gradients built with create_graph, so the result is differentiable).
torch::Tensor jacobian_penalty(const torch::Tensor& loss, const TensorList& params);

}  // namespace autodiff
}  // namespace l2o
