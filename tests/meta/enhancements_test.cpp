// L2O-Entropy's enhancements in meta-training (SPEC §4): regularisers wired into the unroll and the
// meta-gradient, regularize_time, curriculum, imitation.
#include <l2o/core/error.h>
#include <l2o/core/rng.h>
#include <l2o/learned/lstm.h>
#include <l2o/learned/registry.h>
#include <l2o/meta/regularizer.h>
#include <l2o/meta/trainer.h>
#include <l2o/meta/unroll.h>
#include <l2o/problems/quadratic.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>

using namespace l2o;

namespace {

// f(θ) = Σ_i softplus(a_i·θ) + 0.05 Σ θ⁴: smooth, convex, with a Hessian that changes with θ, so the
// regularisers have non-zero derivatives in θ (unlike a quadratic's).
class TinySmooth : public problems::Problem {
 public:
  explicit TinySmooth(torch::Dtype dtype) : dtype_(dtype) {
    a_ = torch::tensor({{1.0, -0.5, 0.3}, {0.2, 0.8, -1.1}, {-0.7, 0.4, 0.9}, {0.5, 0.5, 0.5}}, dtype);
  }
  std::string name() const override { return "tiny_smooth"; }
  TensorList init_params(at::Generator&) const override { return {torch::tensor({0.6, -0.4, 0.9}, dtype_)}; }
  torch::Tensor loss(const TensorList& p, const problems::Batch&) const override {
    return torch::softplus(torch::mv(a_, p[0])).sum() + 0.05 * p[0].pow(4).sum();
  }

 private:
  torch::Dtype dtype_;
  torch::Tensor a_;
};

// f(θ) = ½ θᵀAθ with a fixed SPD A.
class FixedQuadratic : public problems::Problem {
 public:
  FixedQuadratic() { a_ = torch::tensor({{3.0, 1.0, 0.0}, {1.0, 2.0, 0.5}, {0.0, 0.5, 1.0}}, torch::kDouble); }
  std::string name() const override { return "fixed_quadratic"; }
  TensorList init_params(at::Generator&) const override { return {torch::tensor({1.0, -2.0, 0.5}, torch::kDouble)}; }
  torch::Tensor loss(const TensorList& p, const problems::Batch&) const override {
    return 0.5 * torch::dot(p[0], torch::mv(a_, p[0]));
  }
  const torch::Tensor& a() const { return a_; }

 private:
  torch::Tensor a_;
};

meta::Trajectory start(const optim::UpdateRule& rule, const problems::Problem& p) {
  auto gen = make_generator(0);
  meta::Trajectory t;
  t.params = p.init_params(gen);
  t.state = rule.init(t.params);
  return t;
}

meta::TrainOptions tiny() {
  return meta::TrainOptions()
      .optimizer("lstm:output_scale=0.1,hidden_size=10")
      .problem("dm_quadratic:batch=16,dim=5")
      .num_steps(20)
      .unroll_length(5)
      .meta_lr(0.01)
      .evaluation_period(0)
      .seed(3);
}

std::vector<torch::Tensor> snapshot(const meta::Trainer& t) {
  std::vector<torch::Tensor> out;
  for (const auto& p : t.rule()->module()->parameters()) out.push_back(p.detach().clone());
  return out;
}

bool same(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!torch::equal(a[i], b[i])) return false;
  return true;
}

}  // namespace

TEST(Regularizer, NamesAndTimesParse) {
  EXPECT_EQ(meta::parse_regularizer("hessian-esd"), meta::RegularizerType::kHessianEsd);
  EXPECT_EQ(meta::regularizer_name(meta::parse_regularizer("hessian-ev")), "hessian-ev");
  EXPECT_THROW(meta::parse_regularizer("hessian_esd"), Error);
  EXPECT_THROW(meta::parse_regularize_time("later"), Error);
  using meta::RegularizeTime;
  // Posterior: the second half of 5 unrolls is 2, 3, 4; prior the first two.
  for (int64_t i = 0; i < 5; ++i) {
    EXPECT_EQ(meta::regularize_unroll(RegularizeTime::kPosterior, i, 5), i >= 2) << i;
    EXPECT_EQ(meta::regularize_unroll(RegularizeTime::kPrior, i, 5), i < 2) << i;
    EXPECT_TRUE(meta::regularize_unroll(RegularizeTime::kAlways, i, 5));
    EXPECT_FALSE(meta::regularize_unroll(RegularizeTime::kNone, i, 5));
  }
  EXPECT_TRUE(meta::regularize_unroll(RegularizeTime::kPrior, 0, 1));
  EXPECT_TRUE(meta::regularize_unroll(RegularizeTime::kPosterior, 0, 1));
}

