// `l2o export`: writes a trained φ as a new checkpoint under other options that keep its tensors
// (PATH:max_log_lr=-5), so that the options travel with it (l2o eval, the drop-in adapter, Python).
// The trainer record of the source is kept, with where it came from and what was changed.
#include "common.h"

#include <l2o/core/error.h>
#include <l2o/io/checkpoint.h>

#include <nlohmann/json.hpp>

#include <cstdio>
#include <memory>

namespace l2o {
namespace app {

namespace {
struct ExportArgs {
  std::string source, output;
};
}  // namespace

void add_export(CLI::App& app) {
  auto a = std::make_shared<ExportArgs>();
  auto* cmd = app.add_subcommand("export", "write a checkpoint's φ as a new checkpoint with some options replaced");
  cmd->add_option("checkpoint", a->source, "PATH[:OPTION=VALUE,...], e.g. checkpoints/hrnn_generalist.pt:max_log_lr=-5")
      ->required();
  cmd->add_option("-o,--output", a->output, "the new checkpoint file")->required();
  cmd->callback([a] {
    const auto [path, overrides] = io::split_checkpoint_options(a->source);
    const io::CheckpointInfo info = io::read_checkpoint_info(path);
    const optim::RulePtr rule = io::load_rule(path, overrides);
    nlohmann::json record = nlohmann::json::parse(info.trainer_json, nullptr, /*allow_exceptions=*/false);
    if (!record.is_object()) record = nlohmann::json::object();
    record["exported_from"] = {{"checkpoint", path}, {"rule", info.rule_spec}, {"overrides", overrides}};
    io::save_checkpoint(a->output, *rule, nullptr, record.dump());
    std::printf("wrote %s: %s\n", a->output.c_str(), rule->spec().str().c_str());
  });
}

}  // namespace app
}  // namespace l2o
