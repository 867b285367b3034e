#pragma once
/// Classification data sets (SPEC §2): real ones read from disk (MNIST, Fashion-MNIST, CIFAR-10) and
/// synthetic ones drawn from a generator. Every data set comes as a train and a test split that are
/// never mixed: optimizees train on `train`, reports evaluate on `test`.
#include <l2o/core/spec.h>

#include <ATen/core/Generator.h>
#include <torch/types.h>

#include <string>
#include <utility>
#include <vector>

namespace l2o {
namespace data {

/// One split: `inputs` [n, ...] float (images [n, c, h, w]; features [n, d]; token ids stored as
/// float for the sparse problems), `labels` int64 [n] in [0, num_classes).
struct Dataset {
  torch::Tensor inputs;
  torch::Tensor labels;
  int64_t num_classes = 0;
  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
  /// The rows `index` (int64 [k]) of both tensors.
  Dataset rows(const torch::Tensor& index) const;
};

/// A train and a test split of one data set.
struct DataSplits {
  std::string name;
  Dataset train;
  Dataset test;
};

/// Builds the data set named by the `dataset` key of `spec` (default `fallback`), reading the keys it
/// needs from `spec` (e.g. `features`, `classes`, `samples` for synthetic sets). Real data sets are read
/// once per process and cached; synthetic ones are drawn with `gen`. Throws l2o::Error for an unknown
/// name or missing/corrupt files (the message names the package that provides them).
DataSplits make_dataset(const Spec& spec, at::Generator& gen, const std::string& fallback = "mnist");

/// (name, one-line description) of every data set.
std::vector<std::pair<std::string, std::string>> dataset_catalogue();

}  // namespace data
}  // namespace l2o
