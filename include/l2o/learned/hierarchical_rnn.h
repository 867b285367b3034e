#pragma once
/// The hierarchical RNN optimizer of Wichrowska et al. 2017, "Learned Optimizers that Scale and
/// Generalize" (L2O-Scale; seeds 000 and 002, SPEC §1.3).
///
/// Three levels of BiasGRU: one per coordinate (batched over every coordinate of every tensor), one
/// per parameter tensor and one global. Each level injects an external bias into the level below.
/// The per-coordinate level reads 12 gradient features (four momentum time scales, RMS-scaled;
/// products of adjacent scales; log mean squares; relative log learning rate) and emits a direction,
/// new decays and a change of its per-coordinate log learning rate. Cost is linear in |θ|.
#include <l2o/optim/update_rule.h>

#include <torch/arg.h>
#include <torch/nn/module.h>

#include <string>
#include <utility>
#include <vector>

namespace l2o {
namespace learned {

/// Options of HierarchicalRnn. Defaults are the "paper" configuration of the reference metarun.py;
/// every switch of the reference constructor is here under the same name (except `use_attention`,
/// see the note in hierarchical_rnn.cpp).
struct HierarchicalRnnOptions {
  /// Units of the per-coordinate, per-tensor and global GRUs; 1, 2 or 3 levels.
  TORCH_ARG(std::vector<int64_t>, level_sizes) = std::vector<int64_t>{10, 20, 20};
  /// Initial per-coordinate learning rates lie in [init_lr_min, init_lr_max] (log-uniform-ish, SPEC).
  TORCH_ARG(double, init_lr_min) = 1e-6;
  TORCH_ARG(double, init_lr_max) = 1e-2;
  /// Learn the RMS scale decay (else constant 0.93) and, with learnable_inp_decay, the input decay
  /// (else 0.89).
  TORCH_ARG(bool, learnable_decay) = true;
  TORCH_ARG(bool, learnable_inp_decay) = true;
  /// Per-coordinate log learning rate with momentum and output normalisation; off: lr = 2σ(h·w+b).
  TORCH_ARG(bool, dynamic_output_scale) = true;
  /// Number of gradient time scales d₀ = inp_decay, d_{i+1} = √d_i.
  TORCH_ARG(int64_t, num_gradient_scales) = 4;
  /// Start the learning-rate read-out at zero.
  TORCH_ARG(bool, zero_init_lr_weights) = true;
  /// Feature: log(ms_i + 1e-16) minus its mean over the time scales.
  TORCH_ARG(bool, use_log_means_squared) = true;
  /// Feature: log_lr − mean(log_lr); the mean is over the whole problem when use_problem_lr_mean.
  TORCH_ARG(bool, use_relative_lr) = true;
  TORCH_ARG(bool, use_problem_lr_mean) = true;
  /// Feature: relu(log_lr) − relu(log 1e-6 − log_lr).
  TORCH_ARG(bool, use_extreme_indicator) = false;
  /// Feature: log_lr − log 1e-3.
  TORCH_ARG(bool, use_lr_shortcut) = false;
  /// Features: products of adjacent scaled gradients.
  TORCH_ARG(bool, use_grad_products) = true;
  /// Scale decays on the time scales of the input decays too.
  TORCH_ARG(bool, use_multiple_scale_decays) = false;
  /// Add affine(scaled gradients → 1, no bias) to the RNN's direction.
  TORCH_ARG(bool, use_gradient_shortcut) = true;
  /// Learn the initial hidden state of each level (else a fixed U(−1, 1) draw).
  TORCH_ARG(bool, learnable_rnn_init) = true;
  /// Clip of the per-coordinate log learning rate, [min_log_lr, max_log_lr] (SPEC: [−33, 33]).
  /// Tighter clips keep a trained φ's rates from running away on long horizons (docs/generalisation.md).
  TORCH_ARG(double, min_log_lr) = -33;
  TORCH_ARG(double, max_log_lr) = 33;
  /// Input of the global GRU: "mean" over tensors of their new states, or "last_tensor" (what the
  /// TF reference actually feeds).
  TORCH_ARG(std::string, global_input) = "mean";
  /// Initialisation scales (reference flags biasgrucell_scale, biasgrucell_gate_bias_init,
  /// hrnn_rnn_readout_scale, hrnn_default_decay_var_init, scale_decay_bias_init,
  /// learning_rate_momentum_logit_init, hrnn_affine_scale).
  TORCH_ARG(double, gru_scale) = 0.5;
  TORCH_ARG(double, gate_bias_init) = 2.2;
  TORCH_ARG(double, readout_scale) = 0.5;
  TORCH_ARG(double, decay_bias_init) = 2.2;
  TORCH_ARG(double, scale_decay_bias_init) = 3.2;
  TORCH_ARG(double, lr_momentum_logit_init) = 3.2;
  TORCH_ARG(double, affine_scale) = 0.5;
  /// Initial value of the learned scalar added to every log step size.
  TORCH_ARG(double, stepsize_offset_init) = -1.0;
  /// Take the fused step (SPEC §6.1: one vectorised pass over blocks of coordinates with a
  /// hand-written backward) where it applies; false always takes the op-by-op path, the reference.
  /// Not part of spec() unless false: both paths compute the same step.
  TORCH_ARG(bool, fused) = true;

