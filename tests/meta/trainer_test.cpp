#include <l2o/core/error.h>
#include <l2o/core/rng.h>
#include <l2o/io/checkpoint.h>
#include <l2o/meta/trainer.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

using namespace l2o;
namespace fs = std::filesystem;

namespace {
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
std::string temp_dir(const std::string& name) {
  const auto dir = fs::temp_directory_path() / ("l2o_trainer_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  return dir.string();
}
}  // namespace

TEST(Trainer, MetaLossFallsOnTinyQuadratics) {
  meta::Trainer trainer(tiny().meta_iterations(60));
  std::vector<double> losses;
  for (int i = 0; i < 60; ++i) losses.push_back(trainer.step().meta_loss);
  double early = 0, late = 0;
  for (int i = 0; i < 10; ++i) early += losses[i], late += losses[50 + i];
  EXPECT_LT(late, 0.7 * early) << "early " << early / 10 << " late " << late / 10;
}

TEST(Trainer, ResumeEqualsUninterruptedBitForBit) {
  const std::string dir = temp_dir("resume");
  meta::Trainer straight(tiny().meta_iterations(6));
  straight.run(true);

  meta::Trainer first(tiny().meta_iterations(3).output_dir(dir));
  first.run(true);  // writes latest.pt
  auto resumed = meta::Trainer::resume(dir + "/latest.pt", 6);
  EXPECT_EQ(resumed->counters().iteration, 3);
  resumed->run(true);

  const auto a = straight.rule()->module()->parameters(), b = resumed->rule()->module()->parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "parameter " << i;
  fs::remove_all(dir);
}

TEST(Trainer, InitFromStartsANewRunFromAnotherRunsPhi) {
  const std::string dir = temp_dir("init_from"), tuned = temp_dir("init_from_tuned");
  meta::Trainer first(tiny().meta_iterations(3).output_dir(dir));
  first.run(true);
  const auto phi = first.rule()->module()->parameters();
  // Another seed and longer horizons, φ taken from the first run: before any step it is that φ.
  meta::Trainer fine(tiny().seed(11).num_steps(40).meta_iterations(2).init_from(dir + "/latest.pt").output_dir(tuned));
  const auto start = fine.rule()->module()->parameters();
  for (size_t i = 0; i < phi.size(); ++i) EXPECT_TRUE(torch::equal(phi[i], start[i])) << "parameter " << i;
  EXPECT_EQ(fine.counters().iteration, 0);
  fine.run(true);
  // Its checkpoint records where it started and resumes without reading that file again.
  fs::remove_all(dir);
  auto resumed = meta::Trainer::resume(tuned + "/latest.pt", 3);
  EXPECT_EQ(resumed->options().init_from(), dir + "/latest.pt");
  EXPECT_EQ(resumed->counters().iteration, 2);
  // The same optimizer under another option that keeps φ's tensors (a larger output scale) starts from
  // that φ too; one whose tensors differ (hidden_size) is refused with a one-line error.
  meta::Trainer rescaled(tiny().optimizer("lstm:output_scale=0.5,hidden_size=10").init_from(tuned + "/latest.pt"));
  const auto same = rescaled.rule()->module()->parameters(), tuned_phi = resumed->rule()->module()->parameters();
  for (size_t i = 0; i < phi.size(); ++i) EXPECT_TRUE(torch::equal(tuned_phi[i], same[i])) << "parameter " << i;
  EXPECT_THROW(meta::Trainer(tiny().optimizer("lstm:output_scale=0.1,hidden_size=12").init_from(tuned + "/latest.pt")),
               l2o::Error);
  EXPECT_THROW(meta::Trainer(tiny().init_from(dir + "/missing.pt")), l2o::Error);
  fs::remove_all(tuned);
}

TEST(Trainer, ValidationKeepsBestAndLatestCheckpoints) {
  const std::string dir = temp_dir("ckpt");
  meta::Trainer trainer(tiny().meta_iterations(4).evaluation_period(2).evaluation_epochs(2).output_dir(dir));
  trainer.run(true);
  EXPECT_TRUE(fs::exists(dir + "/best.pt"));
  EXPECT_TRUE(fs::exists(dir + "/latest.pt"));
  EXPECT_TRUE(fs::exists(dir + "/train_log.csv"));
  EXPECT_GE(trainer.counters().best_iteration, 2);
  EXPECT_TRUE(std::isfinite(trainer.counters().best_validation));
  // The best checkpoint evaluates to the recorded validation value.
  auto best = meta::Trainer::resume(dir + "/best.pt");
  EXPECT_DOUBLE_EQ(best->validate(), trainer.counters().best_validation);
  fs::remove_all(dir);
}

TEST(Trainer, TrainLogDescribesTheRunThatWroteTheCheckpoints) {
  const std::string dir = temp_dir("log");
  auto iterations = [&] {
    std::ifstream in(dir + "/train_log.csv");
    std::string line;
    std::getline(in, line);
    EXPECT_EQ(line.rfind("iteration,", 0), 0u) << line;
    std::vector<int> its;
    while (std::getline(in, line)) its.push_back(std::stoi(line.substr(0, line.find(','))));
    return its;
  };
  meta::Trainer(tiny().meta_iterations(5).output_dir(dir)).run(true);
  EXPECT_EQ(iterations(), (std::vector<int>{0, 1, 2, 3, 4}));
  // A new run in the same folder starts a new log instead of appending to the old one.
  meta::Trainer(tiny().meta_iterations(2).output_dir(dir)).run(true);
  EXPECT_EQ(iterations(), (std::vector<int>{0, 1}));
  fs::copy_file(dir + "/latest.pt", dir + "/at2.pt");
  // Resuming continues the log ...
  meta::Trainer::resume(dir + "/latest.pt", 4)->run(true);
  EXPECT_EQ(iterations(), (std::vector<int>{0, 1, 2, 3}));
  // ... and resuming from an earlier checkpoint drops the rows it replaces.
  meta::Trainer::resume(dir + "/at2.pt", 3)->run(true);
  EXPECT_EQ(iterations(), (std::vector<int>{0, 1, 2}));
  // train_problems.csv names each iteration's drawn problem, and follows the same resumes.
  std::ifstream in(dir + "/train_problems.csv");
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(line, "iteration,task,problem");
  std::vector<std::string> rows;
  while (std::getline(in, line)) rows.push_back(line);
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[2].rfind("2,0,\"dm_quadratic:", 0), 0u) << rows[2];
  fs::remove_all(dir);
}

