#include "alloc/numa_resource.h"

#include <hwloc.h>

#include <cerrno>
#include <string>

#include "alloc/internal/pages.h"

namespace conveyor::alloc {
namespace {

using internal::describe;
using internal::failed;

constexpr const char* kNotThisSystem = "membind not applied: topology is not this system";

// With the policy HWLOC_MEMBIND_BIND (mbind MPOL_BIND: pages on these nodes only).
// STRICT: fail rather than approximate the policy. BYNODESET: the bitmap is a nodeset.
constexpr int kBindFlags = HWLOC_MEMBIND_STRICT | HWLOC_MEMBIND_BYNODESET;

struct BitmapDeleter {
  void operator()(hwloc_bitmap_s* set) const noexcept { hwloc_bitmap_free(set); }
};
using Bitmap = std::unique_ptr<hwloc_bitmap_s, BitmapDeleter>;

}  // namespace

void NumaResource::TopologyDeleter::operator()(hwloc_topology* topology) const noexcept {
  hwloc_topology_destroy(topology);
}

NumaResource::OwnedTopology NumaResource::load_this_system(unsigned numa_node) {
  hwloc_topology_t raw = nullptr;
  if (hwloc_topology_init(&raw) != 0) {
    const int err = errno;
    throw Error(ErrorKind::kTopologyUnavailable,
                describe("NumaResource", numa_node, {}, {}, ErrorKind::kTopologyUnavailable,
                         failed("hwloc_topology_init", err)));
  }
  OwnedTopology topology(raw);
  if (hwloc_topology_load(raw) != 0) {
    const int err = errno;
    throw Error(ErrorKind::kTopologyUnavailable,
                describe("NumaResource", numa_node, {}, {}, ErrorKind::kTopologyUnavailable,
                         failed("hwloc_topology_load", err)));
  }
  return topology;
}

NumaResource::NumaResource(hwloc_topology* topology, unsigned numa_node)
    : topology_(topology), node_(numa_node) {
  set_up();
}

NumaResource::NumaResource(unsigned numa_node)
    : owned_(load_this_system(numa_node)), topology_(owned_.get()), node_(numa_node) {
  set_up();
}

NumaResource::~NumaResource() = default;

void NumaResource::set_up() {
  auto error = [this](ErrorKind kind, const std::string& detail) {
    return Error(kind, describe("NumaResource", node_, {}, {}, kind, detail));
  };
  if (topology_ == nullptr) throw error(ErrorKind::kInvalidArgument, "topology is null");
  const int nodes = hwloc_get_nbobjs_by_type(topology_, HWLOC_OBJ_NUMANODE);
  if (nodes <= 0 || node_ >= static_cast<unsigned>(nodes)) {
    throw error(ErrorKind::kInvalidArgument,
                "must be < number of NUMA nodes = " + std::to_string(nodes < 0 ? 0 : nodes));
  }
  node_obj_ = hwloc_get_obj_by_type(topology_, HWLOC_OBJ_NUMANODE, node_);

  if (!hwloc_topology_is_thissystem(topology_)) {
    membind_applied_ = false;
    note_ = kNotThisSystem;
    return;
  }

  const std::string os = " (os index " + std::to_string(node_obj_->os_index) + ")";
  const hwloc_topology_support* support = hwloc_topology_get_support(topology_);
  if (!support->membind->set_area_membind || !support->membind->bind_membind) {
    throw error(ErrorKind::kBindUnsupported,
                "hwloc cannot bind memory areas on this system (no set_area_membind/BIND)");
  }
  if (!hwloc_bitmap_isincluded(node_obj_->nodeset, hwloc_topology_get_allowed_nodeset(topology_))) {
    throw error(ErrorKind::kBindUnsupported,
                "node" + os + " is not among this process's allowed nodes (cpuset.mems)");
  }

  // The probe: binding one fresh page tells now, not at the first allocate(), whether the OS
  // lets this process bind to the node (seccomp may forbid mbind; a node may have no memory).
  const internal::Layout probe{internal::page_bytes(), internal::page_bytes(), false};
  void* page = internal::map_pages(probe);
  if (page == nullptr) {
    const int err = errno;
    throw error(ErrorKind::kBindUnsupported, "probe: " + failed("mmap", err));
  }
  const int bound = hwloc_set_area_membind(topology_, page, probe.length, node_obj_->nodeset,
                                           HWLOC_MEMBIND_BIND, kBindFlags);
  const int err = errno;
  internal::unmap_pages(page, probe.length);
  if (bound != 0) {
    throw error(ErrorKind::kBindUnsupported,
                "probe of node" + os + ": " + failed("hwloc_set_area_membind", err));
  }
  membind_applied_ = true;
}

void* NumaResource::do_allocate(std::size_t bytes, std::size_t alignment) {
  if (!internal::is_power_of_two(alignment)) {
    throw Error(ErrorKind::kInvalidArgument,
                describe("allocate", node_, bytes, alignment, ErrorKind::kInvalidArgument,
                         "alignment must be a power of two"));
  }
  auto fail = [&](ErrorKind kind, const std::string& detail) {
    return AllocationError(kind, bytes, describe("allocate", node_, bytes, alignment, kind, detail));
  };
  const std::optional<internal::Layout> layout = internal::layout_for(bytes, alignment);
  if (!layout) throw fail(ErrorKind::kOutOfMemory, "size exceeds the address space");

  void* p = internal::map_pages(*layout);
  if (p == nullptr) {
    const int err = errno;
    throw fail(ErrorKind::kOutOfMemory, failed("mmap", err));
  }
  // Bind before the first touch: a page faulted in before mbind stays where it landed.
  if (membind_applied_ &&
      hwloc_set_area_membind(topology_, p, layout->length, node_obj_->nodeset, HWLOC_MEMBIND_BIND,
                             kBindFlags) != 0) {
    const int err = errno;
    internal::unmap_pages(p, layout->length);
    throw fail(ErrorKind::kBindFailed, failed("hwloc_set_area_membind", err));
  }
  internal::touch_pages(p, layout->length);

  // relaxed: statistics; they order nothing else.
  bytes_allocated_.fetch_add(bytes, std::memory_order_relaxed);
  allocations_.fetch_add(1, std::memory_order_relaxed);
  return p;
}

void NumaResource::do_deallocate(void* p, std::size_t bytes, std::size_t alignment) {
  // (bytes, alignment) are those allocate() was given (the pmr contract), so the layout, and
  // with it the mapping's length, is the one allocate() computed.
  const std::optional<internal::Layout> layout = internal::layout_for(bytes, alignment);
  if (!layout) return;  // allocate() refused such a request: p cannot come from it
  internal::unmap_pages(p, layout->length);
  // relaxed: statistics; they order nothing else.
  bytes_allocated_.fetch_sub(bytes, std::memory_order_relaxed);
  allocations_.fetch_sub(1, std::memory_order_relaxed);
}

bool NumaResource::do_is_equal(const std::pmr::memory_resource& other) const noexcept {
  return this == &other;
}

std::optional<unsigned> NumaResource::node_of(const void* p) const noexcept {
  if (!membind_applied_) return std::nullopt;  // the topology does not describe this machine
  Bitmap set(hwloc_bitmap_alloc());
  if (!set) return std::nullopt;
  if (hwloc_get_area_memlocation(topology_, p, 1, set.get(), HWLOC_MEMBIND_BYNODESET) != 0 ||
      hwloc_bitmap_weight(set.get()) != 1) {
    return std::nullopt;  // not faulted in (empty), or the kernel could not tell
  }
  const int os_index = hwloc_bitmap_first(set.get());
  hwloc_obj_t node = hwloc_get_numanode_obj_by_os_index(topology_, static_cast<unsigned>(os_index));
  if (node == nullptr) return std::nullopt;
  return node->logical_index;
}

}  // namespace conveyor::alloc
