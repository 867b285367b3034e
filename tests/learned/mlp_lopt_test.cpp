// MlpLopt (learned_optimization's AdafacMLPLOpt): state layout, accumulators, features and the step
// against a hand computation, derivatives, checkpoints, the adapter, options and convergence.
#include "rule_checks.h"

#include <l2o/core/error.h>
#include <l2o/learned/mlp_lopt.h>
#include <l2o/learned/registry.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <vector>

using namespace l2o;

namespace {
std::shared_ptr<learned::MlpLopt> make_double(learned::MlpLoptOptions o = {}) {
  torch::manual_seed(5);
  auto rule = std::make_shared<learned::MlpLopt>(o);
  rule->to(torch::kDouble);
  return rule;
}

torch::Tensor phi(learned::MlpLopt& rule, const std::string& name) { return rule.named_parameters()[name]; }

using Rows = std::vector<std::vector<double>>;

// Accumulator after two steps from 0: β(1 − β)x₁ + (1 − β)x₂.
double two_steps(double beta, double x1, double x2) { return beta * (1 - beta) * x1 + (1 - beta) * x2; }

double rsqrt(double x) { return 1 / std::sqrt(x); }

// Normalises each column over the rows (x / √(mean x² + 1e-5)) and appends the 11 time features of
// step t: tanh(t/τ − 1).
torch::Tensor finish(Rows rows, double t) {
  const size_t n = rows.size(), f = rows[0].size();
  for (size_t c = 0; c < f; ++c) {
    double ms = 0;
    for (const auto& r : rows) ms += r[c] * r[c] / static_cast<double>(n);
    for (auto& r : rows) r[c] /= std::sqrt(ms + 1e-5);
  }
  for (auto& r : rows)
    for (double tau : {1., 3., 10., 30., 100., 300., 1000., 3000., 10000., 30000., 100000.})
      r.push_back(std::tanh(t / tau - 1));
  auto out = torch::empty({static_cast<int64_t>(n), static_cast<int64_t>(rows[0].size())}, torch::kDouble);
  for (size_t i = 0; i < n; ++i)
    for (size_t c = 0; c < rows[i].size(); ++c) out[static_cast<int64_t>(i)][static_cast<int64_t>(c)] = rows[i][c];
  return out;
}

using rule_checks::rel_err;

// Column index of the features, with 3 momenta, 1 second moment, 3 factored accumulators.
constexpr int64_t kG = 0, kFacG0 = 10;
}  // namespace

TEST(MlpLopt, FactoredDimsAreTheTwoLargestLaterFirstOnTies) {
  using learned::MlpLopt;
  using Dims = std::pair<int64_t, int64_t>;
  EXPECT_EQ(MlpLopt::factored_dims({2, 3}), Dims(0, 1));
  EXPECT_EQ(MlpLopt::factored_dims({3, 2}), Dims(1, 0));
  EXPECT_EQ(MlpLopt::factored_dims({5, 5}), Dims(0, 1));
  // A conv weight [out, in, kh, kw]: out and in, the other dims stay batch dims of the accumulators.
  EXPECT_EQ(MlpLopt::factored_dims({8, 4, 3, 3}), Dims(1, 0));
  EXPECT_EQ(MlpLopt::factored_dims({8, 1, 3, 3}), Dims(3, 0));
  EXPECT_EQ(MlpLopt::factored_dims({7}).first, -1);
  EXPECT_EQ(MlpLopt::factored_dims({}).first, -1);
}

