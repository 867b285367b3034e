// The fused HierarchicalRNN step (SPEC §6.1) against the op-by-op reference path: values over 20
// steps, gradients with respect to θ, g, every state tensor and φ, float64 finite differences,
// meta-training, determinism and the fallback for options the kernel does not cover.
#include "rule_checks.h"

#include <l2o/core/rng.h>
#include <l2o/learned/hierarchical_rnn.h>
#include <l2o/meta/trainer.h>

#include "../../src/learned/hrnn_fused_kernel.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

using namespace l2o;
using learned::HierarchicalRnn;
using learned::HierarchicalRnnOptions;

namespace {

// Random changes to φ, so that no gradient is zero by initialisation (lr_w starts at 0).
void perturb(HierarchicalRnn& rnn) {
  torch::NoGradGuard no_grad;
  auto gen = make_generator(21);
  for (auto& p : rnn.parameters())
    p.add_(torch::randn(p.sizes(), gen, torch::kDouble).to(p.scalar_type()) * 0.1);
}

// Two optimizers with the same (perturbed) φ, one fused and one op by op.
struct Pair {
  std::shared_ptr<HierarchicalRnn> fused, reference;
};
Pair make_pair(HierarchicalRnnOptions o, torch::Dtype dtype, uint64_t seed = 0) {
  torch::manual_seed(seed);
  auto f = std::make_shared<HierarchicalRnn>(o.fused(true));
  torch::manual_seed(seed);
  auto r = std::make_shared<HierarchicalRnn>(o.fused(false));
  f->to(dtype);
  r->to(dtype);
  perturb(*f);
  perturb(*r);
  return {f, r};
}

using rule_checks::rel_err;

// A deterministic gradient field: g = a∘θ − b + noise_t, with per-step noise from (seed, t).
struct Field {
  TensorList a, b;
  Field(const TensorList& shapes, torch::Dtype dtype) {
    auto gen = make_generator(5);
    for (const auto& s : shapes) {
      a.push_back(torch::rand(s.sizes(), gen, torch::kDouble).to(dtype) + 0.5);
      b.push_back(torch::randn(s.sizes(), gen, torch::kDouble).to(dtype));
    }
  }
  TensorList grad(const TensorList& theta, int64_t t) const {
    auto gen = make_generator(100 + t);
    TensorList g;
    for (size_t i = 0; i < theta.size(); ++i)
      g.push_back(a[i] * theta[i] - b[i] + 0.3 * torch::randn(theta[i].sizes(), gen, torch::kDouble).to(theta[i].scalar_type()));
    return g;
  }
};

TensorList model(const std::vector<std::vector<int64_t>>& shapes, torch::Dtype dtype) {
  auto gen = make_generator(3);
  TensorList p;
  for (const auto& s : shapes) p.push_back(torch::randn(s, gen, torch::kDouble).to(dtype) * 0.5);
  return p;
}

// Runs both paths for `steps` steps on their own trajectories and returns the largest relative
// error over the parameters, every state tensor and the step.
double max_error_over_steps(const Pair& pr, const TensorList& init, int steps, std::string* worst) {
  torch::NoGradGuard no_grad;
  const Field field(init, init[0].scalar_type());
  TensorList pf = init, pr_ = init;
  auto gen_f = make_generator(9), gen_r = make_generator(9);
  auto sf = pr.fused->init(pf, gen_f), sr = pr.reference->init(pr_, gen_r);
  double err = 0;
  auto note = [&](double e, const std::string& what) {
    if (e > err) {
      err = e;
      *worst = what;
    }
  };
  for (int t = 0; t < steps; ++t) {
    auto rf = pr.fused->update(pf, field.grad(pf, t), sf);
    auto rr = pr.reference->update(pr_, field.grad(pr_, t), sr);
    for (size_t i = 0; i < init.size(); ++i) {
      note(rel_err(rf.params[i], rr.params[i]), "params step " + std::to_string(t));
      note(rel_err(rf.steps[i], rr.steps[i]), "steps step " + std::to_string(t));
    }
    for (const auto& kv : rr.state.slots) {
      const auto& other = rf.state.at(kv.first);
      EXPECT_EQ(other.size(), kv.second.size()) << kv.first;
      for (size_t i = 0; i < kv.second.size(); ++i) {
        EXPECT_EQ(other[i].sizes(), kv.second[i].sizes()) << kv.first;
        note(rel_err(other[i], kv.second[i]), kv.first + " step " + std::to_string(t));
      }
    }
    EXPECT_EQ(rf.state.slots.size(), rr.state.slots.size());
    pf = rf.params;
    pr_ = rr.params;
    sf = rf.state;
    sr = rr.state;
  }
  return err;
}

}  // namespace

