#pragma once
/// The registry of problem spec strings and weighted problem sets.
#include <l2o/problems/problem.h>

#include <string>
#include <utility>
#include <vector>

namespace l2o {
namespace problems {

/// Draws one instance of the problem `spec` (e.g. `dm_quadratic:batch=128,dim=10`) using `gen`.
/// Throws l2o::Error for an unknown name (listing the known ones) or a bad option.
ProblemPtr make_problem(const std::string& spec, at::Generator& gen);

/// (name, one-line description) of every registered problem.
std::vector<std::pair<std::string, std::string>> problem_catalogue();

/// A weighted list of problem specs; meta-training samples one problem per meta-iteration.
class ProblemSet {
 public:
  /// Parses `spec[*weight];spec[*weight];...`, e.g. `dm_quadratic` or `rosenbrock*1;isotropic_quadratic*3`.
  /// Every spec is checked by drawing one instance.
  static ProblemSet parse(const std::string& text);
  explicit ProblemSet(std::vector<std::pair<std::string, double>> weighted_specs);

  /// Draws a spec by weight, then an instance of it.
  ProblemPtr sample(at::Generator& gen) const;
  const std::vector<std::pair<std::string, double>>& specs() const { return specs_; }
  /// The text form accepted by parse().
  std::string str() const;

 private:
  std::vector<std::pair<std::string, double>> specs_;
  double total_weight_ = 0;
};

}  // namespace problems
}  // namespace l2o
