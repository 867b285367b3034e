// Train an ordinary LibTorch model with a learned optimizer, as a drop-in torch::optim::Optimizer.
//
//   train_with_learned_optimizer [checkpoint.pt]
//
// Without a checkpoint the example uses Adam, so it runs before anything has been meta-trained.
#include <l2o/core/runtime.h>
#include <l2o/io/checkpoint.h>
#include <l2o/learned/registry.h>
#include <l2o/optim/adapter.h>

#include <torch/torch.h>

#include <cstdio>

int main(int argc, char** argv) try {
  l2o::tune_runtime();
  torch::manual_seed(0);
  // A small regression model: y = sin(x₁ + x₂ + x₃).
  torch::nn::Sequential model(torch::nn::Linear(3, 16), torch::nn::Tanh(), torch::nn::Linear(16, 1));
  l2o::optim::RulePtr rule = argc > 1 ? l2o::io::load_rule(argv[1]) : l2o::learned::make_rule("adam:lr=0.01");
  l2o::optim::RuleOptimizer optimizer(model->parameters(), rule);
  std::printf("training with %s\n", rule->spec().str().c_str());
  for (int step = 0; step <= 200; ++step) {
    const auto x = torch::randn({64, 3});
    const auto y = torch::sin(x.sum(1, true));
    optimizer.zero_grad();
    const auto loss = torch::mse_loss(model->forward(x), y);
    loss.backward();
    optimizer.step();
    if (step % 50 == 0) std::printf("step %3d  loss %.5f\n", step, loss.item<double>());
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "error: %s\n", e.what());
  return 1;
}