TEST(HrnnFused, TakenForThePaperConfigurationOnly) {
  auto h = std::make_shared<HierarchicalRnn>();
  const TensorList g{torch::randn({4, 3})};
  EXPECT_TRUE(h->uses_fused(g));
  EXPECT_EQ(h->options().fused_fallback_reason(), "");
  EXPECT_FALSE(std::make_shared<HierarchicalRnn>(HierarchicalRnnOptions().fused(false))->uses_fused(g));
  EXPECT_FALSE(std::make_shared<HierarchicalRnn>(HierarchicalRnnOptions().level_sizes({5, 20, 20}))->uses_fused(g));
  EXPECT_FALSE(std::make_shared<HierarchicalRnn>(HierarchicalRnnOptions().num_gradient_scales(3))->uses_fused(g));
  EXPECT_FALSE(std::make_shared<HierarchicalRnn>(HierarchicalRnnOptions().use_extreme_indicator(true))->uses_fused(g));
  EXPECT_TRUE(std::make_shared<HierarchicalRnn>(HierarchicalRnnOptions().level_sizes({10}))->uses_fused(g));
  EXPECT_TRUE(std::make_shared<HierarchicalRnn>(HierarchicalRnnOptions().learnable_decay(false))->uses_fused(g));
  // φ in float32, gradients in float64: the op-by-op path decides what happens.
  EXPECT_FALSE(h->uses_fused({torch::randn({3}, torch::kDouble)}));
  // fused=false is part of the spec (and the default is not, so old checkpoints still match).
  EXPECT_EQ(h->spec().str().find("fused"), std::string::npos);
  auto off = learned::make_rule("hrnn:fused=false");
  EXPECT_NE(off->spec().str().find("fused=false"), std::string::npos);
}

TEST(HrnnFused, EqualsOpByOpOverTwentyStepsForEverySize) {
  for (int64_t n : {1, 7, 16, 17, 100, 1000, 4097, 100000}) {
    for (const std::string global : {"mean", "last_tensor"}) {
      for (auto dtype : {torch::kFloat, torch::kDouble}) {
        const auto pr = make_pair(HierarchicalRnnOptions().global_input(global), dtype);
        std::string worst;
        const double err = max_error_over_steps(pr, model({{n}}, dtype), 20, &worst);
        const double tol = dtype == torch::kFloat ? 1e-5 : 1e-10;
        EXPECT_LE(err, tol) << "n=" << n << " " << global << " " << c10::toString(dtype) << " worst: " << worst;
      }
    }
  }
}

