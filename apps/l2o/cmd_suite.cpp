// `l2o suite`: the held-out suite (SPEC §8) — learned optimizers and tuned baselines on a named,
// versioned list of problems no optimizer was trained on; one report over all of them.
#include "common.h"

#include <l2o/core/error.h>
#include <l2o/core/progress.h>
#include <l2o/eval/suite.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <set>

namespace l2o {
namespace app {

namespace {
struct SuiteArgs {
  std::string suite, suite_dir, output_dir, problems, rates_from;
  std::vector<std::string> checkpoints;
  bool list = false;
  int threads = 0;
};

void print_suites(const std::string& dir) {
  const auto names = eval::list_suites(dir);
  if (names.empty()) {
    std::printf("no suites in %s\n", dir.c_str());
    return;
  }
  std::printf("Suites in %s (run with l2o suite NAME --checkpoint LABEL=PATH):\n", dir.c_str());
  for (const auto& n : names) {
    try {
      const eval::Suite s = eval::load_suite(n, dir);
      std::printf("  %-20s v%lld  %zu problems  %s\n", n.c_str(), static_cast<long long>(s.version),
                  s.problems.size(), s.description.c_str());
    } catch (const Error& e) {
      std::printf("  %-20s (cannot be read: %s)\n", n.c_str(), e.what());
    }
  }
}
}  // namespace

void add_suite(CLI::App& app) {
  auto a = std::make_shared<SuiteArgs>();
  auto* cmd = app.add_subcommand("suite", "run the held-out suite: learned optimizers against tuned baselines on "
                                          "problems disjoint from training, one report");
  add_config_option(cmd);
  cmd->add_option("suite,--suite", a->suite, "suite name (configs/suites/NAME.toml) or path to a suite .toml file");
  cmd->add_flag("--list", a->list, "list the known suites and exit");
  cmd->add_option("--checkpoint", a->checkpoints, "learned optimizer checkpoint(s): [LABEL=]PATH[:OPTION=VALUE,...] (options override the saved ones, e.g. max_log_lr=-3)")
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  cmd->add_option("--suite_dir", a->suite_dir, "folder of the named suites (default $L2O_SUITE_DIR, else share/l2o/suites of an installed l2o, else the source tree's configs/suites)");
  cmd->add_option("--problems", a->problems, "comma-separated problem names: run only these (a partial run)");
  cmd->add_option("--rates_from", a->rates_from,
                  "suite.json of an earlier full run of this suite: its tuned baselines run at the rates it chose "
                  "(same numbers, a third to a half of the baseline runs), e.g. to score a new checkpoint");
  cmd->add_option("-o,--output_dir", a->output_dir, "report folder (default runs/suite/NAME)");
  add_threads_option(cmd, &a->threads);
  cmd->callback([a] {
    apply_threads(a->threads);
    const std::string dir = a->suite_dir.empty() ? eval::default_suite_dir() : a->suite_dir;
    if (a->list) {
      print_suites(dir);
      return;
    }
    L2O_CHECK(!a->suite.empty(), "give a suite name (l2o suite --list shows them)");
    eval::Suite suite = eval::load_suite(a->suite, dir);
    if (!a->problems.empty()) {
      const auto wanted = split(a->problems, ',');
      std::set<std::string> known;
      for (const auto& p : suite.problems) known.insert(p.name);
      for (const auto& w : wanted) {
        std::string list;
        for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
        L2O_CHECK(known.count(w) > 0, "--problems: suite '", suite.name, "' has no problem '", w, "' (it has: ", list,
                  ")");
      }
      std::vector<eval::SuiteProblem> kept;
      for (const auto& p : suite.problems)
        if (std::find(wanted.begin(), wanted.end(), p.name) != wanted.end()) kept.push_back(p);
      suite.problems = kept;
      // A partial run must not pass for the suite's result.
      suite.description = "Partial run (--problems " + a->problems + "). " + suite.description;
    }
    eval::SuiteRates rates;
    if (!a->rates_from.empty()) {
      const std::string path = std::filesystem::is_directory(a->rates_from) ? a->rates_from + "/suite.json" : a->rates_from;
      L2O_CHECK(std::filesystem::is_regular_file(path), "--rates_from: no file '", path, "'");
      rates = eval::read_suite_rates(path, suite);
      suite.description = "Baseline rates from " + path + ". " + suite.description;
    }
    const eval::SuiteRates* given = a->rates_from.empty() ? nullptr : &rates;
    const auto learned = load_labelled_checkpoints(a->checkpoints);
    const std::string out = a->output_dir.empty() ? "runs/suite/" + suite.name : a->output_dir;
    Progress progress("suite " + suite.name, eval::suite_steps(suite, learned.size(), given));
    const eval::SuiteResult result = eval::run_suite(
        suite, learned, out, [&](int64_t done, int64_t, const std::string& status) { progress.update(done, status); },
        given);
    progress.finish();
    std::printf("%s", eval::suite_table(suite, result).c_str());
    std::printf("written: %s/{table.md,suite.json,suite.csv,ratios.png,ratios.svg} and one folder per problem\n",
                out.c_str());
  });
}

}  // namespace app
}  // namespace l2o
