// Wall time of one DM meta-iteration (128 quadratics of dimension 10, 100 steps, 5 unrolls of 20,
// coordinatewise LSTM, Adam meta-optimizer) against one Adam step on the same problem, measured in
// the same run. Prints the ratios at the end.
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
const char* kProblem = "dm_quadratic:batch=128,dim=10";

// One inner step of a rule without a graph through it: gradient of f plus the update.
void inner_step(benchmark::State& st, const std::string& spec) {
  auto rule = learned::make_rule(spec);
  auto gen = make_generator(0);
  auto problem = problems::make_problem(kProblem, gen);
  TensorList params = problem->init_params(gen);
  auto state = rule->init(params);
  for (auto _ : st) {
    TensorList leaves = fresh_leaves(params);
    const auto grads = torch::autograd::grad({problem->loss(leaves, {})}, leaves);
    torch::NoGradGuard no_grad;
    auto r = rule->update(l2o::detach(leaves), grads, state);
    params = std::move(r.params);
    state = std::move(r.state);
  }
}

void BM_AdamStep(benchmark::State& st) { inner_step(st, "adam:lr=0.1"); }
void BM_LstmStep(benchmark::State& st) { inner_step(st, "lstm:output_scale=0.1"); }

void BM_MetaIteration(benchmark::State& st) {
  meta::Trainer trainer(meta::TrainOptions()
                            .optimizer("lstm:output_scale=0.1")
                            .problem(kProblem)
                            .num_steps(100)
                            .unroll_length(20)
                            .evaluation_period(0)
                            .meta_iterations(1 << 30));
  for (auto _ : st) benchmark::DoNotOptimize(trainer.step());
}

BENCHMARK(BM_AdamStep)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_LstmStep)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MetaIteration)->Unit(benchmark::kMillisecond)->MinTime(3.0);

}  // namespace

int main(int argc, char** argv) {
  const auto s = l2o::bench::run_benchmarks(&argc, argv);
  if (s.count("BM_AdamStep") && s.count("BM_MetaIteration")) {
    std::printf("one meta-iteration (100 steps, 5 unrolls of 20): %.1f ms = %.0f Adam steps (Adam step %.1f us)\n",
                1e3 * s.at("BM_MetaIteration"), s.at("BM_MetaIteration") / s.at("BM_AdamStep"), 1e6 * s.at("BM_AdamStep"));
  }
  if (s.count("BM_AdamStep") && s.count("BM_LstmStep")) {
    std::printf("LSTM step / Adam step (no meta-graph): %.1fx\n", s.at("BM_LstmStep") / s.at("BM_AdamStep"));
  }
  return 0;
}