TEST(MlpLopt, PhiAndStateShapes) {
  auto rule = make_double();
  EXPECT_EQ(rule->num_features(), 39);  // 28 normalised + 11 time features, as the reference
  EXPECT_EQ(phi(*rule, "w0").sizes(), (std::vector<int64_t>{39, 32}));
  EXPECT_EQ(phi(*rule, "w1").sizes(), (std::vector<int64_t>{32, 32}));
  EXPECT_EQ(phi(*rule, "w2").sizes(), (std::vector<int64_t>{32, 2}));
  EXPECT_TRUE(torch::equal(phi(*rule, "b2"), torch::zeros({2}, torch::kDouble)));
  EXPECT_TRUE(torch::equal(phi(*rule, "momentum_decays"), torch::zeros({3}, torch::kDouble)));
  // haiku's TruncatedNormal(1/√fan_in): nothing beyond 2 standard deviations, std ≈ 0.88/√fan_in.
  const auto w1 = phi(*rule, "w1") * std::sqrt(32.0);
  EXPECT_LE(w1.abs().max().item<double>(), 2.0);
  EXPECT_NEAR(w1.std().item<double>(), 0.88, 0.06);

  TensorList p = {torch::zeros({8, 4, 3, 3}, torch::kDouble), torch::zeros({5}, torch::kDouble),
                  torch::zeros({}, torch::kDouble)};
  const auto s = rule->init(p);
  EXPECT_EQ(s.at("mom")[0].sizes(), (std::vector<int64_t>{8, 4, 3, 3, 3}));
  EXPECT_EQ(s.at("rms")[0].sizes(), (std::vector<int64_t>{8, 4, 3, 3, 1}));
  EXPECT_EQ(s.at("fac_row")[0].sizes(), (std::vector<int64_t>{4, 3, 3, 3}));  // mean over out (d0)
  EXPECT_EQ(s.at("fac_col")[0].sizes(), (std::vector<int64_t>{8, 3, 3, 3}));  // mean over in (d1)
  EXPECT_EQ(s.at("fac_v")[0].numel(), 0);
  EXPECT_EQ(s.at("fac_v")[1].sizes(), (std::vector<int64_t>{5, 3}));
  EXPECT_EQ(s.at("fac_row")[1].numel(), 0);
  EXPECT_EQ(s.at("mom")[2].sizes(), (std::vector<int64_t>{1, 3}));  // 0-d computed as [1]

  // float32 under NoGradGuard gives the float64 result to float32 precision, shapes kept.
  torch::manual_seed(9);
  TensorList q = {torch::randn({8, 4, 3, 3}, torch::kDouble), torch::randn({5}, torch::kDouble),
                  torch::randn({}, torch::kDouble)};
  TensorList g = {torch::randn({8, 4, 3, 3}, torch::kDouble), torch::randn({5}, torch::kDouble),
                  torch::randn({}, torch::kDouble)};
  learned::MlpLopt single;
  {
    torch::NoGradGuard no_grad;
    for (auto& kv : single.named_parameters()) kv.value().copy_(phi(*rule, kv.key()));
  }
  torch::NoGradGuard no_grad;
  auto r64 = rule->update(q, g, rule->init(q));
  TensorList q32, g32;
  for (size_t i = 0; i < q.size(); ++i) {
    q32.push_back(q[i].to(torch::kFloat));
    g32.push_back(g[i].to(torch::kFloat));
  }
  auto r32 = single.update(q32, g32, single.init(q32));
  for (size_t i = 0; i < q.size(); ++i) {
    EXPECT_EQ(r32.params[i].sizes(), q[i].sizes());
    EXPECT_EQ(r32.params[i].scalar_type(), torch::kFloat);
    EXPECT_TRUE(torch::allclose(r32.steps[i].to(torch::kDouble), r64.steps[i], 1e-4, 1e-9)) << i;
    EXPECT_GT(r64.steps[i].abs().max().item<double>(), 1e-5) << i;
  }
}

