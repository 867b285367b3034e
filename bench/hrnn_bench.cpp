// HierarchicalRNN costs (SPEC §6.1), each against references measured in the same run:
//  - update per parameter on one 1M-parameter model (a 1000x1000 weight and a bias of 1000,
//    gradients given, no graph): op-by-op path, fused path on 1 and 2 threads, Adam, and mlp_lopt;
//  - one forward + backward through an update (the meta-training inner step: a graph from φ, θ and
//    the state through the update, then the backward of a scalar of its outputs), fused vs op by op,
//    on the 1M model and on the MNIST MLP's four tensors (with trainable_adam's for reference);
//  - one L2O-Scale meta-iteration on the MNIST MLP 784-20-10 (100 steps, 5 unrolls of 20, 10,000-image
//    meta-objective; needs data/mnist) with the fused HRNN, the op-by-op HRNN and trainable_adam,
//    interleaved round by round, so that the HRNN's share (the meta-iteration minus trainable_adam's
//    in the same round) can be compared;
//  - one training step (forward, backward, optimizer step) of a LibTorch torch::nn MLP and of a small
//    convnet with torch::nn's default initialisation, HRNN through RuleOptimizer vs torch::optim::Adam.
//  - the per-coordinate kernel alone (no LibTorch, one thread) for each instruction set the CPU has, on
//    4,096 coordinates (the state in L2) and on 1M coordinates (the state streamed from memory), with
//    and without streaming stores: what bounds the fused update.
// Benchmarks whose name ends in _T2 run LibTorch and OpenBLAS on two threads, the others on one.
#include "bench_main.h"

#include <l2o/core/rng.h>
#include <l2o/core/runtime.h>
#include <l2o/eval/suite.h>
#include <l2o/learned/registry.h>
#include <l2o/meta/trainer.h>
#include <l2o/optim/adapter.h>
#include <l2o/problems/registry.h>

#include "../src/learned/hrnn_fused_kernel.h"

#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <vector>

using namespace l2o;

