#include <l2o/core/error.h>
#include <l2o/core/rng.h>
#include <l2o/data/synthetic.h>

#include <torch/torch.h>

#include <set>
#include <vector>

namespace l2o {
namespace data {

namespace {

struct Sizes {
  int64_t train, test;
  int64_t total() const { return train + test; }
};

Sizes read_sizes(const std::string& name, const Spec& spec) {
  const int64_t train = spec.get_int("samples", 1000);
  const int64_t test = spec.get_int("test_samples", train);
  L2O_CHECK(train > 0, name, ": samples=", train, " must be > 0");
  L2O_CHECK(test >= 0, name, ": test_samples=", test, " must be >= 0");
  return {train, test};
}

int64_t read_features(const std::string& name, const Spec& spec) {
  const int64_t features = spec.get_int("features", 10);
  L2O_CHECK(features > 0, name, ": features=", features, " must be > 0");
  return features;
}

double read_probability(const std::string& name, const Spec& spec, const std::string& key, double fallback) {
  const double p = spec.get_double(key, fallback);
  L2O_CHECK(p >= 0 && p <= 1, name, ": ", key, "=", p, " must lie in [0, 1]");
  return p;
}

// The first `sizes.train` rows become the train split, the rest the test split: both come from one
// draw, so they share every parameter of the generating process.
DataSplits split(const std::string& name, const torch::Tensor& x, const torch::Tensor& y, int64_t classes,
                 const Sizes& sizes) {
  DataSplits out;
  out.name = name;
  out.train = {x.slice(0, 0, sizes.train), y.slice(0, 0, sizes.train), classes};
  out.test = {x.slice(0, sizes.train), y.slice(0, sizes.train), classes};
  return out;
}

// sklearn.datasets.make_classification(n_informative=n_features, n_redundant=0,
// n_clusters_per_class=2, hypercube=True, shuffle=True), the generator of datasets.random().
DataSplits random_classification(const Spec& spec, const Sizes& sizes, at::Generator& gen) {
  const std::string name = "random";
  const int64_t features = read_features(name, spec);
  const int64_t classes = spec.get_int("classes", 2);
  const double sep = spec.get_double("sep", 1.0);
  const double flip = read_probability(name, spec, "flip", 0.01);
  L2O_CHECK(classes >= 2, name, ": classes=", classes, " must be >= 2");
  L2O_CHECK(sep > 0, name, ": sep=", sep, " must be > 0");
  const int64_t clusters = 2 * classes;
  L2O_CHECK(features >= 63 || (int64_t{1} << features) >= clusters, name, ": features=", features,
            " is too few for ", classes, " classes (needs 2^features >= 2*classes distinct cluster centres)");

  // Distinct hypercube vertices by rejection: at most 2^features of them exist and we need fewer.
  std::set<std::vector<int64_t>> seen;
  std::vector<torch::Tensor> centres;
  while (static_cast<int64_t>(centres.size()) < clusters) {
    const auto v = torch::randint(0, 2, {features}, gen, torch::kLong);
    std::vector<int64_t> key(v.data_ptr<int64_t>(), v.data_ptr<int64_t>() + features);
    if (seen.insert(key).second) centres.push_back(v.to(torch::kFloat) * (2 * sep) - sep);
  }

  const int64_t n = sizes.total();
  auto x = torch::randn({n, features}, gen);
  auto y = torch::empty({n}, torch::kLong);
  int64_t start = 0;
  for (int64_t k = 0; k < clusters; ++k) {
    const int64_t rows = n / clusters + (k < n % clusters ? 1 : 0);
    const auto a = torch::rand({features, features}, gen) * 2 - 1;
    x.slice(0, start, start + rows).copy_(x.slice(0, start, start + rows).matmul(a) + centres[k]);
    y.slice(0, start, start + rows).fill_(k % classes);
    start += rows;
  }
  const auto flipped = torch::rand({n}, gen) < flip;
  const int64_t n_flipped = flipped.sum().item<int64_t>();
  if (n_flipped > 0) y.index_put_({flipped}, torch::randint(0, classes, {n_flipped}, gen, torch::kLong));
  const auto order = torch::randperm(n, gen);
  return split(name, x.index_select(0, order), y.index_select(0, order), classes, sizes);
}

DataSplits random_mlp(const Spec& spec, const Sizes& sizes, at::Generator& gen) {
  const std::string name = "random_mlp";
  const int64_t features = read_features(name, spec);
  const int64_t layers = spec.get_int("layers", 6), width = spec.get_int("width", 20);
  L2O_CHECK(layers > 0, name, ": layers=", layers, " must be > 0");
  L2O_CHECK(width > 0, name, ": width=", width, " must be > 0");
  // Read so that specs may state their class count, as for every classification set.
  const int64_t classes = spec.get_int("classes", 2);
  L2O_CHECK(classes == 2, name, ": classes=", classes, " is not supported (the teacher gives 2 classes)");
  const auto x = torch::randn({sizes.total(), features}, gen);
  // The reference scales every layer by sqrt(2/features), not by each layer's own fan-in; kept,
  // because it decides how often the teacher's output is exactly 0 (label balance).
  const double scale = std::sqrt(2.0 / static_cast<double>(features));
  auto h = x;
  int64_t fan_in = features;
  for (int64_t l = 0; l < layers; ++l) {
    h = torch::relu(h.matmul(torch::randn({fan_in, width}, gen) * scale));
    fan_in = width;
  }
  const auto y = (h.select(1, 0) > 0).to(torch::kLong);
  return split(name, x, y, 2, sizes);
}

DataSplits random_symmetric(const Spec& spec, const Sizes& sizes, at::Generator& gen) {
  const std::string name = "random_symmetric";
  const int64_t features = read_features(name, spec);
  L2O_CHECK(sizes.train % 2 == 0 && sizes.test % 2 == 0, name, ": samples=", sizes.train,
            " and test_samples=", sizes.test, " must be even (rows come in pairs x, -x)");
  // Each split is symmetric on its own, so the mean of either split is 0 (up to rounding).
  auto half = [&](int64_t rows) {
    const auto x = torch::randn({rows / 2, features}, gen);
    return torch::cat({x, -x});
  };
  const auto x = torch::cat({half(sizes.train), half(sizes.test)});
  return split(name, x, torch::zeros({sizes.total()}, torch::kLong), 1, sizes);
}

DataSplits random_binary(const Spec& spec, const Sizes& sizes, at::Generator& gen) {
  const std::string name = "random_binary";
  const int64_t features = read_features(name, spec);
  const auto x = torch::randint(0, 2, {sizes.total(), features}, gen, torch::kLong).to(torch::kFloat);
  return split(name, x, torch::zeros({sizes.total()}, torch::kLong), 1, sizes);
}

DataSplits noisy_parity(const Spec& spec, const Sizes& sizes, at::Generator& gen) {
  const std::string name = "noisy_parity";
  const int64_t classes = spec.get_int("classes", 2), ids = spec.get_int("ids", 5);
  const double flip = read_probability(name, spec, "flip", 0.25);
  L2O_CHECK(classes >= 2, name, ": classes=", classes, " must be >= 2");
  L2O_CHECK(ids > 0, name, ": ids=", ids, " must be > 0");
  const auto x = torch::randint(0, classes, {sizes.total(), ids}, gen, torch::kLong);
  const auto noise = (torch::rand({sizes.total()}, gen) < flip).to(torch::kLong);
  const auto y = (x.sum(1) + noise).remainder(classes);
  return split(name, x.to(torch::kFloat), y, classes, sizes);
}

}  // namespace

std::vector<std::pair<std::string, std::string>> synthetic_catalogue() {
  return {
      {"random", "Gaussian clusters on hypercube vertices, sklearn make_classification (features=10, classes=2, "
                 "sep=1, flip=0.01, samples=1000)"},
      {"random_mlp", "N(0,1) inputs labelled by a random ReLU teacher (features=10, layers=6, width=20, samples=1000)"},
      {"random_symmetric", "N(0,1) rows x and -x, labels 0 (features=10, samples=1000)"},
      {"random_binary", "uniform {0,1} features, labels 0 (features=10, samples=1000)"},
      {"noisy_parity", "ids uniform in [0,classes), label = parity of their sum, flipped w.p. flip "
                       "(ids=5, classes=2, flip=0.25, samples=1000)"},
  };
}

bool is_synthetic(const std::string& name) {
  for (const auto& kv : synthetic_catalogue())
    if (kv.first == name) return true;
  return false;
}

DataSplits make_synthetic(const std::string& name, const Spec& spec, at::Generator& gen) {
  if (!is_synthetic(name)) {
    std::string known;
    for (const auto& kv : synthetic_catalogue()) known += (known.empty() ? "" : ", ") + kv.first;
    L2O_FAIL("unknown synthetic data set '", name, "' (known: ", known, ")");
  }
  const int64_t seed = spec.get_int("seed", 0);
  L2O_CHECK(seed >= 0, name, ": seed=", seed, " must be >= 0");
  at::Generator fixed = make_generator(static_cast<uint64_t>(seed));
  at::Generator& g = spec.has("seed") ? fixed : gen;
  const Sizes sizes = read_sizes(name, spec);
  if (name == "random") return random_classification(spec, sizes, g);
  if (name == "random_mlp") return random_mlp(spec, sizes, g);
  if (name == "random_symmetric") return random_symmetric(spec, sizes, g);
  if (name == "random_binary") return random_binary(spec, sizes, g);
  return noisy_parity(spec, sizes, g);
}

}  // namespace data
}  // namespace l2o
