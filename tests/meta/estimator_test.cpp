// meta/estimator: truncated ES agrees with the exact gradient of its truncation, PES with the
// full-horizon gradient where truncated ES is measurably biased, the forward unroll is unroll()'s
// trajectory, the blow-up cap, and the trainer's options, resume and distributed-free equivalences.
#include <l2o/core/error.h>
#include <l2o/core/rng.h>
#include <l2o/learned/lstm.h>
#include <l2o/learned/trainable_adam.h>
#include <l2o/meta/estimator.h>
#include <l2o/meta/trainer.h>
#include <l2o/problems/quadratic.h>
#include <l2o/problems/registry.h>

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

using namespace l2o;
namespace fs = std::filesystem;

namespace {

std::shared_ptr<learned::TrainableAdam> adam64(double lr) {
  auto rule = std::make_shared<learned::TrainableAdam>(learned::TrainableAdamOptions().lr(lr));
  rule->to(torch::kDouble);
  rule->reset_parameters();
  return rule;
}

meta::Trajectory start(const optim::UpdateRule& rule, const problems::Problem& p, at::Generator& gen,
                       torch::Dtype dtype) {
  meta::Trajectory t;
  for (const auto& x : p.init_params(gen)) t.params.push_back(x.to(dtype));
  t.state = rule.init(t.params);
  return t;
}

/// φ's gradient as one flat float64 vector.
torch::Tensor flat_grad(optim::UpdateRule& rule) {
  std::vector<torch::Tensor> parts;
  for (const auto& p : rule.module()->parameters()) parts.push_back(p.grad().detach().reshape({-1}).to(torch::kDouble));
  return torch::cat(parts).clone();
}

torch::Tensor flat_phi(optim::UpdateRule& rule) {
  std::vector<torch::Tensor> parts;
  for (const auto& p : rule.module()->parameters()) parts.push_back(p.detach().reshape({-1}).clone());
  return torch::cat(parts);
}

/// Mean and standard error of the mean over rows of independent estimates.
struct MeanSe {
  torch::Tensor mean, se;
};
MeanSe mean_se(const std::vector<torch::Tensor>& rows) {
  const torch::Tensor x = torch::stack(rows);
  return {x.mean(0), x.std(0) / std::sqrt(static_cast<double>(rows.size()))};
}

/// The sum over `truncations` truncations of `estimator`'s estimates along one inner problem.
torch::Tensor horizon_estimate(meta::Estimator& estimator, optim::UpdateRule& rule, const problems::Problem& q,
                               const meta::Trajectory& s, meta::UnrollOptions uo, int truncations, at::Generator& gen) {
  meta::Trajectory traj = s;
  auto state = estimator.start(traj);
  torch::Tensor total;
  for (int t = 0; t < truncations; ++t) {
    meta::TruncationResult r = estimator.truncate(q, traj, uo, gen, state.get());
    EXPECT_TRUE(r.has_gradient);
    EXPECT_FALSE(r.diverged);
    const torch::Tensor g = flat_grad(rule);
    total = total.defined() ? total + g : g;
    traj = r.end;
  }
  return total;
}

std::string describe(const torch::Tensor& mean, const torch::Tensor& se, const torch::Tensor& exact) {
  std::ostringstream os;
  for (int64_t j = 0; j < mean.numel(); ++j) {
    os << "  [" << j << "] estimate " << mean[j].item<double>() << " +- " << se[j].item<double>() << ", exact "
       << exact[j].item<double>() << "\n";
  }
  return os.str();
}

}  // namespace

