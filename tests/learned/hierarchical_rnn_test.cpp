#include <l2o/core/error.h>
#include <l2o/core/rng.h>
#include <l2o/learned/hierarchical_rnn.h>
#include <l2o/learned/registry.h>
#include <l2o/optim/adapter.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

using namespace l2o;
using learned::HierarchicalRnn;
using learned::HierarchicalRnnOptions;

namespace {

std::shared_ptr<HierarchicalRnn> make_double(HierarchicalRnnOptions o = {}, uint64_t seed = 0) {
  torch::manual_seed(seed);
  auto h = std::make_shared<HierarchicalRnn>(o);
  h->to(torch::kDouble);
  return h;
}

torch::Tensor param(HierarchicalRnn& h, const std::string& name) { return h.named_parameters()[name]; }

// The reference BiasGRUCell, written out independently of BiasGru::forward.
torch::Tensor gru(HierarchicalRnn& m, int level, const torch::Tensor& x, const torch::Tensor& h,
                  const torch::Tensor& ext) {
  const std::string s = "level" + std::to_string(level) + "_";
  const int64_t n = h.size(1);
  auto xh = torch::cat({x, h}, 1);
  auto gates = xh.matmul(param(m, s + "w_gates")) + param(m, s + "b_gates");
  if (ext.defined()) gates = gates + ext.slice(1, 0, 2 * n);
  auto r = torch::sigmoid(gates.slice(1, 0, n)), u = torch::sigmoid(gates.slice(1, n, 2 * n));
  auto c = torch::cat({x, r * h}, 1).matmul(param(m, s + "w_cand")) + param(m, s + "b_cand");
  if (ext.defined()) c = c + ext.slice(1, 2 * n, 3 * n);
  return u * h + (1 - u) * torch::tanh(c);
}

}  // namespace

TEST(HierarchicalRnn, DefaultsAreThePaperConfiguration) {
  HierarchicalRnnOptions o;
  EXPECT_EQ(o.num_features(), 12);
  EXPECT_EQ(o.level_sizes(), (std::vector<int64_t>{10, 20, 20}));
  auto h = make_double();
  EXPECT_NEAR(param(*h, "level0_b_gates")[0].item<double>(), 2.2, 1e-6);
  EXPECT_NEAR(param(*h, "scl_decay_b").item<double>(), 3.2, 1e-6);
  EXPECT_NEAR(param(*h, "inp_decay_b").item<double>(), 2.2, 1e-6);
  EXPECT_NEAR(param(*h, "lr_momentum_logit").item<double>(), 3.2, 1e-6);
  EXPECT_NEAR(param(*h, "stepsize_offset").item<double>(), -1.0, 1e-6);
  EXPECT_EQ(param(*h, "lr_w").abs().sum().item<double>(), 0.0);
  EXPECT_EQ(param(*h, "level0_w_gates").sizes(), (std::vector<int64_t>{22, 20}));
  // Level 1 reads [10 state units, 12 features]; its fan-in adds its 20 hidden units.
  EXPECT_EQ(param(*h, "level1_w_gates").sizes(), (std::vector<int64_t>{42, 40}));
  // The shortcut starts near 1/4 per scale (std 0.05).
  EXPECT_NEAR(param(*h, "shortcut_w").mean().item<double>(), 0.25, 0.15);
  // Spec round trip.
  auto again = learned::make_rule(h->spec().str());
  EXPECT_EQ(again->spec().str(), h->spec().str());
}