namespace {
// The meta-training problem of the MNIST meta-iteration benchmarks; L2O_BENCH_MNIST for another spec
// (e.g. mnist_mlp:objective_subset=1000, to see what the 10,000-image objective costs the HRNN's share).
const char* kMnist = std::getenv("L2O_BENCH_MNIST") != nullptr ? std::getenv("L2O_BENCH_MNIST") : "mnist_mlp";
constexpr double kBig = 1001000;

// Sets the threads for one benchmark and restores one thread after it.
struct Threads {
  explicit Threads(int n) { set_threads(n); }
  ~Threads() { set_threads(1); }
};

TensorList big_model() {
  torch::manual_seed(0);
  return {torch::randn({1000, 1000}) * 0.01, torch::zeros({1000})};
}

// The 1M-parameter model and fixed gradients for it.
std::pair<TensorList, TensorList> big_model_and_grads() {
  TensorList params = big_model(), grads;
  for (const auto& p : params) grads.push_back(torch::randn_like(p) * 0.1);
  return {params, grads};
}

// The MNIST MLP 784-20-10's four tensors (15,910 parameters) and fixed gradients: the model of the
// meta-iteration benchmarks, where LibTorch's per-step costs weigh more than on the 1M model.
constexpr double kMnistParams = 784 * 20 + 20 + 20 * 10 + 10;
std::pair<TensorList, TensorList> mnist_model_and_grads() {
  torch::manual_seed(0);
  TensorList params = {torch::randn({784, 20}) * 0.05, torch::zeros({20}), torch::randn({20, 10}) * 0.2,
                       torch::zeros({10})};
  TensorList grads;
  for (const auto& p : params) grads.push_back(torch::randn_like(p) * 0.1);
  return {params, grads};
}

// One update of `spec` on the 1M-parameter model, no graph.
void update_only(benchmark::State& st, const std::string& spec, int threads) {
  Threads t(threads);
  auto rule = learned::make_rule(spec);
  auto [params, grads] = big_model_and_grads();
  torch::NoGradGuard no_grad;
  auto state = rule->init(params);
  for (auto _ : st) {
    auto r = rule->update(params, grads, state);
    params = std::move(r.params);
    state = std::move(r.state);
  }
  st.counters["ns_per_param"] = benchmark::Counter(kBig * 1e-9, benchmark::Counter::kIsIterationInvariantRate |
                                                                     benchmark::Counter::kInvert);
}

void BM_AdamUpdate1M(benchmark::State& st) { update_only(st, "adam:lr=0.001", 1); }
void BM_HrnnOpByOpUpdate1M(benchmark::State& st) { update_only(st, "hrnn:fused=false", 1); }
void BM_HrnnFusedUpdate1M(benchmark::State& st) { update_only(st, "hrnn", 1); }
void BM_HrnnFusedUpdate1M_T2(benchmark::State& st) { update_only(st, "hrnn", 2); }
// The shipped generalist's architecture (op by op: it has no fused path), for reference.
void BM_MlpLoptUpdate1M(benchmark::State& st) { update_only(st, "mlp_lopt", 1); }

// Forward with a graph and backward of one update, as in a truncated-BPTT unroll: θ and the state
// require grad (they came from the previous step), g does not (first-order meta-gradient).
void forward_backward(benchmark::State& st, const std::string& spec, int threads, bool mnist = false) {
  Threads t(threads);
  auto rule = learned::make_rule(spec);
  auto [params, grads] = mnist ? mnist_model_and_grads() : big_model_and_grads();
  optim::State state;
  {
    torch::NoGradGuard no_grad;
    state = rule->init(params);
    for (int i = 0; i < 2; ++i) {
      auto r = rule->update(params, grads, state);
      params = r.params;
      state = r.state;
    }
  }
  const auto phi = rule->module()->parameters();
  for (auto _ : st) {
    TensorList leaves = fresh_leaves(params);
    optim::State s = optim::detach(state);
    for (auto& kv : s.slots)
      for (auto& x : kv.second) x.requires_grad_(true);
    auto r = rule->update(leaves, grads, s);
    torch::Tensor loss = r.state.slots.count("log_lr") ? r.state.at("log_lr")[0].sum() : torch::zeros({});
    for (const auto& p : r.params) loss = loss + p.sum();
    torch::autograd::grad({loss}, phi, {}, false, false, true);
  }
  st.counters["ns_per_param"] = benchmark::Counter((mnist ? kMnistParams : kBig) * 1e-9, benchmark::Counter::kIsIterationInvariantRate |
                                                                     benchmark::Counter::kInvert);
}
void BM_HrnnOpByOpForwardBackward1M(benchmark::State& st) { forward_backward(st, "hrnn:fused=false", 1); }
void BM_HrnnFusedForwardBackward1M(benchmark::State& st) { forward_backward(st, "hrnn", 1); }
void BM_HrnnFusedForwardBackward1M_T2(benchmark::State& st) { forward_backward(st, "hrnn", 2); }
void BM_HrnnOpByOpForwardBackwardMnist(benchmark::State& st) { forward_backward(st, "hrnn:fused=false", 1, true); }
void BM_HrnnFusedForwardBackwardMnist(benchmark::State& st) { forward_backward(st, "hrnn", 1, true); }
void BM_TrainableAdamForwardBackwardMnist(benchmark::State& st) { forward_backward(st, "trainable_adam", 1, true); }

std::unique_ptr<meta::Trainer> mnist_trainer(const std::string& optimizer) {
  return std::make_unique<meta::Trainer>(meta::TrainOptions()
                           .optimizer(optimizer)
                           .problem(kMnist)
                           .num_steps(100)
                           .unroll_length(20)
                           .objective("log_ratio")
                           .meta_optimizer("rmsprop")
                           .meta_lr(1e-6)
                           .evaluation_period(0)
                           .meta_iterations(1 << 30));
}

// The MNIST meta-iteration of trainable_adam, the op-by-op HRNN and the fused HRNN, interleaved: each
// benchmark iteration is one round of one meta-iteration of each (in a rotating order, the three
// trainers seeded alike so that round r draws the same task for all three). The HRNN's share of a
// round is its meta-iteration minus trainable_adam's in the same round, so drifts of the machine's
// speed cancel; main() prints the median over the rounds and their range.
struct PairedRounds {
  std::vector<double> adam, op, fused;  // seconds per round
} g_rounds, g_rounds_t2;

void paired_rounds(benchmark::State& st, int threads, PairedRounds& rounds) {
  Threads t(threads);
  const std::vector<std::string> names = {"trainable_adam", "hrnn:fused=false", "hrnn"};
  std::vector<std::unique_ptr<meta::Trainer>> trainers;
  for (const auto& n : names) trainers.push_back(mnist_trainer(n));
  std::vector<std::vector<double>*> out = {&rounds.adam, &rounds.op, &rounds.fused};
  for (auto* o : out) o->clear();
  size_t round = 0;
  for (auto _ : st) {
    std::vector<double> secs(names.size());
    for (size_t k = 0; k < names.size(); ++k) {
      const size_t i = (round + k) % names.size();
      const auto t0 = std::chrono::steady_clock::now();
      benchmark::DoNotOptimize(trainers[i]->step());
      secs[i] = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    for (size_t i = 0; i < names.size(); ++i) out[i]->push_back(secs[i]);
    ++round;
  }
}
void BM_MnistMetaIterationPaired(benchmark::State& st) { paired_rounds(st, 1, g_rounds); }
void BM_MnistMetaIterationPaired_T2(benchmark::State& st) { paired_rounds(st, 2, g_rounds_t2); }

// torch::nn models with their default initialisation, trained on random MNIST-shaped batches.
struct Mlp : torch::nn::Module {
  Mlp() {
    fc1 = register_module("fc1", torch::nn::Linear(784, 256));
    fc2 = register_module("fc2", torch::nn::Linear(256, 10));
  }
  torch::Tensor forward(torch::Tensor x) { return fc2->forward(torch::relu(fc1->forward(x.flatten(1)))); }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
struct ConvNet : torch::nn::Module {
  ConvNet() {
    c1 = register_module("c1", torch::nn::Conv2d(torch::nn::Conv2dOptions(1, 16, 3).padding(1)));
    c2 = register_module("c2", torch::nn::Conv2d(torch::nn::Conv2dOptions(16, 32, 3).padding(1)));
    fc = register_module("fc", torch::nn::Linear(32 * 7 * 7, 10));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = torch::max_pool2d(torch::relu(c1->forward(x)), 2);
    x = torch::max_pool2d(torch::relu(c2->forward(x)), 2);
    return fc->forward(x.flatten(1));
  }
  torch::nn::Conv2d c1{nullptr}, c2{nullptr};
  torch::nn::Linear fc{nullptr};
};

template <typename Model>
void train_step(benchmark::State& st, bool hrnn, int threads = 1) {
  Threads t(threads);
  torch::manual_seed(0);
  auto model = std::make_shared<Model>();
  std::unique_ptr<torch::optim::Optimizer> opt;
  if (hrnn)
    opt = std::make_unique<optim::RuleOptimizer>(model->parameters(), learned::make_rule("hrnn"));
  else
    opt = std::make_unique<torch::optim::Adam>(model->parameters(), torch::optim::AdamOptions(1e-3));
  const auto x = torch::randn({64, 1, 28, 28});
  const auto y = torch::randint(0, 10, {64});
  int64_t params = 0;
  for (const auto& p : model->parameters()) params += p.numel();
  for (auto _ : st) {
    opt->zero_grad();
    auto loss = torch::nn::functional::cross_entropy(model->forward(x), y);
    loss.backward();
    opt->step();
  }
  st.counters["params"] = static_cast<double>(params);
}
void BM_TorchMlpStepAdam(benchmark::State& st) { train_step<Mlp>(st, false); }
void BM_TorchMlpStepHrnn(benchmark::State& st) { train_step<Mlp>(st, true); }
void BM_TorchConvStepAdam(benchmark::State& st) { train_step<ConvNet>(st, false); }
void BM_TorchConvStepHrnn(benchmark::State& st) { train_step<ConvNet>(st, true); }
void BM_TorchMlpStepAdam_T2(benchmark::State& st) { train_step<Mlp>(st, false, 2); }
void BM_TorchMlpStepHrnn_T2(benchmark::State& st) { train_step<Mlp>(st, true, 2); }
void BM_TorchConvStepAdam_T2(benchmark::State& st) { train_step<ConvNet>(st, false, 2); }
void BM_TorchConvStepHrnn_T2(benchmark::State& st) { train_step<ConvNet>(st, true, 2); }

// The kernel's forward over n coordinates of one tensor, inputs random, one thread, in chunks as the
// glue runs it; the time per iteration is per n coordinates.
void kernel_forward(benchmark::State& st, const learned::fused::Kernels& k, int64_t n, bool stream) {
  namespace f = learned::fused;
  auto gen = make_generator(7);
  std::vector<torch::Tensor> keep;
  auto rnd = [&](int64_t m, bool positive, double scale = 1.0) {
    auto t = torch::randn({m}, gen, torch::kFloat) * scale;
    keep.push_back(positive ? torch::sigmoid(t) : t);
    return keep.back().data_ptr<float>();
  };
  f::Weights<float> w{};
  w.w_gates = rnd(f::kIn * 2 * f::kH, false, 0.3);
  w.b_gates = rnd(2 * f::kH, false);
  w.w_cand = rnd(f::kIn * f::kH, false, 0.3);
  w.b_cand = rnd(f::kH, false);
  w.update_w = rnd(f::kH, false);
  w.shortcut_w = rnd(f::kK, false);
  w.scl_w = rnd(f::kH, false);
  w.inp_w = rnd(f::kH, false);
  w.lr_w = rnd(f::kH, false);
  w.scl_b = 0.1f, w.inp_b = -0.2f, w.lr_b = 0.05f, w.momentum = 0.5f, w.min_log_lr = -6, w.max_log_lr = 0;
  f::Inputs<float> in{};
  in.g = rnd(n, false), in.scl = rnd(n, true), in.inp = rnd(n, true), in.log_lr = rnd(n, false);
  for (int i = 0; i < f::kK; ++i) in.acc[i] = rnd(n, false), in.ms[i] = rnd(n, true);
  in.h = rnd(n * f::kH, false), in.h_si = 1, in.h_sk = n, in.ext = rnd(3 * f::kH, false), in.lr_mean = -5;
  f::Outputs<float> out{};
  out.h = rnd(n * f::kH, false), out.scl = rnd(n, false), out.inp = rnd(n, false), out.log_lr = rnd(n, false);
  out.u = rnd(n, false);
  for (int i = 0; i < f::kK; ++i) out.acc[i] = rnd(n, false), out.ms[i] = rnd(n, false);
  out.n = n, out.stream = stream;
  f::ForwardSums sums;
  for (auto _ : st)
    for (int64_t b = 0; b < n; b += f::kChunk) k.forward_f(w, in, out, b, std::min(n, b + f::kChunk), &sums);
  st.counters["ns_per_coord"] = benchmark::Counter(static_cast<double>(n) * 1e-9,
                                                   benchmark::Counter::kIsIterationInvariantRate | benchmark::Counter::kInvert);
  st.SetLabel(k.isa);
}
bool has_avx2() {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}
void BM_KernelInL2(benchmark::State& st) { kernel_forward(st, learned::fused::best_kernels(), 4096, false); }
void BM_KernelInL2Avx2(benchmark::State& st) {
  if (!has_avx2()) return st.SkipWithError("no AVX2");
  kernel_forward(st, learned::fused::avx2::kernels(), 4096, false);
}
void BM_Kernel1M(benchmark::State& st) { kernel_forward(st, learned::fused::best_kernels(), 1 << 20, false); }
void BM_Kernel1MStreamed(benchmark::State& st) { kernel_forward(st, learned::fused::best_kernels(), 1 << 20, true); }

BENCHMARK(BM_AdamUpdate1M)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_HrnnOpByOpUpdate1M)->Unit(benchmark::kMillisecond)->MinTime(2.0);
BENCHMARK(BM_HrnnFusedUpdate1M)->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_HrnnFusedUpdate1M_T2)->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_MlpLoptUpdate1M)->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_HrnnOpByOpForwardBackward1M)->Unit(benchmark::kMillisecond)->MinTime(3.0);
BENCHMARK(BM_HrnnFusedForwardBackward1M)->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_HrnnFusedForwardBackward1M_T2)->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_HrnnOpByOpForwardBackwardMnist)->Unit(benchmark::kMicrosecond)->MinTime(1.0);
BENCHMARK(BM_HrnnFusedForwardBackwardMnist)->Unit(benchmark::kMicrosecond)->MinTime(1.0);
BENCHMARK(BM_TrainableAdamForwardBackwardMnist)->Unit(benchmark::kMicrosecond)->MinTime(1.0);
// Rounds of the three meta-iterations (~10 s each); L2O_BENCH_ROUNDS for another count.
int paired_round_count() {
  const char* env = std::getenv("L2O_BENCH_ROUNDS");
  return env != nullptr && std::atoi(env) > 0 ? std::atoi(env) : 9;
}
BENCHMARK(BM_MnistMetaIterationPaired)->Unit(benchmark::kMillisecond)->Iterations(paired_round_count());
BENCHMARK(BM_MnistMetaIterationPaired_T2)->Unit(benchmark::kMillisecond)->Iterations(paired_round_count());
BENCHMARK(BM_TorchMlpStepAdam)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_TorchMlpStepHrnn)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_TorchConvStepAdam)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_TorchConvStepHrnn)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_TorchMlpStepAdam_T2)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_TorchMlpStepHrnn_T2)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_TorchConvStepAdam_T2)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_TorchConvStepHrnn_T2)->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_KernelInL2)->Unit(benchmark::kMicrosecond)->MinTime(1.0);
BENCHMARK(BM_KernelInL2Avx2)->Unit(benchmark::kMicrosecond)->MinTime(1.0);
BENCHMARK(BM_Kernel1M)->Unit(benchmark::kMillisecond)->MinTime(1.0);
BENCHMARK(BM_Kernel1MStreamed)->Unit(benchmark::kMillisecond)->MinTime(1.0);

