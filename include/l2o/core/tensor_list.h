#pragma once
/// Helpers on lists of tensors: the parameters θ of an optimizee are a `TensorList`.
#include <torch/types.h>

#include <vector>

namespace l2o {

using TensorList = std::vector<torch::Tensor>;

/// Detached copies that share storage (for cutting a graph between unrolls).
TensorList detach(const TensorList& xs);
/// Deep copies.
TensorList clone(const TensorList& xs);
/// Detached copies that require grad: fresh leaves for a new unroll.
TensorList fresh_leaves(const TensorList& xs);
/// a - b elementwise per tensor.
TensorList sub(const TensorList& a, const TensorList& b);
/// Σ_i ‖x_i‖² as a double.
double squared_norm(const TensorList& xs);
/// Total number of elements.
int64_t numel(const TensorList& xs);
/// True when every element of every tensor is finite.
bool all_finite(const TensorList& xs);

/// All coordinates of all tensors as one vector (the batch of a coordinatewise rule) and how many
/// each tensor holds, to split results back with `split_with_sizes(sizes, 0)`.
struct Flattened {
  torch::Tensor values;
  std::vector<int64_t> sizes;
};
Flattened flatten(const TensorList& xs);
/// Tensors of shape [n_i, ...] stacked along dim 0 into [Σ n_i, ...]; one tensor is returned as is.
torch::Tensor cat_rows(const TensorList& xs);

}  // namespace l2o