TEST(HierarchicalRnn, FeaturesMatchAHandComputation) {
  auto h = make_double();
  const auto g = torch::tensor({0.3, -2.0, 1e-3}, torch::kDouble);
  const int64_t n = 3;
  std::vector<torch::Tensor> acc(4, torch::tensor({0.1, 0.2, -0.3}, torch::kDouble));
  std::vector<torch::Tensor> ms(4, torch::tensor({0.5, 1.0, 2.0}, torch::kDouble));
  const auto inp = torch::tensor({0.81, 0.5, 0.9}, torch::kDouble);
  const auto scl = torch::tensor({0.9, 0.6, 0.99}, torch::kDouble);
  const auto log_lr = torch::tensor({-5.0, -7.0, -9.5}, torch::kDouble);
  const auto seg = torch::zeros({n}, torch::kLong);
  const auto sizes = torch::tensor({3.0}, torch::kDouble);
  const auto f = h->features(g, acc, ms, inp, scl, log_lr, seg, sizes);
  ASSERT_EQ(f.x.sizes(), (std::vector<int64_t>{3, 12}));
  for (int64_t j = 0; j < n; ++j) {
    double d = inp[j].item<double>();
    const double s = scl[j].item<double>(), gj = g[j].item<double>();
    double scaled[4], logms[4], mean_log = 0;
    for (int i = 0; i < 4; ++i) {
      const double a = gj * (1 - d) + acc[i][j].item<double>() * d;
      const double m = (1 - s) * (a * a + 1e-12) + s * ms[i][j].item<double>();
      scaled[i] = std::asinh(a / std::sqrt(m + 1e-16));
      logms[i] = std::log(m + 1e-16);
      mean_log += logms[i] / 4;
      EXPECT_NEAR(f.accums[i][j].item<double>(), a, 1e-12);
      EXPECT_NEAR(f.ms[i][j].item<double>(), m, 1e-12);
      d = std::sqrt(d);  // d_{i+1} = √d_i
    }
    for (int i = 0; i < 4; ++i) EXPECT_NEAR(f.x[j][i].item<double>(), scaled[i], 1e-12);
    for (int i = 0; i < 3; ++i) EXPECT_NEAR(f.x[j][4 + i].item<double>(), scaled[i] * scaled[i + 1], 1e-12);
    for (int i = 0; i < 4; ++i) EXPECT_NEAR(f.x[j][7 + i].item<double>(), logms[i] - mean_log, 1e-12);
    EXPECT_NEAR(f.x[j][11].item<double>(), log_lr[j].item<double>() - (-5.0 - 7.0 - 9.5) / 3, 1e-12);
  }
}

TEST(HierarchicalRnn, FirstStepUsesTheRawGradientScale) {
  // Before the first step every decay is 0, so acc_i = g and ms_i = g² + 1e-12: the scaled gradient
  // is asinh(g / √(g² + 1e-12 + 1e-16)) — asinh(±1) up to the epsilon, whatever the scale of g.
  auto h = make_double();
  TensorList p = {torch::zeros({4}, torch::kDouble)};
  TensorList g = {torch::tensor({1e-6, -3.0, 250.0, 0.5}, torch::kDouble)};
  auto st = h->init(p);
  torch::NoGradGuard ng;
  auto r = h->update(p, g, st);
  for (int64_t j = 0; j < 4; ++j) {
    const double gj = g[0][j].item<double>();
    EXPECT_NEAR(r.state.at("acc2")[0][j].item<double>(), g[0][j].item<double>(), 1e-12);
    EXPECT_NEAR(std::asinh(r.state.at("acc0")[0][j].item<double>() /
                           std::sqrt(r.state.at("ms0")[0][j].item<double>() + 1e-16)),
                std::asinh(gj / std::sqrt(gj * gj + 1e-12 + 1e-16)), 1e-9);
  }
}

