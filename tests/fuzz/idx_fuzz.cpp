// Fuzz target: the IDX reader (MNIST / Fashion-MNIST), raw and gzip-compressed.
#include "fuzz_input.h"

#include <l2o/core/error.h>
#include <l2o/data/idx.h>

#include <torch/torch.h>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = l2o::fuzz::write_input(data, size, ".idx");
  try {
    const torch::Tensor t = l2o::data::read_idx(path);
    // A tensor that was read holds exactly the bytes after the header.
    if (t.scalar_type() != torch::kUInt8 || t.dim() < 1 || t.dim() > 4) std::abort();
    (void)t.sum().item<int64_t>();
  } catch (const l2o::Error&) {
  }
  return 0;
}
