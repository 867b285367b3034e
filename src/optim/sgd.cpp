#include <l2o/core/error.h>
#include <l2o/optim/sgd.h>

#include <torch/torch.h>

namespace l2o {
namespace optim {

void SgdOptions::validate() const {
  L2O_CHECK(lr() > 0, "sgd: lr=", lr(), " must be > 0");
  L2O_CHECK(momentum() >= 0 && momentum() < 1, "sgd: momentum=", momentum(), " must lie in [0, 1)");
  L2O_CHECK(dampening() >= 0 && dampening() <= 1, "sgd: dampening=", dampening(), " must lie in [0, 1]");
  L2O_CHECK(weight_decay() >= 0, "sgd: weight_decay=", weight_decay(), " must be >= 0");
  L2O_CHECK(!nesterov() || (momentum() > 0 && dampening() == 0),
            "sgd: nesterov=true needs momentum > 0 and dampening = 0");
}

Sgd::Sgd(SgdOptions options, std::string name) : options_(options), name_(std::move(name)) {
  options_.validate();
}

std::shared_ptr<Sgd> Sgd::from_spec(const Spec& spec) {
  const bool preset = spec.name() != "sgd";
  SgdOptions o;
  o.lr(spec.get_double("lr", 1e-2))
      .momentum(spec.get_double("momentum", preset ? 0.9 : 0.0))
      .dampening(spec.get_double("dampening", 0))
      .weight_decay(spec.get_double("weight_decay", 0))
      .nesterov(spec.get_bool("nesterov", spec.name() == "nag"));
  spec.check_all_used();
  return std::make_shared<Sgd>(o, spec.name());
}

Spec Sgd::spec() const {
  Spec s(name_);
  s.set("lr", options_.lr()).set("momentum", options_.momentum()).set("dampening", options_.dampening());
  s.set("weight_decay", options_.weight_decay()).set("nesterov", options_.nesterov());
  return s;
}

State Sgd::init(const TensorList& params) const {
  State s;
  if (options_.momentum() > 0) {
    for (const auto& p : params) s["momentum_buffer"].push_back(torch::zeros_like(p));
  }
  return s;
}

UpdateResult Sgd::update(const TensorList& params, const TensorList& grads, const State& state) const {
  UpdateResult r;
  r.state.step = state.step + 1;
  const double mu = options_.momentum();
  for (size_t i = 0; i < params.size(); ++i) {
    torch::Tensor d = grads[i];
    if (options_.weight_decay() != 0) d = d + options_.weight_decay() * params[i];
    if (mu > 0) {
      // torch::optim::SGD starts the buffer at a copy of the first gradient, undamped; the copy keeps
      // the state from aliasing a gradient buffer that the caller may zero in place.
      torch::Tensor buf = state.step == 0 ? d.clone() : mu * state.at("momentum_buffer")[i] + (1 - options_.dampening()) * d;
      r.state["momentum_buffer"].push_back(buf);
      d = options_.nesterov() ? d + mu * buf : buf;
    }
    r.params.push_back(params[i] - options_.lr() * d);
    r.steps.push_back(r.params.back() - params[i]);
  }
  return r;
}

}  // namespace optim
}  // namespace l2o