// Random inputs of the per-coordinate kernel (hrnn_fused_kernel.h) for one tensor of n coordinates.
struct KernelCase {
  std::vector<torch::Tensor> keep;
  learned::fused::Weights<float> w;
  learned::fused::Inputs<float> in;
  int64_t n;
  explicit KernelCase(int64_t n_) : n(n_) {
    namespace f = learned::fused;
    auto gen = make_generator(31);
    auto rnd = [&](int64_t k, bool positive) {
      auto t = torch::randn({k}, gen, torch::kDouble).to(torch::kFloat);
      return positive ? torch::sigmoid(t) : t;
    };
    auto ptr = [&](torch::Tensor t) {
      keep.push_back(t);
      return keep.back().data_ptr<float>();
    };
    w.w_gates = ptr(rnd(f::kIn * 2 * f::kH, false) * 0.3);
    w.b_gates = ptr(rnd(2 * f::kH, false));
    w.w_cand = ptr(rnd(f::kIn * f::kH, false) * 0.3);
    w.b_cand = ptr(rnd(f::kH, false));
    w.update_w = ptr(rnd(f::kH, false));
    w.shortcut_w = ptr(rnd(f::kK, false));
    w.scl_w = ptr(rnd(f::kH, false));
    w.inp_w = ptr(rnd(f::kH, false));
    w.lr_w = ptr(rnd(f::kH, false));
    w.scl_b = 0.1f, w.inp_b = -0.2f, w.lr_b = 0.05f, w.momentum = 0.5f, w.min_log_lr = -6, w.max_log_lr = 0;
    // Gradients and accumulators over several orders of magnitude, as a real model's are.
    in.g = ptr(rnd(n, false) * torch::pow(10.0, rnd(n, false) * 2));
    in.scl = ptr(rnd(n, true));
    in.inp = ptr(rnd(n, true));
    in.log_lr = ptr(rnd(n, false) - 5);
    for (int i = 0; i < f::kK; ++i) {
      in.acc[i] = ptr(rnd(n, false));
      in.ms[i] = ptr(rnd(n, true));
    }
    in.h = ptr(rnd(n * f::kH, false));
    in.h_si = 1, in.h_sk = n;
    in.ext = ptr(rnd(3 * f::kH, false));
    in.lr_mean = -5;
  }
  // Fresh outputs (filled with −1, to see what is written), held in `held`.
  learned::fused::Outputs<float> outputs(bool stream, std::vector<torch::Tensor>* held) const {
    namespace f = learned::fused;
    f::Outputs<float> o;
    auto fresh = [&](int64_t k) {
      held->push_back(torch::full({k}, -1.0f));
      return held->back().data_ptr<float>();
    };
    o.h = fresh(n * f::kH), o.scl = fresh(n), o.inp = fresh(n), o.log_lr = fresh(n), o.u = fresh(n);
    for (int i = 0; i < f::kK; ++i) o.acc[i] = fresh(n), o.ms[i] = fresh(n);
    o.n = n;
    o.stream = stream;
    return o;
  }
};

// Steps of 2^18 coordinates or more store their new state past the caches (Outputs::stream), which
// takes only 64-byte aligned full vectors. Streamed or not, the kernel writes the same bits: here on
// rows of h that are unaligned (n % 16 != 0), a tail block and a range that starts unaligned.
TEST(HrnnFused, StreamedStoresWriteTheSameBits) {
  namespace f = learned::fused;
  for (int64_t n : {int64_t{4096}, int64_t{4103}}) {
    const KernelCase c(n);
    std::vector<torch::Tensor> plain, streamed;
    const auto op = c.outputs(false, &plain), os = c.outputs(true, &streamed);
    const auto& k = f::best_kernels();
    for (const auto& [b, e] : {std::pair<int64_t, int64_t>{0, 1003}, {1003, n}}) {
      f::ForwardSums sp, ss;
      k.forward_f(c.w, c.in, op, b, e, &sp);
      k.forward_f(c.w, c.in, os, b, e, &ss);
      EXPECT_EQ(sp.sumsq, ss.sumsq);
    }
    for (size_t i = 0; i < plain.size(); ++i) {
      EXPECT_TRUE(torch::equal(plain[i], streamed[i])) << "output " << i << ", n=" << n << " (" << k.isa << ")";
      EXPECT_FALSE(torch::isnan(plain[i]).any().item<bool>()) << "output " << i;
      EXPECT_EQ(plain[i].eq(-1.0f).sum().item<int64_t>(), 0) << "output " << i << " not written everywhere";
    }
  }
}

// The kernels of this CPU: the generic one always, AVX2 and AVX-512 where the CPU runs them.
std::vector<learned::fused::Kernels> available_kernels() {
  namespace f = learned::fused;
  std::vector<f::Kernels> kernels{f::generic::kernels()};
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) kernels.push_back(f::avx2::kernels());
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    kernels.push_back(f::avx512::kernels());
#endif
  return kernels;
}

