// CoordinatewiseRNN (L2O-Scale): formula, state, derivatives, checkpoints and the adapter.
#include "rule_checks.h"

#include <l2o/core/error.h>
#include <l2o/core/rng.h>
#include <l2o/learned/coordinatewise_rnn.h>
#include <l2o/learned/registry.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

using namespace l2o;

namespace {
std::shared_ptr<learned::CoordinatewiseRnn> make_double(learned::CoordinatewiseRnnOptions o = {}) {
  torch::manual_seed(4);
  auto rule = std::make_shared<learned::CoordinatewiseRnn>(o);
  rule->to(torch::kDouble);
  return rule;
}

torch::Tensor param(const torch::nn::Module& m, const std::string& name) {
  for (const auto& kv : m.named_parameters()) {
    if (kv.key() == name) return kv.value();
  }
  for (const auto& kv : m.named_buffers()) {
    if (kv.key() == name) return kv.value();
  }
  ADD_FAILURE() << "no tensor " << name;
  return {};
}

// One coordinate, written from the reference's equations independently of the batched implementation:
// returns the step and updates (ms, d, lr, h) in place.
double reference_step(const torch::nn::Module& m, int64_t layers, int64_t units, double g, double& ms, double& d,
                      double& lr, std::vector<torch::Tensor>& h) {
  ms = (1 - d) * (g * g + 1e-12) + d * ms;
  torch::Tensor x = torch::full({1, 1}, std::asinh(g / std::sqrt(ms + 1e-16)), torch::kDouble);
  for (int64_t l = 0; l < layers; ++l) {
    const std::string s = "gru" + std::to_string(l);
    const auto wg = param(m, s + "_gate_w"), bg = param(m, s + "_gate_b");
    const auto wc = param(m, s + "_cand_w"), bc = param(m, s + "_cand_b");
    const int64_t in = x.size(1);
    // [x, h]·W = x·W[:in] + h·W[in:]
    const auto gates = torch::sigmoid(x.mm(wg.narrow(0, 0, in)) + h[l].mm(wg.narrow(0, in, units)) + bg);
    const auto r = gates.narrow(1, 0, units), u = gates.narrow(1, units, units);
    const auto c = torch::tanh(x.mm(wc.narrow(0, 0, in)) + (r * h[l]).mm(wc.narrow(0, in, units)) + bc);
    h[l] = u * h[l] + (1 - u) * c;
    x = h[l];
  }
  const double delta = x.mm(param(m, "update_w")).item<double>();
  d = 1 / (1 + std::exp(-(x.mm(param(m, "decay_w")).item<double>() + param(m, "decay_b").item<double>())));
  lr *= 2 / (1 + std::exp(-(x.mm(param(m, "lr_w")).item<double>() + param(m, "lr_b").item<double>())));
  return -lr * delta;
}
}  // namespace

TEST(Crnn, StateShapesAndInitialValues) {
  auto rule = make_double();
  TensorList p = {torch::zeros({3, 4}, torch::kDouble), torch::zeros({7}, torch::kDouble)};
  auto gen = make_generator(1);
  const auto s = rule->init(p, gen);
  for (const std::string slot : {"rms", "decay", "learning_rate", "h0", "h1"}) ASSERT_EQ(s.at(slot).size(), 2u) << slot;
  EXPECT_EQ(s.at("rms")[0].sizes(), (std::vector<int64_t>{12}));
  EXPECT_EQ(s.at("h1")[1].sizes(), (std::vector<int64_t>{7, 20}));
  EXPECT_TRUE(torch::equal(s.at("rms")[1], torch::ones({7}, torch::kDouble)));
  EXPECT_TRUE(torch::equal(s.at("decay")[0], torch::ones({12}, torch::kDouble)));
  // Every coordinate starts from the learned initial hidden vector, layer l from its slice.
  const auto init = param(*rule, "init_hidden");
  EXPECT_TRUE(torch::equal(s.at("h1")[0][5], init[0].narrow(0, 20, 20)));
  // Initial learning rates are log-uniform in [1e-6, 1e-2], reproducible from the generator.
  const auto lr = torch::cat(s.at("learning_rate"));
  EXPECT_GE(lr.min().item<double>(), 1e-6);
  EXPECT_LE(lr.max().item<double>(), 1e-2);
  EXPECT_GT(lr.max().item<double>() / lr.min().item<double>(), 10);
  auto same = make_generator(1), other = make_generator(2);
  EXPECT_TRUE(torch::equal(torch::cat(rule->init(p, same).at("learning_rate")), lr));
  EXPECT_FALSE(torch::equal(torch::cat(rule->init(p, other).at("learning_rate")), lr));
  auto fixed = make_double(learned::CoordinatewiseRnnOptions().init_lr_min(0.1).init_lr_max(0.1));
  EXPECT_TRUE(torch::allclose(torch::cat(fixed->init(p).at("learning_rate")), torch::full({19}, 0.1, torch::kDouble)));
}