// On a 3-parameter quadratic every Hessian measure is exact: Lanczos and power iteration span the
// whole space, Hutchinson's Rademacher probes give vᵀAv whose mean over probes is near trace A.
TEST(Regularizer, ValuesOnAKnownHessian) {
  FixedQuadratic q;
  auto gen = make_generator(1);
  TensorList theta = fresh_leaves(q.init_params(gen));
  const TensorList g = torch::autograd::grad({q.loss(theta, {})}, theta, {}, true, true);
  const double trace = torch::trace(q.a()).item<double>();
  const double top = torch::linalg::eigvalsh(q.a(), "L").max().item<double>();
  auto value = [&](meta::RegularizerOptions o) { return meta::regularizer(g, theta, o, gen); };
  const auto esd = value(meta::RegularizerOptions().type(meta::RegularizerType::kHessianEsd));
  EXPECT_NEAR(esd.value.item<double>(), trace, 1e-9);
  EXPECT_EQ(esd.hvps, 3);  // the Krylov space is full after 3 steps
  const auto ev = value(meta::RegularizerOptions().type(meta::RegularizerType::kHessianEv).hessian_itrs(200));
  EXPECT_NEAR(ev.value.item<double>(), top, 1e-3 * top);
  const auto hutch = value(meta::RegularizerOptions().type(meta::RegularizerType::kHessian).hessian_itrs(10));
  EXPECT_EQ(hutch.hvps, 10);
  // vᵀAv = trace A + Σ_{i≠j} v_i v_j A_ij: off-diagonal mass 2·(1 + 0.5) bounds the error of one probe.
  EXPECT_NEAR(hutch.value.item<double>(), trace, 3.0 + 1e-9);
  const auto jacob = value(meta::RegularizerOptions().type(meta::RegularizerType::kJacob));
  EXPECT_NEAR(jacob.value.item<double>(), g[0].pow(2).mean().item<double>(), 1e-12);
  EXPECT_EQ(jacob.hvps, 0);
}

// β: the rule sees ∇(f + β·reg). With jacob on f = ½θᵀAθ, ∇reg = 2A²θ/n, checked through one SGD step.
TEST(Regularizer, BetaChangesTheGradientTheRuleSees) {
  FixedQuadratic q;
  const auto sgd = learned::make_rule("sgd:lr=0.1");
  meta::UnrollOptions o;
  o.length = 1;
  o.beta = 0.5;
  o.regularizer.type(meta::RegularizerType::kJacob);
  auto gen = make_generator(2);
  const auto s = start(*sgd, q);
  const auto r = meta::unroll(*sgd, q, s, o, gen);
  const auto theta = s.params[0];
  const auto grad = torch::mv(q.a(), theta) + 0.5 * 2.0 * torch::mv(torch::mm(q.a(), q.a()), theta) / 3.0;
  EXPECT_TRUE(torch::allclose(r.end.params[0], theta - 0.1 * grad, 1e-12, 1e-12));
  EXPECT_EQ(r.hvps, 0);
  EXPECT_GT(r.regularizer, 0);
}

// regularize_time=none computes nothing and trains exactly like a run without a regulariser.
TEST(Regularizer, NoneComputesNothing) {
  meta::Trainer plain(tiny());
  meta::Trainer none(tiny().reg_optimizer(true).reg_optimizee(true).reg_option("hessian-esd").regularize_time("none"));
  for (int i = 0; i < 2; ++i) {
    plain.step();
    EXPECT_EQ(none.step().hvps, 0);
  }
  EXPECT_TRUE(same(snapshot(plain), snapshot(none)));
  // posterior: only the last 2 of 4 unrolls (5 steps each) pay for 10 Lanczos HVPs per step
  // (16 quadratics of dimension 5: 80 parameters, so all 10 Lanczos steps run).
  meta::Trainer posterior(tiny().reg_optimizer(true).reg_option("hessian-esd").regularize_time("posterior"));
  const auto r = posterior.step();
  EXPECT_EQ(r.hvps, 2 * 5 * 10);
  EXPECT_GT(r.regularizer, 0);
  EXPECT_FALSE(same(snapshot(plain), snapshot(posterior)));
}

