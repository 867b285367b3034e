// The user's check of issue 12: a LibTorch convnet with torch::nn's default initialisation and
// dropout, trained on MNIST through RuleOptimizer, against torch::optim::Adam on the same model,
// data order and seed. Not a unit test: it takes minutes (one epoch per optimizer).
//
//   dropin_check [--epochs 1] [--seeds 1] [--out file.csv] NAME=CHECKPOINT[:OPTIONS]|SPEC ...
//
// Every NAME=... is a checkpoint file (OPTIONS override saved ones, e.g. max_log_lr=-5) or a rule spec (e.g. `adam:lr=0.001`, `hrnn` = untrained φ
// seeded by 0). Prints, per optimizer and seed, the mean training loss of the first and last 100
// steps and the test accuracy, and writes them as CSV.
#include <l2o/core/runtime.h>
#include <l2o/data/dataset.h>
#include <l2o/io/checkpoint.h>
#include <l2o/io/files.h>
#include <l2o/learned/registry.h>
#include <l2o/optim/adapter.h>

#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

// The model of the report: two 3×3 convolutions with max-pooling, dropout, two linear layers.
struct Net : torch::nn::Module {
  Net() {
    c1 = register_module("c1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 16, 3).padding(1)));
    c2 = register_module("c2", torch::nn::Conv2d(torch::nn::Conv2dOptions(16, 32, 3).padding(1)));
    drop = register_module("drop", torch::nn::Dropout(0.25));
    f1 = register_module("f1", torch::nn::Linear(32 * 7 * 7, 64));
    f2 = register_module("f2", torch::nn::Linear(64, 10));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = torch::max_pool2d(torch::relu(c1->forward(x)), 2);
    x = torch::max_pool2d(torch::relu(c2->forward(x)), 2);
    x = drop->forward(x.flatten(1));
    return f2->forward(torch::relu(f1->forward(x)));
  }
  torch::nn::Conv2d c1{nullptr}, c2{nullptr};
  torch::nn::Dropout drop{nullptr};
  torch::nn::Linear f1{nullptr}, f2{nullptr};
};

struct Result {
  double first = 0, last = 0, accuracy = 0, seconds = 0;
  bool finite = true;
};

Result train(const std::string& what, int64_t seed, int64_t epochs, const l2o::data::DataSplits& data) {
  torch::manual_seed(seed);
  auto net = std::make_shared<Net>();
  // A checkpoint, optionally PATH:OPTIONS (saved options overridden, e.g. max_log_lr=-5), or a rule spec.
  const auto [path, overrides] = l2o::io::split_checkpoint_options(what);
  torch::manual_seed(0);  // an untrained learned rule's φ: the trainer's seeding does the same
  const l2o::optim::RulePtr rule = std::filesystem::exists(path) ? l2o::io::load_rule(path, overrides)
                                                                 : l2o::learned::make_rule(what);
  l2o::optim::RuleOptimizer optimizer(net->parameters(), rule);
  auto gen = at::detail::createCPUGenerator(static_cast<uint64_t>(seed) + 1000);
  const int64_t n = data.train.size(), batch = 64, steps_per_epoch = n / batch;
  std::vector<double> losses;
  const auto t0 = std::chrono::steady_clock::now();
  net->train();
  for (int64_t e = 0; e < epochs; ++e) {
    const auto order = torch::randperm(n, gen, torch::kLong);
    for (int64_t s = 0; s < steps_per_epoch; ++s) {
      const auto rows = order.narrow(0, s * batch, batch);
      const auto x = data.train.inputs.index_select(0, rows), y = data.train.labels.index_select(0, rows);
      optimizer.zero_grad();
      const auto loss = torch::nn::functional::cross_entropy(net->forward(x), y);
      loss.backward();
      optimizer.step();
      losses.push_back(loss.item<double>());
    }
  }
  Result r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const size_t k = std::min<size_t>(100, losses.size());
  for (size_t i = 0; i < k; ++i) r.first += losses[i] / k, r.last += losses[losses.size() - 1 - i] / k;
  r.finite = std::isfinite(r.last);
  torch::NoGradGuard no_grad;
  net->eval();
  const auto pred = net->forward(data.test.inputs).argmax(1);
  r.accuracy = pred.eq(data.test.labels).to(torch::kDouble).mean().item<double>();
  return r;
}

}  // namespace

int main(int argc, char** argv) try {
  l2o::tune_runtime();
  int64_t epochs = 1, seeds = 1;
  std::string out = "dropin_check.csv";
  std::vector<std::pair<std::string, std::string>> optimizers;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--epochs" && i + 1 < argc) {
      epochs = std::stoll(argv[++i]);
    } else if (a == "--seeds" && i + 1 < argc) {
      seeds = std::stoll(argv[++i]);
    } else if (a == "--out" && i + 1 < argc) {
      out = argv[++i];
    } else {
      const auto eq = a.find('=');
      if (eq == std::string::npos || eq == 0) throw std::runtime_error("expected NAME=CHECKPOINT|SPEC, got '" + a + "'");
      optimizers.emplace_back(a.substr(0, eq), a.substr(eq + 1));
    }
  }
  if (optimizers.empty()) throw std::runtime_error("give at least one NAME=CHECKPOINT|SPEC");
  auto gen = at::detail::createCPUGenerator(0);
  const auto data = l2o::data::make_dataset(l2o::Spec::parse("mnist"), gen, "mnist");
  std::ofstream csv(out);
  csv << "optimizer,what,seed,epochs,first100_loss,last100_loss,test_accuracy,seconds\n";
  std::printf("%-22s %4s %12s %12s %9s %8s\n", "optimizer", "seed", "loss first", "loss last", "test acc", "s");
  for (const auto& [name, what] : optimizers) {
    for (int64_t s = 0; s < seeds; ++s) {
      const Result r = train(what, s, epochs, data);
      std::printf("%-22s %4lld %12.4f %12.4f %9.4f %8.1f\n", name.c_str(), static_cast<long long>(s), r.first, r.last,
                  r.accuracy, r.seconds);
      std::fflush(stdout);
      csv << l2o::io::csv_field(name) << ',' << l2o::io::csv_field(what) << ',' << s << ',' << epochs << ',' << r.first << ',' << r.last << ',' << r.accuracy
          << ',' << r.seconds << '\n';
    }
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "dropin_check: %s\n", e.what());
  return 1;
}
