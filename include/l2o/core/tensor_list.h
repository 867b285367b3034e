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

}  // namespace l2o
