#include <l2o/core/error.h>
#include <l2o/core/rng.h>
#include <l2o/eval/suite.h>
#include <l2o/learned/registry.h>
#include <l2o/problems/nn.h>

#include <torch/torch.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>

using namespace l2o;
namespace fs = std::filesystem;

namespace {
const double kInf = std::numeric_limits<double>::infinity();

const char* kSuite = R"(# a suite
name = "tiny"
version = 3
description = "two problems"
seed = 7
adam_fixed_lr = 0.002

[baselines]
rmsprop = [0.001, 0.01]
adam = [0.01, 0.1]
momentum = [0.1]

[[problem]]
name = "quad"
spec = "quadratic:dim=5"
steps = 30
seeds = 2

[[problem]]
name = "bowl-5"
spec = "bowl:cond=5"
steps = 20
seeds = 3
grid_seeds = 2
record_every = 10
record_rows = 100
)";

std::string error_of(const std::string& text) {
  try {
    eval::parse_suite(text, "s.toml");
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  const auto pos = text.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  return text.replace(pos, from.size(), to);
}

std::string temp_dir(const std::string& name) {
  const auto d = fs::temp_directory_path() / ("l2o_suite_test_" + std::to_string(::getpid()) + "_" + name);
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in.good()) << path;
  return nlohmann::json::parse(in);
}

// A Summary with records whose mean final train loss is `loss` and test accuracy `acc`.
eval::Summary summary(const std::string& label, double loss, double acc, int64_t diverged = 0) {
  eval::Summary s;
  s.label = label;
  s.has_records = true;
  s.mean_train_loss = loss;
  s.mean_test_accuracy = acc;
  s.seeds = 2;
  s.diverged = diverged;
  return s;
}

// Curves of `seeds` runs of 2 steps (no records) with f(θ₀) = 10 and the given final losses.
eval::Curves curves(const std::vector<double>& finals) {
  eval::Curves c;
  for (double f : finals) c.losses.push_back(std::isfinite(f) ? std::vector<double>{10, 8, f} : std::vector<double>{10, f});
  return c;
}
}  // namespace

TEST(SuiteFile, ParsesEveryFieldAndKeepsTheBaselinesInFileOrder) {
  const eval::Suite s = eval::parse_suite(kSuite, "tiny.toml");
  EXPECT_EQ(s.name, "tiny");
  EXPECT_EQ(s.version, 3);
  EXPECT_EQ(s.description, "two problems");
  EXPECT_EQ(s.seed, 7);
  EXPECT_DOUBLE_EQ(s.adam_fixed_lr, 0.002);
  EXPECT_EQ(eval::fixed_adam_spec(s), "adam:lr=0.002");
  ASSERT_EQ(s.baselines.size(), 3u);
  EXPECT_EQ(s.baselines[0].spec, "rmsprop");  // file order, not toml++'s key order
  EXPECT_EQ(s.baselines[1].spec, "adam");
  EXPECT_EQ(s.baselines[1].lrs, (std::vector<double>{0.01, 0.1}));
  EXPECT_EQ(s.baselines[2].spec, "momentum");
  ASSERT_EQ(s.problems.size(), 2u);
  EXPECT_EQ(s.problems[0].name, "quad");
  EXPECT_EQ(s.problems[0].spec, "quadratic:dim=5");
  EXPECT_EQ(s.problems[0].steps, 30);
  EXPECT_EQ(s.problems[0].seeds, 2);
  EXPECT_EQ(s.problems[0].grid_seeds, 2);  // default: every seed
  EXPECT_EQ(s.problems[0].record_every, 0);
  EXPECT_EQ(s.problems[0].record_rows, 0);
  EXPECT_EQ(s.problems[1].grid_seeds, 2);
  EXPECT_EQ(s.problems[1].record_every, 10);
  EXPECT_EQ(s.problems[1].record_rows, 100);
}