// The meta-gradient of a regularised meta-objective (α on the meta-loss, β on the optimizee loss,
// full second order) against float64 central differences, for each regulariser.
TEST(Regularizer, RegularisedMetaGradientMatchesFiniteDifferences) {
  for (const std::string name : {"hessian", "hessian-esd", "hessian-ev", "jacob"}) {
    torch::manual_seed(0);
    auto lstm = std::make_shared<learned::CoordinatewiseLstm>(learned::LstmOptions().output_scale(0.1).hidden_size(4));
    lstm->to(torch::kDouble);
    TinySmooth p(torch::kDouble);
    const auto s = start(*lstm, p);
    meta::UnrollOptions o;
    o.length = 3;
    o.second_derivatives = true;
    o.alpha = 0.3;
    o.beta = 0.2;
    o.regularizer.type(meta::parse_regularizer(name)).hessian_itrs(3);
    // hessian-ev's derivative holds the last power iterate fixed (exact at an eigenvector), so it is
    // checked converged; Lanczos's 3 steps span the 3-dimensional space, and Hutchinson is exact in
    // its probes.
    if (name == "hessian-ev") o.regularizer.hessian_itrs(2000).tolerance(0);
    // The same probes on every evaluation: a fresh generator from a fixed seed.
    auto meta_loss = [&]() {
      auto g = make_generator(7);
      return meta::unroll(*lstm, p, s, o, g).meta_loss;
    };
    const auto params = lstm->parameters();
    const auto grads = torch::autograd::grad({meta_loss()}, params);
    double worst = 0;
    int checked = 0;
    for (size_t i = 0; i < params.size(); ++i) {
      auto flat = params[i].view({-1});
      for (int64_t j = 0; j < flat.numel(); j += std::max<int64_t>(1, flat.numel() / 4)) {
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
        EXPECT_NEAR(ad, fd, 1e-6 * std::max(1.0, std::abs(fd))) << name << " param " << i << " entry " << j;
        worst = std::max(worst, std::abs(ad - fd));
        ++checked;
      }
    }
    EXPECT_GT(checked, 20) << name;
    // The α term really is in the meta-gradient: dropping it changes the gradient.
    o.alpha = 0;
    const auto plain = torch::autograd::grad({meta_loss()}, params);
    double diff = 0;
    for (size_t i = 0; i < params.size(); ++i) diff += (plain[i] - grads[i]).abs().sum().item<double>();
    EXPECT_GT(diff, 1e-6) << name;
  }
}

// Teacher forcing: the trajectory is the teacher's, step for step, whatever the learned rule does.
TEST(Imitation, TrajectoryFollowsTheTeacher) {
  auto gen = make_generator(4);
  problems::DmQuadratic q(4, 3, 0.5, gen);
  const auto learned_rule = learned::make_rule("trainable_adam");
  const auto teacher = learned::make_rule("adam:lr=0.01");
  meta::Trajectory s = start(*learned_rule, q);
  auto g0 = make_generator(0);
  s.params = q.init_params(g0);
  s.state = learned_rule->init(s.params);
  s.teacher_state = teacher->init(s.params);
  meta::UnrollOptions o;
  o.length = 4;
  o.teacher = teacher.get();
  auto g1 = make_generator(5);
  const auto r = meta::unroll(*learned_rule, q, s, o, g1);
  // The teacher alone, same start.
  TensorList theta = s.params;
  optim::State st = teacher->init(theta);
  for (int k = 0; k < 4; ++k) {
    TensorList leaves = fresh_leaves(theta);
    const auto g = torch::autograd::grad({q.loss(leaves, q.objective_batch())}, leaves);
    torch::NoGradGuard no_grad;
    auto u = teacher->update(l2o::detach(leaves), g, st);
    theta = u.params;
    st = u.state;
  }
  EXPECT_TRUE(torch::allclose(r.end.params[0], theta[0], 1e-6, 1e-7));
  // trainable_adam starts at lr 1e-3 against the teacher's 1e-2: the imitation loss is positive.
  EXPECT_GT(r.imitation, 0);
  EXPECT_NEAR(r.meta_loss.item<double>(), r.imitation, 1e-12);
}

// A rule that can represent the teacher's step learns it: with mt_ratio 1 the imitation loss of
// trainable_adam (lr 1e-3 at the start) against Adam lr 0.01 falls to near zero.
TEST(Imitation, TrainableAdamLearnsAdamsStep) {
  meta::Trainer t(tiny().optimizer("trainable_adam").if_mt(true).mt_ratio(1).mt_teacher("adam:lr=0.01").meta_lr(0.05));
  std::vector<double> losses;
  for (int i = 0; i < 80; ++i) {
    const auto r = t.step();
    EXPECT_TRUE(r.imitation);
    losses.push_back(r.meta_loss);
  }
  EXPECT_LT(losses.back(), 1e-3 * losses.front()) << "first " << losses.front() << " last " << losses.back();
  const double lr = std::exp(t.rule()->module()->named_parameters()["log_lr"].item<double>());
  EXPECT_NEAR(lr, 0.01, 0.01 * 0.05);
}

