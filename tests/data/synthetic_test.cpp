#include <l2o/core/error.h>
#include <l2o/core/rng.h>
#include <l2o/data/synthetic.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

using namespace l2o;

namespace {

data::DataSplits draw(const std::string& name, const std::string& keys, uint64_t seed = 1) {
  auto gen = make_generator(seed);
  const Spec spec = Spec::parse(name + (keys.empty() ? "" : ":" + keys));
  auto out = data::make_synthetic(name, spec, gen);
  spec.check_all_used();  // every key given was read
  return out;
}

// The error is one line and names the culprit.
template <typename F>
void expect_error(F&& f, const std::string& culprit) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one naming '" << culprit << "'";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(culprit), std::string::npos) << what;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

}  // namespace

TEST(Synthetic, CatalogueNamesAreSynthetic) {
  for (const auto& kv : data::synthetic_catalogue()) EXPECT_TRUE(data::is_synthetic(kv.first)) << kv.first;
  EXPECT_FALSE(data::is_synthetic("mnist"));
  EXPECT_EQ(data::synthetic_catalogue().size(), 5u);
}

TEST(Synthetic, RandomHasTheRequestedShapesAndBalancedClasses) {
  const auto d = draw("random", "features=7,classes=3,samples=600,test_samples=300");
  EXPECT_EQ(d.train.inputs.sizes(), (std::vector<int64_t>{600, 7}));
  EXPECT_EQ(d.test.inputs.sizes(), (std::vector<int64_t>{300, 7}));
  EXPECT_EQ(d.train.inputs.scalar_type(), torch::kFloat);
  EXPECT_EQ(d.train.labels.scalar_type(), torch::kLong);
  EXPECT_EQ(d.train.num_classes, 3);
  const auto all = torch::cat({d.train.labels, d.test.labels});
  EXPECT_GE(all.min().item<int64_t>(), 0);
  EXPECT_LE(all.max().item<int64_t>(), 2);
  for (int c = 0; c < 3; ++c) EXPECT_NEAR(all.eq(c).sum().item<double>() / 900.0, 1.0 / 3.0, 0.03);
}

TEST(Synthetic, RandomPutsTwoClustersPerClassOnHypercubeVertices) {
  // 2 features, 2 classes: the 4 clusters occupy all 4 vertices of {±sep}²; with sep far above the
  // cluster spread (|A x| ≲ 2·4), each quadrant holds one cluster, hence one label, in both splits.
  const auto d = draw("random", "features=2,classes=2,sep=30,flip=0,samples=2000");
  const auto x = torch::cat({d.train.inputs, d.test.inputs});
  const auto y = torch::cat({d.train.labels, d.test.labels});
  const auto quadrant = (x.select(1, 0) > 0).to(torch::kLong) * 2 + (x.select(1, 1) > 0).to(torch::kLong);
  int per_class[2] = {0, 0};
  for (int q = 0; q < 4; ++q) {
    const auto labels = y.index({quadrant.eq(q)});
    ASSERT_GT(labels.numel(), 800) << "quadrant " << q;
    EXPECT_TRUE(labels.eq(labels[0]).all().item<bool>()) << "quadrant " << q << " mixes classes";
    ++per_class[labels[0].item<int64_t>()];
  }
  EXPECT_EQ(per_class[0], 2);
  EXPECT_EQ(per_class[1], 2);
}

TEST(Synthetic, RandomFlipsAboutTheRequestedFractionOfLabels) {
  // flip redraws a label uniformly among 2 classes: half the redrawn ones change.
  const auto d = draw("random", "features=2,classes=2,sep=30,flip=0.4,samples=4000,test_samples=0");
  const auto x = d.train.inputs, y = d.train.labels;
  const auto quadrant = (x.select(1, 0) > 0).to(torch::kLong) * 2 + (x.select(1, 1) > 0).to(torch::kLong);
  double wrong = 0;
  for (int q = 0; q < 4; ++q) {
    const auto labels = y.index({quadrant.eq(q)});
    const double ones = labels.sum().item<double>();
    wrong += std::min(ones, labels.numel() - ones);  // the minority label in a quadrant
  }
  EXPECT_NEAR(wrong / 4000.0, 0.2, 0.03);
}

