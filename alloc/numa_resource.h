// NumaResource: a std::pmr::memory_resource whose memory lives on one NUMA node.
//
// Contract:
//  - Granularity: every allocation is its own anonymous mapping (alloc/internal/pages.h), so
//    the unit is a page. Meant for rings, slabs and pools; for many small objects put a
//    std::pmr::synchronized_pool_resource (or unsynchronized_) on top of it.
//  - Node: hwloc's *logical* index among NUMA nodes (0..n-1, topology order), as topology/ names
//    PUs. The constructor checks that binding to it is possible: the index is in range, the node
//    is in this process's allowed nodes (cgroup cpuset.mems), hwloc can bind memory areas here,
//    and a one-page probe binds. Otherwise it throws Error; there is no silent fallback.
//  - Binding: each mapping is bound with hwloc_set_area_membind(node, HWLOC_MEMBIND_BIND,
//    STRICT | BYNODESET) before any page is touched. On Linux that is mbind(MPOL_BIND): pages go
//    to that node only, and under memory pressure the kernel reclaims rather than spill to
//    another node. If the OS refuses one binding, allocate() unmaps and throws
//    AllocationError(kBindFailed). (We map and bind ourselves instead of calling
//    hwloc_alloc_membind, which on Linux is the same mmap + mbind, to control the alignment:
//    hwloc_alloc_membind returns page-aligned memory and could not give 2 MiB alignment.)
//  - Topology not of this system (synthetic or XML; hwloc_topology_is_thissystem() == 0): hwloc
//    would accept the binding call and do nothing, so NumaResource does not make it. Memory is
//    mapped, aligned, advised and pre-faulted as usual but not bound; membind_applied() is false
//    and note() says "membind not applied: topology is not this system". This lets a plan made
//    for another machine run end to end; node_of() then returns nullopt.
//  - Pre-faulting: allocate() writes every page once, so no page fault lands later on a hot path
//    (and the memory is committed now). With binding applied the kernel puts the pages on the
//    node whichever thread touches them; still, allocate from a thread running on that node, as
//    the runner does: the touch is then a local write, and without binding first touch is what
//    places the pages. A node with no free memory left gets the kernel's OOM handling during
//    the touch, not an exception: mmap succeeds before any page exists.
//  - Huge pages: a request of >= 2 MiB is 2 MiB aligned and advised MADV_HUGEPAGE (transparent
//    huge pages in "madvise" mode serve it; in "never" mode base pages do, nothing fails).
//  - Alignment: any power of two is honoured (the result is at least page aligned); anything
//    else is Error(kInvalidArgument). Size 0 gets a distinct page.
//  - Errors: Error (std::runtime_error) from the constructors and for a bad alignment;
//    AllocationError (std::bad_alloc) when memory cannot be had, what() naming node and bytes
//    (alloc/error.h).
//  - Thread safety: allocate, deallocate, node_of and the accessors may run concurrently (hwloc
//    allows concurrent read-only use of a loaded topology; the counters are atomic).
//  - Equality: identity. Memory goes back to the resource that gave it.
//  - Lifetime: the resource must outlive its allocations, and a borrowed topology must outlive
//    the resource and not be modified meanwhile. Neither copyable nor movable: pmr containers
//    hold its address.
// References: hwloc 2.x "Memory binding" (hwloc_set_area_membind, hwloc_get_area_memlocation);
// mbind(2); the kernel's admin-guide/mm/transhuge.rst.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <memory_resource>
#include <optional>
#include <string>

#include "alloc/error.h"

// hwloc's opaque handles; hwloc.h stays out of our public header. Callers that build their own
// topology include hwloc.h themselves (conveyor::alloc links hwloc publicly for them).
struct hwloc_topology;
struct hwloc_obj;

namespace conveyor::alloc {

class NumaResource final : public std::pmr::memory_resource {
 public:
  // Borrows `topology` (initialised and loaded by the caller, who keeps owning it). Throws
  // Error: kInvalidArgument for a null topology or `numa_node` >= the number of NUMA nodes,
  // kBindUnsupported when this system cannot bind memory to the node.
  NumaResource(hwloc_topology* topology, unsigned numa_node);

  // Loads this machine's topology and owns it; then as above. Throws
  // Error(kTopologyUnavailable) if hwloc cannot load it.
  explicit NumaResource(unsigned numa_node);

  ~NumaResource() override;
  NumaResource(const NumaResource&) = delete;
  NumaResource& operator=(const NumaResource&) = delete;

  // The logical index given to the constructor.
  unsigned node() const noexcept { return node_; }

  // True when allocations are bound to node(); false only for a topology not of this system.
  bool membind_applied() const noexcept { return membind_applied_; }

  // Empty when membind is applied; otherwise why not ("membind not applied: topology is not
  // this system").
  const std::string& note() const noexcept { return note_; }

  // The logical index of the NUMA node holding the page that contains `p` (any address of this
  // process, not only this resource's), as the kernel reports it now (pages may migrate later).
  // nullopt when membind is not applied (the topology does not describe this machine), when the
  // page is not mapped or not yet faulted in, or when the kernel cannot tell.
  std::optional<unsigned> node_of(const void* p) const noexcept;

  // Bytes the callers asked for and have not given back (before rounding to pages), and the
  // number of live allocations. Exact when no allocation runs concurrently; a snapshot
  // otherwise. Both return to 0 when every allocation has been deallocated.
  std::size_t bytes_allocated() const noexcept {
    // relaxed: a statistic; it orders nothing else.
    return bytes_allocated_.load(std::memory_order_relaxed);
  }
  std::size_t allocations() const noexcept {
    // relaxed: a statistic; it orders nothing else.
    return allocations_.load(std::memory_order_relaxed);
  }

 private:
  struct TopologyDeleter {
    void operator()(hwloc_topology* topology) const noexcept;
  };
  using OwnedTopology = std::unique_ptr<hwloc_topology, TopologyDeleter>;
  static OwnedTopology load_this_system(unsigned numa_node);
  void set_up();  // the checks both constructors make; sets node_obj_, membind_applied_, note_

  void* do_allocate(std::size_t bytes, std::size_t alignment) override;
  void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override;
  bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override;

  OwnedTopology owned_;                // null when the topology is borrowed
  hwloc_topology* topology_;           // owned_.get() or the caller's; never null after setup
  hwloc_obj* node_obj_ = nullptr;      // the NUMA node object inside *topology_
  unsigned node_;                      // logical index of node_obj_
  bool membind_applied_ = false;       // topology is this system and the probe bound a page
  std::string note_;                   // see note()
  std::atomic<std::size_t> bytes_allocated_{0};  // sum of `bytes` over live allocations
  std::atomic<std::size_t> allocations_{0};      // count of live allocations
};

}  // namespace conveyor::alloc