TEST(Crnn, BatchedUpdateMatchesPerCoordinateReference) {
  auto rule = make_double(learned::CoordinatewiseRnnOptions().zero_init_lr_weights(false));
  {
    torch::NoGradGuard g;
    param(*rule, "lr_b").fill_(0.3);
  }
  TensorList p = {torch::randn({2, 3}, torch::kDouble), torch::randn({4}, torch::kDouble)};
  auto gen = make_generator(5);
  optim::State state = rule->init(p, gen);
  const optim::State s0 = optim::detach(state);
  std::vector<TensorList> grads = {{torch::randn({2, 3}, torch::kDouble), torch::randn({4}, torch::kDouble) * 1e-3},
                                   {torch::randn({2, 3}, torch::kDouble), torch::randn({4}, torch::kDouble) * 1e-3}};
  std::vector<TensorList> steps;
  torch::NoGradGuard no_grad;
  for (const auto& g : grads) {
    auto r = rule->update(p, g, state);
    steps.push_back(r.steps);
    p = r.params;
    state = r.state;
  }
  for (size_t i = 0; i < p.size(); ++i) {
    for (int64_t k = 0; k < p[i].numel(); ++k) {
      double ms = s0.at("rms")[i][k].item<double>(), d = s0.at("decay")[i][k].item<double>();
      double lr = s0.at("learning_rate")[i][k].item<double>();
      std::vector<torch::Tensor> h = {s0.at("h0")[i][k].unsqueeze(0), s0.at("h1")[i][k].unsqueeze(0)};
      for (size_t t = 0; t < grads.size(); ++t) {
        const double g = grads[t][i].reshape({-1})[k].item<double>();
        const double expected = reference_step(*rule, 2, 20, g, ms, d, lr, h);
        EXPECT_NEAR(steps[t][i].reshape({-1})[k].item<double>(), expected, 1e-12 + 1e-9 * std::abs(expected))
            << "tensor " << i << " coordinate " << k << " step " << t;
      }
      EXPECT_NEAR(state.at("rms")[i][k].item<double>(), ms, 1e-12);
      EXPECT_NEAR(state.at("decay")[i][k].item<double>(), d, 1e-12);
      EXPECT_NEAR(state.at("learning_rate")[i][k].item<double>(), lr, 1e-12 * lr + 1e-300);
    }
  }
  EXPECT_EQ(state.step, 2);
}

TEST(Crnn, FirstStepIsScaledByTheInitialRmsOfOne) {
  // The reference starts ms = 1 with decay 1, so the first input is asinh(g), not g/|g|: two gradients
  // of different sizes give different first steps (a per-coordinate sign-like input would not).
  auto rule = make_double(learned::CoordinatewiseRnnOptions().init_lr_min(0.1).init_lr_max(0.1));
  TensorList p = {torch::zeros({2}, torch::kDouble)};
  torch::NoGradGuard no_grad;
  auto r = rule->update(p, {torch::tensor({1e-3, 1.0}, torch::kDouble)}, rule->init(p));
  EXPECT_TRUE(torch::allclose(r.state.at("rms")[0], torch::ones({2}, torch::kDouble)));
  EXPECT_GT(std::abs(r.steps[0][0].item<double>() - r.steps[0][1].item<double>()), 1e-6);
}

