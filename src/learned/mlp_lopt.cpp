#include <l2o/core/error.h>
#include <l2o/learned/mlp_lopt.h>

#include <torch/torch.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <numeric>

namespace l2o {
namespace learned {

namespace {
// The reference's tanh_embedding time scales.
constexpr double kTimescales[] = {1, 3, 10, 30, 100, 300, 1000, 3000, 10000, 30000, 100000};
constexpr int64_t kNumTimeFeatures = sizeof(kTimescales) / sizeof(kTimescales[0]);

std::string join_decays(const std::vector<double>& decays) {
  std::string s;
  for (double d : decays) s += (s.empty() ? "" : "/") + format_double(d);
  return s;
}

std::vector<double> parse_decays(const std::string& key, const std::string& text) {
  std::vector<double> out;
  size_t pos = 0;
  while (true) {
    const auto slash = text.find('/', pos);
    const std::string item = text.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
    errno = 0;
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    L2O_CHECK(!item.empty() && end != item.c_str() && *end == '\0' && errno == 0, "mlp_lopt: ", key, "='", text,
              "' must be decays joined by '/', e.g. 0.9/0.99/0.999");
    out.push_back(v);
    if (slash == std::string::npos) break;
    pos = slash + 1;
  }
  return out;
}

void check_decays(const char* key, const std::vector<double>& decays) {
  L2O_CHECK(!decays.empty(), "mlp_lopt: ", key, " is empty; give at least one decay, e.g. 0.9");
  for (double d : decays)
    L2O_CHECK(d >= 0 && d < 1, "mlp_lopt: ", key, "='", join_decays(decays), "' has decay ", d, " outside [0, 1)");
}

// The reference's param_to_decay(decay_to_param(β₀) + δ) = 1 − (1 − β₀)·exp(10δ).
torch::Tensor learned_decays(const std::vector<double>& initial, const torch::Tensor& offset) {
  const torch::Tensor base = torch::tensor(initial, torch::kDouble).to(offset.scalar_type());
  return 1 - (1 - base) * torch::exp(10 * offset);
}

// 0-d tensors are computed as [1] (the reference expands them likewise).
std::vector<int64_t> work_shape(const torch::Tensor& p) {
  return p.dim() == 0 ? std::vector<int64_t>{1} : p.sizes().vec();
}

// haiku's TruncatedNormal(stddev): stddev times a standard normal cut at ±2 (no variance correction),
// drawn by inverse CDF from torch's global generator.
torch::Tensor truncated_normal(int64_t rows, int64_t cols, double stddev) {
  const double lo = 0.5 * std::erfc(std::sqrt(2.0)), hi = 1 - lo;  // Φ(−2), Φ(2)
  const torch::Tensor u = torch::empty({rows, cols}, torch::kDouble).uniform_(lo, hi);
  return (std::sqrt(2.0) * torch::erfinv(2 * u - 1) * stddev).to(torch::kFloat);
}
}  // namespace

void MlpLoptOptions::validate() const {
  L2O_CHECK(hidden_size() > 0, "mlp_lopt: hidden_size=", hidden_size(), " must be > 0");
  L2O_CHECK(hidden_layers() >= 0, "mlp_lopt: hidden_layers=", hidden_layers(), " must be >= 0");
  L2O_CHECK(std::isfinite(step_mult()) && step_mult() > 0, "mlp_lopt: step_mult=", step_mult(),
            " must be finite and > 0");
  L2O_CHECK(std::isfinite(exp_mult()) && exp_mult() >= 0, "mlp_lopt: exp_mult=", exp_mult(),
            " must be finite and >= 0");
  check_decays("momentum_decays", momentum_decays());
  check_decays("rms_decays", rms_decays());
  check_decays("adafactor_decays", adafactor_decays());
  // The features pair momentum k with second moment k and factored accumulator k (broadcasting).
  L2O_CHECK(adafactor_decays().size() == momentum_decays().size(), "mlp_lopt: adafactor_decays='",
            join_decays(adafactor_decays()), "' must have as many decays as momentum_decays='",
            join_decays(momentum_decays()), "'");
  L2O_CHECK(rms_decays().size() == 1 || rms_decays().size() == momentum_decays().size(), "mlp_lopt: rms_decays='",
            join_decays(rms_decays()), "' must have one decay or as many as momentum_decays='",
            join_decays(momentum_decays()), "'");
}

struct MlpLopt::TensorStep {
  torch::Tensor mom, rms, fac_row, fac_col, fac_v;  // the new state
  // What the per-coordinate features are made of, at the work shape S (plus a last dim of 1 or K),
  // the factored ones expanded to [S, K] as views: rows of dim 0 can be taken from each alike.
  torch::Tensor g1, p1, row_factor, col_factor, row, col;
  torch::Tensor time;  // [11] the time features of this step, built once for every chunk
  bool factored = false;
  torch::Tensor x;  // [numel, num_features()], normalised, with the time features (step_tensor only)
};

namespace {
// The unnormalised per-coordinate features of rows [r0, r0 + len) of the work shape's dim 0, as a
// [len·(numel / S[0]), num_features() − 11] matrix in the documented column order.
torch::Tensor raw_features(const MlpLopt::TensorStep& s, int64_t r0, int64_t len) {
  auto rows = [&](const torch::Tensor& t) { return t.narrow(0, r0, len); };
  const torch::Tensor g1 = rows(s.g1), mom = rows(s.mom), rms = rows(s.rms);
  const torch::Tensor rsqrt_v = torch::rsqrt(rms + 1e-6);
  std::vector<torch::Tensor> in = {g1, rows(s.p1), mom, rms, mom * rsqrt_v, rsqrt_v};
  if (s.factored) {
    // Adafactor's rank-1 estimate of 1/√v: rows relative to their mean, times columns.
    const torch::Tensor rf = rows(s.row_factor), cf = rows(s.col_factor), row = rows(s.row), col = rows(s.col);
    in.insert(in.end(), {g1 * rf * cf, row, col, torch::rsqrt(row + 1e-8), torch::rsqrt(col + 1e-8), mom * rf * cf});
  } else {
    // Unfactored: the full accumulator stands in for both the row and the column one (RMSProp).
    const torch::Tensor v = rows(s.fac_v);
    const torch::Tensor rsqrt_fv = torch::rsqrt(v + 1e-8);
    in.insert(in.end(), {g1 * torch::rsqrt(torch::clamp_min(v + 1e-9, 1e-9)), v, v, rsqrt_fv, rsqrt_fv,
                         mom * torch::pow(v + 1e-6, -0.5)});
  }
  const torch::Tensor x = torch::cat(in, -1);
  return x.reshape({x.numel() / x.size(-1), x.size(-1)});
}

// The features with the time features appended: [rows, num_features()].
torch::Tensor with_time(const torch::Tensor& x, const torch::Tensor& time) {
  return torch::cat({x, time.to(x.scalar_type()).unsqueeze(0).expand({x.size(0), time.size(0)})}, 1);
}

// Coordinates per chunk of the step without a graph: its temporaries ([chunk, 39] feature rows and
// the [chunk, 32] hidden layers, ~4 MB) stay in the caches instead of streaming [numel, 39] through memory.
constexpr int64_t kChunkCoordinates = 16384;
}  // namespace

MlpLopt::MlpLopt(MlpLoptOptions options) : options_(std::move(options)) {
  options_.validate();
  int64_t in = num_features();
  for (int64_t l = 0; l <= options_.hidden_layers(); ++l) {
    const int64_t out = l == options_.hidden_layers() ? 2 : options_.hidden_size();
    const std::string s = std::to_string(l);
    weights_.push_back(register_parameter("w" + s, truncated_normal(in, out, 1 / std::sqrt(static_cast<double>(in)))));
    biases_.push_back(register_parameter("b" + s, torch::zeros({out})));
    in = out;
  }
  auto count = [](const std::vector<double>& v) { return static_cast<int64_t>(v.size()); };
  momentum_offsets_ = register_parameter("momentum_decays", torch::zeros({count(options_.momentum_decays())}));
  rms_offsets_ = register_parameter("rms_decays", torch::zeros({count(options_.rms_decays())}));
  adafactor_offsets_ = register_parameter("adafactor_decays", torch::zeros({count(options_.adafactor_decays())}));
}

std::shared_ptr<MlpLopt> MlpLopt::from_spec(const Spec& spec) {
  MlpLoptOptions o;
  o.hidden_size(spec.get_int("hidden_size", o.hidden_size()))
      .hidden_layers(spec.get_int("hidden_layers", o.hidden_layers()))
      .step_mult(spec.get_double("step_mult", o.step_mult()))
      .exp_mult(spec.get_double("exp_mult", o.exp_mult()));
  for (const char* key : {"momentum_decays", "rms_decays", "adafactor_decays"}) {
    if (!spec.has(key)) continue;
    const auto decays = parse_decays(key, spec.get_string(key, ""));
    if (std::string(key) == "momentum_decays") o.momentum_decays(decays);
    if (std::string(key) == "rms_decays") o.rms_decays(decays);
    if (std::string(key) == "adafactor_decays") o.adafactor_decays(decays);
  }
  spec.check_all_used();
  return std::make_shared<MlpLopt>(o);
}

Spec MlpLopt::spec() const {
  Spec s("mlp_lopt");
  s.set("hidden_size", options_.hidden_size()).set("hidden_layers", options_.hidden_layers());
  s.set("step_mult", options_.step_mult()).set("exp_mult", options_.exp_mult());
  s.set("momentum_decays", join_decays(options_.momentum_decays()));
  s.set("rms_decays", join_decays(options_.rms_decays()));
  s.set("adafactor_decays", join_decays(options_.adafactor_decays()));
  return s;
}

int64_t MlpLopt::num_features() const {
  const auto km = static_cast<int64_t>(options_.momentum_decays().size());
  const auto kr = static_cast<int64_t>(options_.rms_decays().size());
  const auto kf = static_cast<int64_t>(options_.adafactor_decays().size());
  // g, θ, m, v, m/√v, 1/√v, fac_g, row, col, 1/√row, 1/√col, fac_m; then the time features.
  return 2 + km + kr + km + kr + 6 * kf + kNumTimeFeatures;
}

std::pair<int64_t, int64_t> MlpLopt::factored_dims(at::IntArrayRef shape) {
  const auto n = static_cast<int64_t>(shape.size());
  if (n < 2) return {-1, -1};
  // numpy's argsort on so few entries is an insertion sort, hence stable: on ties the later dim
  // counts as the larger one. Factor the two largest dims of the tensor as it is, no reshaping.
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return shape[a] < shape[b]; });
  return {order[static_cast<size_t>(n - 2)], order[static_cast<size_t>(n - 1)]};
}

