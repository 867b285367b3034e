// The fused HierarchicalRNN step (SPEC §6.1): LibTorch glue around the kernels of
// hrnn_fused_kernel.h, and the whole step as one autograd Function.
//
// Pass 0 (double, on a few numbers per tensor): the mean log learning rate and each tensor's
// injected bias, from the previous step's tensor and global states. Pass 1 (kernel, at::parallel_for
// over chunks of coordinates): features, per-coordinate BiasGRU, read-outs, u = exp(step_log_lr)·Δ and
// per-chunk partial sums, reduced in chunk order so that a thread count gives the same bits on every
// run. Pass 2 (double): the per-tensor and global GRUs on the tensor means. Pass 3 (per coordinate):
// θ' = θ − e^{offset}·u/rms(Δ). With a graph, FusedStep is one node for all four passes; its backward
// is the hand-written vector-Jacobian product of each (the kernel's for pass 1).
#include <l2o/core/error.h>
#include <l2o/learned/hierarchical_rnn.h>

#include "hrnn_fused_kernel.h"

#include <ATen/Parallel.h>
#include <torch/autograd.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <vector>

namespace l2o {
namespace learned {

namespace fused {
const Kernels& best_kernels() {
  static const Kernels k = [] {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512vl"))
      return avx512::kernels();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return avx2::kernels();
#endif
    return generic::kernels();
  }();
  return k;
}
}  // namespace fused

namespace {

using fused::kChunk;
using fused::kH;
using fused::kK;
constexpr int kPerTensorIn = 5 + 2 * kK;   // g, h, scl, inp, log_lr, acc×K, ms×K
constexpr int kPerTensorOut = 5 + 2 * kK;  // h, scl, inp, log_lr, u, acc×K, ms×K
constexpr int kWeights = 13;               // φ inputs after ext and lr_mean, see PhiIndex
constexpr int64_t kStreamCoordinates = int64_t{1} << 18;  // 22 MB of new state in float32

enum PhiIndex { kWGates, kBGates, kWCand, kBCand, kUpdateW, kShortcutW, kSclW, kSclB, kInpW, kInpB, kLrW, kLrB, kMom };

// One unit of parallel work: coordinates [begin, end) of tensor `tensor`.
struct WorkItem {
  int64_t tensor, begin, end;
};

std::vector<WorkItem> work_items(const std::vector<int64_t>& sizes) {
  std::vector<WorkItem> items;
  for (size_t t = 0; t < sizes.size(); ++t)
    for (int64_t b = 0; b < sizes[t]; b += kChunk) items.push_back({static_cast<int64_t>(t), b, std::min(sizes[t], b + kChunk)});
  return items;
}

// Views the flat input list of the Function: per tensor kPerTensorIn tensors, then ext [T, 3H],
// lr_mean [T], then the kWeights φ tensors.
struct InputView {
  const torch::autograd::variable_list& v;
  int64_t num_tensors() const { return (static_cast<int64_t>(v.size()) - 2 - kWeights) / kPerTensorIn; }
  const torch::Tensor& of(int64_t t, int slot) const { return v[t * kPerTensorIn + slot]; }
  const torch::Tensor& ext() const { return v[num_tensors() * kPerTensorIn]; }
  const torch::Tensor& lr_mean() const { return v[num_tensors() * kPerTensorIn + 1]; }
  const torch::Tensor& phi(int i) const { return v[num_tensors() * kPerTensorIn + 2 + i]; }
  int64_t index_of(int64_t t, int slot) const { return t * kPerTensorIn + slot; }
  int64_t phi_index(int i) const { return num_tensors() * kPerTensorIn + 2 + i; }
};
enum InSlot { kG = 0, kHSlot = 1, kScl = 2, kInp = 3, kLogLr = 4, kAcc0 = 5, kMs0 = 5 + kK };
enum OutSlot { kOH = 0, kOScl = 1, kOInp = 2, kOLogLr = 3, kOU = 4, kOAcc0 = 5, kOMs0 = 5 + kK };

template <typename T>
fused::Weights<T> weights_of(const InputView& in) {
  fused::Weights<T> w;
  w.w_gates = in.phi(kWGates).data_ptr<T>();
  w.b_gates = in.phi(kBGates).data_ptr<T>();
  w.w_cand = in.phi(kWCand).data_ptr<T>();
  w.b_cand = in.phi(kBCand).data_ptr<T>();
  w.update_w = in.phi(kUpdateW).data_ptr<T>();
  w.shortcut_w = in.phi(kShortcutW).data_ptr<T>();
  w.scl_w = in.phi(kSclW).data_ptr<T>();
  w.inp_w = in.phi(kInpW).data_ptr<T>();
  w.lr_w = in.phi(kLrW).data_ptr<T>();
  w.scl_b = in.phi(kSclB).item<T>();
  w.inp_b = in.phi(kInpB).item<T>();
  w.lr_b = in.phi(kLrB).item<T>();
  w.momentum = in.phi(kMom).item<T>();
  return w;
}

template <typename T>
fused::Inputs<T> inputs_of(const InputView& in, int64_t t, const T* ext, const T* lr_mean) {
  fused::Inputs<T> x;
  x.g = in.of(t, kG).data_ptr<T>();
  x.scl = in.of(t, kScl).data_ptr<T>();
  x.inp = in.of(t, kInp).data_ptr<T>();
  x.log_lr = in.of(t, kLogLr).data_ptr<T>();
  for (int i = 0; i < kK; ++i) {
    x.acc[i] = in.of(t, kAcc0 + i).data_ptr<T>();
    x.ms[i] = in.of(t, kMs0 + i).data_ptr<T>();
  }
  const auto& h = in.of(t, kHSlot);
  x.h = h.data_ptr<T>();
  x.h_si = h.stride(0);
  x.h_sk = h.stride(1);
  x.ext = ext + t * 3 * kH;
  x.lr_mean = lr_mean[t];
  return x;
}

// [n, kH] stored coordinate-minor ([kH, n] in memory), the layout the kernel reads and writes fastest.
torch::Tensor empty_state_h(int64_t n, const torch::TensorOptions& opts) {
  return torch::empty_strided({n, kH}, {1, std::max<int64_t>(n, 1)}, opts);
}

// Pass 1 forward on every tensor. Returns per tensor kPerTensorOut outputs, then sums [T, kH + kF]
// (Σ h', Σ x per tensor) and sumsq [T], both in double.
template <typename T>
torch::autograd::variable_list run_forward(const InputView& in, T min_log_lr, T max_log_lr) {
  const int64_t nt = in.num_tensors();
  const auto opts = in.of(0, kG).options();
  std::vector<int64_t> sizes(nt);
  torch::autograd::variable_list out;
  out.reserve(nt * kPerTensorOut + 2);
  std::vector<fused::Outputs<T>> outs(nt);
  std::vector<fused::Inputs<T>> ins(nt);
  fused::Weights<T> w = weights_of<T>(in);
  w.min_log_lr = min_log_lr;
  w.max_log_lr = max_log_lr;
  const T* ext = in.ext().data_ptr<T>();
  const T* lr_mean = in.lr_mean().data_ptr<T>();
  // A step whose new state (22 numbers per coordinate) outgrows a share of the last-level cache is
  // evicted before the next step reads it: storing it past the caches saves reading every output
  // line before writing it.
  int64_t total = 0;
  for (int64_t t = 0; t < nt; ++t) total += in.of(t, kG).numel();
  const bool stream = total >= kStreamCoordinates;
  for (int64_t t = 0; t < nt; ++t) {
    const int64_t n = in.of(t, kG).numel();
    sizes[t] = n;
    ins[t] = inputs_of<T>(in, t, ext, lr_mean);
    auto h = empty_state_h(n, opts);
    auto o = [&] { return torch::empty({n}, opts); };
    torch::Tensor scl = o(), inp = o(), log_lr = o(), u = o();
    out.insert(out.end(), {h, scl, inp, log_lr, u});
    fused::Outputs<T>& d = outs[t];
    d.h = h.data_ptr<T>();
    d.n = std::max<int64_t>(n, 1);
    d.stream = stream;
    d.scl = scl.data_ptr<T>();
    d.inp = inp.data_ptr<T>();
    d.log_lr = log_lr.data_ptr<T>();
    d.u = u.data_ptr<T>();
    for (int i = 0; i < kK; ++i) {
      out.push_back(o());
      d.acc[i] = out.back().data_ptr<T>();
    }
    for (int i = 0; i < kK; ++i) {
      out.push_back(o());
      d.ms[i] = out.back().data_ptr<T>();
    }
  }
  const auto items = work_items(sizes);
  std::vector<fused::ForwardSums> partial(items.size());
  const auto& kern = fused::best_kernels();
  at::parallel_for(0, static_cast<int64_t>(items.size()), 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const WorkItem& it = items[i];
      if constexpr (std::is_same<T, float>::value)
        kern.forward_f(w, ins[it.tensor], outs[it.tensor], it.begin, it.end, &partial[i]);
      else
        kern.forward_d(w, ins[it.tensor], outs[it.tensor], it.begin, it.end, &partial[i]);
    }
  });
  // Chunk order, whatever the thread count: the sums are the same bits on every run.
  auto sums = torch::zeros({nt, kH + fused::kF}, opts.dtype(torch::kDouble));
  auto sumsq = torch::zeros({nt}, opts.dtype(torch::kDouble));
  auto* s = sums.data_ptr<double>();
  auto* q = sumsq.data_ptr<double>();
  for (size_t i = 0; i < items.size(); ++i) {
    double* row = s + items[i].tensor * (kH + fused::kF);
    for (int k = 0; k < kH; ++k) row[k] += partial[i].h[k];
    for (int f = 0; f < fused::kF; ++f) row[kH + f] += partial[i].x[f];
    q[items[i].tensor] += partial[i].sumsq;
  }
  out.push_back(sums);  // double: passes 2 and 3 compute in double
  out.push_back(sumsq);
  return out;
}

template <typename T>
const T* ptr_or_null(const torch::Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

// Pass 1 backward: gradients for every pass-1 input (undefined where not needed; those of the
// injected bias and the lr mean in double, for passes 0 and 2).
template <typename T>
torch::autograd::variable_list run_backward(const InputView& in, const torch::autograd::variable_list& grad_out,
                                            const std::vector<bool>& needs, T min_log_lr,
                                            T max_log_lr) {
  const int64_t nt = in.num_tensors();
  const auto opts = in.of(0, kG).options();
  fused::Weights<T> w = weights_of<T>(in);
  w.min_log_lr = min_log_lr;
  w.max_log_lr = max_log_lr;
  const T* ext = in.ext().data_ptr<T>();
  const T* lr_mean = in.lr_mean().data_ptr<T>();
  std::vector<int64_t> sizes(nt);
  std::vector<fused::Inputs<T>> ins(nt);
  std::vector<fused::GradOutputs<T>> gos(nt);
  std::vector<fused::GradInputs<T>> gis(nt);
  torch::autograd::variable_list grads(in.v.size());
  const auto& gsums = grad_out[nt * kPerTensorOut];
  const auto& gsumsq = grad_out[nt * kPerTensorOut + 1];
  const auto gsums_c = gsums.defined() ? gsums.contiguous() : torch::zeros({nt, kH + fused::kF}, opts);
  const auto gsumsq_c = gsumsq.defined() ? gsumsq.contiguous() : torch::zeros({nt}, opts);
  std::vector<torch::Tensor> keep;  // contiguous copies of upstream gradients
  for (int64_t t = 0; t < nt; ++t) {
    const int64_t n = in.of(t, kG).numel();
    sizes[t] = n;
    ins[t] = inputs_of<T>(in, t, ext, lr_mean);
    auto up = [&](int slot) -> const T* {
      const auto& g = grad_out[t * kPerTensorOut + slot];
      if (!g.defined()) return nullptr;
      keep.push_back(g.contiguous());
      return keep.back().data_ptr<T>();
    };
    fused::GradOutputs<T>& go = gos[t];
    go.scl = up(kOScl);
    go.inp = up(kOInp);
    go.log_lr = up(kOLogLr);
    go.u = up(kOU);
    for (int i = 0; i < kK; ++i) {
      go.acc[i] = up(kOAcc0 + i);
      go.ms[i] = up(kOMs0 + i);
    }
    const auto& gh = grad_out[t * kPerTensorOut + kOH];
    go.h = ptr_or_null<T>(gh);
    go.h_si = gh.defined() ? gh.stride(0) : 0;
    go.h_sk = gh.defined() ? gh.stride(1) : 0;
    const T* gs = gsums_c.data_ptr<T>() + t * (kH + fused::kF);
    for (int k = 0; k < kH; ++k) go.sum_h[k] = gs[k];
    for (int f = 0; f < fused::kF; ++f) go.sum_x[f] = gs[kH + f];
    go.sumsq = gsumsq_c.data_ptr<T>()[t];

    fused::GradInputs<T>& gi = gis[t];
    auto down = [&](int slot) -> T* {
      const int64_t idx = in.index_of(t, slot);
      if (!needs[idx]) return nullptr;
      grads[idx] = torch::empty({n}, opts);
      return grads[idx].data_ptr<T>();
    };
    gi.scl = down(kScl);
    gi.inp = down(kInp);
    gi.log_lr = down(kLogLr);
    for (int i = 0; i < kK; ++i) {
      gi.acc[i] = down(kAcc0 + i);
      gi.ms[i] = down(kMs0 + i);
    }
    gi.g = down(kG);
    gi.h = nullptr;
    gi.h_si = gi.h_sk = 0;
    if (needs[in.index_of(t, kHSlot)]) {
      auto g = empty_state_h(n, opts);
      grads[in.index_of(t, kHSlot)] = g;
      gi.h = g.data_ptr<T>();
      gi.h_si = g.stride(0);
      gi.h_sk = g.stride(1);
    }
  }
  const auto items = work_items(sizes);
  std::vector<fused::BackwardSums> partial(items.size());
  const auto& kern = fused::best_kernels();
  at::parallel_for(0, static_cast<int64_t>(items.size()), 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const WorkItem& it = items[i];
      if constexpr (std::is_same<T, float>::value)
        kern.backward_f(w, ins[it.tensor], gos[it.tensor], gis[it.tensor], it.begin, it.end, &partial[i]);
      else
        kern.backward_d(w, ins[it.tensor], gos[it.tensor], gis[it.tensor], it.begin, it.end, &partial[i]);
    }
  });