TEST(Crnn, LearningRateChangesByAFactorInZeroTwo) {
  auto rule = make_double(learned::CoordinatewiseRnnOptions().init_lr_min(0.05).init_lr_max(0.05));
  TensorList p = {torch::randn({50}, torch::kDouble)};
  torch::NoGradGuard no_grad;
  // Zero-initialised lr weights and bias: 2σ(0) = 1, the learning rate is unchanged.
  auto r = rule->update(p, {torch::randn({50}, torch::kDouble)}, rule->init(p));
  EXPECT_TRUE(torch::allclose(r.state.at("learning_rate")[0], torch::full({50}, 0.05, torch::kDouble)));
  // |h| < 1 for a GRU, so |step| ≤ lr·‖w‖₁.
  const double bound = 0.05 * param(*rule, "update_w").abs().sum().item<double>();
  EXPECT_LE(r.steps[0].abs().max().item<double>(), bound);
  EXPECT_GT(r.steps[0].abs().max().item<double>(), 0);
  param(*rule, "lr_w").normal_(0, 10);
  const auto lr = rule->update(p, {torch::randn({50}, torch::kDouble)}, r.state).state.at("learning_rate")[0] / 0.05;
  EXPECT_GT(lr.min().item<double>(), 0);
  EXPECT_LT(lr.max().item<double>(), 2);
  EXPECT_GT((lr - 1).abs().max().item<double>(), 0.1);
}

TEST(Crnn, IsCoordinatewise) {
  auto rule = make_double(learned::CoordinatewiseRnnOptions().init_lr_min(0.1).init_lr_max(0.1));
  TensorList p = {torch::randn({3, 4}, torch::kDouble), torch::randn({7}, torch::kDouble)};
  TensorList g = {torch::randn({3, 4}, torch::kDouble), torch::randn({7}, torch::kDouble)};
  torch::NoGradGuard no_grad;
  auto r = rule->update(p, g, rule->init(p));
  ASSERT_EQ(r.params[0].sizes(), p[0].sizes());
  auto r2 = rule->update({p[1].flip(0)}, {g[1].flip(0)}, rule->init({p[1]}));
  EXPECT_TRUE(torch::allclose(r2.steps[0], r.steps[1].flip(0), 1e-12, 1e-14));
  EXPECT_TRUE(torch::allclose(r.params[1] - p[1], r.steps[1]));
}

// Derivatives of the objective after three updates from a fresh state (so the initial hidden vector,
// the decay and the learning-rate read-outs all matter) by float64 central differences.
TEST(Crnn, GradientsMatchFiniteDifferences) {
  auto rule = make_double(learned::CoordinatewiseRnnOptions().init_lr_min(0.02).init_lr_max(0.2).zero_init_lr_weights(false));
  const rule_checks::Quadratic q;
  TensorList theta = q.init();
  for (auto& t : theta) t.requires_grad_(true);
  auto f = [&]() {
    auto gen = make_generator(9);
    TensorList p = theta;
    optim::State s = rule->init(p, gen);
    for (int t = 0; t < 3; ++t) {
      auto r = rule->update(p, q.grad(p), s);
      p = r.params;
      s = r.state;
    }
    return p[0].pow(2).sum() + p[1].pow(3).sum();
  };
  EXPECT_GT(rule_checks::expect_gradients_match_fd(f, rule->parameters(), "phi"), 1e-3);
  EXPECT_GT(rule_checks::expect_gradients_match_fd(f, theta, "theta"), 1e-3);
}

TEST(Crnn, SaveLoadContinueEqualsUninterrupted) {
  auto rule = make_double();
  {
    torch::NoGradGuard g;
    for (auto& p : rule->parameters()) p.add_(torch::randn_like(p) * 0.1);
  }
  rule_checks::expect_save_load_continue_equals_uninterrupted(*rule, "crnn");
}

TEST(Crnn, AdapterEqualsFunctionalRule) {
  torch::manual_seed(5);
  rule_checks::expect_adapter_equals_functional(learned::make_rule("crnn:init_lr_max=0.1,init_lr_min=0.01"));
}

TEST(Crnn, SpecRoundTripAndClearErrors) {
  auto rule = learned::make_rule("crnn:cell_size=8,num_cells=3,learnable_decay=false");
  EXPECT_EQ(rule->name(), "crnn");
  EXPECT_EQ(learned::make_rule(rule->spec().str())->spec().str(), rule->spec().str());
  // No learnable decay: the decay read-out is a buffer, not φ; 3 GRUs of 8 units otherwise.
  auto* m = rule->module();
  int64_t n = 0;
  for (const auto& p : m->parameters()) n += p.numel();
  EXPECT_EQ(n, (9 * 16 + 16 + 9 * 8 + 8) + 2 * (16 * 16 + 16 + 16 * 8 + 8) + 8 + (8 + 1) + 24);
  try {
    learned::make_rule("crnn:init_lr_min=0.1,init_lr_max=0.01");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("init_lr_max=0.01"), std::string::npos) << e.what();
  }
  EXPECT_THROW(learned::make_rule("crnn:cell_sizes=20"), Error);
}