optim::State MlpLopt::init(const TensorList& params) const {
  optim::State s;
  const auto km = static_cast<int64_t>(options_.momentum_decays().size());
  const auto kr = static_cast<int64_t>(options_.rms_decays().size());
  const auto kf = static_cast<int64_t>(options_.adafactor_decays().size());
  for (const auto& p : params) {
    const auto opts = p.options().requires_grad(false);
    const auto shape = work_shape(p);
    auto with = [&](std::vector<int64_t> dims, int64_t k) {
      dims.push_back(k);
      return torch::zeros(dims, opts);
    };
    s["mom"].push_back(with(shape, km));
    s["rms"].push_back(with(shape, kr));
    const auto [d1, d0] = factored_dims(shape);
    if (d1 >= 0) {
      auto without = [&](int64_t d) {
        auto dims = shape;
        dims.erase(dims.begin() + d);
        return with(dims, kf);
      };
      s["fac_row"].push_back(without(d0));
      s["fac_col"].push_back(without(d1));
      s["fac_v"].push_back(torch::zeros({0}, opts));
    } else {
      s["fac_row"].push_back(torch::zeros({0}, opts));
      s["fac_col"].push_back(torch::zeros({0}, opts));
      s["fac_v"].push_back(with(shape, kf));
    }
  }
  return s;
}

