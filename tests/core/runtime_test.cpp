#include <l2o/core/runtime.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace l2o {
namespace {

// The project links LibTorch against OpenBLAS (scripts/setup.sh); --threads must reach it too, or
// OpenBLAS keeps a spinning worker per core (two --threads 1 processes ran at about half speed).
TEST(Runtime, SetThreadsLimitsLibTorchAndOpenBlas) {
  torch::mm(torch::ones({64, 64}), torch::ones({64, 64}));  // OpenBLAS is loaded and initialised
  EXPECT_EQ(set_threads(1), 1) << "OpenBLAS is not loaded: LibTorch uses another BLAS (the reference one is ~25x slower)";
  EXPECT_EQ(at::get_num_threads(), 1);
  const auto p = torch::mm(torch::ones({64, 64}), torch::ones({64, 64}));
  EXPECT_EQ(p[0][0].item<float>(), 64.0f);
}

}  // namespace
}  // namespace l2o