  // φ and per-tensor reductions, in chunk order.
  const auto dopts = opts.dtype(torch::kDouble);
  auto g_wg = torch::zeros({fused::kIn, 2 * kH}, dopts), g_wc = torch::zeros({fused::kIn, kH}, dopts);
  auto g_ext = torch::zeros({nt, 3 * kH}, dopts), g_lrmean = torch::zeros({nt}, dopts);
  auto g_upd = torch::zeros({kH}, dopts), g_sc = torch::zeros({kK}, dopts), g_scl = torch::zeros({kH}, dopts);
  auto g_inp = torch::zeros({kH}, dopts), g_lr = torch::zeros({kH}, dopts);
  double g_sclb = 0, g_inpb = 0, g_lrb = 0, g_mom = 0;
  double *wg = g_wg.data_ptr<double>(), *wc = g_wc.data_ptr<double>(), *ge = g_ext.data_ptr<double>();
  double *glm = g_lrmean.data_ptr<double>(), *gu = g_upd.data_ptr<double>(), *gsc = g_sc.data_ptr<double>();
  double *gscl = g_scl.data_ptr<double>(), *ginp = g_inp.data_ptr<double>(), *glr = g_lr.data_ptr<double>();
  for (size_t i = 0; i < items.size(); ++i) {
    const fused::BackwardSums& p = partial[i];
    for (int j = 0; j < fused::kIn * 2 * kH; ++j) wg[j] += p.w_gates[j];
    for (int j = 0; j < fused::kIn * kH; ++j) wc[j] += p.w_cand[j];
    double* e = ge + items[i].tensor * 3 * kH;
    for (int j = 0; j < 2 * kH; ++j) e[j] += p.gates[j];
    for (int k = 0; k < kH; ++k) {
      e[2 * kH + k] += p.cand[k];
      gu[k] += p.update_w[k];
      gscl[k] += p.scl_w[k];
      ginp[k] += p.inp_w[k];
      glr[k] += p.lr_w[k];
    }
    for (int k = 0; k < kK; ++k) gsc[k] += p.shortcut_w[k];
    glm[items[i].tensor] += p.lr_mean;
    g_sclb += p.scl_b;
    g_inpb += p.inp_b;
    g_lrb += p.lr_b;
    g_mom += p.momentum;
  }
  auto cast = [&](const torch::Tensor& x) { return x.to(opts.dtype()); };
  auto scalar = [&](double v) { return torch::full({1}, v, dopts).to(opts.dtype()); };
  auto set = [&](int64_t idx, torch::Tensor g) {
    if (needs[idx]) grads[idx] = std::move(g);
  };
  const int64_t base = nt * kPerTensorIn;
  set(base, g_ext);  // double: passes 0 and 2 compute in double
  set(base + 1, g_lrmean);
  set(in.phi_index(kWGates), cast(g_wg));
  set(in.phi_index(kBGates), cast(g_ext.narrow(1, 0, 2 * kH).sum(0)));
  set(in.phi_index(kWCand), cast(g_wc));
  set(in.phi_index(kBCand), cast(g_ext.narrow(1, 2 * kH, kH).sum(0)));
  set(in.phi_index(kUpdateW), cast(g_upd));
  set(in.phi_index(kShortcutW), cast(g_sc));
  set(in.phi_index(kSclW), cast(g_scl));
  set(in.phi_index(kSclB), scalar(g_sclb));
  set(in.phi_index(kInpW), cast(g_inp));
  set(in.phi_index(kInpB), scalar(g_inpb));
  set(in.phi_index(kLrW), cast(g_lr));
  set(in.phi_index(kLrB), scalar(g_lrb));
  set(in.phi_index(kMom), scalar(g_mom));
  return grads;
}