MlpLopt::TensorStep MlpLopt::state_step(const torch::Tensor& param, const torch::Tensor& grad,
                                        const optim::State& state, size_t index, int64_t step) const {
  const auto shape = work_shape(param);
  const torch::Tensor p = param.reshape(shape), g = grad.reshape(shape), g1 = g.unsqueeze(-1);
  // The reference clips the second-moment decays to [0, 1], not the momentum decays.
  const torch::Tensor bm = learned_decays(options_.momentum_decays(), momentum_offsets_);
  const torch::Tensor br = learned_decays(options_.rms_decays(), rms_offsets_).clamp(0, 1);
  const torch::Tensor bf = learned_decays(options_.adafactor_decays(), adafactor_offsets_).clamp(0, 1);

  TensorStep s;
  s.g1 = g1;
  s.p1 = p.unsqueeze(-1);
  s.mom = bm * state.at("mom")[index] + (1 - bm) * g1;
  s.rms = br * state.at("rms")[index] + (1 - br) * (g1 * g1);
  const torch::Tensor g_sq = g * g + 1e-30;
  const auto [d1, d0] = factored_dims(shape);
  s.factored = d1 >= 0;
  if (s.factored) {
    s.fac_row = bf * state.at("fac_row")[index] + (1 - bf) * g_sq.mean(d0).unsqueeze(-1);
    s.fac_col = bf * state.at("fac_col")[index] + (1 - bf) * g_sq.mean(d1).unsqueeze(-1);
    s.fac_v = state.at("fac_v")[index];
    const int64_t reduced_d1 = d1 > d0 ? d1 - 1 : d1;
    auto full = shape;
    full.push_back(bf.size(0));
    s.row_factor =
        torch::rsqrt(torch::clamp_min(s.fac_row / (s.fac_row.mean(reduced_d1, true) + 1e-9), 1e-9)).unsqueeze(d0).expand(full);
    s.col_factor = torch::rsqrt(torch::clamp_min(s.fac_col, 1e-9)).unsqueeze(d1).expand(full);
    s.row = s.fac_row.unsqueeze(d0).expand(full);
    s.col = s.fac_col.unsqueeze(d1).expand(full);
  } else {
    s.fac_row = state.at("fac_row")[index];
    s.fac_col = state.at("fac_col")[index];
    s.fac_v = bf * state.at("fac_v")[index] + (1 - bf) * g_sq.unsqueeze(-1);
  }
  std::vector<double> time(kNumTimeFeatures);
  for (int64_t k = 0; k < kNumTimeFeatures; ++k)
    time[static_cast<size_t>(k)] = std::tanh(static_cast<double>(step) / kTimescales[k] - 1.0);
  s.time = torch::tensor(time, torch::kDouble).to(g.scalar_type());
  return s;
}