// The whole update of a two-tensor problem, recomputed by hand from the module's parameters.
TEST(HierarchicalRnn, UpdateMatchesAHandComputation) {
  for (const std::string global_input : {"mean", "last_tensor"}) {
    auto h = make_double(HierarchicalRnnOptions().global_input(global_input), 3);
    auto gen = make_generator(7);
    TensorList p = {torch::randn({2, 3}, torch::kDouble), torch::randn({4}, torch::kDouble)};
    TensorList g = {torch::randn({2, 3}, torch::kDouble), torch::randn({4}, torch::kDouble)};
    torch::NoGradGuard ng;
    // Take one step first so that every state entry is non-trivial.
    auto st = optim::detach(h->update(p, g, h->init(p, gen)).state);
    TensorList g2 = {torch::randn({2, 3}, torch::kDouble), torch::randn({4}, torch::kDouble)};
    const auto r = h->update(p, g2, st);

    const auto cat = [](const TensorList& xs) { return torch::cat({xs[0].reshape({-1}), xs[1].reshape({-1})}); };
    const auto seg = torch::tensor({0, 0, 0, 0, 0, 0, 1, 1, 1, 1}, torch::kLong);
    std::vector<torch::Tensor> acc, ms;
    for (int i = 0; i < 4; ++i) {
      acc.push_back(cat(st.at("acc" + std::to_string(i))));
      ms.push_back(cat(st.at("ms" + std::to_string(i))));
    }
    const auto log_lr = cat(st.at("log_lr"));
    const auto f = h->features(cat(g2), acc, ms, cat(st.at("inp_decay")), cat(st.at("scl_decay")), log_lr, seg,
                               torch::tensor({6.0, 4.0}, torch::kDouble));
    const auto layer = torch::cat(st.at("layer_h"), 0);  // [2, 20]
    const auto global = st.at("global_h")[0];             // [1, 20]
    const auto ext_t = layer.matmul(param(*h, "param_bias_w")) + param(*h, "param_bias_b") +
                       global.matmul(param(*h, "global_bias_w")) + param(*h, "global_bias_b");
    const auto ext0 = ext_t.index_select(0, seg);
    const auto ph = gru(*h, 0, f.x, torch::cat(st.at("param_h"), 0), ext0);
    EXPECT_TRUE(torch::allclose(torch::cat(r.state.at("param_h"), 0), ph, 1e-10, 1e-12));
    // Level 1 on the tensor means of [new state, features].
    const auto both = torch::cat({ph, f.x}, 1);
    const auto in1 = torch::stack({both.slice(0, 0, 6).mean(0), both.slice(0, 6, 10).mean(0)});
    const auto ext1 = (global.matmul(param(*h, "layer_bias_w")) + param(*h, "layer_bias_b")).expand({2, -1});
    const auto lh = gru(*h, 1, in1, layer, ext1);
    EXPECT_TRUE(torch::allclose(torch::cat(r.state.at("layer_h"), 0), lh, 1e-10, 1e-12));
    // Level 2 on the mean of the new tensor states, or the last one (the TF reference).
    const auto in2 = global_input == "mean" ? lh.mean(0, true) : lh.slice(0, 1, 2);
    const auto gh = gru(*h, 2, in2, global, torch::Tensor());
    EXPECT_TRUE(torch::allclose(r.state.at("global_h")[0], gh, 1e-10, 1e-12)) << global_input;
    // Read-outs: direction + shortcut, normalised per tensor; log lr with momentum; the step.
    auto delta = ph.matmul(param(*h, "update_w")) + torch::stack(f.scaled, 1).matmul(param(*h, "shortcut_w"));
    const auto rms0 = std::sqrt(delta.slice(0, 0, 6).pow(2).mean().item<double>() + 1e-16);
    const auto rms1 = std::sqrt(delta.slice(0, 6, 10).pow(2).mean().item<double>() + 1e-16);
    delta = torch::cat({delta.slice(0, 0, 6) / rms0, delta.slice(0, 6, 10) / rms1});
    const auto step_log_lr = log_lr + ph.matmul(param(*h, "lr_w")) + param(*h, "lr_b");
    const double m = 1 / (1 + std::exp(-param(*h, "lr_momentum_logit").item<double>()));
    EXPECT_TRUE(torch::allclose(cat(r.state.at("log_lr")), m * log_lr + (1 - m) * step_log_lr, 1e-10, 1e-12));
    const auto step = -torch::exp(step_log_lr + param(*h, "stepsize_offset")) * delta;
    EXPECT_TRUE(torch::allclose(cat(r.steps), step, 1e-10, 1e-14));
    EXPECT_TRUE(torch::allclose(cat(r.params), cat(p) + step, 1e-10, 1e-14));
    const auto scl = torch::sigmoid(ph.matmul(param(*h, "scl_decay_w")) + param(*h, "scl_decay_b"));
    EXPECT_TRUE(torch::allclose(cat(r.state.at("scl_decay")), scl, 1e-10, 1e-12));
  }
}

