// Helpers shared by the ShuffleQueue tests (shuffle_queue_test.cc, shuffle_quality_test.cc).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "engine/shuffle_queue.h"

namespace conveyor::testutil {

using ShuffleU64 = ShuffleQueue<std::uint64_t>;

// Enqueues from, from + 1, ..., from + n - 1 (blocking).
inline void fill(ShuffleU64& q, std::uint64_t from, std::uint64_t n) {
  for (std::uint64_t i = from; i < from + n; ++i) {
    std::uint64_t v = i;
    ASSERT_EQ(q.enqueue(std::move(v)), Status::kOk);
  }
}

// The steady state of one thread: for next in [next, end): dequeue one (appended to `out`) and
// enqueue next; then close and drain into `out`.
inline void steady_state_then_drain(ShuffleU64& q, std::uint64_t next, std::uint64_t end,
                                    std::vector<std::uint64_t>& out) {
  for (; next < end; ++next) {
    std::uint64_t v = 0;
    EXPECT_EQ(q.dequeue(v), Status::kOk);
    out.push_back(v);
    std::uint64_t w = next;
    EXPECT_EQ(q.enqueue(std::move(w)), Status::kOk);
  }
  EXPECT_EQ(q.close(), Status::kOk);
  for (std::uint64_t v = 0; q.dequeue(v) == Status::kOk;) out.push_back(v);
}

}  // namespace conveyor::testutil
