// Cost of L2O-Entropy's flatness regularisers per inner step of meta-training (SPEC §4): one unroll
// of the HierarchicalRNN on the MNIST MLP (784-20-10 sigmoid, batch 128; the experiment's setting),
// forward plus meta-gradient, with no regulariser and with each of hessian, hessian-ev, hessian-esd
// and jacob on the meta-objective (α = 1e-4, hessian_itrs = 10). Prints seconds and HVPs per inner
// step and the ratio against the unregularised step measured in the same run.
#include "bench_main.h"

#include <l2o/core/rng.h>
#include <l2o/learned/registry.h>
#include <l2o/meta/unroll.h>
#include <l2o/problems/registry.h>

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstdio>
#include <map>

using namespace l2o;

namespace {
constexpr int64_t kSteps = 5;
std::map<std::string, double> g_hvps;

void unroll_step(benchmark::State& st, const std::string& name, const std::string& reg) {
  auto rule = learned::make_rule("hrnn");
  auto gen = make_generator(0);
  auto problem = problems::make_problem("mnist_mlp", gen);
  meta::Trajectory start;
  start.params = problem->init_params(gen);
  start.state = rule->init(start.params, gen);
  meta::UnrollOptions o;
  o.length = kSteps;
  o.objective = meta::Objective::kLogRatio;
  o.f0 = 2.3;
  if (!reg.empty()) {
    o.alpha = 1e-4;
    o.regularizer.type(meta::parse_regularizer(reg)).hessian_itrs(10);
  }
  const auto params = rule->module()->parameters();
  int64_t hvps = 0, steps = 0;
  for (auto _ : st) {
    auto r = meta::unroll(*rule, *problem, start, o, gen);
    for (const auto& p : params) p.mutable_grad() = torch::Tensor();
    r.meta_loss.backward();
    hvps += r.hvps;
    steps += kSteps;
  }
  g_hvps[name] = static_cast<double>(hvps) / static_cast<double>(steps);
  st.counters["hvps_per_step"] = g_hvps[name];
}

void BM_Plain(benchmark::State& st) { unroll_step(st, "BM_Plain", ""); }
void BM_Hessian(benchmark::State& st) { unroll_step(st, "BM_Hessian", "hessian"); }
void BM_HessianEv(benchmark::State& st) { unroll_step(st, "BM_HessianEv", "hessian-ev"); }
void BM_HessianEsd(benchmark::State& st) { unroll_step(st, "BM_HessianEsd", "hessian-esd"); }
void BM_Jacob(benchmark::State& st) { unroll_step(st, "BM_Jacob", "jacob"); }

BENCHMARK(BM_Plain)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_Hessian)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_HessianEv)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_HessianEsd)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_Jacob)->Unit(benchmark::kMillisecond)->MinTime(2.0);

}  // namespace

int main(int argc, char** argv) {
  const auto s = l2o::bench::run_benchmarks(&argc, argv);
  if (!s.count("BM_Plain")) return 0;
  const double plain = s.at("BM_Plain") / kSteps;
  std::printf("\nper inner step of meta-training (HRNN on mnist_mlp, unroll of %lld steps + meta-gradient):\n",
              static_cast<long long>(kSteps));
  std::printf("%-14s %12s %10s %14s\n", "regulariser", "s/step", "HVPs/step", "x unregularised");
  const std::pair<const char*, const char*> rows[] = {{"BM_Plain", "none"},
                                                      {"BM_Hessian", "hessian"},
                                                      {"BM_HessianEv", "hessian-ev"},
                                                      {"BM_HessianEsd", "hessian-esd"},
                                                      {"BM_Jacob", "jacob"}};
  for (const auto& [key, label] : rows) {
    if (!s.count(key)) continue;
    const double per_step = s.at(key) / kSteps;
    std::printf("%-14s %12.4f %10.1f %14.2f\n", label, per_step, g_hvps[key], per_step / plain);
  }
  return 0;
}
