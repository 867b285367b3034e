#include <l2o/autodiff/curvature.h>
#include <l2o/core/error.h>
#include <l2o/core/rng.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <string>

using namespace l2o;
using namespace l2o::autodiff;

namespace {

const auto kF64 = torch::TensorOptions().dtype(torch::kDouble);

torch::Tensor flat(const TensorList& xs) {
  TensorList parts;
  for (const auto& x : xs) parts.push_back(x.reshape({-1}));
  return torch::cat(parts);
}

TensorList split_like(const torch::Tensor& v, const TensorList& like) {
  TensorList out;
  int64_t offset = 0;
  for (const auto& x : like) {
    out.push_back(v.narrow(0, offset, x.numel()).view(x.sizes()));
    offset += x.numel();
  }
  return out;
}

// Leaves shaped `shapes` holding the entries of `values` (so a flat vector can be spread over tensors).
TensorList leaves(const torch::Tensor& values, const std::vector<std::vector<int64_t>>& shapes) {
  TensorList like;
  for (const auto& s : shapes) like.push_back(torch::empty(s, kF64));
  return fresh_leaves(split_like(values, like));
}

// The explicit Hessian by differentiating each gradient coordinate with plain autograd (not through hvp).
torch::Tensor explicit_hessian(const torch::Tensor& loss, const TensorList& params) {
  const auto grads = torch::autograd::grad({loss}, params, {}, true, true, true);
  TensorList g;
  for (size_t i = 0; i < grads.size(); ++i) g.push_back(grads[i].defined() ? grads[i] : torch::zeros_like(params[i]));
  const auto gf = flat(g);
  std::vector<torch::Tensor> rows;
  for (int64_t i = 0; i < gf.numel(); ++i) {
    auto row = torch::autograd::grad({gf[i]}, params, {}, true, false, true);
    for (size_t k = 0; k < row.size(); ++k)
      if (!row[k].defined()) row[k] = torch::zeros_like(params[k]);
    rows.push_back(flat(row));
  }
  return torch::stack(rows);
}

// A symmetric n × n matrix Q diag(spectrum) Qᵀ with a random orthogonal Q.
torch::Tensor with_spectrum(const torch::Tensor& spectrum, at::Generator& gen) {
  const int64_t n = spectrum.numel();
  const auto q = std::get<0>(torch::linalg_qr(torch::randn({n, n}, gen, kF64)));
  const auto a = torch::mm(q * spectrum.unsqueeze(0), q.t());
  return 0.5 * (a + a.t());
}

torch::Tensor random_symmetric(int64_t n, at::Generator& gen) {
  const auto b = torch::randn({n, n}, gen, kF64);
  return 0.5 * (b + b.t());
}

// 0.5 xᵀAx + bᵀx over x spread across the parameter tensors: H = A exactly.
torch::Tensor quadratic(const torch::Tensor& a, const TensorList& params) {
  const auto x = flat(params);
  return 0.5 * torch::dot(x, torch::mv(a, x)) + x.sum();
}

// A tiny tanh MLP with softmax cross-entropy: W1 [4,3], b1 [4], W2 [3,4], b2 [3] (31 parameters).
struct Mlp {
  torch::Tensor inputs, targets;
  explicit Mlp(at::Generator& gen)
      : inputs(torch::randn({6, 3}, gen, kF64)), targets(torch::randint(0, 3, {6}, gen, torch::kLong)) {}
  TensorList init(at::Generator& gen) const {
    return fresh_leaves({0.8 * torch::randn({4, 3}, gen, kF64), 0.3 * torch::randn({4}, gen, kF64),
                         0.8 * torch::randn({3, 4}, gen, kF64), 0.3 * torch::randn({3}, gen, kF64)});
  }
  torch::Tensor loss(const TensorList& p) const {
    const auto h = torch::tanh(torch::addmm(p[1], inputs, p[0].t()));
    const auto out = torch::addmm(p[3], h, p[2].t());
    return torch::nll_loss(torch::log_softmax(out, 1), targets);
  }
};

// A non-quadratic loss whose Hessian depends smoothly on a scalar `a`:
// f(x; a) = logsumexp(a·Mx) + ½ a xᵀSx + 0.1 Σ cos(a x), x spread over a [2,2] and a [3] tensor.
struct Scaled {
  torch::Tensor m, s, x0;
  explicit Scaled(at::Generator& gen)
      : m(torch::randn({5, 7}, gen, kF64)), s(random_symmetric(7, gen)), x0(0.5 * torch::randn({7}, gen, kF64)) {}
  torch::Tensor loss(const TensorList& p, const torch::Tensor& a) const {
    const auto x = flat(p);
    return torch::logsumexp(a * torch::mv(m, x), 0) + 0.5 * a * torch::dot(x, torch::mv(s, x)) +
           0.1 * torch::cos(a * x).sum();
  }
};

// Checks d value / d(a, x) from autograd against float64 central differences, coordinate by coordinate.
// `value(a, params)` must be deterministic (fixed seeds) and differentiable.
void expect_derivatives_match_finite_differences(
    const Scaled& problem, double a0,
    const std::function<torch::Tensor(const torch::Tensor&, const TensorList&)>& value, double rtol,
    const std::string& what) {
  const auto eval = [&](double a, const torch::Tensor& x) {
    const auto at = torch::tensor(a, kF64).requires_grad_(true);
    return value(at, leaves(x, {{2, 2}, {3}})).item<double>();
  };
  const auto a = torch::tensor(a0, kF64).requires_grad_(true);
  const auto params = leaves(problem.x0, {{2, 2}, {3}});
  const auto v = value(a, params);
  ASSERT_TRUE(v.requires_grad()) << what << ": result has no graph";
  TensorList inputs{a};
  inputs.insert(inputs.end(), params.begin(), params.end());
  const auto grads = torch::autograd::grad({v}, inputs);
  const double h = 1e-5;
  const double da = (eval(a0 + h, problem.x0) - eval(a0 - h, problem.x0)) / (2 * h);
  EXPECT_NEAR(grads[0].item<double>(), da, rtol * std::max(1.0, std::abs(da))) << what << ": d/da";
  const auto dx = flat({grads[1], grads[2]});
  for (int64_t i = 0; i < problem.x0.numel(); ++i) {
    auto up = problem.x0.clone(), down = problem.x0.clone();
    up[i] += h;
    down[i] -= h;
    const double fd = (eval(a0, up) - eval(a0, down)) / (2 * h);
    EXPECT_NEAR(dx[i].item<double>(), fd, rtol * std::max(1.0, std::abs(fd))) << what << ": d/dx_" << i;
  }
}

template <typename F>
void expect_error(F&& f, const std::string& culprit) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one naming '" << culprit << "'";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(culprit), std::string::npos) << e.what();
  }
}

