// The per-row table that turns prefill into decode-attention queries (model/gpu_attention_table.h),
// and the step layout checks. Runs everywhere.
#include "model/gpu_attention_table.h"

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"

namespace moeflow {
namespace {

StepLayout layout_of(const std::vector<StepSequence>& seqs) {
  StepLayout l;
  l.sequences = seqs;
  int64_t rows = 0;
  for (const auto& s : seqs) rows = std::max(rows, s.first_row + s.count);
  l.row_seq_ids.assign(rows, 0);
  l.positions.assign(rows, 0);
  for (const auto& s : seqs)
    for (int64_t j = 0; j < s.count; ++j) {
      l.row_seq_ids[s.first_row + j] = s.seq_id;
      l.positions[s.first_row + j] = static_cast<int32_t>(s.first_position + j);
    }
  return l;
}

// Distinct fake device pointers (never dereferenced).
const float* fake(uintptr_t v) {
  return reinterpret_cast<const float*>(v * 256);
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(GpuAttentionTable, PrefillRowsSeeTheirCausalPrefix) {
  // Sequence 5: a prefill of 3 new tokens after 2 cached; sequence 9: one decode token at 7;
  // sequence 4: a fresh prefill of 2. Rows interleaved out of sequence order on purpose.
  const StepLayout l = layout_of({{5, 0, 3, 2}, {9, 5, 1, 7}, {4, 3, 2, 0}});
  const AttentionTable t = build_attention_table(
      l, {{fake(1), fake(2), 5}, {fake(3), fake(4), 8}, {fake(5), fake(6), 2}});
  ASSERT_EQ(t.rows(), 6);
  EXPECT_EQ(t.kv_lens, (std::vector<int32_t>{3, 4, 5, 1, 2, 8}));
  EXPECT_EQ(t.keys,
            (std::vector<const float*>{fake(1), fake(1), fake(1), fake(5), fake(5), fake(3)}));
  EXPECT_EQ(t.values,
            (std::vector<const float*>{fake(2), fake(2), fake(2), fake(6), fake(6), fake(4)}));
  EXPECT_EQ(t.kv_len_max, 8);
}

TEST(GpuAttentionTable, OneDecodeRow) {
  const StepLayout l = layout_of({{1, 0, 1, 0}});
  const AttentionTable t = build_attention_table(l, {{fake(1), fake(2), 1}});
  EXPECT_EQ(t.kv_lens, (std::vector<int32_t>{1}));
}

TEST(GpuAttentionTable, RefusesACacheThatDisagreesWithTheLayout) {
  const StepLayout l = layout_of({{5, 0, 3, 2}});
  EXPECT_NE(message_of([&] {
              build_attention_table(l, {{fake(1), fake(2), 4}});
            }).find("sequence 5 (rows 0+3, first position 2) has 4 cached rows, expected 5"),
            std::string::npos);
  EXPECT_NE(message_of([&] {
              build_attention_table(l, {{nullptr, fake(2), 5}});
            }).find("no cache pointers"),
            std::string::npos);
  EXPECT_NE(message_of([&] { build_attention_table(l, {}); }).find("0 caches for 1 sequences"),
            std::string::npos);
}

TEST(GpuAttentionTable, RefusesMalformedLayouts) {
  StepLayout gap = layout_of({{1, 0, 2, 0}});
  gap.positions.push_back(0);
  gap.row_seq_ids.push_back(1);
  EXPECT_NE(message_of([&] { check_step_layout(gap); }).find("row 2 belongs to no sequence"),
            std::string::npos);
  StepLayout overlap = layout_of({{1, 0, 2, 0}, {2, 1, 1, 0}});
  EXPECT_NE(message_of([&] { check_step_layout(overlap); }).find("row 1 is in two sequences"),
            std::string::npos);
  StepLayout outside = layout_of({{1, 0, 2, 0}});
  outside.sequences[0].count = 3;
  EXPECT_NE(message_of([&] { check_step_layout(outside); }).find("outside the 2 rows"),
            std::string::npos);
  StepLayout ids = layout_of({{1, 0, 2, 0}});
  ids.row_seq_ids.pop_back();
  EXPECT_NE(message_of([&] { check_step_layout(ids); }).find("1 row ids for 2 positions"),
            std::string::npos);
  StepLayout far = layout_of({{1, 0, 1, 0}});
  far.sequences[0].first_position = int64_t{1} << 31;
  EXPECT_NE(message_of([&] { check_step_layout(far); }).find("beyond int32"), std::string::npos);
  EXPECT_NO_THROW(check_step_layout(StepLayout{}));
}

}  // namespace
}  // namespace moeflow