 public:
  void validate() const;
  /// Why the fused kernel cannot run these options ("" when it can). It covers the paper
  /// configuration (levels 10-*-*, 4 time scales, the default features, dynamic output scale), any
  /// number of levels, both global inputs, learnable or fixed decays and either lr mean.
  std::string fused_fallback_reason() const;
  /// Number of per-coordinate input features (12 with the defaults).
  int64_t num_features() const;
  int64_t num_levels() const { return static_cast<int64_t>(level_sizes().size()); }
};

/// A GRU whose gates take an extra, externally computed bias (the reference BiasGRUCell):
/// [r, u] = σ(W_g[x, h] + b_g + ext_ru), c = tanh(W_c[x, r∘h] + b_c + ext_c), h' = u∘h + (1−u)∘c.
/// Weights ~ N(0, scale/√fan_in), gate bias `gate_bias_init`, candidate bias 0.
struct BiasGru {
  torch::Tensor w_gates, b_gates, w_cand, b_cand;
  int64_t input_size = 0, hidden_size = 0;
  /// x [b, input], h [b, hidden], ext [b, 3·hidden] or undefined.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& h, const torch::Tensor& ext) const;
};

/// The L2O-Scale hierarchical RNN optimizer (SPEC §1.3).
class HierarchicalRnn : public optim::UpdateRule, public torch::nn::Module {
 public:
  explicit HierarchicalRnn(HierarchicalRnnOptions options = {});
  std::string name() const override { return "hrnn"; }
  Spec spec() const override;
  /// Initial state with the per-coordinate learning rates of a fixed draw (seed 0).
  optim::State init(const TensorList& params) const override;
  /// Initial state; log lr per coordinate U(log(min)/2, log(max)/2) plus one per-tensor offset from
  /// the same range, drawn from `gen`.
  optim::State init(const TensorList& params, at::Generator& gen) const override;
  optim::UpdateResult update(const TensorList& params, const TensorList& grads,
                             const optim::State& state) const override;
  torch::nn::Module* module() override { return this; }
  const HierarchicalRnnOptions& options() const { return options_; }
  static std::shared_ptr<HierarchicalRnn> from_spec(const Spec& spec);
  /// True when update() takes the fused kernel for these tensors (options, CPU, float32/float64, φ of
  /// the same dtype).
  bool uses_fused(const TensorList& grads) const;

  /// The per-coordinate features [N, num_features] for flat gradients and the matching state pieces;
  /// exposed for tests. Also returns the new accumulators and mean squares.
  struct Features {
    torch::Tensor x;                        ///< [N, F]
    std::vector<torch::Tensor> accums, ms;  ///< num_gradient_scales × [N]
    std::vector<torch::Tensor> scaled;      ///< num_gradient_scales × [N]
  };
  Features features(const torch::Tensor& grad, const std::vector<torch::Tensor>& accums,
                    const std::vector<torch::Tensor>& ms, const torch::Tensor& inp_decay,
                    const torch::Tensor& scl_decay, const torch::Tensor& log_lr, const torch::Tensor& segments,
                    const torch::Tensor& sizes) const;

 private:
  optim::UpdateResult update_fused(const TensorList& params, const TensorList& grads,
                                   const optim::State& state) const;
  /// Levels 1 and 2: the per-tensor GRU on `in1` [T, ·] and the global GRU on the mean (or last) of
  /// the new tensor states; returns {new layer_h, new global_h} (undefined where a level is absent).
  std::pair<torch::Tensor, torch::Tensor> higher_levels(const torch::Tensor& in1, const torch::Tensor& layer_h,
                                                        const torch::Tensor& global_h) const;

  HierarchicalRnnOptions options_;
  std::vector<BiasGru> cells_;
  std::vector<torch::Tensor> init_vectors_;
  torch::Tensor param_bias_w_, param_bias_b_;    // tensor state → 3·H0
  torch::Tensor global_bias_w_, global_bias_b_;  // global state → 3·H0
  torch::Tensor layer_bias_w_, layer_bias_b_;    // global state → 3·H1
  torch::Tensor update_w_, shortcut_w_;
  torch::Tensor scl_w_, scl_b_, inp_w_, inp_b_;
  torch::Tensor lr_w_, lr_b_, lr_momentum_logit_, stepsize_offset_;
};

}  // namespace learned
}  // namespace l2o
