#include <l2o/core/error.h>
#include <l2o/core/rng.h>
#include <l2o/core/spec.h>
#include <l2o/problems/family.h>
#include <l2o/problems/nn.h>
#include <l2o/problems/problem_sets.h>
#include <l2o/problems/quadratic.h>
#include <l2o/problems/registry.h>
#include <l2o/problems/wrappers.h>
#include <l2o/problems/zoo.h>

#include <torch/torch.h>

#include <cctype>
#include <cmath>

namespace l2o {
namespace problems {

std::vector<std::pair<std::string, std::string>> problem_catalogue() {
  std::vector<std::pair<std::string, std::string>> out = {
      {"dm_quadratic", "batch of random quadratics mean_b ||W_b x_b - y_b||^2 (DM 2016; batch=128, dim=10, stddev=0)"},
      {"isotropic_quadratic", "0.5 ||x - c||^2 with random centre c (dim=10); minimum 0"},
      {"rosenbrock", "2-D Rosenbrock (1-x)^2 + 100 (y-x^2)^2, x0 ~ U(low,high) (low=-2, high=2); minimum 0 at (1,1)"},
      {"softmax", "softmax regression on a data set (dataset=mnist|fashion_mnist|cifar10|<synthetic>, batch=128 "
                  "(0 = full batch), objective_subset=0, l2=1e-3)"},
      {"mlp", "fully connected classifier (hidden=20 or 20-20, act=sigmoid|relu|tanh, dataset, batch, "
              "objective_subset, l2)"},
      {"conv", "convnet, SAME padding, no conv bias, then affine (filters=3x3x8-5x5x8, act=relu, dataset, batch, "
               "objective_subset, l2)"},
      {"mnist_mlp", "preset mlp:dataset=mnist,hidden=20,act=sigmoid,batch=128,objective_subset=10000 (L2O-Entropy)"},
      {"mnist_mlp_relu", "preset mlp:dataset=mnist,hidden=20,act=relu,batch=128,objective_subset=10000"},
      {"mnist_mlp_deeper", "preset mlp:dataset=mnist,hidden=20-20,act=sigmoid,batch=128,objective_subset=10000"},
      {"mnist_conv", "preset conv:dataset=mnist,filters=3x3x8-5x5x8,act=relu,batch=64,objective_subset=10000"},
      {"cifar10_conv", "preset conv:dataset=cifar10,filters=3x3x16-5x5x16,act=relu,batch=64,objective_subset=10000"},
      {"quadratic", "random quadratic 0.5 ||Wx - y||^2, W, y ~ N(0,1) (L2O-Scale; dim=10)"},
      {"bowl", "2-D bowl 0.5 ||diag(sqrt(cond),1) R(angle) x||^2 (cond=1, angle=0 radians); minimum 0"},
      {"ackley", "2-D Ackley function; minimum 0 at 0"},
      {"beale", "2-D Beale function; minimum 0 at (3, 0.5)"},
      {"booth", "2-D Booth function; minimum 0 at (1, 3)"},
      {"branin", "2-D Branin function; minimum 5/(4 pi) at (pi, 2.275)"},
      {"log_sum_exp", "2-D log(e^(x+3y-0.1) + e^(x-3y-0.1) + e^(-x-0.1) + 1)"},
      {"matyas", "2-D Matyas function; minimum 0 at 0"},
      {"michalewicz", "2-D Michalewicz function (m=5) shifted by +2 as in L2O-Scale, >= 0"},
      {"styblinski_tang", "2-D Styblinski-Tang function shifted by +80 as in L2O-Scale; minimum ~1.6677"},
      {"saddle", "2-D saddle x^2 - y^2; unbounded below, not for log-ratio meta-training"},
      {"norm", "p-norm of a random residual (sum (|Wx-y| + 1e-6)^p)^(1/p) (dim=10, p=2)"},
      {"dependency_chain", "x0^2 + sum x_i^2/(x_(i-1)^2 + 1e-6), dim+1 parameters (dim=20); minimum 0"},
      {"min_max_well", "max x_i^2 + 1/min x_i^2 - 2 + 1e-12 (dim=20); minimum 1e-12 at |x_i| = 1"},
      {"matmul", "search for an n x n matrix-multiplication algorithm with k products (n=2, k=7)"},
      {"lasso", "0.5 ||Ax - b||^2 + lambda ||x||_1 (L2O-Entropy; dim=10, rows=20, lambda=0.1)"},
      {"rastrigin", "a dim + sum (x_i^2 - a cos 2 pi x_i) (L2O-Entropy; dim=10, a=10); minimum 0"},
      {"projection_quadratic", "sum_b sum_i (x_i d_bi)^2 on random_symmetric rows (dim=20, samples=1000, batch=100)"},
      {"sum_of_quadratics", "sum_b ||x - d_b||^2 - ||d_b||^2 on random_symmetric rows (dim=20, samples=1000, batch=100)"},
      {"outward_snake", "winding path to infinity on random_binary rows (dim=20, samples=1000, batch=100)"},
      {"sparse_softmax", "softmax regression on bags of ids, noisy_parity data (dim=5, classes=2, ids=5, "
                         "samples=1000, batch=0)"},
      {"rescale", "wrapper: parameters scaled, f(x) = f_inner(x/scale) (scale=10, of=<inline spec>)"},
      {"reparam", "wrapper: theta = s * theta', s log-uniform in [min, max] per tensor or coordinate, drawn per "
                  "instance (min=1e-3, max=1e3, per=tensor|coordinate, of=<inline spec>)"},
      {"log_objective", "wrapper: log(f_inner + 1e-6) - log(1e-6) (of=<inline spec>)"},
      {"sparse", "wrapper: gradient entries zeroed with probability prob (prob=0.99, of=<inline spec>)"},
      {"sum", "wrapper: sum of independent problems (of=<inline spec>+<inline spec>+...)"},
  };
  for (const auto& kv : family_catalogue()) out.push_back(kv);
  return out;
}

namespace {

ProblemPtr build(const Spec& spec, at::Generator& gen) {
  const std::string& n = spec.name();
  if (n == "dm_quadratic") return DmQuadratic::from_spec(spec, gen);
  if (n == "isotropic_quadratic") return IsotropicQuadratic::from_spec(spec, gen);
  if (n == "rosenbrock") return Rosenbrock::from_spec(spec, gen);
  if (n == "softmax" || n == "mlp" || n == "conv" || ClassifierProblem::is_preset(n))
    return ClassifierProblem::from_spec(spec, gen);
  if (n == "quadratic") return Quadratic::from_spec(spec, gen);
  if (n == "bowl") return Bowl::from_spec(spec, gen);
  TestFunction2D::Kind kind;
  if (TestFunction2D::parse_kind(n, &kind)) return TestFunction2D::from_spec(spec, gen);
  if (n == "norm") return Norm::from_spec(spec, gen);
  if (n == "dependency_chain") return DependencyChain::from_spec(spec, gen);
  if (n == "min_max_well") return MinMaxWell::from_spec(spec, gen);
  if (n == "matmul") return MatMulAlgorithm::from_spec(spec, gen);
  if (n == "lasso") return Lasso::from_spec(spec, gen);
  if (n == "rastrigin") return Rastrigin::from_spec(spec, gen);
  if (n == "projection_quadratic") return ProjectionQuadratic::from_spec(spec, gen);
  if (n == "sum_of_quadratics") return SumOfQuadratics::from_spec(spec, gen);
  if (n == "outward_snake") return OutwardSnake::from_spec(spec, gen);
  if (n == "sparse_softmax") return SparseSoftmaxRegression::from_spec(spec, gen);
  if (n == "rescale") return Rescale::from_spec(spec, gen);
  if (n == "reparam") return Reparam::from_spec(spec, gen);
  if (is_family(n)) return make_family_problem(spec, gen);
  if (n == "log_objective") return LogObjective::from_spec(spec, gen);
  if (n == "sparse") return SparseGradient::from_spec(spec, gen);
  if (n == "sum") return SumTask::from_spec(spec, gen);
  std::string known;
  for (const auto& kv : problem_catalogue()) known += (known.empty() ? "" : ", ") + kv.first;
  L2O_FAIL("unknown problem '", n, "' (known: ", known, "; see 'l2o problems')");
}

// Index of the ')' closing the '(' at `open`, or npos.
size_t closing_paren(const std::string& s, size_t open) {
  int depth = 0;
  for (size_t i = open; i < s.size(); ++i) {
    if (s[i] == '(') ++depth;
    if (s[i] == ')' && --depth == 0) return i;
  }
  return std::string::npos;
}

// Splits `s` at the top-level (outside parentheses) positions where `is_split(i)` holds.
template <typename Pred>
std::vector<std::string> split_top_level(const std::string& s, Pred is_split) {
  std::vector<std::string> out;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '(') ++depth;
    if (s[i] == ')') --depth;
    L2O_CHECK(depth >= 0, "unbalanced ')' in inline spec '", s, "'");
    if (depth == 0 && is_split(i)) {
      out.push_back(s.substr(start, i - start));
      start = i + 1;
    }
  }
  L2O_CHECK(depth == 0, "unbalanced '(' in inline spec '", s, "'");
  out.push_back(s.substr(start));
  return out;
}

std::string strip_parens(const std::string& s) {
  if (!s.empty() && s.front() == '(' && closing_paren(s, 0) == s.size() - 1) return s.substr(1, s.size() - 2);
  return s;
}

}  // namespace

