// l2o: meta-train, evaluate and compare learned optimizers. One file per subcommand; the logic lives
// in the library. Exit codes: 0 success, 1 runtime error, 2 bad command line or config, 3 a failed or
// timed-out collective of distributed meta-training (a peer died, hung or never joined).
#include "common.h"

#include <l2o/core/runtime.h>
#include <l2o/core/error.h>
#include <l2o/core/version.h>
#include <l2o/meta/distributed.h>

#include <c10/util/Exception.h>

#include <algorithm>
#include <cstdio>
#include <exception>

namespace {
std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }
}  // namespace

int main(int argc, char** argv) {
  l2o::tune_runtime();
  CLI::App app{"l2o — learned optimizers on LibTorch (learning to learn, L2O-Scale, L2O-Entropy)", "l2o"};
  app.set_version_flag("--version", std::string(l2o::kVersion));
  app.require_subcommand(1);
  // A flag given twice (once from --config, once on the command line) keeps the last value.
  app.option_defaults()->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  l2o::app::add_train(app);
  l2o::app::add_eval(app);
  l2o::app::add_compare(app);
  l2o::app::add_problems(app);
  l2o::app::add_hessian(app);
  l2o::app::add_suite(app);
  l2o::app::add_export(app);
  l2o::app::ExpandedArgs expanded;
  try {
    expanded = l2o::app::expand_config(app, argc, argv);
  } catch (const l2o::Error& e) {  // a missing or malformed config file is a bad command line
    std::fprintf(stderr, "l2o: %s\n", first_line(e.what()).c_str());
    return 2;
  }
  try {
    std::vector<std::string> args = expanded.args;
    args.erase(args.begin());  // CLI11 takes the arguments without the program name, in reverse order
    std::reverse(args.begin(), args.end());
    app.parse(std::move(args));
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    std::fprintf(stderr, "l2o: %s\n", l2o::app::with_config_origin(expanded, first_line(e.what())).c_str());
    return 2;
  } catch (const l2o::meta::CollectiveError& e) {
    std::fprintf(stderr, "l2o: %s\n", first_line(e.what()).c_str());
    return 3;
  } catch (const l2o::Error& e) {
    std::fprintf(stderr, "l2o: %s\n", first_line(e.what()).c_str());
    return 1;
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "l2o: %s\n", first_line(e.what_without_backtrace()).c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "l2o: %s\n", first_line(e.what()).c_str());
    return 1;
  }
  return 0;
}