// 200 eigenvalues: 25, -20 and 16 stand clear of a bulk in [-5, 5].
torch::Tensor gapped_spectrum(at::Generator& gen) {
  auto spectrum = torch::rand({200}, gen, kF64) * 10 - 5;
  spectrum[0] = 25;
  spectrum[1] = -20;
  spectrum[2] = 16;
  return spectrum;
}

}  // namespace

TEST(Hvp, EqualsExplicitHessianTimesVectorOnQuadraticOverSeveralTensors) {
  auto gen = make_generator(1);
  const auto a = random_symmetric(30, gen);
  const auto params = leaves(torch::randn({30}, gen, kF64), {{4, 5}, {6}, {2, 2}});
  const auto loss = quadratic(a, params);
  const auto v = torch::randn({30}, gen, kF64);
  const auto expected = torch::mv(a, v);
  EXPECT_TRUE(torch::allclose(flat(hvp(loss, params, split_like(v, params))), expected, 1e-5, 1e-5));
  // The same product through held gradients and through the operator, twice (the graph is retained).
  const HessianOperator h(loss, params);
  EXPECT_TRUE(torch::allclose(flat(hvp_from_grads(h.grads(), params, split_like(v, params))), expected, 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(flat(h.apply(split_like(v, params))), expected, 1e-5, 1e-5));
  EXPECT_TRUE(torch::allclose(flat(h.apply(split_like(2 * v, params))), 2 * expected, 1e-5, 1e-5));
  {  // products are also available to callers that hold a NoGradGuard (evaluation, analysis)
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::allclose(flat(h.apply(split_like(v, params))), expected, 1e-5, 1e-5));
  }
  EXPECT_EQ(h.products(), 3);
  EXPECT_EQ(h.numel(), 30);
}