std::string expand_inline_spec(const std::string& text) {
  const auto items = split_top_level(text, [&](size_t i) { return text[i] == '/'; });
  std::string out = strip_parens(items[0]);
  L2O_CHECK(!out.empty(), "empty problem name in inline spec '", text, "'");
  if (items.size() == 1) return out;
  for (size_t k = 1; k < items.size(); ++k) {
    const auto eq = items[k].find('=');
    L2O_CHECK(eq != std::string::npos && eq > 0, "malformed item '", items[k], "' in inline spec '", text,
              "' (expected name/key=value/key=value)");
    out += (k == 1 ? ":" : ",") + items[k].substr(0, eq + 1) + strip_parens(items[k].substr(eq + 1));
  }
  return out;
}

std::string to_inline_spec(const std::string& text) {
  const Spec spec = Spec::parse(text);
  std::string out = spec.name();
  for (const auto& kv : spec.values()) {
    const bool nested = kv.second.find_first_of("/+()") != std::string::npos;
    out += "/" + kv.first + "=" + (nested ? "(" + kv.second + ")" : kv.second);
  }
  return out;
}

std::vector<std::string> split_inline_list(const std::string& list) {
  auto parts = split_top_level(list, [&](size_t i) {
    return list[i] == '+' && i + 1 < list.size() && (std::isalpha(static_cast<unsigned char>(list[i + 1])) ||
                                                     list[i + 1] == '_' || list[i + 1] == '(');
  });
  for (auto& p : parts) {
    p = strip_parens(p);
    L2O_CHECK(!p.empty(), "empty part in problem list '", list, "'");
  }
  return parts;
}