MlpLopt::TensorStep MlpLopt::step_tensor(const torch::Tensor& param, const torch::Tensor& grad,
                                         const optim::State& state, size_t index, int64_t step) const {
  TensorStep s = state_step(param, grad, state, index, step);
  torch::Tensor x = raw_features(s, 0, s.g1.size(0));
  x = x * torch::rsqrt(x.pow(2).mean(0, true) + 1e-5);
  s.x = with_time(x, s.time);
  return s;
}

torch::Tensor MlpLopt::step_of(const torch::Tensor& x) const {
  torch::Tensor h = x.to(weights_[0].scalar_type());
  for (size_t l = 0; l < weights_.size(); ++l) {
    h = torch::addmm(biases_[l], h, weights_[l]);
    if (l + 1 < weights_.size()) h = torch::relu(h);
  }
  const torch::Tensor direction = h.select(1, 0), magnitude = h.select(1, 1);
  return direction * torch::exp(magnitude * options_.exp_mult()) * options_.step_mult();
}

// Without a graph, tensor by tensor in chunks of rows of dim 0: a first pass for the features'
// second moments (the per-tensor normalisation), a second for the normalised features, the MLP and
// the step. The same ops as update()'s graph path on fewer rows at a time.
torch::Tensor MlpLopt::chunked_step(const TensorStep& s) const {
  const int64_t rows = s.g1.size(0);
  if (s.g1.numel() == 0) return step_of(with_time(raw_features(s, 0, rows), s.time));
  const int64_t per_row = s.g1.numel() / rows;
  const int64_t len = std::max<int64_t>(kChunkCoordinates / per_row, 1);
  torch::Tensor sumsq;
  for (int64_t r0 = 0; r0 < rows; r0 += len) {
    const torch::Tensor part = raw_features(s, r0, std::min(len, rows - r0)).pow(2).sum(0, true);
    sumsq = sumsq.defined() ? sumsq + part : part;
  }
  const torch::Tensor scale = torch::rsqrt(sumsq / static_cast<double>(s.g1.numel()) + 1e-5);
  std::vector<torch::Tensor> steps;
  for (int64_t r0 = 0; r0 < rows; r0 += len)
    steps.push_back(step_of(with_time(raw_features(s, r0, std::min(len, rows - r0)) * scale, s.time)));
  return steps.size() == 1 ? steps[0] : torch::cat(steps);
}

