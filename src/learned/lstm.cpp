#include <l2o/core/error.h>
#include <l2o/learned/lstm.h>

#include <torch/torch.h>

#include <cmath>
#include <limits>

namespace l2o {
namespace learned {

void LstmOptions::validate() const {
  L2O_CHECK(hidden_size() > 0, "lstm: hidden_size=", hidden_size(), " must be > 0");
  L2O_CHECK(num_layers() > 0, "lstm: num_layers=", num_layers(), " must be > 0");
  L2O_CHECK(preprocess() == "none" || preprocess() == "logsign",
            "lstm: preprocess='", preprocess(), "' is not one of none, logsign");
  L2O_CHECK(k() > 0, "lstm: k=", k(), " must be > 0");
  L2O_CHECK(output_scale() > 0, "lstm: output_scale=", output_scale(), " must be > 0");
}

torch::Tensor log_and_sign(const torch::Tensor& g, double k) {
  const double eps = std::numeric_limits<float>::epsilon();
  const auto log_part = torch::clamp(torch::log(g.abs() + eps) / k, -1.0, 1.0);
  const auto sign_part = torch::clamp(g * std::exp(k), -1.0, 1.0);
  return torch::stack({log_part, sign_part}, -1);
}

CoordinatewiseLstm::CoordinatewiseLstm(LstmOptions options) : options_(std::move(options)) {
  options_.validate();
  const int64_t h = options_.hidden_size();
  const int64_t in = options_.preprocess() == "logsign" ? 2 : 1;
  // LibTorch's nn::LSTM initialisation: U(−1/√H, 1/√H) for every weight and bias.
  const double bound = 1.0 / std::sqrt(static_cast<double>(h));
  auto uniform = [&](std::vector<int64_t> shape) { return torch::empty(shape).uniform_(-bound, bound); };
  for (int64_t l = 0; l < options_.num_layers(); ++l) {
    const std::string s = std::to_string(l);
    w_ih_.push_back(register_parameter("w_ih" + s, uniform({4 * h, l == 0 ? in : h})));
    w_hh_.push_back(register_parameter("w_hh" + s, uniform({4 * h, h})));
    b_ih_.push_back(register_parameter("b_ih" + s, uniform({4 * h})));
    b_hh_.push_back(register_parameter("b_hh" + s, uniform({4 * h})));
  }
  w_out_ = register_parameter("w_out", uniform({1, h}));
  b_out_ = register_parameter("b_out", uniform({1}));
}

std::shared_ptr<CoordinatewiseLstm> CoordinatewiseLstm::from_spec(const Spec& spec) {
  LstmOptions o;
  o.hidden_size(spec.get_int("hidden_size", o.hidden_size()))
      .num_layers(spec.get_int("num_layers", o.num_layers()))
      .preprocess(spec.get_string("preprocess", o.preprocess()))
      .k(spec.get_double("k", o.k()))
      .output_scale(spec.get_double("output_scale", o.output_scale()));
  spec.check_all_used();
  return std::make_shared<CoordinatewiseLstm>(o);
}

Spec CoordinatewiseLstm::spec() const {
  Spec s("lstm");
  s.set("hidden_size", options_.hidden_size()).set("num_layers", options_.num_layers());
  s.set("preprocess", options_.preprocess()).set("k", options_.k()).set("output_scale", options_.output_scale());
  return s;
}

optim::State CoordinatewiseLstm::init(const TensorList& params) const {
  optim::State s;
  for (int64_t l = 0; l < options_.num_layers(); ++l) {
    for (const auto& p : params) {
      const auto z = torch::zeros({p.numel(), options_.hidden_size()}, p.options().requires_grad(false));
      s["h" + std::to_string(l)].push_back(z);
      s["c" + std::to_string(l)].push_back(z);
    }
  }
  return s;
}

optim::UpdateResult CoordinatewiseLstm::update(const TensorList& params, const TensorList& grads,
                                               const optim::State& state) const {
  // All coordinates of all tensors form one batch: one LSTM pass per step whatever the layout of θ.
  const Flattened flat = flatten(grads);
  const torch::Tensor& g = flat.values;
  const std::vector<int64_t>& sizes = flat.sizes;
  torch::Tensor x = options_.preprocess() == "logsign" ? log_and_sign(g, options_.k()) : g.unsqueeze(1);

  optim::UpdateResult r;
  r.state.step = state.step + 1;
  for (int64_t l = 0; l < options_.num_layers(); ++l) {
    const std::string hs = "h" + std::to_string(l), cs = "c" + std::to_string(l);
    auto hc = at::lstm_cell(x, {cat_rows(state.at(hs)), cat_rows(state.at(cs))}, w_ih_[l], w_hh_[l], b_ih_[l], b_hh_[l]);
    x = std::get<0>(hc);
    r.state[hs] = std::get<0>(hc).split_with_sizes(sizes, 0);
    r.state[cs] = std::get<1>(hc).split_with_sizes(sizes, 0);
  }
  const torch::Tensor out = torch::addmm(b_out_, x, w_out_.t()).squeeze(1) * options_.output_scale();
  const auto pieces = out.split_with_sizes(sizes, 0);
  for (size_t i = 0; i < params.size(); ++i) {
    r.steps.push_back(pieces[i].view_as(params[i]));
    r.params.push_back(params[i] + r.steps.back());
  }
  return r;
}

}  // namespace learned
}  // namespace l2o
