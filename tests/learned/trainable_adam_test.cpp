// TrainableAdam: equal to torch::optim::Adam at its initial φ, derivatives in φ and θ, checkpoints,
// the adapter and convergence.
#include "rule_checks.h"

#include <l2o/core/error.h>
#include <l2o/core/rng.h>
#include <l2o/learned/registry.h>
#include <l2o/learned/trainable_adam.h>
#include <l2o/optim/adam.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

using namespace l2o;

namespace {
// The objective of rules_test.cpp's golden comparisons: non-convex, two tensors, several curvatures.
torch::Tensor objective(const TensorList& p) {
  const auto& a = p[0];
  const auto& b = p[1];
  return (a - 1).pow(2).sum() + 10 * (b - a.sum() * 0.1).pow(2).sum() + 0.5 * torch::sin(3 * a).sum() +
         (a.pow(2).sum() * b.pow(2).sum()) * 0.01;
}

TensorList initial() {
  torch::manual_seed(7);
  return {torch::randn({3, 4}, torch::kDouble), torch::randn({5}, torch::kDouble)};
}

std::shared_ptr<learned::TrainableAdam> make_double(learned::TrainableAdamOptions o) {
  auto rule = std::make_shared<learned::TrainableAdam>(o);
  rule->to(torch::kDouble);
  rule->reset_parameters();  // φ computed in float64 from the options
  return rule;
}

// torch::optim::Adam and the rule side by side for 50 steps (float64); returns the max relative error.
double golden(const torch::optim::AdamOptions& torch_options, const optim::UpdateRule& rule, int steps = 50) {
  TensorList ref = initial();
  for (auto& t : ref) t.requires_grad_(true);
  torch::optim::Adam opt(ref, torch_options);
  TensorList ours = l2o::detach(initial());
  optim::State state = rule.init(ours);
  double worst = 0;
  for (int s = 0; s < steps; ++s) {
    opt.zero_grad();
    objective(ref).backward();
    opt.step();
    TensorList leaves = fresh_leaves(ours);
    const TensorList grads = torch::autograd::grad({objective(leaves)}, leaves);
    torch::NoGradGuard no_grad;
    auto r = rule.update(l2o::detach(leaves), grads, state);
    ours = r.params;
    state = r.state;
    for (size_t i = 0; i < ours.size(); ++i) {
      const double err = ((ours[i] - ref[i].detach()).abs() / (ref[i].detach().abs() + 1e-12)).max().item<double>();
      worst = std::max(worst, err);
    }
  }
  return worst;
}

learned::TrainableAdamOptions exact() { return learned::TrainableAdamOptions().eps_offset(0).sqrt_eps(0); }
}  // namespace

TEST(TrainableAdam, PhiIsFourGlobalScalars) {
  learned::TrainableAdam rule(learned::TrainableAdamOptions().lr(0.01).beta1(0.8).beta2(0.99).eps(1e-6));
  const auto params = rule.named_parameters();
  ASSERT_EQ(params.size(), 4u);
  for (const auto& kv : params) EXPECT_EQ(kv.value().dim(), 0) << kv.key();
  EXPECT_NEAR(params["log_lr"].item<double>(), std::log(0.01), 1e-6);
  EXPECT_NEAR(torch::sigmoid(params["beta1_logit"]).item<double>(), 0.8, 1e-6);
  EXPECT_NEAR(torch::sigmoid(params["beta2_logit"]).item<double>(), 0.99, 1e-6);
  EXPECT_NEAR(params["log_eps"].item<double>(), std::log(1e-6), 1e-5);
}

TEST(TrainableAdam, StateShapesAndSecondMomentIsUpdated) {
  auto rule = make_double(exact());
  TensorList p = {torch::zeros({3, 4}, torch::kDouble), torch::zeros({7}, torch::kDouble)};
  TensorList g = {torch::full({3, 4}, 2.0, torch::kDouble), torch::full({7}, -1.0, torch::kDouble)};
  torch::NoGradGuard no_grad;
  auto r = rule->update(p, g, rule->init(p));
  ASSERT_EQ(r.state.at("exp_avg_sq").size(), 2u);
  EXPECT_EQ(r.state.at("exp_avg")[0].sizes(), p[0].sizes());
  EXPECT_EQ(r.params[1].sizes(), p[1].sizes());
  // The reference's bug would leave v at 0; here v = (1 − β₂)g².
  EXPECT_TRUE(torch::allclose(r.state.at("exp_avg_sq")[0], torch::full({3, 4}, 0.001 * 4, torch::kDouble)));
  // First Adam step: −lr·sign(g) (up to ε).
  EXPECT_TRUE(torch::allclose(r.steps[1], torch::full({7}, 1e-3, torch::kDouble), 1e-6, 0));
}

