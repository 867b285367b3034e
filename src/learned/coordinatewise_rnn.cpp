#include <l2o/core/error.h>
#include <l2o/learned/coordinatewise_rnn.h>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/torch.h>

#include <cmath>

namespace l2o {
namespace learned {

void CoordinatewiseRnnOptions::validate() const {
  L2O_CHECK(cell_size() > 0, "crnn: cell_size=", cell_size(), " must be > 0");
  L2O_CHECK(num_cells() > 0, "crnn: num_cells=", num_cells(), " must be > 0");
  L2O_CHECK(init_lr_min() > 0, "crnn: init_lr_min=", init_lr_min(), " must be > 0");
  L2O_CHECK(init_lr_max() >= init_lr_min(), "crnn: init_lr_max=", init_lr_max(), " must be >= init_lr_min=",
            init_lr_min());
  L2O_CHECK(readout_scale() >= 0, "crnn: readout_scale=", readout_scale(), " must be >= 0");
  L2O_CHECK(std::isfinite(decay_bias_init()), "crnn: decay_bias_init=", decay_bias_init(), " must be finite");
}

CoordinatewiseRnn::CoordinatewiseRnn(CoordinatewiseRnnOptions options) : options_(std::move(options)) {
  options_.validate();
  const int64_t h = options_.cell_size();
  // TensorFlow's GRUCell: kernels take the glorot-uniform default of tf.get_variable, the gate bias
  // starts at 1 (gates open: keep the state) and the candidate bias at 0.
  auto glorot = [](int64_t fan_in, int64_t fan_out) {
    const double limit = std::sqrt(6.0 / static_cast<double>(fan_in + fan_out));
    return torch::empty({fan_in, fan_out}).uniform_(-limit, limit);
  };
  for (int64_t l = 0; l < options_.num_cells(); ++l) {
    const std::string s = std::to_string(l);
    const int64_t in = (l == 0 ? 1 : h) + h;
    gate_w_.push_back(register_parameter("gru" + s + "_gate_w", glorot(in, 2 * h)));
    gate_b_.push_back(register_parameter("gru" + s + "_gate_b", torch::ones({2 * h})));
    cand_w_.push_back(register_parameter("gru" + s + "_cand_w", glorot(in, h)));
    cand_b_.push_back(register_parameter("gru" + s + "_cand_b", torch::zeros({h})));
  }
  const double stddev = options_.readout_scale() / std::sqrt(static_cast<double>(h));
  auto scaled = [&] { return torch::randn({h, 1}) * stddev; };
  update_w_ = register_parameter("update_w", scaled());
  // Without learnable decay / dynamic output scale the reference uses constants; buffers keep them in
  // the checkpoint and let module.to(dtype) convert them.
  if (options_.learnable_decay()) {
    decay_w_ = register_parameter("decay_w", scaled());
    decay_b_ = register_parameter("decay_b", torch::full({1}, options_.decay_bias_init()));
  } else {
    decay_w_ = register_buffer("decay_w", torch::zeros({h, 1}));
    decay_b_ = register_buffer("decay_b", torch::full({1}, options_.decay_bias_init()));
  }
  if (options_.dynamic_output_scale()) {
    lr_w_ = register_parameter("lr_w", options_.zero_init_lr_weights() ? torch::zeros({h, 1}) : scaled());
    lr_b_ = register_parameter("lr_b", torch::zeros({1}));
  } else {
    lr_w_ = register_buffer("lr_w", torch::zeros({h, 1}));
    lr_b_ = register_buffer("lr_b", torch::zeros({1}));
  }
  init_hidden_ = register_parameter("init_hidden", torch::empty({1, options_.num_cells() * h}).uniform_(-1, 1));
}

std::shared_ptr<CoordinatewiseRnn> CoordinatewiseRnn::from_spec(const Spec& spec) {
  CoordinatewiseRnnOptions o;
  o.cell_size(spec.get_int("cell_size", o.cell_size()))
      .num_cells(spec.get_int("num_cells", o.num_cells()))
      .init_lr_min(spec.get_double("init_lr_min", o.init_lr_min()))
      .init_lr_max(spec.get_double("init_lr_max", o.init_lr_max()))
      .readout_scale(spec.get_double("readout_scale", o.readout_scale()))
      .decay_bias_init(spec.get_double("decay_bias_init", o.decay_bias_init()))
      .learnable_decay(spec.get_bool("learnable_decay", o.learnable_decay()))
      .dynamic_output_scale(spec.get_bool("dynamic_output_scale", o.dynamic_output_scale()))
      .zero_init_lr_weights(spec.get_bool("zero_init_lr_weights", o.zero_init_lr_weights()));
  spec.check_all_used();
  return std::make_shared<CoordinatewiseRnn>(o);
}

Spec CoordinatewiseRnn::spec() const {
  Spec s("crnn");
  s.set("cell_size", options_.cell_size()).set("num_cells", options_.num_cells());
  s.set("init_lr_min", options_.init_lr_min()).set("init_lr_max", options_.init_lr_max());
  s.set("readout_scale", options_.readout_scale()).set("decay_bias_init", options_.decay_bias_init());
  s.set("learnable_decay", options_.learnable_decay()).set("dynamic_output_scale", options_.dynamic_output_scale());
  s.set("zero_init_lr_weights", options_.zero_init_lr_weights());
  return s;
}

optim::State CoordinatewiseRnn::init(const TensorList& params) const {
  at::Generator gen = at::detail::getDefaultCPUGenerator();
  return init(params, gen);
}

optim::State CoordinatewiseRnn::init(const TensorList& params, at::Generator& gen) const {
  optim::State s;
  const int64_t h = options_.cell_size();
  const double lo = std::log(options_.init_lr_min()), hi = std::log(options_.init_lr_max());
  for (const auto& p : params) {
    const int64_t n = p.numel();
    const auto opts = p.options().requires_grad(false);
    s["rms"].push_back(torch::ones({n}, opts));
    s["decay"].push_back(torch::ones({n}, opts));
    // Drawn in float64 so that the same generator gives the same rates whatever the dtype of θ.
    const auto log_lr = lo == hi ? torch::full({n}, lo, torch::kDouble)
                                 : torch::empty({n}, torch::kDouble).uniform_(lo, hi, gen);
    s["learning_rate"].push_back(log_lr.exp().to(p.scalar_type()));
    // The initial hidden state is φ: keep the graph so that the first unroll trains it, as the
    // reference does through its first_unroll switch.
    const auto hidden = init_hidden_.to(p.scalar_type());
    for (int64_t l = 0; l < options_.num_cells(); ++l)
      s["h" + std::to_string(l)].push_back(hidden.narrow(1, l * h, h).repeat({n, 1}));
  }
  return s;
}

optim::UpdateResult CoordinatewiseRnn::update(const TensorList& params, const TensorList& grads,
                                              const optim::State& state) const {
  const Flattened flat = flatten(grads);
  const torch::Tensor& g = flat.values;
  const std::vector<int64_t>& sizes = flat.sizes;
  const torch::Tensor decay_prev = cat_rows(state.at("decay"));
  // utils.rms_scaling of the reference. Its "decay 0 when ms is all zero" branch never fires here:
  // ms starts at 1 and stays > 0.
  const torch::Tensor ms = (1 - decay_prev) * (g * g + 1e-12) + decay_prev * cat_rows(state.at("rms"));
  torch::Tensor x = torch::asinh(g / torch::sqrt(ms + 1e-16)).unsqueeze(1);

  optim::UpdateResult r;
  r.state.step = state.step + 1;
  const int64_t units = options_.cell_size();
  for (int64_t l = 0; l < options_.num_cells(); ++l) {
    const std::string hs = "h" + std::to_string(l);
    const torch::Tensor h = cat_rows(state.at(hs));
    const auto ru = torch::sigmoid(torch::addmm(gate_b_[l], torch::cat({x, h}, 1), gate_w_[l]));
    const auto reset = ru.narrow(1, 0, units), keep = ru.narrow(1, units, units);
    const auto cand = torch::tanh(torch::addmm(cand_b_[l], torch::cat({x, reset * h}, 1), cand_w_[l]));
    x = keep * h + (1 - keep) * cand;
    r.state[hs] = x.split_with_sizes(sizes, 0);
  }
  const torch::Tensor delta = x.mm(update_w_).squeeze(1);
  const torch::Tensor decay = torch::sigmoid(torch::addmm(decay_b_, x, decay_w_)).squeeze(1);
  // 2σ(·) bounds the change of the learning rate to a factor in (0, 2) per step.
  const torch::Tensor lr = 2 * torch::sigmoid(torch::addmm(lr_b_, x, lr_w_)).squeeze(1) * cat_rows(state.at("learning_rate"));
  r.state["rms"] = ms.split_with_sizes(sizes, 0);
  r.state["decay"] = decay.split_with_sizes(sizes, 0);
  r.state["learning_rate"] = lr.split_with_sizes(sizes, 0);
  const auto pieces = (-(lr * delta)).split_with_sizes(sizes, 0);
  for (size_t i = 0; i < params.size(); ++i) {
    r.steps.push_back(pieces[i].view_as(params[i]));
    r.params.push_back(params[i] + r.steps.back());
  }
  return r;
}

}  // namespace learned
}  // namespace l2o
