#include <l2o/core/error.h>
#include <l2o/core/rng.h>
#include <l2o/problems/problem_sets.h>
#include <l2o/problems/quadratic.h>
#include <l2o/problems/family.h>
#include <l2o/problems/registry.h>
#include <l2o/problems/wrappers.h>
#include <l2o/problems/zoo.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

using namespace l2o;
using problems::Batch;
using problems::ProblemPtr;

namespace {

constexpr double kPi = 3.14159265358979323846;

ProblemPtr make(const std::string& spec, uint64_t seed = 0) {
  auto gen = make_generator(seed);
  return problems::make_problem(spec, gen);
}

TensorList to_double(const TensorList& xs) {
  TensorList out;
  for (const auto& x : xs) out.push_back(x.to(torch::kDouble));
  return out;
}

double value(const problems::Problem& p, const TensorList& params, const Batch& batch = {}) {
  torch::NoGradGuard no_grad;
  return p.loss(to_double(params), batch).item<double>();
}

// Autograd gradient against float64 central differences, entry by entry (relative 1e-5).
void expect_gradient_matches_finite_differences(const problems::Problem& p, const TensorList& at, const Batch& batch,
                                                const std::string& what) {
  TensorList x = to_double(at);
  for (auto& t : x) t = t.detach().clone().requires_grad_(true);
  const auto grads = torch::autograd::grad({p.loss(x, batch)}, x);
  torch::NoGradGuard no_grad;
  const double h = 1e-6;
  for (size_t k = 0; k < x.size(); ++k) {
    auto flat = x[k].view({-1});
    const auto g = grads[k].reshape({-1});
    for (int64_t i = 0; i < flat.numel(); ++i) {
      const double orig = flat[i].item<double>();
      flat[i] = orig + h;
      const double up = p.loss(x, batch).item<double>();
      flat[i] = orig - h;
      const double down = p.loss(x, batch).item<double>();
      flat[i] = orig;
      const double fd = (up - down) / (2 * h), ad = g[i].item<double>();
      EXPECT_NEAR(ad, fd, 1e-5 * std::max(1.0, std::abs(fd))) << what << ": tensor " << k << " entry " << i;
    }
  }
}

// Every parameter of `p` away from singular points: θ₀ of the problem itself.
void expect_gradient_ok(const std::string& spec, uint64_t seed = 3) {
  auto gen = make_generator(seed);
  const auto p = problems::make_problem(spec, gen);
  expect_gradient_matches_finite_differences(*p, p->init_params(gen), p->objective_batch(), spec);
}

template <typename F>
void expect_error(F&& f, const std::string& culprit) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one naming '" << culprit << "'";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(culprit), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

// Wrappers need an inner problem; families draw another problem (their own tests: family_test.cpp).
bool is_wrapper(const std::string& name) {
  return name == "rescale" || name == "log_objective" || name == "sparse" || name == "sum" || name == "reparam" ||
         problems::is_family(name);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
TEST(Zoo, QuadraticIsHalfSquaredResidualWithReferenceShapes) {
  auto gen = make_generator(1);
  problems::Quadratic q(4, gen);
  const auto x0 = q.init_params(gen);
  ASSERT_EQ(x0.size(), 1u);
  EXPECT_EQ(x0[0].sizes(), (std::vector<int64_t>{4, 1}));
  // At x = 1: ½ Σᵢ (Σⱼ Wᵢⱼ − yᵢ)².
  double expected = 0;
  for (int i = 0; i < 4; ++i) {
    double r = -q.y()[i][0].item<double>();
    for (int j = 0; j < 4; ++j) r += q.w()[i][j].item<double>();
    expected += 0.5 * r * r;
  }
  EXPECT_NEAR(value(q, {torch::ones({4, 1})}), expected, 1e-9);
  EXPECT_LT(*q.optimum_value(), 1e-12);
  EXPECT_NEAR(value(q, q.optimum_params()), 0.0, 1e-6);
  expect_gradient_matches_finite_differences(q, x0, {}, "quadratic");
}

TEST(Zoo, BowlHasConditionNumberAndRotation) {
  problems::Bowl straight(4, 0), turned(4, kPi / 2);
  EXPECT_NEAR(value(straight, {torch::tensor({1.0, 0.0}).view({2, 1})}), 2.0, 1e-6);  // ½·4·1²
  EXPECT_NEAR(value(turned, {torch::tensor({1.0, 0.0}).view({2, 1})}), 0.5, 1e-6);   // rotated onto the flat axis
  const auto m = problems::Bowl(5, 0.7).matrix().to(torch::kDouble);
  const auto eig = torch::linalg_eigvalsh(m.t().matmul(m), "L");
  EXPECT_NEAR(eig[0].item<double>(), 1.0, 1e-5);
  EXPECT_NEAR(eig[1].item<double>(), 5.0, 1e-5);
  EXPECT_EQ(value(turned, turned.optimum_params()), 0.0);
  expect_gradient_ok("bowl:cond=5,angle=0.785398");
}

TEST(Zoo, TestFunctionsHaveTheirTextbookValues) {
  struct Case {
    const char* name;
    double x, y, expected;
  };
  const Case cases[] = {
      {"ackley", 1, 0, 20 * (1 - std::exp(-0.2 * std::sqrt(0.5)))},
      {"beale", 0, 0, 1.5 * 1.5 + 2.25 * 2.25 + 2.625 * 2.625},
      {"booth", 0, 0, 49 + 25},
      {"branin", 0, 0, 36 + 10 * (1 - 1 / (8 * kPi)) + 10},
      {"log_sum_exp", 0, 0, std::log(3 * std::exp(-0.1) + 1)},
      {"matyas", 1, 1, 0.26 * 2 - 0.48},
      {"michalewicz", kPi / 2, 0, 2 - 1.0 / 32},  // sin(π/4)^10 = 2^-5
      {"styblinski_tang", 1, 1, 70},
      {"saddle", 1, 2, -3},
  };
  for (const auto& c : cases) {
    const auto p = make(c.name);
    EXPECT_NEAR(value(*p, {torch::tensor({c.x, c.y}, torch::kDouble)}), c.expected, 1e-9) << c.name;
    EXPECT_EQ(p->name(), c.name);
    EXPECT_TRUE(p->deterministic());
  }
}

TEST(Zoo, TestFunctionOptimaAreStationaryAndMinimal) {
  for (const char* name : {"ackley", "beale", "booth", "branin", "log_sum_exp", "matyas", "styblinski_tang"}) {
    const auto p = make(name);
    ASSERT_TRUE(p->optimum_value().has_value()) << name;
    const double fmin = *p->optimum_value();
    EXPECT_NEAR(value(*p, p->optimum_params()), fmin, 1e-6) << name;
    if (std::string(name) != "ackley") {  // √ at the origin: Ackley has no gradient at its minimum
      auto x = to_double(p->optimum_params())[0].requires_grad_(true);
      const auto g = torch::autograd::grad({p->loss({x}, {})}, {x})[0];
      EXPECT_LT(g.abs().max().item<double>(), 1e-5) << name;
    }
    // Nothing drawn from the initial box is below the minimum, and everything is ≥ 0.
    auto gen = make_generator(7);
    for (int i = 0; i < 200; ++i) EXPECT_GE(value(*p, p->init_params(gen)), fmin - 1e-9) << name;
  }
  EXPECT_NEAR(*make("styblinski_tang")->optimum_value(), 80 - 2 * 39.16617, 1e-4);
  EXPECT_NEAR(*make("branin")->optimum_value(), 0.397887, 1e-6);
  const auto branin = make("branin");
  for (auto xy : {std::make_pair(-kPi, 12.275), std::make_pair(9.42478, 2.475)})
    EXPECT_NEAR(value(*branin, {torch::tensor({xy.first, xy.second}, torch::kDouble)}), 0.397887, 1e-5);
  const auto michalewicz = make("michalewicz");
  EXPECT_FALSE(michalewicz->optimum_value().has_value());
  // m = 5 (the reference's): minimum on [0,π]² ≈ 0.193377 at (2.18531, π/2), found by a 2000² grid
  // and a golden-section refinement outside this code base.
  EXPECT_NEAR(value(*michalewicz, {torch::tensor({2.185312, kPi / 2}, torch::kDouble)}), 0.193377, 1e-6);
  auto gen = make_generator(8);
  for (int i = 0; i < 200; ++i) EXPECT_GE(value(*michalewicz, {torch::randn({2}, gen) * 10}), 0.0);
}

TEST(Zoo, TestFunctionsDrawFromTheReferenceBoxes) {
  auto gen = make_generator(9);
  const auto ackley = make("ackley"), branin = make("branin"), michalewicz = make("michalewicz");
  for (int i = 0; i < 100; ++i) {
    const auto a = ackley->init_params(gen)[0], b = branin->init_params(gen)[0], m = michalewicz->init_params(gen)[0];
    EXPECT_LE(a.abs().max().item<float>(), 32.768f);
    EXPECT_TRUE(b[0].item<float>() >= -5 && b[0].item<float>() <= 10 && b[1].item<float>() >= 0 &&
                b[1].item<float>() <= 15);
    EXPECT_TRUE((m >= 0).all().item<bool>() && (m <= kPi).all().item<bool>());
  }
  const auto wide = make("rosenbrock:low=-5,high=10");
  EXPECT_EQ(wide->name(), "rosenbrock:high=10,low=-5");
  EXPECT_EQ(make("rosenbrock")->name(), "rosenbrock");
  bool beyond_two = false;
  for (int i = 0; i < 50; ++i) beyond_two |= wide->init_params(gen)[0].abs().max().item<float>() > 2;
  EXPECT_TRUE(beyond_two);
}

TEST(Zoo, NormIsPNormOfResidualPlusEpsilon) {
  auto gen = make_generator(2);
  problems::Norm n(5, 3.0, gen);
  double s = 0;
  for (int i = 0; i < 5; ++i) s += std::pow(std::abs(n.y()[i][0].item<double>()) + 1e-6, 3);
  EXPECT_NEAR(value(n, {torch::zeros({5, 1})}), std::cbrt(s), 1e-9);
  EXPECT_NEAR(*n.optimum_value(), std::cbrt(5.0) * 1e-6, 1e-9);
  EXPECT_LT(value(n, n.optimum_params()), 1e-4);
  expect_gradient_ok("norm:dim=6,p=1.5");
  expect_gradient_ok("norm:dim=6,p=3");
}

TEST(Zoo, DependencyChainAndMinMaxWell) {
  const auto chain = make("dependency_chain:dim=2");
  EXPECT_NEAR(value(*chain, {torch::tensor({1.0, 2.0, 3.0})}), 1 + 4 / (1 + 1e-6) + 9 / (4 + 1e-6), 1e-9);
  auto gen = make_generator(0);
  EXPECT_EQ(chain->init_params(gen)[0].numel(), 3);
  EXPECT_EQ(value(*chain, chain->optimum_params()), 0.0);
  expect_gradient_ok("dependency_chain:dim=6");

  const auto well = make("min_max_well:dim=3");
  EXPECT_NEAR(value(*well, {torch::tensor({0.5, 2.0, -1.0})}), 4 + 4 - 2, 1e-9);
  EXPECT_NEAR(value(*well, well->optimum_params()), 1e-12, 1e-15);
  expect_gradient_ok("min_max_well:dim=5");
  // Only the extreme coordinates get a gradient.
  auto x = torch::tensor({0.5, 2.0, -1.0}, torch::kDouble).requires_grad_(true);
  const auto g = torch::autograd::grad({well->loss({x}, {})}, {x})[0];
  EXPECT_EQ(g[2].item<double>(), 0.0);
  EXPECT_NE(g[0].item<double>(), 0.0);
}

TEST(Zoo, MatMulNaiveAlgorithmHasZeroLoss) {
  // n=2, k=8: product m = (i, l, j) multiplies a_il by b_lj; θ_a[:, m] = e_(i,l), θ_b[:, m] = e_(l,j).
  problems::MatMulAlgorithm p(2, 8);
  auto ta = torch::zeros({4, 8}, torch::kDouble), tb = torch::zeros({4, 8}, torch::kDouble);
  int m = 0;
  for (int i = 0; i < 2; ++i)
    for (int l = 0; l < 2; ++l)
      for (int j = 0; j < 2; ++j, ++m) {
        ta[i * 2 + l][m] = 1.0;
        tb[l * 2 + j][m] = 1.0;
      }
  EXPECT_LT(value(p, {ta, tb}), 1e-20);
  auto gen = make_generator(4);
  const auto init = p.init_params(gen);
  EXPECT_TRUE(torch::allclose(init[0].norm(2, {0}), torch::ones({8}), 1e-5, 1e-5));  // unit columns
  EXPECT_GT(value(p, init), 1e-3);
  expect_gradient_ok("matmul:n=2,k=5");
  expect_error([] { make("matmul:n=2,k=3"); }, "k=3");
}

TEST(Zoo, LassoValueGradientAndOptimality) {
  auto gen = make_generator(5);
  problems::Lasso p(6, 12, 0.5, gen);
  const auto x = torch::tensor({1.0, -2.0, 0.5, 0.25, -1.0, 3.0});
  const auto opt = p.optimum_params()[0];
  expect_gradient_matches_finite_differences(p, {x}, {}, "lasso");
  // KKT, read off autograd (d|x|/dx = 0 at 0 in torch): on the support the full gradient vanishes,
  // off it the smooth part Aᵀ(Ax − b) is at most λ in magnitude.
  auto xo = opt.clone().requires_grad_(true);
  const auto g = torch::autograd::grad({p.loss({xo}, {})}, {xo})[0];
  for (int i = 0; i < 6; ++i) {
    if (opt[i].item<double>() != 0) {
      EXPECT_NEAR(g[i].item<double>(), 0.0, 1e-9) << i;
    } else {
      EXPECT_LE(std::abs(g[i].item<double>()), 0.5 + 1e-9) << i;
    }
  }
  EXPECT_EQ(opt.scalar_type(), torch::kDouble);
  const double fopt = *p.optimum_value();
  EXPECT_NEAR(value(p, {opt}), fopt, 1e-12);
  for (int i = 0; i < 50; ++i) EXPECT_GE(value(p, {opt + 1e-3 * torch::randn({6}, gen, torch::kDouble)}), fopt);
  EXPECT_LE(fopt, value(p, {torch::zeros({6})}));
}

TEST(Zoo, LassoL1TermIsLambdaTimesL1Norm) {
  // Instances drawn from equal generators have equal A and b whatever λ: they agree at 0 and differ
  // elsewhere by λ‖x‖₁.
  const auto a = make("lasso:dim=4,rows=3,lambda=0", 11), b = make("lasso:dim=4,rows=3,lambda=5", 11);
  EXPECT_DOUBLE_EQ(value(*a, {torch::zeros({4})}), value(*b, {torch::zeros({4})}));
  const auto x = torch::tensor({1.0, -2.0, 0.0, 0.5});
  EXPECT_NEAR(value(*b, {x}) - value(*a, {x}), 5 * 3.5, 1e-9);
}

TEST(Zoo, RastriginIsStandard) {
  const auto p = make("rastrigin:dim=3");
  EXPECT_NEAR(value(*p, {torch::ones({3})}), 30 + 3 * (1 - 10), 1e-9);
  EXPECT_NEAR(value(*p, {torch::full({3}, 0.5)}), 30 + 3 * (0.25 + 10), 1e-9);
  EXPECT_EQ(value(*p, p->optimum_params()), 0.0);
  expect_gradient_ok("rastrigin:dim=4,a=3");
}

TEST(Zoo, DataProblemsMinibatchAndHoldOut) {
  const auto p = make("projection_quadratic:dim=3,samples=40,batch=8");
  EXPECT_FALSE(p->deterministic());
  auto gen = make_generator(6);
  const auto mb = p->sample_batch(gen);
  EXPECT_EQ(mb.inputs.sizes(), (std::vector<int64_t>{8, 3}));
  EXPECT_EQ(p->objective_batch().inputs.size(0), 40);
  EXPECT_EQ(p->test_batch().inputs.size(0), 40);
  EXPECT_FALSE(torch::equal(p->objective_batch().inputs, p->test_batch().inputs));
  // A minibatch is 8 distinct train rows.
  const auto rows = mb.inputs.unsqueeze(1).eq(p->objective_batch().inputs.unsqueeze(0)).all(2);
  EXPECT_TRUE(rows.any(1).all().item<bool>());
  EXPECT_EQ(std::get<0>(torch::_unique(mb.inputs.select(1, 0))).numel(), 8);
  EXPECT_TRUE(make("projection_quadratic:dim=3,samples=40,batch=0")->deterministic());
  EXPECT_EQ(p->name(), "projection_quadratic:batch=8,dim=3,samples=40");
  EXPECT_EQ(make(p->name())->name(), p->name());
}

TEST(Zoo, ProjectionQuadraticSumOfQuadraticsOutwardSnakeValues) {
  const Batch batch{torch::tensor({1.0, 2.0, -1.0, 0.5, 0.0, 3.0}).view({2, 3}), torch::zeros({2}, torch::kLong)};
  const auto x = torch::tensor({0.5, -1.0, 2.0}, torch::kDouble);
  const auto& d = batch.inputs;
  double proj = 0, sumq = 0, snake_sin = 0;
  for (int b = 0; b < 2; ++b)
    for (int i = 0; i < 3; ++i) {
      const double xi = x[i].item<double>(), di = d[b][i].item<double>();
      proj += std::pow(xi * di, 2);
      sumq += std::pow(xi - di, 2) - di * di;
      if (i > 0) snake_sin += std::pow((xi - std::cos(x[i - 1].item<double>()) * kPi) * di, 2);
    }
  const double radius = std::sqrt(0.25 + 1 + 4);
  const double snake = (1.0 + 0.5) / (radius + 1e-6) + snake_sin;

  const auto pq = make("projection_quadratic:dim=3,samples=10,batch=5");
  const auto sq = make("sum_of_quadratics:dim=3,samples=10,batch=5");
  const auto os = make("outward_snake:dim=3,samples=10,batch=5");
  EXPECT_NEAR(value(*pq, {x.view({1, 3})}, batch), proj, 1e-9);
  EXPECT_NEAR(value(*sq, {x.view({1, 3})}, batch), sumq + 1e-12, 1e-9);
  EXPECT_NEAR(value(*os, {x}, batch), snake, 1e-9);
  expect_gradient_matches_finite_differences(*pq, {x.view({1, 3})}, batch, "projection_quadratic");
  expect_gradient_matches_finite_differences(*sq, {x.view({1, 3})}, batch, "sum_of_quadratics");
  expect_gradient_matches_finite_differences(*os, {x}, batch, "outward_snake");

  // On a whole (symmetric) split sum_of_quadratics is B‖x‖² + 1e-12 ≥ 0, minimum 1e-12 at 0.
  const auto full = sq->objective_batch();
  EXPECT_NEAR(value(*sq, {x.view({1, 3})}, full), 10 * 5.25, 1e-4);
  EXPECT_NEAR(value(*sq, sq->optimum_params(), full), 1e-12, 1e-15);
  EXPECT_EQ(value(*pq, pq->optimum_params(), full), 0.0);
  EXPECT_GE(value(*os, {x}, os->objective_batch()), 0.0);
}

TEST(Zoo, SparseSoftmaxRegressionOnNoisyParity) {
  const auto p = make("sparse_softmax:dim=3,classes=2,ids=4,samples=20,batch=5", 2);
  auto gen = make_generator(3);
  const auto theta = p->init_params(gen);
  ASSERT_EQ(theta.size(), 3u);
  EXPECT_EQ(theta[0].sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(theta[1].sizes(), (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(theta[2].sizes(), (std::vector<int64_t>{2}));
  // Hand computation of the reference loss on the first two rows.
  const Batch b = p->objective_batch();
  const Batch two{b.inputs.slice(0, 0, 2), b.targets.slice(0, 0, 2)};
  const auto t = to_double(theta);
  double data_loss = 0;
  for (int r = 0; r < 2; ++r) {
    double logit0 = t[2][0].item<double>();
    for (int k = 0; k < 3; ++k) {
      double bag = 0;
      for (int j = 0; j < 4; ++j) bag += t[0][two.inputs[r][j].item<int64_t>()][k].item<double>();
      logit0 += bag * t[1][k][0].item<double>();
    }
    const double y = two.targets[r].item<double>();
    data_loss += std::log(1 + std::exp(-logit0)) * y + std::log(1 + std::exp(logit0)) * (1 - y);
  }
  const double reg = (t[0].pow(2).sum() + t[1].pow(2).sum() + t[2].pow(2).sum()).item<double>() / 3;
  EXPECT_NEAR(value(*p, theta, two), data_loss / 2 + 1e-3 * reg, 1e-9);
  expect_gradient_matches_finite_differences(*p, theta, two, "sparse_softmax");
  const double acc = p->accuracy(theta, b);
  EXPECT_GE(acc, 0.0);
  EXPECT_LE(acc, 1.0);
  EXPECT_EQ(make(p->name())->name(), p->name());
  expect_error([] { make("sparse_softmax:dataset=random"); }, "dataset=random");
}

// ---------------------------------------------------------------------------------------------
TEST(Wrappers, RescaleEvaluatesTheInnerProblemAtUnscaledParameters) {
  const auto inner = make("quadratic:dim=4", 1), outer = make("rescale:scale=8,of=quadratic/dim=4", 1);
  auto g1 = make_generator(2), g2 = make_generator(2);
  const auto x_inner = inner->init_params(g1), x_outer = outer->init_params(g2);
  EXPECT_TRUE(torch::allclose(x_outer[0], 8 * x_inner[0]));
  EXPECT_NEAR(value(*outer, x_outer), value(*inner, x_inner), 1e-9);
  EXPECT_NEAR(*outer->optimum_value(), *inner->optimum_value(), 1e-12);
  EXPECT_TRUE(torch::allclose(outer->optimum_params()[0], 8 * inner->optimum_params()[0]));
  // ∇_θ f(θ) = ∇f_inner(θ/scale) / scale.
  auto xo = to_double(x_outer)[0].requires_grad_(true), xi = to_double(x_inner)[0].requires_grad_(true);
  const auto go = torch::autograd::grad({outer->loss({xo}, {})}, {xo})[0];
  const auto gi = torch::autograd::grad({inner->loss({xi}, {})}, {xi})[0];
  EXPECT_TRUE(torch::allclose(go, gi / 8, 1e-9, 1e-12));
  EXPECT_EQ(outer->name(), "rescale:of=quadratic/dim=4,scale=8");
  expect_gradient_ok("rescale:scale=0.5,of=norm/dim=4/p=2.5");
}

TEST(Wrappers, SumIsTheSumOfItsPartsOnConcatenatedParameters) {
  const auto sum = make("sum:of=quadratic/dim=3+booth+rosenbrock/low=-5/high=10", 4);
  const auto* task = dynamic_cast<const problems::SumTask*>(sum.get());
  ASSERT_NE(task, nullptr);
  ASSERT_EQ(task->parts().size(), 3u);
  auto gen = make_generator(5);
  const auto x = sum->init_params(gen);
  ASSERT_EQ(x.size(), 3u);
  EXPECT_EQ(x[0].sizes(), (std::vector<int64_t>{3, 1}));
  const double parts = value(*task->parts()[0], {x[0]}) + value(*task->parts()[1], {x[1]}) +
                       value(*task->parts()[2], {x[2]});
  EXPECT_NEAR(value(*sum, x), parts, 1e-9);
  EXPECT_NEAR(*sum->optimum_value(), *task->parts()[0]->optimum_value(), 1e-9);
  EXPECT_NEAR(value(*sum, sum->optimum_params()), 0.0, 1e-5);
  EXPECT_EQ(sum->name(), "sum:of=quadratic/dim=3+booth+rosenbrock/high=10/low=-5");
  EXPECT_EQ(make(sum->name())->name(), sum->name());
  expect_gradient_ok("sum:of=quadratic/dim=3+beale+norm/dim=2/p=3");
  expect_error([] { make("sum:of=quadratic/dim=3+projection_quadratic/dim=2"); }, "projection_quadratic");
  expect_error([] { make("sum:of=quadratic/dim=3+quadratc"); }, "quadratc");
}

TEST(Wrappers, LogObjectiveIsShiftedLog) {
  const auto inner = make("bowl:cond=5", 0), outer = make("log_objective:of=bowl/cond=5", 0);
  const TensorList x = {torch::tensor({0.3, -2.0}, torch::kDouble).view({2, 1})};
  EXPECT_NEAR(value(*outer, x), std::log(value(*inner, x) + 1e-6) - std::log(1e-6), 1e-9);
  EXPECT_NEAR(*outer->optimum_value(), 0.0, 1e-12);
  EXPECT_GE(value(*outer, {torch::zeros({2, 1})}), 0.0);
  expect_gradient_ok("log_objective:of=quadratic/dim=3");
}

TEST(Wrappers, SparseZeroesAboutNinetyNinePercentOfEntries) {
  const auto p = make("sparse:of=quadratic/dim=4");
  auto gen = make_generator(6);
  const auto g = torch::randn({200000}) + 10;  // no zero entries of its own
  const auto out = p->perturb_gradients({g}, gen)[0];
  const double zero_fraction = out.eq(0).to(torch::kDouble).mean().item<double>();
  EXPECT_NEAR(zero_fraction, 0.99, 0.0015);  // 7 standard errors of a Bernoulli(0.99) mean over 2e5
  const auto kept = out.ne(0);
  EXPECT_TRUE(torch::equal(out.index({kept}), g.index({kept})));
  EXPECT_FALSE(p->deterministic());
  // prob=0 keeps everything; noise comes before the mask, so zeroed entries stay exactly 0.
  EXPECT_TRUE(torch::equal(make("sparse:prob=0,of=bowl")->perturb_gradients({g}, gen)[0], g));
  const auto noisy = make("sparse:prob=0.5,noise=1,of=bowl")->perturb_gradients({g}, gen)[0];
  EXPECT_NEAR(noisy.eq(0).to(torch::kDouble).mean().item<double>(), 0.5, 0.01);
  EXPECT_GT((noisy - g).index({noisy.ne(0)}).std().item<double>(), 0.9);
}

TEST(Wrappers, GradientNoiseHasTheRequestedStandardDeviation) {
  const auto p = make("booth:noise=0.5");
  EXPECT_EQ(p->name(), "booth:noise=0.5");
  EXPECT_FALSE(p->deterministic());
  auto gen = make_generator(7);
  const auto g = torch::full({100000}, 3.0);
  const auto noise = p->perturb_gradients({g}, gen)[0] - g;
  EXPECT_NEAR(noise.std().item<double>(), 0.5, 0.01);
  EXPECT_NEAR(noise.mean().item<double>(), 0.0, 0.01);
  auto same = make_generator(7);
  EXPECT_TRUE(torch::equal(p->perturb_gradients({g}, same)[0] - g, noise));  // drawn from the gen passed in
  // The objective is untouched and noise=0 is no wrapper at all.
  EXPECT_EQ(value(*p, {torch::tensor({1.0, 3.0})}), 0.0);
  EXPECT_EQ(make("booth:noise=0")->name(), "booth");
  EXPECT_TRUE(make("booth:noise=0")->deterministic());
  expect_error([] { make("booth:noise=-1"); }, "noise=-1");
}

TEST(Wrappers, EveryZooProblemTakesGradientNoise) {
  for (const auto& kv : problems::problem_catalogue()) {
    if (is_wrapper(kv.first)) continue;
    if (kv.first.rfind("cifar10_", 0) == 0) continue;  // CIFAR-10 is not packaged
    const auto p = make(kv.first + ":noise=0.25");
    EXPECT_NE(p->name().find("noise=0.25"), std::string::npos) << kv.first;
    auto gen = make_generator(1);
    const auto x = p->init_params(gen);
    TensorList zeros;
    for (const auto& t : x) zeros.push_back(torch::zeros_like(t));
    const auto perturbed = p->perturb_gradients(zeros, gen);
    EXPECT_GT(squared_norm(perturbed), 0.0) << kv.first;
  }
}

// ---------------------------------------------------------------------------------------------
TEST(Registry, EveryCatalogueProblemBuildsRoundTripsAndHasExactGradients) {
  for (const auto& kv : problems::problem_catalogue()) {
    if (is_wrapper(kv.first)) continue;
    // Small instances keep the finite-difference loop fast.
    std::string spec = kv.first;
    if (kv.first == "dm_quadratic") spec += ":batch=2,dim=3";
    if (kv.first == "projection_quadratic" || kv.first == "sum_of_quadratics" || kv.first == "outward_snake")
      spec += ":dim=4,samples=10,batch=5";
    if (kv.first == "sparse_softmax") spec += ":samples=10";
    // The classifier problems on image data sets (MNIST presets, convnets) have their own
    // finite-difference tests on small instances in nn_test.cpp.
    if (kv.first == "conv" || kv.first.rfind("mnist_", 0) == 0 || kv.first.rfind("cifar10_", 0) == 0) continue;
    if (kv.first == "softmax") spec += ":dataset=random,features=3,classes=3,samples=12,batch=0";
    if (kv.first == "mlp") spec += ":dataset=random,features=3,classes=2,samples=12,hidden=4,batch=0";
    if (kv.first == "quadratic" || kv.first == "norm" || kv.first == "lasso" || kv.first == "rastrigin" ||
        kv.first == "isotropic_quadratic" || kv.first == "dependency_chain" || kv.first == "min_max_well")
      spec += ":dim=4";
    const auto p = make(spec);
    EXPECT_EQ(make(p->name())->name(), p->name()) << spec;
    auto gen = make_generator(2);
    const auto x = p->init_params(gen);
    if (kv.first != "saddle") {
      EXPECT_GE(value(*p, x, p->objective_batch()), 0.0) << spec;
    }
    expect_gradient_matches_finite_differences(*p, x, p->objective_batch(), spec);
  }
}

TEST(Registry, InlineSpecsNestAndRoundTrip) {
  EXPECT_EQ(problems::expand_inline_spec("quadratic/dim=20"), "quadratic:dim=20");
  EXPECT_EQ(problems::expand_inline_spec("booth"), "booth");
  EXPECT_EQ(problems::expand_inline_spec("rescale/scale=2/of=(quadratic/dim=3)"), "rescale:scale=2,of=quadratic/dim=3");
  EXPECT_EQ(problems::to_inline_spec("rescale:of=quadratic/dim=3,scale=2"), "rescale/of=(quadratic/dim=3)/scale=2");
  EXPECT_EQ(problems::split_inline_list("quadratic/dim=3+(sum/of=(booth+beale))+bowl/cond=1e+06"),
            (std::vector<std::string>{"quadratic/dim=3", "sum/of=(booth+beale)", "bowl/cond=1e+06"}));
  const auto nested = make("log_objective:of=rescale/scale=2/of=(sum/of=(quadratic/dim=3+booth))");
  EXPECT_EQ(nested->name(), "log_objective:of=rescale/of=(sum/of=(quadratic/dim=3+booth))/scale=2");
  EXPECT_EQ(make(nested->name())->name(), nested->name());
  expect_gradient_ok(nested->name());
  expect_error([] { problems::expand_inline_spec("rescale/of=(quadratic/dim=3"); }, "rescale/of=(quadratic/dim=3");
  expect_error([] { make("rescale:scale=2"); }, "of=");
  expect_error([] { make("rescale:of=quadratic/dimm=3"); }, "dimm");
}

TEST(Registry, BadSpecsAreOneLineErrorsNamingTheCulprit) {
  expect_error([] { make("quadratik"); }, "quadratik");
  expect_error([] { make("quadratic:dim=0"); }, "dim=0");
  expect_error([] { make("quadratic:dims=3"); }, "dims");
  expect_error([] { make("bowl:cond=-1"); }, "cond=-1");
  expect_error([] { make("norm:p=0.5"); }, "p=0.5");
  expect_error([] { make("booth:x=1"); }, "'x'");
  expect_error([] { make("sparse:prob=1.5,of=bowl"); }, "prob=1.5");
  expect_error([] { make("rescale:scale=0,of=bowl"); }, "scale=0");
  expect_error([] { make("projection_quadratic:dim=3,samples=9"); }, "samples=9");
  expect_error([] { make("rastrigin:dim=three"); }, "three");
}

// ---------------------------------------------------------------------------------------------
namespace {
// CIFAR-10 is not packaged: without its files the one cifar10_conv spec cannot build.
bool missing_cifar(const Error& e) {
  return std::string(e.what()).find("CIFAR-10 directory") != std::string::npos;
}
}  // namespace

TEST(ProblemSets, SizesMatchTheReference) {
  const std::pair<const char*, size_t> sizes[] = {
      {"quadratic", 4},        {"quadratic_noisy", 4},  {"quadratic_large", 3},
      {"bowl", 4},             {"bowl_noisy", 4},       {"softmax_2_class", 4},
      {"softmax_2_class_noisy", 4}, {"sparse_softmax_2_class", 1}, {"optimization_test", 9},
      {"optimization_test_noisy", 9}, {"fully_connected_random_2_class", 12}, {"matmul", 10},
      {"log_objective", 6},    {"rescale", 9},          {"norm", 3},
      {"norm_noisy", 3},       {"sum", 6},              {"sum_noisy", 2},
      {"sparse_gradient", 6},  {"sparse_gradient_mlp", 3}, {"min_max_well", 5},
      {"sum_of_quadratics", 10}, {"projection_quadratic", 10}, {"outward_snake", 10},
      {"dependency_chain", 10}, {"mnist_mlp", 1},       {"mnist_mlp_relu", 1},
      {"mnist_mlp_deeper", 1}, {"mnist_conv", 1},       {"cifar10_conv", 1},
      {"nn_families", 2},      {"nn_families_reparam", 2}, {"generalist", 53}, {"nn_validation", 4},
  };
  for (const auto& s : sizes) EXPECT_EQ(problems::named_problem_set(s.first).size(), s.second) << s.first;
  // The union metarun.py trains on by default: 101 specs, as SPEC §2 says.
  const auto all = problems::named_problem_set("default");
  EXPECT_EQ(all.size(), 101u);
  for (const auto& s : all) EXPECT_EQ(s.second, 1.0);
  EXPECT_EQ(problems::problem_set_catalogue().size(), std::size(sizes) + 1);
  expect_error([] { problems::named_problem_set("defualt"); }, "defualt");
}

TEST(ProblemSets, EveryZooSpecOfEverySetBuilds) {
  int pending = 0, built = 0;
  for (const auto& entry : problems::problem_set_catalogue()) {
    if (entry.first == "default") continue;  // its members are the other sets'
    for (const auto& s : problems::named_problem_set(entry.first)) {
      try {
        auto gen = make_generator(0);
        const auto p = problems::make_problem(s.first, gen);
        ++built;
        // Meta-training objectives are ≥ 0 at θ₀ (SPEC: the log-ratio divides by f₀).
        // The image presets' objective (10,000 images) is checked in nn_test.cpp.
        if (s.first.rfind("mnist_", 0) == 0) continue;
        const auto x = p->init_params(gen);
        EXPECT_GE(value(*p, x, p->objective_batch()), 0.0) << s.first;
      } catch (const Error& e) {
        if (!missing_cifar(e)) ADD_FAILURE() << s.first << ": " << e.what();
        ++pending;
      }
    }
  }
  EXPECT_GE(built, 155);
  // Every spec builds — 8 softmax, 15 mlp and the 5 L2O-Entropy presets included — but cifar10_conv
  // when CIFAR-10 is not on the machine.
  EXPECT_LE(pending, 1) << pending;
}

TEST(ProblemSets, AtNameExpandsANamedSetWithItsWeightScaled) {
  const auto set = problems::ProblemSet::parse("@bowl*2; rosenbrock");
  ASSERT_EQ(set.specs().size(), 5u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(set.specs()[i].second, 2.0);
  EXPECT_EQ(set.specs()[0].first, "bowl:cond=0.1");
  EXPECT_EQ(set.specs()[4], (std::pair<std::string, double>{"rosenbrock", 1.0}));
  EXPECT_EQ(problems::ProblemSet::parse("@matmul").specs().size(), 10u);
  expect_error([] { problems::ProblemSet::parse("@nope"); }, "nope");
  expect_error([] { problems::ProblemSet::parse("*2"); }, "*2");
}