TEST(TrainableAdam, GoldenAgainstTorchAdamAtInitialPhi) {
  EXPECT_LT(golden(torch::optim::AdamOptions(0.05), *make_double(exact().lr(0.05))), 1e-6);
  EXPECT_LT(golden(torch::optim::AdamOptions(0.02).betas({0.8, 0.99}).eps(1e-4),
                   *make_double(exact().lr(0.02).beta1(0.8).beta2(0.99).eps(1e-4))),
            1e-6);
  // The reference's stabilisers (1e-10 under the root and on ε) move nothing visible on this problem.
  EXPECT_LT(golden(torch::optim::AdamOptions(0.05), *make_double(learned::TrainableAdamOptions().lr(0.05))), 1e-6);
  // And the comparison can fail: another β₂ is visibly different.
  EXPECT_GT(golden(torch::optim::AdamOptions(0.05), *make_double(exact().lr(0.05).beta2(0.99))), 1e-3);
}

TEST(TrainableAdam, GradientsMatchFiniteDifferences) {
  auto rule = make_double(learned::TrainableAdamOptions().lr(0.1).eps(0.1));
  const rule_checks::Quadratic q;
  TensorList theta = q.init();
  for (auto& t : theta) t.requires_grad_(true);
  auto f = [&]() {
    TensorList p = theta;
    optim::State s = rule->init(p);
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

TEST(TrainableAdam, MetaGradientIsFiniteForCoordinatesWithZeroGradient) {
  // Why sqrt_eps exists: a coordinate whose gradient is always 0 has v = 0.
  auto rule = make_double(learned::TrainableAdamOptions());
  TensorList p = {torch::ones({2}, torch::kDouble)};
  optim::State s = rule->init(p);
  for (int t = 0; t < 2; ++t) {
    auto r = rule->update(p, {torch::tensor({1.0, 0.0}, torch::kDouble) * p[0]}, s);
    p = r.params;
    s = r.state;
  }
  const auto grads = torch::autograd::grad({p[0].sum()}, rule->parameters());
  for (const auto& g : grads) EXPECT_TRUE(torch::isfinite(g).all().item<bool>());
}

TEST(TrainableAdam, SaveLoadContinueEqualsUninterrupted) {
  auto rule = make_double(learned::TrainableAdamOptions().lr(0.05));
  {
    torch::NoGradGuard g;
    for (auto& p : rule->parameters()) p.add_(0.3);
  }
  rule_checks::expect_save_load_continue_equals_uninterrupted(*rule, "trainable_adam");
}

TEST(TrainableAdam, AdapterEqualsFunctionalRule) {
  rule_checks::expect_adapter_equals_functional(learned::make_rule("trainable_adam:lr=0.01"));
}

// At its initial φ it converges like Adam on ½‖θ − c‖² (known optimum c).
TEST(TrainableAdam, ConvergesLikeAdamAtInit) {
  auto rule = make_double(learned::TrainableAdamOptions().lr(0.01));
  optim::Adam adam(optim::AdamOptions().lr(0.01));
  torch::manual_seed(3);
  const auto c = torch::randn({10}, torch::kDouble);
  TensorList p = {torch::zeros({10}, torch::kDouble)}, a = p;
  auto state = rule->init(p), adam_state = adam.init(a);
  torch::NoGradGuard g;
  for (int t = 0; t < 2000; ++t) {
    auto r = rule->update(p, {p[0] - c}, state);
    p = r.params;
    state = r.state;
    auto ra = adam.update(a, {a[0] - c}, adam_state);
    a = ra.params;
    adam_state = ra.state;
  }
  const double f = 0.5 * (p[0] - c).pow(2).sum().item<double>(), f0 = 0.5 * c.pow(2).sum().item<double>();
  EXPECT_LT(f, 1e-5 * f0);
  EXPECT_TRUE(torch::allclose(p[0], a[0], 1e-6, 1e-8));
}

TEST(TrainableAdam, SpecRoundTripAndClearErrors) {
  auto rule = learned::make_rule("trainable_adam:lr=0.01,beta2=0.99");
  EXPECT_EQ(rule->name(), "trainable_adam");
  EXPECT_EQ(learned::make_rule(rule->spec().str())->spec().str(), rule->spec().str());
  try {
    learned::make_rule("trainable_adam:beta1=1");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("beta1=1"), std::string::npos) << e.what();
  }
  EXPECT_THROW(learned::make_rule("trainable_adam:eps=0"), Error);
}
