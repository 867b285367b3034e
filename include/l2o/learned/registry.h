#pragma once
/// The registry of every update rule, hand-designed and learned, by spec string.
#include <l2o/optim/update_rule.h>

#include <string>
#include <utility>
#include <vector>

namespace l2o {
namespace learned {

/// Builds a rule from `name[:key=value,...]`, e.g. `adam:lr=0.01` or `lstm:preprocess=logsign`.
/// Throws l2o::Error for an unknown name (listing the known ones) or a bad option.
optim::RulePtr make_rule(const std::string& spec);

/// (name, one-line description) of every registered rule.
std::vector<std::pair<std::string, std::string>> rule_catalogue();

}  // namespace learned
}  // namespace l2o
