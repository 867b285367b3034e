#include <l2o/core/error.h>
#include <l2o/core/rng.h>
#include <l2o/learned/hierarchical_rnn.h>

#include <torch/torch.h>

#include <cmath>
#include <sstream>

// Not implemented: the reference's `use_attention` (evaluate the gradient at a second, learned
// location). It is off in the paper configuration and needs the problem to be differentiated at
// points other than θ, which the UpdateRule interface does not provide.

namespace l2o {
namespace learned {
namespace {

// Mean of the rows of `v` ([N] or [N, D]) within each tensor's segment: [T] or [T, D].
torch::Tensor segment_mean(const torch::Tensor& v, const torch::Tensor& segments, const torch::Tensor& sizes) {
  const int64_t t = sizes.size(0);
  if (t == 1) return v.mean(0, /*keepdim=*/true);
  auto shape = v.sizes().vec();
  shape[0] = t;
  auto sum = torch::zeros(shape, v.options()).index_add(0, segments, v);
  return v.dim() == 1 ? sum / sizes : sum / sizes.unsqueeze(1);
}

// Broadcast per-tensor rows [T, ...] back to every coordinate [N, ...].
torch::Tensor expand_segments(const torch::Tensor& per_tensor, const torch::Tensor& segments, int64_t n) {
  if (per_tensor.size(0) == 1) {
    auto shape = per_tensor.sizes().vec();
    shape[0] = n;
    return per_tensor.expand(shape);
  }
  return per_tensor.index_select(0, segments);
}

std::vector<int64_t> parse_levels(const std::string& text) {
  std::vector<int64_t> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, '-')) {
    char* end = nullptr;
    const long v = std::strtol(item.c_str(), &end, 10);
    L2O_CHECK(!item.empty() && *end == '\0', "hrnn: levels='", text, "' must be sizes joined by '-', e.g. 10-20-20");
    out.push_back(v);
  }
  return out;
}

std::string join_levels(const std::vector<int64_t>& levels) {
  std::string s;
  for (auto l : levels) s += (s.empty() ? "" : "-") + std::to_string(l);
  return s;
}

}  // namespace

void HierarchicalRnnOptions::validate() const {
  const auto& l = level_sizes();
  L2O_CHECK(!l.empty() && l.size() <= 3, "hrnn: levels='", join_levels(l), "' must have 1, 2 or 3 sizes");
  for (auto s : l) L2O_CHECK(s > 0, "hrnn: level size ", s, " must be > 0");
  L2O_CHECK(init_lr_min() > 0 && init_lr_min() <= init_lr_max(), "hrnn: need 0 < init_lr_min (", init_lr_min(),
            ") <= init_lr_max (", init_lr_max(), ")");
  L2O_CHECK(num_gradient_scales() >= 1, "hrnn: num_gradient_scales=", num_gradient_scales(), " must be >= 1");
  L2O_CHECK(global_input() == "mean" || global_input() == "last_tensor", "hrnn: global_input='", global_input(),
            "' is not one of mean, last_tensor");
  L2O_CHECK(dynamic_output_scale() || !(use_relative_lr() || use_extreme_indicator() || use_lr_shortcut()),
            "hrnn: use_relative_lr, use_extreme_indicator and use_lr_shortcut need dynamic_output_scale=true");
  L2O_CHECK(min_log_lr() >= -33 && min_log_lr() < max_log_lr(), "hrnn: need -33 <= min_log_lr (", min_log_lr(),
            ") < max_log_lr (", max_log_lr(), ")");
}

int64_t HierarchicalRnnOptions::num_features() const {
  const int64_t k = num_gradient_scales();
  int64_t f = k;
  if (k > 1 && use_grad_products()) f += k - 1;
  if (use_log_means_squared()) f += k;
  if (use_relative_lr()) f += 1;
  if (use_extreme_indicator()) f += 1;
  if (use_lr_shortcut()) f += 1;
  return f;
}

