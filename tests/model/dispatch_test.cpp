// split_batch / add_slice_output: the dispatch and combine steps between router and shards.
#include "model/dispatch.h"

#include <gtest/gtest.h>

namespace moeflow {
namespace {

// Three rows of width 2, top-2 routing over experts 0..3.
TokenBatchPtr sample_batch() {
  auto b = std::make_shared<TokenBatch>();
  b->layer = 1;
  b->hidden_size = 2;
  b->top_k = 2;
  b->rows = {1, 2, 3, 4, 5, 6};
  b->seq_ids = {7, 7, 8};
  b->positions = {0, 1, 0};
  b->experts = {0, 1, 2, 3, 0, 2};
  b->weights = {0.6f, 0.4f, 0.7f, 0.3f, 0.5f, 0.5f};
  return b;
}

TEST(Dispatch, OneHolderOfEveryPairSharesTheBatchWithoutCopying) {
  const TokenBatchPtr batch = sample_batch();
  const auto slices = split_batch(batch, 3, [](int64_t, int32_t) { return 2; });
  ASSERT_EQ(slices.size(), 1u);
  EXPECT_EQ(slices[0].holder, 2);
  EXPECT_EQ(slices[0].batch.get(), batch.get());
  EXPECT_EQ(slices[0].rows, (std::vector<int64_t>{0, 1, 2}));
}

TEST(Dispatch, SplitSlicesMaskOtherHoldersAndCombineBackInRowOrder) {
  const TokenBatchPtr batch = sample_batch();
  // Experts 0 and 1 on holder 0, 2 and 3 on holder 1.
  const auto slices = split_batch(batch, 2, [](int64_t, int32_t e) { return e < 2 ? 0 : 1; });
  ASSERT_EQ(slices.size(), 2u);
  EXPECT_NE(slices[0].batch.get(), batch.get());
  EXPECT_EQ(slices[0].rows, (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(slices[0].batch->experts, (std::vector<int32_t>{0, 1, 0, -1}));
  EXPECT_EQ(slices[0].batch->weights, (std::vector<float>{0.6f, 0.4f, 0.5f, 0.0f}));
  EXPECT_EQ(slices[0].batch->rows, (std::vector<float>{1, 2, 5, 6}));
  EXPECT_EQ(slices[1].rows, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(slices[1].batch->experts, (std::vector<int32_t>{2, 3, -1, 2}));
  std::vector<float> routed(6, 0.0f);
  const std::vector<float> out0 = {10, 10, 20, 20}, out1 = {1, 1, 2, 2};
  add_slice_output(slices[0], out0.data(), routed.data());
  add_slice_output(slices[1], out1.data(), routed.data());
  EXPECT_EQ(routed, (std::vector<float>{10, 10, 1, 1, 22, 22}));
}

TEST(Dispatch, PairsAlreadyMaskedDoNotPreventSharing) {
  auto b = std::make_shared<TokenBatch>(*sample_batch());
  b->experts = {0, -1, -1, 1, 0, -1};
  const auto slices = split_batch(b, 2, [](int64_t, int32_t e) { return e < 0 ? -1 : 1; });
  ASSERT_EQ(slices.size(), 1u);
  EXPECT_EQ(slices[0].batch.get(), b.get());
}

}  // namespace
}  // namespace moeflow