// ---------------------------------------------------------------------------------------------------
// Passes 0, 2 and 3 by hand: they act on a few dozen numbers per tensor (and one product per
// coordinate in pass 3), but as LibTorch ops with autograd they were ~100 small ops and graph nodes
// per step, a third of the step's cost on a model the size of the MNIST MLP. Computed in double.

// The whole step's configuration, fixed by the options.
struct StepConfig {
  int64_t h1 = 0, h2 = 0;  // level sizes above the coordinates (the level count is StepLayout's)
  bool problem_lr_mean = true, global_mean = true;
  double min_log_lr = 0, max_log_lr = 0;
};

// Flat input list of the step's Function: per tensor θ then the kPerTensorIn pass-1 slots; the
// per-tensor states (T rows [1, H1]) and the global state [1, H2] where the levels exist; then φ:
// the 12 per-coordinate weights of pass 1 (shortcut zeros without the shortcut), lr_momentum_logit,
// stepsize_offset, and per higher level its bias weights and its GRU.
enum StepPhi {
  kPMomLogit = 12, kPOffset = 13, kPParamBiasW = 14, kPParamBiasB, kPC1Wg, kPC1Bg, kPC1Wc, kPC1Bc,
  kPGlobalBiasW, kPGlobalBiasB, kPLayerBiasW, kPLayerBiasB, kPC2Wg, kPC2Bg, kPC2Wc, kPC2Bc
};
constexpr int kStepPerTensorIn = 1 + kPerTensorIn;
// Outputs per tensor: θ', step, then the pass-1 state outputs without u; then the T rows of the new
// per-tensor state and the new global state.
constexpr int kStepPerTensorOut = 2 + kPerTensorOut - 1;
int step_out_of(int inner_slot) { return inner_slot < kOU ? inner_slot + 2 : inner_slot + 1; }

struct StepLayout {
  int64_t nt, levels;
  int64_t theta(int64_t t) const { return t * kStepPerTensorIn; }
  int64_t slot(int64_t t, int s) const { return t * kStepPerTensorIn + 1 + s; }
  int64_t layer_h(int64_t t) const { return nt * kStepPerTensorIn + t; }
  int64_t global_h() const { return nt * kStepPerTensorIn + (levels > 1 ? nt : 0); }
  int64_t phi(int i) const {
    const int64_t base = nt * kStepPerTensorIn + (levels > 1 ? nt : 0) + (levels > 2 ? 1 : 0);
    return base + i;
  }
  int64_t num_inputs() const { return phi(levels > 2 ? kPC2Bc + 1 : levels > 1 ? kPC1Bc + 1 : kPOffset + 1); }
  int64_t out_layer_h(int64_t t) const { return nt * kStepPerTensorOut + t; }
  int64_t out_global_h() const { return nt * kStepPerTensorOut + (levels > 1 ? nt : 0); }
  int64_t num_outputs() const { return out_global_h() + (levels > 2 ? 1 : 0); }
};

// A tensor's values as doubles (any dtype the fused path takes; contiguous).
std::vector<double> to_doubles(const torch::Tensor& x) {
  const auto c = x.contiguous();
  std::vector<double> v(c.numel());
  if (c.scalar_type() == torch::kFloat) {
    const float* p = c.data_ptr<float>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = p[i];
  } else {
    const double* p = c.data_ptr<double>();
    for (size_t i = 0; i < v.size(); ++i) v[i] = p[i];
  }
  return v;
}
torch::Tensor from_doubles(const std::vector<double>& v, at::IntArrayRef shape, const torch::TensorOptions& opts) {
  auto d = torch::empty(shape, opts.dtype(torch::kDouble));
  std::copy(v.begin(), v.end(), d.data_ptr<double>());
  return opts.dtype() == torch::kDouble ? d : d.to(opts.dtype());
}