TEST(SuiteFile, BadFilesNameTheFileLineAndField) {
  EXPECT_NE(error_of(replaced(kSuite, "seed = 7", "sed = 7")).find("s.toml:5:1: unknown key 'sed'"), std::string::npos);
  EXPECT_NE(error_of(replaced(kSuite, "seeds = 2\n", "seeds = 2\nstep = 4\n")).find("unknown key 'step' in [[problem]] 1"),
            std::string::npos);
  EXPECT_NE(error_of(replaced(kSuite, "adam = [0.01, 0.1]\n", "")).find("needs an 'adam' grid"), std::string::npos);
  EXPECT_NE(error_of(replaced(kSuite, "grid_seeds = 2", "grid_seeds = 4")).find("grid_seeds=4 must be in 1..seeds (3)"),
            std::string::npos);
  EXPECT_NE(error_of(replaced(kSuite, "name = \"bowl-5\"", "name = \"quad\"")).find("'quad' is given twice"),
            std::string::npos);
  EXPECT_NE(error_of(replaced(kSuite, "name = \"quad\"", "name = \"a/b\"")).find("problem name 'a/b'"), std::string::npos);
  EXPECT_NE(error_of(replaced(kSuite, "steps = 30\n", "")).find("[[problem]] 1 has no key 'steps'"), std::string::npos);
  EXPECT_NE(error_of(replaced(kSuite, "steps = 30", "steps = \"30\"")).find("'steps' must be an integer"),
            std::string::npos);
  EXPECT_NE(error_of(replaced(kSuite, "momentum = [0.1]", "momentum = [-0.1]")).find("rate -0.1 must be > 0"),
            std::string::npos);
  EXPECT_NE(error_of(replaced(kSuite, "rmsprop = ", "\"rmsprop:lr=0.1\" = ")).find("sets lr itself"), std::string::npos);
  EXPECT_NE(error_of(replaced(kSuite, "# a suite", "# a suite \xc2\xa7")).find("s.toml:1:11: non-ASCII"),
            std::string::npos);
  EXPECT_EQ(error_of(replaced(kSuite, "version = 3", "version = 3 3")).find("s.toml:3:"), 0u);  // toml++'s own message
  const std::string no_problems = std::string(kSuite).substr(0, std::string(kSuite).find("[[problem]]"));
  EXPECT_NE(error_of(no_problems).find("has no key 'problem'"), std::string::npos);
}

TEST(SuiteFile, UnknownSuiteNameListsTheKnownOnes) {
  const std::string dir = temp_dir("lookup");
  std::ofstream(dir + "/tiny.toml") << kSuite;
  std::ofstream(dir + "/other.toml") << replaced(kSuite, "name = \"tiny\"", "name = \"wrong\"");
  EXPECT_EQ(eval::list_suites(dir), (std::vector<std::string>{"other", "tiny"}));
  EXPECT_EQ(eval::load_suite("tiny", dir).path, dir + "/tiny.toml");
  try {
    eval::load_suite("heldout_v0", dir);
    FAIL() << "no error";
  } catch (const Error& e) {
    const std::string m = e.what();
    EXPECT_NE(m.find("unknown suite 'heldout_v0' (known: other, tiny in " + dir), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos);
  }
  EXPECT_THROW(eval::load_suite("other", dir), Error);  // its name differs from the file's
  fs::remove_all(dir);
}

TEST(SuiteFile, TheShippedSuiteIsHeldOutAndReadable) {
  const std::string dir = eval::default_suite_dir();
  const eval::Suite s = eval::load_suite("heldout_v1", dir);
  EXPECT_GE(s.problems.size(), 8u);
  bool fashion = false, mnist = false, relu_10k = false;
  for (const auto& p : s.problems) {
    fashion = fashion || p.spec.find("dataset=fashion_mnist") != std::string::npos;
    mnist = mnist || p.spec.find("mnist") == 0 || p.spec.find("dataset=mnist") != std::string::npos;
    relu_10k = relu_10k || (p.spec == "mnist_mlp_relu" && p.steps == 10000 && p.seeds == 5);
  }
  EXPECT_TRUE(fashion);
  EXPECT_TRUE(mnist);
  EXPECT_TRUE(relu_10k);
}

