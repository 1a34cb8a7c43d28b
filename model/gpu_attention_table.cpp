#include "model/gpu_attention_table.h"

#include <algorithm>
#include <limits>
#include <string>

#include "core/error.h"

namespace moeflow {
namespace {

std::string seq_name(const StepSequence& s) {
  return "sequence " + std::to_string(s.seq_id) + " (rows " + std::to_string(s.first_row) + "+" +
         std::to_string(s.count) + ", first position " + std::to_string(s.first_position) + ")";
}

}  // namespace

void check_step_layout(const StepLayout& layout) {
  const int64_t n = layout.rows();
  if (static_cast<int64_t>(layout.row_seq_ids.size()) != n)
    throw Error("step layout: " + std::to_string(layout.row_seq_ids.size()) + " row ids for " +
                std::to_string(n) + " positions");
  std::vector<uint8_t> covered(n, 0);
  for (const StepSequence& s : layout.sequences) {
    if (s.count < 0 || s.first_row < 0 || s.first_position < 0 || s.first_row + s.count > n)
      throw Error("step layout: " + seq_name(s) + " outside the " + std::to_string(n) + " rows");
    if (s.first_position + s.count > std::numeric_limits<int32_t>::max())
      throw Error("step layout: " + seq_name(s) + " has positions beyond int32");
    for (int64_t r = s.first_row; r < s.first_row + s.count; ++r) {
      if (covered[r]) throw Error("step layout: row " + std::to_string(r) + " is in two sequences");
      covered[r] = 1;
    }
  }
  const auto gap = std::find(covered.begin(), covered.end(), 0);
  if (gap != covered.end())
    throw Error("step layout: row " + std::to_string(gap - covered.begin()) +
                " belongs to no sequence");
}

AttentionTable build_attention_table(const StepLayout& layout,
                                     const std::vector<SequenceCache>& caches) {
  check_step_layout(layout);
  if (caches.size() != layout.sequences.size())
    throw Error("attention table: " + std::to_string(caches.size()) + " caches for " +
                std::to_string(layout.sequences.size()) + " sequences");
  const int64_t n = layout.rows();
  AttentionTable t;
  t.keys.assign(n, nullptr);
  t.values.assign(n, nullptr);
  t.kv_lens.assign(n, 0);
  for (size_t i = 0; i < caches.size(); ++i) {
    const StepSequence& s = layout.sequences[i];
    const SequenceCache& c = caches[i];
    if (c.kv_len != s.first_position + s.count)
      throw Error("attention table: " + seq_name(s) + " has " + std::to_string(c.kv_len) +
                  " cached rows, expected " + std::to_string(s.first_position + s.count));
    if (c.kv_len > 0 && (c.keys == nullptr || c.values == nullptr))
      throw Error("attention table: " + seq_name(s) + " has no cache pointers");
    for (int64_t j = 0; j < s.count; ++j) {
      const int64_t row = s.first_row + j;
      t.keys[row] = c.keys;
      t.values[row] = c.values;
      t.kv_lens[row] = static_cast<int32_t>(s.first_position + j + 1);
    }
    t.kv_len_max = std::max(t.kv_len_max, c.kv_len);
  }
  return t;
}

}  // namespace moeflow