// One BiasGRU (hierarchical_rnn.cpp's BiasGru::forward) on b rows, in double: w_gates [in + n, 2n],
// w_cand [in + n, n]; ext [b, 3n] (or empty).
struct Gru {
  std::vector<double> wg, bg, wc, bc;
  int64_t in = 0, n = 0;
  Gru() = default;
  Gru(const torch::Tensor& w_gates, const torch::Tensor& b_gates, const torch::Tensor& w_cand,
      const torch::Tensor& b_cand)
      : wg(to_doubles(w_gates)), bg(to_doubles(b_gates)), wc(to_doubles(w_cand)), bc(to_doubles(b_cand)),
        in(w_gates.size(0) - w_cand.size(1)), n(w_cand.size(1)) {}
};
struct GruActs {
  std::vector<double> gates, c, rh, out;  // [b, 2n], [b, n], [b, n], [b, n]
};
struct GruGrads {
  std::vector<double> wg, bg, wc, bc;
  explicit GruGrads(const Gru& g) : wg(g.wg.size()), bg(g.bg.size()), wc(g.wc.size()), bc(g.bc.size()) {}
};

double sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

GruActs gru_forward(const Gru& w, const std::vector<double>& x, const std::vector<double>& h,
                    const std::vector<double>& ext, int64_t b) {
  const int64_t n = w.n, in = w.in;
  GruActs a;
  a.gates.assign(b * 2 * n, 0);
  a.c.assign(b * n, 0);
  a.rh.assign(b * n, 0);
  a.out.assign(b * n, 0);
  for (int64_t r = 0; r < b; ++r) {
    double* gt = &a.gates[r * 2 * n];
    for (int64_t j = 0; j < 2 * n; ++j) gt[j] = w.bg[j] + (ext.empty() ? 0 : ext[r * 3 * n + j]);
    for (int64_t i = 0; i < in; ++i)
      for (int64_t j = 0; j < 2 * n; ++j) gt[j] += x[r * in + i] * w.wg[i * 2 * n + j];
    for (int64_t k = 0; k < n; ++k)
      for (int64_t j = 0; j < 2 * n; ++j) gt[j] += h[r * n + k] * w.wg[(in + k) * 2 * n + j];
    for (int64_t j = 0; j < 2 * n; ++j) gt[j] = sigmoid(gt[j]);
    double* c = &a.c[r * n];
    for (int64_t k = 0; k < n; ++k) a.rh[r * n + k] = gt[k] * h[r * n + k];
    for (int64_t j = 0; j < n; ++j) c[j] = w.bc[j] + (ext.empty() ? 0 : ext[r * 3 * n + 2 * n + j]);
    for (int64_t i = 0; i < in; ++i)
      for (int64_t j = 0; j < n; ++j) c[j] += x[r * in + i] * w.wc[i * n + j];
    for (int64_t k = 0; k < n; ++k)
      for (int64_t j = 0; j < n; ++j) c[j] += a.rh[r * n + k] * w.wc[(in + k) * n + j];
    for (int64_t j = 0; j < n; ++j) {
      c[j] = std::tanh(c[j]);
      const double u = gt[n + j];
      a.out[r * n + j] = u * h[r * n + j] + (1 - u) * c[j];
    }
  }
  return a;
}

// Vector-Jacobian product of gru_forward for upstream dout [b, n]: adds to dx [b, in], dh [b, n],
// dext [b, 3n] (if not empty) and the weight gradients.
void gru_backward(const Gru& w, const std::vector<double>& x, const std::vector<double>& h, const GruActs& a,
                  const std::vector<double>& dout, int64_t b, std::vector<double>& dx, std::vector<double>& dh,
                  std::vector<double>* dext, GruGrads& gw) {
  const int64_t n = w.n, in = w.in;
  std::vector<double> dcp(n), dg(2 * n);
  for (int64_t r = 0; r < b; ++r) {
    const double* gt = &a.gates[r * 2 * n];
    const double* c = &a.c[r * n];
    for (int64_t j = 0; j < n; ++j) {
      const double d = dout[r * n + j], u = gt[n + j];
      dg[n + j] = d * (h[r * n + j] - c[j]) * u * (1 - u);
      dcp[j] = d * (1 - u) * (1 - c[j] * c[j]);
      dh[r * n + j] += d * u;
    }
    for (int64_t j = 0; j < n; ++j) {
      gw.bc[j] += dcp[j];
      if (dext != nullptr) (*dext)[r * 3 * n + 2 * n + j] += dcp[j];
    }
    for (int64_t i = 0; i < in; ++i)
      for (int64_t j = 0; j < n; ++j) {
        gw.wc[i * n + j] += x[r * in + i] * dcp[j];
        dx[r * in + i] += w.wc[i * n + j] * dcp[j];
      }
    for (int64_t k = 0; k < n; ++k) {
      double s = 0;
      for (int64_t j = 0; j < n; ++j) {
        gw.wc[(in + k) * n + j] += a.rh[r * n + k] * dcp[j];
        s += w.wc[(in + k) * n + j] * dcp[j];
      }
      const double rr = gt[k];
      dg[k] = s * h[r * n + k] * rr * (1 - rr);
      dh[r * n + k] += s * rr;
    }
    for (int64_t j = 0; j < 2 * n; ++j) {
      gw.bg[j] += dg[j];
      if (dext != nullptr) (*dext)[r * 3 * n + j] += dg[j];
    }
    for (int64_t i = 0; i < in; ++i)
      for (int64_t j = 0; j < 2 * n; ++j) {
        gw.wg[i * 2 * n + j] += x[r * in + i] * dg[j];
        dx[r * in + i] += w.wg[i * 2 * n + j] * dg[j];
      }
    for (int64_t k = 0; k < n; ++k)
      for (int64_t j = 0; j < 2 * n; ++j) {
        gw.wg[(in + k) * 2 * n + j] += h[r * n + k] * dg[j];
        dh[r * n + k] += w.wg[(in + k) * 2 * n + j] * dg[j];
      }
  }
}

// y[r, j] += Σ_k a[r, k]·w[k, j] for a [b, m], w [m, p].
void add_product(const std::vector<double>& a, const std::vector<double>& w, int64_t b, int64_t m, int64_t p,
                 std::vector<double>& y) {
  for (int64_t r = 0; r < b; ++r)
    for (int64_t k = 0; k < m; ++k)
      for (int64_t j = 0; j < p; ++j) y[r * p + j] += a[r * m + k] * w[k * p + j];
}

// The levels above the coordinates, in double: the old states, the GRUs' weights, inputs and activations.
struct Higher {
  std::vector<double> layer_h, global_h;  // [T, H1], [1, H2]
  Gru c1, c2;
  std::vector<double> in1, ext1, in2;     // level 1's input [T, F1] and bias [T, 3H1]; level 2's input
  GruActs a1, a2;
};

// The levels above the coordinates on the pass-1 sums (double [T, kH + kF]): the GRUs' inputs and
// activations. `v` is the step's input list.
// The old per-tensor states [T, H1] and global state [1, H2] (where the levels exist), in double.
Higher old_states(const StepLayout& L, const torch::autograd::variable_list& v) {
  Higher hi;
  if (L.levels > 1)
    for (int64_t t = 0; t < L.nt; ++t) {
      const auto row = to_doubles(v[L.layer_h(t)]);
      hi.layer_h.insert(hi.layer_h.end(), row.begin(), row.end());
    }
  if (L.levels > 2) hi.global_h = to_doubles(v[L.global_h()]);
  return hi;
}

