#include <l2o/core/error.h>
#include <l2o/learned/trainable_adam.h>

#include <torch/torch.h>

#include <cmath>

namespace l2o {
namespace learned {

void TrainableAdamOptions::validate() const {
  L2O_CHECK(lr() > 0, "trainable_adam: lr=", lr(), " must be > 0");
  L2O_CHECK(beta1() > 0 && beta1() < 1, "trainable_adam: beta1=", beta1(), " must lie in (0, 1) (it is learned as a logit)");
  L2O_CHECK(beta2() > 0 && beta2() < 1, "trainable_adam: beta2=", beta2(), " must lie in (0, 1) (it is learned as a logit)");
  L2O_CHECK(eps() > 0, "trainable_adam: eps=", eps(), " must be > 0 (it is learned as a logarithm)");
  L2O_CHECK(eps_offset() >= 0, "trainable_adam: eps_offset=", eps_offset(), " must be >= 0");
  L2O_CHECK(sqrt_eps() >= 0, "trainable_adam: sqrt_eps=", sqrt_eps(), " must be >= 0");
}

TrainableAdam::TrainableAdam(TrainableAdamOptions options) : options_(options) {
  options_.validate();
  log_lr_ = register_parameter("log_lr", torch::zeros({}));
  beta1_logit_ = register_parameter("beta1_logit", torch::zeros({}));
  beta2_logit_ = register_parameter("beta2_logit", torch::zeros({}));
  log_eps_ = register_parameter("log_eps", torch::zeros({}));
  reset_parameters();
}

void TrainableAdam::reset_parameters() {
  torch::NoGradGuard no_grad;
  auto logit = [](double p) { return std::log(p / (1 - p)); };
  log_lr_.fill_(std::log(options_.lr()));
  beta1_logit_.fill_(logit(options_.beta1()));
  beta2_logit_.fill_(logit(options_.beta2()));
  log_eps_.fill_(std::log(options_.eps()));
}

std::shared_ptr<TrainableAdam> TrainableAdam::from_spec(const Spec& spec) {
  TrainableAdamOptions o;
  o.lr(spec.get_double("lr", o.lr()))
      .beta1(spec.get_double("beta1", o.beta1()))
      .beta2(spec.get_double("beta2", o.beta2()))
      .eps(spec.get_double("eps", o.eps()))
      .eps_offset(spec.get_double("eps_offset", o.eps_offset()))
      .sqrt_eps(spec.get_double("sqrt_eps", o.sqrt_eps()));
  spec.check_all_used();
  return std::make_shared<TrainableAdam>(o);
}

Spec TrainableAdam::spec() const {
  Spec s("trainable_adam");
  s.set("lr", options_.lr()).set("beta1", options_.beta1()).set("beta2", options_.beta2());
  s.set("eps", options_.eps()).set("eps_offset", options_.eps_offset()).set("sqrt_eps", options_.sqrt_eps());
  return s;
}

optim::State TrainableAdam::init(const TensorList& params) const {
  optim::State s;
  for (const auto& p : params) {
    s["exp_avg"].push_back(torch::zeros_like(p).set_requires_grad(false));
    s["exp_avg_sq"].push_back(torch::zeros_like(p).set_requires_grad(false));
  }
  return s;
}

optim::UpdateResult TrainableAdam::update(const TensorList& params, const TensorList& grads,
                                          const optim::State& state) const {
  optim::UpdateResult r;
  r.state.step = state.step + 1;
  const auto t = static_cast<double>(r.state.step);
  const torch::Tensor b1 = torch::sigmoid(beta1_logit_), b2 = torch::sigmoid(beta2_logit_);
  const torch::Tensor lr = torch::exp(log_lr_), eps = torch::exp(log_eps_) + options_.eps_offset();
  const torch::Tensor bc1 = 1 - torch::pow(b1, t), bc2 = 1 - torch::pow(b2, t);
  for (size_t i = 0; i < params.size(); ++i) {
    const torch::Tensor& g = grads[i];
    // The reference writes v ← debias(v, g², β₂) = v / (1 − (g²)^β₂), which keeps v at its initial 0
    // forever (its Adam divides by √1e-10 + ε). This is the correct recursion of Kingma & Ba.
    const torch::Tensor m = b1 * state.at("exp_avg")[i] + (1 - b1) * g;
    const torch::Tensor v = b2 * state.at("exp_avg_sq")[i] + (1 - b2) * g * g;
    r.state["exp_avg"].push_back(m);
    r.state["exp_avg_sq"].push_back(v);
    const torch::Tensor v_hat = v / bc2 + options_.sqrt_eps();
    r.steps.push_back(-lr * (m / bc1) / (v_hat.sqrt() + eps));
    r.params.push_back(params[i] + r.steps.back());
  }
  return r;
}

}  // namespace learned
}  // namespace l2o
