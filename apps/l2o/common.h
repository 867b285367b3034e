#pragma once
// Shared pieces of the l2o subcommands.
#include <l2o/eval/evaluate.h>

#include <CLI/CLI.hpp>

#include <map>
#include <string>
#include <vector>

namespace l2o {
namespace app {

/// Registers each subcommand on the top-level app.
void add_train(CLI::App& app);
void add_eval(CLI::App& app);
void add_compare(CLI::App& app);
void add_problems(CLI::App& app);
void add_hessian(CLI::App& app);
void add_suite(CLI::App& app);
void add_export(CLI::App& app);

/// Loads `--checkpoint` items, each PATH or LABEL=PATH (default label "<rule name> (learned)").
/// A --checkpoint value PATH[:OPTIONS]: the rule saved at PATH, OPTIONS ("key=value,...") replacing
/// some of its saved options (io::load_rule).
optim::RulePtr load_checkpoint_arg(const std::string& text);

/// --checkpoint values [LABEL=]PATH[:OPTIONS]; without a label a rule is named "<name> (learned)".
std::vector<eval::LabelledRule> load_labelled_checkpoints(const std::vector<std::string>& items);

/// Adds --problem, --num_steps, --seeds and --seed of a meta-test.
void add_eval_options(CLI::App* cmd, eval::EvalOptions* options);
/// Adds the reference's problem-set switches (--include_mnist_mlp_problems, ...), each setting
/// *problem to the matching named problem.
void add_problem_set_flags(CLI::App* cmd, std::string* problem);
/// Adds --threads to a subcommand and applies it before the subcommand runs.
void add_threads_option(CLI::App* cmd, int* threads);
void apply_threads(int threads);
/// Parses "1e-3,1e-2,0.1" (throws l2o::Error naming the bad item).
std::vector<double> parse_doubles(const std::string& text, const std::string& what, char separator = ',');
/// The command line with every `--config FILE` replaced by the file's entries as `--key=value` flags,
/// and where each of those flags came from ("file:line: key 'k'").
struct ExpandedArgs {
  std::vector<std::string> args;
  std::map<std::string, std::string> origin;
};
/// Replaces `--config FILE` by the file's entries (io::read_config, TOML through toml++) as flags
/// placed right after the subcommand, so flags given on the command line (which come later) win.
/// Throws l2o::Error "file:line: ..." for a missing or malformed file or a key that is not a flag of
/// the subcommand.
ExpandedArgs expand_config(const CLI::App& app, int argc, char** argv);
/// Prefixes a command-line error about a flag that came from a config file with that file, line and key.
std::string with_config_origin(const ExpandedArgs& args, const std::string& message);
/// Registers --config on a subcommand (for --help; main() expands it before parsing).
void add_config_option(CLI::App* cmd);
/// Splits "a,b,c".
std::vector<std::string> split(const std::string& text, char sep);

}  // namespace app
}  // namespace l2o
