#pragma once
/// Classification optimizees on a data set (SPEC §2): softmax regression, the fully connected MLP and
/// the convnet of L2O-Scale's problem_generator.py, on MNIST, Fashion-MNIST, CIFAR-10 or synthetic data.
///
/// The inner gradient comes from a minibatch of the train split, the meta-objective from the whole
/// train split or a fixed random subset of it (`objective_subset`), and reports use the test split.
#include <l2o/core/spec.h>
#include <l2o/data/dataset.h>
#include <l2o/problems/problem.h>

#include <array>
#include <string>
#include <vector>

namespace l2o {
namespace problems {

/// The network of a ClassifierProblem.
enum class Model { kSoftmax, kMlp, kConv };

/// How θ₀ is drawn (SPEC §8).
enum class Init {
  /// L2O-Scale's problem_generator.py: N(0,1)·1.2/√shape[0] for softmax and MLP tensors (biases
  /// included), N(0, 0.01²) for the convnet.
  kReference,
  /// torch::nn::Linear / Conv2d defaults (kaiming_uniform_ with a = √5, so U(−1/√fan_in, 1/√fan_in)
  /// for weights and biases alike), drawn in torch's [out, in, ...] layout and in its order, so that
  /// under the same generator the values are exactly those of the torch::nn layers.
  kTorch,
};

/// Softmax regression / MLP / convnet classifier with the reference loss:
/// mean cross-entropy (two classes: sigmoid cross-entropy on logit 0, as the reference does)
/// + l2 · mean_p ‖p‖² (reference l2_reg_scale 1e-3).
class ClassifierProblem : public Problem {
 public:
  struct Options {
    Model model = Model::kMlp;
    std::vector<int64_t> hidden{20};
    /// Conv layers as (kernel height, kernel width, channels); SAME padding, stride 1, no bias.
    std::vector<std::array<int64_t, 3>> filters;
    std::string activation = "sigmoid";
    /// Minibatch size of the inner gradient; 0 = full batch (deterministic problem).
    int64_t batch = 128;
    /// Train rows of the meta-objective; 0 = the whole train split.
    int64_t objective_subset = 0;
    double l2 = 1e-3;
    Init init = Init::kReference;
  };

  /// Builds the problem `spec.name()` ∈ {softmax, mlp, conv} on `data`; draws the objective subset
  /// with `gen`. `spec_text` is the name it reports.
  ClassifierProblem(std::string spec_text, Options options, data::DataSplits data, at::Generator& gen);
  /// From `softmax|mlp|conv:dataset=...,hidden=20-20,act=sigmoid,filters=3x3x8-5x5x8,batch=128,
  /// objective_subset=0,l2=1e-3,init=reference|torch` or a preset (mnist_mlp, mnist_mlp_relu, mnist_mlp_deeper, mnist_conv,
  /// cifar10_conv) whose keys may be overridden.
  static ProblemPtr from_spec(const Spec& spec, at::Generator& gen);
  /// Expands a preset name into its full spec (other names are returned unchanged).
  static Spec expand_preset(const Spec& spec);
  static bool is_preset(const std::string& name);

  std::string name() const override { return spec_text_; }
  TensorList init_params(at::Generator& gen) const override;
  torch::Tensor loss(const TensorList& params, const Batch& batch) const override;
  Batch sample_batch(at::Generator& gen) const override;
  Batch objective_batch() const override { return objective_; }
  Batch train_batch() const override { return {data_.train.inputs, data_.train.labels}; }
  Batch test_batch() const override { return {data_.test.inputs, data_.test.labels}; }
  bool deterministic() const override { return options_.batch == 0; }
  double accuracy(const TensorList& params, const Batch& batch) const override;

  /// Logits [n, classes] of `inputs`.
  torch::Tensor logits(const TensorList& params, const torch::Tensor& inputs) const;
  const std::vector<std::vector<int64_t>>& param_shapes() const { return shapes_; }
  const Options& options() const { return options_; }

 private:
  std::string spec_text_;
  Options options_;
  data::DataSplits data_;
  Batch objective_;
  std::vector<std::vector<int64_t>> shapes_;
  int64_t features_ = 0;
};

}  // namespace problems
}  // namespace l2o
