#include <l2o/core/tensor_list.h>

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace l2o {
namespace {

TEST(TensorList, FlattenConcatenatesAllCoordinatesAndSplitsBack) {
  const TensorList xs = {torch::arange(6, torch::kFloat).reshape({2, 3}), torch::arange(6, 10, torch::kFloat)};
  const Flattened f = flatten(xs);
  EXPECT_EQ(f.sizes, (std::vector<int64_t>{6, 4}));
  EXPECT_TRUE(torch::equal(f.values, torch::arange(10, torch::kFloat)));
  const auto back = f.values.split_with_sizes(f.sizes, 0);
  EXPECT_TRUE(torch::equal(back[0].reshape({2, 3}), xs[0]));
  EXPECT_TRUE(torch::equal(back[1], xs[1]));
}

TEST(TensorList, CatRowsStacksAlongTheFirstDimensionAndPassesOneTensorThrough) {
  const TensorList rows = {torch::ones({2, 3}), torch::zeros({1, 3})};
  const auto c = cat_rows(rows);
  EXPECT_EQ(c.sizes(), (std::vector<int64_t>{3, 3}));
  EXPECT_EQ(c.sum().item<float>(), 6.0f);
  const auto one = torch::ones({4, 2});
  EXPECT_EQ(cat_rows({one}).data_ptr(), one.data_ptr());
}

}  // namespace
}  // namespace l2o
