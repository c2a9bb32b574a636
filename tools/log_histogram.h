// LogHistogram: an HDR-style latency histogram (after Gil Tene's HdrHistogram: log-linear
// buckets, bounded relative error, constant memory, O(1) record).
//
// Values are non-negative integers (nanoseconds). Values below 2^kSubBits land in exact unit
// buckets; above, each power-of-two range [2^e, 2^(e+1)) is split into 2^(kSubBits-1) equal
// sub-buckets, so a bucket's width is at most 2^-(kSubBits-1) of its lower edge: with
// kSubBits = 7, any reported percentile is within 1/64 (1.6%) of a recorded value, from 1 ns to
// 2^63 ns. record() is a few shifts and an increment (no allocation, no lock): single-threaded;
// merge() adds another thread's histogram.
// percentile(q) returns the upper edge of the bucket holding the value of rank ceil(q * count)
// (the usual HDR convention: never below the true value, at most one bucket width above it).
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstdint>

namespace conveyor::tools {

class LogHistogram {
 public:
  static constexpr int kSubBits = 7;
  static constexpr std::uint64_t kSubCount = std::uint64_t{1} << kSubBits;  // 128
  static constexpr std::uint64_t kHalf = kSubCount / 2;                     // 64 per octave
  // Unit buckets 0..127, then 64 sub-buckets for each exponent 7..63.
  static constexpr std::size_t kBuckets = kSubCount + (64 - kSubBits) * kHalf;

  void record(std::uint64_t value) noexcept {
    counts_[index_of(value)] += 1;
    count_ += 1;
    max_ = std::max(max_, value);
  }

  void merge(const LogHistogram& other) noexcept {
    for (std::size_t i = 0; i < kBuckets; ++i) counts_[i] += other.counts_[i];
    count_ += other.count_;
    max_ = std::max(max_, other.max_);
  }

  std::uint64_t count() const noexcept { return count_; }
  std::uint64_t max() const noexcept { return max_; }

  // q in [0, 1]; 0 when empty. Never above max().
  std::uint64_t percentile(double q) const noexcept {
    if (count_ == 0) return 0;
    q = std::clamp(q, 0.0, 1.0);
    auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
    rank = std::clamp<std::uint64_t>(rank, 1, count_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBuckets; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(upper_edge(i), max_);
    }
    return max_;
  }

  // The bucket of `value`, and the largest value that bucket holds (exposed for tests).
  static std::size_t index_of(std::uint64_t value) noexcept {
    if (value < kSubCount) return static_cast<std::size_t>(value);
    const int e = 63 - std::countl_zero(value);  // 2^e <= value < 2^(e+1), e >= kSubBits
    const std::uint64_t sub = (value >> (e - (kSubBits - 1))) - kHalf;  // 0..kHalf-1
    return static_cast<std::size_t>(kSubCount + static_cast<std::uint64_t>(e - kSubBits) * kHalf +
                                    sub);
  }
  static std::uint64_t upper_edge(std::size_t index) noexcept {
    if (index < kSubCount) return index;
    const std::uint64_t k = index - kSubCount;
    const int e = static_cast<int>(k / kHalf) + kSubBits;
    const std::uint64_t sub = k % kHalf + kHalf;  // the top kSubBits bits of the value
    const int shift = e - (kSubBits - 1);
    return ((sub + 1) << shift) - 1;
  }

 private:
  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t count_ = 0;
  std::uint64_t max_ = 0;
};

}  // namespace conveyor::tools