// Two steps on a factored [2, 3], a 1-d [3] and a 0-d tensor, with learned decay offsets δ ≠ 0: the
// accumulators, the 39 features and the step, written coordinate by coordinate from the reference's
// equations. φ is set so that direction = the Adafactor-scaled gradient feature (decay 0) and
// magnitude = the gradient feature: two hidden ReLU units per feature, relu(x) − relu(−x) = x.
TEST(MlpLopt, AccumulatorsFeaturesAndStepMatchAHandComputation) {
  auto rule = make_double(learned::MlpLoptOptions().hidden_layers(1).hidden_size(4).step_mult(0.1).exp_mult(0.5));
  const std::vector<double> dm = {0.02, -0.03, 0.01}, dr = {-0.05}, df = {0.03, 0.0, -0.02};
  const std::vector<double> bm0 = {0.9, 0.99, 0.999}, br0 = {0.999};
  std::vector<double> bm, bf;
  for (size_t k = 0; k < 3; ++k) {
    bm.push_back(1 - (1 - bm0[k]) * std::exp(10 * dm[k]));
    bf.push_back(1 - (1 - bm0[k]) * std::exp(10 * df[k]));
  }
  const double br = 1 - (1 - br0[0]) * std::exp(10 * dr[0]);
  {
    torch::NoGradGuard no_grad;
    phi(*rule, "momentum_decays").copy_(torch::tensor(dm, torch::kDouble));
    phi(*rule, "rms_decays").copy_(torch::tensor(dr, torch::kDouble));
    phi(*rule, "adafactor_decays").copy_(torch::tensor(df, torch::kDouble));
    auto w0 = phi(*rule, "w0"), w1 = phi(*rule, "w1");
    w0.zero_();
    w0[kFacG0][0] = 1;
    w0[kFacG0][1] = -1;
    w0[kG][2] = 1;
    w0[kG][3] = -1;
    w1.copy_(torch::tensor({{1., 0.}, {-1., 0.}, {0., 1.}, {0., -1.}}, torch::kDouble));
    phi(*rule, "b0").zero_();
    phi(*rule, "b1").zero_();
  }
  const Rows a1 = {{0.5, -1.0, 2.0}, {0.1, 0.3, -0.7}}, a2 = {{-0.2, 0.8, 1.5}, {0.6, -0.4, 0.9}};
  const std::vector<double> v1 = {1.0, -0.5, 0.25}, v2 = {0.3, 0.7, -1.2};
  const double s1 = 0.4, s2 = -0.9;
  auto t2 = [](const Rows& r) {
    return torch::tensor({r[0][0], r[0][1], r[0][2], r[1][0], r[1][1], r[1][2]}, torch::kDouble).view({2, 3});
  };
  const TensorList p0 = {torch::tensor({{1.0, 2.0, -1.0}, {0.5, 0.0, 3.0}}, torch::kDouble),
                         torch::tensor({-1.0, 0.2, 0.7}, torch::kDouble), torch::tensor(1.5, torch::kDouble)};
  const TensorList g1 = {t2(a1), torch::tensor(v1, torch::kDouble), torch::tensor(s1, torch::kDouble)};
  const TensorList g2 = {t2(a2), torch::tensor(v2, torch::kDouble), torch::tensor(s2, torch::kDouble)};
  torch::NoGradGuard no_grad;
  const auto r1 = rule->update(p0, g1, rule->init(p0));
  const auto r2 = rule->update(r1.params, g2, r1.state);
  EXPECT_EQ(r2.state.step, 2);
  const TensorList& p1 = r1.params;

  // Unfactored coordinates (the [3] and the 0-d tensor): raw features from (θ, g₁, g₂).
  auto unfactored_row = [&](double p, double x1, double x2, const torch::Tensor& mom, const torch::Tensor& rms,
                            const torch::Tensor& fv) {
    std::vector<double> m(3), fac(3);
    for (int64_t k = 0; k < 3; ++k) {
      m[k] = two_steps(bm[k], x1, x2);
      fac[k] = two_steps(bf[k], x1 * x1 + 1e-30, x2 * x2 + 1e-30);
      EXPECT_NEAR(mom[k].item<double>(), m[k], 1e-14);
      EXPECT_NEAR(fv[k].item<double>(), fac[k], 1e-14);
    }
    const double v = two_steps(br, x1 * x1, x2 * x2);
    EXPECT_NEAR(rms[0].item<double>(), v, 1e-14);
    std::vector<double> row = {x2, p};
    for (double mk : m) row.push_back(mk);
    row.push_back(v);
    for (double mk : m) row.push_back(mk * rsqrt(v + 1e-6));
    row.push_back(rsqrt(v + 1e-6));
    for (double f : fac) row.push_back(x2 * rsqrt(std::max(f + 1e-9, 1e-9)));
    for (int rep = 0; rep < 2; ++rep)
      for (double f : fac) row.push_back(f);
    for (int rep = 0; rep < 2; ++rep)
      for (double f : fac) row.push_back(rsqrt(f + 1e-8));
    for (int64_t k = 0; k < 3; ++k) row.push_back(m[k] * std::pow(fac[k] + 1e-6, -0.5));
    return row;
  };

  // The factored [2, 3]: d1 = 0 (rows i), d0 = 1 (columns j); r_i = mean_j, c_j = mean_i of g² + 1e-30.
  Rows fa;
  {
    std::vector<std::vector<double>> r(2, std::vector<double>(3)), c(3, std::vector<double>(3));
    std::vector<double> r_mean(3, 0);
    for (int64_t k = 0; k < 3; ++k) {
      for (int i = 0; i < 2; ++i) {
        double m1 = 0, m2 = 0;
        for (int j = 0; j < 3; ++j) {
          m1 += (a1[i][j] * a1[i][j] + 1e-30) / 3;
          m2 += (a2[i][j] * a2[i][j] + 1e-30) / 3;
        }
        r[i][k] = two_steps(bf[k], m1, m2);
        EXPECT_NEAR(r2.state.at("fac_row")[0][i][k].item<double>(), r[i][k], 1e-14);
        r_mean[k] += r[i][k] / 2;
      }
      for (int j = 0; j < 3; ++j) {
        double m1 = 0, m2 = 0;
        for (int i = 0; i < 2; ++i) {
          m1 += (a1[i][j] * a1[i][j] + 1e-30) / 2;
          m2 += (a2[i][j] * a2[i][j] + 1e-30) / 2;
        }
        c[j][k] = two_steps(bf[k], m1, m2);
        EXPECT_NEAR(r2.state.at("fac_col")[0][j][k].item<double>(), c[j][k], 1e-14);
      }
    }
    for (int i = 0; i < 2; ++i) {
      for (int j = 0; j < 3; ++j) {
        const double x1 = a1[i][j], x2 = a2[i][j];
        std::vector<double> m(3), scale(3);
        for (int64_t k = 0; k < 3; ++k) {
          m[k] = two_steps(bm[k], x1, x2);
          EXPECT_NEAR(r2.state.at("mom")[0][i][j][k].item<double>(), m[k], 1e-14);
          scale[k] = rsqrt(std::max(r[i][k] / (r_mean[k] + 1e-9), 1e-9)) * rsqrt(std::max(c[j][k], 1e-9));
        }
        const double v = two_steps(br, x1 * x1, x2 * x2);
        EXPECT_NEAR(r2.state.at("rms")[0][i][j][0].item<double>(), v, 1e-14);
        std::vector<double> row = {x2, p1[0][i][j].item<double>()};
        for (double mk : m) row.push_back(mk);
        row.push_back(v);
        for (double mk : m) row.push_back(mk * rsqrt(v + 1e-6));
        row.push_back(rsqrt(v + 1e-6));
        for (int64_t k = 0; k < 3; ++k) row.push_back(x2 * scale[k]);
        for (int64_t k = 0; k < 3; ++k) row.push_back(r[i][k]);
        for (int64_t k = 0; k < 3; ++k) row.push_back(c[j][k]);
        for (int64_t k = 0; k < 3; ++k) row.push_back(rsqrt(r[i][k] + 1e-8));
        for (int64_t k = 0; k < 3; ++k) row.push_back(rsqrt(c[j][k] + 1e-8));
        for (int64_t k = 0; k < 3; ++k) row.push_back(m[k] * scale[k]);
        fa.push_back(row);
      }
    }
  }
  Rows fb;
  for (int j = 0; j < 3; ++j)
    fb.push_back(unfactored_row(p1[1][j].item<double>(), v1[j], v2[j], r2.state.at("mom")[1][j],
                                r2.state.at("rms")[1][j], r2.state.at("fac_v")[1][j]));
  const Rows fc = {unfactored_row(p1[2].item<double>(), s1, s2, r2.state.at("mom")[2][0], r2.state.at("rms")[2][0],
                                  r2.state.at("fac_v")[2][0])};
  EXPECT_EQ(r2.state.at("fac_row")[1].numel(), 0);
  EXPECT_EQ(r2.state.at("fac_v")[0].numel(), 0);

  const std::vector<torch::Tensor> expected = {finish(fa, 1), finish(fb, 1), finish(fc, 1)};
  for (size_t i = 0; i < expected.size(); ++i) {
    const auto got = rule->features(p1, g2, r1.state, i);
    ASSERT_EQ(got.sizes(), expected[i].sizes()) << i;
    EXPECT_TRUE(torch::allclose(got, expected[i], 1e-10, 1e-12)) << i << "\n" << got - expected[i];
    // step = d·exp(s·exp_mult)·step_mult with d, s the features φ routes to the outputs.
    const auto d = expected[i].select(1, kFacG0), s = expected[i].select(1, kG);
    const auto step = (d * torch::exp(s * 0.5) * 0.1).view(p1[i].sizes());
    EXPECT_TRUE(torch::allclose(r2.steps[i], -step, 1e-10, 1e-12)) << i;
    EXPECT_TRUE(torch::allclose(r2.params[i], p1[i] - step, 1e-10, 1e-12)) << i;
    EXPECT_GT(step.abs().min().item<double>(), 1e-3) << i;  // the comparison is not of zeros
  }
}

