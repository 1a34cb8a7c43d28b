// KvCacheBook (the bookkeeping KvCache and GpuKvCache keep their rows by) against a reference
// cache that keeps the rules implicitly in its vectors' sizes (KvCache as it was before it used
// the book): the same calls give the same lengths and per-layer row counts, and KvCache the same
// rows read back. Runs everywhere.
#include "model/kv_cache_book.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <unordered_map>
#include <vector>

#include "core/error.h"
#include "model/kv_cache.h"

namespace moeflow {
namespace {

constexpr int64_t kLayers = 3, kKvDim = 2;

// The reference: every rule lives in the per-layer vectors' sizes.
class ReferenceKvCache {
 public:
  int64_t length(uint64_t seq) const {
    auto it = seqs_.find(seq);
    return it == seqs_.end() ? 0 : it->second.length;
  }
  int64_t append(uint64_t seq, int64_t layer, const float* k, const float* v, int64_t n) {
    Seq& s = get(seq);
    s.k[layer].insert(s.k[layer].end(), k, k + n * kKvDim);
    s.v[layer].insert(s.v[layer].end(), v, v + n * kKvDim);
    return static_cast<int64_t>(s.k[layer].size()) / kKvDim;
  }
  const std::vector<float>& keys(uint64_t seq, int64_t layer) { return get(seq).k[layer]; }
  const std::vector<float>& values(uint64_t seq, int64_t layer) { return get(seq).v[layer]; }
  void commit(uint64_t seq, int64_t n) { get(seq).length += n; }
  void truncate(uint64_t seq, int64_t length) {
    Seq& s = get(seq);
    s.length = std::min(s.length, length);
    for (auto& k : s.k) k.resize(std::min<size_t>(k.size(), s.length * kKvDim));
    for (auto& v : s.v) v.resize(std::min<size_t>(v.size(), s.length * kKvDim));
  }
  void release(uint64_t seq) { seqs_.erase(seq); }
  bool contains(uint64_t seq) const { return seqs_.count(seq) != 0; }
  size_t sequence_count() const { return seqs_.size(); }
  int64_t bytes() const {
    int64_t total = 0;
    for (const auto& [id, s] : seqs_)
      for (int64_t l = 0; l < kLayers; ++l)
        total += static_cast<int64_t>((s.k[l].size() + s.v[l].size()) * sizeof(float));
    return total;
  }