TEST(Synthetic, RandomMlpTestSplitComesFromTheSameTeacher) {
  // One layer of width 1: label = [x·w > 0] for one hidden w, so the class-1 mean points along w in
  // both splits.
  const auto d = draw("random_mlp", "features=6,layers=1,width=1,samples=3000");
  EXPECT_EQ(d.train.num_classes, 2);
  auto direction = [](const data::Dataset& s) {
    const auto m = s.inputs.index({s.labels.eq(1)}).mean(0) - s.inputs.index({s.labels.eq(0)}).mean(0);
    return m / m.norm();
  };
  EXPECT_GT((direction(d.train) * direction(d.test)).sum().item<double>(), 0.95);
  const double ones = d.train.labels.to(torch::kDouble).mean().item<double>();
  EXPECT_NEAR(ones, 0.5, 0.05);  // a hyperplane through 0 splits N(0, I) in half
}

TEST(Synthetic, RandomMlpDefaultTeacherGivesBothLabels) {
  const auto d = draw("random_mlp", "features=8");
  const double ones = d.train.labels.to(torch::kDouble).mean().item<double>();
  EXPECT_GT(ones, 0.0);
  EXPECT_LT(ones, 1.0);
  expect_error([] { draw("random_mlp", "classes=3"); }, "classes=3");
}

TEST(Synthetic, RandomSymmetricRowsComeInOppositePairs) {
  const auto d = draw("random_symmetric", "features=4,samples=10,test_samples=6");
  const auto& x = d.train.inputs;
  EXPECT_TRUE(torch::equal(x.slice(0, 0, 5), -x.slice(0, 5)));
  EXPECT_TRUE(torch::equal(d.test.inputs.slice(0, 0, 3), -d.test.inputs.slice(0, 3)));
  EXPECT_LT(x.sum(0).abs().max().item<float>(), 1e-5f);  // 0 up to float rounding
  EXPECT_FALSE(torch::equal(x.slice(0, 0, 3), d.test.inputs.slice(0, 0, 3)));
  EXPECT_TRUE(d.train.labels.eq(0).all().item<bool>());
  expect_error([] { draw("random_symmetric", "samples=7"); }, "samples=7");
}

TEST(Synthetic, RandomBinaryIsUniformOnZeroOne) {
  const auto d = draw("random_binary", "features=50,samples=400");
  const auto& x = d.train.inputs;
  EXPECT_TRUE((x.eq(0) | x.eq(1)).all().item<bool>());
  EXPECT_NEAR(x.mean().item<double>(), 0.5, 0.02);
  EXPECT_TRUE(d.train.labels.eq(0).all().item<bool>());
}

TEST(Synthetic, NoisyParityLabelsAreTheParityUpToTheFlipRate) {
  const auto d = draw("noisy_parity", "samples=8000,test_samples=0");
  const auto ids = d.train.inputs.to(torch::kLong);
  EXPECT_EQ(d.train.inputs.size(1), 5);
  EXPECT_TRUE((ids.ge(0) & ids.lt(2)).all().item<bool>());
  const auto parity = ids.sum(1).remainder(2);
  EXPECT_NEAR(parity.eq(d.train.labels).to(torch::kDouble).mean().item<double>(), 0.75, 0.02);

  const auto exact = draw("noisy_parity", "classes=3,ids=4,flip=0,samples=300");
  const auto ids3 = exact.train.inputs.to(torch::kLong);
  EXPECT_TRUE(ids3.sum(1).remainder(3).eq(exact.train.labels).all().item<bool>());
  EXPECT_LE(ids3.max().item<int64_t>(), 2);
  EXPECT_EQ(exact.train.num_classes, 3);
}

TEST(Synthetic, SeedFixesTheDataWhateverTheGenerator) {
  const auto a = draw("random", "features=5,seed=123", 1), b = draw("random", "features=5,seed=123", 2);
  EXPECT_TRUE(torch::equal(a.train.inputs, b.train.inputs));
  EXPECT_TRUE(torch::equal(a.test.labels, b.test.labels));
  const auto c = draw("random", "features=5", 1), e = draw("random", "features=5", 2), f = draw("random", "features=5", 1);
  EXPECT_FALSE(torch::equal(c.train.inputs, e.train.inputs));
  EXPECT_TRUE(torch::equal(c.train.inputs, f.train.inputs));
}

TEST(Synthetic, BadNamesAndValuesAreOneLineErrorsNamingTheCulprit) {
  expect_error([] { draw("randomm", ""); }, "randomm");
  expect_error([] { draw("random", "samples=-3"); }, "samples=-3");
  expect_error([] { draw("random", "flip=2"); }, "flip=2");
  expect_error([] { draw("random", "features=1,classes=2"); }, "features=1");
  expect_error([] { draw("random", "sep=abc"); }, "sep");
  expect_error([] { draw("noisy_parity", "ids=0"); }, "ids=0");
  // A key no generator reads is left for check_all_used, which names it.
  expect_error([] { draw("random_binary", "sep=2"); }, "sep");
}