TEST(MlpLopt, GradientsMatchFiniteDifferences) {
  auto rule = make_double(learned::MlpLoptOptions().hidden_size(8).step_mult(0.05).exp_mult(0.3));
  {
    torch::NoGradGuard no_grad;
    phi(*rule, "momentum_decays").copy_(torch::tensor({0.01, -0.02, 0.03}, torch::kDouble));
    phi(*rule, "rms_decays").fill_(-0.01);
    phi(*rule, "adafactor_decays").copy_(torch::tensor({-0.01, 0.02, 0.01}, torch::kDouble));
    for (int l = 0; l < 3; ++l) phi(*rule, "b" + std::to_string(l)).normal_(0, 0.1);
  }
  const rule_checks::Quadratic q;  // a [6] (unfactored) and a [2, 2] (factored) tensor
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

TEST(MlpLopt, SaveLoadContinueEqualsUninterrupted) {
  auto rule = make_double();
  {
    torch::NoGradGuard g;
    for (auto& p : rule->parameters()) p.add_(0.01 * torch::randn_like(p));
  }
  rule_checks::expect_save_load_continue_equals_uninterrupted(*rule, "mlp_lopt");
}

TEST(MlpLopt, AdapterEqualsFunctionalRule) {
  rule_checks::expect_adapter_equals_functional(learned::make_rule("mlp_lopt:step_mult=0.01"));
}

TEST(MlpLopt, SpecRoundTripAndClearErrors) {
  auto rule = learned::make_rule(
      "mlp_lopt:hidden_size=8,hidden_layers=1,step_mult=0.01,momentum_decays=0.5/0.9,rms_decays=0.99,"
      "adafactor_decays=0.6/0.95");
  EXPECT_EQ(rule->name(), "mlp_lopt");
  EXPECT_EQ(learned::make_rule(rule->spec().str())->spec().str(), rule->spec().str());
  auto* m = dynamic_cast<learned::MlpLopt*>(rule.get());
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->options().adafactor_decays(), (std::vector<double>{0.6, 0.95}));
  EXPECT_EQ(m->num_features(), 2 + 2 + 1 + 2 + 1 + 12 + 11);
  EXPECT_EQ(learned::make_rule("mlp_lopt")->spec().str(), learned::MlpLopt().spec().str());

  auto message = [](const std::string& spec) {
    try {
      learned::make_rule(spec);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("mlp_lopt:hidden_size=0").find("hidden_size=0"), std::string::npos);
  EXPECT_NE(message("mlp_lopt:step_mult=-1").find("step_mult=-1"), std::string::npos);
  EXPECT_NE(message("mlp_lopt:momentum_decays=0.9/1/0.999").find("decay 1 outside"), std::string::npos);
  EXPECT_NE(message("mlp_lopt:momentum_decays=0.9//0.99").find("joined by '/'"), std::string::npos);
  EXPECT_NE(message("mlp_lopt:adafactor_decays=0.9/0.99").find("as many decays as momentum_decays"), std::string::npos);
  EXPECT_NE(message("mlp_lopt:rms_decays=0.9/0.99").find("one decay or as many"), std::string::npos);
  EXPECT_THROW(learned::make_rule("mlp_lopt:hiden_size=4"), Error);
}

// With φ routing the normalised m/√v feature (decay 0.9) to the direction and nothing to the
// magnitude, the rule is a per-tensor-normalised Adam of rate step_mult·c: it must converge on the
// quadratic. The untrained rule (random φ) need not descend; it must stay finite and move θ by about
// step_mult per coordinate and step.
TEST(MlpLopt, ConvergesOnAQuadraticWhenPhiIsAdamLike) {
  const rule_checks::Quadratic q;
  auto loss = [&](const TensorList& p) {
    return 0.5 * (q.a.mv(p[0]) - q.b).pow(2).sum().item<double>() + 0.25 * (p[1] - q.c).pow(2).sum().item<double>();
  };
  auto rule = make_double(learned::MlpLoptOptions().hidden_layers(1).hidden_size(2));
  {
    torch::NoGradGuard no_grad;
    constexpr int64_t kMOverSqrtV0 = 6;
    phi(*rule, "w0").zero_();
    phi(*rule, "w0")[kMOverSqrtV0][0] = 1;
    phi(*rule, "w0")[kMOverSqrtV0][1] = -1;
    phi(*rule, "w1").copy_(torch::tensor({{20., 0.}, {-20., 0.}}, torch::kDouble));
  }
  TensorList p = q.init();
  optim::State s = rule->init(p);
  const double f0 = loss(p);
  rule_checks::run(*rule, q, p, s, 200);
  EXPECT_LT(loss(p), 1e-3 * f0) << f0;

  auto untrained = make_double();
  TensorList u = q.init();
  optim::State us = untrained->init(u);
  rule_checks::run(*untrained, q, u, us, 200);
  EXPECT_TRUE(all_finite(u));
  const double moved = std::sqrt(squared_norm(sub(u, q.init())) / static_cast<double>(numel(u)));
  EXPECT_GT(moved, 1e-3);
  EXPECT_LT(moved, 1.0);
}

// Without a graph the step runs tensor by tensor in chunks of ~16K coordinates (rows of dim 0; two
// passes for the per-tensor normalisation); with one, on all coordinates at once. Both give the same
// parameters, steps and state over 5 steps: factored 2-D, 3-D and 4-D tensors in several chunks, a
// long vector in five, a vector, a scalar; float32 to 1e-5 and float64 to 1e-10.
TEST(MlpLopt, ChunkedStepWithoutAGraphEqualsTheGraphStep) {
  for (auto dtype : {torch::kFloat, torch::kDouble}) {
    torch::manual_seed(3);
    auto rule = std::make_shared<learned::MlpLopt>();
    rule->to(dtype);
    {
      torch::NoGradGuard no_grad;  // a φ away from its initialisation, decays included
      for (auto& p : rule->parameters()) p.add_(torch::randn(p.sizes(), torch::TensorOptions(dtype)) * 0.05);
    }
    auto gen = make_generator(8);
    TensorList init;
    for (std::vector<int64_t> shape : {std::vector<int64_t>{100, 500}, {70000}, {3, 50, 130}, {16, 8, 3, 3}, {7}, {}})
      init.push_back(torch::randn(shape, gen, torch::kDouble).to(dtype));
    TensorList pa = init, pb = init;
    auto sa = rule->init(pa), sb = rule->init(pb);
    double err = 0;
    const double tol = dtype == torch::kFloat ? 1e-5 : 1e-10;
    for (int t = 0; t < 5; ++t) {
      TensorList g;
      auto ggen = make_generator(50 + t);
      for (const auto& p : pa) g.push_back((p * 0.3 + torch::randn(p.sizes(), ggen, torch::kDouble).to(dtype)).detach());
      optim::UpdateResult chunked, whole;
      {
        torch::NoGradGuard no_grad;
        chunked = rule->update(pa, g, sa);
      }
      whole = rule->update(pb, g, sb);  // φ requires grad: the graph path
      ASSERT_TRUE(whole.params[0].requires_grad());
      for (size_t i = 0; i < init.size(); ++i) {
        err = std::max(err, rel_err(chunked.params[i], whole.params[i]));
        err = std::max(err, rel_err(chunked.steps[i], whole.steps[i]));
        EXPECT_GT(chunked.steps[i].abs().max().item<double>(), 0) << "tensor " << i;
      }
      for (const auto& kv : whole.state.slots)
        for (size_t i = 0; i < kv.second.size(); ++i)
          if (kv.second[i].numel() > 0) err = std::max(err, rel_err(chunked.state.at(kv.first)[i], kv.second[i]));
      // Both continue from the graph path's result: each step is compared on the same inputs.
      pb = l2o::detach(whole.params);
      sb = optim::detach(whole.state);
      pa = pb;
      sa = sb;
    }
    EXPECT_LE(err, tol) << c10::toString(dtype);
    std::printf("chunked vs whole, %s: largest relative difference %.2g\n", c10::toString(dtype), err);
  }
}
