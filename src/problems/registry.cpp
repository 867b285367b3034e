#include <l2o/core/error.h>
#include <l2o/core/rng.h>
#include <l2o/core/spec.h>
#include <l2o/problems/nn.h>
#include <l2o/problems/quadratic.h>
#include <l2o/problems/registry.h>

#include <torch/torch.h>

namespace l2o {
namespace problems {

std::vector<std::pair<std::string, std::string>> problem_catalogue() {
  return {
      {"dm_quadratic", "batch of random quadratics mean_b ||W_b x_b - y_b||^2 (DM 2016; batch=128, dim=10, stddev=0)"},
      {"isotropic_quadratic", "0.5 ||x - c||^2 with random centre c (dim=10); minimum 0"},
      {"rosenbrock", "2-D Rosenbrock (1-x)^2 + 100 (y-x^2)^2; minimum 0 at (1,1)"},
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
  };
}

ProblemPtr make_problem(const std::string& text, at::Generator& gen) {
  const Spec spec = Spec::parse(text);
  const std::string& n = spec.name();
  if (n == "dm_quadratic") return DmQuadratic::from_spec(spec, gen);
  if (n == "isotropic_quadratic") return IsotropicQuadratic::from_spec(spec, gen);
  if (n == "rosenbrock") return Rosenbrock::from_spec(spec, gen);
  if (n == "softmax" || n == "mlp" || n == "conv" || ClassifierProblem::is_preset(n))
    return ClassifierProblem::from_spec(spec, gen);
  std::string known;
  for (const auto& kv : problem_catalogue()) known += (known.empty() ? "" : ", ") + kv.first;
  L2O_FAIL("unknown problem '", n, "' (known: ", known, "; see 'l2o problems')");
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
