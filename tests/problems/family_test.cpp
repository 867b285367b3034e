// Task distributions (SPEC §8): init=torch, the reparam wrapper, problem families and the named
// training and validation sets.
#include <l2o/core/error.h>
#include <l2o/core/rng.h>
#include <l2o/problems/family.h>
#include <l2o/problems/nn.h>
#include <l2o/problems/problem_sets.h>
#include <l2o/problems/registry.h>
#include <l2o/problems/wrappers.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <set>

using namespace l2o;
using problems::ClassifierProblem;

namespace {

data::DataSplits tiny_data(int64_t classes, bool images) {
  auto gen = make_generator(41);
  data::DataSplits d;
  d.name = "tiny";
  auto make = [&](int64_t n) {
    data::Dataset s;
    s.inputs = images ? torch::rand({n, 2, 6, 6}, gen, torch::kFloat) : torch::randn({n, 12}, gen, torch::kFloat);
    s.labels = torch::randint(classes, {n}, gen, torch::kLong);
    s.num_classes = classes;
    return s;
  };
  d.train = make(40);
  d.test = make(10);
  return d;
}

std::shared_ptr<ClassifierProblem> tiny(problems::Model model, problems::Init init) {
  ClassifierProblem::Options o;
  o.model = model;
  o.hidden = {7, 5};
  o.filters = {{3, 3, 4}, {5, 5, 3}};
  o.activation = "tanh";
  o.batch = 8;
  o.init = init;
  auto gen = make_generator(42);
  return std::make_shared<ClassifierProblem>("tiny", o, tiny_data(3, model == problems::Model::kConv), gen);
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(InitTorch, MlpEqualsTorchNnLinearUnderTheSameGenerator) {
  const auto problem = tiny(problems::Model::kMlp, problems::Init::kTorch);
  torch::manual_seed(123);
  torch::nn::Linear l1(12, 7), l2(7, 5), l3(5, 3);
  torch::manual_seed(123);
  auto& global = at::detail::getDefaultCPUGenerator();
  at::Generator gen = global;
  const TensorList p = problem->init_params(gen);
  ASSERT_EQ(p.size(), 6u);
  const torch::nn::Linear layers[] = {l1, l2, l3};
  for (size_t i = 0; i < 3; ++i) {
    // l2o stores x·W with W [in, out]; torch keeps [out, in].
    EXPECT_TRUE(torch::equal(p[2 * i], layers[i]->weight.detach().t())) << "weight " << i;
    EXPECT_TRUE(torch::equal(p[2 * i + 1], layers[i]->bias.detach())) << "bias " << i;
  }
}

TEST(InitTorch, ConvEqualsTorchNnConv2dUnderTheSameGenerator) {
  const auto problem = tiny(problems::Model::kConv, problems::Init::kTorch);
  torch::manual_seed(7);
  // The problem's conv layers have no bias (SAME padding, stride 1); the read-out is a Linear.
  torch::nn::Conv2d c1(torch::nn::Conv2dOptions(2, 4, 3).bias(false));
  torch::nn::Conv2d c2(torch::nn::Conv2dOptions(4, 3, 5).bias(false));
  torch::nn::Linear out(3 * 6 * 6, 3);
  torch::manual_seed(7);
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  const TensorList p = problem->init_params(gen);
  ASSERT_EQ(p.size(), 4u);
  EXPECT_TRUE(torch::equal(p[0], c1->weight.detach()));
  EXPECT_TRUE(torch::equal(p[1], c2->weight.detach()));
  EXPECT_TRUE(torch::equal(p[2], out->weight.detach().t()));
  EXPECT_TRUE(torch::equal(p[3], out->bias.detach()));
}

TEST(InitTorch, BoundsAreOneOverRootFanIn) {
  auto gen = make_generator(5);
  const auto problem = problems::make_problem(
      "mlp:dataset=random,features=400,classes=10,samples=50,hidden=300,init=torch", gen);
  const TensorList p = problem->init_params(gen);
  const double bounds[] = {1 / std::sqrt(400.0), 1 / std::sqrt(400.0), 1 / std::sqrt(300.0), 1 / std::sqrt(300.0)};
  for (size_t i = 0; i < p.size(); ++i) {
    const double largest = p[i].abs().max().item<double>();
    EXPECT_LE(largest, bounds[i] * (1 + 1e-6)) << "tensor " << i;
    // Uniform on [−b, b]: the largest of ≥ 10 draws comes close to b, and the mean is ~0.
    EXPECT_GT(largest, 0.8 * bounds[i]) << "tensor " << i;
    EXPECT_LT(std::abs(p[i].mean().item<double>()), 0.2 * bounds[i]) << "tensor " << i;
  }
  // The reference initialisation is Gaussian, with entries beyond the torch bound.
  const auto ref = problems::make_problem("mlp:dataset=random,features=400,classes=10,samples=50,hidden=300", gen);
  EXPECT_GT(ref->init_params(gen)[0].abs().max().item<double>(), 2 * bounds[0]);
  EXPECT_NE(error_of([&] { problems::make_problem("mlp:dataset=random,init=xavier", gen); }).find("init='xavier'"),
            std::string::npos);
}

TEST(Reparam, ScalesValuesAndGradientsAsItsFormulaSays) {
  const auto inner = tiny(problems::Model::kMlp, problems::Init::kTorch);
  for (const auto per : {problems::Reparam::Per::kTensor, problems::Reparam::Per::kCoordinate}) {
    auto gen = make_generator(9);
    const problems::Reparam r(inner, 0.01, 100, per, gen);
    // θ'₀ = θ₀ / s: the same generator gives the inner θ₀.
    auto g1 = make_generator(10), g2 = make_generator(10);
    const TensorList theta0 = inner->init_params(g1), prime0 = r.init_params(g2);
    for (size_t i = 0; i < theta0.size(); ++i) {
      const auto s = r.scales()[i].to(torch::kDouble);
      EXPECT_GE(s.min().item<double>(), 0.01);
      EXPECT_LE(s.max().item<double>(), 100);
      EXPECT_TRUE(torch::allclose(prime0[i].to(torch::kDouble) * s, theta0[i].to(torch::kDouble), 1e-6, 1e-7));
      if (per == problems::Reparam::Per::kCoordinate && s.numel() > 4) {
        EXPECT_GT(s.max().item<double>() / s.min().item<double>(), 1.5);
      }
    }
    // f(θ') = f_inner(s ⊙ θ') and ∇_θ' f = s ⊙ ∇f_inner(s ⊙ θ'), by autograd and by central differences.
    const problems::Batch batch = inner->objective_batch();
    TensorList x;
    for (const auto& p : prime0) x.push_back(p.to(torch::kDouble).requires_grad_(true));
    const auto f = r.loss(x, batch);
    TensorList theta;
    for (size_t i = 0; i < x.size(); ++i) theta.push_back((x[i] * r.scales()[i].to(torch::kDouble)).detach().requires_grad_(true));
    const auto f_inner = inner->loss(theta, batch);
    EXPECT_NEAR(f.item<double>(), f_inner.item<double>(), 1e-12);
    const auto g = torch::autograd::grad({f}, x);
    const auto g_inner = torch::autograd::grad({f_inner}, theta);
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < x.size(); ++i) {
      EXPECT_TRUE(torch::allclose(g[i], g_inner[i] * r.scales()[i].to(torch::kDouble), 1e-10, 1e-12)) << "tensor " << i;
      auto flat = x[i].view({-1});
      for (int64_t j = 0; j < std::min<int64_t>(flat.numel(), 4); ++j) {
        const double old = flat[j].item<double>(), h = 1e-6 * std::max(1.0, std::abs(old));
        flat[j] = old + h;
        const double up = r.loss(x, batch).item<double>();
        flat[j] = old - h;
        const double down = r.loss(x, batch).item<double>();
        flat[j] = old;
        const double fd = (up - down) / (2 * h), ad = g[i].view({-1})[j].item<double>();
        EXPECT_NEAR(ad, fd, 1e-5 * std::max(1.0, std::abs(fd))) << "tensor " << i << " entry " << j;
      }
    }
  }
}

TEST(Reparam, FromSpecAndBadOptions) {
  auto gen = make_generator(1);
  const auto p = problems::make_problem("reparam:min=0.5,max=2,of=quadratic/dim=4", gen);
  EXPECT_EQ(p->name(), "reparam:max=2,min=0.5,of=quadratic/dim=4,per=tensor");
  EXPECT_NE(error_of([&] { problems::make_problem("reparam:min=2,max=1,of=quadratic/dim=4", gen); }).find("min <= max"),
            std::string::npos);
  EXPECT_NE(error_of([&] { problems::make_problem("reparam:per=row,of=quadratic/dim=4", gen); }).find("per='row'"),
            std::string::npos);
}

TEST(Family, DrawIsReproducibleFromItsSeed) {
  const Spec family = Spec::parse("mlp_family:reparam=0.1..10");
  std::set<std::string> seen;
  for (uint64_t seed = 0; seed < 12; ++seed) {
    auto a = make_generator(seed), b = make_generator(seed);
    const std::string sa = problems::draw_family_spec(family, a);
    EXPECT_EQ(sa, problems::draw_family_spec(family, b));
    seen.insert(sa);
  }
  EXPECT_GE(seen.size(), 10u) << "draws of different seeds should differ";
  // The whole problem too: same spec name, same θ₀ and minibatches.
  auto a = make_generator(3), b = make_generator(3);
  const auto pa = problems::make_problem("conv_family:dataset=fashion_mnist+mnist", a);
  const auto pb = problems::make_problem("conv_family:dataset=fashion_mnist+mnist", b);
  EXPECT_EQ(pa->name(), pb->name());
  const auto ta = pa->init_params(a), tb = pb->init_params(b);
  ASSERT_EQ(ta.size(), tb.size());
  for (size_t i = 0; i < ta.size(); ++i) EXPECT_TRUE(torch::equal(ta[i], tb[i]));
  EXPECT_TRUE(torch::equal(pa->sample_batch(a).inputs, pb->sample_batch(b).inputs));
}

TEST(Family, DrawsStayInTheirRangesAndCoverTheChoices) {
  const Spec family = Spec::parse("mlp_family:width=16..128,depth=1..3,act=relu+tanh,batch=32+64");
  std::set<std::string> acts, datasets;
  std::set<int64_t> depths, batches;
  int64_t low = 1000, high = 0;
  for (uint64_t seed = 0; seed < 300; ++seed) {
    auto gen = make_generator(seed);
    const Spec member = Spec::parse(problems::draw_family_spec(family, gen));
    ASSERT_EQ(member.name(), "mlp");
    acts.insert(member.get_string("act", ""));
    datasets.insert(member.get_string("dataset", ""));
    batches.insert(member.get_int("batch", 0));
    const std::string hidden = member.get_string("hidden", "");
    int64_t depth = 1;
    size_t begin = 0;
    for (size_t k = 0; k <= hidden.size(); ++k) {
      if (k < hidden.size() && hidden[k] != '-') continue;
      const int64_t w = std::stoll(hidden.substr(begin, k - begin));
      low = std::min(low, w);
      high = std::max(high, w);
      begin = k + 1;
      if (k < hidden.size()) ++depth;
    }
    depths.insert(depth);
  }
  EXPECT_EQ(acts, (std::set<std::string>{"relu", "tanh"}));
  EXPECT_EQ(datasets, (std::set<std::string>{"mnist", "fashion_mnist", "random"}));
  EXPECT_EQ(depths, (std::set<int64_t>{1, 2, 3}));
  EXPECT_EQ(batches, (std::set<int64_t>{32, 64}));
  EXPECT_GE(low, 16);
  EXPECT_LE(high, 128);
  EXPECT_LT(low, 20);
  EXPECT_GT(high, 110);
}

TEST(Family, BadKeysAndRangesAreOneClearError) {
  auto gen = make_generator(0);
  EXPECT_NE(error_of([&] { problems::make_problem("mlp_family:widht=16..32", gen); }).find("unknown option 'widht'"),
            std::string::npos);
  EXPECT_NE(error_of([&] { problems::make_problem("mlp_family:width=128..16", gen); }).find("empty range"),
            std::string::npos);
  EXPECT_NE(error_of([&] { problems::make_problem("conv_family:act=relu++tanh", gen); }).find("empty choice"),
            std::string::npos);
  EXPECT_NE(error_of([&] { problems::make_problem("mlp_family:reparam=10..0.1", gen); }).find("empty range"),
            std::string::npos);
  EXPECT_NE(error_of([&] { problems::make_problem("conv_family:kernel=4", gen); }).find("must be odd"),
            std::string::npos);
}

TEST(Family, NamedSetsCarryWeightsAndValidationIsDisjoint) {
  const auto set = problems::ProblemSet::parse("@nn_families");
  ASSERT_EQ(set.specs().size(), 2u);
  EXPECT_EQ(set.specs()[0].second, 3.0);
  EXPECT_EQ(set.specs()[1].second, 1.0);
  const auto generalist = problems::named_problem_set("generalist");
  double families = 0, total = 0;
  for (const auto& kv : generalist) {
    total += kv.second;
    if (problems::is_family(Spec::parse(kv.first).name())) families += kv.second;
  }
  EXPECT_NEAR(families / total, 0.8, 1e-9);
  // No validation problem is a member any family default could draw: widths 10 and 150 and
  // kernel 7 lie outside the families' ranges.
  for (const auto& kv : problems::named_problem_set("nn_validation")) {
    const Spec s = Spec::parse(kv.first);
    const bool outside = s.get_string("hidden", "").find("150") != std::string::npos ||
                         s.get_string("hidden", "").find("10-10") != std::string::npos ||
                         s.get_string("filters", "").find("7x7") != std::string::npos;
    EXPECT_TRUE(outside) << kv.first;
  }
}
