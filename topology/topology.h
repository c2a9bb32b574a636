// Topology: one loaded hwloc topology (this machine, a synthetic description, or an XML export),
// the per-PU facts placement needs, and binding the calling thread to a PU.
//
// Contract:
//  - `Topology` owns one loaded hwloc topology (RAII: the constructor inits and loads, the
//    destructor destroys; not copyable, movable; a moved-from Topology answers num_pus() == 0 and
//    throws Error from every other query).
//  - Where it comes from:
//      this_machine()          the running machine. hwloc 2.x drops the PUs its cgroup cpuset
//                              disallows, so num_pus() is what a container gets, not the host's.
//                              (A narrower taskset mask is not applied: binding outside it is
//                              allowed by Linux and still succeeds.)
//      synthetic(desc)         an hwloc synthetic description, e.g. "pack:2 numa:2 core:8 pu:2"
//                              (hwloc_topology_set_synthetic).
//      from_xml(path)          an XML export (lstopo --of xml, hwloc_topology_export_xml).
//      from_env_or_machine()   what Topology() does: the environment variable CONVEYOR_TOPOLOGY,
//                              if set and non-empty, names an XML file (it exists, or ends in
//                              ".xml") or else is a synthetic description; unset or empty, this
//                              machine. hwloc's own HWLOC_SYNTHETIC / HWLOC_XMLFILE still apply
//                              underneath; is_this_system() tells the truth either way.
//    A bad description or an unreadable XML file is an Error naming the source and the value.
//  - PUs, cores, NUMA nodes, packages and cache domains are named by hwloc's *logical* index
//    (0..n-1 in topology order: PUs of one core are neighbours, then cores of one cache, then
//    packages), never by the OS number; os_index() translates a PU for /proc and sched_getcpu().
//  - The per-PU facts (core, NUMA node, package, cache domain) are computed once at load:
//      core          the Core ancestor; a PU without one (synthetic "pu:4") is its own core.
//      NUMA node     the first node, in logical order, whose cpuset contains the PU (hwloc 2
//                    attaches nodes as memory children, so they are not ancestors). At least 1.
//      package       the Package ancestor, else 0 (the machine counts as one package).
//      cache domain  the outermost CPU cache above the PU: L3, else L2, else L1; with no cache
//                    at all, the package. cache_domains_shared() says whether one such cache
//                    serves several cores (a per-core "L3", as VMs report, is no shared domain).
//  - Binding. bind_current_thread(pu) binds the calling thread only (HWLOC_CPUBIND_THREAD; a
//    Linux affinity mask is strict: the thread never runs elsewhere). On a topology that is not
//    this system (synthetic, XML) nothing is bound: it returns applied = false with a note saying
//    so, which is not an error. The PU index is checked on every topology (a PU the topology does
//    not have is the caller's bug); on this system an OS refusal is an Error naming the PU and
//    its OS cpu. pin_current_thread(pu) is the first cut's strict form: bind or throw, including
//    when the topology is not this system.
//  - Thread safety: a loaded Topology may be shared by threads for every const member (hwloc
//    allows concurrent read-only use of a loaded topology; binding does not modify it).
// Errors: setup code, so errors are exceptions (STYLE.md, "Errors"); topology/ includes nothing
// else of Conveyor, hence its own Error type rather than conveyor::Error.
// Reference: hwloc 2.x API: "Changing the Source of Topology Discovery", "CPU binding",
// "Finding Objects inside a CPU set"; lstopo(1) for the tree's look.
#pragma once

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace conveyor::topology {

namespace internal {
struct TopologyState;  // the hwloc handle and the per-PU tables; defined in topology.cc
}  // namespace internal

// Any failure of topology discovery, binding or placement. what() names the operation, the
// argument and its value.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// The outcome of bind_current_thread(): applied is false only when the topology is not this
// system (a plan being shown, not run); note then says why, and is empty otherwise.
struct BindResult {
  bool applied = false;
  std::string note;
};

// The environment variable from_env_or_machine() reads.
inline constexpr std::string_view kTopologyEnvVar = "CONVEYOR_TOPOLOGY";

class Topology {
 public:
  // from_env_or_machine(). Throws Error if hwloc cannot load the topology.
  Topology();
  ~Topology();
  Topology(const Topology&) = delete;
  Topology& operator=(const Topology&) = delete;
  Topology(Topology&& other) noexcept;
  Topology& operator=(Topology&& other) noexcept;

  static Topology this_machine();
  static Topology synthetic(std::string_view description);
  static Topology from_xml(const std::string& path);
  static Topology from_env_or_machine();

  // hwloc_topology_is_thissystem(): false for synthetic and XML topologies.
  bool is_this_system() const;
  // "this machine", "synthetic 'pack:2 core:4 pu:2'", "xml '/path/to/file.xml'".
  std::string source() const;

  // Counts. num_pus() is at least 1 on a loaded topology (0 only when moved from); the others are
  // at least 1.
  unsigned num_pus() const noexcept;
  unsigned num_cores() const;
  unsigned num_numa_nodes() const;
  unsigned num_packages() const;
  unsigned num_cache_domains() const;
  // "L3", "L2", "L1" or "package": what a cache domain is on this topology.
  std::string_view cache_domain_kind() const;
  // Whether some cache domain serves more than one core (false for per-core caches).
  bool cache_domains_shared() const;

  // Facts about PU `pu` (< num_pus(); Error naming the function and the index otherwise).
  unsigned core_of(unsigned pu) const;
  unsigned numa_node_of(unsigned pu) const;
  unsigned package_of(unsigned pu) const;
  unsigned cache_domain_of(unsigned pu) const;
  // The OS cpu number of PU `pu` (what /proc/cpuinfo and sched_getcpu() call it).
  unsigned os_index(unsigned pu) const;
  // The other PUs of pu's core (hardware threads sharing it), in logical order; empty without SMT.
  std::vector<unsigned> smt_siblings(unsigned pu) const;
  // The PUs of core `core` (< num_cores()), in logical order.
  const std::vector<unsigned>& pus_of_core(unsigned core) const;

  // Binds the calling thread to PU `pu`, or, if the topology is not this system, only says that
  // it would have. Throws Error on a bad index or when the OS refuses.
  BindResult bind_current_thread(unsigned pu) const;
  // Binds the calling thread to PU `pu`; throws Error on a bad index, when the OS refuses, and
  // when the topology is not this system.
  void pin_current_thread(unsigned pu) const;
  // The logical PU the calling thread last ran on (hwloc_get_last_cpu_location, thread scope);
  // nullopt if the topology is not this system, the query fails, or that PU is not in the
  // topology. A snapshot: an unbound thread may have moved since.
  std::optional<unsigned> current_pu() const;

  // The topology as an indented text tree, a compact lstopo: Machine, Package, Die, NUMANode,
  // the cache-domain level and Core, each with its logical (L#) and OS (P#) index; a core's PUs
  // on the core's line. Ends with a newline.
  std::string to_tree() const;
  // One JSON object: source, this_system, counts, cache_domain_kind and a per-PU table.
  std::string to_json() const;

 private:
  // hwloc.h stays out of this header: the hwloc handle lives in the state, defined in the .cc.
  explicit Topology(std::unique_ptr<internal::TopologyState> state);
  const internal::TopologyState& state(const char* operation) const;
  std::unique_ptr<internal::TopologyState> state_;  // null only after a move
};

}  // namespace conveyor::topology