TEST(Hvp, EqualsExplicitHessianTimesVectorOnMlp) {
  auto gen = make_generator(2);
  const Mlp mlp(gen);
  const auto params = mlp.init(gen);
  const auto loss = mlp.loss(params);
  const auto hessian = explicit_hessian(loss, params);
  ASSERT_EQ(hessian.size(0), 31);
  EXPECT_TRUE(torch::allclose(hessian, hessian.t(), 1e-10, 1e-12));
  EXPECT_GT(hessian.abs().max().item<double>(), 1e-2);  // a non-trivial Hessian
  const HessianOperator h(loss, params);
  for (int k = 0; k < 3; ++k) {
    const auto v = torch::randn({31}, gen, kF64);
    const auto hv = flat(h.apply(split_like(v, params)));
    EXPECT_LT((hv - torch::mv(hessian, v)).abs().max().item<double>(), 1e-5) << "probe " << k;
  }
}

TEST(Hvp, IsZeroWhereTheLossIsLinearOrUnused) {
  auto gen = make_generator(3);
  const auto params =
      fresh_leaves({torch::randn({3}, gen, kF64), torch::randn({2}, gen, kF64), torch::randn({4}, gen, kF64)});
  // Quadratic in params[0], linear in params[1], independent of params[2].
  const auto loss = params[0].pow(2).sum() + 3 * params[1].sum();
  const auto hv = hvp(loss, params, {torch::ones({3}, kF64), torch::ones({2}, kF64), torch::ones({4}, kF64)});
  EXPECT_TRUE(torch::allclose(hv[0], torch::full({3}, 2.0, kF64)));
  EXPECT_TRUE(torch::equal(hv[1], torch::zeros({2}, kF64)));
  EXPECT_TRUE(torch::equal(hv[2], torch::zeros({4}, kF64)));
  // A loss linear in everything has no second-order graph at all: H = 0, not an error.
  const auto linear = 2 * params[0].sum() + params[1].sum() + params[2].sum();
  for (const auto& t : hvp(linear, params, {torch::ones({3}, kF64), torch::ones({2}, kF64), torch::ones({4}, kF64)}))
    EXPECT_EQ(t.abs().sum().item<double>(), 0);
}

TEST(Hvp, RejectsParametersWithoutGradAndLossesWithoutGraph) {
  const TensorList plain{torch::ones({2}, kF64)};
  expect_error([&] { gradients(plain[0].sum(), plain); }, "requires_grad_");
  const auto x = fresh_leaves({torch::ones({2}, kF64)});
  expect_error([&] { gradients(torch::tensor(1.0, kF64), x); }, "no graph");
  expect_error([&] { hvp(x[0].pow(2).sum(), x, {torch::ones({3}, kF64)}); }, "shape");
}

TEST(Hutchinson, EstimateLiesWithinThreeStandardErrorsOfTheExactTrace) {
  auto gen = make_generator(4);
  const auto a = random_symmetric(40, gen);
  const auto params = leaves(torch::randn({40}, gen, kF64), {{5, 4}, {20}});
  const int64_t probes = 4000;
  const auto r = hutchinson_trace(quadratic(a, params), params, probes, gen);
  const double exact = a.trace().item<double>();
  EXPECT_LT(std::abs(r.trace.item<double>() - exact), 3 * r.standard_error)
      << "estimate " << r.trace.item<double>() << " exact " << exact << " se " << r.standard_error;
  // Rademacher probes: Var(vᵀAv) = 2 Σ_{i≠j} A_ij², so the standard error is known in advance.
  const double offdiag = (a.pow(2).sum() - a.diagonal().pow(2).sum()).item<double>();
  const double expected_se = std::sqrt(2 * offdiag / probes);
  EXPECT_NEAR(r.standard_error, expected_se, 0.15 * expected_se);
  ASSERT_EQ(r.samples.size(), static_cast<size_t>(probes));
  EXPECT_FALSE(r.trace.requires_grad());
}

TEST(Hutchinson, EstimateLiesWithinThreeStandardErrorsOnMlp) {
  auto gen = make_generator(5);
  const Mlp mlp(gen);
  const auto params = mlp.init(gen);
  const auto loss = mlp.loss(params);
  const double exact = explicit_hessian(loss, params).trace().item<double>();
  const auto r = hutchinson_trace(loss, params, 2000, gen);
  EXPECT_GT(r.standard_error, 0);
  EXPECT_LT(std::abs(r.trace.item<double>() - exact), 3 * r.standard_error)
      << "estimate " << r.trace.item<double>() << " exact " << exact << " se " << r.standard_error;
}