TEST(HierarchicalRnn, GlobalInputOptionChangesOnlyTheGlobalLevel) {
  auto a = make_double(HierarchicalRnnOptions().global_input("mean"), 5);
  auto b = make_double(HierarchicalRnnOptions().global_input("last_tensor"), 5);
  TensorList p = {torch::randn({3}, torch::kDouble), torch::randn({5}, torch::kDouble)};
  TensorList g = {torch::randn({3}, torch::kDouble), torch::randn({5}, torch::kDouble)};
  torch::NoGradGuard ng;
  auto ra = a->update(p, g, a->init(p)), rb = b->update(p, g, b->init(p));
  EXPECT_TRUE(torch::equal(ra.params[0], rb.params[0]));
  EXPECT_FALSE(torch::allclose(ra.state.at("global_h")[0], rb.state.at("global_h")[0]));
  // One tensor: mean and last coincide.
  auto sa = a->update({p[0]}, {g[0]}, a->init({p[0]})), sb = b->update({p[0]}, {g[0]}, b->init({p[0]}));
  EXPECT_TRUE(torch::allclose(sa.state.at("global_h")[0], sb.state.at("global_h")[0]));
}

TEST(HierarchicalRnn, InitialLearningRatesLieInTheRange) {
  auto h = make_double();
  auto gen = make_generator(11);
  TensorList p = {torch::zeros({10000}, torch::kDouble), torch::zeros({3}, torch::kDouble)};
  auto st = h->init(p, gen);
  for (const auto& l : st.at("log_lr")) {
    EXPECT_GE(l.min().item<double>(), std::log(1e-6) - 1e-9);
    EXPECT_LE(l.max().item<double>(), std::log(1e-2) + 1e-9);
  }
  // Per-coordinate spread of a uniform over half the log range.
  const double width = (std::log(1e-2) - std::log(1e-6)) / 2;
  EXPECT_NEAR(st.at("log_lr")[0].std().item<double>(), width / std::sqrt(12.0), 0.05);
  // Different generators give different draws; the same generator seed the same draw.
  auto gen2 = make_generator(11);
  EXPECT_TRUE(torch::equal(st.at("log_lr")[0], h->init(p, gen2).at("log_lr")[0]));
}

// d(loss after one step)/dφ and /dθ (the gradient depends on θ) by float64 central differences.
TEST(HierarchicalRnn, GradientOfOneStepMatchesFiniteDifferences) {
  auto h = make_double({}, 2);
  const auto A = torch::randn({4, 4}, torch::kDouble);
  auto theta = torch::randn({4}, torch::kDouble);
  TensorList p0 = {theta, torch::randn({3}, torch::kDouble)};
  optim::State st;
  {
    torch::NoGradGuard ng;
    st = optim::detach(h->update(p0, {A.mv(theta), p0[1] * 2}, h->init(p0)).state);
  }
  auto f = [&](const torch::Tensor& th) {
    TensorList p = {th, p0[1]};
    TensorList g = {A.mv(th), p0[1] * 2};
    auto r = h->update(p, g, st);
    return r.params[0].pow(2).sum() + r.params[1].pow(2).sum() + r.state.at("global_h")[0].sum() +
           r.state.at("log_lr")[1].sum();
  };
  auto th = theta.clone().requires_grad_(true);
  const auto params = h->parameters();
  std::vector<torch::Tensor> wrt(params.begin(), params.end());
  wrt.push_back(th);
  const auto grads = torch::autograd::grad({f(th)}, wrt, {}, false, false, /*allow_unused=*/true);
  torch::NoGradGuard ng;
  const double eps = 1e-6;
  int checked = 0;
  for (size_t i = 0; i < wrt.size(); ++i) {
    auto flat = wrt[i].view({-1});
    for (int64_t j = 0; j < std::min<int64_t>(flat.numel(), 3); ++j) {
      const double old = flat[j].item<double>();
      flat[j] = old + eps;
      const double up = f(th.detach()).item<double>();
      flat[j] = old - eps;
      const double down = f(th.detach()).item<double>();
      flat[j] = old;
      const double fd = (up - down) / (2 * eps);
      const double ad = grads[i].defined() ? grads[i].view({-1})[j].item<double>() : 0.0;
      EXPECT_NEAR(ad, fd, 1e-5 * std::max(1.0, std::abs(fd))) << "tensor " << i << " entry " << j;
      ++checked;
    }
  }
  EXPECT_GT(checked, 60);
}

