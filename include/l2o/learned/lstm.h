#pragma once
/// The coordinatewise deep LSTM optimizer of Andrychowicz et al. 2016, "Learning to learn by
/// gradient descent by gradient descent" (seed 001, SPEC §1.2).
///
/// One small LSTM is shared by every coordinate of every parameter tensor: the batch dimension is
/// the number of coordinates, so φ has a few thousand entries whatever the size of θ.
#include <l2o/optim/update_rule.h>

#include <torch/arg.h>
#include <torch/nn/module.h>

namespace l2o {
namespace learned {

/// Options of CoordinatewiseLstm (SPEC §1.2 defaults).
struct LstmOptions {
  /// Units per LSTM layer.
  TORCH_ARG(int64_t, hidden_size) = 20;
  /// Number of stacked LSTM layers.
  TORCH_ARG(int64_t, num_layers) = 2;
  /// Gradient preprocessing: "none" (raw gradient) or "logsign" (paper appendix A).
  TORCH_ARG(std::string, preprocess) = "none";
  /// LogAndSign parameter k.
  TORCH_ARG(double, k) = 5.0;
  /// The read-out is multiplied by this (DM default 0.01; the quadratic experiment uses 0.1).
  TORCH_ARG(double, output_scale) = 0.01;

 public:
  void validate() const;
};

/// LogAndSign preprocessing: [clamp(log(|g|+ε)/k, −1, 1), clamp(g·eᵏ, −1, 1)] with ε the float32
/// machine epsilon; input [n] gives [n, 2].
torch::Tensor log_and_sign(const torch::Tensor& g, double k);

/// θ_{t+1} = θ_t + output_scale · W·LSTM(preprocess(g_t)), coordinatewise.
class CoordinatewiseLstm : public optim::UpdateRule, public torch::nn::Module {
 public:
  explicit CoordinatewiseLstm(LstmOptions options = {});
  std::string name() const override { return "lstm"; }
  Spec spec() const override;
  optim::State init(const TensorList& params) const override;
  optim::UpdateResult update(const TensorList& params, const TensorList& grads,
                             const optim::State& state) const override;
  torch::nn::Module* module() override { return this; }
  const LstmOptions& options() const { return options_; }
  static std::shared_ptr<CoordinatewiseLstm> from_spec(const Spec& spec);

 private:
  LstmOptions options_;
  std::vector<torch::Tensor> w_ih_, w_hh_, b_ih_, b_hh_;
  torch::Tensor w_out_, b_out_;
};

}  // namespace learned
}  // namespace l2o