TEST(SuiteScores, RatiosMediansAndNotLearnedSeeds) {
  EXPECT_DOUBLE_EQ(eval::loss_ratio(1, 4), 0.25);
  EXPECT_DOUBLE_EQ(eval::loss_ratio(kInf, kInf), 1);
  EXPECT_DOUBLE_EQ(eval::loss_ratio(0, 0), 1);
  EXPECT_TRUE(std::isinf(eval::loss_ratio(kInf, 2)));
  EXPECT_DOUBLE_EQ(eval::median({3, 1, 2}), 2);
  EXPECT_DOUBLE_EQ(eval::median({4, 1, 3, 2}), 2.5);
  EXPECT_TRUE(std::isnan(eval::median({})));
  // f(θ₀) = 10: a final loss of 6 did not learn (> 5), 5 did (not above half), a diverged seed is not counted.
  EXPECT_EQ(eval::count_not_learned(curves({6, 5, 4, NAN}), 2), 1);
  EXPECT_EQ(eval::count_not_learned(curves({9, 7}), 2), 2);
  // With records the full train loss of the first and last record decide.
  eval::Curves c = curves({1, 1});
  c.records = {{{0, 2.0}, {2, 1.5}}, {{0, 2.0}, {2, 0.5}}};
  EXPECT_EQ(eval::count_not_learned(c, 2), 1);
  c.records[0].back().step = 1;  // a run that stopped early did not finish
  EXPECT_EQ(eval::count_not_learned(c, 2), 0);
}

TEST(SuiteScores, ScoresAgainstBothReferences) {
  // Entries: learned L, then the baselines adam (tuned, the best reference), momentum, adam at 1e-3.
  eval::Comparison c;
  c.summaries = {summary("L", 0.5, 0.9), summary("adam (lr 0.01)", 1.0, 0.8), summary("momentum (lr 0.1)", 4.0, 0.7),
                 summary("adam (lr 0.001, fixed)", 2.0, 0.75)};
  c.curves = {curves({6, 1}), curves({1, 1}), curves({1, 1}), curves({1, 1})};
  // Accuracies are scored only when the problem has them: one record with a test accuracy says so.
  c.curves[3].records = {{{0, 10.0, 0, 0, 0.1}, {2, 1.0, 0, 0, 0.75}}, {}};
  c.baselines = {{"adam", 0.01, {}}, {"momentum", 0.1, {}}, {"adam:lr=0.001", 0.001, {}}};
  const auto sc = eval::score_problem(c, {"L", "adam", "momentum", "adam:lr=0.001"}, 1, 1, 3, 2);
  ASSERT_EQ(sc.size(), 4u);
  EXPECT_TRUE(sc[0].learned);
  EXPECT_FALSE(sc[1].learned);
  EXPECT_TRUE(std::isnan(sc[0].lr));
  EXPECT_DOUBLE_EQ(sc[2].lr, 0.1);
  EXPECT_DOUBLE_EQ(sc[0].ratio_best, 0.5);
  EXPECT_DOUBLE_EQ(sc[0].ratio_fixed, 0.25);
  EXPECT_DOUBLE_EQ(sc[2].ratio_best, 4);
  EXPECT_DOUBLE_EQ(sc[1].ratio_best, 1);
  EXPECT_NEAR(sc[0].accuracy_diff_best, 0.1, 1e-12);
  EXPECT_NEAR(sc[0].accuracy_diff_fixed, 0.15, 1e-12);
  EXPECT_EQ(sc[0].not_learned, 1);
  EXPECT_EQ(sc[1].not_learned, 0);
  EXPECT_EQ(sc[0].label, "L");
  EXPECT_EQ(sc[2].optimizer, "momentum");
  EXPECT_THROW(eval::score_problem(c, {"L", "adam"}, 1, 1, 3, 2), Error);
}