// The medians of a paired run, the HRNN's shares (its meta-iteration minus trainable_adam's in the same
// round) and their ratio.
void print_paired(const PairedRounds& r, int threads) {
  std::vector<double> op, fu, ratio;
  for (size_t i = 0; i < r.adam.size(); ++i) {
    op.push_back(r.op[i] - r.adam[i]);
    fu.push_back(r.fused[i] - r.adam[i]);
    ratio.push_back(fu.back() > 0 ? op.back() / fu.back() : 0.0);
  }
  const double mo = eval::median(op), mf = eval::median(fu);
  std::printf("MNIST meta-iteration, %d thread%s, %zu interleaved rounds, medians: trainable_adam %.0f ms, HRNN op by "
              "op %.0f ms, fused %.0f ms; HRNN share (minus trainable_adam in the same round) %.0f ms vs %.0f ms = "
              "%.1fx smaller (per round %.1f-%.1fx)\n",
              threads, threads == 1 ? "" : "s", r.adam.size(), 1e3 * eval::median(r.adam), 1e3 * eval::median(r.op),
              1e3 * eval::median(r.fused), 1e3 * mo, 1e3 * mf, mf > 0 ? mo / mf : 0.0,
              *std::min_element(ratio.begin(), ratio.end()), *std::max_element(ratio.begin(), ratio.end()));
}

}  // namespace