Higher higher_forward(const StepLayout& L, const StepConfig& c, const torch::autograd::variable_list& v,
                      const torch::Tensor& sums, const std::vector<int64_t>& sizes) {
  Higher hi = old_states(L, v);
  const int64_t nt = L.nt, h1 = c.h1, h2 = c.h2, f1 = kH + fused::kF;
  if (L.levels < 2) return hi;
  auto gru_at = [&](int first) { return Gru(v[L.phi(first)], v[L.phi(first + 1)], v[L.phi(first + 2)], v[L.phi(first + 3)]); };
  hi.c1 = gru_at(kPC1Wg);
  const double* s = sums.data_ptr<double>();
  hi.in1.resize(nt * f1);
  for (int64_t t = 0; t < nt; ++t)
    for (int64_t j = 0; j < f1; ++j) hi.in1[t * f1 + j] = s[t * f1 + j] / static_cast<double>(sizes[t]);
  if (L.levels > 2) {
    std::vector<double> e = to_doubles(v[L.phi(kPLayerBiasB)]);
    add_product(hi.global_h, to_doubles(v[L.phi(kPLayerBiasW)]), 1, h2, 3 * h1, e);
    for (int64_t t = 0; t < nt; ++t) hi.ext1.insert(hi.ext1.end(), e.begin(), e.end());
  }
  hi.a1 = gru_forward(hi.c1, hi.in1, hi.layer_h, hi.ext1, nt);
  if (L.levels > 2) {
    hi.c2 = gru_at(kPC2Wg);
    hi.in2.assign(h1, 0);
    for (int64_t k = 0; k < h1; ++k) {
      if (c.global_mean) {
        for (int64_t t = 0; t < nt; ++t) hi.in2[k] += hi.a1.out[t * h1 + k];
        hi.in2[k] /= static_cast<double>(nt);
      } else {
        hi.in2[k] = hi.a1.out[(nt - 1) * h1 + k];
      }
    }
    hi.a2 = gru_forward(hi.c2, hi.in2, hi.global_h, {}, 1);
  }
  return hi;
}

// Pass 0: the injected bias [T, 3kH] from the old tensor and global states, in double.
std::vector<double> injected_bias(const StepLayout& L, const torch::autograd::variable_list& v, const Higher& hi) {
  const int64_t nt = L.nt;
  std::vector<double> ext(nt * 3 * kH, 0);
  if (L.levels < 2) return ext;
  const auto pb = to_doubles(v[L.phi(kPParamBiasB)]);
  std::vector<double> row = pb;
  if (L.levels > 2) {
    const auto gb = to_doubles(v[L.phi(kPGlobalBiasB)]);
    for (int j = 0; j < 3 * kH; ++j) row[j] += gb[j];
    add_product(hi.global_h, to_doubles(v[L.phi(kPGlobalBiasW)]), 1, hi.global_h.size(), 3 * kH, row);
  }
  for (int64_t t = 0; t < nt; ++t) std::copy(row.begin(), row.end(), ext.begin() + t * 3 * kH);
  add_product(hi.layer_h, to_doubles(v[L.phi(kPParamBiasW)]), nt, hi.layer_h.size() / nt, 3 * kH, ext);
  return ext;
}

int64_t chunks_of(int64_t n) { return (n + kChunk - 1) / kChunk; }

