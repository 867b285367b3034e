// The torch::optim adapter: equal to the functional rule, and save → load → continue is exact.
#include <l2o/core/error.h>
#include <l2o/learned/registry.h>
#include <l2o/optim/adapter.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

using namespace l2o;

namespace {
struct Model : torch::nn::Module {
  Model() {
    fc1 = register_module("fc1", torch::nn::Linear(4, 8));
    fc2 = register_module("fc2", torch::nn::Linear(8, 1));
  }
  torch::Tensor forward(const torch::Tensor& x) { return fc2->forward(torch::tanh(fc1->forward(x))); }
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};

std::shared_ptr<Model> make_model() {
  torch::manual_seed(11);
  return std::make_shared<Model>();
}

torch::Tensor batch_loss(Model& m, int step) {
  auto gen = at::detail::createCPUGenerator(100 + step);
  const auto x = torch::randn({16, 4}, gen);
  const auto y = x.sum(1, true).sin();
  return (m.forward(x) - y).pow(2).mean();
}

void train(Model& m, torch::optim::Optimizer& opt, int from, int to) {
  for (int s = from; s < to; ++s) {
    opt.zero_grad();
    batch_loss(m, s).backward();
    opt.step();
  }
}
}  // namespace

class AdapterTest : public ::testing::TestWithParam<std::string> {};

TEST_P(AdapterTest, EqualsFunctionalRule) {
  torch::manual_seed(5);
  auto rule = learned::make_rule(GetParam());
  auto model = make_model();
  optim::RuleOptimizer opt(model->parameters(), rule);

  auto reference = make_model();
  TensorList theta = l2o::detach(reference->parameters());
  optim::State state = rule->init(theta);
  for (int s = 0; s < 20; ++s) {
    train(*model, opt, s, s + 1);
    // Functional twin on a copy of the model.
    {
      torch::NoGradGuard g;
      auto params = reference->parameters();
      for (size_t i = 0; i < params.size(); ++i) params[i].copy_(theta[i]);
    }
    reference->zero_grad();
    batch_loss(*reference, s).backward();
    TensorList grads;
    for (const auto& p : reference->parameters()) grads.push_back(p.grad().clone());
    torch::NoGradGuard g;
    auto r = rule->update(theta, grads, state);
    theta = r.params;
    state = r.state;
  }
  const auto params = model->parameters();
  for (size_t i = 0; i < params.size(); ++i) EXPECT_TRUE(torch::allclose(params[i], theta[i], 1e-6, 1e-7)) << i;
}

TEST_P(AdapterTest, SaveLoadContinueEqualsUninterrupted) {
  torch::manual_seed(5);
  auto rule = learned::make_rule(GetParam());
  auto a = make_model();
  optim::RuleOptimizer opt_a(a->parameters(), rule);
  train(*a, opt_a, 0, 10);

  auto b = make_model();
  optim::RuleOptimizer opt_b(b->parameters(), rule);
  train(*b, opt_b, 0, 5);
  std::stringstream stream;
  {
    torch::serialize::OutputArchive out;
    opt_b.save(out);
    out.save_to(stream);
  }
  optim::RuleOptimizer opt_c(b->parameters(), rule);
  {
    torch::serialize::InputArchive in;
    in.load_from(stream);
    opt_c.load(in);
  }
  train(*b, opt_c, 5, 10);
  const auto pa = a->parameters(), pb = b->parameters();
  for (size_t i = 0; i < pa.size(); ++i) EXPECT_TRUE(torch::equal(pa[i], pb[i])) << i;
}

INSTANTIATE_TEST_SUITE_P(Rules, AdapterTest,
                         ::testing::Values("adam:lr=0.01", "nag:lr=0.01", "rmsprop:lr=0.001", "adagrad:lr=0.05",
                                           "lstm:output_scale=0.01"),
                         [](const auto& info) { return Spec::parse(info.param).name(); });

TEST(Adapter, LoadRejectsStateOfAnotherRule) {
  auto model = make_model();
  optim::RuleOptimizer adam(model->parameters(), learned::make_rule("adam"));
  train(*model, adam, 0, 1);
  std::stringstream stream;
  torch::serialize::OutputArchive out;
  adam.save(out);
  out.save_to(stream);
  optim::RuleOptimizer sgd(model->parameters(), learned::make_rule("sgd"));
  torch::serialize::InputArchive in;
  in.load_from(stream);
  EXPECT_THROW(sgd.load(in), l2o::Error);
}