torch::Tensor BiasGru::forward(const torch::Tensor& x, const torch::Tensor& h, const torch::Tensor& ext) const {
  const int64_t n = hidden_size;
  const auto wx = w_gates.narrow(0, 0, input_size), wh = w_gates.narrow(0, input_size, n);
  auto gates = torch::addmm(b_gates, x, wx) + torch::mm(h, wh);
  if (ext.defined()) gates = gates + ext.narrow(1, 0, 2 * n);
  gates = torch::sigmoid(gates);
  const auto r = gates.narrow(1, 0, n), u = gates.narrow(1, n, n);
  const auto cx = w_cand.narrow(0, 0, input_size), ch = w_cand.narrow(0, input_size, n);
  auto c = torch::addmm(b_cand, x, cx) + torch::mm(r * h, ch);
  if (ext.defined()) c = c + ext.narrow(1, 2 * n, n);
  c = torch::tanh(c);
  return u * h + (1 - u) * c;
}

HierarchicalRnn::HierarchicalRnn(HierarchicalRnnOptions options) : options_(std::move(options)) {
  options_.validate();
  const auto& sizes = options_.level_sizes();
  const int64_t levels = options_.num_levels();
  const int64_t f = options_.num_features();
  const bool extra_features = f != options_.num_gradient_scales();
  auto normal = [](std::vector<int64_t> shape, double mean, double std) {
    return torch::empty(shape).normal_(mean, std);
  };
  for (int64_t l = 0; l < levels; ++l) {
    BiasGru cell;
    cell.hidden_size = sizes[l];
    // Level 1 reads the tensor mean of [new per-coordinate state, features] (only the state when
    // there are no features beyond the scaled gradients, as in the reference); level 2 the tensor states.
    cell.input_size = l == 0 ? f : (l == 1 ? sizes[0] + (extra_features ? f : 0) : sizes[1]);
    const int64_t fan_in = cell.input_size + cell.hidden_size;
    const double std = options_.gru_scale() / std::sqrt(static_cast<double>(fan_in));
    const std::string s = "level" + std::to_string(l) + "_";
    cell.w_gates = register_parameter(s + "w_gates", normal({fan_in, 2 * sizes[l]}, 0, std));
    cell.b_gates = register_parameter(s + "b_gates", torch::full({2 * sizes[l]}, options_.gate_bias_init()));
    cell.w_cand = register_parameter(s + "w_cand", normal({fan_in, sizes[l]}, 0, std));
    cell.b_cand = register_parameter(s + "b_cand", torch::zeros({sizes[l]}));
    cells_.push_back(cell);
    auto init = torch::empty({1, sizes[l]}).uniform_(-1, 1);
    init_vectors_.push_back(options_.learnable_rnn_init() ? register_parameter(s + "init", init)
                                                          : register_buffer(s + "init", init));
  }
  const double affine = options_.affine_scale();
  if (levels > 1) {
    param_bias_w_ = register_parameter("param_bias_w", normal({sizes[1], 3 * sizes[0]}, 0, affine / std::sqrt(sizes[1])));
    param_bias_b_ = register_parameter("param_bias_b", torch::zeros({3 * sizes[0]}));
  }
  if (levels > 2) {
    global_bias_w_ = register_parameter("global_bias_w", normal({sizes[2], 3 * sizes[0]}, 0, affine / std::sqrt(sizes[2])));
    global_bias_b_ = register_parameter("global_bias_b", torch::zeros({3 * sizes[0]}));
    layer_bias_w_ = register_parameter("layer_bias_w", normal({sizes[2], 3 * sizes[1]}, 0, affine / std::sqrt(sizes[2])));
    layer_bias_b_ = register_parameter("layer_bias_b", torch::zeros({3 * sizes[1]}));
  }
  const int64_t h0 = sizes[0];
  const double readout = options_.readout_scale() / std::sqrt(static_cast<double>(h0));
  update_w_ = register_parameter("update_w", normal({h0}, 0, readout));
  if (options_.use_gradient_shortcut()) {
    // The reference affine(): N(vec_mean, 0.1/√fan_in) with vec_mean = 1/num_scales, no bias.
    const int64_t k = options_.num_gradient_scales();
    shortcut_w_ = register_parameter("shortcut_w", normal({k}, 1.0 / k, 0.1 / std::sqrt(static_cast<double>(k))));
  }
  auto logit = [](double p) { return std::log(p / (1 - p)); };
  if (options_.learnable_decay()) {
    scl_w_ = register_parameter("scl_decay_w", normal({h0}, 0, readout));
    scl_b_ = register_parameter("scl_decay_b", torch::full({1}, options_.scale_decay_bias_init()));
  } else {
    scl_w_ = register_buffer("scl_decay_w", torch::zeros({h0}));
    scl_b_ = register_buffer("scl_decay_b", torch::full({1}, logit(0.93)));
  }
  if (options_.learnable_decay() && options_.learnable_inp_decay() && options_.num_gradient_scales() > 1) {
    inp_w_ = register_parameter("inp_decay_w", normal({h0}, 0, readout));
    inp_b_ = register_parameter("inp_decay_b", torch::full({1}, options_.decay_bias_init()));
  } else {
    inp_w_ = register_buffer("inp_decay_w", torch::zeros({h0}));
    inp_b_ = register_buffer("inp_decay_b", torch::full({1}, logit(0.89)));
  }
  lr_w_ = register_parameter("lr_w", options_.zero_init_lr_weights() ? torch::zeros({h0}) : normal({h0}, 0, readout));
  lr_b_ = register_parameter("lr_b", torch::zeros({1}));
  if (options_.dynamic_output_scale()) {
    lr_momentum_logit_ = register_parameter("lr_momentum_logit", torch::full({1}, options_.lr_momentum_logit_init()));
    stepsize_offset_ = register_parameter("stepsize_offset", torch::full({1}, options_.stepsize_offset_init()));
  }
}