// Σ x in double, chunks of kChunk in parallel (8 running sums each), added in chunk order: the same
// bits for every thread count.
template <typename T>
double chunked_sum(const T* x, int64_t n) {
  std::vector<double> part(chunks_of(n), 0);
  at::parallel_for(0, chunks_of(n), 1, [&](int64_t b, int64_t e) {
    for (int64_t k = b; k < e; ++k) {
      double a[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      const int64_t end = std::min(n, (k + 1) * kChunk);
      int64_t i = k * kChunk;
      for (; i + 8 <= end; i += 8)
        for (int j = 0; j < 8; ++j) a[j] += x[i + j];
      for (; i < end; ++i) a[0] += x[i];
      part[k] = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    }
  });
  double s = 0;
  for (double p : part) s += p;
  return s;
}

// Σ of each tensor's log lr (pass 0's mean), in double.
template <typename T>
std::vector<double> log_lr_sums(const StepLayout& L, const torch::autograd::variable_list& v) {
  std::vector<double> s(L.nt, 0);
  for (int64_t t = 0; t < L.nt; ++t) {
    const auto& x = v[L.slot(t, kLogLr)];
    s[t] = chunked_sum(x.data_ptr<T>(), x.numel());
  }
  return s;
}

// The pass-1 input list (InputView's layout) from the step's inputs, pass 0's results and σ(logit).
torch::autograd::variable_list pass1_inputs(const StepLayout& L, const torch::autograd::variable_list& v,
                                            const torch::Tensor& ext, const torch::Tensor& lr_mean,
                                            const torch::Tensor& momentum) {
  torch::autograd::variable_list in;
  in.reserve(L.nt * kPerTensorIn + 2 + kWeights);
  for (int64_t t = 0; t < L.nt; ++t)
    for (int s = 0; s < kPerTensorIn; ++s) in.push_back(v[L.slot(t, s)]);
  in.push_back(ext);
  in.push_back(lr_mean);
  for (int i = 0; i < kMom; ++i) in.push_back(v[L.phi(i)]);
  in.push_back(momentum);
  return in;
}

// Everything the forward computes that the backward reads again.
struct StepSaved {
  torch::Tensor ext, lr_mean, momentum;  // pass-1 inputs (dtype T)
  torch::Tensor sums, sumsq;             // double [T, kH + kF], [T]
  std::vector<torch::Tensor> u;          // pass 1's unnormalised steps
};

// The whole step: passes 0-3. Returns the Function's outputs (StepLayout's out_* order).
template <typename T>
torch::autograd::variable_list step_forward(const StepLayout& L, const StepConfig& c,
                                            const torch::autograd::variable_list& v, StepSaved* saved) {
  const int64_t nt = L.nt;
  const auto opts = v[L.slot(0, kG)].options();
  std::vector<int64_t> sizes(nt);
  int64_t total = 0;
  for (int64_t t = 0; t < nt; ++t) total += sizes[t] = v[L.slot(t, kG)].numel();

  // Pass 0.
  const auto sums_lr = log_lr_sums<T>(L, v);
  auto lr_mean = torch::empty({nt}, opts);
  double all = 0;
  for (double x : sums_lr) all += x;
  for (int64_t t = 0; t < nt; ++t)
    lr_mean.data_ptr<T>()[t] = static_cast<T>(c.problem_lr_mean ? all / static_cast<double>(total)
                                                                : sums_lr[t] / static_cast<double>(sizes[t]));
  const auto ext = from_doubles(injected_bias(L, v, old_states(L, v)), {nt, 3 * kH}, opts);
  const auto momentum =
      torch::full({1}, sigmoid(to_doubles(v[L.phi(kPMomLogit)])[0]), opts.dtype(torch::kDouble)).to(opts.dtype());

  // Pass 1.
  const auto in1 = pass1_inputs(L, v, ext, lr_mean, momentum);
  auto p1 = run_forward<T>(InputView{in1}, static_cast<T>(c.min_log_lr), static_cast<T>(c.max_log_lr));
  const torch::Tensor sums = p1[nt * kPerTensorOut], sumsq = p1[nt * kPerTensorOut + 1];

  torch::autograd::variable_list out(L.num_outputs());
  // Pass 2.
  if (L.levels > 1) {
    const Higher hi = higher_forward(L, c, v, sums, sizes);
    for (int64_t t = 0; t < nt; ++t)
      out[L.out_layer_h(t)] = from_doubles(std::vector<double>(hi.a1.out.begin() + t * c.h1, hi.a1.out.begin() + (t + 1) * c.h1),
                                           {1, c.h1}, opts);
    if (L.levels > 2) out[L.out_global_h()] = from_doubles(hi.a2.out, {1, c.h2}, opts);
  }

  // Pass 3: θ' = θ + step, step = −exp(offset)·u/rms(Δ).
  const double offset = std::exp(to_doubles(v[L.phi(kPOffset)])[0]);
  const double* q = sumsq.data_ptr<double>();
  for (int64_t t = 0; t < nt; ++t) {
    const auto& theta = v[L.theta(t)];
    const T scale = static_cast<T>(-offset / std::sqrt(q[t] / static_cast<double>(sizes[t]) + 1e-16));
    auto np = torch::empty(theta.sizes(), opts), st = torch::empty(theta.sizes(), opts);
    const T* u = p1[t * kPerTensorOut + kOU].template data_ptr<T>();
    const auto th = theta.contiguous();
    const T* x = th.template data_ptr<T>();
    T *pp = np.template data_ptr<T>(), *ps = st.template data_ptr<T>();
    at::parallel_for(0, chunks_of(sizes[t]), 1, [&](int64_t b, int64_t e) {
      for (int64_t i = b * kChunk; i < std::min(sizes[t], e * kChunk); ++i) {
        ps[i] = u[i] * scale;
        pp[i] = x[i] + ps[i];
      }
    });
    out[t * kStepPerTensorOut] = np;
    out[t * kStepPerTensorOut + 1] = st;
    for (int s = 0; s < kPerTensorOut; ++s)
      if (s != kOU) out[t * kStepPerTensorOut + step_out_of(s)] = p1[t * kPerTensorOut + s];
  }
  if (saved != nullptr) {
    saved->ext = ext;
    saved->lr_mean = lr_mean;
    saved->momentum = momentum;
    saved->sums = sums;
    saved->sumsq = sumsq;
    for (int64_t t = 0; t < nt; ++t) saved->u.push_back(p1[t * kPerTensorOut + kOU]);
  }
  return out;
}

// The vector-Jacobian product of step_forward for every input (undefined where not needed).
template <typename T>
torch::autograd::variable_list step_backward(const StepLayout& L, const StepConfig& c,
                                             const torch::autograd::variable_list& v, const StepSaved& sv,
                                             const torch::autograd::variable_list& gout, const std::vector<bool>& needs) {
  const int64_t nt = L.nt;
  const auto opts = v[L.slot(0, kG)].options();
  std::vector<int64_t> sizes(nt);
  int64_t total = 0;
  for (int64_t t = 0; t < nt; ++t) total += sizes[t] = v[L.slot(t, kG)].numel();
  torch::autograd::variable_list grads(L.num_inputs());

  // Pass 3 backward: G = ∂θ' + ∂step; ∂u = scale·G; ∂scale = Σ u·G.
  const double offset = std::exp(to_doubles(v[L.phi(kPOffset)])[0]);
  const double* q = sv.sumsq.data_ptr<double>();
  std::vector<double> g_sumsq(nt, 0);
  double g_offset = 0;
  std::vector<torch::Tensor> g_u(nt);
  for (int64_t t = 0; t < nt; ++t) {
    const auto& gp = gout[t * kStepPerTensorOut];
    const auto& gs = gout[t * kStepPerTensorOut + 1];
    if (gp.defined() && needs[L.theta(t)]) grads[L.theta(t)] = gp;
    if (!gp.defined() && !gs.defined()) continue;
    const auto gpc = gp.defined() ? gp.contiguous() : gp, gsc = gs.defined() ? gs.contiguous() : gs;
    const T* a = gp.defined() ? gpc.template data_ptr<T>() : nullptr;
    const T* b = gs.defined() ? gsc.template data_ptr<T>() : nullptr;
    const T* u = sv.u[t].template data_ptr<T>();
    const double rms = std::sqrt(q[t] / static_cast<double>(sizes[t]) + 1e-16), scale = -offset / rms;
    g_u[t] = torch::empty({sizes[t]}, opts);
    T* gu = g_u[t].template data_ptr<T>();
    const T sc = static_cast<T>(scale);
    std::vector<double> dots(chunks_of(sizes[t]), 0);
    at::parallel_for(0, chunks_of(sizes[t]), 1, [&](int64_t cb, int64_t ce) {
      for (int64_t k = cb; k < ce; ++k) {
        double d = 0;
        for (int64_t i = k * kChunk; i < std::min(sizes[t], (k + 1) * kChunk); ++i) {
          const T g = (a != nullptr ? a[i] : T(0)) + (b != nullptr ? b[i] : T(0));
          gu[i] = g * sc;
          d += static_cast<double>(u[i]) * g;
        }
        dots[k] = d;
      }
    });
    double dot = 0;
    for (double d : dots) dot += d;  // chunk order: the same bits for every thread count
    g_offset += dot * scale;
    g_sumsq[t] = dot * (-scale) / (2 * rms * rms * static_cast<double>(sizes[t]));
  }

  // Pass 2 backward.
  const int64_t f1 = kH + fused::kF;
  std::vector<double> g_in1(nt * f1, 0), g_layer_h, g_global_h;
  Higher hi = higher_forward(L, c, v, sv.sums, sizes);
  std::unique_ptr<GruGrads> gw1, gw2;
  std::vector<double> g_lb_b, g_lb_w;  // layer_bias_b, layer_bias_w
  if (L.levels > 1) {
    std::vector<double> d1(nt * c.h1, 0);
    for (int64_t t = 0; t < nt; ++t) {
      const auto& g = gout[L.out_layer_h(t)];
      if (!g.defined()) continue;
      const auto gd = to_doubles(g);
      std::copy(gd.begin(), gd.end(), d1.begin() + t * c.h1);
    }
    g_layer_h.assign(nt * c.h1, 0);
    if (L.levels > 2) {
      g_global_h.assign(c.h2, 0);
      gw2 = std::make_unique<GruGrads>(hi.c2);
      const auto& g = gout[L.out_global_h()];
      if (g.defined()) {
        std::vector<double> d2 = to_doubles(g), g_in2(c.h1, 0);
        gru_backward(hi.c2, hi.in2, hi.global_h, hi.a2, d2, 1, g_in2, g_global_h, nullptr, *gw2);
        for (int64_t k = 0; k < c.h1; ++k) {
          if (c.global_mean)
            for (int64_t t = 0; t < nt; ++t) d1[t * c.h1 + k] += g_in2[k] / static_cast<double>(nt);
          else
            d1[(nt - 1) * c.h1 + k] += g_in2[k];
        }
      }
    }
    gw1 = std::make_unique<GruGrads>(hi.c1);
    std::vector<double> g_ext1(L.levels > 2 ? nt * 3 * c.h1 : 0, 0);
    gru_backward(hi.c1, hi.in1, hi.layer_h, hi.a1, d1, nt, g_in1, g_layer_h, L.levels > 2 ? &g_ext1 : nullptr, *gw1);
    if (L.levels > 2) {
      // ext1 = layer_bias_b + global_h·layer_bias_w, the same row for every tensor.
      g_lb_b.assign(3 * c.h1, 0);
      for (int64_t t = 0; t < nt; ++t)
        for (int64_t j = 0; j < 3 * c.h1; ++j) g_lb_b[j] += g_ext1[t * 3 * c.h1 + j];
      g_lb_w.assign(c.h2 * 3 * c.h1, 0);
      const auto lbw = to_doubles(v[L.phi(kPLayerBiasW)]);
      for (int64_t k = 0; k < c.h2; ++k)
        for (int64_t j = 0; j < 3 * c.h1; ++j) {
          g_lb_w[k * 3 * c.h1 + j] += hi.global_h[k] * g_lb_b[j];
          g_global_h[k] += lbw[k * 3 * c.h1 + j] * g_lb_b[j];
        }
    }
  }

  // Pass 1 backward.
  const auto in1 = pass1_inputs(L, v, sv.ext, sv.lr_mean, sv.momentum);
  const InputView view{in1};
  torch::autograd::variable_list g1(nt * kPerTensorOut + 2);
  std::vector<bool> needs1(in1.size(), false);
  bool any_log_lr = false;
  for (int64_t t = 0; t < nt; ++t) {
    for (int s = 0; s < kPerTensorOut; ++s)
      g1[t * kPerTensorOut + s] = s == kOU ? g_u[t] : gout[t * kStepPerTensorOut + step_out_of(s)];
    for (int s = 0; s < kPerTensorIn; ++s) needs1[view.index_of(t, s)] = needs[L.slot(t, s)];
    any_log_lr = any_log_lr || needs[L.slot(t, kLogLr)];
  }
  std::vector<double> gsums(nt * f1);
  for (int64_t t = 0; t < nt; ++t)
    for (int64_t j = 0; j < f1; ++j) gsums[t * f1 + j] = g_in1[t * f1 + j] / static_cast<double>(sizes[t]);
  g1[nt * kPerTensorOut] = from_doubles(gsums, {nt, f1}, opts);
  g1[nt * kPerTensorOut + 1] = from_doubles(g_sumsq, {nt}, opts);
  needs1[nt * kPerTensorIn] = L.levels > 1;
  needs1[nt * kPerTensorIn + 1] = any_log_lr;
  for (int i = 0; i < kMom; ++i) needs1[view.phi_index(i)] = needs[L.phi(i)];
  needs1[view.phi_index(kMom)] = needs[L.phi(kPMomLogit)];
  auto gi = run_backward<T>(view, g1, needs1, static_cast<T>(c.min_log_lr), static_cast<T>(c.max_log_lr));
  for (int64_t t = 0; t < nt; ++t)
    for (int s = 0; s < kPerTensorIn; ++s) grads[L.slot(t, s)] = gi[view.index_of(t, s)];
  for (int i = 0; i < kMom; ++i) grads[L.phi(i)] = gi[view.phi_index(i)];

  // Pass 0 backward: lr_mean → every log lr; ext → the old tensor and global states and their weights;
  // σ(logit) → logit.
  if (any_log_lr && gi[nt * kPerTensorIn + 1].defined()) {
    const auto glm = to_doubles(gi[nt * kPerTensorIn + 1]);
    double all = 0;
    for (double x : glm) all += x;
    for (int64_t t = 0; t < nt; ++t) {
      auto& g = grads[L.slot(t, kLogLr)];
      if (!g.defined()) continue;
      const T add = static_cast<T>(c.problem_lr_mean ? all / static_cast<double>(total) : glm[t] / static_cast<double>(sizes[t]));
      T* p = g.template data_ptr<T>();
      at::parallel_for(0, sizes[t], kChunk, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) p[i] += add;
      });
    }
  }
  if (needs[L.phi(kPMomLogit)]) {
    const double m = sigmoid(to_doubles(v[L.phi(kPMomLogit)])[0]);
    grads[L.phi(kPMomLogit)] = gi[view.phi_index(kMom)] * static_cast<T>(m * (1 - m));
  }
  if (needs[L.phi(kPOffset)]) grads[L.phi(kPOffset)] = from_doubles({g_offset}, {1}, opts);
  if (L.levels > 1) {
    const auto ge = to_doubles(gi[nt * kPerTensorIn]);  // [T, 3kH]
    std::vector<double> ge_sum(3 * kH, 0), g_pbw(c.h1 * 3 * kH, 0);
    const auto pbw = to_doubles(v[L.phi(kPParamBiasW)]);
    for (int64_t t = 0; t < nt; ++t)
      for (int j = 0; j < 3 * kH; ++j) {
        ge_sum[j] += ge[t * 3 * kH + j];
        for (int64_t k = 0; k < c.h1; ++k) {
          g_pbw[k * 3 * kH + j] += hi.layer_h[t * c.h1 + k] * ge[t * 3 * kH + j];
          g_layer_h[t * c.h1 + k] += pbw[k * 3 * kH + j] * ge[t * 3 * kH + j];
        }
      }
    auto set = [&](int64_t idx, const std::vector<double>& g) {
      if (needs[idx]) grads[idx] = from_doubles(g, v[idx].sizes(), opts);
    };
    auto set_gru = [&](int first, const GruGrads& g) {  // w_gates, b_gates, w_cand, b_cand
      set(L.phi(first), g.wg);
      set(L.phi(first + 1), g.bg);
      set(L.phi(first + 2), g.wc);
      set(L.phi(first + 3), g.bc);
    };
    for (int64_t t = 0; t < nt; ++t)
      set(L.layer_h(t), std::vector<double>(g_layer_h.begin() + t * c.h1, g_layer_h.begin() + (t + 1) * c.h1));
    set(L.phi(kPParamBiasW), g_pbw);
    set(L.phi(kPParamBiasB), ge_sum);
    set_gru(kPC1Wg, *gw1);
    if (L.levels > 2) {
      std::vector<double> g_gbw(c.h2 * 3 * kH, 0);
      const auto gbw = to_doubles(v[L.phi(kPGlobalBiasW)]);
      for (int64_t k = 0; k < c.h2; ++k)
        for (int j = 0; j < 3 * kH; ++j) {
          g_gbw[k * 3 * kH + j] = hi.global_h[k] * ge_sum[j];
          g_global_h[k] += gbw[k * 3 * kH + j] * ge_sum[j];
        }
      set(L.global_h(), g_global_h);
      set(L.phi(kPGlobalBiasW), g_gbw);
      set(L.phi(kPGlobalBiasB), ge_sum);
      set(L.phi(kPLayerBiasW), g_lb_w);
      set(L.phi(kPLayerBiasB), g_lb_b);
      set_gru(kPC2Wg, *gw2);
    }
  }
  for (size_t i = 0; i < grads.size(); ++i)
    if (!needs[i]) grads[i] = torch::Tensor();
  return grads;
}

