#include <l2o/core/error.h>
#include <l2o/data/cifar10.h>

#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <vector>

namespace l2o {
namespace data {

namespace {
const char* const kWhereToGetIt =
    "CIFAR-10 is not distributable here: download the binary version (cifar-10-binary.tar.gz from "
    "https://www.cs.toronto.edu/~kriz/cifar.html) and place data_batch_1.bin ... data_batch_5.bin and "
    "test_batch.bin in that directory";
}  // namespace

Split read_cifar10_file(const std::string& path) {
  namespace fs = std::filesystem;
  L2O_CHECK(fs::is_regular_file(path), "CIFAR-10 file '", path, "' is missing (", kWhereToGetIt, ")");
  const auto size = static_cast<int64_t>(fs::file_size(path));
  L2O_CHECK(size > 0 && size % kCifar10RecordBytes == 0, "CIFAR-10 file '", path, "' holds ", size,
            " bytes, not a positive multiple of the record size ", kCifar10RecordBytes, " (truncated or not the binary version)");
  const int64_t n = size / kCifar10RecordBytes;
  auto records = torch::empty({n, kCifar10RecordBytes}, torch::kUInt8);
  std::ifstream in(path, std::ios::binary);
  in.read(reinterpret_cast<char*>(records.data_ptr<uint8_t>()), static_cast<std::streamsize>(size));
  L2O_CHECK(in.gcount() == size, "cannot read CIFAR-10 file '", path, "' (read ", in.gcount(), " of ", size, " bytes)");
  const torch::Tensor labels = records.select(1, 0).to(torch::kLong);
  const torch::Tensor bad = (labels > 9).nonzero();
  if (bad.numel() > 0) {
    const int64_t i = bad[0][0].item<int64_t>();
    L2O_FAIL("CIFAR-10 file '", path, "': record ", i, " has label ", labels[i].item<int64_t>(),
             " (labels are 0-9; is this CIFAR-100 or another format?)");
  }
  // The pixel bytes are already in channel-major [3, 32, 32] order.
  const torch::Tensor images = records.narrow(1, 1, kCifar10RecordBytes - 1).reshape({n, 3, 32, 32});
  return {images.to(torch::kFloat) / 255.0, labels};
}

Split read_cifar10_split(const std::string& dir, bool train) {
  L2O_CHECK(std::filesystem::is_directory(dir), "CIFAR-10 directory '", dir, "' does not exist (", kWhereToGetIt, ")");
  std::vector<std::string> files;
  if (train) {
    for (int i = 1; i <= 5; ++i) files.push_back(dir + "/data_batch_" + std::to_string(i) + ".bin");
  } else {
    files.push_back(dir + "/test_batch.bin");
  }
  std::vector<torch::Tensor> images, labels;
  for (const auto& f : files) {
    Split s = read_cifar10_file(f);
    images.push_back(s.images);
    labels.push_back(s.labels);
  }
  return {torch::cat(images, 0), torch::cat(labels, 0)};
}

}  // namespace data
}  // namespace l2o
