#include <l2o/core/error.h>
#include <l2o/core/spec.h>
#include <l2o/io/checkpoint.h>
#include <l2o/io/files.h>
#include <l2o/learned/lstm.h>
#include <l2o/learned/registry.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>

using namespace l2o;
namespace fs = std::filesystem;

namespace {
std::string temp_dir() {
  const auto dir = fs::temp_directory_path() / ("l2o_io_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return dir.string();
}
}  // namespace

TEST(Checkpoint, RoundTripRestoresRuleAndParameters) {
  const std::string path = temp_dir() + "/ck.pt";
  torch::manual_seed(3);
  auto rule = learned::make_rule("lstm:preprocess=logsign,output_scale=0.1");
  io::save_checkpoint(path, *rule, nullptr, "{\"note\":1}");
  const auto info = io::read_checkpoint_info(path);
  EXPECT_EQ(info.rule_spec, rule->spec().str());
  EXPECT_EQ(info.trainer_json, "{\"note\":1}");
  auto loaded = io::load_rule(path);
  const auto a = rule->module()->parameters(), b = loaded->module()->parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i]));
  // No temporary files are left beside it.
  int files = 0;
  for (const auto& e : fs::directory_iterator(fs::path(path).parent_path())) files += e.path().filename() == "ck.pt" ? 0 : 1;
  EXPECT_EQ(files, 0);
}

TEST(Checkpoint, MissingCorruptAndForeignFilesAreClearErrors) {
  const std::string dir = temp_dir();
  EXPECT_THROW(io::load_rule(dir + "/missing.pt"), l2o::Error);
  io::write_text_atomic(dir + "/garbage.pt", "this is not a zip archive");
  EXPECT_THROW(io::load_rule(dir + "/garbage.pt"), l2o::Error);
  // A valid LibTorch archive that is not an l2o checkpoint.
  torch::serialize::OutputArchive foreign;
  foreign.write("x", torch::ones({2}));
  foreign.save_to(dir + "/foreign.pt");
  EXPECT_THROW(io::load_rule(dir + "/foreign.pt"), l2o::Error);
  // A truncated checkpoint.
  auto rule = learned::make_rule("lstm");
  io::save_checkpoint(dir + "/good.pt", *rule, nullptr);
  const auto size = fs::file_size(dir + "/good.pt");
  fs::copy_file(dir + "/good.pt", dir + "/cut.pt", fs::copy_options::overwrite_existing);
  fs::resize_file(dir + "/cut.pt", size / 2);
  EXPECT_THROW(io::load_rule(dir + "/cut.pt"), l2o::Error);
}

// A checkpoint damaged so that LibTorch's unpickler throws a plain std::runtime_error (found by the
// checkpoint fuzz target): still an l2o::Error naming the file.
TEST(Checkpoint, DamageTheUnpicklerReportsIsAnL2oError) {
  const char* root = std::getenv("L2O_SOURCE_DIR");
  if (root == nullptr) GTEST_SKIP() << "L2O_SOURCE_DIR not set (ctest sets it)";
  const std::string path = std::string(root) + "/tests/fuzz/crashes/checkpoint/unpickler_runtime_error.pt";
  for (int i = 0; i < 2; ++i) {
    try {
      if (i == 0) io::read_checkpoint_info(path);
      if (i == 1) io::load_rule(path);
      ADD_FAILURE() << "expected an error";
    } catch (const l2o::Error& e) {
      EXPECT_NE(std::string(e.what()).find("unpickler_runtime_error.pt' is corrupt"), std::string::npos) << e.what();
    }
  }
}

TEST(Checkpoint, MismatchedOptimizerIsRejected) {
  const std::string dir = temp_dir();
  auto small = learned::make_rule("lstm:hidden_size=8");
  io::save_checkpoint(dir + "/small.pt", *small, nullptr);
  auto big = learned::make_rule("lstm");
  EXPECT_THROW(io::load_into(dir + "/small.pt", *big, nullptr), l2o::Error);
  auto adam = learned::make_rule("adam");
  EXPECT_THROW(io::save_checkpoint(dir + "/adam.pt", *adam, nullptr), l2o::Error);
}