TEST(Estimator, ParsesNamesAndRejectsBadOptions) {
  EXPECT_EQ(meta::parse_estimator("tbptt"), meta::EstimatorType::kTbptt);
  EXPECT_EQ(meta::parse_estimator("es"), meta::EstimatorType::kEs);
  EXPECT_EQ(meta::parse_estimator("pes"), meta::EstimatorType::kPes);
  for (auto t : {meta::EstimatorType::kTbptt, meta::EstimatorType::kEs, meta::EstimatorType::kPes})
    EXPECT_EQ(meta::parse_estimator(meta::estimator_name(t)), t);
  try {
    meta::TrainOptions().estimator("spsa").validate();
    ADD_FAILURE() << "an unknown estimator was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'spsa' (known: tbptt, es, pes)"), std::string::npos) << e.what();
  }
  for (const double sigma : {0.0, -0.01, std::nan(""), std::numeric_limits<double>::infinity()}) {
    EXPECT_THROW(meta::TrainOptions().estimator("es").es_sigma(sigma).validate(), Error) << sigma;
  }
  try {
    meta::TrainOptions().es_pairs(0).validate();
    ADD_FAILURE() << "es_pairs=0 was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("es_pairs=0"), std::string::npos) << e.what();
  }
  EXPECT_THROW(meta::TrainOptions().es_cap_factor(0.5).validate(), Error);
  EXPECT_THROW(meta::TrainOptions().es_cap_factor(std::nan("")).validate(), Error);
  try {
    meta::TrainOptions().estimator("pes").if_mt(true).validate();
    ADD_FAILURE() << "imitation under pes was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("if_mt"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(meta::TrainOptions().estimator("pes").validate());
  EXPECT_NO_THROW(meta::TrainOptions().if_mt(true).validate());
  // A trainer refuses them too, before any work.
  EXPECT_THROW(meta::Trainer(meta::TrainOptions().optimizer("trainable_adam").estimator("ES")), Error);
}

// The forward unroll is unroll()'s trajectory, meta-objective and generator use, with no graph to
// φ: on a minibatched problem with gradient noise and both regulariser terms.
TEST(Estimator, ForwardUnrollFollowsUnrollsTrajectory) {
  torch::manual_seed(0);
  auto lstm = std::make_shared<learned::CoordinatewiseLstm>(learned::LstmOptions().output_scale(0.1).hidden_size(6));
  lstm->to(torch::kDouble);
  auto gen = make_generator(5);
  const auto problem = problems::make_problem("projection_quadratic:dim=3,samples=40,batch=4,noise=0.1", gen);
  ASSERT_FALSE(problem->deterministic());
  const meta::Trajectory s = start(*lstm, *problem, gen, torch::kDouble);
  for (const bool regularized : {false, true}) {
    for (const auto objective : {meta::Objective::kSum, meta::Objective::kLogRatio}) {
      meta::UnrollOptions o;
      o.length = 6;
      o.objective = objective;
      o.f0 = 50;
      o.alpha = regularized ? 0.01 : 0;
      o.beta = regularized ? 0.01 : 0;
      o.regularizer.hessian_itrs(2);
      auto g1 = make_generator(9), g2 = make_generator(9);
      const meta::UnrollResult a = meta::unroll(*lstm, *problem, s, o, g1);
      const meta::ForwardUnroll b = meta::forward_unroll(*lstm, *problem, s, o, g2);
      ASSERT_EQ(a.losses.size(), b.losses.size());
      for (size_t t = 0; t < a.losses.size(); ++t) EXPECT_NEAR(a.losses[t], b.losses[t], 1e-12 * std::abs(a.losses[t]));
      EXPECT_NEAR(a.meta_loss.item<double>(), b.meta_loss, 1e-12 * std::abs(b.meta_loss));
      EXPECT_NEAR(a.regularizer, b.regularizer, 1e-12 * std::abs(a.regularizer));
      EXPECT_EQ(a.hvps, b.hvps);
      if (regularized) {
        EXPECT_GT(b.hvps, 0);
      }
      EXPECT_EQ(a.end.step, b.end.step);
      EXPECT_TRUE(torch::allclose(a.end.params[0], b.end.params[0], 1e-12, 1e-14));
      EXPECT_FALSE(b.end.params[0].requires_grad());
      // Both consumed the same draws: the generators are in the same state.
      EXPECT_TRUE(torch::equal(torch::randn({4}, g1, torch::kDouble), torch::randn({4}, g2, torch::kDouble)));
    }
  }
}