TEST(HierarchicalRnn, StraightThroughClipKeepsTheGradient) {
  auto h = make_double(HierarchicalRnnOptions().max_log_lr(-3), 4);
  TensorList p = {torch::randn({5}, torch::kDouble)};
  TensorList g = {torch::randn({5}, torch::kDouble)};
  {
    torch::NoGradGuard ng;
    param(*h, "lr_b").fill_(50.0);  // step_log_lr far above the clip
  }
  auto r = h->update(p, g, optim::detach(h->init(p)));
  // The step uses the clipped value: |step| = exp(-3 + offset)·|Δ| with RMS(Δ) = 1, so |Δ| ≤ √5.
  EXPECT_LE(r.steps[0].abs().max().item<double>(), std::exp(-3.0 - 1.0) * std::sqrt(5.0) + 1e-12);
  EXPECT_GT(r.steps[0].abs().max().item<double>(), std::exp(-3.0 - 1.0) * 0.5);
  // ... but the gradient with respect to the lr bias is that of the unclipped value (not zero).
  const auto grad = torch::autograd::grad({r.params[0].pow(2).sum()}, {param(*h, "lr_b")})[0];
  EXPECT_GT(grad.abs().item<double>(), 0.0);
  // The lower clip likewise: steps of exactly exp(min_log_lr + offset)·|Δ|, a gradient that is not zero.
  for (bool fused : {false, true}) {
    auto low = make_double(HierarchicalRnnOptions().min_log_lr(-20).fused(fused), 4);
    {
      torch::NoGradGuard ng;
      param(*low, "lr_b").fill_(-50.0);
    }
    auto rl = low->update(p, g, optim::detach(low->init(p)));
    const auto ratio = rl.steps[0].abs() / std::exp(-20.0 - 1.0);
    EXPECT_LE(ratio.max().item<double>(), std::sqrt(5.0) + 1e-9) << "fused " << fused;
    EXPECT_GT(ratio.max().item<double>(), 0.5) << "fused " << fused;
    const auto gl = torch::autograd::grad({rl.params[0].pow(2).sum()}, {param(*low, "lr_b")})[0];
    EXPECT_GT(gl.abs().item<double>(), 0.0) << "fused " << fused;
  }
  // The clip must be an interval inside [-33, 33].
  const auto below = HierarchicalRnnOptions().min_log_lr(-40), empty = HierarchicalRnnOptions().min_log_lr(-3).max_log_lr(-5);
  EXPECT_THROW(below.validate(), l2o::Error);
  EXPECT_THROW(empty.validate(), l2o::Error);
}

