#include "topology/pin.h"

#include <hwloc.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace conveyor::topology {
namespace {

hwloc_obj_t pu_or_throw(hwloc_topology_t topo, unsigned pu_index, const char* what) {
  const int n = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
  hwloc_obj_t pu = n > 0 && pu_index < static_cast<unsigned>(n)
                       ? hwloc_get_obj_by_type(topo, HWLOC_OBJ_PU, pu_index)
                       : nullptr;
  if (pu == nullptr) {
    throw Error(std::string(what) + ": pu_index = " + std::to_string(pu_index) +
                ": must be < num_pus() = " + std::to_string(n < 0 ? 0 : n));
  }
  return pu;
}

}  // namespace

Topology::Topology() {
  hwloc_topology_t topo = nullptr;
  if (hwloc_topology_init(&topo) != 0) {
    throw Error(std::string("hwloc_topology_init failed: ") + std::strerror(errno));
  }
  if (hwloc_topology_load(topo) != 0) {
    const int err = errno;
    hwloc_topology_destroy(topo);
    throw Error(std::string("hwloc_topology_load failed: ") + std::strerror(err));
  }
  topo_ = topo;
}

Topology::~Topology() {
  if (topo_ != nullptr) hwloc_topology_destroy(topo_);
}

Topology::Topology(Topology&& other) noexcept : topo_(std::exchange(other.topo_, nullptr)) {}

Topology& Topology::operator=(Topology&& other) noexcept {
  if (this != &other) {
    if (topo_ != nullptr) hwloc_topology_destroy(topo_);
    topo_ = std::exchange(other.topo_, nullptr);
  }
  return *this;
}

unsigned Topology::num_pus() const noexcept {
  if (topo_ == nullptr) return 0;
  const int n = hwloc_get_nbobjs_by_type(topo_, HWLOC_OBJ_PU);
  return n > 0 ? static_cast<unsigned>(n) : 0;
}

void Topology::pin_current_thread(unsigned pu_index) const {
  if (topo_ == nullptr) throw Error("pin_current_thread: topology was moved from");
  hwloc_obj_t pu = pu_or_throw(topo_, pu_index, "pin_current_thread");
  if (hwloc_set_cpubind(topo_, pu->cpuset, HWLOC_CPUBIND_THREAD) != 0) {
    const int err = errno;
    throw Error("pin_current_thread: pu_index = " + std::to_string(pu_index) + " (os cpu " +
                std::to_string(pu->os_index) +
                "): hwloc_set_cpubind failed: " + std::strerror(err));
  }
}

unsigned Topology::os_index(unsigned pu_index) const {
  if (topo_ == nullptr) throw Error("os_index: topology was moved from");
  return pu_or_throw(topo_, pu_index, "os_index")->os_index;
}

}  // namespace conveyor::topology
