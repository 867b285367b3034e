#pragma once
// The fused per-coordinate pass of the HierarchicalRNN step (SPEC §6.1), on raw pointers.
//
// One call handles coordinates [begin, end) of one parameter tensor: the 12 gradient features, the
// per-coordinate BiasGRU with its injected bias, the read-outs (direction, decays, log learning
// rates) and the unnormalised step u = exp(step_log_lr)·Δ, plus partial sums for the per-tensor means
// and for Σ Δ². The backward recomputes the same intermediates from the inputs and returns the
// vector-Jacobian product. This header is free of LibTorch so that the per-ISA translation units
// (hrnn_fused_kernel_{avx512,avx2,generic}.cpp) compile without the precompiled torch headers; the
// glue, dispatch and autograd Function live in hrnn_fused.cpp.
//
// The kernel covers the paper configuration: 10 units per coordinate and 4 gradient time scales
// (12 features: scaled gradients, adjacent products, log mean squares, relative log lr).
#include <cstdint>

namespace l2o {
namespace learned {
namespace fused {

constexpr int kH = 10;                 // per-coordinate GRU units
constexpr int kK = 4;                  // gradient time scales
constexpr int kF = 3 * kK;             // features: K scaled, K−1 products, K log ms, 1 relative lr
constexpr int kIn = kF + kH;           // rows of the gate and candidate weights
constexpr int64_t kChunk = 4096;       // coordinates per unit of parallel work and of partial sums

/// φ of the per-coordinate level (contiguous, row-major as HierarchicalRnn stores them).
template <typename T>
struct Weights {
  const T* w_gates;     // [kIn, 2kH]
  const T* b_gates;     // [2kH]
  const T* w_cand;      // [kIn, kH]
  const T* b_cand;      // [kH]
  const T* update_w;    // [kH]
  const T* shortcut_w;  // [kK]
  const T* scl_w;       // [kH]
  const T* inp_w;       // [kH]
  const T* lr_w;        // [kH]
  T scl_b, inp_b, lr_b;
  T momentum;           // σ(lr_momentum_logit)
  T min_log_lr, max_log_lr;  // the clip of step_log_lr
};

/// Per-coordinate state of one tensor. `h` is [n, kH] with strides (h_si, h_sk): a state written by
/// the fused step is stored coordinate-minor (h_si = 1), one written by the op-by-op path row-major.
template <typename T>
struct Inputs {
  const T *g, *scl, *inp, *log_lr;
  const T *acc[kK], *ms[kK];
  const T* h;
  int64_t h_si, h_sk;
  const T* ext;  // [3kH] bias injected by the per-tensor and global levels
  T lr_mean;     // mean log lr for the relative-lr feature
};

/// Outputs for one tensor; h is written coordinate-minor ([kH, n] memory, i.e. strides (1, n)).
template <typename T>
struct Outputs {
  T *h, *scl, *inp, *log_lr, *u;
  T *acc[kK], *ms[kK];
  int64_t n;  // row stride of h
  /// Store past the caches (the AVX-512 float32 kernel): for steps whose outputs are much larger than
  /// the caches and are not read again before they would have been evicted.
  bool stream = false;
};

/// Forward partial sums of a range: Σ h', Σ x (the per-tensor means' numerators) and Σ Δ².
struct ForwardSums {
  double h[kH], x[kF], sumsq;
};

/// Upstream gradients for one tensor (any pointer may be null: zero). `gh` has strides (gh_si, gh_sk).
/// sum_h, sum_x and sumsq are the gradients of the per-tensor sums (broadcast to every coordinate).
template <typename T>
struct GradOutputs {
  const T *h, *scl, *inp, *log_lr, *u;
  const T *acc[kK], *ms[kK];
  int64_t h_si, h_sk;
  T sum_h[kH], sum_x[kF], sumsq;
};

/// Per-coordinate input gradients of one tensor (null: not needed); gh with strides (h_si, h_sk).
template <typename T>
struct GradInputs {
  T *g, *scl, *inp, *log_lr, *h;
  T *acc[kK], *ms[kK];
  int64_t h_si, h_sk;
};

/// φ (and per-tensor) gradient partials of a range, accumulated in double.
struct BackwardSums {
  double w_gates[kIn * 2 * kH], w_cand[kIn * kH];
  double gates[2 * kH], cand[kH];  // = gradients of b_gates/b_cand and of the injected bias
  double update_w[kH], shortcut_w[kK], scl_w[kH], inp_w[kH], lr_w[kH];
  double scl_b, inp_b, lr_b, momentum, lr_mean;
};

/// The float32 elementwise approximations a kernel is built from (for the accuracy tests).
enum class MathFn { kExp, kLog, kSigmoid, kTanh, kAsinh, kRsqrt };

/// Entry points of one instruction set.
struct Kernels {
  void (*forward_f)(const Weights<float>&, const Inputs<float>&, const Outputs<float>&, int64_t, int64_t,
                    ForwardSums*);
  void (*forward_d)(const Weights<double>&, const Inputs<double>&, const Outputs<double>&, int64_t, int64_t,
                    ForwardSums*);
  void (*backward_f)(const Weights<float>&, const Inputs<float>&, const GradOutputs<float>&,
                     const GradInputs<float>&, int64_t, int64_t, BackwardSums*);
  void (*backward_d)(const Weights<double>&, const Inputs<double>&, const GradOutputs<double>&,
                     const GradInputs<double>&, int64_t, int64_t, BackwardSums*);
  /// y[i] = fn(x[i]) for i < n with this instruction set's float32 approximation of fn.
  void (*math_f)(MathFn fn, const float* x, float* y, int64_t n);
  const char* isa;
};

namespace avx512 {
Kernels kernels();
}
namespace avx2 {
Kernels kernels();
}
namespace generic {
Kernels kernels();
}

/// The best kernels this CPU runs (AVX-512, AVX2+FMA or SSE2), chosen once.
const Kernels& best_kernels();

}  // namespace fused
}  // namespace learned
}  // namespace l2o
