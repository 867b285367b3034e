#pragma once
/// Versioned checkpoints of a learned optimizer (STYLE "Checkpoints"): one LibTorch archive with the
/// format version, the spec of the rule (its options), φ, and optionally the meta-optimizer state and
/// the trainer's JSON record (options, counters, seed). Written atomically.
#include <l2o/optim/update_rule.h>

#include <string>

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

/// Rebuilds the rule saved at `path` and loads φ.
optim::RulePtr load_rule(const std::string& path);

/// Loads φ into an existing rule, whose spec must equal the saved one, and the meta-optimizer state
/// if `meta_optimizer` is given.
void load_into(const std::string& path, optim::UpdateRule& rule, torch::optim::Optimizer* meta_optimizer);

}  // namespace io
}  // namespace l2o
