#pragma once
/// The registry of problem spec strings and weighted problem sets.
#include <l2o/problems/problem.h>

#include <string>
#include <utility>
#include <vector>

namespace l2o {
namespace problems {

/// Draws one instance of the problem `spec` (e.g. `dm_quadratic:batch=128,dim=10`) using `gen`.
/// Every spec may carry `noise=σ`: the problem is then wrapped in GradientNoise (SPEC §2).
/// Throws l2o::Error for an unknown name (listing the known ones) or a bad option.
ProblemPtr make_problem(const std::string& spec, at::Generator& gen);

/// Inline specs: how a wrapper's `of=` value names the problem it wraps. A spec string cannot nest
/// `name:key=value,...` (the `,` belongs to the outer spec and `;`, `*` to problem sets), so the inline
/// form writes `/` for both `:` and `,`: `quadratic/dim=20` stands for `quadratic:dim=20`. A value
/// that is itself an inline spec is put in parentheses, so wrappers nest:
/// `log_objective:of=rescale/scale=2/of=(quadratic/dim=3)`. A list (the parts of `sum`) joins
/// inline specs with `+`: `sum:of=quadratic/dim=3+bowl/cond=5+(rescale/scale=2/of=(booth))`.
/// Converts an inline spec to the ordinary text form; throws on unbalanced parentheses.
std::string expand_inline_spec(const std::string& inline_spec);
/// Converts an ordinary spec text to its inline form (the inverse of expand_inline_spec).
std::string to_inline_spec(const std::string& spec);
/// Splits a `+`-joined list of inline specs (a `+` splits only outside parentheses and before a name,
/// so numbers such as 1e+06 are safe); the parts are returned without enclosing parentheses.
std::vector<std::string> split_inline_list(const std::string& list);

/// (name, one-line description) of every registered problem.
std::vector<std::pair<std::string, std::string>> problem_catalogue();

/// A weighted list of problem specs; meta-training samples one problem per meta-iteration.
class ProblemSet {
 public:
  /// Parses `spec[*weight];spec[*weight];...`, e.g. `dm_quadratic` or `rosenbrock*1;isotropic_quadratic*3`.
  /// An item `@name[*w]` expands to the named problem set `name` (problem_sets.h), every weight
  /// multiplied by w. Every spec is checked by drawing one instance.
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
