// The fused HierarchicalRNN step (SPEC §6.1): LibTorch glue around the kernels of
// hrnn_fused_kernel.h.
//
// Pass 0 (here, LibTorch ops): the mean log learning rate and each tensor's injected bias, from the
// previous step's tensor and global states. Pass 1 (kernel, at::parallel_for over chunks of
// coordinates): features, per-coordinate BiasGRU, read-outs, u = exp(step_log_lr)·Δ and per-chunk
// partial sums, reduced in chunk order so that a thread count gives the same bits on every run.
// Pass 2 (ops): the per-tensor and global GRUs on the tensor means. Pass 3: θ' = θ − e^{offset}·u/rms(Δ).
// Passes 0, 2 and 3 act on a few dozen numbers per tensor (or are one product), so they stay
// ordinary differentiable ops; pass 1 is one autograd Function whose backward is the hand-written
// vector-Jacobian product of the kernel.
#include <l2o/core/error.h>
#include <l2o/learned/hierarchical_rnn.h>

#include "hrnn_fused_kernel.h"

#include <ATen/Parallel.h>
#include <torch/autograd.h>
#include <torch/torch.h>

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
// (Σ h', Σ x per tensor) and sumsq [T].
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
  out.push_back(sums.to(opts.dtype()));
  out.push_back(sumsq.to(opts.dtype()));
  return out;
}

template <typename T>
const T* ptr_or_null(const torch::Tensor& t) {
  return t.defined() ? t.data_ptr<T>() : nullptr;
}

// Pass 1 backward: gradients for every input of the Function (undefined where not needed).
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
  set(base, cast(g_ext));
  set(base + 1, cast(g_lrmean));
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

