#include <l2o/core/runtime.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <malloc.h>

#include <cstdlib>
#include <cstring>

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

// With two threads in LibTorch's pool, OpenBLAS stays at one: its spinning workers and the pool's took
// the 2 cores from each other (MNIST meta-training 2.5x slower than on one thread; docs/benchmarks.md).
// 0 keeps the pool's size and still limits OpenBLAS.
TEST(Runtime, MoreLibTorchThreadsKeepOpenBlasAtOne) {
  const int before = at::get_num_threads();
  torch::mm(torch::ones({64, 64}), torch::ones({64, 64}));
  EXPECT_EQ(set_threads(2), 1);
  EXPECT_EQ(at::get_num_threads(), 2);
  EXPECT_EQ(set_threads(0), 1);
  EXPECT_EQ(at::get_num_threads(), 2) << "0 changed LibTorch's pool";
  const auto p = torch::mm(torch::ones({300, 300}), torch::ones({300, 300}));
  EXPECT_EQ(p[0][0].item<float>(), 300.0f);
  set_threads(before);
}

// keep_freed_memory(): a block larger than glibc's largest mmap threshold (32 MB) comes from the heap,
// not a fresh mapping, and stays in the process when freed, so the next step does not page it in again.
TEST(Runtime, KeepFreedMemoryServesLargeBlocksFromTheHeap) {
  if (env_flag("L2O_OS_MALLOC")) GTEST_SKIP() << "L2O_OS_MALLOC keeps glibc's defaults";
  keep_freed_memory();
  const size_t big = size_t{64} << 20;
  const size_t mapped_before = mallinfo2().hblkhd;
  void* p = std::malloc(big);
  ASSERT_NE(p, nullptr);
  std::memset(p, 1, big);
  const size_t mapped = mallinfo2().hblkhd - mapped_before;
  std::free(p);
  EXPECT_LT(mapped, big) << "the block was mmapped";
  EXPECT_GE(mallinfo2().fordblks, big) << "the freed block left the heap";
}

}  // namespace
}  // namespace l2o
