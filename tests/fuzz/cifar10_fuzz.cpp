// Fuzz target: the CIFAR-10 binary reader.
#include "fuzz_input.h"

#include <l2o/core/error.h>
#include <l2o/data/cifar10.h>

#include <torch/torch.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = l2o::fuzz::write_input(data, size, ".bin");
  try {
    const l2o::data::Split s = l2o::data::read_cifar10_file(path);
    if (s.images.size(0) != s.labels.size(0) || s.labels.max().item<int64_t>() > 9 || s.images.max().item<float>() > 1)
      std::abort();
  } catch (const l2o::Error&) {
  }
  return 0;
}
