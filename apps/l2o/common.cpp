#include "common.h"

#include <l2o/core/error.h>
#include <l2o/core/runtime.h>

#include <torch/torch.h>

#include <l2o/io/checkpoint.h>
#include <l2o/io/config.h>

#include <algorithm>
#include <cctype>

namespace l2o {
namespace app {

void add_problem_set_flags(CLI::App* cmd, std::string* problem) {
  // metarun.py / metatest.py select their problems with these switches.
  const std::pair<const char*, const char*> sets[] = {
      {"--include_mnist_mlp_problems", "mnist_mlp"},
      {"--include_mnist_mlp_relu_problems", "mnist_mlp_relu"},
      {"--include_mnist_mlp_deeper_problems", "mnist_mlp_deeper"},
      {"--include_mnist_conv_problems,--include_mnist_conv_problem", "mnist_conv"},
      {"--include_cifar10_conv_problems", "cifar10_conv"},
  };
  for (const auto& [flag, name] : sets) {
    const std::string value = name;
    cmd->add_flag_callback(flag, [problem, value] { *problem = value; }, "same as --problem " + value);
  }
}

void add_eval_options(CLI::App* cmd, eval::EvalOptions* o) {
  cmd->add_option("--problem", o->problem, "test problem spec")->capture_default_str();
  add_problem_set_flags(cmd, &o->problem);
  cmd->add_option("--num_steps,--num_testing_itrs", o->num_steps, "inner steps")->capture_default_str();
  cmd->add_option("--seeds", o->seeds, "independent test problems")->capture_default_str();
  cmd->add_option("--seed", o->seed, "base seed of the test stream")->capture_default_str();
  cmd->add_option("--record_every", o->record_every,
                  "record full train/test loss and accuracy, norms and s/step every N steps (0 = off)")
      ->capture_default_str();
}

void add_threads_option(CLI::App* cmd, int* threads) {
  cmd->add_option("--threads", *threads, "intra-op threads of LibTorch (0 = LibTorch's default)")
      ->check(CLI::NonNegativeNumber);
}

void apply_threads(int threads) { set_threads(threads); }

void add_config_option(CLI::App* cmd) {
  static std::string unused;
  cmd->add_option("--config", unused, "TOML file whose keys are these flags' names; flags given on the command line win");
}

ExpandedArgs expand_config(const CLI::App& app, int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  ExpandedArgs result;
  std::vector<std::string> from_file;
  // The subcommand whose flags the keys must name (argv[1]; without one CLI11 reports the error).
  const CLI::App* sub = nullptr;
  if (args.size() > 1)
    for (const CLI::App* s : app.get_subcommands([](const CLI::App*) { return true; }))
      if (s->get_name() == args[1]) sub = s;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string path;
    if (args[i] == "--config") {
      L2O_CHECK(i + 1 < args.size(), "--config needs a file name");
      path = args[++i];
    } else if (args[i].rfind("--config=", 0) == 0) {
      path = args[i].substr(9);
    } else {
      result.args.push_back(args[i]);
      continue;
    }
    for (const io::ConfigEntry& e : io::read_config(path)) {
      const std::string at = path + ":" + std::to_string(e.line);
      L2O_CHECK(sub == nullptr || sub->get_option_no_throw("--" + e.key) != nullptr, at, ": unknown key '", e.key,
                "' (not a flag of 'l2o ", sub ? sub->get_name() : "", "'; see --help)");
      from_file.push_back("--" + e.key + "=" + e.value);
      result.origin["--" + e.key] = at + ": key '" + e.key + "'";
    }
  }
  // Config values go right after the subcommand so that the command line, parsed later, wins.
  const size_t at = std::min<size_t>(result.args.size(), 2);
  result.args.insert(result.args.begin() + static_cast<std::ptrdiff_t>(at), from_file.begin(), from_file.end());
  return result;
}

std::string with_config_origin(const ExpandedArgs& args, const std::string& message) {
  for (const auto& [flag, origin] : args.origin) {
    for (size_t pos = message.find(flag); pos != std::string::npos; pos = message.find(flag, pos + 1)) {
      const size_t end = pos + flag.size();
      const bool whole = end == message.size() || !(std::isalnum(static_cast<unsigned char>(message[end])) || message[end] == '_');
      if (whole) return origin + ": " + message;
    }
  }
  return message;
}

optim::RulePtr load_checkpoint_arg(const std::string& text) {
  const auto [path, overrides] = io::split_checkpoint_options(text);
  return io::load_rule(path, overrides);
}

std::vector<eval::LabelledRule> load_labelled_checkpoints(const std::vector<std::string>& items) {
  std::vector<eval::LabelledRule> out;
  for (const auto& item : items) {
    // LABEL=PATH[:OPTIONS] or PATH[:OPTIONS]: a label's '=' comes before any ':'.
    const auto eq = item.find('=');
    const bool labelled = eq != std::string::npos && eq < item.find(':');
    optim::RulePtr rule = load_checkpoint_arg(labelled ? item.substr(eq + 1) : item);
    out.emplace_back(labelled ? item.substr(0, eq) : rule->name() + " (learned)", rule);
  }
  return out;
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos <= text.size()) {
    auto next = text.find(sep, pos);
    if (next == std::string::npos) next = text.size();
    const std::string item = text.substr(pos, next - pos);
    if (!item.empty()) out.push_back(item);
    pos = next + 1;
  }
  return out;
}

std::vector<double> parse_doubles(const std::string& text, const std::string& what, char separator) {
  std::vector<double> out;
  for (const auto& item : split(text, separator)) {
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    L2O_CHECK(end != item.c_str() && *end == '\0' && v > 0, what, ": '", item, "' is not a positive number");
    out.push_back(v);
  }
  L2O_CHECK(!out.empty(), what, " is empty");
  return out;
}

}  // namespace app
}  // namespace l2o