TEST(Hutchinson, DrawsFreshProbesOnEveryCall) {
  auto gen = make_generator(6);
  const auto a = random_symmetric(20, gen);
  const auto params = leaves(torch::randn({20}, gen, kF64), {{20}});
  const HessianOperator h(quadratic(a, params), params);
  auto probes = make_generator(7);
  const auto first = hutchinson_trace(h, 10, probes);
  const auto second = hutchinson_trace(h, 10, probes);
  EXPECT_NE(first.samples, second.samples);
  EXPECT_NE(first.trace.item<double>(), second.trace.item<double>());
  // …and a generator in the same state draws the same probes.
  auto replay = make_generator(7);
  EXPECT_EQ(hutchinson_trace(h, 10, replay).samples, first.samples);
  EXPECT_TRUE(std::isnan(hutchinson_trace(h, 1, replay).standard_error));
  expect_error([&] { hutchinson_trace(h, 0, replay); }, "probes=0");
}

TEST(PowerIteration, TopEigenvaluesByMagnitudeMatchEigvalsh) {
  auto gen = make_generator(8);
  const auto a = with_spectrum(gapped_spectrum(gen), gen);
  const auto params = leaves(torch::randn({200}, gen, kF64), {{10, 15}, {50}});
  const auto options = PowerIterationOptions().top_n(3).max_iterations(2000).tolerance(1e-12);
  const auto r = top_eigenpairs(quadratic(a, params), params, gen, options);
  auto exact = torch::linalg::eigvalsh(a, "L");
  exact = exact.index_select(0, std::get<1>(exact.abs().sort(0, /*descending=*/true)));
  ASSERT_EQ(r.eigenvalues.size(), 3u);
  for (size_t k = 0; k < 3; ++k) {
    const double want = exact[static_cast<int64_t>(k)].item<double>();
    EXPECT_NEAR(r.eigenvalues[k], want, 1e-4 * std::abs(want)) << "eigenvalue " << k;
    EXPECT_LT(r.iterations[k], options.max_iterations()) << "eigenvalue " << k << " did not converge";
    const auto u = flat(r.eigenvectors[k]);
    EXPECT_NEAR(u.norm().item<double>(), 1.0, 1e-10);
    EXPECT_LT((torch::mv(a, u) - want * u).norm().item<double>(), 1e-3 * std::abs(want)) << "eigenvector " << k;
  }
  EXPECT_NEAR(r.eigenvalues[1], -20, 1e-3);  // by magnitude: the negative one comes second
  EXPECT_NEAR(r.sum.item<double>(), r.eigenvalues[0] + r.eigenvalues[1] + r.eigenvalues[2], 1e-9);
  EXPECT_FALSE(r.sum.requires_grad());
  expect_error([&] { PowerIterationOptions().top_n(0).validate(); }, "top_n=0");
}

TEST(Lanczos, ExtremeRitzValuesMatchEigvalsh) {
  auto gen = make_generator(9);
  const auto a = with_spectrum(gapped_spectrum(gen), gen);
  const auto params = leaves(torch::randn({200}, gen, kF64), {{10, 15}, {50}});
  const auto r = lanczos(quadratic(a, params), params, gen, LanczosOptions().iterations(60));
  ASSERT_EQ(r.runs.size(), 1u);
  const auto& run = r.runs[0];
  ASSERT_EQ(run.alphas.numel(), 60);
  ASSERT_EQ(run.betas.numel(), 59);
  EXPECT_TRUE(torch::allclose(run.ritz_values, torch::linalg::eigvalsh(run.tridiagonal(), "L")));
  const auto exact = torch::linalg::eigvalsh(a, "L");  // ascending
  const auto ritz = run.ritz_values;
  const auto rel = [](double got, double want) { return std::abs(got - want) / std::abs(want); };
  EXPECT_LT(rel(ritz[-1].item<double>(), exact[-1].item<double>()), 1e-4);  // 25
  EXPECT_LT(rel(ritz[-2].item<double>(), exact[-2].item<double>()), 1e-4);  // 16
  EXPECT_LT(rel(ritz[0].item<double>(), exact[0].item<double>()), 1e-4);    // -20
  EXPECT_NEAR(r.ritz_sum.item<double>(), run.alphas.sum().item<double>(), 1e-9);
  EXPECT_NEAR(r.ritz_sum.item<double>(), ritz.sum().item<double>(), 1e-8);
}

