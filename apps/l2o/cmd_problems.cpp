// `l2o problems`: the registries of problems and optimizers with one-line descriptions.
#include "common.h"

#include <l2o/learned/registry.h>
#include <l2o/problems/problem_sets.h>
#include <l2o/problems/registry.h>

#include <cstdio>

namespace l2o {
namespace app {

void add_problems(CLI::App& app) {
  auto* cmd = app.add_subcommand("problems", "list the registered problems and optimizers (spec names)");
  cmd->callback([] {
    std::printf("Problems (use as --problem name[:key=value,...]; join with ';' and weight with *w):\n");
    for (const auto& kv : problems::problem_catalogue()) std::printf("  %-22s %s\n", kv.first.c_str(), kv.second.c_str());
    std::printf("  Any problem takes noise=sigma (Gaussian gradient noise). Wrappers name the wrapped problem\n"
                "  inline, '/' for ':' and ',', nested in parentheses: rescale:scale=10,of=norm/dim=18/p=2.5\n");
    std::printf("\nProblem sets (use as --problem @name, mixable: '@bowl;@norm*2'):\n");
    for (const auto& kv : problems::problem_set_catalogue())
      std::printf("  @%-30s %s\n", kv.first.c_str(), kv.second.c_str());
    std::printf("\nOptimizers (use as --optimizer / --baselines name[:key=value,...]):\n");
    for (const auto& kv : learned::rule_catalogue()) std::printf("  %-22s %s\n", kv.first.c_str(), kv.second.c_str());
  });
}

}  // namespace app
}  // namespace l2o
