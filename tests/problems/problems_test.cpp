#include <l2o/core/error.h>
#include <l2o/core/rng.h>
#include <l2o/problems/quadratic.h>
#include <l2o/problems/registry.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

using namespace l2o;

TEST(DmQuadratic, LossIsMeanOverFunctionsOfSquaredResidualNorm) {
  auto gen = make_generator(1);
  problems::DmQuadratic q(4, 3, 0.0, gen);
  const auto theta = torch::randn({4, 3});
  double expected = 0;
  for (int b = 0; b < 4; ++b) expected += (q.w()[b].matmul(theta[b]) - q.y()[b]).pow(2).sum().item<double>();
  expected /= 4;
  EXPECT_NEAR(q.loss({theta}, {}).item<double>(), expected, 1e-4);
  EXPECT_TRUE(torch::equal(q.init_params(gen)[0], torch::zeros({4, 3})));
}

TEST(DmQuadratic, GradientIsTwoWTransposedResidualOverBatch) {
  auto gen = make_generator(2);
  problems::DmQuadratic q(3, 5, 0.0, gen);
  auto theta = torch::randn({3, 5}, torch::kDouble).requires_grad_(true);
  const auto g = torch::autograd::grad({q.loss({theta}, {})}, {theta})[0];
  const auto w = q.w().to(torch::kDouble), y = q.y().to(torch::kDouble);
  const auto r = torch::bmm(w, theta.detach().unsqueeze(2)).squeeze(2) - y;
  const auto expected = 2.0 / 3.0 * torch::bmm(w.transpose(1, 2), r.unsqueeze(2)).squeeze(2);
  EXPECT_TRUE(torch::allclose(g, expected, 1e-10, 1e-12));
}

TEST(DmQuadratic, OptimumIsTheLeastSquaresSolution) {
  auto gen = make_generator(3);
  problems::DmQuadratic q(8, 10, 0.0, gen);
  const double fmin = *q.optimum_value();
  EXPECT_LT(fmin, 1e-6);  // square random W are invertible almost surely
  EXPECT_NEAR(q.loss(q.optimum_params(), {}).item<double>(), fmin, 1e-3);
}

TEST(DmQuadratic, DrawsAreReproducibleAndDiffer) {
  auto g1 = make_generator(5, Stream::kTrain, 0), g2 = make_generator(5, Stream::kTrain, 0);
  auto g3 = make_generator(5, Stream::kTrain, 1);
  problems::DmQuadratic a(2, 2, 0, g1), b(2, 2, 0, g2), c(2, 2, 0, g3);
  EXPECT_TRUE(torch::equal(a.w(), b.w()));
  EXPECT_FALSE(torch::equal(a.w(), c.w()));
}

TEST(ClosedForm, RosenbrockValueAndGradient) {
  problems::Rosenbrock r;
  auto x = torch::tensor({-1.0, 2.0}, torch::kDouble).requires_grad_(true);
  const auto f = r.loss({x}, {});
  EXPECT_DOUBLE_EQ(f.item<double>(), 4.0 + 100.0 * 1.0);
  const auto g = torch::autograd::grad({f}, {x})[0];
  // ∂f/∂x = −2(1−x) − 400x(y−x²); ∂f/∂y = 200(y−x²)
  EXPECT_DOUBLE_EQ(g[0].item<double>(), -4.0 + 400.0);
  EXPECT_DOUBLE_EQ(g[1].item<double>(), 200.0);
  EXPECT_DOUBLE_EQ(r.loss(r.optimum_params(), {}).item<double>(), 0.0);
}

TEST(ClosedForm, IsotropicQuadraticOptimum) {
  auto gen = make_generator(4);
  problems::IsotropicQuadratic q(6, gen);
  EXPECT_DOUBLE_EQ(q.loss(q.optimum_params(), {}).item<double>(), 0.0);
  auto x = q.init_params(gen)[0].to(torch::kDouble).requires_grad_(true);
  const auto g = torch::autograd::grad({q.loss({x}, {})}, {x})[0];
  EXPECT_TRUE(torch::allclose(g, x.detach() - q.optimum_params()[0].to(torch::kDouble)));
}

TEST(Registry, BuildsFromSpecsAndRejectsUnknownOnes) {
  auto gen = make_generator(0);
  EXPECT_EQ(problems::make_problem("dm_quadratic:batch=2,dim=3", gen)->init_params(gen)[0].sizes(),
            (std::vector<int64_t>{2, 3}));
  EXPECT_THROW(problems::make_problem("dm_quadratc", gen), l2o::Error);
  EXPECT_THROW(problems::make_problem("dm_quadratic:dims=3", gen), l2o::Error);
  EXPECT_THROW(problems::make_problem("dm_quadratic:dim=-1", gen), l2o::Error);
}

TEST(ProblemSet, SamplesByWeight) {
  const auto set = problems::ProblemSet::parse("rosenbrock*1;isotropic_quadratic:dim=3*3");
  int quad = 0;
  for (int i = 0; i < 400; ++i) {
    auto gen = make_generator(9, Stream::kTrain, i);
    quad += set.sample(gen)->name().rfind("isotropic", 0) == 0;
  }
  EXPECT_NEAR(quad / 400.0, 0.75, 0.07);
  EXPECT_THROW(problems::ProblemSet::parse("rosenbrock*0"), l2o::Error);
  EXPECT_THROW(problems::ProblemSet::parse(" ; "), l2o::Error);
  EXPECT_THROW(problems::ProblemSet::parse("nope"), l2o::Error);
}