 private:
  struct Seq {
    int64_t length = 0;
    std::vector<std::vector<float>> k = std::vector<std::vector<float>>(kLayers),
                                    v = std::vector<std::vector<float>>(kLayers);
  };
  Seq& get(uint64_t seq) { return seqs_[seq]; }
  std::unordered_map<uint64_t, Seq> seqs_;
};

// Rows KvCache holds for a layer, read through what it exposes: bytes of one sequence alone.
void expect_same(const ReferenceKvCache& cache, const KvCacheBook& book, uint64_t seq) {
  EXPECT_EQ(cache.length(seq), book.length(seq)) << "sequence " << seq;
  EXPECT_EQ(cache.contains(seq), book.contains(seq)) << "sequence " << seq;
}

TEST(KvCacheBook, FollowsTheReferenceThroughAppendCommitTruncateRelease) {
  ReferenceKvCache cache;
  KvCacheBook book(kLayers);
  const std::vector<float> rows(64 * kKvDim, 1.0f);
  // A prefill of 5, a decode step, a failed step rolled back, a speculative step cut short.
  for (int64_t l = 0; l < kLayers; ++l) {
    EXPECT_EQ(cache.append(7, l, rows.data(), rows.data(), 5), book.append(7, l, 5));
  }
  cache.commit(7, 5);
  book.commit(7, 5);
  expect_same(cache, book, 7);
  for (int64_t l = 0; l < kLayers; ++l)
    EXPECT_EQ(cache.append(7, l, rows.data(), rows.data(), 1), book.append(7, l, 1));
  cache.commit(7, 1);
  book.commit(7, 1);
  // Failed step: two layers appended, never committed, then rolled back.
  for (int64_t l = 0; l < 2; ++l)
    EXPECT_EQ(cache.append(7, l, rows.data(), rows.data(), 3), book.append(7, l, 3));
  EXPECT_EQ(book.rows(7, 0), 9);
  EXPECT_EQ(book.rows(7, 2), 6);
  cache.truncate(7, cache.length(7));
  book.truncate(7, book.length(7));
  expect_same(cache, book, 7);
  for (int64_t l = 0; l < kLayers; ++l) EXPECT_EQ(book.rows(7, l), 6) << "layer " << l;
  EXPECT_EQ(cache.bytes(), book.rows_total() * 2 * kKvDim * int64_t{sizeof(float)});
  // Cut back into the committed rows (rejected speculative tokens).
  cache.truncate(7, 4);
  book.truncate(7, 4);
  expect_same(cache, book, 7);
  EXPECT_EQ(book.rows(7, 1), 4);
  // Truncating past the end changes nothing.
  cache.truncate(7, 100);
  book.truncate(7, 100);
  expect_same(cache, book, 7);
  EXPECT_EQ(book.rows(7, 1), 4);
  // Truncate and commit add unknown sequences, as KvCache does.
  cache.truncate(9, 0);
  book.truncate(9, 0);
  cache.commit(11, 0);
  book.commit(11, 0);
  EXPECT_EQ(cache.sequence_count(), book.sequence_count());
  cache.release(7);
  book.release(7);
  expect_same(cache, book, 7);
  EXPECT_EQ(book.rows(7, 0), 0);
  EXPECT_EQ(cache.sequence_count(), book.sequence_count());
  EXPECT_EQ(cache.bytes(), book.rows_total() * 2 * kKvDim * int64_t{sizeof(float)});
}

// KvCacheBook and KvCache (rows kept by the book) against the reference on the same random calls
// with distinct values: lengths, row counts, sequences, bytes and every row read back.
TEST(KvCacheBook, RandomCallsMatchTheReference) {
  std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<float> value(-1.0f, 1.0f);
  ReferenceKvCache reference;
  KvCacheBook book(kLayers);
  KvCache cache(kLayers, kKvDim);
  const int64_t row_bytes = 2 * kKvDim * int64_t{sizeof(float)};
  for (int step = 0; step < 500; ++step) {
    const uint64_t seq = rng() % 4;
    switch (rng() % 5) {
      case 0:
      case 1: {
        const int64_t n = rng() % 5;
        std::vector<float> k(n * kKvDim), v(n * kKvDim);
        for (float& x : k) x = value(rng);
        for (float& x : v) x = value(rng);
        for (int64_t l = 0; l < kLayers; ++l) {
          const int64_t want = reference.append(seq, l, k.data(), v.data(), n);
          ASSERT_EQ(book.append(seq, l, n), want) << "step " << step;
          ASSERT_EQ(cache.append(seq, l, k.data(), v.data(), n), want) << "step " << step;
        }
        if (rng() % 4 != 0) {  // most steps commit; the rest are failed steps
          reference.commit(seq, n);
          book.commit(seq, n);
          cache.commit(seq, n);
        }
        break;
      }
      case 2: {
        const int64_t len = rng() % 12;
        reference.truncate(seq, len);
        book.truncate(seq, len);
        cache.truncate(seq, len);
        break;
      }
      case 3:
        reference.release(seq);
        book.release(seq);
        cache.release(seq);
        break;
      default:
        break;
    }
    ASSERT_EQ(book.sequence_count(), reference.sequence_count()) << "step " << step;
    ASSERT_EQ(cache.sequence_count(), reference.sequence_count()) << "step " << step;
    ASSERT_EQ(book.rows_total() * row_bytes, reference.bytes()) << "step " << step;
    ASSERT_EQ(cache.bytes(), reference.bytes()) << "step " << step;
    for (uint64_t s = 0; s < 4; ++s) {
      expect_same(reference, book, s);
      ASSERT_EQ(cache.length(s), reference.length(s)) << "step " << step;
      ASSERT_EQ(cache.contains(s), reference.contains(s)) << "step " << step;
      if (!cache.contains(s)) continue;
      for (int64_t l = 0; l < kLayers; ++l) {
        const std::vector<float>& want_k = reference.keys(s, l);
        const std::vector<float>& want_v = reference.values(s, l);
        ASSERT_EQ(book.rows(s, l) * kKvDim, static_cast<int64_t>(want_k.size()));
        for (size_t i = 0; i < want_k.size(); ++i) {
          ASSERT_EQ(cache.keys(s, l)[i], want_k[i]) << "step " << step;
          ASSERT_EQ(cache.values(s, l)[i], want_v[i]) << "step " << step;
        }
      }
    }
  }
}

TEST(KvCacheBook, RefusesBadLayersCountsAndLengths) {
  KvCacheBook book(2);
  EXPECT_THROW(book.append(1, 2, 1), Error);
  EXPECT_THROW(book.append(1, -1, 1), Error);
  EXPECT_THROW(book.append(1, 0, -1), Error);
  EXPECT_THROW(book.truncate(1, -1), Error);
  EXPECT_EQ(book.sequence_count(), 0u);  // a refused append adds nothing
  EXPECT_THROW(KvCacheBook(-1), Error);
}

}  // namespace
}  // namespace moeflow
