#pragma once
/// Named problem sets: the training sets of L2O-Scale (`problem_sets.py` of the TF reference, SPEC §2)
/// and the single-problem sets of L2O-Entropy, as weighted lists of spec strings. `ProblemSet::parse`
/// expands an item `@name` to the set `name`.
#include <string>
#include <utility>
#include <vector>

namespace l2o {
namespace problems {

/// The weighted specs of the problem set `name` (the L2O-Scale sets weigh every spec 1, as the
/// reference samples its problems uniformly; the task distributions of SPEC §8 carry their weights). `default` is the union that the reference `metarun.py` trains on with its default
/// flags (101 specs). Throws l2o::Error for an unknown name, listing the known ones.
std::vector<std::pair<std::string, double>> named_problem_set(const std::string& name);

/// (name, one-line description with the number of specs) of every named problem set.
std::vector<std::pair<std::string, std::string>> problem_set_catalogue();

}  // namespace problems
}  // namespace l2o