TEST(Trainer, TrainProblemsLogNamesEachDrawOfASetOrFamily) {
  const std::string dir = temp_dir("problems_log");
  meta::Trainer(tiny()
                    .problem("dm_quadratic:batch=16,dim=5;mlp_family:dataset=random,width=4..8,depth=1,batch=8")
                    .meta_iterations(12)
                    .output_dir(dir))
      .run(true);
  std::ifstream in(dir + "/train_problems.csv");
  std::string line;
  std::getline(in, line);
  std::set<std::string> seen;
  int rows = 0;
  while (std::getline(in, line)) {
    ++rows;
    const auto first = line.find(','), second = line.find(',', first + 1);
    EXPECT_EQ(std::stoi(line.substr(0, first)), rows - 1);
    const std::string spec = line.substr(second + 1);
    ASSERT_GE(spec.size(), 2u);
    EXPECT_EQ(spec.front(), '"');
    seen.insert(spec.substr(1, spec.find_first_of(":\"", 1) - 1));
    // A family's draw is logged as the concrete problem it made, not as the family.
    EXPECT_EQ(spec.find("mlp_family"), std::string::npos) << spec;
  }
  EXPECT_EQ(rows, 12);
  EXPECT_EQ(seen, (std::set<std::string>{"dm_quadratic", "mlp"}));
  fs::remove_all(dir);
}

TEST(Trainer, BadOptionsAreRejected) {
  EXPECT_THROW(meta::Trainer(tiny().unroll_length(50)), l2o::Error);
  EXPECT_THROW(meta::Trainer(tiny().optimizer("adam")), l2o::Error);
  EXPECT_THROW(meta::Trainer(tiny().problem("nope")), l2o::Error);
  EXPECT_THROW(meta::Trainer(tiny().objective("max")), l2o::Error);
  EXPECT_THROW(meta::Trainer(tiny().meta_optimizer("sgd")), l2o::Error);
}

TEST(Trainer, NonFiniteMetaGradientEntriesAreZeroedCountedAndClipped) {
  auto a = torch::zeros({4}, torch::requires_grad());
  auto b = torch::zeros({2}, torch::requires_grad());
  a.mutable_grad() = torch::tensor({1.0f, NAN, INFINITY, -5e5f});
  b.mutable_grad() = torch::tensor({-INFINITY, 3.0f});
  EXPECT_EQ(meta::sanitize_gradients({a, b}, 1e4), 3);
  EXPECT_TRUE(torch::equal(a.grad(), torch::tensor({1.0f, 0.0f, 0.0f, -1e4f})));
  EXPECT_TRUE(torch::equal(b.grad(), torch::tensor({0.0f, 3.0f})));
}