// The whole step as one autograd node.
struct FusedStep : public torch::autograd::Function<FusedStep> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, at::TensorList inputs,
                                                int64_t nt, int64_t levels, int64_t h1, int64_t h2,
                                                bool problem_lr_mean, bool global_mean, double min_log_lr,
                                                double max_log_lr) {
    const torch::autograd::variable_list v(inputs.begin(), inputs.end());
    const StepLayout L{nt, levels};
    const StepConfig c{h1, h2, problem_lr_mean, global_mean, min_log_lr, max_log_lr};
    StepSaved sv;
    auto out = v[0].scalar_type() == torch::kFloat ? step_forward<float>(L, c, v, &sv) : step_forward<double>(L, c, v, &sv);
    ctx->save_for_backward(v);
    ctx->saved_data["config"] = std::vector<int64_t>{nt, levels, h1, h2, problem_lr_mean, global_mean};
    ctx->saved_data["min_log_lr"] = min_log_lr;
    ctx->saved_data["max_log_lr"] = max_log_lr;
    ctx->saved_data["small"] = std::vector<torch::Tensor>{sv.ext, sv.lr_mean, sv.momentum, sv.sums, sv.sumsq};
    ctx->saved_data["u"] = sv.u;
    ctx->set_materialize_grads(false);
    return out;
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    L2O_CHECK(!torch::GradMode::is_enabled(),
              "the fused HierarchicalRNN step has no second derivative (a backward with create_graph); "
              "build the optimizer with fused=false for that");
    const auto saved = ctx->get_saved_variables();
    std::vector<bool> needs(saved.size());
    for (size_t i = 0; i < saved.size(); ++i) needs[i] = ctx->needs_input_grad(i);
    const auto cfg = ctx->saved_data["config"].toIntVector();
    const StepLayout L{cfg[0], cfg[1]};
    const StepConfig c{cfg[2], cfg[3], cfg[4] != 0, cfg[5] != 0, ctx->saved_data["min_log_lr"].toDouble(),
                       ctx->saved_data["max_log_lr"].toDouble()};
    const auto small = ctx->saved_data["small"].toTensorVector();
    StepSaved sv{small[0], small[1], small[2], small[3], small[4], ctx->saved_data["u"].toTensorVector()};
    auto grads = saved[0].scalar_type() == torch::kFloat ? step_backward<float>(L, c, saved, sv, grad_out, needs)
                                                         : step_backward<double>(L, c, saved, sv, grad_out, needs);
    for (int i = 0; i < 8; ++i) grads.emplace_back();  // the non-tensor arguments
    return grads;
  }
};

}  // namespace

