#pragma once
/// Synthetic data sets of L2O-Scale (`datasets.py` of the TF reference, SPEC §2). Each one is drawn
/// from a generator and comes as a train and a test split drawn from the same distribution (the same
/// cluster centres, the same random teacher network): the test split has `test_samples` rows, equal
/// to `samples` unless given.
///
/// Keys read from the spec (all sets): `samples` (train rows, default 1000), `test_samples`
/// (default = samples) and `seed`: when given, the data are drawn from a generator seeded with it
/// instead of the one passed in, so every problem instance sees the same data (the reference fixes
/// `random_seed=123` for its softmax sets); otherwise every instance draws fresh data.
#include <l2o/core/spec.h>
#include <l2o/data/dataset.h>

#include <ATen/core/Generator.h>

#include <string>
#include <utility>
#include <vector>

namespace l2o {
namespace data {

/// True when `name` is one of the synthetic sets below.
bool is_synthetic(const std::string& name);

/// Draws the synthetic data set `name` with the keys it reads from `spec` (see the catalogue):
/// - `random`: sklearn `make_classification` with every feature informative (Guyon 2003): two
///   Gaussian clusters per class centred on distinct vertices of the hypercube {−sep, sep}^features,
///   each with covariance AᵀA, A ~ U(−1,1)^{F×F}; a fraction `flip` of labels is then redrawn
///   uniformly. Keys `features`=10, `classes`=2, `sep`=1, `flip`=0.01.
/// - `random_mlp`: x ~ N(0, I_features); label 1 iff the first output of a random ReLU teacher with
///   `layers`=6 layers of `width`=20 units, weights N(0, 2/features), is > 0 (`classes` must be 2).
/// - `random_symmetric`: rows x and −x, x ~ N(0, I_features) (samples must be even); labels 0.
/// - `random_binary`: x ~ U{0,1}^features; labels 0.
/// - `noisy_parity`: `ids`=5 token ids per row, each uniform in [0, classes) (stored as float);
///   label (Σ ids + b) mod classes with b ~ Bernoulli(`flip`=0.25).
/// Throws l2o::Error on an unknown name or a bad value (the message echoes it).
DataSplits make_synthetic(const std::string& name, const Spec& spec, at::Generator& gen);

/// (name, one-line description with keys and defaults) of every synthetic set.
std::vector<std::pair<std::string, std::string>> synthetic_catalogue();

}  // namespace data
}  // namespace l2o