TEST(Trainer, FixedAndSampledHorizons) {
  meta::TrainOptions o;
  o.num_steps(100).unroll_length(30);
  auto gen = make_generator(0);
  const auto fixed = meta::draw_horizon(o, gen);
  EXPECT_EQ(fixed.unrolls, 4);  // 30 + 30 + 30 + 10
  EXPECT_EQ(fixed.unroll_length, 30);
  // L2O-Scale: unrolls = round(Exp(40)) + 1, steps per unroll = round(Exp(200)) + 50.
  o.fix_unroll(false);
  double unrolls = 0, length = 0;
  int64_t min_unrolls = 1000, min_length = 1000;
  const int n = 4000;
  for (int i = 0; i < n; ++i) {
    const auto h = meta::draw_horizon(o, gen);
    unrolls += static_cast<double>(h.unrolls) / n;
    length += static_cast<double>(h.unroll_length) / n;
    min_unrolls = std::min(min_unrolls, h.unrolls);
    min_length = std::min(min_length, h.unroll_length);
  }
  EXPECT_NEAR(unrolls, 41, 41 * 0.06);
  EXPECT_NEAR(length, 250, 200 * 0.06);
  EXPECT_EQ(min_unrolls, 1);
  EXPECT_EQ(min_length, 50);
  o.max_num_itr_partial_unroll(60);
  for (int i = 0; i < 100; ++i) EXPECT_LE(meta::draw_horizon(o, gen).unroll_length, 60);
  EXPECT_THROW(meta::TrainOptions().max_num_itr_partial_unroll(10).validate(), Error);
}

TEST(Trainer, SampledHorizonsRunAndAreLogged) {
  meta::TrainOptions o;
  o.optimizer("hrnn").problem("dm_quadratic:batch=4,dim=3").objective("log_ratio").meta_optimizer("rmsprop");
  o.meta_lr(1e-4).meta_iterations(2).evaluation_period(0).fix_unroll(false);
  o.num_unroll_scale(2).num_partial_unroll_itr_scale(3).min_num_itr_partial_unroll(2);
  meta::Trainer t(o);
  const auto r = t.step();
  EXPECT_GE(r.unrolls, 1);
  EXPECT_GE(r.steps, 2);
  EXPECT_TRUE(std::isfinite(r.meta_loss));
  // The horizon is part of the iteration's counter-based draw: a second trainer sees the same one.
  meta::Trainer t2(o);
  EXPECT_EQ(t2.step().steps, r.steps);
}

TEST(Trainer, ValidationRunsOnTheValidationSetWhenOneIsGiven) {
  // Training on quadratics, validating on Rosenbrock and Booth: the validation score is the mean, over
  // the fixed validation draws (the set's problems in turn), of Σ_t f(θ_t), and differs from
  // validating on the training set.
  const auto options = tiny().evaluation_epochs(3);
  meta::Trainer same(options);
  meta::Trainer held_out(meta::TrainOptions(options).validation_problem("rosenbrock;booth"));
  const double v_same = same.validate(), v_held = held_out.validate();
  double expected = 0;
  for (int64_t e = 0; e < 3; ++e) {
    auto gen = make_generator(3, Stream::kValidation, static_cast<uint64_t>(e));
    const auto problem = problems::make_problem(e % 2 == 0 ? "rosenbrock" : "booth", gen);
    const auto f = meta::run_inner(*held_out.rule(), *problem, problem->init_params(gen), 20, gen);
    ASSERT_EQ(f.size(), 21u);
    for (size_t t = 1; t < f.size(); ++t) expected += f[t];
  }
  EXPECT_NEAR(v_held, expected / 3, 1e-9 * std::abs(expected));
  EXPECT_GT(std::abs(v_held - v_same), 1e-3 * std::abs(v_same));
  // The option travels in checkpoints and a bad set is one clear error.
  EXPECT_EQ(meta::TrainOptions::from_json(held_out.options().to_json()).validation_problem(), "rosenbrock;booth");
  EXPECT_THROW(meta::Trainer(meta::TrainOptions(options).validation_problem("no_such_problem")), Error);
}