// Test 1 of the brief: with many pairs, truncated ES agrees with the exact (second-order) gradient of
// the same single truncation within 3 standard errors per coordinate, on a smooth deterministic
// problem with TrainableAdam in float64; the gradient is clearly non-zero; φ is left as it was.
TEST(Estimator, EsAgreesWithTheExactGradientOfOneTruncation) {
  auto rule = adam64(0.05);
  auto gen = make_generator(1);
  problems::DmQuadratic q(2, 3, 0.5, gen);
  const meta::Trajectory s = start(*rule, q, gen, torch::kDouble);
  meta::UnrollOptions uo;
  uo.length = 4;
  uo.second_derivatives = true;
  uo.f0 = q.loss(s.params, {}).item<double>();
  auto tbptt = meta::make_estimator(*rule, meta::EstimatorOptions());
  auto g0 = make_generator(2);
  const meta::TruncationResult exact_r = tbptt->truncate(q, s, uo, g0, nullptr);
  ASSERT_TRUE(exact_r.has_gradient);
  const torch::Tensor exact = flat_grad(*rule);

  const torch::Tensor phi = flat_phi(*rule);
  auto es = meta::make_estimator(*rule, meta::EstimatorOptions().type(meta::EstimatorType::kEs).sigma(1e-3).pairs(20));
  std::vector<torch::Tensor> draws;
  for (int n = 0; n < 30; ++n) {  // 600 pairs
    auto g = make_generator(100, Stream::kTest, static_cast<uint64_t>(n));
    const meta::TruncationResult r = es->truncate(q, s, uo, g, nullptr);
    ASSERT_TRUE(r.has_gradient);
    ASSERT_EQ(r.plus.size(), 20u);
    if (n == 0) {
      // The carried trajectory and the logged meta-loss are the unperturbed φ's.
      EXPECT_NEAR(r.meta_loss, exact_r.meta_loss, 1e-12 * std::abs(exact_r.meta_loss));
      EXPECT_TRUE(torch::allclose(r.end.params[0], exact_r.end.params[0], 1e-12, 1e-14));
    }
    draws.push_back(flat_grad(*rule));
  }
  EXPECT_TRUE(torch::equal(flat_phi(*rule), phi)) << "ES did not restore phi bit for bit";
  const MeanSe m = mean_se(draws);
  const std::string table = describe(m.mean, m.se, exact);
  for (int64_t j = 0; j < exact.numel(); ++j) {
    EXPECT_LE(std::abs(m.mean[j].item<double>() - exact[j].item<double>()), 3 * m.se[j].item<double>())
        << "coordinate " << j << "\n"
        << table;
  }
  // Not vacuous: the lr coordinate's gradient is many standard errors from zero.
  EXPECT_GT(std::abs(exact[0].item<double>()), 10 * m.se[0].item<double>()) << table;
}

// Test 2 of the brief: over 5 truncations of a quadratic whose lr matters over the whole horizon,
// truncated ES's mean (summed over the truncations) is the truncated gradient, many standard errors
// from the full-horizon gradient, while PES's mean matches the full-horizon gradient.
TEST(Estimator, PesIsUnbiasedForTheHorizonWhereTruncatedEsIsNot) {
  auto rule = adam64(0.02);
  auto gen = make_generator(3);
  problems::DmQuadratic q(2, 3, 0.0, gen);
  const meta::Trajectory s = start(*rule, q, gen, torch::kDouble);
  const int truncations = 5;
  meta::UnrollOptions uo;
  uo.length = 4;
  uo.second_derivatives = true;
  uo.f0 = q.loss(s.params, {}).item<double>();
  auto tbptt = meta::make_estimator(*rule, meta::EstimatorOptions());
  // Full horizon: one TBPTT unroll through all 20 steps (the sum objective is the sum of the
  // truncations' meta-losses).
  meta::UnrollOptions full = uo;
  full.length = uo.length * truncations;
  auto g0 = make_generator(4);
  ASSERT_TRUE(tbptt->truncate(q, s, full, g0, nullptr).has_gradient);
  const torch::Tensor exact_full = flat_grad(*rule);
  auto g1 = make_generator(4);
  const torch::Tensor exact_truncated = horizon_estimate(*tbptt, *rule, q, s, uo, truncations, g1);

  auto estimate = [&](meta::EstimatorType type, int draws) {
    auto est = meta::make_estimator(*rule, meta::EstimatorOptions().type(type).sigma(1e-3).pairs(8));
    std::vector<torch::Tensor> rows;
    for (int n = 0; n < draws; ++n) {
      auto g = make_generator(200, Stream::kTest, static_cast<uint64_t>(n));
      rows.push_back(horizon_estimate(*est, *rule, q, s, uo, truncations, g));
    }
    return mean_se(rows);
  };
  const MeanSe es = estimate(meta::EstimatorType::kEs, 12);
  const MeanSe pes = estimate(meta::EstimatorType::kPes, 24);
  const std::string es_table = describe(es.mean, es.se, exact_full), pes_table = describe(pes.mean, pes.se, exact_full);
  const auto n = exact_full.numel();
  int biased = 0;
  for (int64_t j = 0; j < n; ++j) {
    const double e = es.mean[j].item<double>(), p = pes.mean[j].item<double>();
    EXPECT_LE(std::abs(e - exact_truncated[j].item<double>()), 3 * es.se[j].item<double>())
        << "ES against the truncated gradient, coordinate " << j << "\n"
        << describe(es.mean, es.se, exact_truncated);
    EXPECT_LE(std::abs(p - exact_full[j].item<double>()), 3 * pes.se[j].item<double>())
        << "PES against the full-horizon gradient, coordinate " << j << "\n"
        << pes_table;
    if (std::abs(e - exact_full[j].item<double>()) > 4 * es.se[j].item<double>()) ++biased;
  }
  // The lr coordinate shows the bias of truncation: ES is far from the full-horizon gradient, and
  // PES (its own standard error) resolves the difference.
  EXPECT_GT(std::abs(es.mean[0].item<double>() - exact_full[0].item<double>()), 4 * es.se[0].item<double>())
      << es_table;
  EXPECT_GT(std::abs(exact_truncated[0].item<double>() - exact_full[0].item<double>()), 4 * pes.se[0].item<double>())
      << pes_table;
  EXPECT_GE(biased, 1);
}