TEST(Imitation, RatioPicksAFractionOfMetaIterations) {
  meta::Trainer t(tiny().if_mt(true).mt_ratio(0.3).num_steps(5));
  int imitation = 0;
  for (int i = 0; i < 60; ++i) imitation += t.step().imitation ? 1 : 0;
  EXPECT_GT(imitation, 6);
  EXPECT_LT(imitation, 32);
  EXPECT_THROW(meta::Trainer(tiny().if_mt(true).mt_teacher("lstm")), Error);
  EXPECT_THROW(meta::Trainer(tiny().if_mt(true).mt_ratio(1.5)), Error);
}

// Curriculum on a tiny family: the first stage improves (its first evaluation beats +inf), so after 3
// evaluations φ is restored to the stage's best and the next horizon begins.
TEST(Curriculum, PromotesAfterThreeEvaluationsAndRestoresTheStageBest) {
  meta::Trainer t(tiny().if_cl(true).cl_horizons("10,20,40").evaluation_period(1).evaluation_epochs(2)
                      .meta_iterations(50).meta_lr(0.5));
  std::vector<std::vector<torch::Tensor>> phi;
  std::vector<double> validation;
  for (int i = 0; i < 3; ++i) {
    const auto r = t.step();
    EXPECT_EQ(r.num_steps, 10);
    ASSERT_TRUE(r.validation.has_value());
    validation.push_back(*r.validation);
    phi.push_back(snapshot(t));
  }
  const size_t best = static_cast<size_t>(std::min_element(validation.begin(), validation.end()) - validation.begin());
  EXPECT_EQ(t.counters().stage, 1);
  EXPECT_EQ(t.counters().stage_evaluations, 0);
  // A meta-rate this large makes the later evaluations worse, so the restore is exercised: φ after the
  // third meta-iteration is the earlier best, not the one it trained to.
  ASSERT_LT(best, 2u) << validation[0] << " " << validation[1] << " " << validation[2];
  EXPECT_TRUE(same(phi[2], phi[best]));
  EXPECT_EQ(t.step().num_steps, 20);
  EXPECT_TRUE(t.counters().stopped.empty());
}

// A stage whose evaluations never beat the best ends training. Stage 0 (10 steps) and the last stage
// (20 steps) both validate at 20 steps, and a meta-rate of 1e-30 leaves φ as it is, so the last stage
// cannot improve on the best of the first.
TEST(Curriculum, StageWithoutImprovementStops) {
  meta::Trainer t(tiny().if_cl(true).cl_horizons("10,20").evaluation_period(1).evaluation_epochs(2)
                      .meta_iterations(50).meta_lr(1e-30));
  t.run(true);
  EXPECT_EQ(t.counters().iteration, 6);
  EXPECT_EQ(t.counters().stage, 1);
  EXPECT_NE(t.counters().stopped.find("did not improve"), std::string::npos) << t.counters().stopped;
  EXPECT_TRUE(t.finished());
  EXPECT_THROW(meta::Trainer(tiny().if_cl(true).cl_horizons("10,5")), Error);
  EXPECT_THROW(meta::Trainer(tiny().if_cl(true).cl_horizons("10,x")), Error);
  EXPECT_THROW(meta::Trainer(tiny().if_cl(true).cl_horizons("2,10")), Error);  // < unroll_length
}

TEST(Trainer, TimeBudgetStopsTheRun) {
  meta::Trainer t(tiny().meta_iterations(100000).max_seconds(0.5));
  t.run(true);
  EXPECT_LT(t.counters().iteration, 100000);
  EXPECT_GE(t.counters().elapsed_seconds, 0.5);
}

// The curriculum's counters and stage best travel in the checkpoint: a run resumed mid-stage ends
// where the uninterrupted one does, φ bit for bit.
TEST(Curriculum, ResumeEqualsUninterrupted) {
  const auto dir = std::filesystem::temp_directory_path() / ("l2o_cl_resume_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  const auto options = tiny().if_cl(true).cl_horizons("10,20,40").evaluation_period(1).evaluation_epochs(2)
                           .meta_lr(0.5).if_mt(true).mt_ratio(0.5);
  meta::Trainer straight(meta::TrainOptions(options).meta_iterations(5));
  straight.run(true);
  meta::Trainer first(meta::TrainOptions(options).meta_iterations(2).output_dir(dir.string()));
  first.run(true);
  auto resumed = meta::Trainer::resume((dir / "latest.pt").string(), 5);
  EXPECT_EQ(resumed->counters().stage_evaluations, 2);
  resumed->run(true);
  EXPECT_EQ(resumed->counters().stage, straight.counters().stage);
  EXPECT_EQ(resumed->counters().stage_evaluations, straight.counters().stage_evaluations);
  EXPECT_TRUE(same(snapshot(*resumed), snapshot(straight)));
  std::filesystem::remove_all(dir);
}
