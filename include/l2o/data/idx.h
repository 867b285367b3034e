#pragma once
/// IDX files (LeCun's format of MNIST and Fashion-MNIST), raw or gzip-compressed.
#include <torch/types.h>

#include <string>

namespace l2o {
namespace data {

/// Reads an IDX file of unsigned bytes (magic 0x00000801 labels, 0x00000803 images), raw or .gz.
/// Returns a uint8 tensor of the stored shape ([n] or [n, rows, cols]). Throws l2o::Error naming the
/// file for a missing, truncated or wrong-magic file.
torch::Tensor read_idx(const std::string& path);

/// One split of an image classification data set: images float [n, 1, rows, cols] scaled to [0, 1],
/// labels int64 [n].
struct Split {
  torch::Tensor images;
  torch::Tensor labels;
};

/// Reads `<prefix>-images-idx3-ubyte[.gz]` and `<prefix>-labels-idx1-ubyte[.gz]` from `dir`
/// (prefix "train" or "t10k"), checking that the counts agree. `package_hint` names what installs the
/// files, for the error message when they are missing.
Split read_idx_split(const std::string& dir, const std::string& prefix, const std::string& package_hint);

}  // namespace data
}  // namespace l2o
