// alloc/: NumaResource on this machine's node 0 and on a synthetic topology, aligned_resource(),
// scalable_resource(). Asserts only what any Linux machine shows: memory lands on the node it is
// bound to (node_of), alignments are honoured, >= 2 MiB requests are 2 MiB aligned and carry
// the huge-page advice (the VMA's "hg" flag in /proc/self/smaps; whether the kernel actually
// found a huge page is not asserted), counters balance, and bad requests are clear errors.
#include <hwloc.h>
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <memory>
#include <memory_resource>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "alloc/aligned_resource.h"
#include "alloc/error.h"
#include "alloc/numa_resource.h"
#include "alloc/scalable_resource.h"
#include "tests/test_scale.h"

namespace conveyor::alloc {
namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;

struct TopologyDeleter {
  void operator()(hwloc_topology* t) const noexcept { hwloc_topology_destroy(t); }
};
using Topology = std::unique_ptr<hwloc_topology, TopologyDeleter>;

// This machine's topology, or a synthetic one described by `synthetic`.
Topology load_topology(const char* synthetic = nullptr) {
  hwloc_topology_t raw = nullptr;
  if (hwloc_topology_init(&raw) != 0) return nullptr;
  Topology topology(raw);
  if (synthetic != nullptr && hwloc_topology_set_synthetic(raw, synthetic) != 0) return nullptr;
  if (hwloc_topology_load(raw) != 0) return nullptr;
  return topology;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

bool aligned_to(const void* p, std::size_t alignment) {
  return reinterpret_cast<std::uintptr_t>(p) % alignment == 0;
}

// The transparent-huge-page mode in /sys ("always", "madvise", "never"); empty if the kernel
// has no THP.
std::string thp_mode() {
  std::ifstream in("/sys/kernel/mm/transparent_hugepage/enabled");
  std::string line;
  if (!std::getline(in, line)) return {};
  const auto open = line.find('['), close = line.find(']');
  if (open == std::string::npos || close == std::string::npos || close < open) return {};
  return line.substr(open + 1, close - open - 1);
}

// The VmFlags line of the /proc/self/smaps entry whose range holds `p`; empty if none.
std::string vm_flags_of(const void* p) {
  const auto addr = reinterpret_cast<std::uintptr_t>(p);
  std::ifstream in("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(in, line)) {
    std::uintptr_t lo = 0, hi = 0;
    char dash = 0;
    std::istringstream range(line);
    // A header line: "lo-hi perms offset dev inode [path]", both ends in hex.
    if (range >> std::hex >> lo >> dash >> hi && dash == '-' && lo < hi) {
      inside = lo <= addr && addr < hi;
      continue;
    }
    if (inside && line.rfind("VmFlags:", 0) == 0) return line;
  }
  return {};
}

// ---------------------------------------------------------------------------------------------
// NumaResource on this machine

TEST(NumaResource, BindsToNodeZeroAndMemoryLandsThere) {
  Topology topo = load_topology();
  ASSERT_TRUE(topo);
  NumaResource r(topo.get(), 0);
  EXPECT_EQ(r.node(), 0u);
  EXPECT_TRUE(r.membind_applied());
  EXPECT_EQ(r.note(), "");
  for (const std::size_t bytes : {std::size_t{64}, std::size_t{4096}, 100 * std::size_t{1024},
                                  3 * kMiB}) {
    void* p = r.allocate(bytes);
    std::memset(p, 0xab, bytes);
    EXPECT_EQ(r.node_of(p), std::optional<unsigned>(0)) << "bytes = " << bytes;
    // The last byte too: every page is bound and faulted in, not only the first.
    EXPECT_EQ(r.node_of(static_cast<char*>(p) + bytes - 1), std::optional<unsigned>(0))
        << "bytes = " << bytes;
    r.deallocate(p, bytes);
  }
}

TEST(NumaResource, OwnsItsTopologyWhenGivenNone) {
  NumaResource r(0);
  EXPECT_TRUE(r.membind_applied());
  void* p = r.allocate(8192, 64);
  EXPECT_EQ(r.node_of(p), std::optional<unsigned>(0));
  r.deallocate(p, 8192, 64);
}

TEST(NumaResource, HonoursEveryPowerOfTwoAlignment) {
  NumaResource r(0);
  for (std::size_t alignment = 1; alignment <= 4 * kMiB; alignment *= 2) {
    for (const std::size_t bytes : {std::size_t{0}, std::size_t{1}, std::size_t{4097},
                                    2 * kMiB + 1}) {
      void* p = r.allocate(bytes, alignment);
      ASSERT_NE(p, nullptr);
      EXPECT_TRUE(aligned_to(p, alignment)) << "alignment = " << alignment << ", bytes = " << bytes;
      if (bytes != 0) std::memset(p, 0x5a, bytes);
      r.deallocate(p, bytes, alignment);
    }
  }
  EXPECT_EQ(r.allocations(), 0u);
}

TEST(NumaResource, ZeroBytesGetDistinctPointers) {
  NumaResource r(0);
  void* a = r.allocate(0);
  void* b = r.allocate(0);
  EXPECT_NE(a, b);
  r.deallocate(a, 0);
  r.deallocate(b, 0);
}

TEST(NumaResource, LargeAllocationsAreHugePageAlignedAndAdvised) {
  NumaResource r(0);
  const std::size_t bytes = 5 * kMiB + 12345;
  void* p = r.allocate(bytes, 16);
  EXPECT_TRUE(aligned_to(p, 2 * kMiB));
  // Just below the threshold: page aligned, no advice needed.
  void* q = r.allocate(2 * kMiB - 1, 16);
  EXPECT_TRUE(aligned_to(q, 4096));
  const std::string mode = thp_mode();
  const std::string flags = vm_flags_of(p);
  const std::string small_flags = vm_flags_of(q);
  r.deallocate(q, 2 * kMiB - 1, 16);
  r.deallocate(p, bytes, 16);
  if (mode.empty() || mode == "never") {
    GTEST_SKIP() << "transparent huge pages are " << (mode.empty() ? "absent" : "\"never\"")
                 << ": the MADV_HUGEPAGE assertion does not apply (2 MiB alignment checked)";
  }
  EXPECT_TRUE(contains(flags, " hg")) << "no MADV_HUGEPAGE flag on the mapping: " << flags;
  // The control: the smaller mapping is not advised (and the smaps reader found both).
  EXPECT_TRUE(contains(small_flags, "VmFlags:")) << "mapping not found in /proc/self/smaps";
  EXPECT_FALSE(contains(small_flags, " hg")) << small_flags;
}

TEST(NumaResource, CountersBalance) {
  NumaResource r(0);
  std::vector<std::pair<void*, std::size_t>> live;
  std::size_t total = 0;
  for (std::size_t i = 0; i < 8; ++i) {
    const std::size_t bytes = 1000 * (i + 1);
    live.emplace_back(r.allocate(bytes, 128), bytes);
    total += bytes;
    EXPECT_EQ(r.allocations(), i + 1);
    EXPECT_EQ(r.bytes_allocated(), total);
  }
  for (auto [p, bytes] : live) r.deallocate(p, bytes, 128);
  EXPECT_EQ(r.allocations(), 0u);
  EXPECT_EQ(r.bytes_allocated(), 0u);
}

TEST(NumaResource, ConcurrentAllocationsBalance) {
  NumaResource r(0);
  const std::size_t rounds = 8 * testing::kScale;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&r, rounds, t] {
      for (std::size_t i = 0; i < rounds; ++i) {
        const std::size_t bytes = 512 * (static_cast<std::size_t>(t) + 1) + i;
        auto* p = static_cast<unsigned char*>(r.allocate(bytes, 64));
        p[0] = p[bytes - 1] = static_cast<unsigned char>(t);
        r.deallocate(p, bytes, 64);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(r.allocations(), 0u);
  EXPECT_EQ(r.bytes_allocated(), 0u);
}

TEST(NumaResource, EqualityIsIdentity) {
  NumaResource a(0);
  NumaResource b(0);
  EXPECT_TRUE(a.is_equal(a));
  EXPECT_FALSE(a.is_equal(b));
  EXPECT_FALSE(a.is_equal(*std::pmr::new_delete_resource()));
}

TEST(NumaResource, PmrVectorLivesOnTheNode) {
  NumaResource r(0);
  {
    std::pmr::vector<std::uint64_t> v(&r);
    for (std::uint64_t i = 0; i < 100000; ++i) v.push_back(i * 3);
    EXPECT_EQ(v[77777], 77777u * 3);
    EXPECT_EQ(r.node_of(v.data()), std::optional<unsigned>(0));
    EXPECT_GE(r.allocations(), 1u);
  }
  EXPECT_EQ(r.allocations(), 0u);
  EXPECT_EQ(r.bytes_allocated(), 0u);
}

TEST(NumaResource, NodeOutOfRangeIsAnErrorNamingTheNode) {
  Topology topo = load_topology();
  ASSERT_TRUE(topo);
  const unsigned nodes =
      static_cast<unsigned>(hwloc_get_nbobjs_by_type(topo.get(), HWLOC_OBJ_NUMANODE));
  for (const unsigned bad : {nodes, nodes + 5}) {
    try {
      NumaResource r(topo.get(), bad);
      FAIL() << "no error for node " << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
      EXPECT_TRUE(contains(e.what(), "node = " + std::to_string(bad))) << e.what();
      EXPECT_TRUE(contains(e.what(), "number of NUMA nodes = " + std::to_string(nodes)))
          << e.what();
    }
  }
  EXPECT_THROW(NumaResource{nodes}, Error);  // the owning constructor checks the same way
}

TEST(NumaResource, NullTopologyIsAnError) {
  try {
    NumaResource r(nullptr, 0);
    FAIL() << "no error for a null topology";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_TRUE(contains(e.what(), "topology is null")) << e.what();
  }
}

TEST(NumaResource, HugeSizeIsABadAllocNamingTheBytes) {
  NumaResource r(0);
  // 1 PiB exceeds x86-64's 128 TiB user address space (mmap fails); SIZE_MAX cannot even be
  // rounded to pages.
  for (const std::size_t bytes :
       {std::size_t{1} << 50, std::numeric_limits<std::size_t>::max() - 10}) {
    try {
      void* p = r.allocate(bytes);
      r.deallocate(p, bytes);
      FAIL() << "no error for " << bytes << " bytes";
    } catch (const std::bad_alloc& e) {
      const auto* error = dynamic_cast<const AllocationError*>(&e);
      ASSERT_NE(error, nullptr) << "a plain std::bad_alloc: " << e.what();
      EXPECT_EQ(error->kind(), ErrorKind::kOutOfMemory);
      EXPECT_EQ(error->bytes(), bytes);
      EXPECT_TRUE(contains(e.what(), "allocate: node = 0, bytes = " + std::to_string(bytes)))
          << e.what();
      EXPECT_TRUE(contains(e.what(), "out of memory")) << e.what();
    }
  }
  EXPECT_EQ(r.allocations(), 0u);
  EXPECT_EQ(r.bytes_allocated(), 0u);
}

TEST(NumaResource, AlignmentNotAPowerOfTwoIsInvalidArgument) {
  NumaResource r(0);
  try {
    void* p = r.allocate(64, 48);
    r.deallocate(p, 64, 48);
    FAIL() << "no error for alignment 48";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInvalidArgument);
    EXPECT_TRUE(contains(e.what(), "alignment = 48")) << e.what();
  }
  EXPECT_EQ(r.allocations(), 0u);
}

TEST(NumaResource, NodeOfUnmappedMemoryIsUnknown) {
  NumaResource r(0);
  void* p = r.allocate(4096);
  r.deallocate(p, 4096);
  EXPECT_EQ(r.node_of(p), std::nullopt);  // unmapped now: the kernel has no page to report
}

// ---------------------------------------------------------------------------------------------
// NumaResource on a topology that is not this machine

TEST(NumaResource, SyntheticTopologyAllocatesUnboundAndSaysSo) {
  Topology topo = load_topology("pack:2 numa:2 core:2 pu:1");
  ASSERT_TRUE(topo);
  ASSERT_EQ(hwloc_get_nbobjs_by_type(topo.get(), HWLOC_OBJ_NUMANODE), 4);
  NumaResource r(topo.get(), 3);
  EXPECT_FALSE(r.membind_applied());
  EXPECT_EQ(r.note(), "membind not applied: topology is not this system");
  for (const std::size_t bytes : {std::size_t{100}, 3 * kMiB}) {
    void* p = r.allocate(bytes, 256);
    EXPECT_TRUE(aligned_to(p, bytes >= 2 * kMiB ? 2 * kMiB : 256));
    std::memset(p, 1, bytes);
    EXPECT_EQ(r.node_of(p), std::nullopt);  // node 3 of a machine that is not this one
    r.deallocate(p, bytes, 256);
  }
  EXPECT_EQ(r.allocations(), 0u);
  EXPECT_THROW((NumaResource{topo.get(), 4}), Error);  // the node range is still checked
}

// ---------------------------------------------------------------------------------------------
// aligned_resource()

TEST(AlignedResource, AtLeastACacheLinePairWhateverIsAsked) {
  std::pmr::memory_resource* r = aligned_resource();
  EXPECT_EQ(r, aligned_resource());
  EXPECT_TRUE(r->is_equal(*aligned_resource()));
  for (const std::size_t alignment : {std::size_t{1}, std::size_t{8}, std::size_t{64},
                                      std::size_t{128}, std::size_t{4096}}) {
    std::vector<void*> ptrs;
    for (int i = 0; i < 8; ++i) {
      void* p = r->allocate(24, alignment);
      EXPECT_TRUE(aligned_to(p, alignment < 128 ? 128 : alignment)) << "alignment " << alignment;
      std::memset(p, 0, 24);
      ptrs.push_back(p);
    }
    for (void* p : ptrs) r->deallocate(p, 24, alignment);
  }
}

TEST(AlignedResource, BigRingsAreHugePageAlignedAndAdvised) {
  std::pmr::memory_resource* r = aligned_resource();
  const std::size_t bytes = 4 * kMiB;
  void* p = r->allocate(bytes, 128);
  EXPECT_TRUE(aligned_to(p, 2 * kMiB));
  std::memset(p, 7, bytes);
  const std::string flags = vm_flags_of(p);
  r->deallocate(p, bytes, 128);
  const std::string mode = thp_mode();
  if (mode.empty() || mode == "never") {
    GTEST_SKIP() << "transparent huge pages are " << (mode.empty() ? "absent" : "\"never\"");
  }
  EXPECT_TRUE(contains(flags, " hg")) << flags;
}

TEST(AlignedResource, ErrorsNameTheRequest) {
  std::pmr::memory_resource* r = aligned_resource();
  EXPECT_THROW((void)r->allocate(64, 3), Error);
  const std::size_t bytes = std::size_t{1} << 50;
  try {
    void* p = r->allocate(bytes);
    r->deallocate(p, bytes);
    FAIL() << "no error for " << bytes << " bytes";
  } catch (const AllocationError& e) {
    EXPECT_TRUE(contains(e.what(), "bytes = " + std::to_string(bytes))) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// scalable_resource()

TEST(ScalableResource, AllocateDeallocateRoundTrip) {
  std::pmr::memory_resource* r = scalable_resource();
  ASSERT_NE(r, nullptr);
  EXPECT_EQ(r, scalable_resource());
  for (const std::size_t alignment : {std::size_t{8}, std::size_t{64}, std::size_t{4096}}) {
    for (const std::size_t bytes : {std::size_t{1}, std::size_t{100}, std::size_t{70000}}) {
      void* p = r->allocate(bytes, alignment);
      EXPECT_TRUE(aligned_to(p, alignment));
      std::memset(p, 0x33, bytes);
      r->deallocate(p, bytes, alignment);
    }
  }
}

TEST(ScalableResource, BacksPmrContainers) {
  std::pmr::vector<std::pmr::string> v(scalable_resource());
  for (int i = 0; i < 1000; ++i) {
    v.emplace_back("payload number " + std::to_string(i) + " long enough to leave SSO");
  }
  EXPECT_EQ(v.get_allocator().resource(), scalable_resource());
  EXPECT_EQ(v.back().get_allocator().resource(), scalable_resource());  // propagated (uses-allocator)
  EXPECT_EQ(v[500], "payload number 500 long enough to leave SSO");
}

}  // namespace
}  // namespace conveyor::alloc
