#include "common.h"

#include <l2o/core/error.h>
#include <l2o/core/runtime.h>

#include <torch/torch.h>

#include <algorithm>
#include <fstream>

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

void apply_threads(int threads) {
  if (threads > 0) set_threads(threads);
}

namespace {
std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r") - b + 1);
}

// One `key = value` line of the TOML subset; returns the value as flag text.
std::string parse_value(const std::string& raw, const std::string& where) {
  if (raw.size() >= 2 && (raw[0] == '"' || raw[0] == '\'')) {
    const char q = raw[0];
    std::string out;
    size_t i = 1;
    for (; i < raw.size() && raw[i] != q; ++i) {
      if (q == '"' && raw[i] == '\\' && i + 1 < raw.size()) ++i;
      out += raw[i];
    }
    L2O_CHECK(i == raw.size() - 1, where, ": unterminated or trailing text after string ", raw);
    return out;
  }
  L2O_CHECK(!raw.empty() && raw.find_first_of(" \t[]{},\"'=") == std::string::npos, where, ": malformed value '", raw,
            "' (use a quoted string, a number or true/false)");
  return raw;
}
}  // namespace

void add_config_option(CLI::App* cmd) {
  static std::string unused;
  cmd->add_option("--config", unused, "TOML file whose keys are these flags' names; flags given on the command line win");
}

std::vector<std::string> expand_config(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc), out, from_file;
  for (size_t i = 0; i < args.size(); ++i) {
    std::string path;
    if (args[i] == "--config") {
      L2O_CHECK(i + 1 < args.size(), "--config needs a file name");
      path = args[++i];
    } else if (args[i].rfind("--config=", 0) == 0) {
      path = args[i].substr(9);
    } else {
      out.push_back(args[i]);
      continue;
    }
    std::ifstream in(path);
    L2O_CHECK(in.good(), "cannot read config file '", path, "'");
    std::string line;
    int number = 0;
    while (std::getline(in, line)) {
      ++number;
      const std::string where = path + ":" + std::to_string(number);
      // Drop a comment that is not inside a quoted string.
      char quote = 0;
      for (size_t k = 0; k < line.size(); ++k) {
        if (quote) {
          if (line[k] == quote) quote = 0;
        } else if (line[k] == '"' || line[k] == '\'') {
          quote = line[k];
        } else if (line[k] == '#') {
          line = line.substr(0, k);
          break;
        }
      }
      line = trim(line);
      if (line.empty()) continue;
      L2O_CHECK(line[0] != '[', where, ": sections are not supported; put the keys at the top level");
      const auto eq = line.find('=');
      L2O_CHECK(eq != std::string::npos, where, ": expected key = value, got '", line, "'");
      const std::string key = trim(line.substr(0, eq));
      L2O_CHECK(!key.empty() && key.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") == std::string::npos,
                where, ": bad key '", key, "'");
      L2O_CHECK(key != "config", where, ": a config file cannot include another");
      from_file.push_back("--" + key + "=" + parse_value(trim(line.substr(eq + 1)), where));
    }
  }
  // Config values go right after the subcommand so that the command line, parsed later, wins.
  const size_t at = std::min<size_t>(out.size(), 2);
  out.insert(out.begin() + static_cast<std::ptrdiff_t>(at), from_file.begin(), from_file.end());
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