// The three instruction sets (each with its own exp/log/tanh/1/√ approximations) agree to float32
// accuracy; the machine runs the best one, the others are checked here where the CPU has them.
TEST(HrnnFused, KernelsOfEveryInstructionSetAgree) {
  namespace f = learned::fused;
  const KernelCase c(4103);
  const std::vector<f::Kernels> kernels = available_kernels();
  std::vector<torch::Tensor> ref;
  f::ForwardSums ref_sums;
  kernels[0].forward_f(c.w, c.in, c.outputs(false, &ref), 0, c.n, &ref_sums);
  for (size_t k = 1; k < kernels.size(); ++k) {
    std::vector<torch::Tensor> out;
    f::ForwardSums sums;
    kernels[k].forward_f(c.w, c.in, c.outputs(false, &out), 0, c.n, &sums);
    for (size_t i = 0; i < out.size(); ++i)
      EXPECT_LE(rel_err(out[i], ref[i]), 1e-5) << kernels[k].isa << " vs " << kernels[0].isa << ", output " << i;
    EXPECT_NEAR(sums.sumsq, ref_sums.sumsq, 1e-5 * ref_sums.sumsq) << kernels[k].isa;
    for (int j = 0; j < f::kH; ++j) EXPECT_NEAR(sums.h[j], ref_sums.h[j], 1e-5 * c.n) << kernels[k].isa;
  }
  std::printf("kernels compared: %zu (best here: %s)\n", kernels.size(), f::best_kernels().isa);
}

