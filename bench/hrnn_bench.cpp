// HierarchicalRNN costs (SPEC §6), measured in one run against references from the same run:
//  - update time per parameter of the HierarchicalRNN against Adam's, on one 1M-parameter model
//    (a 1000x1000 weight matrix plus a bias of 1000, gradients given: the rules alone are timed);
//  - one L2O-Scale meta-iteration (5 unrolls of 20 steps, log-ratio objective, RMSProp) of the
//    HierarchicalRNN on the MNIST MLP 784-20-10 (needs data/mnist from scripts/setup.sh), against
//    one Adam step (gradient + update) on the same problem.
#include "bench_main.h"

#include <l2o/core/rng.h>
#include <l2o/learned/registry.h>
#include <l2o/meta/trainer.h>
#include <l2o/problems/registry.h>

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstdio>

using namespace l2o;

namespace {
const char* kMnist = "mnist_mlp";

TensorList big_model() {
  torch::manual_seed(0);
  return {torch::randn({1000, 1000}) * 0.01, torch::zeros({1000})};
}

// One update of `spec` on the 1M-parameter model, no graph.
void update_only(benchmark::State& st, const std::string& spec) {
  auto rule = learned::make_rule(spec);
  TensorList params = big_model();
  TensorList grads;
  for (const auto& p : params) grads.push_back(torch::randn_like(p) * 0.1);
  torch::NoGradGuard no_grad;
  auto state = rule->init(params);
  for (auto _ : st) {
    auto r = rule->update(params, grads, state);
    params = std::move(r.params);
    state = std::move(r.state);
  }
  st.counters["params"] = 1001000;
}

void BM_AdamUpdate1M(benchmark::State& st) { update_only(st, "adam:lr=0.001"); }
void BM_HrnnUpdate1M(benchmark::State& st) { update_only(st, "hrnn"); }

void BM_MnistAdamStep(benchmark::State& st) {
  auto rule = learned::make_rule("adam:lr=0.001");
  auto gen = make_generator(0);
  auto problem = problems::make_problem(kMnist, gen);
  TensorList params = problem->init_params(gen);
  auto state = rule->init(params);
  for (auto _ : st) {
    TensorList leaves = fresh_leaves(params);
    const auto grads = torch::autograd::grad({problem->loss(leaves, problem->sample_batch(gen))}, leaves);
    torch::NoGradGuard no_grad;
    auto r = rule->update(l2o::detach(leaves), grads, state);
    params = std::move(r.params);
    state = std::move(r.state);
  }
}

void BM_MnistHrnnMetaIteration(benchmark::State& st) {
  meta::Trainer trainer(meta::TrainOptions()
                            .optimizer("hrnn")
                            .problem(kMnist)
                            .num_steps(100)
                            .unroll_length(20)
                            .objective("log_ratio")
                            .meta_optimizer("rmsprop")
                            .meta_lr(1e-6)
                            .evaluation_period(0)
                            .meta_iterations(1 << 30));
  for (auto _ : st) benchmark::DoNotOptimize(trainer.step());
}

BENCHMARK(BM_AdamUpdate1M)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_HrnnUpdate1M)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_MnistAdamStep)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MnistHrnnMetaIteration)->Unit(benchmark::kMillisecond)->MinTime(5.0);

}  // namespace

int main(int argc, char** argv) {
  const auto s = l2o::bench::run_benchmarks(&argc, argv);
  if (s.count("BM_AdamUpdate1M") && s.count("BM_HrnnUpdate1M")) {
    const double n = 1001000;
    std::printf("update per parameter on a 1M-parameter model: HierarchicalRNN %.1f ns, Adam %.2f ns -> %.0fx Adam\n",
                1e9 * s.at("BM_HrnnUpdate1M") / n, 1e9 * s.at("BM_AdamUpdate1M") / n,
                s.at("BM_HrnnUpdate1M") / s.at("BM_AdamUpdate1M"));
  }
  if (s.count("BM_MnistAdamStep") && s.count("BM_MnistHrnnMetaIteration")) {
    std::printf("one HierarchicalRNN meta-iteration on MNIST MLP (100 steps, 5 unrolls of 20): %.0f ms = %.0f Adam "
                "steps (Adam step %.0f us)\n",
                1e3 * s.at("BM_MnistHrnnMetaIteration"), s.at("BM_MnistHrnnMetaIteration") / s.at("BM_MnistAdamStep"),
                1e6 * s.at("BM_MnistAdamStep"));
  }
  return 0;
}