TEST(Lanczos, RecoversTheWholeSpectrumWhenStepsReachTheDimension) {
  auto gen = make_generator(10);
  const auto a = random_symmetric(12, gen);
  const auto params = leaves(torch::randn({12}, gen, kF64), {{3, 2}, {6}});
  // 50 steps asked for, 12 possible: the recurrence must stop at n (or at breakdown), not invent values.
  const auto r = lanczos(quadratic(a, params), params, gen, LanczosOptions().iterations(50));
  const auto& run = r.runs[0];
  ASSERT_EQ(run.alphas.numel(), 12);
  EXPECT_TRUE(torch::allclose(run.ritz_values, torch::linalg::eigvalsh(a, "L"), 1e-8, 1e-8));
  EXPECT_NEAR(r.ritz_sum.item<double>(), a.trace().item<double>(), 1e-8);  // tr(T) = tr(H) when Q is square
}

TEST(Lanczos, SlqDensityIsNormalisedWithTheTraceAsMean) {
  auto gen = make_generator(11);
  const auto a = random_symmetric(40, gen);
  const auto params = leaves(torch::randn({40}, gen, kF64), {{40}});
  const int64_t probes = 300;
  const auto r = lanczos(quadratic(a, params), params, gen, LanczosOptions().iterations(8).probes(probes));
  ASSERT_EQ(r.runs.size(), static_cast<size_t>(probes));
  const auto& d = r.density;
  ASSERT_EQ(d.nodes.numel(), 8 * probes);
  EXPECT_NEAR(d.weights.sum().item<double>(), 1.0, 1e-10);
  EXPECT_GE(d.weights.min().item<double>(), 0.0);
  for (const auto& run : r.runs) EXPECT_NEAR(run.weights.sum().item<double>(), 1.0, 1e-10);
  // Σ_j τ_j² θ_j = e₁ᵀTe₁ = α₁ = qᵀHq for the unit start q = v/√n: the density's mean is an unbiased
  // estimate of tr(H)/n, equal to the probes' mean α₁.
  const double mean = (d.weights * d.nodes).sum().item<double>();
  torch::Tensor first_alphas = torch::empty({probes}, kF64);
  for (int64_t k = 0; k < probes; ++k) first_alphas[k] = r.runs[static_cast<size_t>(k)].alphas[0];
  EXPECT_NEAR(mean, first_alphas.mean().item<double>(), 1e-10);
  const double se = first_alphas.std().item<double>() / std::sqrt(static_cast<double>(probes));
  EXPECT_LT(std::abs(mean - a.trace().item<double>() / 40), 3 * se);
  // The smoothed density is a probability density with the same mean.
  const auto grid = torch::linspace(-30, 30, 2001, kF64);
  const auto rho = gaussian_density(d, grid, 0.5);
  const double dx = 60.0 / 2000;
  EXPECT_NEAR(rho.sum().item<double>() * dx, 1.0, 1e-6);
  EXPECT_NEAR((rho * grid).sum().item<double>() * dx, mean, 1e-6);
  expect_error([&] { gaussian_density(d, grid, 0); }, "sigma=0");
  expect_error([&] { LanczosOptions().iterations(0).validate(); }, "iterations=0");
}

TEST(JacobianPenalty, IsTheMeanSquaredGradient) {
  auto gen = make_generator(12);
  const auto a = random_symmetric(10, gen);
  const auto params = leaves(torch::randn({10}, gen, kF64), {{2, 3}, {4}});
  const auto x = flat(params).detach();
  const auto g = torch::mv(a, x) + 1;  // ∇(½xᵀAx + Σx)
  EXPECT_NEAR(jacobian_penalty(quadratic(a, params), params).item<double>(), g.pow(2).mean().item<double>(), 1e-12);
}

TEST(Differentiable, HutchinsonWithFixedProbesPassesFiniteDifferences) {
  auto gen = make_generator(13);
  const Scaled problem(gen);
  expect_derivatives_match_finite_differences(
      problem, 0.7,
      [&](const torch::Tensor& a, const TensorList& p) {
        auto probes = make_generator(99);
        return hutchinson_trace(problem.loss(p, a), p, 5, probes, /*create_graph=*/true).trace;
      },
      1e-6, "hutchinson");
}

TEST(Differentiable, LanczosRitzSumPassesFiniteDifferences) {
  auto gen = make_generator(14);
  const Scaled problem(gen);
  // 4 steps of 7: tr(T) depends on the Krylov basis, so this checks differentiation through the vectors.
  expect_derivatives_match_finite_differences(
      problem, 0.7,
      [&](const torch::Tensor& a, const TensorList& p) {
        auto probes = make_generator(98);
        return lanczos(problem.loss(p, a), p, probes, LanczosOptions().iterations(4).probes(2), true).ritz_sum;
      },
      1e-6, "lanczos");
}

