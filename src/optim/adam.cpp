#include <l2o/core/error.h>
#include <l2o/optim/adam.h>

#include <torch/torch.h>

#include <cmath>

namespace l2o {
namespace optim {

void AdamOptions::validate() const {
  L2O_CHECK(lr() > 0, "adam: lr=", lr(), " must be > 0");
  L2O_CHECK(beta1() >= 0 && beta1() < 1, "adam: beta1=", beta1(), " must lie in [0, 1)");
  L2O_CHECK(beta2() >= 0 && beta2() < 1, "adam: beta2=", beta2(), " must lie in [0, 1)");
  L2O_CHECK(eps() >= 0, "adam: eps=", eps(), " must be >= 0");
  L2O_CHECK(weight_decay() >= 0, "adam: weight_decay=", weight_decay(), " must be >= 0");
}

Adam::Adam(AdamOptions options) : options_(options) { options_.validate(); }

std::shared_ptr<Adam> Adam::from_spec(const Spec& spec) {
  AdamOptions o;
  o.lr(spec.get_double("lr", o.lr()))
      .beta1(spec.get_double("beta1", o.beta1()))
      .beta2(spec.get_double("beta2", o.beta2()))
      .eps(spec.get_double("eps", o.eps()))
      .weight_decay(spec.get_double("weight_decay", o.weight_decay()))
      .amsgrad(spec.get_bool("amsgrad", o.amsgrad()));
  spec.check_all_used();
  return std::make_shared<Adam>(o);
}

Spec Adam::spec() const {
  Spec s("adam");
  s.set("lr", options_.lr()).set("beta1", options_.beta1()).set("beta2", options_.beta2());
  s.set("eps", options_.eps()).set("weight_decay", options_.weight_decay()).set("amsgrad", options_.amsgrad());
  return s;
}

State Adam::init(const TensorList& params) const {
  State s;
  for (const auto& p : params) {
    s["exp_avg"].push_back(torch::zeros_like(p));
    s["exp_avg_sq"].push_back(torch::zeros_like(p));
    if (options_.amsgrad()) s["max_exp_avg_sq"].push_back(torch::zeros_like(p));
  }
  return s;
}

UpdateResult Adam::update(const TensorList& params, const TensorList& grads, const State& state) const {
  UpdateResult r;
  r.state.step = state.step + 1;
  const double b1 = options_.beta1(), b2 = options_.beta2();
  const double bc1 = 1 - std::pow(b1, static_cast<double>(r.state.step));
  const double bc2 = 1 - std::pow(b2, static_cast<double>(r.state.step));
  for (size_t i = 0; i < params.size(); ++i) {
    torch::Tensor g = grads[i];
    if (options_.weight_decay() != 0) g = g + options_.weight_decay() * params[i];
    torch::Tensor m = b1 * state.at("exp_avg")[i] + (1 - b1) * g;
    torch::Tensor v = b2 * state.at("exp_avg_sq")[i] + (1 - b2) * g * g;
    r.state["exp_avg"].push_back(m);
    r.state["exp_avg_sq"].push_back(v);
    torch::Tensor v_hat = v;
    if (options_.amsgrad()) {
      v_hat = torch::maximum(state.at("max_exp_avg_sq")[i], v);
      r.state["max_exp_avg_sq"].push_back(v_hat);
    }
    const torch::Tensor denom = v_hat.sqrt() / std::sqrt(bc2) + options_.eps();
    r.params.push_back(params[i] - (options_.lr() / bc1) * m / denom);
    r.steps.push_back(r.params.back() - params[i]);
  }
  return r;
}

}  // namespace optim
}  // namespace l2o