std::string HierarchicalRnnOptions::fused_fallback_reason() const {
  if (!fused()) return "fused=false";
  if (level_sizes()[0] != kH) return "the per-coordinate level has " + std::to_string(level_sizes()[0]) + " units, the kernel 10";
  if (num_gradient_scales() != kK) return "num_gradient_scales=" + std::to_string(num_gradient_scales()) + ", the kernel has 4";
  if (!dynamic_output_scale()) return "dynamic_output_scale=false";
  if (!use_grad_products() || !use_log_means_squared() || !use_relative_lr())
    return "use_grad_products, use_log_means_squared and use_relative_lr must be true";
  if (use_extreme_indicator() || use_lr_shortcut()) return "use_extreme_indicator or use_lr_shortcut";
  if (use_multiple_scale_decays()) return "use_multiple_scale_decays=true";
  return "";
}

bool HierarchicalRnn::uses_fused(const TensorList& grads) const {
  if (!options_.fused_fallback_reason().empty() || grads.empty()) return false;
  const auto dtype = update_w_.scalar_type();
  if (dtype != torch::kFloat && dtype != torch::kDouble) return false;
  for (const auto& g : grads)
    if (g.scalar_type() != dtype || !g.device().is_cpu() || g.numel() == 0) return false;
  return true;
}

optim::UpdateResult HierarchicalRnn::update_fused(const TensorList& params, const TensorList& grads,
                                                  const optim::State& state) const {
  const auto& o = options_;
  const int64_t levels = o.num_levels();
  const int64_t nt = static_cast<int64_t>(params.size());
  const auto opts = grads[0].options().requires_grad(false);
  const StepLayout L{nt, levels};
  torch::autograd::variable_list in;
  in.reserve(L.num_inputs());
  for (int64_t t = 0; t < nt; ++t) {
    in.push_back(params[t]);
    in.push_back(grads[t].reshape({-1}).contiguous());
    const auto& h = state.at("param_h")[t];
    // Row-major, coordinate-minor and broadcast (the initial state) layouts are read as they are.
    in.push_back(h.stride(0) == 1 || h.stride(1) == 1 ? h : h.contiguous());
    in.push_back(state.at("scl_decay")[t].contiguous());
    in.push_back(state.at("inp_decay")[t].contiguous());
    in.push_back(state.at("log_lr")[t].contiguous());
    for (int i = 0; i < kK; ++i) in.push_back(state.at("acc" + std::to_string(i))[t].contiguous());
    for (int i = 0; i < kK; ++i) in.push_back(state.at("ms" + std::to_string(i))[t].contiguous());
  }
  if (levels > 1)
    for (const auto& row : state.at("layer_h")) in.push_back(row);
  if (levels > 2) in.push_back(state.at("global_h").at(0));
  const BiasGru& c0 = cells_[0];
  const auto shortcut = o.use_gradient_shortcut() ? shortcut_w_ : torch::zeros({kK}, opts);
  for (const auto& p : {c0.w_gates, c0.b_gates, c0.w_cand, c0.b_cand, update_w_, shortcut, scl_w_, scl_b_, inp_w_,
                        inp_b_, lr_w_, lr_b_, lr_momentum_logit_, stepsize_offset_})
    in.push_back(p.contiguous());
  if (levels > 1)
    for (const auto& p : {param_bias_w_, param_bias_b_, cells_[1].w_gates, cells_[1].b_gates, cells_[1].w_cand,
                          cells_[1].b_cand})
      in.push_back(p.contiguous());
  if (levels > 2)
    for (const auto& p : {global_bias_w_, global_bias_b_, layer_bias_w_, layer_bias_b_, cells_[2].w_gates,
                          cells_[2].b_gates, cells_[2].w_cand, cells_[2].b_cand})
      in.push_back(p.contiguous());

  const auto& sizes = o.level_sizes();
  const int64_t h1 = levels > 1 ? sizes[1] : 0, h2 = levels > 2 ? sizes[2] : 0;
  const bool global_mean = o.global_input() == "mean";
  bool graph = false;
  if (torch::GradMode::is_enabled())
    for (const auto& x : in) graph = graph || x.requires_grad();
  torch::autograd::variable_list out;
  if (graph) {
    out = FusedStep::apply(at::TensorList(in), nt, levels, h1, h2, o.use_problem_lr_mean(), global_mean,
                           o.min_log_lr(), o.max_log_lr());
  } else {
    const StepConfig c{h1, h2, o.use_problem_lr_mean(), global_mean, o.min_log_lr(), o.max_log_lr()};
    out = opts.dtype() == torch::kFloat ? step_forward<float>(L, c, in, nullptr) : step_forward<double>(L, c, in, nullptr);
  }

  optim::UpdateResult r;
  r.state.step = state.step + 1;
  for (int64_t t = 0; t < nt; ++t) {
    const auto* o_t = &out[t * kStepPerTensorOut];
    r.params.push_back(o_t[0]);
    r.steps.push_back(o_t[1]);
    r.state["param_h"].push_back(o_t[step_out_of(kOH)]);
    r.state["scl_decay"].push_back(o_t[step_out_of(kOScl)]);
    r.state["inp_decay"].push_back(o_t[step_out_of(kOInp)]);
    r.state["log_lr"].push_back(o_t[step_out_of(kOLogLr)]);
  }
  for (int i = 0; i < kK; ++i)
    for (int64_t t = 0; t < nt; ++t) {
      r.state["acc" + std::to_string(i)].push_back(out[t * kStepPerTensorOut + step_out_of(kOAcc0 + i)]);
      r.state["ms" + std::to_string(i)].push_back(out[t * kStepPerTensorOut + step_out_of(kOMs0 + i)]);
    }
  if (levels > 1)
    for (int64_t t = 0; t < nt; ++t) r.state["layer_h"].push_back(out[L.out_layer_h(t)]);
  if (levels > 2) r.state["global_h"] = {out[L.out_global_h()]};
  return r;
}

}  // namespace learned
}  // namespace l2o