// The float32 approximations inside every kernel against float64 libm, in units in the last place
// of the float32 result, over dense sweeps of the ranges the kernel feeds them (1M points each), and
// their values at 0, ±Inf and NaN. Bounds a little above the worst errors measured (printed).
TEST(HrnnFused, KernelMathIsAccurate) {
  namespace f = learned::fused;
  using Fn = f::MathFn;
  struct Sweep {
    Fn fn;
    const char* name;
    double (*ref)(double);
    double lo, hi;
    bool log_spaced;
    double max_ulp;
  };
  const std::vector<Sweep> sweeps{
      {Fn::kExp, "exp", [](double x) { return std::exp(x); }, -87, 88, false, 2},
      {Fn::kLog, "log", [](double x) { return std::log(x); }, 1e-30, 1e30, true, 2},
      {Fn::kLog, "log near 1", [](double x) { return std::log(x); }, 0.5, 2, false, 2},
      {Fn::kSigmoid, "sigmoid", [](double x) { return 1 / (1 + std::exp(-x)); }, -60, 60, false, 4.5},
      {Fn::kSigmoid, "sigmoid near 0", [](double x) { return 1 / (1 + std::exp(-x)); }, -1e-3, 1e-3, false, 4.5},
      {Fn::kTanh, "tanh", [](double x) { return std::tanh(x); }, -10, 10, false, 4.5},
      {Fn::kTanh, "tanh near 0", [](double x) { return std::tanh(x); }, -1e-3, 1e-3, false, 4.5},
      {Fn::kAsinh, "asinh", [](double x) { return std::asinh(x); }, -3000, 3000, false, 3.5},
      {Fn::kAsinh, "asinh near 0", [](double x) { return std::asinh(x); }, -2, 2, false, 3.5},
      {Fn::kRsqrt, "rsqrt", [](double x) { return 1 / std::sqrt(x); }, 1e-16, 1e16, true, 2.5},
  };
  constexpr int64_t n = 1 << 20;
  std::vector<float> x(n), y(n);
  for (const auto& k : available_kernels()) {
    for (const auto& s : sweeps) {
      for (int64_t i = 0; i < n; ++i) {
        const double u = static_cast<double>(i) / (n - 1);
        x[i] = static_cast<float>(s.log_spaced ? s.lo * std::pow(s.hi / s.lo, u) : s.lo + (s.hi - s.lo) * u);
      }
      k.math_f(s.fn, x.data(), y.data(), n);
      double worst = 0, at = 0;
      for (int64_t i = 0; i < n; ++i) {
        const double r = s.ref(x[i]);
        const float rf = static_cast<float>(r);
        const double ulp = std::nextafter(std::fabs(rf), INFINITY) - std::fabs(rf);
        const double e = std::fabs(static_cast<double>(y[i]) - r) / ulp;
        if (!(e <= worst)) worst = e, at = x[i];  // a NaN counts as the worst
      }
      std::printf("%-7s %-15s max %.2f ulp (at %g)\n", k.isa, s.name, worst, at);
      EXPECT_LE(worst, s.max_ulp) << k.isa << " " << s.name << " at " << at;
    }
    const float inf = INFINITY, nan = NAN;
    auto at = [&](Fn fn, float v) {
      float r;
      k.math_f(fn, &v, &r, 1);
      return r;
    };
    for (Fn fn : {Fn::kExp, Fn::kLog, Fn::kSigmoid, Fn::kTanh, Fn::kAsinh, Fn::kRsqrt})
      EXPECT_TRUE(std::isnan(at(fn, nan))) << k.isa << " function " << static_cast<int>(fn) << " of NaN";
    EXPECT_EQ(at(Fn::kExp, inf), inf) << k.isa;
    EXPECT_EQ(at(Fn::kExp, -inf), 0.0f) << k.isa;
    EXPECT_EQ(at(Fn::kLog, 0.0f), -inf) << k.isa;
    EXPECT_EQ(at(Fn::kLog, inf), inf) << k.isa;
    EXPECT_TRUE(std::isnan(at(Fn::kLog, -1.0f))) << k.isa;
    EXPECT_NEAR(at(Fn::kSigmoid, inf), 1.0f, 3e-7) << k.isa;  // AVX2's rcp estimate: 1 ulp off
    EXPECT_LE(at(Fn::kSigmoid, -inf), 1e-30f) << k.isa;
    EXPECT_GE(at(Fn::kSigmoid, -inf), 0.0f) << k.isa;
    EXPECT_NEAR(at(Fn::kSigmoid, 0.0f), 0.5f, 2e-7) << k.isa;
    EXPECT_EQ(at(Fn::kTanh, inf), 1.0f) << k.isa;
    EXPECT_EQ(at(Fn::kTanh, -inf), -1.0f) << k.isa;
    EXPECT_EQ(at(Fn::kTanh, 0.0f), 0.0f) << k.isa;
    EXPECT_EQ(at(Fn::kAsinh, inf), inf) << k.isa;
    EXPECT_EQ(at(Fn::kAsinh, -inf), -inf) << k.isa;
    EXPECT_EQ(at(Fn::kAsinh, 0.0f), 0.0f) << k.isa;
    EXPECT_EQ(at(Fn::kRsqrt, inf), 0.0f) << k.isa;
  }
}

TEST(HrnnFused, EqualsOpByOpOnMultiTensorModels) {
  const std::vector<std::vector<int64_t>> shapes{{20, 33}, {33}, {5, 3, 3, 3}, {1}, {4500}};
  for (const std::string global : {"mean", "last_tensor"}) {
    for (auto dtype : {torch::kFloat, torch::kDouble}) {
      for (bool problem_mean : {true, false}) {
        const auto pr = make_pair(HierarchicalRnnOptions().global_input(global).use_problem_lr_mean(problem_mean), dtype);
        std::string worst;
        const double err = max_error_over_steps(pr, model(shapes, dtype), 20, &worst);
        EXPECT_LE(err, dtype == torch::kFloat ? 1e-5 : 1e-10)
            << global << " " << c10::toString(dtype) << " problem_mean " << problem_mean << " worst: " << worst;
      }
    }
  }
  // Fewer levels and fixed decays go through the kernel too.
  for (auto o : {HierarchicalRnnOptions().level_sizes({10}), HierarchicalRnnOptions().level_sizes({10, 20}),
                 HierarchicalRnnOptions().level_sizes({10, 7, 5}),
                 HierarchicalRnnOptions().learnable_decay(false), HierarchicalRnnOptions().use_gradient_shortcut(false),
                 // Both clips of the log learning rate active (initial rates lie in [log 1e-6, log 1e-2]).
                 HierarchicalRnnOptions().min_log_lr(-9).max_log_lr(-7)}) {
    const auto pr = make_pair(o, torch::kDouble);
    std::string worst;
    EXPECT_LE(max_error_over_steps(pr, model(shapes, torch::kDouble), 20, &worst), 1e-10) << worst;
  }
}