std::shared_ptr<HierarchicalRnn> HierarchicalRnn::from_spec(const Spec& spec) {
  HierarchicalRnnOptions o;
  if (spec.has("levels")) o.level_sizes(parse_levels(spec.get_string("levels", "")));
  o.init_lr_min(spec.get_double("init_lr_min", o.init_lr_min()))
      .init_lr_max(spec.get_double("init_lr_max", o.init_lr_max()))
      .learnable_decay(spec.get_bool("learnable_decay", o.learnable_decay()))
      .learnable_inp_decay(spec.get_bool("learnable_inp_decay", o.learnable_inp_decay()))
      .dynamic_output_scale(spec.get_bool("dynamic_output_scale", o.dynamic_output_scale()))
      .num_gradient_scales(spec.get_int("num_gradient_scales", o.num_gradient_scales()))
      .zero_init_lr_weights(spec.get_bool("zero_init_lr_weights", o.zero_init_lr_weights()))
      .use_log_means_squared(spec.get_bool("use_log_means_squared", o.use_log_means_squared()))
      .use_relative_lr(spec.get_bool("use_relative_lr", o.use_relative_lr()))
      .use_problem_lr_mean(spec.get_bool("use_problem_lr_mean", o.use_problem_lr_mean()))
      .use_extreme_indicator(spec.get_bool("use_extreme_indicator", o.use_extreme_indicator()))
      .use_lr_shortcut(spec.get_bool("use_lr_shortcut", o.use_lr_shortcut()))
      .use_grad_products(spec.get_bool("use_grad_products", o.use_grad_products()))
      .use_multiple_scale_decays(spec.get_bool("use_multiple_scale_decays", o.use_multiple_scale_decays()))
      .use_gradient_shortcut(spec.get_bool("use_gradient_shortcut", o.use_gradient_shortcut()))
      .learnable_rnn_init(spec.get_bool("learnable_rnn_init", o.learnable_rnn_init()))
      .min_log_lr(spec.get_double("min_log_lr", o.min_log_lr()))
      .max_log_lr(spec.get_double("max_log_lr", o.max_log_lr()))
      .global_input(spec.get_string("global_input", o.global_input()))
      .gru_scale(spec.get_double("gru_scale", o.gru_scale()))
      .gate_bias_init(spec.get_double("gate_bias_init", o.gate_bias_init()))
      .readout_scale(spec.get_double("readout_scale", o.readout_scale()))
      .decay_bias_init(spec.get_double("decay_bias_init", o.decay_bias_init()))
      .scale_decay_bias_init(spec.get_double("scale_decay_bias_init", o.scale_decay_bias_init()))
      .lr_momentum_logit_init(spec.get_double("lr_momentum_logit_init", o.lr_momentum_logit_init()))
      .affine_scale(spec.get_double("affine_scale", o.affine_scale()))
      .stepsize_offset_init(spec.get_double("stepsize_offset_init", o.stepsize_offset_init()))
      .fused(spec.get_bool("fused", o.fused()));
  spec.check_all_used();
  return std::make_shared<HierarchicalRnn>(o);
}

