// Topology and thread pinning: the first cut of Conveyor's hwloc layer.
//
// Contract:
//  - `Topology` owns one loaded hwloc topology of the machine this process runs on (RAII: the
//    constructor inits and loads, the destructor destroys; not copyable, movable). hwloc 2.x, by
//    default, drops the PUs its cgroup cpuset disallows, so `num_pus()` is the count a container
//    gets, not the host's. (A narrower affinity mask set by taskset is not applied: binding
//    outside it is allowed by Linux and still succeeds.)
//  - PUs are named by hwloc's *logical* index (0..num_pus()-1, in topology order: PUs of one core
//    are neighbours, then cores of one cache, then packages), not by the OS cpu number.
//  - `pin_current_thread(i)` binds the calling thread (only it, HWLOC_CPUBIND_THREAD) to PU i
//    (a Linux affinity mask is strict: the thread never runs elsewhere). It throws
//    `topology::Error` when i is out of range or the OS refuses.
//  - A `Topology` may be shared by threads for the const queries and for pinning: hwloc allows
//    concurrent read-only use of a loaded topology, and binding does not modify it.
// Errors: setup code, so errors are exceptions (STYLE.md, "Errors"); topology/ must not include
// engine/, hence its own `Error` type rather than conveyor::Error.
// Reference: hwloc 2.x API, "CPU binding" (hwloc_set_cpubind) and "Object type helpers".
#pragma once

#include <stdexcept>
#include <string>

struct hwloc_topology;  // hwloc's opaque handle; hwloc.h stays out of our public header

namespace conveyor::topology {

// Any failure of topology discovery or placement. what() names the operation and the argument.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

class Topology {
 public:
  // Loads the topology of the running machine. Throws Error if hwloc cannot.
  Topology();
  ~Topology();
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;
  Topology(Topology&& other) noexcept;
  Topology& operator=(Topology&& other) noexcept;

  // Processing units (hardware threads) this process may use. At least 1.
  unsigned num_pus() const noexcept;

  // Binds the calling thread to the PU of logical index `pu_index` (< num_pus()).
  // Throws Error naming the index on a bad index or when the OS refuses the binding.
  void pin_current_thread(unsigned pu_index) const;

  // The OS cpu number of PU `pu_index` (what /proc/cpuinfo and sched_getcpu() call it).
  unsigned os_index(unsigned pu_index) const;

 private:
  hwloc_topology* topo_ = nullptr;  // owned; null only after a move
};

}  // namespace conveyor::topology
