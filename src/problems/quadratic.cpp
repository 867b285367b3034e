#include <l2o/core/error.h>
#include <l2o/problems/quadratic.h>

#include <torch/torch.h>

namespace l2o {
namespace problems {

DmQuadratic::DmQuadratic(int64_t batch, int64_t dim, double stddev, at::Generator& gen)
    : batch_(batch), dim_(dim), stddev_(stddev) {
  L2O_CHECK(batch > 0, "dm_quadratic: batch=", batch, " must be > 0");
  L2O_CHECK(dim > 0, "dm_quadratic: dim=", dim, " must be > 0");
  L2O_CHECK(stddev >= 0, "dm_quadratic: stddev=", stddev, " must be >= 0");
  w_ = torch::randn({batch, dim, dim}, gen);
  y_ = torch::randn({batch, dim}, gen);
}

ProblemPtr DmQuadratic::from_spec(const Spec& spec, at::Generator& gen) {
  const int64_t batch = spec.get_int("batch", 128), dim = spec.get_int("dim", 10);
  const double stddev = spec.get_double("stddev", 0.0);
  spec.check_all_used();
  return std::make_shared<DmQuadratic>(batch, dim, stddev, gen);
}

std::string DmQuadratic::name() const {
  Spec s("dm_quadratic");
  s.set("batch", batch_).set("dim", dim_).set("stddev", stddev_);
  return s.str();
}

TensorList DmQuadratic::init_params(at::Generator& gen) const {
  if (stddev_ == 0) return {torch::zeros({batch_, dim_})};
  return {torch::randn({batch_, dim_}, gen) * stddev_};
}

torch::Tensor DmQuadratic::loss(const TensorList& params, const Batch&) const {
  const auto& theta = params.at(0);
  const auto w = w_.to(theta.dtype()), y = y_.to(theta.dtype());
  const auto residual = torch::bmm(w, theta.unsqueeze(2)).squeeze(2) - y;
  return residual.pow(2).sum(1).mean();
}

TensorList DmQuadratic::optimum_params() const {
  const auto w = w_.to(torch::kDouble), y = y_.to(torch::kDouble).unsqueeze(2);
  return {std::get<0>(torch::linalg_lstsq(w, y)).squeeze(2).to(torch::kFloat)};
}

std::optional<double> DmQuadratic::optimum_value() const {
  const auto w = w_.to(torch::kDouble), y = y_.to(torch::kDouble);
  const auto x = std::get<0>(torch::linalg_lstsq(w, y.unsqueeze(2)));
  return (torch::bmm(w, x).squeeze(2) - y).pow(2).sum(1).mean().item<double>();
}

IsotropicQuadratic::IsotropicQuadratic(int64_t dim, at::Generator& gen) : dim_(dim) {
  L2O_CHECK(dim > 0, "isotropic_quadratic: dim=", dim, " must be > 0");
  center_ = torch::randn({dim}, gen);
}

ProblemPtr IsotropicQuadratic::from_spec(const Spec& spec, at::Generator& gen) {
  const int64_t dim = spec.get_int("dim", 10);
  spec.check_all_used();
  return std::make_shared<IsotropicQuadratic>(dim, gen);
}

std::string IsotropicQuadratic::name() const { return Spec("isotropic_quadratic").set("dim", dim_).str(); }

TensorList IsotropicQuadratic::init_params(at::Generator& gen) const { return {torch::randn({dim_}, gen)}; }

torch::Tensor IsotropicQuadratic::loss(const TensorList& params, const Batch&) const {
  return 0.5 * (params.at(0) - center_.to(params.at(0).dtype())).pow(2).sum();
}

Rosenbrock::Rosenbrock(double low, double high) : low_(low), high_(high) {
  L2O_CHECK(low < high, "rosenbrock: low=", low, " must be < high=", high);
}

ProblemPtr Rosenbrock::from_spec(const Spec& spec, at::Generator&) {
  const double low = spec.get_double("low", -2), high = spec.get_double("high", 2);
  spec.check_all_used();
  return std::make_shared<Rosenbrock>(low, high);
}

std::string Rosenbrock::name() const {
  // The bare name for the default box keeps the names of existing runs and checkpoints unchanged.
  if (low_ == -2 && high_ == 2) return "rosenbrock";
  return Spec("rosenbrock").set("low", low_).set("high", high_).str();
}

TensorList Rosenbrock::init_params(at::Generator& gen) const {
  return {torch::empty({2}).uniform_(low_, high_, gen)};
}

torch::Tensor Rosenbrock::loss(const TensorList& params, const Batch&) const {
  const auto& p = params.at(0);
  const auto x = p[0], y = p[1];
  return (1 - x).pow(2) + 100 * (y - x * x).pow(2);
}

TensorList Rosenbrock::optimum_params() const { return {torch::ones({2})}; }

}  // namespace problems
}  // namespace l2o