torch::Tensor MlpLopt::features(const TensorList& params, const TensorList& grads, const optim::State& state,
                                size_t index) const {
  L2O_CHECK(index < params.size(), "mlp_lopt: features of tensor ", index, " asked, but there are ", params.size());
  return step_tensor(params[index], grads[index], state, index, state.step).x;
}

optim::UpdateResult MlpLopt::update(const TensorList& params, const TensorList& grads,
                                    const optim::State& state) const {
  L2O_CHECK(params.size() == grads.size(), "mlp_lopt: ", params.size(), " parameter tensors but ", grads.size(),
            " gradients");
  optim::UpdateResult r;
  r.state.step = state.step + 1;
  auto keep_state = [&](const TensorStep& s) {
    r.state["mom"].push_back(s.mom);
    r.state["rms"].push_back(s.rms);
    r.state["fac_row"].push_back(s.fac_row);
    r.state["fac_col"].push_back(s.fac_col);
    r.state["fac_v"].push_back(s.fac_v);
  };
  auto apply = [&](size_t i, const torch::Tensor& step) {
    r.steps.push_back(-step.to(params[i].scalar_type()).reshape(params[i].sizes()));
    r.params.push_back(params[i] + r.steps.back());
  };
  if (!torch::GradMode::is_enabled()) {
    for (size_t i = 0; i < params.size(); ++i) {
      const TensorStep s = state_step(params[i], grads[i], state, i, state.step);
      keep_state(s);
      apply(i, chunked_step(s));
    }
    return r;
  }
  TensorList xs;
  std::vector<int64_t> sizes;
  for (size_t i = 0; i < params.size(); ++i) {
    TensorStep s = step_tensor(params[i], grads[i], state, i, state.step);
    keep_state(s);
    xs.push_back(s.x);
    sizes.push_back(s.x.size(0));
  }
  // One MLP call for every coordinate of every tensor: the normalisation above was per tensor.
  const auto pieces = step_of(cat_rows(xs)).split_with_sizes(sizes, 0);
  for (size_t i = 0; i < params.size(); ++i) apply(i, pieces[i]);
  return r;
}

}  // namespace learned
}  // namespace l2o
