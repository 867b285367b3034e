#include <l2o/learned/lstm.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <limits>

using namespace l2o;

TEST(LogAndSign, MatchesThePaperFormula) {
  const double k = 5;
  const auto g = torch::tensor({1e-8, -1e-3, 0.5, -20.0}, torch::kDouble);
  const auto out = learned::log_and_sign(g, k);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{4, 2}));
  const double eps = std::numeric_limits<float>::epsilon();
  for (int i = 0; i < 4; ++i) {
    const double x = g[i].item<double>();
    const double log_part = std::max(-1.0, std::min(1.0, std::log(std::abs(x) + eps) / k));
    const double sign_part = std::max(-1.0, std::min(1.0, x * std::exp(k)));
    EXPECT_NEAR(out[i][0].item<double>(), log_part, 1e-12);
    EXPECT_NEAR(out[i][1].item<double>(), sign_part, 1e-12);
  }
}

TEST(Lstm, IsCoordinatewiseAndKeepsShapes) {
  torch::manual_seed(0);
  learned::CoordinatewiseLstm lstm(learned::LstmOptions().preprocess("logsign"));
  TensorList p = {torch::randn({3, 4}), torch::randn({7})};
  TensorList g = {torch::randn({3, 4}), torch::randn({7})};
  auto state = lstm.init(p);
  torch::NoGradGuard no_grad;
  auto r = lstm.update(p, g, state);
  ASSERT_EQ(r.params[0].sizes(), p[0].sizes());
  ASSERT_EQ(r.params[1].sizes(), p[1].sizes());
  EXPECT_EQ(r.state.at("h1")[1].sizes(), (std::vector<int64_t>{7, 20}));
  // Coordinatewise: the update of one coordinate depends only on its own gradient history, so
  // permuting the coordinates permutes the updates.
  auto r2 = lstm.update({p[1].flip(0)}, {g[1].flip(0)}, lstm.init({p[1]}));
  EXPECT_TRUE(torch::allclose(r2.steps[0], r.steps[1].flip(0), 1e-5, 1e-6));
  // The output scale multiplies the step.
  EXPECT_LT(r.steps[0].abs().max().item<double>(), 0.01 * 1.5);
}

// d(step)/dφ of one update by float64 central differences.
TEST(Lstm, GradientOfOneStepMatchesFiniteDifferences) {
  torch::manual_seed(1);
  auto lstm = std::make_shared<learned::CoordinatewiseLstm>(learned::LstmOptions().preprocess("logsign").output_scale(0.1));
  lstm->to(torch::kDouble);
  TensorList p = {torch::randn({5}, torch::kDouble)};
  TensorList g = {torch::randn({5}, torch::kDouble)};
  auto state = lstm->init(p);
  state = optim::detach(lstm->update(p, g, state).state);  // non-zero hidden state, constant in φ
  auto f = [&]() { return lstm->update(p, g, state).params[0].pow(2).sum(); };
  const auto params = lstm->parameters();
  const auto grads = torch::autograd::grad({f()}, params);
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < params.size(); ++i) {
    auto flat = params[i].view({-1});
    for (int64_t j = 0; j < std::min<int64_t>(flat.numel(), 6); ++j) {
      const double h = 1e-6, old = flat[j].item<double>();
      flat[j] = old + h;
      const double up = f().item<double>();
      flat[j] = old - h;
      const double down = f().item<double>();
      flat[j] = old;
      EXPECT_NEAR(grads[i].view({-1})[j].item<double>(), (up - down) / (2 * h), 1e-7) << "param " << i << " entry " << j;
    }
  }
}
