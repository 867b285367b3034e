#pragma once
/// Versioned checkpoints of a learned optimizer (STYLE "Checkpoints"): one LibTorch archive with the
/// format version, the spec of the rule (its options), φ, and optionally the meta-optimizer state and
/// the trainer's JSON record (options, counters, seed). Written atomically.
#include <l2o/optim/update_rule.h>

#include <string>
#include <utility>

namespace torch {
namespace optim {
class Optimizer;
}
}  // namespace torch

namespace l2o {
namespace io {

/// What a checkpoint holds besides φ.
struct CheckpointInfo {
  int64_t format = 0;
  /// Spec string of the rule: rebuilding it needs nothing else.
  std::string rule_spec;
  /// Trainer record as JSON text ("{}" when saved outside a trainer).
  std::string trainer_json = "{}";
};

/// Saves rule (must be learned), optionally the meta-optimizer, and the trainer record at `path`.
void save_checkpoint(const std::string& path, optim::UpdateRule& rule, const torch::optim::Optimizer* meta_optimizer,
                     const std::string& trainer_json = "{}");

/// Reads only the header (format, rule spec, trainer record); throws l2o::Error for a missing,
/// corrupt or wrong-version file.
CheckpointInfo read_checkpoint_info(const std::string& path);

/// Rebuilds the rule saved at `path` and loads φ. `overrides` ("key=value,...", e.g. "max_log_lr=-3")
/// replaces some of the saved options first, to run a trained φ under other settings; each key must be
/// an option of the saved optimizer, and φ's tensors must keep their names and shapes.
optim::RulePtr load_rule(const std::string& path, const std::string& overrides = "");

/// Splits "PATH[:OPTIONS]" (OPTIONS "key=value,...", after the last ':') into the path and the
/// options, "" when there are none: the form of --checkpoint values.
std::pair<std::string, std::string> split_checkpoint_options(const std::string& text);

/// Loads φ into an existing rule, whose spec must equal the saved one, and the meta-optimizer state
/// if `meta_optimizer` is given.
void load_into(const std::string& path, optim::UpdateRule& rule, torch::optim::Optimizer* meta_optimizer);

/// Loads φ alone into `rule`, the same optimizer as the saved one but possibly under other options
/// (fine-tuning with, say, another max_log_lr): φ's tensors must have the same names and shapes.
void load_phi_into(const std::string& path, optim::UpdateRule& rule);

}  // namespace io
}  // namespace l2o