// fixed_vectors (meta-training's hessian-esd): with all 7 steps the Krylov space is the whole space,
// tr T = tr H whatever the vectors, so holding them fixed loses nothing and FD must agree; with 4
// steps the derivative is that of Σ_j q_jᵀH q_j at fixed q_j, which differs from the full one.
TEST(Differentiable, LanczosWithFixedVectorsIsExactOnAFullKrylovSpace) {
  auto gen = make_generator(16);
  const Scaled problem(gen);
  expect_derivatives_match_finite_differences(
      problem, 0.7,
      [&](const torch::Tensor& a, const TensorList& p) {
        auto probes = make_generator(97);
        return lanczos(problem.loss(p, a), p, probes, LanczosOptions().iterations(7).fixed_vectors(true), true)
            .ritz_sum;
      },
      1e-6, "lanczos fixed vectors");
  const auto grad_a = [&](bool fixed) {
    const auto a = torch::tensor(0.7, kF64).requires_grad_(true);
    const auto params = leaves(problem.x0, {{2, 2}, {3}});
    auto probes = make_generator(97);
    const auto r = lanczos(problem.loss(params, a), params, probes, LanczosOptions().iterations(4).fixed_vectors(fixed), true);
    return torch::autograd::grad({r.ritz_sum}, {a})[0].item<double>();
  };
  EXPECT_GT(std::abs(grad_a(true) - grad_a(false)), 1e-8);
}

TEST(Differentiable, PowerIterationEigenvalueSumPassesFiniteDifferences) {
  auto gen = make_generator(15);
  const Scaled problem(gen);
  const auto options = PowerIterationOptions().top_n(2).max_iterations(20000).tolerance(1e-13);
  {  // the problem's top two |λ| must be well separated from the third for power iteration to settle
    const auto params = leaves(problem.x0, {{2, 2}, {3}});
    auto probes = make_generator(97);
    const auto r = top_eigenpairs(problem.loss(params, torch::tensor(0.7, kF64)), params, probes, options);
    EXPECT_LT(r.iterations[0], options.max_iterations());
    EXPECT_LT(r.iterations[1], options.max_iterations());
  }
  expect_derivatives_match_finite_differences(
      problem, 0.7,
      [&](const torch::Tensor& a, const TensorList& p) {
        auto probes = make_generator(97);
        return top_eigenpairs(problem.loss(p, a), p, probes, options, true).sum;
      },
      1e-5, "power iteration");
}

TEST(Differentiable, JacobianPenaltyPassesFiniteDifferences) {
  auto gen = make_generator(16);
  const Scaled problem(gen);
  expect_derivatives_match_finite_differences(
      problem, 0.7,
      [&](const torch::Tensor& a, const TensorList& p) { return jacobian_penalty(problem.loss(p, a), p); }, 1e-6,
      "jacobian");
}

TEST(Differentiable, ResultsKeepTheirGraphUnderACallersNoGradGuard) {
  auto gen = make_generator(17);
  const Scaled problem(gen);
  const auto a = torch::tensor(0.7, kF64).requires_grad_(true);
  const auto params = leaves(problem.x0, {{2, 2}, {3}});
  const HessianOperator h(problem.loss(params, a), params);
  const auto d_da = [&](const torch::Tensor& value) {
    return torch::autograd::grad({value}, {a}, {}, /*retain_graph=*/true)[0].item<double>();
  };
  auto g1 = make_generator(5), g2 = make_generator(6);
  const double trace_ref = d_da(hutchinson_trace(h, 3, g1, true).trace);
  const double ritz_ref = d_da(lanczos(h, g2, LanczosOptions().iterations(3), true).ritz_sum);
  const double jacob_ref = d_da(jacobian_penalty(h.grads()));
  torch::NoGradGuard no_grad;
  auto g3 = make_generator(5), g4 = make_generator(6);
  const auto trace = hutchinson_trace(h, 3, g3, true).trace;
  const auto ritz = lanczos(h, g4, LanczosOptions().iterations(3), true).ritz_sum;
  const auto jacob = jacobian_penalty(h.grads());
  ASSERT_TRUE(trace.requires_grad() && ritz.requires_grad() && jacob.requires_grad());
  EXPECT_NEAR(d_da(trace), trace_ref, 1e-12 * std::max(1.0, std::abs(trace_ref)));
  EXPECT_NEAR(d_da(ritz), ritz_ref, 1e-12 * std::max(1.0, std::abs(ritz_ref)));
  EXPECT_NEAR(d_da(jacob), jacob_ref, 1e-12 * std::max(1.0, std::abs(jacob_ref)));
}
