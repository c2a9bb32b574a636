// Conservation stress (STYLE.md "Tests", after DPDK's test_ring_stress): every item carries
// (producer, sequence); the checker proves none lost, none duplicated, and per-producer FIFO order
// as each consumer saw it. Variants close (drain) and close(cancel) mid-flight: every item is
// then either dequeued or reported back to its producer as not enqueued. SPEC A10, A15, A17,
// A19, A21, A23 under contention. Runs under TSan in CI (label concurrency).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "engine/fifo_queue.h"
#include "tests/test_scale.h"

namespace conveyor {
namespace {

enum class Kind { kSpsc, kMpmc };
enum class Ending { kCloseAfterProducers, kDrainCloseMidFlight, kCancelMidFlight };

using Param = std::tuple<Kind, int /*producers*/, int /*consumers*/, int /*batch*/, Ending>;

constexpr std::uint64_t item(std::uint64_t producer, std::uint64_t seq) {
  return (producer << 32) | seq;
}

template <class Q>
void run(Q& q, int producers, int consumers, std::size_t batch, Ending ending) {
  const std::size_t per_producer = 1000 * testing::kScale;
  const std::size_t total = per_producer * static_cast<std::size_t>(producers);
  std::vector<std::size_t> accepted(producers, 0);
  std::vector<std::vector<std::uint64_t>> received(consumers);
  std::atomic<std::size_t> taken{0};

  std::vector<std::thread> threads;
  for (int p = 0; p < producers; ++p) {
    threads.emplace_back([&, p] {
      std::vector<std::uint64_t> chunk;
      for (std::size_t seq = 0; seq < per_producer;) {
        const std::size_t n = std::min(batch, per_producer - seq);
        if (n == 1) {
          if (q.enqueue(item(p, seq)) != Status::kOk) return;
          accepted[p] = ++seq;
          continue;
        }
        chunk.clear();
        for (std::size_t i = 0; i < n; ++i) chunk.push_back(item(p, seq + i));
        const BulkResult r = q.enqueue_many(chunk);
        seq += r.count;
        accepted[p] = seq;
        if (r.status != Status::kOk) return;
      }
    });
  }
  for (int c = 0; c < consumers; ++c) {
    threads.emplace_back([&, c] {
      std::vector<std::uint64_t> out;
      for (;;) {
        if (batch == 1) {
          std::uint64_t v = 0;
          if (q.dequeue(v) != Status::kOk) return;
          received[c].push_back(v);
          taken.fetch_add(1, std::memory_order_relaxed);
        } else {
          if (q.dequeue_up_to(batch, out) != Status::kOk) return;
          received[c].insert(received[c].end(), out.begin(), out.end());
          taken.fetch_add(out.size(), std::memory_order_relaxed);
        }
      }
    });
  }
  if (ending != Ending::kCloseAfterProducers) {
    while (taken.load(std::memory_order_relaxed) < total / 2) std::this_thread::yield();
    const Status s = q.close(ending == Ending::kCancelMidFlight ? CloseMode::kCancelPendingEnqueues
                                                                : CloseMode::kDrain);
    EXPECT_EQ(s, Status::kOk);
  } else {
    for (int p = 0; p < producers; ++p) threads[p].join();
    EXPECT_EQ(q.close(), Status::kOk);
  }
  for (auto& t : threads) {
    if (t.joinable()) t.join();
  }

  // Conservation: producer p's received sequences are exactly [0, accepted[p]), each once.
  std::vector<std::vector<int>> count(producers);
  for (int p = 0; p < producers; ++p) count[p].assign(per_producer, 0);
  for (int c = 0; c < consumers; ++c) {
    std::vector<std::int64_t> last(producers, -1);
    for (std::uint64_t v : received[c]) {
      const auto p = static_cast<int>(v >> 32);
      const auto seq = static_cast<std::int64_t>(v & 0xffffffffu);
      ASSERT_LT(p, producers);
      ASSERT_LT(static_cast<std::size_t>(seq), per_producer);
      ASSERT_GT(seq, last[p]) << "per-producer FIFO order broken at consumer " << c;
      last[p] = seq;
      ++count[p][seq];
    }
  }
  std::size_t lost = 0, duplicated = 0, phantom = 0;
  for (int p = 0; p < producers; ++p) {
    for (std::size_t s = 0; s < per_producer; ++s) {
      const int n = count[p][s];
      if (s < accepted[p]) {
        lost += n == 0;
        duplicated += n > 1;
      } else {
        phantom += n != 0;  // delivered although its producer was told it was not enqueued
      }
    }
  }
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(duplicated, 0u);
  EXPECT_EQ(phantom, 0u);
  if (ending == Ending::kCloseAfterProducers) {
    for (int p = 0; p < producers; ++p) EXPECT_EQ(accepted[p], per_producer);
  }
  EXPECT_EQ(q.size_approx(), 0u);
}

class ConservationTest : public ::testing::TestWithParam<Param> {};

TEST_P(ConservationTest, NoneLostNoneDuplicatedFifoPerProducer) {
  const auto [kind, producers, consumers, batch, ending] = GetParam();
  if (kind == Kind::kSpsc) {
    FifoQueue<std::uint64_t, Spsc> q(64);
    run(q, producers, consumers, static_cast<std::size_t>(batch), ending);
  } else {
    FifoQueue<std::uint64_t, Mpmc> q(64);
    run(q, producers, consumers, static_cast<std::size_t>(batch), ending);
  }
}

std::string name(const ::testing::TestParamInfo<Param>& info) {
  const auto [kind, p, c, b, e] = info.param;
  static const char* endings[] = {"CloseAfter", "DrainMid", "CancelMid"};
  return std::string(kind == Kind::kSpsc ? "Spsc" : "Mpmc") + "_P" + std::to_string(p) + "_C" +
         std::to_string(c) + "_B" + std::to_string(b) + "_" + endings[static_cast<int>(e)];
}

const auto kEndings = ::testing::Values(Ending::kCloseAfterProducers, Ending::kDrainCloseMidFlight,
                                        Ending::kCancelMidFlight);

INSTANTIATE_TEST_SUITE_P(Spsc, ConservationTest,
                         ::testing::Combine(::testing::Values(Kind::kSpsc), ::testing::Values(1),
                                            ::testing::Values(1), ::testing::Values(1, 7, 64),
                                            kEndings),
                         name);
INSTANTIATE_TEST_SUITE_P(Mpmc, ConservationTest,
                         ::testing::Combine(::testing::Values(Kind::kMpmc),
                                            ::testing::Values(1, 2, 4), ::testing::Values(1, 2, 4),
                                            ::testing::Values(1, 7, 64), kEndings),
                         name);

}  // namespace
}  // namespace conveyor