namespace {

// Every input of one step that the backward reaches: θ, g, each state tensor (after a few steps, so
// that none is a constant) and φ; and a scalar of every output with fixed random weights.
struct OneStep {
  TensorList params, grads;
  optim::State state;
  std::vector<torch::Tensor> leaves;  // θ, g, then the state tensors
};

OneStep prepared_step(HierarchicalRnn& rnn, const std::vector<std::vector<int64_t>>& shapes, int warmup,
                      bool row_major = false) {
  OneStep s;
  TensorList p = model(shapes, torch::kDouble);
  const Field field(p, torch::kDouble);
  auto gen = make_generator(4);
  optim::State state = rnn.init(p, gen);
  {
    torch::NoGradGuard no_grad;
    for (int t = 0; t < warmup; ++t) {
      auto r = rnn.update(p, field.grad(p, t), state);
      p = r.params;
      state = r.state;
    }
  }
  s.params = fresh_leaves(p);
  s.grads = fresh_leaves(field.grad(p, warmup));
  s.leaves.insert(s.leaves.end(), s.params.begin(), s.params.end());
  s.leaves.insert(s.leaves.end(), s.grads.begin(), s.grads.end());
  s.state.step = state.step;
  for (auto& kv : state.slots) {
    for (const auto& x : kv.second) {
      // Warm-up states are detached copies: make each a leaf. (At step 0 param_h stays the
      // broadcast of φ's initial vector, so φ gets that gradient.)
      auto leaf = warmup == 0 ? x : (row_major ? x.contiguous() : x.clone()).detach().requires_grad_(true);
      s.state[kv.first].push_back(leaf);
      if (warmup > 0) s.leaves.push_back(leaf);
    }
  }
  return s;
}

torch::Tensor weighted_outputs(const optim::UpdateResult& r) {
  auto gen = make_generator(77);
  torch::Tensor total = torch::zeros({}, torch::kDouble);
  auto add = [&](const torch::Tensor& x) {
    total = total + (x * torch::randn(x.sizes(), gen, torch::kDouble)).sum();
  };
  for (const auto& x : r.params) add(x);
  for (const auto& x : r.steps) add(x);
  for (const auto& kv : r.state.slots)
    for (const auto& x : kv.second) add(x);
  return total;
}

}  // namespace

TEST(HrnnFused, GradientsEqualOpByOpInFloat64) {
  const std::vector<std::vector<int64_t>> shapes{{30, 7}, {7}, {1}, {300}};
  // Passes 0, 2 and 3 (the levels above the coordinates, the lr mean, the rms normalisation) are
  // hand-written too, so every option that changes them is checked, with level sizes that differ.
  const std::vector<std::pair<std::string, HierarchicalRnnOptions>> variants{
      {"mean", HierarchicalRnnOptions()},
      {"last_tensor", HierarchicalRnnOptions().global_input("last_tensor")},
      // Both clips of the log learning rate active, their straight-through gradients.
      {"clipped", HierarchicalRnnOptions().min_log_lr(-9).max_log_lr(-7)},
      {"levels 10,7,5", HierarchicalRnnOptions().level_sizes({10, 7, 5})},
      {"levels 10,7,5 last_tensor", HierarchicalRnnOptions().level_sizes({10, 7, 5}).global_input("last_tensor")},
      {"levels 10,6", HierarchicalRnnOptions().level_sizes({10, 6})},
      {"levels 10", HierarchicalRnnOptions().level_sizes({10})},
      {"tensor lr mean", HierarchicalRnnOptions().use_problem_lr_mean(false)},
      {"no shortcut, fixed decays", HierarchicalRnnOptions().use_gradient_shortcut(false).learnable_decay(false)}};
  for (int warmup : {0, 3}) {
    for (const auto& [global, o] : variants) {
      const auto pr = make_pair(o, torch::kDouble, 11);
      auto grads_of = [&](HierarchicalRnn& rnn) {
        OneStep s = prepared_step(rnn, shapes, warmup);
        auto r = rnn.update(s.params, s.grads, s.state);
        std::vector<torch::Tensor> xs = s.leaves;
        for (const auto& p : rnn.parameters()) xs.push_back(p);
        auto g = torch::autograd::grad({weighted_outputs(r)}, xs, {}, false, false, /*allow_unused=*/true);
        return g;
      };
      const auto gf = grads_of(*pr.fused), gr = grads_of(*pr.reference);
      ASSERT_EQ(gf.size(), gr.size());
      const auto names = pr.reference->named_parameters().keys();
      const size_t first_phi = gr.size() - names.size();
      for (size_t i = 0; i < gr.size(); ++i) {
        const std::string what = i < first_phi ? "input " + std::to_string(i) : "phi " + names[i - first_phi];
        ASSERT_EQ(gf[i].defined(), gr[i].defined()) << what;
        if (!gr[i].defined()) continue;
        EXPECT_LE(rel_err(gf[i], gr[i]), 1e-8) << what << " warmup " << warmup << " " << global;
        if (i >= first_phi && warmup > 0) {
          EXPECT_GT(gr[i].abs().max().item<double>(), 0) << what;
        }
      }
    }
  }
}

