#pragma once
/// L2O-Entropy's flatness regularisers of the optimizee loss (SPEC §4; seeds 000, 003), computed at
/// θ_t on the minibatch through the one Hessian-vector product of autodiff/curvature.h.
#include <l2o/core/tensor_list.h>

#include <ATen/core/Generator.h>
#include <torch/arg.h>
#include <torch/types.h>

#include <cstdint>
#include <string>

namespace l2o {
namespace meta {

/// Which flatness measure (`reg_option`).
enum class RegularizerType {
  /// Hutchinson trace: mean of vᵀHv over `hessian_itrs` fresh Rademacher probes.
  kHessian,
  /// Sum of the top-n eigenvalues by power iteration with deflation (`hessian_itrs` iterations each).
  kHessianEv,
  /// Stochastic Lanczos quadrature: Σ Ritz values (= trace T) of `hessian_itrs` Lanczos steps.
  kHessianEsd,
  /// Jacobian penalty: mean squared gradient.
  kJacob,
};

/// Parses "hessian", "hessian-ev", "hessian-esd" or "jacob".
RegularizerType parse_regularizer(const std::string& name);
std::string regularizer_name(RegularizerType type);

/// When the regulariser is on during a meta-iteration (`regularize_time`).
enum class RegularizeTime {
  /// Never: nothing is computed (the reference computed it and threw it away).
  kNone,
  /// In the first half of a meta-iteration's unrolls.
  kPrior,
  /// In the second half of a meta-iteration's unrolls (unroll index ≥ unrolls / 2).
  kPosterior,
  /// In every unroll.
  kAlways,
};

/// Parses "none", "prior", "posterior" or "always".
RegularizeTime parse_regularize_time(const std::string& name);
/// Whether unroll `index` (0-based) of `unrolls` is regularised.
bool regularize_unroll(RegularizeTime time, int64_t index, int64_t unrolls);

/// Options of one regulariser evaluation.
struct RegularizerOptions {
  TORCH_ARG(RegularizerType, type) = RegularizerType::kHessian;
  /// Probes (hessian), power iterations per eigenvalue (hessian-ev) or Lanczos steps (hessian-esd).
  TORCH_ARG(int64_t, hessian_itrs) = 10;
  /// Eigenvalues summed by hessian-ev.
  TORCH_ARG(int64_t, top_n) = 1;
  /// hessian-ev stops an eigenvalue's power iteration early when it changes by less than this
  /// (relative). Its derivative holds the final iterate fixed, so it is exact only at convergence.
  TORCH_ARG(double, tolerance) = 1e-3;

 public:
  void validate() const;
};

/// The regulariser's value and what it cost.
struct RegularizerValue {
  /// Differentiable in θ (and through θ in whatever θ depends on).
  torch::Tensor value;
  /// Hessian-vector products taken.
  int64_t hvps = 0;
};

/// Evaluates the regulariser from the minibatch gradients `grads` of the optimizee loss, which must
/// carry a graph (computed with create_graph=true) in `params`. Probes come from `gen`.
RegularizerValue regularizer(const TensorList& grads, const TensorList& params, const RegularizerOptions& options,
                             at::Generator& gen);

}  // namespace meta
}  // namespace l2o
