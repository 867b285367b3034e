#include <l2o/core/error.h>
#include <l2o/optim/adapter.h>

#include <torch/torch.h>

namespace l2o {
namespace optim {

RuleOptimizer::RuleOptimizer(std::vector<torch::Tensor> params, RulePtr rule)
    : torch::optim::Optimizer({torch::optim::OptimizerParamGroup(std::move(params))},
                              std::make_unique<RuleOptimizerOptions>()),
      rule_(std::move(rule)) {
  L2O_CHECK(rule_ != nullptr, "RuleOptimizer: no update rule given");
}

std::vector<torch::Tensor> RuleOptimizer::all_params() const {
  std::vector<torch::Tensor> out;
  for (const auto& group : param_groups_)
    for (const auto& p : group.params()) out.push_back(p);
  return out;
}

torch::Tensor RuleOptimizer::step(LossClosure closure) {
  torch::Tensor loss;
  if (closure) {
    torch::AutoGradMode enable(true);
    loss = closure();
  }
  torch::NoGradGuard no_grad;
  const auto params = all_params();
  TensorList values, grads;
  for (const auto& p : params) {
    values.push_back(p.detach());
    grads.push_back(p.grad().defined() ? p.grad().detach() : torch::zeros_like(p));
  }
  if (!initialised_) {
    state_ = rule_->init(values);
    initialised_ = true;
  }
  UpdateResult r = rule_->update(values, grads, state_);
  for (size_t i = 0; i < params.size(); ++i) params[i].detach().copy_(r.params[i]);
  state_ = std::move(r.state);
  return loss;
}

void RuleOptimizer::set_rule_state(State state) {
  state_ = std::move(state);
  initialised_ = true;
}

void RuleOptimizer::save(torch::serialize::OutputArchive& archive) const {
  archive.write("rule", c10::IValue(rule_->spec().str()));
  archive.write("initialised", torch::tensor(initialised_ ? 1 : 0));
  if (initialised_) save_state(archive, state_);
}

void RuleOptimizer::load(torch::serialize::InputArchive& archive) {
  c10::IValue spec;
  archive.read("rule", spec);
  L2O_CHECK(spec.toStringRef() == rule_->spec().str(), "optimizer state was saved for rule '",
            spec.toStringRef(), "' but this optimizer runs '", rule_->spec().str(), "'");
  torch::Tensor init;
  archive.read("initialised", init);
  initialised_ = init.item<int64_t>() != 0;
  if (initialised_) state_ = load_state(archive);
}

}  // namespace optim
}  // namespace l2o