Spec HierarchicalRnn::spec() const {
  const auto& o = options_;
  Spec s("hrnn");
  s.set("levels", join_levels(o.level_sizes()));
  s.set("init_lr_min", o.init_lr_min()).set("init_lr_max", o.init_lr_max());
  s.set("learnable_decay", o.learnable_decay()).set("learnable_inp_decay", o.learnable_inp_decay());
  s.set("dynamic_output_scale", o.dynamic_output_scale()).set("num_gradient_scales", o.num_gradient_scales());
  s.set("zero_init_lr_weights", o.zero_init_lr_weights()).set("use_log_means_squared", o.use_log_means_squared());
  s.set("use_relative_lr", o.use_relative_lr()).set("use_problem_lr_mean", o.use_problem_lr_mean());
  s.set("use_extreme_indicator", o.use_extreme_indicator()).set("use_lr_shortcut", o.use_lr_shortcut());
  s.set("use_grad_products", o.use_grad_products()).set("use_multiple_scale_decays", o.use_multiple_scale_decays());
  s.set("use_gradient_shortcut", o.use_gradient_shortcut()).set("learnable_rnn_init", o.learnable_rnn_init());
  s.set("max_log_lr", o.max_log_lr()).set("global_input", o.global_input());
  s.set("gru_scale", o.gru_scale()).set("gate_bias_init", o.gate_bias_init()).set("readout_scale", o.readout_scale());
  s.set("decay_bias_init", o.decay_bias_init()).set("scale_decay_bias_init", o.scale_decay_bias_init());
  s.set("lr_momentum_logit_init", o.lr_momentum_logit_init()).set("affine_scale", o.affine_scale());
  s.set("stepsize_offset_init", o.stepsize_offset_init());
  // Only the non-default value is written, so checkpoints made before the option existed still match.
  const HierarchicalRnnOptions defaults;
  if (o.fused() != defaults.fused()) s.set("fused", o.fused());
  if (o.min_log_lr() != defaults.min_log_lr()) s.set("min_log_lr", o.min_log_lr());
  return s;
}

optim::State HierarchicalRnn::init(const TensorList& params) const {
  auto gen = make_generator(0);
  return init(params, gen);
}

optim::State HierarchicalRnn::init(const TensorList& params, at::Generator& gen) const {
  const auto& o = options_;
  optim::State s;
  const double lo = std::log(o.init_lr_min()) / 2, hi = std::log(o.init_lr_max()) / 2;
  for (const auto& p : params) {
    const int64_t n = p.numel();
    const auto opts = p.options().requires_grad(false);
    // The initial hidden states stay connected to φ (learnable_rnn_init): the first unroll of a
    // meta-iteration trains them.
    s["param_h"].push_back(init_vectors_[0].to(p.scalar_type()).expand({n, o.level_sizes()[0]}));
    if (o.num_levels() > 1) s["layer_h"].push_back(init_vectors_[1].to(p.scalar_type()));
    s["scl_decay"].push_back(torch::zeros({n}, opts));
    s["inp_decay"].push_back(torch::zeros({n}, opts));
    if (o.dynamic_output_scale()) {
      torch::Tensor log_lr;
      if (o.init_lr_min() == o.init_lr_max()) {
        log_lr = torch::full({n}, std::log(o.init_lr_min()), opts);
      } else {
        // A per-tensor offset makes the mean learning rate differ between tensors (reference).
        log_lr = torch::empty({n}, opts).uniform_(lo, hi, gen) + torch::empty({1}, opts).uniform_(lo, hi, gen);
      }
      s["log_lr"].push_back(log_lr.clamp(o.min_log_lr(), o.max_log_lr()));
    }
    for (int64_t i = 0; i < o.num_gradient_scales(); ++i) {
      s["acc" + std::to_string(i)].push_back(torch::zeros({n}, opts));
      s["ms" + std::to_string(i)].push_back(torch::zeros({n}, opts));
    }
  }
  if (o.num_levels() > 2) s["global_h"].push_back(init_vectors_[2].to(params.at(0).scalar_type()));
  return s;
}

