#include <l2o/core/error.h>
#include <l2o/optim/adagrad.h>

#include <torch/torch.h>

namespace l2o {
namespace optim {

void AdagradOptions::validate() const {
  L2O_CHECK(lr() > 0, "adagrad: lr=", lr(), " must be > 0");
  L2O_CHECK(lr_decay() >= 0, "adagrad: lr_decay=", lr_decay(), " must be >= 0");
  L2O_CHECK(weight_decay() >= 0, "adagrad: weight_decay=", weight_decay(), " must be >= 0");
  L2O_CHECK(initial_accumulator_value() >= 0, "adagrad: initial_accumulator_value=",
            initial_accumulator_value(), " must be >= 0");
  L2O_CHECK(eps() >= 0, "adagrad: eps=", eps(), " must be >= 0");
}

Adagrad::Adagrad(AdagradOptions options) : options_(options) { options_.validate(); }

std::shared_ptr<Adagrad> Adagrad::from_spec(const Spec& spec) {
  AdagradOptions o;
  o.lr(spec.get_double("lr", o.lr()))
      .lr_decay(spec.get_double("lr_decay", o.lr_decay()))
      .weight_decay(spec.get_double("weight_decay", o.weight_decay()))
      .initial_accumulator_value(spec.get_double("initial_accumulator_value", o.initial_accumulator_value()))
      .eps(spec.get_double("eps", o.eps()));
  spec.check_all_used();
  return std::make_shared<Adagrad>(o);
}

Spec Adagrad::spec() const {
  Spec s("adagrad");
  s.set("lr", options_.lr()).set("lr_decay", options_.lr_decay()).set("weight_decay", options_.weight_decay());
  s.set("initial_accumulator_value", options_.initial_accumulator_value()).set("eps", options_.eps());
  return s;
}

State Adagrad::init(const TensorList& params) const {
  State s;
  for (const auto& p : params) s["sum"].push_back(torch::full_like(p, options_.initial_accumulator_value()));
  return s;
}

UpdateResult Adagrad::update(const TensorList& params, const TensorList& grads, const State& state) const {
  UpdateResult r;
  r.state.step = state.step + 1;
  const double clr = options_.lr() / (1 + static_cast<double>(r.state.step - 1) * options_.lr_decay());
  for (size_t i = 0; i < params.size(); ++i) {
    torch::Tensor g = grads[i];
    if (options_.weight_decay() != 0) g = g + options_.weight_decay() * params[i];
    torch::Tensor sum = state.at("sum")[i] + g * g;
    r.state["sum"].push_back(sum);
    r.params.push_back(params[i] - clr * g / (sum.sqrt() + options_.eps()));
    r.steps.push_back(r.params.back() - params[i]);
  }
  return r;
}

}  // namespace optim
}  // namespace l2o
