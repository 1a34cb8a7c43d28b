// KvCacheBook (the bookkeeping GpuKvCache keeps its device buffers by) against KvCache: the same
// calls give the same lengths and per-layer row counts. Runs everywhere.
#include "model/kv_cache_book.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "core/error.h"
#include "model/kv_cache.h"

namespace moeflow {
namespace {

constexpr int64_t kLayers = 3, kKvDim = 2;

// Rows KvCache holds for a layer, read through what it exposes: bytes of one sequence alone.
void expect_same(const KvCache& cache, const KvCacheBook& book, uint64_t seq) {
  EXPECT_EQ(cache.length(seq), book.length(seq)) << "sequence " << seq;
  EXPECT_EQ(cache.contains(seq), book.contains(seq)) << "sequence " << seq;
}

TEST(KvCacheBook, FollowsKvCacheThroughAppendCommitTruncateRelease) {
  KvCache cache(kLayers, kKvDim);
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

TEST(KvCacheBook, RandomCallsMatchKvCache) {
  std::mt19937 rng(std::random_device{}());
  KvCache cache(kLayers, kKvDim);
  KvCacheBook book(kLayers);
  const std::vector<float> rows(16 * kKvDim, 0.5f);
  for (int step = 0; step < 500; ++step) {
    const uint64_t seq = rng() % 4;
    switch (rng() % 5) {
      case 0:
      case 1: {
        const int64_t n = rng() % 5;
        for (int64_t l = 0; l < kLayers; ++l)
          ASSERT_EQ(cache.append(seq, l, rows.data(), rows.data(), n), book.append(seq, l, n))
              << "step " << step;
        if (rng() % 4 != 0) {  // most steps commit; the rest are failed steps
          cache.commit(seq, n);
          book.commit(seq, n);
        }
        break;
      }
      case 2: {
        const int64_t len = rng() % 12;
        cache.truncate(seq, len);
        book.truncate(seq, len);
        break;
      }
      case 3:
        cache.release(seq);
        book.release(seq);
        break;
      default:
        break;
    }
    for (uint64_t s = 0; s < 4; ++s) expect_same(cache, book, s);
    ASSERT_EQ(cache.sequence_count(), book.sequence_count()) << "step " << step;
    ASSERT_EQ(cache.bytes(), book.rows_total() * 2 * kKvDim * int64_t{sizeof(float)})
        << "step " << step;
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