TEST(Files, UnwritableFolderIsAnError) {
  EXPECT_THROW(io::ensure_writable_dir("/proc/l2o-cannot-exist"), l2o::Error);
  EXPECT_THROW(io::write_text_atomic("/proc/l2o-cannot-exist/x.txt", "x"), l2o::Error);
}

TEST(Checkpoint, AFloat64CheckpointLoadsIntoAFloat32Rule) {
  // φ trained in float64 (as the FD tests do) loads with the rule's own dtype, values rounded.
  const std::string path = temp_dir() + "/double.pt";
  torch::manual_seed(5);
  auto rule = learned::make_rule("hrnn");
  rule->module()->to(torch::kDouble);
  io::save_checkpoint(path, *rule, nullptr);
  auto loaded = io::load_rule(path);
  const auto a = rule->module()->parameters(), b = loaded->module()->parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(b[i].scalar_type(), torch::kFloat);
    EXPECT_TRUE(torch::equal(a[i].to(torch::kFloat), b[i]));
  }
  for (const auto& buf : loaded->module()->buffers()) EXPECT_EQ(buf.scalar_type(), torch::kFloat);
}

TEST(Checkpoint, ACheckpointOfAnotherOptimizerTypeIsAClearError) {
  const std::string path = temp_dir() + "/lstm.pt";
  auto lstm = learned::make_rule("lstm");
  io::save_checkpoint(path, *lstm, nullptr);
  auto hrnn = learned::make_rule("hrnn");
  try {
    io::load_into(path, *hrnn, nullptr);
    FAIL() << "no error";
  } catch (const l2o::Error& e) {
    const std::string w = e.what();
    EXPECT_NE(w.find("holds optimizer 'lstm"), std::string::npos) << w;
    EXPECT_EQ(w.find('\n'), std::string::npos) << w;
  }
}

TEST(Checkpoint, OverriddenOptionsKeepPhiAndChangeTheRule) {
  // A trained φ run under another max_log_lr: the same tensors, the new option in the spec.
  const std::string path = temp_dir() + "/hrnn.pt";
  torch::manual_seed(7);
  auto rule = learned::make_rule("hrnn");
  io::save_checkpoint(path, *rule, nullptr);
  auto clipped = io::load_rule(path, "max_log_lr=-3,min_log_lr=-20");  // min_log_lr: not in the saved spec
  EXPECT_EQ(clipped->spec().get_double("max_log_lr", 0), -3);
  EXPECT_EQ(clipped->spec().str(),
            Spec::parse(rule->spec().str()).set("max_log_lr", -3.0).set("min_log_lr", -20.0).str());
  const auto a = rule->module()->parameters(), b = clipped->module()->parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i]));
  // The same φ loads into a rule built with the option (fine-tuning), not into another optimizer's.
  auto target = learned::make_rule("hrnn:max_log_lr=-3");
  io::load_phi_into(path, *target);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], target->module()->parameters()[i]));
  EXPECT_THROW(io::load_into(path, *target, nullptr), l2o::Error);  // load_into keeps the spec check
  auto lstm = learned::make_rule("lstm");
  EXPECT_THROW(io::load_phi_into(path, *lstm), l2o::Error);
  // --checkpoint values: the options follow the last ':' and hold '='.
  EXPECT_EQ(io::split_checkpoint_options("a/b.pt:max_log_lr=-3,min_log_lr=-9"),
            std::make_pair(std::string("a/b.pt"), std::string("max_log_lr=-3,min_log_lr=-9")));
  EXPECT_EQ(io::split_checkpoint_options("a:b/c.pt"), std::make_pair(std::string("a:b/c.pt"), std::string()));
  EXPECT_EQ(io::split_checkpoint_options("c.pt"), std::make_pair(std::string("c.pt"), std::string()));
  // An option the optimizer does not have, or one that changes φ's shapes, is a one-line error.
  for (const std::string bad : {"no_such_option=1", "levels=8-20-20", "max_log_lr=-40", "max_log_lr"}) {
    try {
      io::load_rule(path, bad);
      ADD_FAILURE() << bad << ": no error";
    } catch (const l2o::Error& e) {
      EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos) << e.what();
    }
  }
}
