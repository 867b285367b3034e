#pragma once
/// Problem families (SPEC §8): a spec whose keys are choices and ranges instead of values. Each draw
/// (one per meta-iteration and task, from that task's generator) picks the architecture and data of
/// one concrete problem, so that an optimizer meta-trained on a family meets a distribution of tasks
/// rather than a single one. A drawn problem reports its concrete spec as its name, so every
/// training-log line and validation problem can be rebuilt from its text alone.
///
/// Value syntax of a family key:
///   choices  `a+b+c`      one picked uniformly (`act=relu+tanh`, `batch=32+64+128`);
///   range    `lo..hi`     an integer drawn log-uniformly in [lo, hi] (`width=16..128`);
///   a single value        used as is.
#include <l2o/core/spec.h>
#include <l2o/problems/problem.h>

#include <string>
#include <utility>
#include <vector>

namespace l2o {
namespace problems {

/// Draws the concrete spec of one member of the family `family` with `gen`, e.g.
/// `mlp_family:dataset=mnist+fashion_mnist,depth=1..2,width=16..128` →
/// `mlp:act=relu,batch=64,dataset=fashion_mnist,hidden=37-90,init=torch,objective_subset=1000`
/// (wrapped in `reparam` when the family asks for it). Throws l2o::Error for an unknown key, an empty
/// choice list or range (lo > hi), or a value outside what the member problem accepts.
std::string draw_family_spec(const Spec& family, at::Generator& gen);

/// Draws the member spec and builds it (the registry calls this for family names).
ProblemPtr make_family_problem(const Spec& family, at::Generator& gen);

/// True for the names of problem families (mlp_family, conv_family).
bool is_family(const std::string& name);

/// (name, one-line description with the keys and defaults) of every family.
std::vector<std::pair<std::string, std::string>> family_catalogue();

}  // namespace problems
}  // namespace l2o