HierarchicalRnn::Features HierarchicalRnn::features(const torch::Tensor& grad, const std::vector<torch::Tensor>& accums,
                                                    const std::vector<torch::Tensor>& ms,
                                                    const torch::Tensor& inp_decay, const torch::Tensor& scl_decay,
                                                    const torch::Tensor& log_lr, const torch::Tensor& segments,
                                                    const torch::Tensor& sizes) const {
  const auto& o = options_;
  const int64_t k = o.num_gradient_scales();
  Features out;
  std::vector<torch::Tensor> inp_decays{inp_decay}, scl_decays{scl_decay};
  for (int64_t i = 1; i < k; ++i) {
    inp_decays.push_back(torch::sqrt(inp_decays.back()));
    if (o.use_multiple_scale_decays()) scl_decays.push_back(torch::sqrt(scl_decays.back()));
  }
  std::vector<torch::Tensor> cols;
  for (int64_t i = 0; i < k; ++i) {
    // One time scale only: the raw gradient, no accumulation (reference).
    const auto acc = k == 1 ? grad : grad * (1 - inp_decays[i]) + accums[i] * inp_decays[i];
    const auto& s = scl_decays[o.use_multiple_scale_decays() ? i : 0];
    // The decay state is 0 before the first step, so the first mean square is g² itself (reference).
    const auto m = (1 - s) * (acc * acc + 1e-12) + s * ms[i];
    out.accums.push_back(acc);
    out.ms.push_back(m);
    out.scaled.push_back(torch::asinh(acc / torch::sqrt(m + 1e-16)));
  }
  cols = out.scaled;
  if (k > 1 && o.use_grad_products())
    for (int64_t i = 0; i + 1 < k; ++i) cols.push_back(out.scaled[i] * out.scaled[i + 1]);
  if (o.use_log_means_squared()) {
    std::vector<torch::Tensor> logs;
    for (const auto& m : out.ms) logs.push_back(torch::log(m + 1e-16));
    const auto avg = torch::stack(logs, 0).mean(0);
    for (const auto& l : logs) cols.push_back(l - avg);
  }
  if (o.use_relative_lr()) {
    const auto mean = o.use_problem_lr_mean() ? log_lr.mean().expand_as(log_lr)
                                              : expand_segments(segment_mean(log_lr, segments, sizes), segments,
                                                                log_lr.size(0));
    cols.push_back(log_lr - mean);
  }
  if (o.use_extreme_indicator())
    cols.push_back(torch::relu(log_lr) - torch::relu(std::log(1e-6) - log_lr));
  if (o.use_lr_shortcut()) cols.push_back(log_lr - std::log(1e-3));
  out.x = torch::stack(cols, 1);
  return out;
}

std::pair<torch::Tensor, torch::Tensor> HierarchicalRnn::higher_levels(const torch::Tensor& in1,
                                                                      const torch::Tensor& layer_h,
                                                                      const torch::Tensor& global_h) const {
  const int64_t levels = options_.num_levels();
  torch::Tensor new_layer_h, new_global_h;
  if (levels > 1) {
    const int64_t t = layer_h.size(0);
    const auto ext1 = levels > 2 ? torch::addmm(layer_bias_b_, global_h, layer_bias_w_).expand({t, -1}) : torch::Tensor();
    new_layer_h = cells_[1].forward(in1, layer_h, ext1);
    if (levels > 2) {
      const auto in2 = options_.global_input() == "mean" ? new_layer_h.mean(0, true) : new_layer_h.narrow(0, t - 1, 1);
      new_global_h = cells_[2].forward(in2, global_h, torch::Tensor());
    }
  }
  return {new_layer_h, new_global_h};
}

