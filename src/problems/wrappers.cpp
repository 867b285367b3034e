#include <l2o/core/error.h>
#include <l2o/core/rng.h>
#include <l2o/problems/registry.h>
#include <l2o/problems/wrappers.h>

#include <torch/torch.h>

#include <cmath>

namespace l2o {
namespace problems {

namespace {
ProblemPtr make_inner(const std::string& wrapper, const Spec& spec, at::Generator& gen) {
  const std::string of = spec.get_string("of", "");
  L2O_CHECK(!of.empty(), wrapper, ": missing of=<problem> (e.g. ", wrapper, ":of=quadratic/dim=10)");
  return make_problem(expand_inline_spec(of), gen);
}
}  // namespace

ProblemWrapper::ProblemWrapper(ProblemPtr inner) : inner_(std::move(inner)) {
  L2O_CHECK(inner_ != nullptr, "internal: wrapping a null problem");
}

// ---------------------------------------------------------------------------------------------
GradientNoise::GradientNoise(ProblemPtr inner, double stddev) : ProblemWrapper(std::move(inner)), stddev_(stddev) {
  L2O_CHECK(stddev >= 0 && std::isfinite(stddev), "noise=", stddev, " must be a finite number >= 0");
}

std::string GradientNoise::name() const { return Spec::parse(inner_->name()).set("noise", stddev_).str(); }

TensorList GradientNoise::perturb_gradients(TensorList grads, at::Generator& gen) const {
  grads = inner_->perturb_gradients(std::move(grads), gen);
  for (auto& g : grads) g = g + stddev_ * torch::randn(g.sizes(), gen, g.options());
  return grads;
}

// ---------------------------------------------------------------------------------------------
Rescale::Rescale(ProblemPtr inner, double scale) : ProblemWrapper(std::move(inner)), scale_(scale) {
  L2O_CHECK(scale != 0 && std::isfinite(scale), "rescale: scale=", scale, " must be finite and non-zero");
}

ProblemPtr Rescale::from_spec(const Spec& spec, at::Generator& gen) {
  const double scale = spec.get_double("scale", 10.0);
  auto inner = make_inner("rescale", spec, gen);
  spec.check_all_used();
  return std::make_shared<Rescale>(std::move(inner), scale);
}

std::string Rescale::name() const {
  return Spec("rescale").set("scale", scale_).set("of", to_inline_spec(inner_->name())).str();
}

TensorList Rescale::unscale(const TensorList& params) const {
  TensorList out;
  for (const auto& p : params) out.push_back(p / scale_);
  return out;
}

TensorList Rescale::init_params(at::Generator& gen) const {
  TensorList out = inner_->init_params(gen);
  for (auto& p : out) p = p * scale_;
  return out;
}

torch::Tensor Rescale::loss(const TensorList& params, const Batch& batch) const {
  return inner_->loss(unscale(params), batch);
}

double Rescale::accuracy(const TensorList& params, const Batch& batch) const {
  return inner_->accuracy(unscale(params), batch);
}

TensorList Rescale::optimum_params() const {
  TensorList out = inner_->optimum_params();
  for (auto& p : out) p = p * scale_;
  return out;
}

// ---------------------------------------------------------------------------------------------
Reparam::Reparam(ProblemPtr inner, double min_scale, double max_scale, Per per, at::Generator& gen)
    : ProblemWrapper(std::move(inner)), min_(min_scale), max_(max_scale), per_(per) {
  L2O_CHECK(min_scale > 0 && std::isfinite(max_scale) && min_scale <= max_scale, "reparam: min=", min_scale,
            ", max=", max_scale, " must satisfy 0 < min <= max < inf");
  at::Generator shapes_gen = gen.clone();
  const TensorList shapes = inner_->init_params(shapes_gen);
  const double log_min = std::log(min_scale), log_max = std::log(max_scale);
  for (const auto& p : shapes) {
    const auto u = per == Per::kTensor ? torch::rand({}, gen, torch::kDouble)
                                       : torch::rand(p.sizes(), gen, torch::kDouble);
    scales_.push_back(torch::exp(log_min + u * (log_max - log_min)).to(p.scalar_type()));
  }
}

ProblemPtr Reparam::from_spec(const Spec& spec, at::Generator& gen) {
  const double min_scale = spec.get_double("min", 1e-3), max_scale = spec.get_double("max", 1e3);
  const std::string per = spec.get_string("per", "tensor");
  L2O_CHECK(per == "tensor" || per == "coordinate", "reparam: per='", per, "' is not one of tensor, coordinate");
  auto inner = make_inner("reparam", spec, gen);
  spec.check_all_used();
  return std::make_shared<Reparam>(std::move(inner), min_scale, max_scale,
                                   per == "tensor" ? Per::kTensor : Per::kCoordinate, gen);
}

std::string Reparam::name() const {
  return Spec("reparam")
      .set("min", min_)
      .set("max", max_)
      .set("per", std::string(per_ == Per::kTensor ? "tensor" : "coordinate"))
      .set("of", to_inline_spec(inner_->name()))
      .str();
}

TensorList Reparam::scaled(const TensorList& params) const {
  L2O_CHECK(params.size() == scales_.size(), "reparam: ", params.size(), " parameter tensors, expected ",
            scales_.size());
  TensorList out;
  for (size_t i = 0; i < params.size(); ++i) out.push_back(params[i] * scales_[i].to(params[i].scalar_type()));
  return out;
}

TensorList Reparam::init_params(at::Generator& gen) const {
  TensorList out = inner_->init_params(gen);
  for (size_t i = 0; i < out.size(); ++i) out[i] = out[i] / scales_[i].to(out[i].scalar_type());
  return out;
}

torch::Tensor Reparam::loss(const TensorList& params, const Batch& batch) const {
  return inner_->loss(scaled(params), batch);
}

double Reparam::accuracy(const TensorList& params, const Batch& batch) const {
  return inner_->accuracy(scaled(params), batch);
}

TensorList Reparam::optimum_params() const {
  TensorList out = inner_->optimum_params();
  for (size_t i = 0; i < out.size(); ++i) out[i] = out[i] / scales_[i].to(out[i].scalar_type());
  return out;
}

// ---------------------------------------------------------------------------------------------
namespace {
constexpr double kLogEpsilon = 1e-6;
}

LogObjective::LogObjective(ProblemPtr inner) : ProblemWrapper(std::move(inner)) {}

ProblemPtr LogObjective::from_spec(const Spec& spec, at::Generator& gen) {
  auto inner = make_inner("log_objective", spec, gen);
  spec.check_all_used();
  return std::make_shared<LogObjective>(std::move(inner));
}

std::string LogObjective::name() const { return Spec("log_objective").set("of", to_inline_spec(inner_->name())).str(); }

torch::Tensor LogObjective::loss(const TensorList& params, const Batch& batch) const {
  return torch::log(inner_->loss(params, batch) + kLogEpsilon) - std::log(kLogEpsilon);
}

std::optional<double> LogObjective::optimum_value() const {
  const auto v = inner_->optimum_value();
  if (!v) return std::nullopt;
  return std::log(*v + kLogEpsilon) - std::log(kLogEpsilon);
}

// ---------------------------------------------------------------------------------------------
SparseGradient::SparseGradient(ProblemPtr inner, double prob, double noise)
    : ProblemWrapper(std::move(inner)), prob_(prob), noise_(noise) {
  L2O_CHECK(prob >= 0 && prob <= 1, "sparse: prob=", prob, " must lie in [0, 1]");
  L2O_CHECK(noise >= 0 && std::isfinite(noise), "sparse: noise=", noise, " must be a finite number >= 0");
}

ProblemPtr SparseGradient::from_spec(const Spec& spec, at::Generator& gen) {
  const double prob = spec.get_double("prob", 0.99), noise = spec.get_double("noise", 0.0);
  auto inner = make_inner("sparse", spec, gen);
  spec.check_all_used();
  return std::make_shared<SparseGradient>(std::move(inner), prob, noise);
}

std::string SparseGradient::name() const {
  Spec s("sparse");
  s.set("prob", prob_).set("of", to_inline_spec(inner_->name()));
  if (noise_ > 0) s.set("noise", noise_);
  return s.str();
}

TensorList SparseGradient::perturb_gradients(TensorList grads, at::Generator& gen) const {
  grads = inner_->perturb_gradients(std::move(grads), gen);
  for (auto& g : grads) {
    if (noise_ > 0) g = g + noise_ * torch::randn(g.sizes(), gen, g.options());
    const auto keep = torch::rand(g.sizes(), gen, g.options()) >= prob_;
    g = g * keep.to(g.dtype());
  }
  return grads;
}

// ---------------------------------------------------------------------------------------------
SumTask::SumTask(std::vector<ProblemPtr> parts) : parts_(std::move(parts)) {
  L2O_CHECK(!parts_.empty(), "sum: needs at least one part (of=a+b+...)");
  offsets_.push_back(0);
  for (const auto& p : parts_) {
    L2O_CHECK(p->objective_batch().empty(), "sum: part '", p->name(),
              "' reads data; only data-free problems can be summed");
    // Counting a part's tensors needs one draw of its θ₀; a private generator keeps the caller's
    // stream untouched.
    auto counter = make_generator(0);
    offsets_.push_back(offsets_.back() + p->init_params(counter).size());
  }
}

ProblemPtr SumTask::from_spec(const Spec& spec, at::Generator& gen) {
  const std::string of = spec.get_string("of", "");
  L2O_CHECK(!of.empty(), "sum: missing of=<problem>+<problem>+... (e.g. sum:of=quadratic/dim=3+booth)");
  spec.check_all_used();
  std::vector<ProblemPtr> parts;
  for (const auto& part : split_inline_list(of)) parts.push_back(make_problem(expand_inline_spec(part), gen));
  return std::make_shared<SumTask>(std::move(parts));
}

std::string SumTask::name() const {
  std::string of;
  for (const auto& p : parts_) of += (of.empty() ? "" : "+") + to_inline_spec(p->name());
  return Spec("sum").set("of", of).str();
}

TensorList SumTask::slice(const TensorList& params, size_t part) const {
  L2O_CHECK(params.size() == offsets_.back(), "sum: expected ", offsets_.back(), " parameter tensors, got ",
            params.size());
  return TensorList(params.begin() + offsets_[part], params.begin() + offsets_[part + 1]);
}

TensorList SumTask::init_params(at::Generator& gen) const {
  TensorList out;
  for (const auto& p : parts_) {
    auto part = p->init_params(gen);
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

torch::Tensor SumTask::loss(const TensorList& params, const Batch&) const {
  torch::Tensor total;
  for (size_t k = 0; k < parts_.size(); ++k) {
    const auto f = parts_[k]->loss(slice(params, k), {});
    total = total.defined() ? total + f : f;
  }
  return total;
}

TensorList SumTask::perturb_gradients(TensorList grads, at::Generator& gen) const {
  TensorList out;
  for (size_t k = 0; k < parts_.size(); ++k) {
    auto part = parts_[k]->perturb_gradients(slice(grads, k), gen);
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

bool SumTask::deterministic() const {
  for (const auto& p : parts_)
    if (!p->deterministic()) return false;
  return true;
}

std::optional<double> SumTask::optimum_value() const {
  double total = 0;
  for (const auto& p : parts_) {
    const auto v = p->optimum_value();
    if (!v) return std::nullopt;
    total += *v;
  }
  return total;
}

TensorList SumTask::optimum_params() const {
  TensorList out;
  for (const auto& p : parts_) {
    auto part = p->optimum_params();
    if (part.empty()) return {};
    out.insert(out.end(), part.begin(), part.end());
  }
  return out;
}

}  // namespace problems
}  // namespace l2o
