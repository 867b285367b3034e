#include <l2o/core/rng.h>
#include <l2o/eval/evaluate.h>
#include <l2o/eval/report.h>
#include <l2o/learned/registry.h>
#include <l2o/problems/nn.h>

#include <torch/torch.h>

#include <algorithm>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cmath>

using namespace l2o;

TEST(Summarize, MeanAndStandardError) {
  eval::Curves c;
  c.label = "x";
  c.losses = {{10, 1, 2}, {10, 3, 4}, {10, 5, 6}};
  const auto s = eval::summarize(c, 2);
  // sums 3, 7, 11: mean 7, sample sd 4, s.e. 4/√3
  EXPECT_DOUBLE_EQ(s.mean_sum, 7);
  EXPECT_NEAR(s.se_sum, 4 / std::sqrt(3.0), 1e-12);
  EXPECT_DOUBLE_EQ(s.mean_final, 4);
  EXPECT_EQ(s.diverged, 0);
}

TEST(Summarize, DivergedRunsCountAsInfinite) {
  eval::Curves c;
  c.losses = {{10, 1, 2}, {10, NAN}};
  const auto s = eval::summarize(c, 2);
  EXPECT_EQ(s.diverged, 1);
  EXPECT_TRUE(std::isinf(s.mean_sum));
}

TEST(Evaluate, SameSeedsGiveSameProblemsForEveryRule) {
  eval::EvalOptions o;
  o.problem = "dm_quadratic:batch=8,dim=4";
  o.num_steps = 10;
  o.seeds = 3;
  const auto a = eval::evaluate_rule(*learned::make_rule("adam:lr=0.1"), o, "a");
  const auto b = eval::evaluate_rule(*learned::make_rule("sgd:lr=0.01"), o, "b");
  ASSERT_EQ(a.losses.size(), 3u);
  for (int s = 0; s < 3; ++s) {
    EXPECT_EQ(a.losses[s].size(), 11u);
    EXPECT_DOUBLE_EQ(a.losses[s][0], b.losses[s][0]);  // same f(θ₀)
  }
  EXPECT_NE(a.losses[0][0], a.losses[1][0]);
}

TEST(Evaluate, GridPicksTheBestRate) {
  eval::EvalOptions o;
  o.problem = "dm_quadratic:batch=8,dim=4";
  o.num_steps = 30;
  o.seeds = 2;
  const auto g = eval::best_of_grid("sgd", {1e-4, 1e-3, 1e-2}, o);
  ASSERT_EQ(g.scores.size(), 3u);
  double best = 1e300;
  for (const auto& s : g.scores) best = std::min(best, s.second);
  EXPECT_DOUBLE_EQ(eval::summarize(g.best, 30).mean_sum, best);
  EXPECT_EQ(g.best_lr, 1e-2);  // the largest stable rate wins on a quadratic in 30 steps
}

TEST(Report, TableAndJsonCarryEveryOptimizer) {
  eval::Summary a{"lstm", "lstm", 5, 1, 0.1, 0.01, 0, 5}, b{"adam (lr 0.1)", "adam:lr=0.1", 10, 2, 0.2, 0.02, 0, 5};
  const std::string table = eval::summary_table({a, b}, 1);
  EXPECT_NE(table.find("| lstm | 5 ± 1 |"), std::string::npos) << table;
  EXPECT_NE(table.find("0.5"), std::string::npos);
  const auto j = nlohmann::json::parse(eval::summary_json({a, b}, "{\"problem\":\"q\"}"));
  EXPECT_EQ(j["problem"], "q");
  EXPECT_EQ(j["optimizers"].size(), 2u);
  EXPECT_DOUBLE_EQ(j["optimizers"][1]["sum_of_losses_mean"].get<double>(), 10);
}

TEST(Evaluate, RecordsEveryNStepsOnAClassifier) {
  torch::manual_seed(0);
  data::DataSplits d;
  d.name = "tiny";
  d.train = {torch::randn({40, 3}), torch::randint(3, {40}, torch::kLong), 3};
  d.test = {torch::randn({20, 3}), torch::randint(3, {20}, torch::kLong), 3};
  problems::ClassifierProblem::Options o;
  o.model = problems::Model::kSoftmax;
  o.batch = 8;
  auto gen = make_generator(0);
  problems::ClassifierProblem prob("softmax", o, d, gen);
  eval::EvalOptions eo;
  eo.num_steps = 25;
  eo.record_every = 10;
  const auto rule = learned::make_rule("sgd:lr=0.5");
  std::vector<double> losses;
  std::vector<eval::Record> records;
  eval::run_seed(*rule, prob, prob.init_params(gen), eo, gen, losses, records);
  ASSERT_EQ(losses.size(), 26u);
  ASSERT_EQ(records.size(), 4u);  // steps 0, 10, 20 and the last one, 25
  EXPECT_EQ(records[0].step, 0);
  EXPECT_EQ(records[3].step, 25);
  EXPECT_TRUE(std::isnan(records[0].seconds_per_step));
  EXPECT_GT(records[1].seconds_per_step, 0);
  // The records hold the full splits: recompute the last one.
  EXPECT_LT(records[3].train_loss, records[0].train_loss);
  EXPECT_GT(records[3].param_norm, 0);
  EXPECT_GE(records[3].test_accuracy, 0);
  EXPECT_LE(records[3].test_accuracy, 1);
  eval::Curves c;
  c.label = "sgd";
  c.losses = {losses};
  c.records = {records};
  const auto s = eval::summarize(c, 25);
  EXPECT_TRUE(s.has_records);
  EXPECT_DOUBLE_EQ(s.mean_train_loss, records[3].train_loss);
  EXPECT_DOUBLE_EQ(s.mean_test_accuracy, records[3].test_accuracy);
  EXPECT_DOUBLE_EQ(eval::grid_score(s), records[3].train_loss);
  const std::string csv = eval::records_csv({c});
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 5);
  EXPECT_NE(eval::summary_table({s}).find("final test accuracy"), std::string::npos);
}
