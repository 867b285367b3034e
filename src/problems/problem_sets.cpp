#include <l2o/core/error.h>
#include <l2o/core/spec.h>
#include <l2o/problems/problem_sets.h>

#include <cmath>
#include <functional>
#include <map>
#include <utility>

namespace l2o {
namespace problems {

namespace {

using Specs = std::vector<std::string>;
// Specs with their sampling weights (a set of plain Specs weighs each 1).
using Weighted = std::vector<std::pair<std::string, double>>;

// The reference draws Rosenbrock's θ₀ from U(−5, 10)²; our rosenbrock defaults to U(−2, 2)².
const std::string kRosenbrock = "rosenbrock:low=-5,high=10";
const std::string kRosenbrockInline = "rosenbrock/low=-5/high=10";

std::string quadratic(int dim, double noise = 0) {
  std::string s = "quadratic:dim=" + std::to_string(dim);
  if (noise > 0) s += ",noise=" + format_double(noise);
  return s;
}

std::string bowl(double cond, double noise = 0, double angle = 0) {
  std::string s = "bowl:cond=" + format_double(cond);
  if (angle != 0) s += ",angle=" + format_double(angle);
  if (noise > 0) s += ",noise=" + format_double(noise);
  return s;
}

std::string norm(int dim, double p, double noise = 0) {
  std::string s = "norm:dim=" + std::to_string(dim) + ",p=" + format_double(p);
  if (noise > 0) s += ",noise=" + format_double(noise);
  return s;
}

// Reference SoftmaxRegression(features, 2) on datasets.random(features, 1000, random_seed=123, sep).
std::string softmax(int features, double sep, int batch, double noise = 0) {
  std::string s = "softmax:dataset=random,features=" + std::to_string(features) +
                  ",classes=2,samples=1000,sep=" + format_double(sep) + ",seed=123,batch=" + std::to_string(batch);
  if (noise > 0) s += ",noise=" + format_double(noise);
  return s;
}

// Reference FullyConnected(features, 2, hidden, sigmoid) on datasets.random_mlp(features, 1000).
// `sep` is the separator between the keys: ',' for a spec, '/' for an inline spec.
std::string mlp(int features, const std::string& hidden, int batch, char sep = ',') {
  const std::string kv[] = {"dataset=random_mlp", "features=" + std::to_string(features), "classes=2",
                            "samples=1000",       "hidden=" + hidden,                    "act=sigmoid",
                            "batch=" + std::to_string(batch)};
  std::string s = "mlp";
  char next = sep == ',' ? ':' : '/';
  for (const auto& item : kv) {
    s += next + item;
    next = sep;
  }
  return s;
}

std::string data_problem(const std::string& name, int dim, int samples, int batch) {
  return name + ":dim=" + std::to_string(dim) + ",samples=" + std::to_string(samples) + ",batch=" + std::to_string(batch);
}

Specs quadratic_set() { return {quadratic(20), quadratic(25), quadratic(50), quadratic(100)}; }

// As in the reference, one member of the "noisy" set has no noise.
Specs quadratic_noisy_set() { return {quadratic(20, 0.5), quadratic(25), quadratic(50, 1.0), quadratic(100, 2.0)}; }

Specs quadratic_large_set() { return {quadratic(784), quadratic(1024), quadratic(2048)}; }

Specs bowl_set(double noise) {
  const double quarter_turn = std::atan(1.0);  // π/4
  return {bowl(0.1, noise), bowl(1.0, noise), bowl(5.0, noise), bowl(5.0, noise, quarter_turn)};
}

Specs softmax_set(bool noisy) {
  return {softmax(10, 2.0, 100, noisy ? 0.5 : 0), softmax(100, 1.0, 50, noisy ? 0.1 : 0),
          softmax(200, 1.5, 20, noisy ? 0.1 : 0), softmax(256, 1.5, 100, noisy ? 0.5 : 0)};
}

// Reference SparseSoftmaxRegression(5, 2) on noisy_parity_class(5 samples, random_seed=123), batch 23
// (more than the 5 samples, so every step sees all of them). The reference's one-hot variant
// computes the same function with other ops, so it has no set of its own here.
Specs sparse_softmax_set() { return {"sparse_softmax:dim=5,classes=2,samples=5,seed=123,batch=23"}; }

Specs optimization_test_set(double noise) {
  Specs out;
  for (const std::string name : {"ackley", "beale", "booth", "branin", "log_sum_exp", "matyas", "michalewicz",
                                 "rosenbrock", "styblinski_tang"}) {
    std::string s = name == "rosenbrock" ? kRosenbrock : name;
    if (noise > 0) s += std::string(s.find(':') == std::string::npos ? ":" : ",") + "noise=" + format_double(noise);
    out.push_back(s);
  }
  return out;
}

Specs fully_connected_set() {
  return {mlp(8, "8-5", 10),   mlp(12, "8-5-3", 200),   mlp(5, "4-4-4-4", 100), mlp(11, "4-5-6", 64),
          mlp(9, "8", 128),    mlp(7, "8-5", 16),       mlp(8, "32-64", 10),    mlp(12, "16-8-3", 200),
          mlp(5, "8-8-8-8", 100), mlp(11, "10-12-12", 64), mlp(9, "32", 128),  mlp(7, "32-64", 16)};
}

Specs matmul_set() {
  Specs out;
  for (int k = 5; k <= 8; ++k) out.push_back("matmul:n=2,k=" + std::to_string(k));
  for (int k = 19; k <= 24; ++k) out.push_back("matmul:n=3,k=" + std::to_string(k));
  return out;
}

Specs log_objective_set() {
  return {"log_objective:of=quadratic/dim=20", "log_objective:of=quadratic/dim=50",
          "log_objective:of=quadratic/dim=100", "log_objective:of=bowl/cond=0.1",
          "log_objective:of=bowl/cond=1",      "log_objective:of=bowl/cond=5"};
}

Specs sparse_gradient_set() {
  return {"sparse:of=quadratic/dim=20", "sparse:of=quadratic/dim=50", "sparse:of=quadratic/dim=100",
          "sparse:of=bowl/cond=0.1",    "sparse:of=bowl/cond=1",      "sparse:of=bowl/cond=5"};
}

Specs sparse_gradient_mlp_set() {
  return {"sparse:of=" + mlp(8, "8-5", 10, '/'), "sparse:of=" + mlp(12, "8-5-3", 200, '/'),
          "sparse:of=" + mlp(5, "4-4-4-4", 100, '/')};
}

Specs rescale_set() {
  return {"rescale:scale=0.123,of=norm/dim=18/p=2.5", "rescale:scale=8,of=norm/dim=18/p=1.5",
          "rescale:scale=50,of=norm/dim=18/p=2",      "rescale:scale=200,of=norm/dim=18/p=3",
          "rescale:scale=1000,of=norm/dim=18/p=1",    "rescale:scale=0.1,of=quadratic/dim=20",
          "rescale:scale=10,of=quadratic/dim=25",     "rescale:scale=350,of=quadratic/dim=50",
          "rescale:scale=132,of=quadratic/dim=100"};
}

// Norms below 1 give NaN gradients early in training (reference comment), hence p ≥ 1.
Specs norm_set() { return {norm(27, 1), norm(25, 2), norm(22, 3)}; }
Specs norm_noisy_set() { return {norm(19, 1, 0.1), norm(26, 2, 0.1), norm(23, 3, 0.1)}; }

std::string sum(const Specs& parts) {
  std::string of;
  for (const auto& p : parts) of += (of.empty() ? "" : "+") + p;
  return "sum:of=" + of;
}

Specs sum_set() {
  const Specs all2d = {kRosenbrockInline, "log_sum_exp", "ackley", "beale", "booth", "styblinski_tang",
                       "matyas", "branin", "michalewicz"};
  Specs all2d_and_quadratics = all2d;
  all2d_and_quadratics.push_back("quadratic/dim=5");
  all2d_and_quadratics.push_back("quadratic/dim=13");
  return {sum({"quadratic/dim=11", "quadratic/dim=3", "quadratic/dim=9", "quadratic/dim=7", "quadratic/dim=5",
               "quadratic/dim=13", "quadratic/dim=12"}),
          sum({"norm/dim=18/p=3", "quadratic/dim=25", kRosenbrockInline}),
          sum(all2d),
          sum(all2d_and_quadratics),
          sum({"quadratic/dim=11", "quadratic/dim=3"}),
          sum({kRosenbrockInline, "log_sum_exp", "ackley"})};
}

// The reference builds the sum's gradients itself and so drops the parts' noise; SumTask keeps it.
Specs sum_noisy_set() {
  Specs parts = {kRosenbrockInline, "log_sum_exp", "ackley", "beale", "booth", "styblinski_tang",
                 "matyas", "branin", "michalewicz", "quadratic/dim=5", "quadratic/dim=13/noise=0.5"};
  return {sum({"quadratic/dim=11/noise=0.1", "quadratic/dim=3/noise=0.1", "quadratic/dim=9/noise=0.1",
               "quadratic/dim=7/noise=0.1", "quadratic/dim=5/noise=0.1", "quadratic/dim=13/noise=0.1",
               "quadratic/dim=12/noise=0.1"}),
          sum(parts)};
}

// (dim, samples, batch) of the reference's off-by-default data problems.
struct Shape {
  int dim, samples, batch;
};
const std::vector<Shape> kBinaryShapes = {{20, 1000, 100}, {12, 200, 10},   {56, 5000, 100}, {64, 1000, 50},
                                          {13, 10000, 50}, {20, 1000, 128}, {12, 300, 16},   {56, 5000, 128},
                                          {64, 1000, 64},  {13, 10000, 32}};
const std::vector<Shape> kSymmetricShapes = {{20, 1000, 100}, {12, 100, 10},   {56, 5000, 100}, {64, 1000, 50},
                                             {13, 10000, 50}, {20, 1000, 128}, {12, 100, 16},   {56, 5000, 128},
                                             {64, 1000, 64},  {13, 10000, 32}};

Specs data_set(const std::string& name, const std::vector<Shape>& shapes) {
  Specs out;
  for (const auto& s : shapes) out.push_back(data_problem(name, s.dim, s.samples, s.batch));
  return out;
}

// The reference hands DependencyChain random_binary data that its objective never reads: only dim
// matters, so equal dims repeat (keeping the reference's weighting).
Specs dependency_chain_set() {
  Specs out;
  for (const auto& s : kBinaryShapes) out.push_back("dependency_chain:dim=" + std::to_string(s.dim));
  return out;
}

Specs min_max_well_set() {
  Specs out;
  for (int dim : {20, 12, 56, 64, 13}) out.push_back("min_max_well:dim=" + std::to_string(dim));
  return out;
}

// metarun.py with its default flags: every set below except the noise-free quadratics, the sparse
// softmax ones and the five marked off by default; sparse_gradient_mlp comes with
// fully_connected_random_2_class. 4+3+4+4+4+4+9+9+12+10+6+9+3+3+6+2+6+3 = 101 specs.
Specs default_set() {
  Specs out;
  for (const Specs& part :
       {quadratic_noisy_set(), quadratic_large_set(), bowl_set(0), bowl_set(0.1), softmax_set(false),
        softmax_set(true), optimization_test_set(0), optimization_test_set(1), fully_connected_set(), matmul_set(),
        log_objective_set(), rescale_set(), norm_set(), norm_noisy_set(), sum_set(), sum_noisy_set(),
        sparse_gradient_set(), sparse_gradient_mlp_set()})
    out.insert(out.end(), part.begin(), part.end());
  return out;
}

// Task distributions of SPEC §8, weighted (the L2O-Scale sets all weigh 1).
Weighted nn_families_set(bool reparam) {
  const std::string r = reparam ? ",reparam=0.1..10" : "";
  return {{"mlp_family:init=torch+reference" + r, 3.0}, {"conv_family:init=torch+reference" + r, 1.0}};
}

// The families and a share of the L2O-Scale zoo (one of every five draws), so that the optimizer also
// meets the zoo's scales and conditionings.
Weighted generalist_set() {
  Weighted out = nn_families_set(true);
  Specs zoo;
  for (const Specs& part : {quadratic_set(), bowl_set(0), softmax_set(false), optimization_test_set(0),
                            fully_connected_set(), norm_set(), rescale_set(), log_objective_set()})
    zoo.insert(zoo.end(), part.begin(), part.end());
  const double each = 1.0 / static_cast<double>(zoo.size());
  for (const auto& z : zoo) out.emplace_back(z, each);
  return out;
}

// Validation (best.pt) on problems neither the families draw nor the held-out suite holds: widths
// and kernels outside the families' ranges, batch 100, both data sets.
Specs nn_validation_set() {
  return {"mlp:dataset=fashion_mnist,hidden=150,act=relu,init=torch,batch=100,objective_subset=1000",
          "mlp:dataset=mnist,hidden=10-10,act=tanh,init=torch,batch=100,objective_subset=1000",
          "mlp:dataset=random,features=24,classes=6,samples=2000,hidden=150,act=sigmoid,init=reference,batch=100,"
          "objective_subset=1000",
          "conv:dataset=fashion_mnist,filters=7x7x4,act=relu,init=torch,batch=100,objective_subset=256"};
}

struct NamedSet {
  // std::function takes only callables whose result converts, so each lambda picks one constructor.
  NamedSet(std::string d, std::function<Specs()> f)
      : description(std::move(d)), specs([f] {
          Weighted w;
          for (auto& s : f()) w.emplace_back(std::move(s), 1.0);
          return w;
        }) {}
  NamedSet(std::string d, std::function<Weighted()> f) : description(std::move(d)), specs(std::move(f)) {}
  std::string description;
  std::function<Weighted()> specs;
};

const std::map<std::string, NamedSet>& registry() {
  static const std::map<std::string, NamedSet> sets = {
      {"quadratic", {"random quadratics 0.5||Wx-y||^2, dim 20-100 (L2O-Scale)", quadratic_set}},
      {"quadratic_noisy", {"quadratics with gradient noise 0-2", quadratic_noisy_set}},
      {"quadratic_large", {"quadratics of dim 784, 1024, 2048", quadratic_large_set}},
      {"bowl", {"2-D bowls, condition 0.1-5, one rotated", [] { return bowl_set(0); }}},
      {"bowl_noisy", {"2-D bowls with gradient noise 0.1", [] { return bowl_set(0.1); }}},
      {"softmax_2_class", {"softmax regression on 'random' data, 10-256 features", [] { return softmax_set(false); }}},
      {"softmax_2_class_noisy", {"softmax_2_class with gradient noise", [] { return softmax_set(true); }}},
      {"sparse_softmax_2_class", {"sparse softmax regression on noisy parity (off by default)", sparse_softmax_set}},
      {"optimization_test", {"2-D test functions (Ackley ... Styblinski-Tang)", [] { return optimization_test_set(0); }}},
      {"optimization_test_noisy", {"2-D test functions with gradient noise 1", [] { return optimization_test_set(1); }}},
      {"fully_connected_random_2_class", {"sigmoid MLPs on 'random_mlp' data", fully_connected_set}},
      {"matmul", {"matrix-multiplication algorithms, n=2 k=5..8, n=3 k=19..24", matmul_set}},
      {"log_objective", {"log objective of quadratics and bowls", log_objective_set}},
      {"rescale", {"rescaled norms and quadratics", rescale_set}},
      {"norm", {"p-norms of random residuals, p=1,2,3", norm_set}},
      {"norm_noisy", {"p-norms with gradient noise 0.1", norm_noisy_set}},
      {"sum", {"sums of quadratics, norms and 2-D test functions", sum_set}},
      {"sum_noisy", {"sums with noisy parts", sum_noisy_set}},
      {"sparse_gradient", {"quadratics and bowls with 99% of gradient entries zeroed", sparse_gradient_set}},
      {"sparse_gradient_mlp", {"MLPs with 99% of gradient entries zeroed", sparse_gradient_mlp_set}},
      {"min_max_well", {"min-max wells (off by default)", min_max_well_set}},
      {"sum_of_quadratics", {"sums of quadratics on symmetric data (off by default)",
                             [] { return data_set("sum_of_quadratics", kSymmetricShapes); }}},
      {"projection_quadratic", {"projection quadratics on symmetric data (off by default)",
                                [] { return data_set("projection_quadratic", kSymmetricShapes); }}},
      {"outward_snake", {"outward snakes on binary data (off by default)",
                         [] { return data_set("outward_snake", kBinaryShapes); }}},
      {"dependency_chain", {"dependency chains (off by default)", dependency_chain_set}},
      {"default", {"the union metarun.py trains on by default (L2O-Scale)", default_set}},
      {"mnist_mlp", {"MNIST MLP 784-20-10 sigmoid (L2O-Entropy)", [] { return Specs{"mnist_mlp"}; }}},
      {"nn_families", {"task distribution: mlp_family*3, conv_family*1, both initialisations (SPEC 8)",
                       [] { return nn_families_set(false); }}},
      {"nn_families_reparam", {"nn_families with reparam=0.1..10 on half the draws", [] { return nn_families_set(true); }}},
      {"generalist", {"nn_families_reparam (4/5 of the draws) and 51 L2O-Scale zoo specs (1/5)", generalist_set}},
      {"nn_validation", {"validation problems disjoint from the families and the held-out suite", nn_validation_set}},
      {"mnist_mlp_relu", {"MNIST MLP 784-20-10 ReLU (L2O-Entropy meta-test)", [] { return Specs{"mnist_mlp_relu"}; }}},
      {"mnist_mlp_deeper", {"MNIST MLP 784-20-20-10 sigmoid (L2O-Entropy meta-test)",
                            [] { return Specs{"mnist_mlp_deeper"}; }}},
      {"mnist_conv", {"MNIST conv 3x3x8, 5x5x8 ReLU (L2O-Entropy)", [] { return Specs{"mnist_conv"}; }}},
      {"cifar10_conv", {"CIFAR-10 conv 3x3x16, 5x5x16 ReLU (L2O-Entropy)", [] { return Specs{"cifar10_conv"}; }}},
  };
  return sets;
}

}  // namespace

std::vector<std::pair<std::string, double>> named_problem_set(const std::string& name) {
  const auto it = registry().find(name);
  if (it == registry().end()) {
    std::string known;
    for (const auto& kv : registry()) known += (known.empty() ? "" : ", ") + kv.first;
    L2O_FAIL("unknown problem set '@", name, "' (known: ", known, ")");
  }
  return it->second.specs();
}

std::vector<std::pair<std::string, std::string>> problem_set_catalogue() {
  std::vector<std::pair<std::string, std::string>> out;
  for (const auto& kv : registry())
    out.emplace_back(kv.first, kv.second.description + " [" + std::to_string(kv.second.specs().size()) + " specs]");
  return out;
}

}  // namespace problems
}  // namespace l2o
