// Train an ordinary LibTorch model with a learned optimizer, as a drop-in torch::optim::Optimizer.
//
//   train_with_learned_optimizer [checkpoint.pt | spec]
//
// Without an argument the example uses the learned optimizer shipped with l2o (mlp_lopt_generalist.pt,
// found through the installed package); a spec such as `adam:lr=0.01` runs a hand-designed rule instead.
// Exits with 1 if the loss did not fall.
#include <l2o/core/runtime.h>
#include <l2o/io/checkpoint.h>
#include <l2o/io/shipped_checkpoints.h>
#include <l2o/learned/registry.h>
#include <l2o/optim/adapter.h>

#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <string>

int main(int argc, char** argv) try {
  l2o::tune_runtime();
  torch::manual_seed(0);
  // A small regression model: y = sin(x₁ + x₂ + x₃).
  torch::nn::Sequential model(torch::nn::Linear(3, 16), torch::nn::Tanh(), torch::nn::Linear(16, 1));
  const std::string what = argc > 1 ? argv[1] : l2o::io::shipped_checkpoint("mlp_lopt_generalist.pt");
  const bool is_file = std::filesystem::exists(what);
  l2o::optim::RulePtr rule = is_file ? l2o::io::load_rule(what) : l2o::learned::make_rule(what);
  l2o::optim::RuleOptimizer optimizer(model->parameters(), rule);
  if (is_file) std::printf("checkpoint: %s\n", what.c_str());
  std::printf("training with %s\n", rule->spec().str().c_str());
  double first = 0, last = 0;
  for (int step = 0; step <= 200; ++step) {
    const auto x = torch::randn({64, 3});
    const auto y = torch::sin(x.sum(1, true));
    optimizer.zero_grad();
    const auto loss = torch::mse_loss(model->forward(x), y);
    loss.backward();
    optimizer.step();
    last = loss.item<double>();
    if (step == 0) first = last;
    if (step % 50 == 0) std::printf("step %3d  loss %.5f\n", step, last);
  }
  std::printf("loss %.5f -> %.5f\n", first, last);
  return last < first ? 0 : 1;
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
