// Placement plans: on which PU each producer and consumer thread of each queue runs, and on which
// NUMA node each queue's ring belongs.
//
// Contract:
//  - make_plan(topology, request) is a pure function of the topology's facts and the request: the
//    same inputs give the same Plan (a value: copyable, comparable). It binds nothing; a thread
//    applies its own placement with Topology::bind_current_thread(*placement.pu).
//  - Thread order in a plan: queue 0's producers, queue 0's consumers, queue 1's producers, ...
//    producer(q, i) and consumer(q, i) look one up.
//  - "Usable PUs": with use_smt, every PU; without, the first PU of each core only, so that SMT
//    siblings are used only when asked. Orders below list usable PUs.
//  - Policies:
//      kNone       no PU and no node for any thread (nullopt); the OS places them; queue node
//                  nullopt.
//      kCompact    thread t runs on order[t % n], order = the usable PUs in logical order: a
//                  core's PUs before the next core's, so consecutive threads share a core (with
//                  use_smt) or sit on neighbouring cores (without).
//      kScatter    order = the usable PUs dealt round-robin over packages, then over NUMA nodes
//                  within a package, then over cores within a node, then over a core's PUs
//                  (each level dealt recursively): consecutive threads are as far apart as the
//                  topology allows. Thread t runs on order[t % n].
//      kNumaLocal  domains = the NUMA nodes that have usable PUs; when there is one NUMA node and
//                  several shared cache domains (Topology::cache_domains_shared()), the cache
//                  domains instead. Queue q goes to domain q % D; its producers then consumers
//                  take that domain's usable PUs in logical order, continuing where the previous
//                  queue in the same domain stopped and wrapping around inside the domain, never
//                  leaving it.
//      kExplicit   thread t runs on explicit_pus[t]; the list must have exactly one PU per thread,
//                  each < num_pus(); use_smt is not consulted.
//    Every placed thread's numa_node is its PU's node. A queue's memory node is the node of its
//    first consumer (for kNumaLocal that is the domain's node: all its consumers share it).
//  - Oversubscription (more threads than usable PUs, overall or in a kNumaLocal domain, or an
//    explicit PU listed twice) is a first-class scenario, not an error: threads wrap around, and
//    notes() says how many threads share PUs.
//  - binds() is true when applying the plan binds threads: a policy other than kNone on a
//    topology that is this system. On a synthetic or XML topology the plan is shown, not applied,
//    and notes() says so.
// Errors (Error, naming the argument and the value): producers, consumers or queues = 0; more
// than kMaxPlanThreads threads; an unknown policy name; for kExplicit a wrong number of PUs or a
// PU >= num_pus(); explicit_pus given with another policy; producer()/consumer() out of range.
// Reference: hwloc's "hwloc-distrib" (round-robin distribution over the tree) for kScatter.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "topology/topology.h"

namespace conveyor::topology {

enum class Policy : std::uint8_t { kNone, kCompact, kScatter, kNumaLocal, kExplicit };

// "none", "compact", "scatter", "numa_local", "explicit".
std::string_view to_string(Policy policy);
// The inverse of to_string(); Error naming the value and the accepted names otherwise.
Policy parse_policy(std::string_view name);

enum class Role : std::uint8_t { kProducer, kConsumer };
std::string_view to_string(Role role);  // "producer", "consumer"

// The most threads one plan may place (queues * (producers + consumers)).
inline constexpr unsigned kMaxPlanThreads = 1u << 16;

struct PlanRequest {
  unsigned producers = 1;  // per queue
  unsigned consumers = 1;  // per queue
  unsigned queues = 1;
  Policy policy = Policy::kNone;
  bool use_smt = false;                // SMT siblings used only when asked
  std::vector<unsigned> explicit_pus;  // kExplicit: one logical PU per thread, in plan order
};

struct ThreadPlacement {
  Role role = Role::kProducer;
  unsigned queue = 0;
  unsigned index = 0;                    // among the queue's producers, or its consumers
  std::optional<unsigned> pu;            // logical PU; nullopt: not bound
  std::optional<unsigned> numa_node;     // pu's NUMA node
  bool operator==(const ThreadPlacement&) const = default;
};

struct QueuePlacement {
  unsigned queue = 0;
  std::optional<unsigned> numa_node;  // where the ring's memory goes: its consumers' node
  bool operator==(const QueuePlacement&) const = default;
};

class Plan {
 public:
  Plan() = default;  // an empty plan: kNone, no queue, no thread

  Policy policy() const { return policy_; }
  const std::vector<ThreadPlacement>& threads() const { return threads_; }
  const std::vector<QueuePlacement>& queues() const { return queues_; }
  // Error naming the queue and index if out of range.
  const ThreadPlacement& producer(unsigned queue, unsigned index) const;
  const ThreadPlacement& consumer(unsigned queue, unsigned index) const;
  // True when applying the plan binds threads (see the contract): false for kNone and on a
  // topology that is not this system.
  bool binds() const { return binds_; }
  // Oversubscription, "planned, not applied", and the like; empty when there is nothing to say.
  const std::vector<std::string>& notes() const { return notes_; }
  // The topology the plan was made for, as Topology::source() says it.
  const std::string& source() const { return source_; }

  // One line of summary, a block per queue, one line per thread, then the notes.
  std::string to_text() const;
  // One JSON object: policy, source, binds, the request's shape, queues, threads, notes.
  std::string to_json() const;

  bool operator==(const Plan&) const = default;

 private:
  friend Plan make_plan(const Topology& topology, const PlanRequest& request);

  Policy policy_ = Policy::kNone;
  unsigned producers_ = 0;  // per queue
  unsigned consumers_ = 0;  // per queue
  bool use_smt_ = false;
  bool binds_ = false;
  std::string source_;
  std::vector<ThreadPlacement> threads_;
  std::vector<QueuePlacement> queues_;
  std::vector<std::string> notes_;
};

Plan make_plan(const Topology& topology, const PlanRequest& request);

}  // namespace conveyor::topology
