// Body of the fused HierarchicalRNN kernels (see hrnn_fused_kernel.h). Included once by each per-ISA
// translation unit after it defines L2O_ISA (a namespace name) and L2O_VEC_BYTES (16, 32 or 64): the
// same source becomes SSE2, AVX2+FMA and AVX-512 code through GCC/Clang vector extensions, one SIMD
// register of coordinates per "block".
//
// float32 uses the Cephes single-precision approximations of exp, log, tanh and asinh, written
// branch-free so they vectorise. With AVX-512 the exponent and mantissa steps use vrndscaleps/
// vscalefps/vgetexpps/vgetmantps, 1/√ and 1/d the rsqrt14/rcp14 estimates with a Newton step, and σ
// and tanh go through 2^t with t − ⌊t⌋ from vreduceps and a degree-6 minimax polynomial for 2^f
// (fewer instructions than e^x's two-part ln 2 reduction). Accuracy against float64, checked by
// HrnnFused.KernelMathIsAccurate: σ and tanh within 4 ulp, asinh 3, exp and log 1, 1/√ 2.
// NaN and ±Inf propagate as in LibTorch's own functions (the trainer relies on non-finite values
// reaching θ). float64 calls libm per lane: it is the reference precision path, not the fast one.
#include "hrnn_fused_kernel.h"

#include <cmath>
#include <cstdint>
#if defined(__AVX__) || defined(__AVX512F__)
#include <immintrin.h>
#endif
#include <type_traits>
#include <limits>

#ifndef L2O_ISA
#error "define L2O_ISA and L2O_VEC_BYTES before including hrnn_fused_kernel_impl.h"
#endif

