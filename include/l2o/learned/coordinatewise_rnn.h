#pragma once
/// The CoordinatewiseRNN of L2O-Scale (Wichrowska et al. 2017, "Learned optimizers that scale and
/// generalize"; reference `coordinatewise_rnn.py`, SPEC §1.4).
///
/// A stack of GRUs shared by every coordinate of every parameter tensor reads the RMS-scaled gradient
/// and emits an update direction, a new RMS decay and a multiplicative change of a per-coordinate
/// learning rate. All coordinates form one batch, so one pass per step whatever the layout of θ.
#include <l2o/optim/update_rule.h>

#include <torch/arg.h>
#include <torch/nn/module.h>

namespace l2o {
namespace learned {

/// Options of CoordinatewiseRnn. Defaults are those of the reference `metarun.py` (cell_size 20,
/// num_cells 2, GRUCell, init_lr_range (1e-6, 1e-2), zero_init_lr_weights) and of the
/// `crnn_*` flags of `coordinatewise_rnn.py` (readout scale 0.5, decay bias 2.2).
struct CoordinatewiseRnnOptions {
  /// Units per GRU layer.
  TORCH_ARG(int64_t, cell_size) = 20;
  /// Number of stacked GRU layers.
  TORCH_ARG(int64_t, num_cells) = 2;
  /// Initial per-coordinate learning rates are exp(U(log init_lr_min, log init_lr_max)); equal bounds
  /// give a constant.
  TORCH_ARG(double, init_lr_min) = 1e-6;
  TORCH_ARG(double, init_lr_max) = 1e-2;
  /// Read-out weights (update, decay, lr) are initialised N(0, readout_scale/√cell_size).
  TORCH_ARG(double, readout_scale) = 0.5;
  /// Initial bias of the RMS decay read-out: σ(2.2) ≈ 0.9.
  TORCH_ARG(double, decay_bias_init) = 2.2;
  /// Learn the RMS decay (otherwise it stays σ(decay_bias_init)).
  TORCH_ARG(bool, learnable_decay) = true;
  /// Learn the learning-rate change 2σ(h·w_lr + b_lr) (otherwise the learning rate stays constant).
  TORCH_ARG(bool, dynamic_output_scale) = true;
  /// Start the learning-rate read-out weights at zero instead of the scaled normal.
  TORCH_ARG(bool, zero_init_lr_weights) = true;

 public:
  void validate() const;
};

/// Per coordinate, with state (ms, d, lr, h₁..h_L) and gradient g:
///   ms ← (1−d)(g² + 1e-12) + d·ms;  x = asinh(g / √(ms + 1e-16));  h_l ← GRU_l(h_{l−1}, h_l);
///   d ← σ(h_L·w_d + b_d);  lr ← 2σ(h_L·w_lr + b_lr)·lr;  θ ← θ − lr·(h_L·w).
/// GRU as in TensorFlow's GRUCell: [r,u] = σ([x,h]W_g + b_g), c = tanh([x, r∘h]W_c + b_c),
/// h' = u∘h + (1−u)∘c. State starts at ms = 1, d = 1 (so the first step scales by 1, as in the
/// reference), learnable initial hidden vector, random initial learning rates.
class CoordinatewiseRnn : public optim::UpdateRule, public torch::nn::Module {
 public:
  explicit CoordinatewiseRnn(CoordinatewiseRnnOptions options = {});
  std::string name() const override { return "crnn"; }
  Spec spec() const override;
  /// Draws the initial learning rates from the global generator (see torch::manual_seed).
  optim::State init(const TensorList& params) const override;
  optim::State init(const TensorList& params, at::Generator& gen) const override;
  optim::UpdateResult update(const TensorList& params, const TensorList& grads,
                             const optim::State& state) const override;
  torch::nn::Module* module() override { return this; }
  const CoordinatewiseRnnOptions& options() const { return options_; }
  static std::shared_ptr<CoordinatewiseRnn> from_spec(const Spec& spec);

 private:
  CoordinatewiseRnnOptions options_;
  std::vector<torch::Tensor> gate_w_, gate_b_, cand_w_, cand_b_;
  torch::Tensor update_w_, decay_w_, decay_b_, lr_w_, lr_b_, init_hidden_;
};

}  // namespace learned
}  // namespace l2o