TEST(SuiteScores, SummaryRowsCountWinsWorstAndFailures) {
  // Ratios of the learned optimizer to Adam-best over four problems: 0.5, 2, 0.8, inf (it diverged).
  const double best[] = {0.5, 2, 0.8, kInf}, fixed[] = {0.4, 1.5, 1.2, kInf};
  std::vector<eval::ProblemScores> ps;
  for (int i = 0; i < 4; ++i) {
    eval::ProblemScores p;
    p.problem.name = "p" + std::to_string(i);
    eval::SuiteScore l, a, m;
    l.optimizer = "L", l.learned = true, l.ratio_best = best[i], l.ratio_fixed = fixed[i], l.seeds = 3;
    l.diverged = i == 3 ? 3 : 0;
    l.not_learned = i == 1 ? 2 : 0;
    a.optimizer = "adam", a.ratio_best = 1, a.ratio_fixed = 0.9, a.seeds = 3;
    m.optimizer = "momentum", m.ratio_best = 1.1, m.ratio_fixed = 1, m.seeds = 3;
    p.scores = {l, a, m};
    ps.push_back(p);
  }
  const auto rows = eval::summarize_suite(ps, "adam");
  ASSERT_EQ(rows.size(), 2u);  // every optimizer but the reference itself
  const auto& s = rows[0];
  EXPECT_EQ(s.optimizer, "L");
  EXPECT_TRUE(s.learned);
  EXPECT_EQ(s.problems, 4);
  EXPECT_DOUBLE_EQ(s.median_ratio_best, 0.5 * (0.8 + 2));
  EXPECT_DOUBLE_EQ(s.median_ratio_fixed, 0.5 * (1.2 + 1.5));
  EXPECT_EQ(s.wins_best, 2);
  EXPECT_EQ(s.wins_fixed, 1);
  EXPECT_TRUE(std::isinf(s.worst_ratio_best));
  EXPECT_EQ(s.worst_problem_best, "p3");
  EXPECT_EQ(s.diverged, 3);
  EXPECT_EQ(s.not_learned, 2);
  EXPECT_EQ(s.seeds, 12);
  EXPECT_EQ(rows[1].optimizer, "momentum");
  EXPECT_EQ(rows[1].wins_best, 0);
  EXPECT_EQ(rows[1].wins_fixed, 0);  // a ratio of exactly 1 is no win
  EXPECT_DOUBLE_EQ(rows[1].worst_ratio_best, 1.1);
}

