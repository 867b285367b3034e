#include <l2o/autodiff/curvature.h>
#include <l2o/core/error.h>
#include <l2o/meta/regularizer.h>

#include <torch/torch.h>

namespace l2o {
namespace meta {

RegularizerType parse_regularizer(const std::string& name) {
  if (name == "hessian") return RegularizerType::kHessian;
  if (name == "hessian-ev") return RegularizerType::kHessianEv;
  if (name == "hessian-esd") return RegularizerType::kHessianEsd;
  if (name == "jacob") return RegularizerType::kJacob;
  L2O_FAIL("unknown reg_option '", name, "' (known: hessian, hessian-ev, hessian-esd, jacob)");
}

std::string regularizer_name(RegularizerType type) {
  switch (type) {
    case RegularizerType::kHessian: return "hessian";
    case RegularizerType::kHessianEv: return "hessian-ev";
    case RegularizerType::kHessianEsd: return "hessian-esd";
    case RegularizerType::kJacob: return "jacob";
  }
  return "?";
}

RegularizeTime parse_regularize_time(const std::string& name) {
  if (name == "none") return RegularizeTime::kNone;
  if (name == "prior") return RegularizeTime::kPrior;
  if (name == "posterior") return RegularizeTime::kPosterior;
  if (name == "always") return RegularizeTime::kAlways;
  L2O_FAIL("unknown regularize_time '", name, "' (known: none, prior, posterior, always)");
}

bool regularize_unroll(RegularizeTime time, int64_t index, int64_t unrolls) {
  // With one unroll, "first half" and "second half" both mean that unroll.
  const int64_t half = unrolls / 2;
  switch (time) {
    case RegularizeTime::kNone: return false;
    case RegularizeTime::kAlways: return true;
    case RegularizeTime::kPrior: return index < std::max<int64_t>(half, 1);
    case RegularizeTime::kPosterior: return index >= half;
  }
  return false;
}

void RegularizerOptions::validate() const {
  L2O_CHECK(hessian_itrs() >= 1, "hessian_itrs=", hessian_itrs(), " must be >= 1");
  L2O_CHECK(top_n() >= 1, "hessian_top_n=", top_n(), " must be >= 1");
  L2O_CHECK(tolerance() >= 0, "power-iteration tolerance=", tolerance(), " must be >= 0");
}

RegularizerValue regularizer(const TensorList& grads, const TensorList& params, const RegularizerOptions& options,
                             at::Generator& gen) {
  options.validate();
  RegularizerValue r;
  if (options.type() == RegularizerType::kJacob) {
    r.value = autodiff::jacobian_penalty(grads);
    return r;
  }
  const auto hessian = autodiff::HessianOperator::from_gradients(grads, params);
  // create_graph=true: the α term is differentiated through the HVPs into φ, and the β term into θ.
  switch (options.type()) {
    case RegularizerType::kHessian:
      r.value = autodiff::hutchinson_trace(hessian, options.hessian_itrs(), gen, true).trace;
      break;
    case RegularizerType::kHessianEv: {
      const auto po = autodiff::PowerIterationOptions().top_n(options.top_n()).max_iterations(options.hessian_itrs())
                          .tolerance(options.tolerance());
      r.value = autodiff::top_eigenpairs(hessian, gen, po, true).sum;
      break;
    }
    case RegularizerType::kHessianEsd: {
      const auto lo = autodiff::LanczosOptions().iterations(options.hessian_itrs()).probes(1).fixed_vectors(true);
      r.value = autodiff::lanczos(hessian, gen, lo, true).ritz_sum;
      break;
    }
    case RegularizerType::kJacob: break;
  }
  r.hvps = hessian.products();
  return r;
}

}  // namespace meta
}  // namespace l2o