namespace l2o {
namespace learned {
namespace fused {
namespace L2O_ISA {
namespace {

typedef float VF __attribute__((vector_size(L2O_VEC_BYTES)));
typedef int32_t VFI __attribute__((vector_size(L2O_VEC_BYTES)));
typedef double VD __attribute__((vector_size(L2O_VEC_BYTES)));
typedef int64_t VDI __attribute__((vector_size(L2O_VEC_BYTES)));

template <typename T>
struct Vec;
template <>
struct Vec<float> {
  using V = VF;
  using I = VFI;
  static constexpr int N = L2O_VEC_BYTES / 4;
};
template <>
struct Vec<double> {
  using V = VD;
  using I = VDI;
  static constexpr int N = L2O_VEC_BYTES / 8;
};

// Our own min: an inline std:: template instantiated here with wider instructions could be the copy
// the linker keeps for every other translation unit.
inline int64_t min_i64(int64_t a, int64_t b) { return a < b ? a : b; }

// Full unrolling of the small matrix-vector loops keeps their accumulators (up to 20 vectors) in
// registers; without it GCC keeps them in memory and the step runs at half speed.
#define L2O_UNROLL _Pragma("GCC unroll 32")

template <typename V, typename T>
inline V splat(T s) {
  return V{} + s;
}

// ---- math, float32 ---------------------------------------------------------------------------

// With -fno-math-errno (set for these files) the lane loop compiles to one vsqrtps.
inline VF vsqrt(VF x) {
  VF r;
  for (int l = 0; l < Vec<float>::N; ++l) r[l] = __builtin_sqrtf(x[l]);
  return r;
}

// 1/d for d ≥ 1 (the denominators of σ and tanh without AVX-512): the hardware estimate and one
// Newton step (≤ 2 ulp), several times cheaper than a vector division. d is capped at 1e30 so that
// the step stays finite (the result, ≤ 1e-30, stands for the 0 or denormal of the exact quotient);
// NaN passes.
inline VF vrcp_ge1(VF d) {
#if defined(__AVX__) && L2O_VEC_BYTES == 32
  const VF cap = splat<VF>(1e30f);
  d = d > cap ? cap : d;
  const VF r = (VF)_mm256_rcp_ps((__m256)d);
  return r * (2.0f - d * r);
#else
  return 1.0f / d;
#endif
}

constexpr float kLog2e = 1.44269504088896341f;

// round(x·log2 e): by vrndscaleps with AVX-512, else by adding and subtracting 1.5·2^23.
inline VF round_log2e(VF x) {
#if defined(__AVX512F__) && L2O_VEC_BYTES == 64
  return (VF)_mm512_maskz_roundscale_ps(static_cast<__mmask16>(0xFFFF), (__m512)(x * kLog2e),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
#else
  const VF magic = splat<VF>(12582912.0f);
  return (x * kLog2e + magic) - magic;
#endif
}

// x − n·ln 2 with ln 2 in two parts (Cephes), exact for the kernel's |n| ≤ 128.
inline VF reduce_ln2(VF x, VF n) {
  const VF r = x - n * 0.693359375f;
  return r - n * -2.12194440e-4f;
}

// c[0]·x^(N−1) + … + c[N−1] by Horner's rule (one FMA per coefficient after the first).
template <int N>
inline VF horner(VF x, const float (&c)[N]) {
  VF y = splat<VF>(c[0]);
  L2O_UNROLL
  for (int i = 1; i < N; ++i) y = y * x + c[i];
  return y;
}

// e^r − 1 for |r| ≤ ln2/2: Cephes expf's polynomial r + r²·P(r).
inline VF expm1_reduced(VF r) {
  static constexpr float kP[] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f,
                                 4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};
  return horner(r, kP) * (r * r) + r;
}

// log(x) = log(1 + m) + e·ln 2 for m = mantissa − 1 in [√½ − 1, √2 − 1): Cephes logf's polynomial.
inline VF log_reduced(VF m, VF ef) {
  const VF z = m * m;
  VF y = splat<VF>(7.0376836292e-2f);
  y = y * m - 1.1514610310e-1f;
  y = y * m + 1.1676998740e-1f;
  y = y * m - 1.2420140846e-1f;
  y = y * m + 1.4249322787e-1f;
  y = y * m - 1.6668057665e-1f;
  y = y * m + 2.0000714765e-1f;
  y = y * m - 2.4999993993e-1f;
  y = y * m + 3.3333331174e-1f;
  y = y * m * z;
  y = y + ef * -2.12194440e-4f;
  y = y - z * 0.5f;
  return m + y + ef * 0.693359375f;
}

// e^x for x clamped to [−87.3, 88] (no Inf, no 0 out of range), NaN passing through: the σ and tanh
// callers need no more.
inline VF vexp_clamped(VF x) {
  const VF hi = splat<VF>(88.0f), lo = splat<VF>(-87.3365447504f);
  VF xc = x > hi ? hi : x;
  xc = xc < lo ? lo : xc;  // NaN stays NaN through both
  // With AVX-512, 2^n·p by vscalefps: no integer round trip, and NaN flows through every step.
  const VF n = round_log2e(xc);
  const VF y = expm1_reduced(reduce_ln2(xc, n)) + 1.0f;
#if defined(__AVX512F__) && L2O_VEC_BYTES == 64
  return (VF)_mm512_maskz_scalef_ps(static_cast<__mmask16>(0xFFFF), (__m512)y, (__m512)n);
#else
  const VFI ni = __builtin_convertvector(n, VFI);
  const VF res = y * (VF)((ni + 127) << 23);
  return x != x ? x : res;
#endif
}

inline VF vexp(VF x) {
  // Cephes expf. Beyond the limits: 0 below (the true value is subnormal, flushed anyway), +Inf above
  // 88 (the true value lies within a factor 2.1 of FLT_MAX there).
  const VF res = vexp_clamped(x);
  const VF r = x > 88.0f ? splat<VF>(std::numeric_limits<float>::infinity()) : res;
  return x < -87.3365447504f ? VF{} : r;
}

#if defined(__AVX512F__) && L2O_VEC_BYTES == 64
inline VF vlog(VF x) {
  // Cephes logf's polynomial on m − 1, x = m·2^e with m in [√½, √2): vgetmantps/vgetexpps give m in
  // [1, 2) and e, and m > √2 moves to m/2. 0 → −Inf, +Inf → +Inf, < 0 and NaN → NaN; subnormals exact.
  VF m = (VF)_mm512_maskz_getmant_ps(static_cast<__mmask16>(0xFFFF), (__m512)x, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_nan);
  VF ef = (VF)_mm512_maskz_getexp_ps(static_cast<__mmask16>(0xFFFF), (__m512)x);
  const auto big = m > 1.41421356237309505f;
  m = big ? m * 0.5f : m;
  ef = big ? ef + 1.0f : ef;
  const VF res = log_reduced(m - 1.0f, ef);
  const float inf = std::numeric_limits<float>::infinity();
  const VF r = x == inf ? x : res;
  return x == 0.0f ? splat<VF>(-inf) : r;
}
#else
inline VF vlog(VF x) {
  // Cephes logf, for normal inputs (the kernel's arguments are ≥ 1e-16); 0 → −Inf, < 0 → NaN.
  const VFI bits = (VFI)x;
  VFI e = ((bits >> 23) & 0xff) - 126;
  VF m = (VF)((bits & 0x807fffff) | 0x3f000000);  // mantissa in [0.5, 1)
  const VFI small = m < 0.707106781186547524f;
  e = e + small;  // true is −1
  m = small ? m + m - 1.0f : m - 1.0f;
  VF res = log_reduced(m, __builtin_convertvector(e, VF));
  const float inf = std::numeric_limits<float>::infinity();
  res = x == inf ? x : res;
  res = x == 0.0f ? splat<VF>(-inf) : res;
  res = x < 0.0f ? splat<VF>(std::numeric_limits<float>::quiet_NaN()) : res;
  return x != x ? x : res;
}

#endif

#if defined(__AVX512F__) && L2O_VEC_BYTES == 64
// min(a, b) and max(a, b) as vminps/vmaxps, which return b when either is NaN: called with the bound
// as a, a NaN b passes. One instruction, where a vector-extension select is a compare and a blend.
inline VF vmin(VF a, VF b) {
  return (VF)_mm512_maskz_min_ps(static_cast<__mmask16>(0xFFFF), (__m512)a, (__m512)b);
}
inline VF vmax(VF a, VF b) {
  return (VF)_mm512_maskz_max_ps(static_cast<__mmask16>(0xFFFF), (__m512)a, (__m512)b);
}
// 1/d for finite d ≥ 1: rcp14 and one Newton step (≤ 2 ulp); maskz_ forms throughout, so that no
// intrinsic has an "undefined" source.
inline VF rcp_newton(VF d) {
  const VF r = (VF)_mm512_maskz_rcp14_ps(static_cast<__mmask16>(0xFFFF), (__m512)d);
  return r * (2.0f - d * r);
}
// t − ⌊t⌋, exact (vreduceps); NaN passes.
inline VF frac_floor(VF t) {
  return (VF)_mm512_maskz_reduce_ps(static_cast<__mmask16>(0xFFFF), (__m512)t, _MM_FROUND_TO_NEG_INF | _MM_FROUND_NO_EXC);
}
// p·2^⌊t⌋ (vscalefps): ±Inf and 0 beyond the range, NaN passes.
inline VF scale_floor(VF p, VF t) {
  return (VF)_mm512_maskz_scalef_ps(static_cast<__mmask16>(0xFFFF), (__m512)p, (__m512)t);
}
// 2^f for f in [0, 1): minimax polynomial of degree 6 (relative error 1.9e-9 before rounding).
inline VF exp2_unit(VF f) {
  static constexpr float kP[] = {2.1702254889532924e-4f, 1.2439688434824347e-3f, 9.678840637207031e-3f,
                                 5.5483341217041016e-2f, 2.4022983014583588e-1f, 6.931470036506653e-1f, 1.0f};
  return horner(f, kP);
}
// σ(x) = 1/(1 + 2^t) with t = −x·log2 e = ⌊t⌋ + f. f is t − ⌊t⌋ (exact) plus t's rounding error
// (exact, by an FMA) plus x times the float remainder of log2 e, so that 2^t keeps its relative
// accuracy for large |t| (σ ≪ 1 within ~3 ulp, not ~|t|·2^-24). x is clamped to [−87, 87] so that
// 1 + 2^t stays finite and one Newton step on rcp14 gives 1/(1 + 2^t); NaN passes.
inline VF vsigmoid(VF x) {
  const VF xc = vmax(splat<VF>(-87.0f), vmin(splat<VF>(87.0f), x));
  const VF t = xc * -kLog2e;
  const VF err = (VF)_mm512_fmsub_ps((__m512)xc, (__m512)splat<VF>(-kLog2e), (__m512)t);
  const VF f = frac_floor(t) + (xc * -1.925963033500011e-08f + err);
  return rcp_newton(1.0f + scale_floor(exp2_unit(f), t));
}
#else
inline VF vsigmoid(VF x) { return vrcp_ge1(1.0f + vexp_clamped(-x)); }
#endif

#if defined(__AVX512F__) && L2O_VEC_BYTES == 64
inline VF vtanh(VF x) {
  // tanh|x| = E/(E + 2) with E = e^{2|x|} − 1 = 2^t − 1, t = 2|x|·log2 e = n + f (n = ⌊t⌋, f in
  // [0, 1)), formed as 2^n·(2^f − 1) + (2^n − 1) so that small |x| (n = 0, E = 2^f − 1) loses nothing;
  // 2^f − 1 = f·P(f), minimax of degree 6 (relative error 1.2e-8 before rounding); |x| ≤ 9 (tanh 9
  // rounds to 1); NaN flows through every step.
  const VF sign = (VF)((VFI)x & (int32_t)0x80000000);
  VF a = (VF)((VFI)x & 0x7fffffff);
  a = vmin(splat<VF>(9.0f), a);
  const VF t = a * (2.0f * kLog2e);
  const VF f = frac_floor(t);
  static constexpr float kQ[] = {2.072081115329638e-4f, 1.2716756900772452e-3f, 9.649994783103466e-3f,
                                 5.549684539437294e-2f,  2.402270883321762e-1f,  6.931471824645996e-1f};
  const VF q = horner(f, kQ) * f;
  const VF p2 = scale_floor(splat<VF>(1.0f), t);
  const VF e = p2 * q + (p2 - 1.0f);
  return (VF)((VFI)(e * rcp_newton(e + 2.0f)) | (VFI)sign);
}
#else
inline VF vtanh(VF x) {
  // Cephes tanhf: an odd polynomial below 0.625, 1 − 2/(e^{2|x|} + 1) above.
  const VF a = x < 0.0f ? -x : x;
  const VF z = x * x;
  VF p = splat<VF>(-5.70498872745e-3f);
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  const VF small = p * z * x + x;
  VF big = 1.0f - 2.0f * vrcp_ge1(vexp_clamped(a + a) + 1.0f);
  big = x < 0.0f ? -big : big;
  return a < 0.625f ? small : big;
}

#endif

inline VF vasinh(VF x) {
  // Cephes asinhf: a polynomial below 0.5, log(a + √(a²+1)) above, log(2a) beyond 1500; the sign
  // put back with a bit or. With AVX-512 the root is w·rsqrt14(w) with a Newton step (≤ 2 ulp), not
  // a vsqrtps. NaN passes.
  const VF sign = (VF)((VFI)x & (int32_t)0x80000000);
  const VF a = (VF)((VFI)x & 0x7fffffff);
  const VF z = a * a;
  VF p = splat<VF>(2.0122003309e-2f);
  p = p * z - 4.2699340972e-2f;
  p = p * z + 7.4847586088e-2f;
  p = p * z - 1.6666288134e-1f;
  const VF small = p * z * a + a;
  const VF cap = splat<VF>(1500.0f);
#if defined(__AVX512F__) && L2O_VEC_BYTES == 64
  const VF ac = vmin(cap, a);
  const VF w = ac * ac + 1.0f;
  const VF r0 = (VF)_mm512_maskz_rsqrt14_ps(static_cast<__mmask16>(0xFFFF), (__m512)w);
  const VF s0 = w * r0;
  const VF root = (0.5f * s0) * (1.0f - s0 * r0) + s0;
#else
  const VF ac = a > cap ? cap : a;
  const VF root = vsqrt(ac * ac + 1.0f);
#endif
  const VF t = a > cap ? a + a : ac + root;
  const VF big = vlog(t);
  const VF r = a < 0.5f ? small : big;
  return (VF)((VFI)r | (VFI)sign);
}

// 1/√q for q > 0 (q = M + 1e-16): the hardware estimate and one Newton step (≤ 2 ulp) instead of a
// square root and a division; +Inf gives 0 and NaN passes, as 1/√q does.
inline VF vrsqrt(VF q) {
#if defined(__AVX512F__) && L2O_VEC_BYTES == 64
  const VF r = (VF)_mm512_maskz_rsqrt14_ps(static_cast<__mmask16>(0xFFFF), (__m512)q);
  const VF nr = r * (1.5f - (0.5f * q) * (r * r));
  return q == std::numeric_limits<float>::infinity() ? VF{} : nr;
#else
  return 1.0f / vsqrt(q);
#endif
}

// ---- math, float64: libm per lane ------------------------------------------------------------

inline VD vsqrt(VD x) {
  VD r;
  for (int l = 0; l < Vec<double>::N; ++l) r[l] = __builtin_sqrt(x[l]);
  return r;
}

inline VD vrsqrt(VD x) { return 1.0 / vsqrt(x); }

#define L2O_LANEWISE(fn, expr)                                          \
  inline VD fn(VD x) {                                                  \
    VD r{};                                                             \
    for (int l = 0; l < Vec<double>::N; ++l) {                          \
      const double v = x[l];                                            \
      r[l] = (expr);                                                    \
    }                                                                   \
    return r;                                                           \
  }
L2O_LANEWISE(vexp, std::exp(v))
L2O_LANEWISE(vlog, std::log(v))
L2O_LANEWISE(vtanh, std::tanh(v))
L2O_LANEWISE(vasinh, std::asinh(v))
L2O_LANEWISE(vsigmoid, 1.0 / (1.0 + std::exp(-v)))
#undef L2O_LANEWISE

// ---- loads and stores ------------------------------------------------------------------------

// Lanes [i0, i0 + m) of p[i·stride]; missing lanes (m < N) and a null p read as 0.
template <typename V, typename T>
inline V load(const T* p, int64_t i0, int m, int64_t stride = 1) {
  constexpr int N = Vec<T>::N;
  V v{};
  if (p == nullptr) return v;
  if (stride == 1 && m == N) {
    // A typed (element-aligned) vector load, not memcpy: a char-typed access would let every store
    // alias the pointers in the argument structs, which the loop then reloads block after block.
    typedef T U __attribute__((vector_size(L2O_VEC_BYTES), aligned(alignof(T))));
    v = *reinterpret_cast<const U*>(p + i0);
  } else {
    for (int l = 0; l < m; ++l) v[l] = p[(i0 + l) * stride];
  }
  return v;
}

template <typename V, typename T>
inline void store(T* p, int64_t i0, int m, const V& v, int64_t stride = 1) {
  constexpr int N = Vec<T>::N;
  if (p == nullptr) return;
  if (stride == 1 && m == N) {
    typedef T U __attribute__((vector_size(L2O_VEC_BYTES), aligned(alignof(T))));
    *reinterpret_cast<U*>(p + i0) = v;
  } else {
    for (int l = 0; l < m; ++l) p[(i0 + l) * stride] = v[l];
  }
}

// A full, 64-byte aligned vector stored past the caches (no read for ownership); other vectors as store().
template <typename V, typename T>
inline void store_nt(T* p, int64_t i0, int m, const V& v) {
#if defined(__AVX512F__) && L2O_VEC_BYTES == 64
  if (m == Vec<T>::N && (reinterpret_cast<uintptr_t>(p + i0) & 63) == 0) {
    _mm512_stream_ps(reinterpret_cast<float*>(p + i0), (__m512)v);
    return;
  }
#endif
  store(p, i0, m, v);
}


template <typename T>
inline typename Vec<T>::I lane_mask(int m) {
  using I = typename Vec<T>::I;
  I idx;
  for (int l = 0; l < Vec<T>::N; ++l) idx[l] = l;
  return idx < m;
}

// ---- the forward of one block ----------------------------------------------------------------

// Every intermediate of one block of coordinates that the backward needs again.
template <typename T>
struct Block {
  using V = typename Vec<T>::V;
  V g, scl, inp, log_lr, acc[kK], ms[kK], h[kH];  // inputs
  V d[kK], A[kK], M[kK], q[kK], y[kK], S[kK], x[kF];
  V sg[2 * kH], c[kH], hn[kH];                      // gate sigmoids (r, u), candidate, new state
  V D, scl_new, inp_new, SL, log_lr_new, E, U;
};

template <typename T, bool Full>
__attribute__((always_inline)) inline void forward_block(const Weights<T>& w, const Inputs<T>& in, const T* bias,
                                                         int64_t i0, int m_, Block<T>& b) {
  using V = typename Vec<T>::V;
  const int m = Full ? Vec<T>::N : m_;
  b.g = load<V>(in.g, i0, m);
  b.scl = load<V>(in.scl, i0, m);
  b.inp = load<V>(in.inp, i0, m);
  b.log_lr = load<V>(in.log_lr, i0, m);
  for (int i = 0; i < kK; ++i) {
    b.acc[i] = load<V>(in.acc[i], i0, m);
    b.ms[i] = load<V>(in.ms[i], i0, m);
  }
  for (int k = 0; k < kH; ++k) b.h[k] = load<V>(in.h + k * in.h_sk, i0, m, Full ? 1 : in.h_si);

  // Features: accumulators at time scales d_{i+1} = √d_i, RMS-scaled (asinh), adjacent products,
  // centred log mean squares, relative log learning rate.
  const T one = 1, tiny_ms = 1e-12, tiny_q = 1e-16;
  b.d[0] = b.inp;
  for (int i = 1; i < kK; ++i) b.d[i] = vsqrt(b.d[i - 1]);
  V lsum{};
  V l[kK];
  for (int i = 0; i < kK; ++i) {
    b.A[i] = b.g * (one - b.d[i]) + b.acc[i] * b.d[i];
    b.M[i] = (one - b.scl) * (b.A[i] * b.A[i] + tiny_ms) + b.scl * b.ms[i];
    b.q[i] = b.M[i] + tiny_q;
    b.y[i] = b.A[i] * vrsqrt(b.q[i]);
    b.S[i] = vasinh(b.y[i]);
    l[i] = vlog(b.q[i]);
    lsum = lsum + l[i];
  }
  const V lbar = lsum / static_cast<T>(kK);
  for (int i = 0; i < kK; ++i) b.x[i] = b.S[i];
  for (int i = 0; i + 1 < kK; ++i) b.x[kK + i] = b.S[i] * b.S[i + 1];
  for (int i = 0; i < kK; ++i) b.x[2 * kK - 1 + i] = l[i] - lbar;
  b.x[kF - 1] = b.log_lr - in.lr_mean;

  // BiasGRU: [r, u] = σ(W_g[x, h] + b + ext), c = tanh(W_c[x, r∘h] + b + ext), h' = u∘h + (1−u)∘c.
  V z[2 * kH];
  L2O_UNROLL
  for (int j = 0; j < 2 * kH; ++j) z[j] = splat<V>(bias[j]);
  for (int f = 0; f < kF; ++f) {
    const V xf = b.x[f];
    const T* row = w.w_gates + f * 2 * kH;
    L2O_UNROLL
    for (int j = 0; j < 2 * kH; ++j) z[j] += xf * row[j];
  }
  for (int k = 0; k < kH; ++k) {
    const V hk = b.h[k];
    const T* row = w.w_gates + (kF + k) * 2 * kH;
    L2O_UNROLL
    for (int j = 0; j < 2 * kH; ++j) z[j] += hk * row[j];
  }
  for (int j = 0; j < 2 * kH; ++j) b.sg[j] = vsigmoid(z[j]);
  V zc[kH];
  L2O_UNROLL
  for (int k = 0; k < kH; ++k) zc[k] = splat<V>(bias[2 * kH + k]);
  for (int f = 0; f < kF; ++f) {
    const V xf = b.x[f];
    const T* row = w.w_cand + f * kH;
    L2O_UNROLL
    for (int k = 0; k < kH; ++k) zc[k] += xf * row[k];
  }
  for (int mm = 0; mm < kH; ++mm) {
    const V rh = b.sg[mm] * b.h[mm];
    const T* row = w.w_cand + (kF + mm) * kH;
    L2O_UNROLL
    for (int k = 0; k < kH; ++k) zc[k] += rh * row[k];
  }
  for (int k = 0; k < kH; ++k) {
    b.c[k] = vtanh(zc[k]);
    const V u = b.sg[kH + k];
    b.hn[k] = u * b.h[k] + (one - u) * b.c[k];
  }

  // Read-outs.
  V D{}, a_scl = splat<V>(w.scl_b), a_inp = splat<V>(w.inp_b), a_lr = splat<V>(w.lr_b);
  for (int k = 0; k < kH; ++k) {
    D += b.hn[k] * w.update_w[k];
    a_scl += b.hn[k] * w.scl_w[k];
    a_inp += b.hn[k] * w.inp_w[k];
    a_lr += b.hn[k] * w.lr_w[k];
  }
  for (int i = 0; i < kK; ++i) D += b.S[i] * w.shortcut_w[i];
  b.D = D;
  b.scl_new = vsigmoid(a_scl);
  b.inp_new = vsigmoid(a_inp);
  // Clipped with a straight-through gradient (the backward treats the clip as the identity).
  V sl = b.log_lr + a_lr;
  const V lo = splat<V>(w.min_log_lr), hi = splat<V>(w.max_log_lr);
  sl = sl < lo ? lo : sl;
  sl = sl > hi ? hi : sl;
  b.SL = sl;
  b.log_lr_new = w.momentum * b.log_lr + (one - w.momentum) * sl;
  b.E = vexp(sl);
  b.U = b.E * D;
}

// A block's new state and step into the outputs, streamed past the caches or stored.
template <bool Streamed, typename T>
inline void store_outputs(const Outputs<T>& out, int64_t i0, int m, const Block<T>& b) {
  auto put = [&](T* p, const typename Vec<T>::V& v) {
    if constexpr (Streamed)
      store_nt(p, i0, m, v);
    else
      store(p, i0, m, v);
  };
  for (int k = 0; k < kH; ++k) put(out.h + k * out.n, b.hn[k]);
  put(out.scl, b.scl_new);
  put(out.inp, b.inp_new);
  put(out.log_lr, b.log_lr_new);
  put(out.u, b.U);
  for (int i = 0; i < kK; ++i) {
    put(out.acc[i], b.A[i]);
    put(out.ms[i], b.M[i]);
  }
}

// The gate and candidate biases with the injected per-tensor/global bias folded in, once per range.
template <typename T>
inline void fold_bias(const Weights<T>& w, const Inputs<T>& in, T* bias) {
  for (int j = 0; j < 2 * kH; ++j) bias[j] = w.b_gates[j] + in.ext[j];
  for (int k = 0; k < kH; ++k) bias[2 * kH + k] = w.b_cand[k] + in.ext[2 * kH + k];
}

template <typename T>
void forward(const Weights<T>& w, const Inputs<T>& in, const Outputs<T>& out, int64_t begin, int64_t end,
             ForwardSums* sums) {
  using V = typename Vec<T>::V;
  constexpr int N = Vec<T>::N;
  constexpr int kFlushBlocks = 16;  // float partial sums over at most 16 blocks, then double
  V ah[kH] = {}, ax[kF] = {}, asq{};
  double dh[kH] = {}, dx[kF] = {}, dsq = 0;
  auto flush = [&] {
    for (int l = 0; l < N; ++l) {
      for (int k = 0; k < kH; ++k) dh[k] += ah[k][l];
      for (int f = 0; f < kF; ++f) dx[f] += ax[f][l];
      dsq += asq[l];
    }
    for (int k = 0; k < kH; ++k) ah[k] = V{};
    for (int f = 0; f < kF; ++f) ax[f] = V{};
    asq = V{};
  };
  int pending = 0;
  T bias[3 * kH];
  fold_bias(w, in, bias);
  const bool stream = std::is_same<T, float>::value && out.stream;
  for (int64_t i0 = begin; i0 < end; i0 += N) {
    const int m = static_cast<int>(min_i64(N, end - i0));
    Block<T> b;  // per block: what the forward alone does not read is never stored
    if (m == N && in.h_si == 1)
      forward_block<T, true>(w, in, bias, i0, m, b);
    else
      forward_block<T, false>(w, in, bias, i0, m, b);
    if (stream)
      store_outputs<true>(out, i0, m, b);
    else
      store_outputs<false>(out, i0, m, b);
    if (m == N) {
      for (int k = 0; k < kH; ++k) ah[k] += b.hn[k];
      for (int f = 0; f < kF; ++f) ax[f] += b.x[f];
      asq += b.D * b.D;
    } else {
      const auto mask = lane_mask<T>(m);
      for (int k = 0; k < kH; ++k) ah[k] += mask ? b.hn[k] : V{};
      for (int f = 0; f < kF; ++f) ax[f] += mask ? b.x[f] : V{};
      asq += mask ? b.D * b.D : V{};
    }
    if (++pending == kFlushBlocks) {
      flush();
      pending = 0;
    }
  }
  flush();
#if defined(__AVX512F__) && L2O_VEC_BYTES == 64
  if (stream) _mm_sfence();  // the streamed stores are visible before the range is reported done
#endif
  for (int k = 0; k < kH; ++k) sums->h[k] = dh[k];
  for (int f = 0; f < kF; ++f) sums->x[f] = dx[f];
  sums->sumsq = dsq;
}

// ---- the backward ----------------------------------------------------------------------------

template <typename V>
inline double lane_sum(const V& v, int n) {
  double s = 0;
  for (int l = 0; l < n; ++l) s += v[l];
  return s;
}

template <typename T>
void backward(const Weights<T>& w, const Inputs<T>& in, const GradOutputs<T>& go, const GradInputs<T>& gi,
              int64_t begin, int64_t end, BackwardSums* out) {
  using V = typename Vec<T>::V;
  constexpr int N = Vec<T>::N;
  constexpr int kTile = 16;  // blocks whose weight-gradient products are batched (a small GEMM)
  const T one = 1, two = 2, half = 0.5, tiny_ms = 1e-12;

  // Tile buffers: the inputs of the two affine maps and the gradients of their outputs.
  V xh[kIn][kTile], rh[kH][kTile], gz_t[2 * kH][kTile], gc_t[kH][kTile];
  // Range accumulators (lanes summed at the end).
  V acc_wg[kIn][2 * kH] = {}, acc_wc[kIn][kH] = {};
  V acc_gates[2 * kH] = {}, acc_cand[kH] = {};
  V acc_upd[kH] = {}, acc_sc[kK] = {}, acc_scl[kH] = {}, acc_inp[kH] = {}, acc_lr[kH] = {};
  V acc_sclb{}, acc_inpb{}, acc_lrb{}, acc_mom{}, acc_lrmean{};

  auto gemm = [&](int tb) {
    for (int f = 0; f < kIn; ++f) {
      V a[2 * kH] = {};
      for (int t = 0; t < tb; ++t) {
        const V xv = xh[f][t];
        L2O_UNROLL
        for (int j = 0; j < 2 * kH; ++j) a[j] += xv * gz_t[j][t];
      }
      L2O_UNROLL
      for (int j = 0; j < 2 * kH; ++j) acc_wg[f][j] += a[j];
    }
    for (int f = 0; f < kIn; ++f) {
      V a[kH] = {};
      for (int t = 0; t < tb; ++t) {
        const V xv = f < kF ? xh[f][t] : rh[f - kF][t];
        L2O_UNROLL
        for (int k = 0; k < kH; ++k) a[k] += xv * gc_t[k][t];
      }
      L2O_UNROLL
      for (int k = 0; k < kH; ++k) acc_wc[f][k] += a[k];
    }
  };

  T bias[3 * kH];
  fold_bias(w, in, bias);
  Block<T> b;
  int t = 0;
  for (int64_t i0 = begin; i0 < end; i0 += N) {
    const int m = static_cast<int>(min_i64(N, end - i0));
    if (m == N && in.h_si == 1)
      forward_block<T, true>(w, in, bias, i0, m, b);
    else
      forward_block<T, false>(w, in, bias, i0, m, b);
    const bool full = m == N;
    const auto mask = lane_mask<T>(m);
    // Gradients of the per-tensor sums reach every real coordinate, not the padding lanes.
    auto bcast = [&](T v) { return full ? splat<V>(v) : (mask ? splat<V>(v) : V{}); };

    const V gU = load<V>(go.u, i0, m);
    const V gLnew = load<V>(go.log_lr, i0, m);
    const V gscl_new = load<V>(go.scl, i0, m);
    const V ginp_new = load<V>(go.inp, i0, m);

    // u = e^{SL}·Δ and Σ Δ².
    const V gD = gU * b.E + bcast(go.sumsq) * two * b.D;
    V gSL = gU * b.U + gLnew * (one - w.momentum);
    V gL = gLnew * w.momentum;
    acc_mom += gLnew * (b.log_lr - b.SL);
    // SL = clip(L + h'·w_lr + b_lr), straight through.
    gL += gSL;
    acc_lrb += gSL;
    const V ga_scl = gscl_new * b.scl_new * (one - b.scl_new);
    const V ga_inp = ginp_new * b.inp_new * (one - b.inp_new);
    acc_sclb += ga_scl;
    acc_inpb += ga_inp;
    V ghn[kH];
    for (int k = 0; k < kH; ++k) {
      const V hk = b.hn[k];
      acc_lr[k] += gSL * hk;
      acc_scl[k] += ga_scl * hk;
      acc_inp[k] += ga_inp * hk;
      acc_upd[k] += gD * hk;
      ghn[k] = load<V>(go.h + (go.h ? k * go.h_sk : 0), i0, m, go.h_si) + bcast(go.sum_h[k]) +
               gSL * w.lr_w[k] + ga_scl * w.scl_w[k] + ga_inp * w.inp_w[k] + gD * w.update_w[k];
    }
    V gS[kK];
    for (int i = 0; i < kK; ++i) {
      acc_sc[i] += gD * b.S[i];
      gS[i] = gD * w.shortcut_w[i];
    }

    // GRU.
    V gh[kH], gz[2 * kH], gzc[kH];
    for (int k = 0; k < kH; ++k) {
      const V u = b.sg[kH + k];
      const V gu = ghn[k] * (b.h[k] - b.c[k]);
      gh[k] = ghn[k] * u;
      gzc[k] = ghn[k] * (one - u) * (one - b.c[k] * b.c[k]);
      gz[kH + k] = gu * u * (one - u);
    }
    // The transposed products W·gz, one weight row per gradient entry into independent accumulators
    // (a dot product per output would be one chain of up to 30 dependent FMAs).
    V grh[kH] = {};
    for (int k = 0; k < kH; ++k) {
      const V gk = gzc[k];
      L2O_UNROLL
      for (int mm = 0; mm < kH; ++mm) grh[mm] += gk * w.w_cand[(kF + mm) * kH + k];
    }
    for (int mm = 0; mm < kH; ++mm) {
      const V r = b.sg[mm];
      gh[mm] += grh[mm] * r;
      gz[mm] = grh[mm] * b.h[mm] * r * (one - r);
    }
    V gx[kF], ghz[kH] = {};
    for (int f = 0; f < kF; ++f) gx[f] = bcast(go.sum_x[f]);
    for (int j = 0; j < 2 * kH; ++j) {
      const V gj = gz[j];
      L2O_UNROLL
      for (int f = 0; f < kF; ++f) gx[f] += gj * w.w_gates[f * 2 * kH + j];
      L2O_UNROLL
      for (int k = 0; k < kH; ++k) ghz[k] += gj * w.w_gates[(kF + k) * 2 * kH + j];
    }
    for (int k = 0; k < kH; ++k) {
      const V gk = gzc[k];
      L2O_UNROLL
      for (int f = 0; f < kF; ++f) gx[f] += gk * w.w_cand[f * kH + k];
    }
    for (int k = 0; k < kH; ++k) gh[k] += ghz[k];
    for (int j = 0; j < 2 * kH; ++j) acc_gates[j] += gz[j];
    for (int k = 0; k < kH; ++k) acc_cand[k] += gzc[k];
    for (int f = 0; f < kF; ++f) xh[f][t] = b.x[f];
    for (int k = 0; k < kH; ++k) {
      xh[kF + k][t] = b.h[k];
      rh[k][t] = b.sg[k] * b.h[k];
      gc_t[k][t] = gzc[k];
    }
    for (int j = 0; j < 2 * kH; ++j) gz_t[j][t] = gz[j];
    if (++t == kTile) {
      gemm(t);
      t = 0;
    }

    // Features back to the accumulators, mean squares, decays and the gradient.
    for (int i = 0; i < kK; ++i) gS[i] += gx[i];
    for (int i = 0; i + 1 < kK; ++i) {
      gS[i] += gx[kK + i] * b.S[i + 1];
      gS[i + 1] += gx[kK + i] * b.S[i];
    }
    V gmean{};
    for (int i = 0; i < kK; ++i) gmean += gx[2 * kK - 1 + i];
    gmean = gmean / static_cast<T>(kK);
    const V gR = gx[kF - 1];
    gL += gR;
    acc_lrmean -= gR;
    V gg{}, gscl{}, gd[kK];
    for (int i = 0; i < kK; ++i) {
      const V gl = gx[2 * kK - 1 + i] - gmean;
      const V gy = gS[i] / vsqrt(one + b.y[i] * b.y[i]);
      V gq = gl / b.q[i] - half * gy * b.y[i] / b.q[i];
      V gA = gy / vsqrt(b.q[i]) + load<V>(go.acc[i], i0, m);
      const V gM = gq + load<V>(go.ms[i], i0, m);
      gA += gM * (one - b.scl) * two * b.A[i];
      gscl += gM * (b.ms[i] - b.A[i] * b.A[i] - tiny_ms);
      store(gi.ms[i], i0, m, gM * b.scl);
      gg += gA * (one - b.d[i]);
      store(gi.acc[i], i0, m, gA * b.d[i]);
      gd[i] = gA * (b.acc[i] - b.g);
    }
    for (int i = kK - 1; i >= 1; --i) gd[i - 1] += gd[i] * half / b.d[i];
    store(gi.g, i0, m, gg);
    store(gi.scl, i0, m, gscl);
    store(gi.inp, i0, m, gd[0]);
    store(gi.log_lr, i0, m, gL);
    if (gi.h != nullptr)
      for (int k = 0; k < kH; ++k) store(gi.h + k * gi.h_sk, i0, m, gh[k], gi.h_si);
  }
  if (t > 0) gemm(t);

  for (int f = 0; f < kIn; ++f) {
    for (int j = 0; j < 2 * kH; ++j) out->w_gates[f * 2 * kH + j] = lane_sum(acc_wg[f][j], N);
    for (int k = 0; k < kH; ++k) out->w_cand[f * kH + k] = lane_sum(acc_wc[f][k], N);
  }
  for (int j = 0; j < 2 * kH; ++j) out->gates[j] = lane_sum(acc_gates[j], N);
  for (int k = 0; k < kH; ++k) {
    out->cand[k] = lane_sum(acc_cand[k], N);
    out->update_w[k] = lane_sum(acc_upd[k], N);
    out->scl_w[k] = lane_sum(acc_scl[k], N);
    out->inp_w[k] = lane_sum(acc_inp[k], N);
    out->lr_w[k] = lane_sum(acc_lr[k], N);
  }
  for (int i = 0; i < kK; ++i) out->shortcut_w[i] = lane_sum(acc_sc[i], N);
  out->scl_b = lane_sum(acc_sclb, N);
  out->inp_b = lane_sum(acc_inpb, N);
  out->lr_b = lane_sum(acc_lrb, N);
  out->momentum = lane_sum(acc_mom, N);
  out->lr_mean = lane_sum(acc_lrmean, N);
}

void math(MathFn fn, const float* x, float* y, int64_t n) {
  constexpr int N = Vec<float>::N;
  for (int64_t i0 = 0; i0 < n; i0 += N) {
    const int m = static_cast<int>(min_i64(N, n - i0));
    const VF v = load<VF>(x, i0, m);
    VF r{};
    switch (fn) {
      case MathFn::kExp: r = vexp(v); break;
      case MathFn::kLog: r = vlog(v); break;
      case MathFn::kSigmoid: r = vsigmoid(v); break;
      case MathFn::kTanh: r = vtanh(v); break;
      case MathFn::kAsinh: r = vasinh(v); break;
      case MathFn::kRsqrt: r = vrsqrt(v); break;
    }
    store(y, i0, m, r);
  }
}

}  // namespace

Kernels kernels() {
  Kernels k;
  k.math_f = &math;
  k.forward_f = &forward<float>;
  k.forward_d = &forward<double>;
  k.backward_f = &backward<float>;
  k.backward_d = &backward<double>;
  k.isa = L2O_ISA_NAME;
  return k;
}

}  // namespace L2O_ISA
}  // namespace fused
}  // namespace learned
}  // namespace l2o
