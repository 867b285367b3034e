#pragma once
/// The functional, differentiable update-rule interface shared by every optimizer in l2o (SPEC §1).
///
/// A rule maps (θ, g, state) to (θ', state', θ' − θ) without touching its inputs and without a grad
/// guard: the caller decides whether a graph is built (meta-training) or not (evaluation under
/// torch::NoGradGuard).
#include <l2o/core/spec.h>
#include <l2o/core/tensor_list.h>

#include <ATen/core/Generator.h>

#include <map>
#include <memory>
#include <string>

namespace torch {
namespace nn {
class Module;
}
namespace serialize {
class InputArchive;
class OutputArchive;
}  // namespace serialize
}  // namespace torch

namespace l2o {
namespace optim {

/// Optimizer state: a step counter and named slots, each holding one tensor per parameter tensor
/// (keyed by parameter index) or, for global state, a list of its own length.
struct State {
  int64_t step = 0;
  std::map<std::string, TensorList> slots;

  TensorList& operator[](const std::string& name) { return slots[name]; }
  const TensorList& at(const std::string& name) const;
};

/// State with every tensor detached (truncated BPTT cuts here).
State detach(const State& state);
/// Writes / reads a state to / from a LibTorch archive (used by checkpoints and the adapter).
void save_state(torch::serialize::OutputArchive& archive, const State& state);
State load_state(torch::serialize::InputArchive& archive);

/// What one update returns; `steps` = new_params − params (needed by imitation learning).
struct UpdateResult {
  TensorList params;
  State state;
  TensorList steps;
};

/// An update rule θ_{t+1} = U(θ_t, g_t, state_t). Hand-designed rules have no meta-parameters;
/// learned rules also derive from torch::nn::Module and expose it through module().
class UpdateRule {
 public:
  virtual ~UpdateRule() = default;
  /// Stable type name, the `name` of the spec string (e.g. "adam", "lstm").
  virtual std::string name() const = 0;
  /// The options that built this rule; make_rule(spec().str()) builds an equal rule.
  virtual Spec spec() const = 0;
  /// Fresh state for the given parameters.
  virtual State init(const TensorList& params) const = 0;
  /// Fresh state whose random parts (e.g. HierarchicalRNN's initial per-coordinate learning rates)
  /// are drawn from `gen`; rules without random state ignore it.
  virtual State init(const TensorList& params, at::Generator& gen) const { return init(params); }
  /// One step. Must be differentiable in params, grads, state and the rule's meta-parameters.
  virtual UpdateResult update(const TensorList& params, const TensorList& grads, const State& state) const = 0;
  /// The module holding φ for learned rules, nullptr for hand-designed ones.
  virtual torch::nn::Module* module() { return nullptr; }
  bool is_learned() { return module() != nullptr; }
};

using RulePtr = std::shared_ptr<UpdateRule>;

}  // namespace optim
}  // namespace l2o
