// Finding the shipped checkpoints without a path: environment, package prefix, source tree.
#include <l2o/core/error.h>
#include <l2o/io/checkpoint.h>
#include <l2o/io/shipped_checkpoints.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

using namespace l2o;
namespace fs = std::filesystem;

TEST(ShippedCheckpoints, FoundInTheSourceTreeWhenNotInstalled) {
  const std::string path = io::shipped_checkpoint("hrnn_mnist.pt");
  EXPECT_TRUE(fs::is_regular_file(path)) << path;
  EXPECT_EQ(io::read_checkpoint_info(path).rule_spec.rfind("hrnn", 0), 0u);
  try {
    io::shipped_checkpoint("nope.pt");
    FAIL() << "expected an error";
  } catch (const l2o::Error& e) {
    EXPECT_NE(std::string(e.what()).find("hrnn_mnist.pt"), std::string::npos) << e.what();
  }
}

TEST(ShippedCheckpoints, PackagePrefixAndEnvironmentComeFirst) {
  const fs::path dir = fs::temp_directory_path() / ("l2o_shipped_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::ofstream(dir / "mine.pt") << "x";
  EXPECT_EQ(io::checkpoint_dir(dir.string()), dir.string());
  EXPECT_EQ(io::shipped_checkpoint("mine.pt", dir.string()), (dir / "mine.pt").string());
  // A package directory that does not exist is skipped.
  EXPECT_NE(io::checkpoint_dir((dir / "absent").string()), (dir / "absent").string());
  ::setenv("L2O_CHECKPOINT_DIR", dir.c_str(), 1);
  EXPECT_EQ(io::checkpoint_dir(), dir.string());
  ::setenv("L2O_CHECKPOINT_DIR", (dir / "absent").c_str(), 1);
  EXPECT_THROW(io::checkpoint_dir(), l2o::Error);
  ::unsetenv("L2O_CHECKPOINT_DIR");
  fs::remove_all(dir);
}
