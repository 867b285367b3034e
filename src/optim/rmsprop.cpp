#include <l2o/core/error.h>
#include <l2o/optim/rmsprop.h>

#include <torch/torch.h>

namespace l2o {
namespace optim {

void RmspropOptions::validate() const {
  L2O_CHECK(lr() > 0, "rmsprop: lr=", lr(), " must be > 0");
  L2O_CHECK(alpha() >= 0 && alpha() < 1, "rmsprop: alpha=", alpha(), " must lie in [0, 1)");
  L2O_CHECK(eps() >= 0, "rmsprop: eps=", eps(), " must be >= 0");
  L2O_CHECK(weight_decay() >= 0, "rmsprop: weight_decay=", weight_decay(), " must be >= 0");
  L2O_CHECK(momentum() >= 0 && momentum() < 1, "rmsprop: momentum=", momentum(), " must lie in [0, 1)");
}

Rmsprop::Rmsprop(RmspropOptions options) : options_(options) { options_.validate(); }

std::shared_ptr<Rmsprop> Rmsprop::from_spec(const Spec& spec) {
  RmspropOptions o;
  o.lr(spec.get_double("lr", o.lr()))
      .alpha(spec.get_double("alpha", o.alpha()))
      .eps(spec.get_double("eps", o.eps()))
      .weight_decay(spec.get_double("weight_decay", o.weight_decay()))
      .momentum(spec.get_double("momentum", o.momentum()))
      .centered(spec.get_bool("centered", o.centered()));
  spec.check_all_used();
  return std::make_shared<Rmsprop>(o);
}

Spec Rmsprop::spec() const {
  Spec s("rmsprop");
  s.set("lr", options_.lr()).set("alpha", options_.alpha()).set("eps", options_.eps());
  s.set("weight_decay", options_.weight_decay()).set("momentum", options_.momentum());
  s.set("centered", options_.centered());
  return s;
}

State Rmsprop::init(const TensorList& params) const {
  State s;
  for (const auto& p : params) {
    s["square_avg"].push_back(torch::zeros_like(p));
    if (options_.centered()) s["grad_avg"].push_back(torch::zeros_like(p));
    if (options_.momentum() > 0) s["momentum_buffer"].push_back(torch::zeros_like(p));
  }
  return s;
}

UpdateResult Rmsprop::update(const TensorList& params, const TensorList& grads, const State& state) const {
  UpdateResult r;
  r.state.step = state.step + 1;
  const double a = options_.alpha();
  for (size_t i = 0; i < params.size(); ++i) {
    torch::Tensor g = grads[i];
    if (options_.weight_decay() != 0) g = g + options_.weight_decay() * params[i];
    torch::Tensor sq = a * state.at("square_avg")[i] + (1 - a) * g * g;
    r.state["square_avg"].push_back(sq);
    torch::Tensor avg;
    if (options_.centered()) {
      torch::Tensor ga = a * state.at("grad_avg")[i] + (1 - a) * g;
      r.state["grad_avg"].push_back(ga);
      avg = (sq - ga * ga).sqrt() + options_.eps();
    } else {
      avg = sq.sqrt() + options_.eps();
    }
    torch::Tensor d = g / avg;
    if (options_.momentum() > 0) {
      d = options_.momentum() * state.at("momentum_buffer")[i] + d;
      r.state["momentum_buffer"].push_back(d);
    }
    r.params.push_back(params[i] - options_.lr() * d);
    r.steps.push_back(r.params.back() - params[i]);
  }
  return r;
}

}  // namespace optim
}  // namespace l2o