// A perturbed unroll that diverges scores the blow-up cap; a diverged φ logs it too; a cap-only
// truncation gives a zero estimate. PES keeps a diverged side stopped at the cap.
TEST(Estimator, DivergedUnrollsScoreTheBlowUpCap) {
  auto rule = adam64(0.05);
  auto gen = make_generator(1);
  problems::DmQuadratic q(2, 3, 0.5, gen);
  const meta::Trajectory s = start(*rule, q, gen, torch::kDouble);
  meta::UnrollOptions uo;
  uo.length = 3;
  uo.f0 = q.loss(s.params, {}).item<double>();
  EXPECT_DOUBLE_EQ(meta::loss_cap(uo, 1e3), 3 * 1e3 * (uo.f0 + 1e-6));
  meta::UnrollOptions lr = uo;
  lr.objective = meta::Objective::kLogRatio;
  EXPECT_DOUBLE_EQ(meta::loss_cap(lr, 1e3), std::log(1e3));
  // Every run "blows up" at its first step: f > 1e-9·f0.
  uo.blowup_factor = 1e-9;
  for (const auto type : {meta::EstimatorType::kEs, meta::EstimatorType::kPes}) {
    auto est = meta::make_estimator(*rule, meta::EstimatorOptions().type(type).pairs(3).cap_factor(50));
    auto state = est->start(s);
    auto g = make_generator(7);
    meta::TruncationResult r = est->truncate(q, s, uo, g, state.get());
    const double cap = meta::loss_cap(uo, 50);
    EXPECT_TRUE(r.diverged);
    EXPECT_TRUE(r.has_gradient);
    EXPECT_EQ(r.meta_loss, cap);
    for (size_t i = 0; i < 3; ++i) {
      EXPECT_EQ(r.plus[i], cap);
      EXPECT_EQ(r.minus[i], cap);
    }
    EXPECT_EQ(flat_grad(*rule).abs().max().item<double>(), 0.0);
  }
  // Under PES a side that diverged stays stopped at the cap for the rest of the inner problem: after
  // a truncation where everything blew up, the next one (no blow-up test) still scores only caps,
  // while ES's fresh pairs from the same start score real losses.
  for (const auto type : {meta::EstimatorType::kEs, meta::EstimatorType::kPes}) {
    auto est = meta::make_estimator(*rule, meta::EstimatorOptions().type(type).pairs(2));
    auto state = est->start(s);
    auto g = make_generator(8);
    meta::UnrollOptions o = uo;
    const meta::TruncationResult first = est->truncate(q, s, o, g, state.get());
    o.blowup_factor = 0;
    const meta::TruncationResult second = est->truncate(q, first.end, o, g, state.get());
    const double cap = meta::loss_cap(o, 1e3);
    EXPECT_FALSE(second.diverged);
    EXPECT_LT(second.meta_loss, cap);
    for (size_t i = 0; i < 2; ++i) {
      if (type == meta::EstimatorType::kPes) {
        EXPECT_EQ(second.plus[i], cap);
        EXPECT_EQ(second.minus[i], cap);
      } else {
        EXPECT_LT(second.plus[i], cap);
        EXPECT_NE(second.plus[i], second.minus[i]);
      }
    }
  }
}