TEST(HrnnFused, GradientsMatchFiniteDifferences) {
  torch::manual_seed(2);
  auto rnn = std::make_shared<HierarchicalRnn>();
  rnn->to(torch::kDouble);
  perturb(*rnn);
  ASSERT_TRUE(rnn->uses_fused({torch::zeros({2}, torch::kDouble)}));
  OneStep s = prepared_step(*rnn, {{6, 5}, {5}}, 2, /*row_major=*/true);
  auto f = [&] { return weighted_outputs(rnn->update(s.params, s.grads, s.state)); };
  std::vector<torch::Tensor> xs = s.leaves;
  for (const auto& p : rnn->parameters()) xs.push_back(p);
  ASSERT_GT(xs.size(), 40u);
  const double largest = rule_checks::expect_gradients_match_fd(f, xs, "fused hrnn", 3, /*relative_step=*/true, 1e-6);
  EXPECT_GT(largest, 1e-3);
}

TEST(HrnnFused, SecondOrderMetaGradientMatchesOpByOp) {
  // second_derivatives=true keeps ∇f's graph: the fused VJP w.r.t. g flows into f's double backward.
  auto pr = make_pair(HierarchicalRnnOptions(), torch::kDouble, 5);
  auto meta_grad = [&](HierarchicalRnn& rnn) {
    TensorList p = fresh_leaves(model({{8, 3}, {3}}, torch::kDouble));
    auto gen = make_generator(1);
    auto state = rnn.init(p, gen);
    auto loss_of = [](const TensorList& q) { return (q[0].pow(2).sum() + (q[1] - 1).pow(4).sum()) / 2; };
    torch::Tensor total = torch::zeros({}, torch::kDouble);
    for (int t = 0; t < 4; ++t) {
      auto g = torch::autograd::grad({loss_of(p)}, p, {}, true, /*create_graph=*/true);
      auto r = rnn.update(p, g, state);
      p = r.params;
      state = r.state;
      total = total + loss_of(p);
    }
    return torch::autograd::grad({total}, rnn.parameters());
  };
  const auto gf = meta_grad(*pr.fused), gr = meta_grad(*pr.reference);
  for (size_t i = 0; i < gr.size(); ++i) EXPECT_LE(rel_err(gf[i], gr[i]), 1e-8) << "phi " << i;
}

