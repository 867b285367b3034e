#include <l2o/core/error.h>
#include <l2o/learned/coordinatewise_rnn.h>
#include <l2o/learned/hierarchical_rnn.h>
#include <l2o/learned/lstm.h>
#include <l2o/learned/mlp_lopt.h>
#include <l2o/learned/registry.h>
#include <l2o/learned/trainable_adam.h>
#include <l2o/optim/adagrad.h>
#include <l2o/optim/adam.h>
#include <l2o/optim/rmsprop.h>
#include <l2o/optim/sgd.h>

namespace l2o {
namespace learned {

std::vector<std::pair<std::string, std::string>> rule_catalogue() {
  return {
      {"sgd", "gradient descent (torch::optim::SGD; lr, momentum, dampening, weight_decay, nesterov)"},
      {"momentum", "SGD with momentum 0.9 (torch::optim::SGD)"},
      {"nag", "Nesterov accelerated gradient, momentum 0.9 (torch::optim::SGD nesterov)"},
      {"rmsprop", "RMSProp (torch::optim::RMSprop; lr, alpha, eps, weight_decay, momentum, centered)"},
      {"adam", "Adam (torch::optim::Adam; lr, beta1, beta2, eps, weight_decay, amsgrad)"},
      {"adagrad", "Adagrad (torch::optim::Adagrad; lr, lr_decay, weight_decay, initial_accumulator_value, eps)"},
      {"lstm", "learned: coordinatewise deep LSTM of Andrychowicz et al. 2016 (hidden_size, num_layers, "
               "preprocess=none|logsign, k, output_scale)"},
      {"hrnn", "learned: hierarchical RNN of Wichrowska et al. 2017 (L2O-Scale; levels=10-20-20, "
               "global_input=mean|last_tensor, init_lr_min/max, every reference switch: see docs/hrnn.md; "
               "fused=true (default) takes the fused kernel for levels 10-*-*, 4 gradient scales and the default "
               "features, any other option and fused=false the op-by-op path)"},
      {"crnn", "learned: CoordinatewiseRNN of L2O-Scale, stacked GRUs on the RMS-scaled gradient (cell_size, "
               "num_cells, init_lr_min, init_lr_max, readout_scale, decay_bias_init, learnable_decay, "
               "dynamic_output_scale, zero_init_lr_weights)"},
      {"trainable_adam", "learned: Adam with meta-learned global log lr, logit beta1, logit beta2, log eps "
                         "(lr, beta1, beta2, eps, eps_offset, sqrt_eps)"},
      {"mlp_lopt", "learned: per-parameter MLP of learned_optimization (AdafacMLPLOpt): momentum, RMS and "
                   "Adafactor features, step = d*exp(m*exp_mult)*step_mult (hidden_size, hidden_layers, step_mult, "
                   "exp_mult, momentum_decays, rms_decays, adafactor_decays as 0.9/0.99/0.999); see docs/mlp_lopt.md"},
  };
}

optim::RulePtr make_rule(const std::string& text) {
  const Spec spec = Spec::parse(text);
  const std::string& n = spec.name();
  if (n == "sgd" || n == "momentum" || n == "nag") return optim::Sgd::from_spec(spec);
  if (n == "adam") return optim::Adam::from_spec(spec);
  if (n == "rmsprop") return optim::Rmsprop::from_spec(spec);
  if (n == "adagrad") return optim::Adagrad::from_spec(spec);
  if (n == "lstm") return CoordinatewiseLstm::from_spec(spec);
  if (n == "hrnn") return HierarchicalRnn::from_spec(spec);
  if (n == "crnn") return CoordinatewiseRnn::from_spec(spec);
  if (n == "trainable_adam") return TrainableAdam::from_spec(spec);
  if (n == "mlp_lopt") return MlpLopt::from_spec(spec);
  std::string known;
  for (const auto& kv : rule_catalogue()) known += (known.empty() ? "" : ", ") + kv.first;
  L2O_FAIL("unknown optimizer '", n, "' (known: ", known, ")");
}

}  // namespace learned
}  // namespace l2o