namespace {
meta::TrainOptions tiny(const std::string& estimator) {
  return meta::TrainOptions()
      .optimizer("lstm:output_scale=0.1,hidden_size=4")
      .problem("dm_quadratic:batch=4,dim=3")
      .num_steps(8)
      .unroll_length(4)
      .meta_lr(0.01)
      .evaluation_period(0)
      .estimator(estimator)
      .es_pairs(2)
      .seed(5);
}
std::string temp_dir(const std::string& name) {
  const auto dir = fs::temp_directory_path() / ("l2o_estimator_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  return dir.string();
}
}  // namespace

// Test 3 of the brief: ES and PES runs resume bit for bit, and the estimator and its options
// round-trip through the checkpoint; a checkpoint without them loads as tbptt.
TEST(Estimator, EsAndPesRunsResumeBitForBit) {
  for (const std::string name : {"es", "pes"}) {
    const std::string dir = temp_dir(name);
    meta::Trainer straight(tiny(name).meta_iterations(4).es_sigma(0.02).es_cap_factor(77));
    const auto initial = flat_phi(*straight.rule());
    straight.run(true);
    EXPECT_FALSE(torch::equal(flat_phi(*straight.rule()), initial)) << name << " did not train phi";

    meta::Trainer first(tiny(name).meta_iterations(2).es_sigma(0.02).es_cap_factor(77).output_dir(dir));
    first.run(true);
    auto resumed = meta::Trainer::resume(dir + "/latest.pt", 4);
    EXPECT_EQ(resumed->options().estimator(), name);
    EXPECT_EQ(resumed->options().es_sigma(), 0.02);
    EXPECT_EQ(resumed->options().es_pairs(), 2);
    EXPECT_EQ(resumed->options().es_cap_factor(), 77);
    resumed->run(true);
    EXPECT_TRUE(torch::equal(flat_phi(*straight.rule()), flat_phi(*resumed->rule()))) << name;
    fs::remove_all(dir);
  }
  // ES and PES train different φ from TBPTT and from each other on the same draws.
  meta::Trainer tb(tiny("tbptt").meta_iterations(2)), es(tiny("es").meta_iterations(2)),
      pes(tiny("pes").meta_iterations(2));
  tb.run(true), es.run(true), pes.run(true);
  EXPECT_FALSE(torch::equal(flat_phi(*tb.rule()), flat_phi(*es.rule())));
  EXPECT_FALSE(torch::equal(flat_phi(*es.rule()), flat_phi(*pes.rule())));

  nlohmann::json j = tiny("pes").to_json();
  EXPECT_EQ(meta::TrainOptions::from_json(j).estimator(), "pes");
  for (const char* key : {"estimator", "es_sigma", "es_pairs", "es_cap_factor"}) j.erase(key);
  const meta::TrainOptions old = meta::TrainOptions::from_json(j);
  EXPECT_EQ(old.estimator(), "tbptt");
  EXPECT_EQ(old.es_sigma(), 0.01);
  EXPECT_EQ(old.es_pairs(), 8);
}

// End to end: ES and PES meta-training raise TrainableAdam's too small learning rate, so the
// meta-loss falls (the estimate has the right sign and reaches the meta-optimizer).
TEST(Estimator, EsAndPesMetaTrainingLowersTheMetaLoss) {
  for (const std::string name : {"es", "pes"}) {
    meta::Trainer trainer(meta::TrainOptions()
                              .optimizer("trainable_adam:lr=0.001")
                              .problem("dm_quadratic:batch=4,dim=3")
                              .num_steps(20)
                              .unroll_length(5)
                              .meta_lr(0.05)
                              .evaluation_period(0)
                              .meta_iterations(20)
                              .estimator(name)
                              .es_pairs(4)
                              .seed(1));
    std::vector<double> losses;
    for (int i = 0; i < 20; ++i) losses.push_back(trainer.step().meta_loss);
    double early = 0, late = 0;
    for (int i = 0; i < 5; ++i) early += losses[i], late += losses[15 + i];
    EXPECT_LT(late, 0.8 * early) << name << ": early " << early / 5 << " late " << late / 5;
  }
}