// Pass 1 as one autograd node.
struct FusedCoordinateStep : public torch::autograd::Function<FusedCoordinateStep> {
  static torch::autograd::variable_list forward(torch::autograd::AutogradContext* ctx, at::TensorList inputs,
                                                double min_log_lr, double max_log_lr) {
    const torch::autograd::variable_list v(inputs.begin(), inputs.end());
    ctx->save_for_backward(v);
    ctx->saved_data["min_log_lr"] = min_log_lr;
    ctx->saved_data["max_log_lr"] = max_log_lr;
    ctx->set_materialize_grads(false);
    const InputView in{v};
    return v[0].scalar_type() == torch::kFloat
               ? run_forward<float>(in, static_cast<float>(min_log_lr), static_cast<float>(max_log_lr))
               : run_forward<double>(in, min_log_lr, max_log_lr);
  }

  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grad_out) {
    L2O_CHECK(!torch::GradMode::is_enabled(),
              "the fused HierarchicalRNN step has no second derivative (a backward with create_graph); "
              "build the optimizer with fused=false for that");
    const auto saved = ctx->get_saved_variables();
    std::vector<bool> needs(saved.size());
    for (size_t i = 0; i < saved.size(); ++i) needs[i] = ctx->needs_input_grad(i);
    const InputView in{saved};
    const double lo = ctx->saved_data["min_log_lr"].toDouble(), hi = ctx->saved_data["max_log_lr"].toDouble();
    auto grads = saved[0].scalar_type() == torch::kFloat
                     ? run_backward<float>(in, grad_out, needs, static_cast<float>(lo), static_cast<float>(hi))
                     : run_backward<double>(in, grad_out, needs, lo, hi);
    grads.emplace_back();  // min_log_lr
    grads.emplace_back();  // max_log_lr
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
  std::vector<int64_t> sizes;
  for (const auto& g : grads) sizes.push_back(g.numel());
  const auto& log_lr = state.at("log_lr");

  // Pass 0: the relative-lr mean and the bias injected by the old tensor and global states.
  torch::Tensor lr_mean;
  if (o.use_problem_lr_mean()) {
    torch::Tensor total = log_lr[0].sum();
    for (int64_t t = 1; t < nt; ++t) total = total + log_lr[t].sum();
    lr_mean = (total / static_cast<double>(l2o::numel(grads))).expand({nt});
  } else {
    TensorList means;
    for (const auto& l : log_lr) means.push_back(l.mean());
    lr_mean = torch::stack(means);
  }
  torch::Tensor layer_h, global_h, ext;
  if (levels > 1) {
    layer_h = cat_rows(state.at("layer_h"));
    ext = torch::addmm(param_bias_b_, layer_h, param_bias_w_);
    if (levels > 2) {
      global_h = state.at("global_h").at(0);
      ext = ext + torch::addmm(global_bias_b_, global_h, global_bias_w_);
    }
  } else {
    ext = torch::zeros({nt, 3 * kH}, opts);
  }
  const auto shortcut = o.use_gradient_shortcut() ? shortcut_w_ : torch::zeros({kK}, opts);

  torch::autograd::variable_list in;
  in.reserve(nt * kPerTensorIn + 2 + kWeights);
  for (int64_t t = 0; t < nt; ++t) {
    in.push_back(grads[t].reshape({-1}).contiguous());
    const auto& h = state.at("param_h")[t];
    // Row-major, coordinate-minor and broadcast (the initial state) layouts are read as they are.
    in.push_back(h.stride(0) == 1 || h.stride(1) == 1 ? h : h.contiguous());
    in.push_back(state.at("scl_decay")[t].contiguous());
    in.push_back(state.at("inp_decay")[t].contiguous());
    in.push_back(log_lr[t].contiguous());
    for (int i = 0; i < kK; ++i) in.push_back(state.at("acc" + std::to_string(i))[t].contiguous());
    for (int i = 0; i < kK; ++i) in.push_back(state.at("ms" + std::to_string(i))[t].contiguous());
  }
  in.push_back(ext.contiguous());
  in.push_back(lr_mean.contiguous());
  const BiasGru& c0 = cells_[0];
  for (const auto& p : {c0.w_gates, c0.b_gates, c0.w_cand, c0.b_cand, update_w_, shortcut, scl_w_, scl_b_, inp_w_,
                        inp_b_, lr_w_, lr_b_, torch::sigmoid(lr_momentum_logit_)})
    in.push_back(p.contiguous());

  bool graph = false;
  if (torch::GradMode::is_enabled())
    for (const auto& x : in) graph = graph || x.requires_grad();
  torch::autograd::variable_list out;
  if (graph) {
    out = FusedCoordinateStep::apply(at::TensorList(in), o.min_log_lr(), o.max_log_lr());
  } else {
    const InputView view{in};
    out = opts.dtype() == torch::kFloat
              ? run_forward<float>(view, static_cast<float>(o.min_log_lr()), static_cast<float>(o.max_log_lr()))
              : run_forward<double>(view, o.min_log_lr(), o.max_log_lr());
  }
  const auto& sums = out[nt * kPerTensorOut];
  const auto& sumsq = out[nt * kPerTensorOut + 1];
  const auto n = torch::tensor(sizes, torch::kLong).to(opts.dtype());

  // Pass 2: the per-tensor and global GRUs.
  torch::Tensor new_layer_h, new_global_h;
  if (levels > 1) std::tie(new_layer_h, new_global_h) = higher_levels(sums / n.unsqueeze(1), layer_h, global_h);

  // Pass 3: θ' = θ − exp(offset)·u / rms(Δ), rms over each tensor.
  const auto scale = -torch::exp(stepsize_offset_) / torch::sqrt(sumsq / n + 1e-16);
  optim::UpdateResult r;
  r.state.step = state.step + 1;
  for (int64_t t = 0; t < nt; ++t) {
    const auto* o_t = &out[t * kPerTensorOut];
    r.steps.push_back((o_t[kOU] * scale[t]).view_as(params[t]));
    r.params.push_back(params[t] + r.steps.back());
    r.state["param_h"].push_back(o_t[kOH]);
    r.state["scl_decay"].push_back(o_t[kOScl]);
    r.state["inp_decay"].push_back(o_t[kOInp]);
    r.state["log_lr"].push_back(o_t[kOLogLr]);
  }
  for (int i = 0; i < kK; ++i)
    for (int64_t t = 0; t < nt; ++t) {
      r.state["acc" + std::to_string(i)].push_back(out[t * kPerTensorOut + kOAcc0 + i]);
      r.state["ms" + std::to_string(i)].push_back(out[t * kPerTensorOut + kOMs0 + i]);
    }
  if (levels > 1) r.state["layer_h"] = new_layer_h.split(1, 0);
  if (levels > 2) r.state["global_h"] = {new_global_h};
  return r;
}

}  // namespace learned
}  // namespace l2o