TEST(HrnnFused, DoubleBackwardThroughTheStepIsRefused) {
  torch::manual_seed(0);
  auto rnn = std::make_shared<HierarchicalRnn>();
  TensorList p = fresh_leaves({torch::randn({5})});
  TensorList g = fresh_leaves({torch::randn({5})});
  auto r = rnn->update(p, g, rnn->init(p));
  // Reaching the fused node with create_graph is an error, not a silently wrong second derivative.
  try {
    torch::autograd::grad({r.params[0].pow(2).sum()}, {g[0]}, {}, true, /*create_graph=*/true);
    ADD_FAILURE() << "no error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("fused=false"), std::string::npos) << e.what();
  }
  // Without create_graph the same backward works.
  EXPECT_NO_THROW(torch::autograd::grad({r.params[0].pow(2).sum()}, {g[0]}));
}

TEST(HrnnFused, MetaTrainingGivesTheSamePhiAsOpByOp) {
  auto run = [](const std::string& optimizer) {
    meta::Trainer trainer(meta::TrainOptions()
                              .optimizer(optimizer)
                              .problem("quadratic:dim=30")
                              .num_steps(20)
                              .unroll_length(5)
                              .objective("log_ratio")
                              .meta_lr(1e-3)
                              .evaluation_period(0)
                              .meta_iterations(5)
                              .seed(7));
    trainer.run(true);
    return trainer.rule()->module()->parameters();
  };
  const auto a = run("hrnn"), b = run("hrnn:fused=false");
  ASSERT_EQ(a.size(), b.size());
  double moved = 0;
  for (size_t i = 0; i < a.size(); ++i) EXPECT_LE((a[i] - b[i]).abs().max().item<double>(), 1e-5) << "phi " << i;
  // Not vacuous: φ changed.
  torch::manual_seed(0);
  auto fresh = std::make_shared<HierarchicalRnn>();
  for (size_t i = 0; i < a.size(); ++i) moved = std::max(moved, (a[i] - fresh->parameters()[i]).abs().max().item<double>());
  EXPECT_GT(moved, 1e-4);
}

TEST(HrnnFused, SameThreadCountGivesTheSameBits) {
  const int before = at::get_num_threads();
  at::set_num_threads(2);
  auto once = [] {
    torch::manual_seed(0);
    auto rnn = std::make_shared<HierarchicalRnn>();
    TensorList p = fresh_leaves(model({{300, 300}, {300}}, torch::kFloat));
    const Field field(p, torch::kFloat);
    auto state = rnn->init(p);
    auto r = rnn->update(p, field.grad(l2o::detach(p), 0), state);
    r = rnn->update(r.params, field.grad(l2o::detach(r.params), 1), r.state);
    const auto g = torch::autograd::grad({(r.params[0] * r.params[0]).sum() + r.params[1].sum()}, rnn->parameters());
    TensorList all = r.params;
    all.insert(all.end(), g.begin(), g.end());
    return l2o::detach(all);
  };
  const auto a = once(), b = once();
  at::set_num_threads(before);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << i;
}

TEST(HrnnFused, NonFiniteGradientsReachTheParameters) {
  torch::NoGradGuard no_grad;
  auto rnn = std::make_shared<HierarchicalRnn>();
  TensorList p{torch::zeros({40})};
  auto g = torch::ones({40});
  g[3] = std::numeric_limits<float>::quiet_NaN();
  g[20] = std::numeric_limits<float>::infinity();
  auto r = rnn->update(p, {g}, rnn->init(p));
  EXPECT_FALSE(torch::isfinite(r.params[0]).all().item<bool>());
  EXPECT_TRUE(std::isnan(r.params[0][3].item<float>()));
}

TEST(HrnnFused, PassesTheRuleChecks) {
  torch::manual_seed(0);
  auto rnn = std::make_shared<HierarchicalRnn>();
  rnn->to(torch::kDouble);
  {
    torch::NoGradGuard no_grad;
    for (auto& p : rnn->parameters()) p.add_(torch::randn_like(p) * 0.05);
  }
  ASSERT_TRUE(rnn->uses_fused({torch::zeros({2}, torch::kDouble)}));
  rule_checks::expect_save_load_continue_equals_uninterrupted(*rnn, "hrnn_fused");
  torch::manual_seed(0);
  rule_checks::expect_adapter_equals_functional(std::make_shared<HierarchicalRnn>());
}