int main(int argc, char** argv) {
  const auto s = l2o::bench::run_benchmarks(&argc, argv);
  auto has = [&](std::initializer_list<const char*> names) {
    for (auto n : names)
      if (!s.count(n)) return false;
    return true;
  };
  auto ns = [&](const char* name) { return 1e9 * s.at(name) / kBig; };
  std::printf("\n");
  if (has({"BM_AdamUpdate1M", "BM_HrnnOpByOpUpdate1M", "BM_HrnnFusedUpdate1M"}))
    std::printf("update per parameter, 1M parameters, 1 thread: op by op %.1f ns, fused %.1f ns (%.1fx faster), "
                "Adam %.2f ns (fused = %.1fx Adam)\n",
                ns("BM_HrnnOpByOpUpdate1M"), ns("BM_HrnnFusedUpdate1M"),
                s.at("BM_HrnnOpByOpUpdate1M") / s.at("BM_HrnnFusedUpdate1M"), ns("BM_AdamUpdate1M"),
                s.at("BM_HrnnFusedUpdate1M") / s.at("BM_AdamUpdate1M"));
  if (has({"BM_AdamUpdate1M", "BM_HrnnFusedUpdate1M", "BM_MlpLoptUpdate1M"}))
    std::printf("mlp_lopt update per parameter, 1M parameters, 1 thread: %.1f ns (%.1fx Adam, %.1fx the fused HRNN)\n",
                ns("BM_MlpLoptUpdate1M"), s.at("BM_MlpLoptUpdate1M") / s.at("BM_AdamUpdate1M"),
                s.at("BM_MlpLoptUpdate1M") / s.at("BM_HrnnFusedUpdate1M"));
  if (has({"BM_HrnnFusedUpdate1M", "BM_HrnnFusedUpdate1M_T2"}))
    std::printf("fused update, 2 threads: %.1f ns per parameter = %.2fx one thread\n", ns("BM_HrnnFusedUpdate1M_T2"),
                s.at("BM_HrnnFusedUpdate1M") / s.at("BM_HrnnFusedUpdate1M_T2"));
  if (has({"BM_HrnnOpByOpForwardBackward1M", "BM_HrnnFusedForwardBackward1M"}))
    std::printf("forward+backward through one update, 1M parameters: op by op %.1f ns, fused %.1f ns per parameter "
                "(%.1fx faster)\n",
                ns("BM_HrnnOpByOpForwardBackward1M"), ns("BM_HrnnFusedForwardBackward1M"),
                s.at("BM_HrnnOpByOpForwardBackward1M") / s.at("BM_HrnnFusedForwardBackward1M"));
  if (has({"BM_HrnnFusedForwardBackward1M", "BM_HrnnFusedForwardBackward1M_T2"}))
    std::printf("fused forward+backward, 2 threads: %.1f ns per parameter = %.2fx one thread\n",
                ns("BM_HrnnFusedForwardBackward1M_T2"),
                s.at("BM_HrnnFusedForwardBackward1M") / s.at("BM_HrnnFusedForwardBackward1M_T2"));
  if (has({"BM_HrnnOpByOpForwardBackwardMnist", "BM_HrnnFusedForwardBackwardMnist", "BM_TrainableAdamForwardBackwardMnist"}))
    std::printf("forward+backward through one update, the MNIST MLP's 4 tensors (15,910 parameters): op by op %.0f us, "
                "fused %.0f us (%.1fx faster), trainable_adam %.0f us; HRNN minus trainable_adam %.1fx smaller fused\n",
                s.at("BM_HrnnOpByOpForwardBackwardMnist") * 1e6, s.at("BM_HrnnFusedForwardBackwardMnist") * 1e6,
                s.at("BM_HrnnOpByOpForwardBackwardMnist") / s.at("BM_HrnnFusedForwardBackwardMnist"),
                s.at("BM_TrainableAdamForwardBackwardMnist") * 1e6,
                (s.at("BM_HrnnOpByOpForwardBackwardMnist") - s.at("BM_TrainableAdamForwardBackwardMnist")) /
                    (s.at("BM_HrnnFusedForwardBackwardMnist") - s.at("BM_TrainableAdamForwardBackwardMnist")));
  if (!g_rounds.adam.empty()) print_paired(g_rounds, 1);
  if (!g_rounds_t2.adam.empty()) print_paired(g_rounds_t2, 2);
  for (const char* threads : {"", "_T2"})
    for (const char* model : {"Mlp", "Conv"}) {
      const std::string adam = std::string("BM_Torch") + model + "StepAdam" + threads;
      const std::string hrnn = std::string("BM_Torch") + model + "StepHrnn" + threads;
      if (!s.count(adam) || !s.count(hrnn)) continue;
      std::printf("torch::nn %s training step, batch 64, %s: Adam %.0f us, HRNN (RuleOptimizer) %.0f us = %.2fx\n",
                  *model == 'M' ? "MLP 784-256-10" : "convnet", *threads ? "2 threads" : "1 thread",
                  1e6 * s.at(adam), 1e6 * s.at(hrnn), s.at(hrnn) / s.at(adam));
    }
  if (has({"BM_KernelInL2", "BM_Kernel1M", "BM_Kernel1MStreamed"})) {
    char avx2[64] = "";
    if (s.count("BM_KernelInL2Avx2"))
      std::snprintf(avx2, sizeof(avx2), "; AVX2 kernel in L2 %.1f ns", 1e9 * s.at("BM_KernelInL2Avx2") / 4096);
    const double streamed = 1e9 * s.at("BM_Kernel1MStreamed") / (1 << 20);
    std::printf("kernel alone (%s), 1 thread: %.1f ns per coordinate in L2 (4,096), %.1f ns over 1M, %.1f streamed%s\n",
                learned::fused::best_kernels().isa, 1e9 * s.at("BM_KernelInL2") / 4096,
                1e9 * s.at("BM_Kernel1M") / (1 << 20), streamed, avx2);
    if (s.count("BM_HrnnFusedUpdate1M"))
      std::printf("fused update minus the streamed kernel (glue: passes 0, 2, 3 and allocation): %.1f ns per parameter\n",
                  ns("BM_HrnnFusedUpdate1M") - streamed);
  }
  return 0;
}