TEST(SuiteRun, TwoProblemSuiteWritesReportsThatAgreeWithThePerProblemSummaries) {
  const eval::Suite suite = eval::parse_suite(kSuite, "tiny.toml");
  const std::string out = temp_dir("run");
  const std::vector<eval::LabelledRule> learned = {{"fake", learned::make_rule("sgd:lr=0.003")}};
  int64_t last = 0, total = 0;
  const auto result = eval::run_suite(suite, learned, out, [&](int64_t done, int64_t t, const std::string&) {
    EXPECT_GT(done, last);
    last = done;
    total = t;
  });
  EXPECT_EQ(total, eval::suite_steps(suite, 1));
  EXPECT_EQ(last, total);
  // Steps × one-seed runs: the learned rule, the grids (bowl-5 tunes on 2 of 3 seeds, then runs
  // each best rate on all 3), the fixed Adam.
  EXPECT_EQ(total, 30 * (2 + (2 + 2 + 1) * 2 + 2) + 20 * (3 + (2 + 2 + 1) * 2 + 3 * 3 + 3));
  for (const char* f : {"table.md", "suite.json", "suite.csv", "ratios.png", "ratios.svg", "quad/table.md",
                        "quad/summary.json", "quad/curves.csv", "quad/loss.png", "bowl-5/records.csv",
                        "bowl-5/summary.json"})
    EXPECT_TRUE(fs::exists(out + "/" + f)) << f;
  const auto j = read_json(out + "/suite.json");
  EXPECT_EQ(j["suite"], "tiny");
  EXPECT_EQ(j["version"], 3);
  ASSERT_EQ(j["problems"].size(), 2u);
  for (const auto& p : j["problems"]) {
    const auto per = read_json(out + "/" + p["name"].get<std::string>() + "/summary.json");
    const bool records = p["record_every"].get<int>() > 0;
    const char* key = records ? "final_train_loss_mean" : "final_loss_mean";
    ASSERT_EQ(p["optimizers"].size(), per["optimizers"].size());
    ASSERT_EQ(p["optimizers"].size(), 5u);
    EXPECT_EQ(p["optimizers"][0]["optimizer"], "fake");
    EXPECT_EQ(p["optimizers"][4]["optimizer"], "adam:lr=0.002");
    const double adam_best = per["optimizers"][2][key].get<double>();  // learned, rmsprop, adam, ...
    const double adam_fixed = per["optimizers"][4][key].get<double>();
    for (size_t i = 0; i < p["optimizers"].size(); ++i) {
      const auto& mine = p["optimizers"][i];
      const auto& theirs = per["optimizers"][i];
      EXPECT_EQ(mine["label"], theirs["label"]);
      ASSERT_TRUE(theirs[key].is_number()) << "diverged: " << theirs;
      const double loss = theirs[key].get<double>();
      EXPECT_DOUBLE_EQ(mine["final_train_loss_mean"].get<double>(), loss);
      EXPECT_DOUBLE_EQ(mine["ratio_to_adam_best"].get<double>(), loss / adam_best);
      EXPECT_DOUBLE_EQ(mine["ratio_to_adam_fixed"].get<double>(), loss / adam_fixed);
      EXPECT_TRUE(mine["test_accuracy_mean"].is_null());  // the zoo has no test split
      EXPECT_EQ(mine["diverged"], theirs["diverged_runs"]);
      EXPECT_EQ(mine["seeds"], p["seeds"]);
    }
    // The tuned Adam's rate is the grid point of lowest score.
    const auto& grid = per["grid_scores"]["adam"];
    double best_score = 1e300, best_lr = 0;
    for (const auto& g : grid)
      if (g["score"].get<double>() < best_score) best_score = g["score"], best_lr = g["lr"];
    EXPECT_DOUBLE_EQ(p["optimizers"][2]["lr"].get<double>(), best_lr);
  }
  // The summary rows are those of the scores returned.
  ASSERT_EQ(j["summary"].size(), result.summaries.size());
  EXPECT_EQ(j["summary"][0]["optimizer"], "fake");
  const double r0 = j["problems"][0]["optimizers"][0]["ratio_to_adam_best"], r1 = j["problems"][1]["optimizers"][0]["ratio_to_adam_best"];
  EXPECT_DOUBLE_EQ(j["summary"][0]["median_ratio_to_adam_best"].get<double>(), 0.5 * (r0 + r1));
  EXPECT_EQ(j["summary"][0]["wins_vs_adam_best"].get<int>(), (r0 < 1) + (r1 < 1));
  std::ifstream csv(out + "/suite.csv");
  std::stringstream buffer;
  buffer << csv.rdbuf();
  const std::string text = buffer.str();
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1 + 2 * 5);
  fs::remove_all(out);
}

// A second run with the rates of the first (--rates_from) gives every score of the first, with each
// tuned baseline run once per seed at its rate instead of searching its grid; a suite.json of another
// suite or of other problem settings is refused.
TEST(SuiteRun, RatesFromAnEarlierRunReproduceItsScoresWithFewerRuns) {
  const eval::Suite suite = eval::parse_suite(kSuite, "tiny.toml");
  const std::string first = temp_dir("rates1"), second = temp_dir("rates2");
  const std::vector<eval::LabelledRule> learned = {{"fake", learned::make_rule("sgd:lr=0.003")}};
  const auto a = eval::run_suite(suite, learned, first);
  const eval::SuiteRates rates = eval::read_suite_rates(first + "/suite.json", suite);
  EXPECT_EQ(rates.size(), 2u);
  EXPECT_EQ(rates.at("quad").size(), suite.baselines.size());
  // One run per seed and optimizer: the learned rule, the tuned baselines, the fixed Adam.
  EXPECT_EQ(eval::suite_steps(suite, 1, &rates), 30 * 2 * (1 + 3 + 1) + 20 * 3 * (1 + 3 + 1));
  EXPECT_LT(eval::suite_steps(suite, 1, &rates), eval::suite_steps(suite, 1));
  const auto b = eval::run_suite(suite, learned, second, {}, &rates);
  ASSERT_EQ(a.problems.size(), b.problems.size());
  for (size_t p = 0; p < a.problems.size(); ++p) {
    ASSERT_EQ(a.problems[p].scores.size(), b.problems[p].scores.size());
    for (size_t i = 0; i < a.problems[p].scores.size(); ++i) {
      const auto &x = a.problems[p].scores[i], &y = b.problems[p].scores[i];
      EXPECT_EQ(x.label, y.label);
      EXPECT_EQ(x.final_train_loss, y.final_train_loss) << x.label;
      EXPECT_EQ(x.ratio_best, y.ratio_best) << x.label;
      EXPECT_EQ(x.not_learned, y.not_learned) << x.label;
    }
  }
  EXPECT_EQ(a.summaries.size(), b.summaries.size());
  // Another suite (version), or a problem run with other settings, is refused with the reason.
  auto refused = [&](const eval::Suite& other, const std::string& part) {
    try {
      eval::read_suite_rates(first + "/suite.json", other);
      ADD_FAILURE() << "no error for " << part;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << e.what();
    }
  };
  refused(eval::parse_suite(replaced(kSuite, "version = 3", "version = 4"), "tiny.toml"), "v3, not 'tiny' v4");
  refused(eval::parse_suite(replaced(kSuite, "steps = 30", "steps = 31"), "tiny.toml"), "problem 'quad' ran with another");
  fs::remove_all(first);
  fs::remove_all(second);
}