optim::UpdateResult HierarchicalRnn::update(const TensorList& params, const TensorList& grads,
                                            const optim::State& state) const {
  if (uses_fused(grads)) return update_fused(params, grads, state);
  const auto& o = options_;
  const int64_t levels = o.num_levels();
  const int64_t k = o.num_gradient_scales();
  const int64_t t = static_cast<int64_t>(params.size());
  const Flattened flat = flatten(grads);
  const torch::Tensor& g = flat.values;
  const std::vector<int64_t>& sizes = flat.sizes;
  const int64_t n = g.size(0);
  const auto fopts = g.options().requires_grad(false);
  const auto size_tensor = torch::tensor(sizes, torch::kLong);
  const auto sizes_f = size_tensor.to(g.scalar_type());
  const auto segments = t == 1 ? torch::zeros({n}, torch::kLong) : torch::repeat_interleave(size_tensor);

  std::vector<torch::Tensor> accums, ms;
  for (int64_t i = 0; i < k; ++i) {
    accums.push_back(cat_rows(state.at("acc" + std::to_string(i))));
    ms.push_back(cat_rows(state.at("ms" + std::to_string(i))));
  }
  const auto log_lr = o.dynamic_output_scale() ? cat_rows(state.at("log_lr")) : torch::zeros({n}, fopts);
  const Features feat = features(g, accums, ms, cat_rows(state.at("inp_decay")), cat_rows(state.at("scl_decay")),
                                 log_lr, segments, sizes_f);

  // Level 0 (per coordinate): bias from the old tensor state and the old global state.
  const auto param_h = cat_rows(state.at("param_h"));
  torch::Tensor ext0, layer_h, global_h;
  if (levels > 1) {
    layer_h = cat_rows(state.at("layer_h"));  // [T, H1]
    auto bias = torch::addmm(param_bias_b_, layer_h, param_bias_w_);
    if (levels > 2) {
      global_h = state.at("global_h").at(0);  // [1, H2]
      bias = bias + torch::addmm(global_bias_b_, global_h, global_bias_w_);
    }
    ext0 = expand_segments(bias, segments, n);
  }
  const auto new_param_h = cells_[0].forward(feat.x, param_h, ext0);

  // Level 1 (per tensor) on the tensor mean of [new coordinate state, features]; level 2 (global) on
  // the mean (or, like the reference, the last) of the new tensor states.
  torch::Tensor new_layer_h, new_global_h;
  if (levels > 1) {
    const bool extra = o.num_features() != k;
    const auto in1 = segment_mean(extra ? torch::cat({new_param_h, feat.x}, 1) : new_param_h, segments, sizes_f);
    std::tie(new_layer_h, new_global_h) = higher_levels(in1, layer_h, global_h);
  }

  // Read-outs.
  auto delta = torch::mv(new_param_h, update_w_);
  if (o.use_gradient_shortcut()) delta = delta + torch::mv(torch::stack(feat.scaled, 1), shortcut_w_);
  if (o.dynamic_output_scale()) {
    const auto denom = torch::sqrt(segment_mean(delta * delta, segments, sizes_f) + 1e-16);
    delta = delta / expand_segments(denom, segments, n);
  }
  const auto scl_decay = torch::sigmoid(torch::mv(new_param_h, scl_w_) + scl_b_);
  const auto inp_decay = torch::sigmoid(torch::mv(new_param_h, inp_w_) + inp_b_);
  torch::Tensor lr, new_log_lr;
  if (o.dynamic_output_scale()) {
    auto step_log_lr = log_lr + torch::mv(new_param_h, lr_w_) + lr_b_;
    // Straight-through clip: the value is clipped, the gradient is that of the unclipped value.
    step_log_lr = step_log_lr + (step_log_lr.clamp(o.min_log_lr(), o.max_log_lr()) - step_log_lr).detach();
    const auto m = torch::sigmoid(lr_momentum_logit_);
    new_log_lr = m * log_lr + (1 - m) * step_log_lr;
    lr = torch::exp(step_log_lr + stepsize_offset_);
  } else {
    lr = 2 * torch::sigmoid(torch::mv(new_param_h, lr_w_) + lr_b_);
  }
  const auto step = -(lr * delta);

  optim::UpdateResult r;
  r.state.step = state.step + 1;
  auto split = [&](const torch::Tensor& v) { return v.split_with_sizes(sizes, 0); };
  const auto steps = split(step);
  for (int64_t i = 0; i < t; ++i) {
    r.steps.push_back(steps[i].view_as(params[i]));
    r.params.push_back(params[i] + r.steps.back());
  }
  r.state["param_h"] = split(new_param_h);
  r.state["scl_decay"] = split(scl_decay);
  r.state["inp_decay"] = split(inp_decay);
  if (o.dynamic_output_scale()) r.state["log_lr"] = split(new_log_lr);
  for (int64_t i = 0; i < k; ++i) {
    r.state["acc" + std::to_string(i)] = split(feat.accums[i]);
    r.state["ms" + std::to_string(i)] = split(feat.ms[i]);
  }
  if (levels > 1) r.state["layer_h"] = new_layer_h.split(1, 0);
  if (levels > 2) r.state["global_h"] = {new_global_h};
  return r;
}

}  // namespace learned
}  // namespace l2o
