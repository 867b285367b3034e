#include <l2o/core/rng.h>
#include <l2o/learned/lstm.h>
#include <l2o/learned/registry.h>
#include <l2o/meta/unroll.h>
#include <l2o/problems/quadratic.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

using namespace l2o;

namespace {
meta::Trajectory start(const optim::UpdateRule& rule, const problems::Problem& p, at::Generator& gen,
                       torch::Dtype dtype = torch::kFloat) {
  meta::Trajectory t;
  for (const auto& x : p.init_params(gen)) t.params.push_back(x.to(dtype));
  t.state = rule.init(t.params);
  return t;
}
}  // namespace

// The full second-order meta-gradient of a 2-step unroll against float64 central differences.
TEST(Unroll, MetaGradientOfTwoStepsMatchesFiniteDifferences) {
  torch::manual_seed(0);
  auto lstm = std::make_shared<learned::CoordinatewiseLstm>(learned::LstmOptions().output_scale(0.1));
  lstm->to(torch::kDouble);
  auto gen = make_generator(1);
  problems::DmQuadratic q(2, 3, 0.5, gen);
  const meta::Trajectory s = start(*lstm, q, gen, torch::kDouble);
  meta::UnrollOptions o;
  o.length = 2;
  o.second_derivatives = true;
  auto meta_loss = [&]() {
    auto g = make_generator(2);
    return meta::unroll(*lstm, q, s, o, g).meta_loss;
  };
  const auto params = lstm->parameters();
  const auto grads = torch::autograd::grad({meta_loss()}, params);
  int checked = 0;
  for (size_t i = 0; i < params.size(); ++i) {
    auto flat = params[i].view({-1});
    for (int64_t j = 0; j < flat.numel(); j += std::max<int64_t>(1, flat.numel() / 5)) {
      // The unroll needs autograd for the optimizee's gradient, so only the edits run without it.
      auto set = [&](double v) {
        torch::NoGradGuard no_grad;
        flat[j] = v;
      };
      const double h = 1e-6, old = flat[j].item<double>();
      set(old + h);
      const double up = meta_loss().item<double>();
      set(old - h);
      const double down = meta_loss().item<double>();
      set(old);
      const double fd = (up - down) / (2 * h), ad = grads[i].view({-1})[j].item<double>();
      EXPECT_NEAR(ad, fd, 1e-6 * std::max(1.0, std::abs(fd))) << "param " << i << " entry " << j;
      ++checked;
    }
  }
  EXPECT_GT(checked, 40);
}

// With second_derivatives=false the optimizee gradient is a constant of the meta-graph; the
// first-order meta-gradient differs from the full one on a problem with curvature.
TEST(Unroll, FirstOrderDropsTheHessianTerm) {
  torch::manual_seed(0);
  auto lstm = std::make_shared<learned::CoordinatewiseLstm>(learned::LstmOptions().output_scale(0.1));
  auto gen = make_generator(1);
  problems::DmQuadratic q(4, 3, 0.5, gen);
  const meta::Trajectory s = start(*lstm, q, gen);
  meta::UnrollOptions o;
  o.length = 3;
  auto g1 = make_generator(2), g2 = make_generator(2);
  const auto first = torch::autograd::grad({meta::unroll(*lstm, q, s, o, g1).meta_loss}, lstm->parameters());
  o.second_derivatives = true;
  const auto second = torch::autograd::grad({meta::unroll(*lstm, q, s, o, g2).meta_loss}, lstm->parameters());
  EXPECT_FALSE(torch::allclose(first[0], second[0], 1e-4, 1e-6));
}

// Truncation changes only where gradients flow, not the trajectory: 5 unrolls of 4 steps visit the
// same points as one unroll of 20.
TEST(Unroll, TruncatedAndFullUnrollsFollowTheSameTrajectory) {
  torch::manual_seed(0);
  auto lstm = learned::make_rule("lstm:preprocess=logsign,output_scale=0.1");
  auto gen = make_generator(3);
  problems::DmQuadratic q(8, 4, 0.0, gen);
  const meta::Trajectory s = start(*lstm, q, gen);
  meta::UnrollOptions o;
  o.length = 20;
  auto g = make_generator(4);
  const auto full = meta::unroll(*lstm, q, s, o, g);
  std::vector<double> pieces;
  meta::Trajectory t = s;
  o.length = 4;
  for (int u = 0; u < 5; ++u) {
    auto r = meta::unroll(*lstm, q, t, o, g);
    pieces.insert(pieces.end(), r.losses.begin(), r.losses.end());
    t = r.end;
  }
  ASSERT_EQ(pieces.size(), full.losses.size());
  for (size_t i = 0; i < pieces.size(); ++i) EXPECT_FLOAT_EQ(pieces[i], full.losses[i]) << i;
  EXPECT_EQ(t.step, 20);
  // The sum objective is the sum of the recorded losses.
  double sum = 0;
  for (double f : full.losses) sum += f;
  EXPECT_NEAR(full.meta_loss.item<double>(), sum, 1e-3 * sum);
}

TEST(Unroll, LogRatioObjective) {
  auto sgd = learned::make_rule("sgd:lr=0.01");
  auto gen = make_generator(5);
  problems::DmQuadratic q(4, 3, 0.0, gen);
  const meta::Trajectory s = start(*sgd, q, gen);
  meta::UnrollOptions o;
  o.length = 5;
  o.objective = meta::Objective::kLogRatio;
  o.f0 = q.loss(s.params, {}).item<double>();
  auto g = make_generator(6);
  const auto r = meta::unroll(*sgd, q, s, o, g);
  double expected = 0;
  for (double f : r.losses) expected += std::log(f / (o.f0 + 1e-6) + 1e-6);
  EXPECT_NEAR(r.meta_loss.item<double>(), expected / 5, 1e-5);
}

TEST(Unroll, NonFiniteObjectiveStopsTheUnroll) {
  auto sgd = learned::make_rule("sgd:lr=10");
  problems::Rosenbrock rosen;
  auto gen = make_generator(7);
  const meta::Trajectory s = start(*sgd, rosen, gen);
  meta::UnrollOptions o;
  o.length = 50;
  const auto r = meta::unroll(*sgd, rosen, s, o, gen);
  EXPECT_TRUE(r.diverged);
  EXPECT_LT(r.losses.size(), 50u);
  EXPECT_FALSE(std::isfinite(r.losses.back()));
  // Blow-up detection stops earlier, while f is still finite.
  o.blowup_factor = 10;
  o.f0 = rosen.loss(s.params, {}).item<double>();
  const auto b = meta::unroll(*sgd, rosen, s, o, gen);
  EXPECT_TRUE(b.diverged);
  EXPECT_TRUE(std::isfinite(b.losses.back()));
}
