#pragma once
/// The per-parameter MLP learned optimizer of learned_optimization (Metz et al.; reference
/// `learned_optimizers/adafac_mlp_lopt.py`, class AdafacMLPLOpt; SPEC §1.4 "room for more"), with
/// momentum, RMS and Adafactor-style factored accumulators as the MLP's per-coordinate inputs.
/// Formula, features and options: docs/mlp_lopt.md.
#include <l2o/optim/update_rule.h>

#include <torch/arg.h>
#include <torch/nn/module.h>

#include <vector>

namespace l2o {
namespace learned {

/// Options of MlpLopt; defaults are the reference's, except hidden_size, which follows the reference's
/// MLPLOpt (LOLv2) and the issue (32; AdafacMLPLOpt's own default is 4).
struct MlpLoptOptions {
  /// Width of each hidden ReLU layer.
  TORCH_ARG(int64_t, hidden_size) = 32;
  /// Number of hidden layers (0: the inputs map linearly to the two outputs).
  TORCH_ARG(int64_t, hidden_layers) = 2;
  /// step = direction · exp(magnitude · exp_mult) · step_mult.
  TORCH_ARG(double, step_mult) = 1e-3;
  TORCH_ARG(double, exp_mult) = 1e-3;
  /// Initial decays of the momenta m_k ← β_k m_k + (1 − β_k) g.
  TORCH_ARG(std::vector<double>, momentum_decays) = std::vector<double>{0.9, 0.99, 0.999};
  /// Initial decays of the second moments v_k ← β_k v_k + (1 − β_k) g² (one, or one per momentum).
  TORCH_ARG(std::vector<double>, rms_decays) = std::vector<double>{0.999};
  /// Initial decays of the factored (Adafactor) accumulators, one per momentum.
  TORCH_ARG(std::vector<double>, adafactor_decays) = std::vector<double>{0.9, 0.99, 0.999};

 public:
  void validate() const;
};

/// Per tensor, with accumulators updated by this step's g first (all decays learned, see below):
///   features x (28 with the defaults): g, θ, m_k, v_k, m_k/√(v_k+1e-6), 1/√(v_k+1e-6), the
///   Adafactor-preconditioned g and m, the factored row and column accumulators r, c and
///   1/√(r+1e-8), 1/√(c+1e-8) (for tensors with < 2 dims: the full accumulator in place of both);
///   each feature channel normalised over the tensor, x / √(mean_tensor(x²) + 1e-5); then 11 tanh
///   features of the step count t, tanh(t/τ − 1), τ ∈ {1, 3, 10, …, 1e5}, not normalised.
///   A shared MLP (ReLU hidden layers) maps each coordinate's features to (d, s);
///   θ ← θ − d · exp(s · exp_mult) · step_mult.
/// φ: the MLP's weights and biases, and one offset δ per decay, β = 1 − (1 − β₀)·exp(10δ) (δ = 0 at
/// init), exactly as the reference's decay_to_param / param_to_decay.
class MlpLopt : public optim::UpdateRule, public torch::nn::Module {
 public:
  struct TensorStep;
  /// Draws the MLP from torch's global generator (the trainer seeds it): weights truncated normal
  /// N(0, 1/fan_in) cut at ±2 standard deviations (haiku's TruncatedNormal(1/√fan_in)), biases 0.
  explicit MlpLopt(MlpLoptOptions options = {});
  std::string name() const override { return "mlp_lopt"; }
  Spec spec() const override;
  /// Slots per parameter tensor of shape S (0-d tensors as [1]), K decays each: mom [S, K], rms
  /// [S, K_rms]; factored tensors fac_row [S without dim d0, K] and fac_col [S without dim d1, K],
  /// d1, d0 the two largest dims (later index first on ties, as numpy's argsort), fac_v empty;
  /// other tensors fac_v [S, K] and fac_row, fac_col empty.
  optim::State init(const TensorList& params) const override;
  optim::UpdateResult update(const TensorList& params, const TensorList& grads,
                             const optim::State& state) const override;
  torch::nn::Module* module() override { return this; }
  const MlpLoptOptions& options() const { return options_; }
  static std::shared_ptr<MlpLopt> from_spec(const Spec& spec);

  /// Number of MLP inputs: the normalised per-coordinate features plus the 11 time features.
  int64_t num_features() const;
  /// The [numel, num_features()] input matrix update() feeds the MLP for tensor `index`, in the order
  /// documented above (for tests and analysis).
  torch::Tensor features(const TensorList& params, const TensorList& grads, const optim::State& state,
                         size_t index) const;
  /// The dims (d1, d0) factored for a tensor of this shape, or (-1, -1) when it has fewer than 2 dims.
  static std::pair<int64_t, int64_t> factored_dims(at::IntArrayRef shape);

 private:
  // The new state of one tensor and what its features are made of; step_tensor() adds the features.
  TensorStep state_step(const torch::Tensor& param, const torch::Tensor& grad, const optim::State& state, size_t index,
                        int64_t step) const;
  TensorStep step_tensor(const torch::Tensor& param, const torch::Tensor& grad, const optim::State& state, size_t index,
                         int64_t step) const;
  // The MLP on feature rows: d·exp(s·exp_mult)·step_mult per row.
  torch::Tensor step_of(const torch::Tensor& x) const;
  // One tensor's steps without a graph, in chunks of rows (see mlp_lopt.cpp).
  torch::Tensor chunked_step(const TensorStep& s) const;

  MlpLoptOptions options_;
  std::vector<torch::Tensor> weights_, biases_;
  torch::Tensor momentum_offsets_, rms_offsets_, adafactor_offsets_;
};

}  // namespace learned
}  // namespace l2o
