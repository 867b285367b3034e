// Golden comparisons of the functional baselines with torch::optim, and convergence checks.
#include <l2o/core/error.h>
#include <l2o/learned/registry.h>
#include <l2o/optim/adagrad.h>
#include <l2o/optim/adam.h>
#include <l2o/optim/rmsprop.h>
#include <l2o/optim/sgd.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>

using namespace l2o;

namespace {

// A non-convex two-tensor objective with curvature on several scales (float64).
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

// Runs torch::optim and the functional rule side by side for 50 steps; returns max relative error.
double golden(const std::function<std::unique_ptr<torch::optim::Optimizer>(std::vector<torch::Tensor>)>& make_torch,
              const optim::UpdateRule& rule, int steps = 50) {
  TensorList ref = initial();
  for (auto& t : ref) t.requires_grad_(true);
  auto opt = make_torch(ref);
  TensorList ours = l2o::detach(initial());
  optim::State state = rule.init(ours);
  double worst = 0;
  for (int s = 0; s < steps; ++s) {
    opt->zero_grad();
    objective(ref).backward();
    opt->step();
    TensorList leaves = fresh_leaves(ours);
    const TensorList grads = torch::autograd::grad({objective(leaves)}, leaves);
    auto r = rule.update(l2o::detach(leaves), grads, state);
    ours = l2o::detach(r.params);
    state = r.state;
    for (size_t i = 0; i < ours.size(); ++i) {
      const double err = ((ours[i] - ref[i].detach()).abs() / (ref[i].detach().abs() + 1e-12)).max().item<double>();
      worst = std::max(worst, err);
    }
  }
  return worst;
}

}  // namespace

TEST(Golden, Sgd) {
  optim::Sgd rule(optim::SgdOptions().lr(0.01));
  EXPECT_LT(golden([](auto p) { return std::make_unique<torch::optim::SGD>(p, torch::optim::SGDOptions(0.01)); }, rule),
            1e-6);
}

TEST(Golden, SgdWithEverything) {
  optim::Sgd rule(optim::SgdOptions().lr(0.01).momentum(0.8).dampening(0.1).weight_decay(0.01));
  EXPECT_LT(golden([](auto p) {
              return std::make_unique<torch::optim::SGD>(
                  p, torch::optim::SGDOptions(0.01).momentum(0.8).dampening(0.1).weight_decay(0.01));
            },
                   rule),
            1e-6);
}

TEST(Golden, Momentum) {
  auto rule = learned::make_rule("momentum:lr=0.01");
  EXPECT_LT(golden([](auto p) { return std::make_unique<torch::optim::SGD>(p, torch::optim::SGDOptions(0.01).momentum(0.9)); },
                   *rule),
            1e-6);
}

TEST(Golden, Nesterov) {
  auto rule = learned::make_rule("nag:lr=0.01");
  EXPECT_LT(golden([](auto p) {
              return std::make_unique<torch::optim::SGD>(p, torch::optim::SGDOptions(0.01).momentum(0.9).nesterov(true));
            },
                   *rule),
            1e-6);
}

TEST(Golden, Adam) {
  optim::Adam rule(optim::AdamOptions().lr(0.05));
  EXPECT_LT(golden([](auto p) { return std::make_unique<torch::optim::Adam>(p, torch::optim::AdamOptions(0.05)); }, rule),
            1e-6);
}

TEST(Golden, AdamAmsgradWeightDecay) {
  optim::Adam rule(optim::AdamOptions().lr(0.05).amsgrad(true).weight_decay(0.1).beta1(0.8).beta2(0.99));
  EXPECT_LT(golden([](auto p) {
              return std::make_unique<torch::optim::Adam>(
                  p, torch::optim::AdamOptions(0.05).amsgrad(true).weight_decay(0.1).betas({0.8, 0.99}));
            },
                   rule),
            1e-6);
}

TEST(Golden, Rmsprop) {
  optim::Rmsprop rule(optim::RmspropOptions().lr(0.01));
  EXPECT_LT(golden([](auto p) { return std::make_unique<torch::optim::RMSprop>(p, torch::optim::RMSpropOptions(0.01)); },
                   rule),
            1e-6);
}

TEST(Golden, RmspropCenteredMomentum) {
  optim::Rmsprop rule(optim::RmspropOptions().lr(0.005).centered(true).momentum(0.5).weight_decay(0.01).alpha(0.9));
  EXPECT_LT(golden([](auto p) {
              return std::make_unique<torch::optim::RMSprop>(
                  p, torch::optim::RMSpropOptions(0.005).centered(true).momentum(0.5).weight_decay(0.01).alpha(0.9));
            },
                   rule),
            1e-6);
}

TEST(Golden, Adagrad) {
  optim::Adagrad rule(optim::AdagradOptions().lr(0.1).lr_decay(0.01).initial_accumulator_value(0.1));
  EXPECT_LT(golden([](auto p) {
              return std::make_unique<torch::optim::Adagrad>(
                  p, torch::optim::AdagradOptions(0.1).lr_decay(0.01).initial_accumulator_value(0.1));
            },
                   rule),
            1e-6);
}

// Every baseline drives ½‖θ − c‖² to its minimum 0.
TEST(Convergence, EveryBaselineReachesTheOptimum) {
  for (const std::string spec : {"sgd:lr=0.1", "momentum:lr=0.05", "nag:lr=0.05", "rmsprop:lr=0.001", "adam:lr=0.01",
                                 "adagrad:lr=0.5"}) {
    auto rule = learned::make_rule(spec);
    torch::manual_seed(3);
    const auto c = torch::randn({10}, torch::kDouble);
    TensorList p = {torch::zeros({10}, torch::kDouble)};
    auto state = rule->init(p);
    for (int t = 0; t < 2000; ++t) {
      torch::NoGradGuard g;
      auto r = rule->update(p, {p[0] - c}, state);
      p = r.params;
      state = r.state;
    }
    // Constant-rate RMSProp and Adam settle in an O(lr²) neighbourhood; 1e-5 of f₀ ≈ 5 is far below
    // anything a wrong update would reach.
    EXPECT_LT(0.5 * (p[0] - c).pow(2).sum().item<double>(), 5e-5) << spec;
  }
}

TEST(Rules, UpdateDoesNotModifyInputsAndReturnsSteps) {
  auto rule = learned::make_rule("adam:lr=0.1");
  TensorList p = {torch::ones({4})};
  TensorList g = {torch::full({4}, 2.0)};
  auto state = rule->init(p);
  auto r = rule->update(p, g, state);
  EXPECT_TRUE(torch::equal(p[0], torch::ones({4})));
  EXPECT_TRUE(torch::equal(state.at("exp_avg")[0], torch::zeros({4})));
  EXPECT_TRUE(torch::allclose(r.steps[0], r.params[0] - p[0]));
  EXPECT_EQ(r.state.step, 1);
}

TEST(Rules, SpecRoundTripsAndBadOptionsFail) {
  for (const std::string spec : {"sgd:lr=0.3", "nag", "rmsprop:centered=true", "adam:amsgrad=true", "adagrad", "lstm"}) {
    auto rule = learned::make_rule(spec);
    EXPECT_EQ(learned::make_rule(rule->spec().str())->spec().str(), rule->spec().str());
  }
  EXPECT_THROW(learned::make_rule("adamm"), l2o::Error);
  EXPECT_THROW(learned::make_rule("adam:lr=-1"), l2o::Error);
  EXPECT_THROW(learned::make_rule("adam:learning_rate=0.1"), l2o::Error);
  EXPECT_THROW(learned::make_rule("sgd:nesterov=true"), l2o::Error);
}