ProblemPtr make_problem(const std::string& text, at::Generator& gen) {
  const Spec spec = Spec::parse(text);
  // SparseGradient reads its own noise: the reference adds it before zeroing entries.
  if (!spec.has("noise") || spec.name() == "sparse") return build(spec, gen);
  const double noise = spec.get_double("noise", 0.0);
  L2O_CHECK(noise >= 0 && std::isfinite(noise), "noise=", noise, " in '", text, "' must be a finite number >= 0");
  Spec rest(spec.name());
  for (const auto& kv : spec.values())
    if (kv.first != "noise") rest.set(kv.first, kv.second);
  auto problem = build(rest, gen);
  if (noise == 0) return problem;
  return std::make_shared<GradientNoise>(std::move(problem), noise);
}

ProblemSet ProblemSet::parse(const std::string& text) {
  std::vector<std::pair<std::string, double>> specs;
  size_t pos = 0;
  while (pos <= text.size()) {
    auto semi = text.find(';', pos);
    if (semi == std::string::npos) semi = text.size();
    std::string item = text.substr(pos, semi - pos);
    pos = semi + 1;
    if (item.find_first_not_of(" \t") == std::string::npos) continue;
    double weight = 1;
    const auto star = item.rfind('*');
    if (star != std::string::npos) {
      char* end = nullptr;
      const std::string w = item.substr(star + 1);
      weight = std::strtod(w.c_str(), &end);
      L2O_CHECK(end != w.c_str() && *end == '\0' && weight > 0,
                "bad weight '", w, "' in problem set '", text, "' (expected spec*positive_number)");
      item = item.substr(0, star);
    }
    const auto at = item.find_first_not_of(" \t");
    L2O_CHECK(at != std::string::npos, "missing spec before '*' in problem set '", text, "'");
    item = item.substr(at, item.find_last_not_of(" \t") - at + 1);
    if (item[0] == '@') {
      for (const auto& s : named_problem_set(item.substr(1))) specs.emplace_back(s.first, s.second * weight);
      continue;
    }
    specs.emplace_back(item, weight);
  }
  L2O_CHECK(!specs.empty(), "empty problem set '", text, "'");
  return ProblemSet(std::move(specs));
}

ProblemSet::ProblemSet(std::vector<std::pair<std::string, double>> weighted_specs) : specs_(std::move(weighted_specs)) {
  for (const auto& s : specs_) {
    auto gen = make_generator(0);
    make_problem(s.first, gen);  // validates the spec now rather than mid-training
    total_weight_ += s.second;
  }
}

ProblemPtr ProblemSet::sample(at::Generator& gen) const {
  size_t i = 0;
  if (specs_.size() > 1) {
    double u = torch::empty({1}, torch::kDouble).uniform_(0, total_weight_, gen).item<double>();
    while (i + 1 < specs_.size() && u >= specs_[i].second) u -= specs_[i++].second;
  }
  return make_problem(specs_[i].first, gen);
}

std::string ProblemSet::str() const {
  std::string out;
  for (const auto& s : specs_) {
    out += (out.empty() ? "" : ";") + s.first;
    if (specs_.size() > 1 || s.second != 1) out += "*" + format_double(s.second);
  }
  return out;
}

}  // namespace problems
}  // namespace l2o
