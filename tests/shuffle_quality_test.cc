// ShuffleQueue's shuffle quality (SPEC.md B3) against TF's single-buffer rule, statistically.
// Split from shuffle_queue_test.cc.
#include "engine/shuffle_queue.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <deque>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/shuffle_test_util.h"
#include "tests/test_scale.h"

namespace conveyor {
namespace {

using U64 = std::uint64_t;
using Q = ShuffleQueue<U64>;

using testutil::fill;
// ---- B3: shuffle quality vs TF's single-buffer rule -----------------------------------------
//
// Trial (one seed): capacity 16, min_after_dequeue 8, a stream of 64 elements. Fill: four
// threads, one after another, enqueue 4 elements each (so with 4 lanes every lane holds 4);
// steady state: the main thread dequeues one and enqueues the next (into its home lane while it
// has room, else the next lane with room: a lopsided layout on purpose); close; drain. The reference does the same
// operations on one buffer with TF's rule (uniform pick, last into the slot) and an mt19937_64.
// Samples: one per trial and tracked element (elements 0, 15, 40), so samples are independent
// across trials: the displacement (output position - input position) and the output position.
// Verdicts: a two-sample Kolmogorov-Smirnov test of displacements and a 2 x k chi-square test of
// homogeneity of output positions (k equal-frequency bins of the pooled sample, k <= 8), both
// at alpha = 1e-3 per test. With 3 tracked elements x 2 tests the family-wise false-alarm rate
// of a correct queue is < 0.6%; the seeds are fixed, so the verdict is deterministic (the same
// in every build and under TSan): it cannot flake. kTrials = 1500 per side gives the KS test
// a critical D of about 0.071 and detects a bias such as picking only among the older half
// (NegativeControlIsRejected proves the tests have that power).
constexpr int kTrials = 1500;
constexpr U64 kStream = 64;
constexpr std::int64_t kCap = 16, kMin = 8;
const std::vector<U64> kTracked = {0, 15, 40};

std::vector<U64> queue_trial(U64 seed, int shards) {
  Q q(kCap, kMin, seed, "quality", shards);
  for (U64 t = 0; t < 4; ++t) {
    std::thread([&q, t] { fill(q, 4 * t, 4); }).join();
  }
  std::vector<U64> out;
  testutil::steady_state_then_drain(q, kCap, kStream, out);
  return out;
}

// TF's rule on one buffer; `older_half_only` is the negative control (a biased pick).
std::vector<U64> reference_trial(U64 seed, bool older_half_only = false) {
  std::mt19937_64 rng(seed);
  std::vector<U64> buf, out;
  auto pick = [&] {
    std::size_t i = rng() % buf.size();
    if (older_half_only) {
      std::vector<std::size_t> order(buf.size());
      std::iota(order.begin(), order.end(), 0);
      std::sort(order.begin(), order.end(), [&](auto a, auto b) { return buf[a] < buf[b]; });
      i = order[rng() % ((buf.size() + 1) / 2)];
    }
    out.push_back(buf[i]);
    buf[i] = buf.back();
    buf.pop_back();
  };
  U64 next = 0;
  for (; next < static_cast<U64>(kCap); ++next) buf.push_back(next);
  for (; next < kStream; ++next) {
    pick();
    buf.push_back(next);
  }
  while (!buf.empty()) pick();
  return out;
}

// Kolmogorov's limiting distribution: P(sqrt(ne) D > lambda).
double ks_p_value(double d, double n, double m) {
  const double ne = n * m / (n + m);
  const double lambda = (std::sqrt(ne) + 0.12 + 0.11 / std::sqrt(ne)) * d;
  double sum = 0;
  for (int k = 1; k <= 100; ++k) {
    sum += (k % 2 == 1 ? 2.0 : -2.0) * std::exp(-2.0 * k * k * lambda * lambda);
  }
  return std::clamp(sum, 0.0, 1.0);
}

double ks_statistic(std::vector<double> a, std::vector<double> b) {
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  std::size_t i = 0, j = 0;
  double d = 0;
  while (i < a.size() && j < b.size()) {
    const double x = std::min(a[i], b[j]);
    while (i < a.size() && a[i] == x) ++i;
    while (j < b.size() && b[j] == x) ++j;
    d = std::max(d, std::abs(static_cast<double>(i) / a.size() - static_cast<double>(j) / b.size()));
  }
  return d;
}

// Chi-square of homogeneity over equal-frequency bins of the pooled sample; returns whether it
// rejects at alpha = 1e-3.
bool chi_square_rejects(const std::vector<double>& a, const std::vector<double>& b,
                        double* stat_out) {
  std::vector<double> pooled = a;
  pooled.insert(pooled.end(), b.begin(), b.end());
  std::sort(pooled.begin(), pooled.end());
  std::vector<double> cuts;  // upper bounds (exclusive) of the bins
  for (int k = 1; k < 8; ++k) {
    const double c = pooled[pooled.size() * k / 8];
    if (cuts.empty() || c > cuts.back()) cuts.push_back(c);
  }
  const std::size_t bins = cuts.size() + 1;
  std::vector<double> ca(bins, 0), cb(bins, 0);
  auto bin = [&](double x) {
    return static_cast<std::size_t>(std::upper_bound(cuts.begin(), cuts.end(), x) -
                                    cuts.begin());
  };
  for (double x : a) ca[bin(x)] += 1;
  for (double x : b) cb[bin(x)] += 1;
  double stat = 0;
  std::size_t used = 0;
  const double na = static_cast<double>(a.size()), nb = static_cast<double>(b.size());
  for (std::size_t k = 0; k < bins; ++k) {
    const double col = ca[k] + cb[k];
    if (col == 0) continue;
    ++used;
    const double ea = col * na / (na + nb), eb = col * nb / (na + nb);
    stat += (ca[k] - ea) * (ca[k] - ea) / ea + (cb[k] - eb) * (cb[k] - eb) / eb;
  }
  // Critical values at alpha = 1e-3 for df = 1..7.
  constexpr double kCritical[] = {0, 10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32};
  *stat_out = stat;
  return used >= 2 && stat > kCritical[used - 1];
}

struct Samples {
  std::vector<std::vector<double>> displacement, position;  // per tracked element
};

template <class Trial>
Samples collect(Trial trial) {
  Samples s;
  s.displacement.resize(kTracked.size());
  s.position.resize(kTracked.size());
  for (int t = 0; t < kTrials; ++t) {
    const std::vector<U64> out = trial(static_cast<U64>(t));
    std::vector<double> pos(kStream);
    for (std::size_t i = 0; i < out.size(); ++i) pos[out[i]] = static_cast<double>(i);
    for (std::size_t k = 0; k < kTracked.size(); ++k) {
      s.position[k].push_back(pos[kTracked[k]]);
      s.displacement[k].push_back(pos[kTracked[k]] - static_cast<double>(kTracked[k]));
    }
  }
  return s;
}

// Verdict of both tests for every tracked element: true when none rejects.
bool same_distribution(const Samples& a, const Samples& b, std::string* report) {
  bool same = true;
  for (std::size_t k = 0; k < kTracked.size(); ++k) {
    const double d = ks_statistic(a.displacement[k], b.displacement[k]);
    const double p = ks_p_value(d, kTrials, kTrials);
    double chi = 0;
    const bool chi_rejects = chi_square_rejects(a.position[k], b.position[k], &chi);
    *report += "element " + std::to_string(kTracked[k]) + ": KS D=" + std::to_string(d) +
               " p=" + std::to_string(p) + ", chi2=" + std::to_string(chi) + "\n";
    if (p < 1e-3 || chi_rejects) same = false;
  }
  return same;
}

TEST(ShuffleQuality, B3_ShardedQueueMatchesTFsSingleBufferRule) {
  const Samples ref =
      collect([](U64 t) { return reference_trial(0x5eed0000 + 1000003 * t); });
  for (int shards : {4, 3}) {
    const Samples sharded = collect([shards](U64 t) { return queue_trial(77 + t, shards); });
    std::string report;
    EXPECT_TRUE(same_distribution(sharded, ref, &report)) << "shards " << shards << "\n"
                                                          << report;
  }
}

TEST(ShuffleQuality, B3_NegativeControlIsRejected) {
  const Samples ref =
      collect([](U64 t) { return reference_trial(0x5eed0000 + 1000003 * t); });
  const Samples biased = collect([](U64 t) { return reference_trial(0xbad0000 + 7 * t, true); });
  std::string report;
  EXPECT_FALSE(same_distribution(biased, ref, &report)) << report;
}

}  // namespace
}  // namespace conveyor