TEST(SuiteRun, BadProblemSpecFailsBeforeAnyWork) {
  const eval::Suite suite = eval::parse_suite(replaced(kSuite, "spec = \"bowl:cond=5\"", "spec = \"bowl:cnd=5\""), "t.toml");
  const std::string out = temp_dir("bad") + "/out";
  try {
    eval::run_suite(suite, {}, out);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("problem 'bowl-5'"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(out));
}

TEST(EvalRecordRows, RecordsUseOneFixedSubsetOfEachSplitAndLeaveTheRunAlone) {
  torch::manual_seed(0);
  data::DataSplits d;
  d.name = "tiny";
  d.train = {torch::randn({40, 3}), torch::randint(3, {40}, torch::kLong), 3};
  d.test = {torch::randn({30, 3}), torch::randint(3, {30}, torch::kLong), 3};
  problems::ClassifierProblem::Options o;
  o.model = problems::Model::kSoftmax;
  o.batch = 8;
  auto gen = make_generator(0);
  const problems::ClassifierProblem prob("softmax", o, d, gen);
  struct Run {
    std::vector<double> losses;
    std::vector<eval::Record> records;
  };
  auto run = [&](int64_t rows, const std::string& rule) {
    eval::EvalOptions eo;
    eo.num_steps = 6;
    eo.record_every = 3;
    eo.record_rows = rows;
    auto g = make_generator(1);
    Run r;
    eval::run_seed(*learned::make_rule(rule), prob, prob.init_params(g), eo, g, r.losses, r.records);
    return r;
  };
  const Run full = run(0, "sgd:lr=0.1"), all = run(40, "sgd:lr=0.1"), sub = run(10, "sgd:lr=0.1"),
            other = run(10, "adam:lr=0.1");
  ASSERT_EQ(full.records.size(), 3u);
  ASSERT_EQ(sub.records.size(), 3u);
  // At least as many rows as a split: the whole split.
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(all.records[i].train_loss, full.records[i].train_loss);
    EXPECT_EQ(all.records[i].test_accuracy, full.records[i].test_accuracy);
  }
  // 10 rows: another value, accuracies in tenths, the same rows for another rule from the same θ₀.
  EXPECT_NE(sub.records[0].train_loss, full.records[0].train_loss);
  EXPECT_EQ(sub.records[0].train_loss, other.records[0].train_loss);
  EXPECT_EQ(sub.records[0].test_loss, other.records[0].test_loss);
  for (const auto& r : sub.records) {
    EXPECT_NEAR(r.train_accuracy * 10, std::round(r.train_accuracy * 10), 1e-9);
    EXPECT_NEAR(r.test_accuracy * 10, std::round(r.test_accuracy * 10), 1e-9);
  }
  // Choosing the rows draws nothing from the run's generator: the minibatch losses are unchanged.
  EXPECT_EQ(sub.losses, full.losses);
}
