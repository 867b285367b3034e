#include <l2o/core/tensor_list.h>

namespace l2o {

TensorList detach(const TensorList& xs) {
  TensorList out;
  out.reserve(xs.size());
  for (const auto& x : xs) out.push_back(x.detach());
  return out;
}

TensorList clone(const TensorList& xs) {
  TensorList out;
  out.reserve(xs.size());
  for (const auto& x : xs) out.push_back(x.clone());
  return out;
}

TensorList fresh_leaves(const TensorList& xs) {
  TensorList out;
  out.reserve(xs.size());
  for (const auto& x : xs) out.push_back(x.detach().requires_grad_(true));
  return out;
}

TensorList sub(const TensorList& a, const TensorList& b) {
  TensorList out;
  out.reserve(a.size());
  for (size_t i = 0; i < a.size(); ++i) out.push_back(a[i] - b[i]);
  return out;
}

double squared_norm(const TensorList& xs) {
  double s = 0;
  for (const auto& x : xs) s += x.detach().to(torch::kDouble).pow(2).sum().item<double>();
  return s;
}

int64_t numel(const TensorList& xs) {
  int64_t n = 0;
  for (const auto& x : xs) n += x.numel();
  return n;
}

bool all_finite(const TensorList& xs) {
  for (const auto& x : xs)
    if (!torch::isfinite(x.detach()).all().item<bool>()) return false;
  return true;
}

Flattened flatten(const TensorList& xs) {
  Flattened f;
  TensorList rows;
  rows.reserve(xs.size());
  f.sizes.reserve(xs.size());
  for (const auto& x : xs) {
    f.sizes.push_back(x.numel());
    rows.push_back(x.reshape({-1}));
  }
  f.values = cat_rows(rows);
  return f;
}

torch::Tensor cat_rows(const TensorList& xs) { return xs.size() == 1 ? xs[0] : torch::cat(xs, 0); }

}  // namespace l2o
