#include <l2o/core/error.h>
#include <l2o/data/synthetic.h>
#include <l2o/problems/zoo.h>

#include <torch/torch.h>

#include <cmath>
#include <vector>

namespace l2o {
namespace problems {

namespace {

constexpr double kPi = 3.14159265358979323846;

int64_t positive_dim(const std::string& problem, const Spec& spec, int64_t fallback, const std::string& key = "dim") {
  const int64_t v = spec.get_int(key, fallback);
  L2O_CHECK(v > 0, problem, ": ", key, "=", v, " must be > 0");
  return v;
}

// Least-squares solution of W x = y in float64 (exact for the square, almost surely invertible W).
torch::Tensor solve_least_squares(const torch::Tensor& w, const torch::Tensor& y) {
  return std::get<0>(torch::linalg_lstsq(w.to(torch::kDouble), y.to(torch::kDouble)));
}

// The given keys of `spec` plus the problem's effective values: the name of a data problem, so that
// make_problem(name()) reproduces its distribution even when defaults change.
Spec canonical(const Spec& spec) {
  Spec out(spec.name());
  for (const auto& kv : spec.values()) out.set(kv.first, kv.second);
  return out;
}

// Draws the `dataset` rows of a data problem: `features` = the problem's dim, and the data keys of
// the problem spec (samples, test_samples, seed) passed through.
data::DataSplits draw_data(const std::string& dataset, const Spec& spec, int64_t dim, at::Generator& gen) {
  Spec ds(dataset);
  ds.set("features", dim);
  for (const char* key : {"samples", "test_samples", "seed"})
    if (spec.has(key)) ds.set(key, spec.get_string(key, ""));
  return data::make_synthetic(dataset, ds, gen);
}

int64_t read_batch(const std::string& problem, const Spec& spec, int64_t fallback) {
  const int64_t batch = spec.get_int("batch", fallback);
  L2O_CHECK(batch >= 0, problem, ": batch=", batch, " must be >= 0 (0 = full batch)");
  return batch;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
Quadratic::Quadratic(int64_t dim, at::Generator& gen) : dim_(dim) {
  L2O_CHECK(dim > 0, "quadratic: dim=", dim, " must be > 0");
  w_ = torch::randn({dim, dim}, gen);
  y_ = torch::randn({dim, 1}, gen);
}

ProblemPtr Quadratic::from_spec(const Spec& spec, at::Generator& gen) {
  const int64_t dim = spec.get_int("dim", 10);
  spec.check_all_used();
  return std::make_shared<Quadratic>(dim, gen);
}

std::string Quadratic::name() const { return Spec("quadratic").set("dim", dim_).str(); }

TensorList Quadratic::init_params(at::Generator& gen) const { return {torch::randn({dim_, 1}, gen)}; }

torch::Tensor Quadratic::loss(const TensorList& params, const Batch&) const {
  const auto& x = params.at(0);
  return 0.5 * (w_.to(x.dtype()).matmul(x) - y_.to(x.dtype())).pow(2).sum();
}

std::optional<double> Quadratic::optimum_value() const {
  const auto x = solve_least_squares(w_, y_);
  return 0.5 * (w_.to(torch::kDouble).matmul(x) - y_.to(torch::kDouble)).pow(2).sum().item<double>();
}

TensorList Quadratic::optimum_params() const { return {solve_least_squares(w_, y_).to(torch::kFloat)}; }

// ---------------------------------------------------------------------------------------------
Bowl::Bowl(double cond, double angle) : cond_(cond), angle_(angle) {
  L2O_CHECK(cond > 0, "bowl: cond=", cond, " must be > 0");
  const auto sqrt_hessian = torch::tensor({std::sqrt(cond), 0.0, 0.0, 1.0}, torch::kDouble).view({2, 2});
  const double c = std::cos(angle), s = std::sin(angle);
  const auto rotation = torch::tensor({c, -s, s, c}, torch::kDouble).view({2, 2});
  matrix_ = sqrt_hessian.matmul(rotation).to(torch::kFloat);
}

ProblemPtr Bowl::from_spec(const Spec& spec, at::Generator&) {
  const double cond = spec.get_double("cond", 1.0), angle = spec.get_double("angle", 0.0);
  spec.check_all_used();
  return std::make_shared<Bowl>(cond, angle);
}

std::string Bowl::name() const { return Spec("bowl").set("cond", cond_).set("angle", angle_).str(); }

TensorList Bowl::init_params(at::Generator& gen) const { return {torch::randn({2, 1}, gen)}; }

torch::Tensor Bowl::loss(const TensorList& params, const Batch&) const {
  const auto& x = params.at(0);
  return 0.5 * matrix_.to(x.dtype()).matmul(x).pow(2).sum();
}

TensorList Bowl::optimum_params() const { return {torch::zeros({2, 1})}; }

// ---------------------------------------------------------------------------------------------
namespace {
struct TestFunctionInfo {
  TestFunction2D::Kind kind;
  const char* name;
  // Initial box [x_lo, x_hi] × [y_lo, y_hi]; x_lo == x_hi == 0 means N(0,1) (the reference default).
  double x_lo, x_hi, y_lo, y_hi;
};

const std::vector<TestFunctionInfo>& test_functions() {
  using K = TestFunction2D::Kind;
  static const std::vector<TestFunctionInfo> table = {
      {K::kAckley, "ackley", -32.768, 32.768, -32.768, 32.768},
      {K::kBeale, "beale", -4.5, 4.5, -4.5, 4.5},
      {K::kBooth, "booth", -10, 10, -10, 10},
      {K::kBranin, "branin", -5, 10, 0, 15},
      {K::kLogSumExp, "log_sum_exp", 0, 0, 0, 0},
      {K::kMatyas, "matyas", -10, 10, -10, 10},
      {K::kMichalewicz, "michalewicz", 0, kPi, 0, kPi},
      {K::kStyblinskiTang, "styblinski_tang", -5, 5, -5, 5},
      {K::kSaddle, "saddle", 0, 0, 0, 0},
  };
  return table;
}

const TestFunctionInfo& info(TestFunction2D::Kind kind) {
  for (const auto& i : test_functions())
    if (i.kind == kind) return i;
  L2O_FAIL("internal: unlisted 2-D test function");
}

// The minimiser of ½(x⁴ − 16x² + 5x): the root of 4x³ − 32x + 5 near −2.9 (Newton in float64).
double styblinski_tang_argmin() {
  double x = -2.9;
  for (int i = 0; i < 50; ++i) x -= (4 * x * x * x - 32 * x + 5) / (12 * x * x - 32);
  return x;
}
}  // namespace

bool TestFunction2D::parse_kind(const std::string& name, Kind* kind) {
  for (const auto& i : test_functions()) {
    if (name != i.name) continue;
    *kind = i.kind;
    return true;
  }
  return false;
}

ProblemPtr TestFunction2D::from_spec(const Spec& spec, at::Generator&) {
  Kind kind;
  L2O_CHECK(parse_kind(spec.name(), &kind), "'", spec.name(), "' is not a 2-D test function");
  spec.check_all_used();
  return std::make_shared<TestFunction2D>(kind);
}

std::string TestFunction2D::name() const { return info(kind_).name; }

TensorList TestFunction2D::init_params(at::Generator& gen) const {
  const auto& i = info(kind_);
  if (i.x_lo == i.x_hi) return {torch::randn({2}, gen)};
  auto x = torch::empty({2});
  x[0].uniform_(i.x_lo, i.x_hi, gen);
  x[1].uniform_(i.y_lo, i.y_hi, gen);
  return {x};
}

torch::Tensor TestFunction2D::loss(const TensorList& params, const Batch&) const {
  const auto& p = params.at(0);
  const auto x = p[0], y = p[1];
  switch (kind_) {
    case Kind::kAckley:
      return -20 * torch::exp(-0.2 * torch::sqrt(0.5 * (x * x + y * y))) -
             torch::exp(0.5 * (torch::cos(2 * kPi * x) + torch::cos(2 * kPi * y))) + std::exp(1.0) + 20;
    case Kind::kBeale:
      return (1.5 - x + x * y).pow(2) + (2.25 - x + x * y.pow(2)).pow(2) + (2.625 - x + x * y.pow(3)).pow(2);
    case Kind::kBooth:
      return (x + 2 * y - 7).pow(2) + (2 * x + y - 5).pow(2);
    case Kind::kBranin: {
      const double b = 5.1 / (4 * kPi * kPi), c = 5 / kPi, r = 6, s = 10, t = 1 / (8 * kPi);
      return (y - b * x * x + c * x - r).pow(2) + s * (1 - t) * torch::cos(x) + s;
    }
    case Kind::kLogSumExp:
      return torch::log(torch::exp(x + 3 * y - 0.1) + torch::exp(x - 3 * y - 0.1) + torch::exp(-x - 0.1) + 1.0);
    case Kind::kMatyas:
      return 0.26 * (x * x + y * y) - 0.48 * x * y;
    case Kind::kMichalewicz: {
      const int m = 5;
      return 2 - (torch::sin(x) * torch::sin(x * x / kPi).pow(2 * m) +
                  torch::sin(y) * torch::sin(2 * y * y / kPi).pow(2 * m));
    }
    case Kind::kStyblinskiTang:
      return 0.5 * (p.pow(4) - 16 * p.pow(2) + 5 * p).sum() + 80;
    case Kind::kSaddle:
      return x * x - y * y;
  }
  L2O_FAIL("internal: unhandled 2-D test function");
}

std::optional<double> TestFunction2D::optimum_value() const {
  switch (kind_) {
    case Kind::kAckley:
    case Kind::kBeale:
    case Kind::kBooth:
    case Kind::kMatyas:
      return 0.0;
    case Kind::kBranin:
      return 5 / (4 * kPi);
    case Kind::kLogSumExp:
      return std::log(1 + 2 * std::sqrt(2.0) * std::exp(-0.1));
    case Kind::kStyblinskiTang: {
      const double x = styblinski_tang_argmin();
      return (x * x * x * x - 16 * x * x + 5 * x) + 80;  // ½ · 2 coordinates
    }
    case Kind::kMichalewicz:
    case Kind::kSaddle:
      return std::nullopt;
  }
  return std::nullopt;
}

TensorList TestFunction2D::optimum_params() const {
  switch (kind_) {
    case Kind::kAckley:
    case Kind::kMatyas:
      return {torch::zeros({2})};
    case Kind::kBeale:
      return {torch::tensor({3.0f, 0.5f})};
    case Kind::kBooth:
      return {torch::tensor({1.0f, 3.0f})};
    case Kind::kBranin:
      return {torch::tensor({static_cast<float>(kPi), 2.275f})};
    case Kind::kLogSumExp:
      return {torch::tensor({static_cast<float>(-std::log(2.0) / 2), 0.0f})};
    case Kind::kStyblinskiTang:
      return {torch::full({2}, styblinski_tang_argmin())};
    case Kind::kMichalewicz:
    case Kind::kSaddle:
      return {};
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
Norm::Norm(int64_t dim, double p, at::Generator& gen) : dim_(dim), p_(p) {
  L2O_CHECK(dim > 0, "norm: dim=", dim, " must be > 0");
  // The reference notes that p < 1 gives NaN gradients early in training.
  L2O_CHECK(p >= 1, "norm: p=", p, " must be >= 1");
  w_ = torch::randn({dim, dim}, gen);
  y_ = torch::randn({dim, 1}, gen);
}

ProblemPtr Norm::from_spec(const Spec& spec, at::Generator& gen) {
  const int64_t dim = spec.get_int("dim", 10);
  const double p = spec.get_double("p", 2.0);
  spec.check_all_used();
  return std::make_shared<Norm>(dim, p, gen);
}

std::string Norm::name() const { return Spec("norm").set("dim", dim_).set("p", p_).str(); }

TensorList Norm::init_params(at::Generator& gen) const { return {torch::randn({dim_, 1}, gen)}; }

torch::Tensor Norm::loss(const TensorList& params, const Batch&) const {
  const auto& x = params.at(0);
  const auto diff = w_.to(x.dtype()).matmul(x) - y_.to(x.dtype());
  return (diff.abs() + 1e-6).pow(p_).sum().pow(1 / p_);
}

std::optional<double> Norm::optimum_value() const {
  const auto r = w_.to(torch::kDouble).matmul(solve_least_squares(w_, y_)) - y_.to(torch::kDouble);
  return (r.abs() + 1e-6).pow(p_).sum().pow(1 / p_).item<double>();
}

TensorList Norm::optimum_params() const { return {solve_least_squares(w_, y_).to(torch::kFloat)}; }

// ---------------------------------------------------------------------------------------------
DependencyChain::DependencyChain(int64_t dim) : dim_(dim) {
  L2O_CHECK(dim > 0, "dependency_chain: dim=", dim, " must be > 0");
}

ProblemPtr DependencyChain::from_spec(const Spec& spec, at::Generator&) {
  const int64_t dim = spec.get_int("dim", 20);
  spec.check_all_used();
  return std::make_shared<DependencyChain>(dim);
}

std::string DependencyChain::name() const { return Spec("dependency_chain").set("dim", dim_).str(); }

TensorList DependencyChain::init_params(at::Generator& gen) const { return {torch::randn({dim_ + 1}, gen)}; }

torch::Tensor DependencyChain::loss(const TensorList& params, const Batch&) const {
  const auto& x = params.at(0);
  const auto head = x.slice(0, 1), prev = x.slice(0, 0, dim_);
  return x[0].pow(2) + (head.pow(2) / (prev.pow(2) + 1e-6)).sum();
}

TensorList DependencyChain::optimum_params() const { return {torch::zeros({dim_ + 1})}; }

// ---------------------------------------------------------------------------------------------
MinMaxWell::MinMaxWell(int64_t dim) : dim_(dim) {
  L2O_CHECK(dim > 0, "min_max_well: dim=", dim, " must be > 0");
}

ProblemPtr MinMaxWell::from_spec(const Spec& spec, at::Generator&) {
  const int64_t dim = spec.get_int("dim", 20);
  spec.check_all_used();
  return std::make_shared<MinMaxWell>(dim);
}

std::string MinMaxWell::name() const { return Spec("min_max_well").set("dim", dim_).str(); }

TensorList MinMaxWell::init_params(at::Generator& gen) const { return {torch::randn({dim_}, gen)}; }

torch::Tensor MinMaxWell::loss(const TensorList& params, const Batch&) const {
  const auto sq = params.at(0).pow(2);
  return sq.max() + 1.0 / sq.min() - 2.0 + 1e-12;
}

TensorList MinMaxWell::optimum_params() const { return {torch::ones({dim_})}; }

// ---------------------------------------------------------------------------------------------
MatMulAlgorithm::MatMulAlgorithm(int64_t n, int64_t k) : n_(n), k_(k) {
  L2O_CHECK(n >= 2, "matmul: n=", n, " must be >= 2");
  L2O_CHECK(k >= n * n && k <= n * n * n, "matmul: k=", k, " must lie in [n^2, n^3] = [", n * n, ", ", n * n * n, "]");
  const int64_t n2 = n * n;
  // All n⁴ pairs of one-hot n×n matrices (a = e_i, b = e_j for i, j < n²) and their products.
  const auto onehots = torch::eye(n2).view({n2, n, n});
  const auto a3 = onehots.repeat_interleave(n2, 0), b3 = onehots.repeat({n2, 1, 1});
  a_ = a3.reshape({n2 * n2, n2});
  b_ = b3.reshape({n2 * n2, n2});
  c_ = torch::bmm(a3, b3).reshape({n2 * n2, n2});
}

ProblemPtr MatMulAlgorithm::from_spec(const Spec& spec, at::Generator&) {
  const int64_t n = spec.get_int("n", 2), k = spec.get_int("k", 7);
  spec.check_all_used();
  return std::make_shared<MatMulAlgorithm>(n, k);
}

std::string MatMulAlgorithm::name() const { return Spec("matmul").set("n", n_).set("k", k_).str(); }

TensorList MatMulAlgorithm::init_params(at::Generator& gen) const {
  TensorList out;
  for (int i = 0; i < 2; ++i) {
    const auto x = torch::randn({n_ * n_, k_}, gen);
    out.push_back(x / x.pow(2).sum(0, true).clamp_min(1e-12).sqrt());  // unit columns, as tf.nn.l2_normalize
  }
  return out;
}

torch::Tensor MatMulAlgorithm::loss(const TensorList& params, const Batch&) const {
  const auto dtype = params.at(0).dtype();
  const auto a = a_.to(dtype), b = b_.to(dtype), c = c_.to(dtype);
  const auto p = a.matmul(params.at(0)) * b.matmul(params.at(1));
  const auto pt = p.transpose(0, 1);
  // θ_c = (PᵀP)⁻¹PᵀC by a solve rather than the reference's explicit inverse (same value, stabler).
  const auto theta_c = torch::linalg_solve(pt.matmul(p), pt.matmul(c));
  return (p.matmul(theta_c) - c).pow(2).sum();
}

// ---------------------------------------------------------------------------------------------
Lasso::Lasso(int64_t dim, int64_t rows, double lambda, at::Generator& gen) : dim_(dim), rows_(rows), lambda_(lambda) {
  L2O_CHECK(dim > 0, "lasso: dim=", dim, " must be > 0");
  L2O_CHECK(rows > 0, "lasso: rows=", rows, " must be > 0");
  L2O_CHECK(lambda >= 0, "lasso: lambda=", lambda, " must be >= 0");
  a_ = torch::randn({rows, dim}, gen);
  b_ = torch::randn({rows}, gen);
}

ProblemPtr Lasso::from_spec(const Spec& spec, at::Generator& gen) {
  const int64_t dim = spec.get_int("dim", 10), rows = spec.get_int("rows", 20);
  const double lambda = spec.get_double("lambda", 0.1);
  spec.check_all_used();
  return std::make_shared<Lasso>(dim, rows, lambda, gen);
}

std::string Lasso::name() const {
  return Spec("lasso").set("dim", dim_).set("rows", rows_).set("lambda", lambda_).str();
}

TensorList Lasso::init_params(at::Generator& gen) const { return {torch::randn({dim_}, gen)}; }

torch::Tensor Lasso::loss(const TensorList& params, const Batch&) const {
  const auto& x = params.at(0);
  return 0.5 * (a_.to(x.dtype()).matmul(x) - b_.to(x.dtype())).pow(2).sum() + lambda_ * x.abs().sum();
}

TensorList Lasso::optimum_params() const {
  // FISTA (Beck & Teboulle 2009) in float64 with step 1/L, L = λ_max(AᵀA); the problems are small
  // (tens of coordinates), so a fixed generous iteration count converges to machine precision.
  const auto a = a_.to(torch::kDouble), b = b_.to(torch::kDouble);
  const auto ata = a.t().matmul(a), atb = a.t().matmul(b);
  const double lipschitz = torch::linalg_eigvalsh(ata).max().item<double>();
  const double step = 1.0 / std::max(lipschitz, 1e-12);
  auto x = torch::zeros({dim_}, torch::kDouble), z = x.clone();
  double t = 1;
  for (int it = 0; it < 20000; ++it) {
    const auto v = z - step * (ata.matmul(z) - atb);
    const auto next = torch::sign(v) * (v.abs() - step * lambda_).clamp_min(0);
    const double t_next = (1 + std::sqrt(1 + 4 * t * t)) / 2;
    z = next + ((t - 1) / t_next) * (next - x);
    const bool converged = (next - x).abs().max().item<double>() < 1e-15;
    x = next;
    t = t_next;
    if (converged) break;
  }
  return {x};
}

std::optional<double> Lasso::optimum_value() const { return loss(optimum_params(), {}).item<double>(); }

// ---------------------------------------------------------------------------------------------
Rastrigin::Rastrigin(int64_t dim, double a) : dim_(dim), a_(a) {
  L2O_CHECK(dim > 0, "rastrigin: dim=", dim, " must be > 0");
  L2O_CHECK(a >= 0, "rastrigin: a=", a, " must be >= 0");
}

ProblemPtr Rastrigin::from_spec(const Spec& spec, at::Generator&) {
  const int64_t dim = spec.get_int("dim", 10);
  const double a = spec.get_double("a", 10.0);
  spec.check_all_used();
  return std::make_shared<Rastrigin>(dim, a);
}

std::string Rastrigin::name() const { return Spec("rastrigin").set("dim", dim_).set("a", a_).str(); }

TensorList Rastrigin::init_params(at::Generator& gen) const {
  return {torch::empty({dim_}).uniform_(-5.12, 5.12, gen)};
}

torch::Tensor Rastrigin::loss(const TensorList& params, const Batch&) const {
  const auto& x = params.at(0);
  return a_ * static_cast<double>(dim_) + (x.pow(2) - a_ * torch::cos(2 * kPi * x)).sum();
}

TensorList Rastrigin::optimum_params() const { return {torch::zeros({dim_})}; }

// ---------------------------------------------------------------------------------------------
DataProblem::DataProblem(std::string name, data::DataSplits splits, int64_t batch)
    : name_(std::move(name)), splits_(std::move(splits)), batch_(batch) {}

Batch DataProblem::sample_batch(at::Generator& gen) const {
  if (deterministic()) return objective_batch();
  const auto index = torch::randperm(splits_.train.size(), gen).slice(0, 0, batch_);
  return {splits_.train.inputs.index_select(0, index), splits_.train.labels.index_select(0, index)};
}

Batch DataProblem::objective_batch() const { return {splits_.train.inputs, splits_.train.labels}; }

Batch DataProblem::test_batch() const {
  if (splits_.test.size() == 0) return {};
  return {splits_.test.inputs, splits_.test.labels};
}

bool DataProblem::deterministic() const { return batch_ == 0 || batch_ >= splits_.train.size(); }

namespace {
// dim, samples, batch and the data keys of the problems that draw their rows from one synthetic set.
template <typename P>
ProblemPtr symmetric_data_problem(const Spec& spec, const std::string& dataset, at::Generator& gen) {
  const int64_t dim = positive_dim(spec.name(), spec, 20);
  const int64_t batch = read_batch(spec.name(), spec, 100);
  auto splits = draw_data(dataset, spec, dim, gen);
  spec.check_all_used();
  Spec name = canonical(spec);
  name.set("dim", dim).set("batch", batch).set("samples", splits.train.size());
  return std::make_shared<P>(name.str(), dim, std::move(splits), batch);
}
}  // namespace

ProjectionQuadratic::ProjectionQuadratic(std::string name, int64_t dim, data::DataSplits splits, int64_t batch)
    : DataProblem(std::move(name), std::move(splits), batch), dim_(dim) {}

ProblemPtr ProjectionQuadratic::from_spec(const Spec& spec, at::Generator& gen) {
  return symmetric_data_problem<ProjectionQuadratic>(spec, "random_symmetric", gen);
}

TensorList ProjectionQuadratic::init_params(at::Generator& gen) const { return {torch::randn({1, dim_}, gen)}; }

torch::Tensor ProjectionQuadratic::loss(const TensorList& params, const Batch& batch) const {
  const auto& x = params.at(0);
  return (x * batch.inputs.to(x.dtype())).pow(2).sum();
}

TensorList ProjectionQuadratic::optimum_params() const { return {torch::zeros({1, dim_})}; }

SumOfQuadratics::SumOfQuadratics(std::string name, int64_t dim, data::DataSplits splits, int64_t batch)
    : DataProblem(std::move(name), std::move(splits), batch), dim_(dim) {}

ProblemPtr SumOfQuadratics::from_spec(const Spec& spec, at::Generator& gen) {
  return symmetric_data_problem<SumOfQuadratics>(spec, "random_symmetric", gen);
}

TensorList SumOfQuadratics::init_params(at::Generator& gen) const { return {torch::randn({1, dim_}, gen)}; }

torch::Tensor SumOfQuadratics::loss(const TensorList& params, const Batch& batch) const {
  const auto& x = params.at(0);
  const auto d = batch.inputs.to(x.dtype());
  // Σ‖x − d_b‖² − Σ‖d_b‖² expanded to B‖x‖² − 2x·Σd_b: the same value without the cancellation of
  // two large sums, which in float32 would bury the objective near its minimum.
  return static_cast<double>(d.size(0)) * x.pow(2).sum() - 2 * (x * d.sum(0, true)).sum() + 1e-12;
}

TensorList SumOfQuadratics::optimum_params() const { return {torch::zeros({1, dim_})}; }

OutwardSnake::OutwardSnake(std::string name, int64_t dim, data::DataSplits splits, int64_t batch)
    : DataProblem(std::move(name), std::move(splits), batch), dim_(dim) {}

ProblemPtr OutwardSnake::from_spec(const Spec& spec, at::Generator& gen) {
  return symmetric_data_problem<OutwardSnake>(spec, "random_binary", gen);
}

TensorList OutwardSnake::init_params(at::Generator& gen) const { return {torch::randn({dim_}, gen)}; }

torch::Tensor OutwardSnake::loss(const TensorList& params, const Batch& batch) const {
  const auto& x = params.at(0);
  const auto d = batch.inputs.to(x.dtype());
  const auto radius = x.pow(2).sum().sqrt();
  const auto radial = (1.0 / (radius + 1e-6)) * d.select(1, 0).sum();
  const auto off_path = x.slice(0, 1) - torch::cos(x.slice(0, 0, dim_ - 1)) * kPi;
  return radial + (off_path * d.slice(1, 1)).pow(2).sum();
}

// ---------------------------------------------------------------------------------------------
SparseSoftmaxRegression::SparseSoftmaxRegression(std::string name, int64_t dim, data::DataSplits splits,
                                                 int64_t batch)
    : DataProblem(std::move(name), std::move(splits), batch), dim_(dim), classes_(splits_.train.num_classes) {}

ProblemPtr SparseSoftmaxRegression::from_spec(const Spec& spec, at::Generator& gen) {
  const int64_t dim = positive_dim("sparse_softmax", spec, 5);
  const int64_t batch = read_batch("sparse_softmax", spec, 0);
  const std::string dataset = spec.get_string("dataset", "noisy_parity");
  // The embedding table has one row per id and the ids of noisy_parity lie in [0, classes).
  L2O_CHECK(dataset == "noisy_parity", "sparse_softmax: dataset=", dataset,
            " is not supported (only noisy_parity gives token ids)");
  auto splits = data::make_synthetic(dataset, spec, gen);
  spec.check_all_used();
  Spec name = canonical(spec);
  name.set("dim", dim).set("batch", batch).set("dataset", dataset).set("samples", splits.train.size());
  return std::make_shared<SparseSoftmaxRegression>(name.str(), dim, std::move(splits), batch);
}

TensorList SparseSoftmaxRegression::init_params(at::Generator& gen) const {
  TensorList out;
  for (const auto& shape : std::vector<std::vector<int64_t>>{{classes_, dim_}, {dim_, classes_}, {classes_}})
    out.push_back(torch::randn(shape, gen) * (1.2 / std::sqrt(static_cast<double>(shape[0]))));
  return out;
}

torch::Tensor SparseSoftmaxRegression::logits(const TensorList& params, const torch::Tensor& inputs) const {
  const auto ids = inputs.to(torch::kLong);
  const auto bags = params.at(0).index_select(0, ids.flatten()).view({ids.size(0), ids.size(1), dim_}).sum(1);
  return bags.matmul(params.at(1)) + params.at(2);
}

torch::Tensor SparseSoftmaxRegression::loss(const TensorList& params, const Batch& batch) const {
  const auto z = logits(params, batch.inputs);
  torch::Tensor data_loss;
  if (classes_ == 2)
    data_loss = torch::binary_cross_entropy_with_logits(z.select(1, 0), batch.targets.to(z.dtype()));
  else
    data_loss = torch::nn::functional::cross_entropy(z, batch.targets);
  torch::Tensor reg = torch::zeros({}, z.options());
  for (const auto& p : params) reg = reg + p.pow(2).sum();
  return data_loss + 1e-3 * reg / static_cast<double>(params.size());
}

double SparseSoftmaxRegression::accuracy(const TensorList& params, const Batch& batch) const {
  torch::NoGradGuard no_grad;
  const auto z = logits(params, batch.inputs);
  const auto predicted = classes_ == 2 ? (z.select(1, 0) > 0).to(torch::kLong) : z.argmax(1);
  return predicted.eq(batch.targets).to(torch::kDouble).mean().item<double>();
}

}  // namespace problems
}  // namespace l2o