TEST(HierarchicalRnn, ShapesAndStateFromOneToAMillionElements) {
  torch::manual_seed(0);
  HierarchicalRnn h;
  TensorList p = {torch::randn({1}), torch::randn({7, 3}), torch::randn({1000}), torch::randn({1000, 1000})};
  TensorList g;
  for (const auto& x : p) g.push_back(torch::randn_like(x) * 0.1);
  torch::NoGradGuard ng;
  auto gen = make_generator(1);
  auto st = h.init(p, gen);
  for (int step = 0; step < 2; ++step) {
    auto r = h.update(p, g, st);
    ASSERT_EQ(r.params.size(), p.size());
    for (size_t i = 0; i < p.size(); ++i) {
      EXPECT_EQ(r.params[i].sizes(), p[i].sizes());
      EXPECT_EQ(r.steps[i].sizes(), p[i].sizes());
      EXPECT_TRUE(torch::isfinite(r.params[i]).all().item<bool>());
      EXPECT_EQ(r.state.at("param_h")[i].sizes(), (std::vector<int64_t>{p[i].numel(), 10}));
      EXPECT_EQ(r.state.at("log_lr")[i].numel(), p[i].numel());
      EXPECT_EQ(r.state.at("ms3")[i].numel(), p[i].numel());
      EXPECT_EQ(r.state.at("layer_h")[i].sizes(), (std::vector<int64_t>{1, 20}));
    }
    EXPECT_EQ(r.state.at("global_h").size(), 1u);
    EXPECT_EQ(r.state.step, step + 1);
    // Dynamic output scale: each tensor's direction has unit RMS, so |step| ≤ exp(max log lr − 1)·√n.
    p = r.params;
    st = r.state;
  }
}

TEST(HierarchicalRnn, ReducedConfigurationsRun) {
  torch::manual_seed(0);
  const std::vector<HierarchicalRnnOptions> configs = {
      HierarchicalRnnOptions().level_sizes({8}),
      HierarchicalRnnOptions().level_sizes({8, 6}),
      HierarchicalRnnOptions().num_gradient_scales(1),
      HierarchicalRnnOptions().dynamic_output_scale(false).use_relative_lr(false),
      HierarchicalRnnOptions().learnable_decay(false).learnable_rnn_init(false).use_gradient_shortcut(false),
      HierarchicalRnnOptions().use_extreme_indicator(true).use_lr_shortcut(true).use_multiple_scale_decays(true)
          .use_problem_lr_mean(false).use_log_means_squared(false).use_grad_products(false),
  };
  for (const auto& o : configs) {
    HierarchicalRnn h(o);
    TensorList p = {torch::randn({3, 2}), torch::randn({4})};
    TensorList g = {torch::randn({3, 2}), torch::randn({4})};
    auto st = h.init(p);
    for (int i = 0; i < 3; ++i) {
      auto r = h.update(p, g, st);
      p = l2o::detach(r.params);
      st = optim::detach(r.state);
    }
    EXPECT_TRUE(torch::isfinite(p[0]).all().item<bool>()) << h.spec().str();
    // Spec round trip of every configuration.
    EXPECT_EQ(learned::make_rule(h.spec().str())->spec().str(), h.spec().str());
  }
  EXPECT_THROW(HierarchicalRnn(HierarchicalRnnOptions().level_sizes({1, 2, 3, 4})), std::exception);
  EXPECT_THROW(learned::make_rule("hrnn:global_input=first"), std::exception);
  EXPECT_THROW(learned::make_rule("hrnn:levels=10-x"), std::exception);
}

TEST(HierarchicalRnn, AdapterEqualsTheFunctionalRule) {
  torch::manual_seed(0);
  auto h = std::make_shared<HierarchicalRnn>();
  auto w = torch::randn({6}).requires_grad_(true);
  const auto target = torch::randn({6});
  optim::RuleOptimizer opt({w}, h);
  TensorList p = {w.detach().clone()};
  auto st = h->init(p);
  for (int i = 0; i < 5; ++i) {
    opt.zero_grad();
    (w - target).pow(2).sum().backward();
    opt.step();
    torch::NoGradGuard ng;
    auto r = h->update(p, {2 * (p[0] - target)}, st);
    p = r.params;
    st = optim::detach(r.state);
  }
  EXPECT_TRUE(torch::allclose(w.detach(), p[0], 1e-6, 1e-7));
}
