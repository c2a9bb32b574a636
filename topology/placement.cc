#include "topology/placement.h"

#include <algorithm>
#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <span>
#include <utility>

namespace conveyor::topology {
namespace {

constexpr std::array<std::pair<Policy, std::string_view>, 5> kPolicyNames = {{
    {Policy::kNone, "none"},
    {Policy::kCompact, "compact"},
    {Policy::kScatter, "scatter"},
    {Policy::kNumaLocal, "numa_local"},
    {Policy::kExplicit, "explicit"},
}};

std::string policy_names() {
  std::string names;
  for (const auto& [policy, name] : kPolicyNames) {
    if (!names.empty()) names += ", ";
    names += name;
  }
  return names;
}

std::string plural(std::uint64_t n, std::string_view noun) {
  return std::to_string(n) + " " + std::string(noun) + (n == 1 ? "" : "s");
}

// The PUs threads may run on: every PU with use_smt, else the first PU of each core.
std::vector<unsigned> usable_pus(const Topology& topo, bool use_smt) {
  std::vector<unsigned> pus;
  for (unsigned pu = 0; pu < topo.num_pus(); ++pu) {
    if (use_smt || topo.pus_of_core(topo.core_of(pu)).front() == pu) pus.push_back(pu);
  }
  return pus;
}

using Key = std::function<unsigned(unsigned)>;

// Deals `pus` (in logical order) round-robin over the groups of keys[0], each group first dealt
// the same way over the remaining keys: the first PU of every group, then the second, ...
std::vector<unsigned> deal(const std::vector<unsigned>& pus, std::span<const Key> keys) {
  if (keys.empty()) return pus;
  std::map<unsigned, std::vector<unsigned>> groups;  // ordered by key: logical order of groups
  for (unsigned pu : pus) groups[keys.front()(pu)].push_back(pu);
  std::vector<std::vector<unsigned>> dealt;
  for (auto& [key, members] : groups) dealt.push_back(deal(members, keys.subspan(1)));
  std::vector<unsigned> order;
  order.reserve(pus.size());
  for (std::size_t round = 0; order.size() < pus.size(); ++round) {
    for (const auto& group : dealt) {
      if (round < group.size()) order.push_back(group[round]);
    }
  }
  return order;
}

// `usable`: the PUs placement may use in the scope of the note (the machine or one domain).
std::string smt_text(const Topology& topo, bool use_smt, const std::vector<unsigned>& usable) {
  if (use_smt) return "use_smt on: every PU";
  std::size_t with_smt = 0;  // every PU of the cores `usable` stands for
  for (unsigned pu : usable) with_smt += topo.pus_of_core(topo.core_of(pu)).size();
  std::string text = "use_smt off: the first PU of each core";
  if (with_smt > usable.size()) text += "; use_smt would offer " + plural(with_smt, "PU");
  return text;
}

// Thread t gets order[t % n]; a note if that wraps.
void place_in_order(const Topology& topo, const std::vector<unsigned>& order, bool use_smt,
                    std::vector<ThreadPlacement>& threads, std::vector<std::string>& notes) {
  for (std::size_t t = 0; t < threads.size(); ++t) threads[t].pu = order[t % order.size()];
  if (threads.size() > order.size()) {
    const std::size_t most = (threads.size() + order.size() - 1) / order.size();
    notes.push_back("oversubscribed: " + plural(threads.size(), "thread") + " on " +
                    plural(order.size(), "usable PU") + " (" +
                    smt_text(topo, use_smt, order) + "); threads wrap around, up to " +
                    std::to_string(most) + " per PU");
  }
}

void place_numa_local(const Topology& topo, const PlanRequest& request,
                      std::vector<ThreadPlacement>& threads, std::vector<std::string>& notes) {
  const bool by_cache = topo.num_numa_nodes() == 1 && topo.num_cache_domains() > 1 &&
                        topo.cache_domains_shared();
  const std::string kind =
      by_cache ? std::string(topo.cache_domain_kind()) + " domain" : std::string("NUMA node");
  std::map<unsigned, std::vector<unsigned>> by_id;  // domain id -> its usable PUs, logical order
  for (unsigned pu : usable_pus(topo, request.use_smt)) {
    by_id[by_cache ? topo.cache_domain_of(pu) : topo.numa_node_of(pu)].push_back(pu);
  }
  struct Domain {
    unsigned id;
    std::vector<unsigned> pus;
    std::size_t next = 0;         // threads placed so far: the next one takes pus[next % size]
    std::vector<unsigned> queues;  // the queues placed here
  };
  std::vector<Domain> domains;
  for (auto& [id, pus] : by_id) domains.push_back(Domain{id, std::move(pus), 0, {}});
  if (by_cache) {
    notes.push_back("numa_local: one NUMA node, so queues are spread over its " +
                    plural(domains.size(), kind));
  }

  const std::size_t per_queue = std::size_t{request.producers} + request.consumers;
  for (unsigned q = 0; q < request.queues; ++q) {
    Domain& d = domains[q % domains.size()];
    d.queues.push_back(q);
    for (std::size_t i = 0; i < per_queue; ++i, ++d.next) {
      threads[q * per_queue + i].pu = d.pus[d.next % d.pus.size()];
    }
  }
  for (const Domain& d : domains) {
    if (d.next <= d.pus.size()) continue;
    std::string queues;
    for (unsigned q : d.queues) queues += (queues.empty() ? "" : ", ") + std::to_string(q);
    notes.push_back("oversubscribed: " + kind + " " + std::to_string(d.id) + " has " +
                    plural(d.pus.size(), "usable PU") + " for " + plural(d.next, "thread") +
                    " (queue" + (d.queues.size() == 1 ? " " : "s ") + queues + "; " +
                    smt_text(topo, request.use_smt, d.pus) +
                    "); threads wrap around inside it");
  }
}

void place_explicit(const Topology& topo, const PlanRequest& request,
                    std::vector<ThreadPlacement>& threads, std::vector<std::string>& notes) {
  const std::vector<unsigned>& pus = request.explicit_pus;
  if (pus.size() != threads.size()) {
    throw Error("explicit_pus has " + plural(pus.size(), "PU") +
                ": must have one per thread, queues * (producers + consumers) = " +
                std::to_string(threads.size()));
  }
  std::map<unsigned, unsigned> threads_on;  // PU -> threads given it
  for (std::size_t t = 0; t < pus.size(); ++t) {
    if (pus[t] >= topo.num_pus()) {
      throw Error("explicit_pus[" + std::to_string(t) + "] = " + std::to_string(pus[t]) +
                  ": must be < num_pus() = " + std::to_string(topo.num_pus()) + " (" +
                  topo.source() + ")");
    }
    threads[t].pu = pus[t];
    ++threads_on[pus[t]];
  }
  std::string shared;
  std::size_t shared_count = 0;
  for (const auto& [pu, count] : threads_on) {
    if (count < 2) continue;
    ++shared_count;
    shared += (shared.empty() ? "" : ", ") + ("PU " + std::to_string(pu) + ": ") +
              plural(count, "thread");
  }
  if (shared_count > 0) {
    notes.push_back("oversubscribed: " + plural(shared_count, "PU") +
                    " run more than one thread (" + shared + ")");
  }
}

void validate(const PlanRequest& request) {
  auto at_least_one = [](const char* name, unsigned value) {
    if (value == 0) throw Error(std::string(name) + " = 0: must be >= 1");
  };
  at_least_one("producers", request.producers);
  at_least_one("consumers", request.consumers);
  at_least_one("queues", request.queues);
  const std::uint64_t total =
      std::uint64_t{request.queues} * (std::uint64_t{request.producers} + request.consumers);
  if (total > kMaxPlanThreads) {
    throw Error("queues * (producers + consumers) = " + std::to_string(total) +
                ": must be <= " + std::to_string(kMaxPlanThreads));
  }
  if (!request.explicit_pus.empty() && request.policy != Policy::kExplicit) {
    throw Error("explicit_pus has " + plural(request.explicit_pus.size(), "PU") +
                " but policy = " + std::string(to_string(request.policy)) +
                ": explicit_pus is read only by policy explicit");
  }
}

std::string node_text(const std::optional<unsigned>& node) {
  return node ? "NUMA node " + std::to_string(*node) : std::string("any NUMA node");
}

nlohmann::ordered_json optional_json(const std::optional<unsigned>& v) {
  return v ? nlohmann::ordered_json(*v) : nlohmann::ordered_json(nullptr);
}

}  // namespace

std::string_view to_string(Policy policy) {
  for (const auto& [p, name] : kPolicyNames) {
    if (p == policy) return name;
  }
  return "unknown";
}

Policy parse_policy(std::string_view name) {
  for (const auto& [policy, n] : kPolicyNames) {
    if (n == name) return policy;
  }
  throw Error("policy = '" + std::string(name) + "': unknown; expected one of " + policy_names());
}

std::string_view to_string(Role role) {
  return role == Role::kProducer ? "producer" : "consumer";
}

const ThreadPlacement& Plan::producer(unsigned queue, unsigned index) const {
  if (queue >= queues_.size()) {
    throw Error("Plan::producer: queue = " + std::to_string(queue) + ": must be < " +
                std::to_string(queues_.size()) + " (the plan's queues)");
  }
  if (index >= producers_) {
    throw Error("Plan::producer: index = " + std::to_string(index) + ": must be < " +
                std::to_string(producers_) + " (producers per queue)");
  }
  return threads_[std::size_t{queue} * (producers_ + consumers_) + index];
}

const ThreadPlacement& Plan::consumer(unsigned queue, unsigned index) const {
  if (queue >= queues_.size()) {
    throw Error("Plan::consumer: queue = " + std::to_string(queue) + ": must be < " +
                std::to_string(queues_.size()) + " (the plan's queues)");
  }
  if (index >= consumers_) {
    throw Error("Plan::consumer: index = " + std::to_string(index) + ": must be < " +
                std::to_string(consumers_) + " (consumers per queue)");
  }
  return threads_[std::size_t{queue} * (producers_ + consumers_) + producers_ + index];
}

Plan make_plan(const Topology& topology, const PlanRequest& request) {
  validate(request);
  Plan plan;
  plan.policy_ = request.policy;
  plan.producers_ = request.producers;
  plan.consumers_ = request.consumers;
  plan.use_smt_ = request.use_smt;
  plan.source_ = topology.source();
  plan.binds_ = request.policy != Policy::kNone && topology.is_this_system();

  for (unsigned q = 0; q < request.queues; ++q) {
    for (unsigned i = 0; i < request.producers; ++i) {
      plan.threads_.push_back(ThreadPlacement{Role::kProducer, q, i, std::nullopt, std::nullopt});
    }
    for (unsigned i = 0; i < request.consumers; ++i) {
      plan.threads_.push_back(ThreadPlacement{Role::kConsumer, q, i, std::nullopt, std::nullopt});
    }
  }

  switch (request.policy) {
    case Policy::kNone: break;
    case Policy::kCompact:
      place_in_order(topology, usable_pus(topology, request.use_smt), request.use_smt,
                     plan.threads_, plan.notes_);
      break;
    case Policy::kScatter: {
      const Key keys[] = {
          [&](unsigned pu) { return topology.package_of(pu); },
          [&](unsigned pu) { return topology.numa_node_of(pu); },
          [&](unsigned pu) { return topology.core_of(pu); },
      };
      place_in_order(topology, deal(usable_pus(topology, request.use_smt), keys),
                     request.use_smt, plan.threads_, plan.notes_);
      break;
    }
    case Policy::kNumaLocal: place_numa_local(topology, request, plan.threads_, plan.notes_); break;
    case Policy::kExplicit: place_explicit(topology, request, plan.threads_, plan.notes_); break;
  }

  for (ThreadPlacement& t : plan.threads_) {
    if (t.pu) t.numa_node = topology.numa_node_of(*t.pu);
  }
  const std::size_t per_queue = std::size_t{request.producers} + request.consumers;
  for (unsigned q = 0; q < request.queues; ++q) {  // the node of the queue's first consumer
    plan.queues_.push_back(
        QueuePlacement{q, plan.threads_[q * per_queue + request.producers].numa_node});
  }
  if (request.policy != Policy::kNone && !topology.is_this_system()) {
    plan.notes_.push_back("planned, not applied: topology is " + topology.source());
  }
  return plan;
}

std::string Plan::to_text() const {
  const std::size_t per_queue = std::size_t{producers_} + consumers_;
  std::string out = "plan: " + std::string(to_string(policy_)) + ", " +
                    plural(queues_.size(), "queue") + " x (" + plural(producers_, "producer") +
                    " + " + plural(consumers_, "consumer") + ") = " +
                    plural(threads_.size(), "thread") + ", use_smt " +
                    (use_smt_ ? "on" : "off") + ", on " + source_ + " (" +
                    (binds_                     ? "binds threads"
                     : policy_ == Policy::kNone ? "threads not bound"
                                                : "planned, not applied") +
                    ")\n";
  for (const QueuePlacement& q : queues_) {
    out += "  queue " + std::to_string(q.queue) + ": memory on " + node_text(q.numa_node) + "\n";
    for (std::size_t i = 0; i < per_queue; ++i) {
      const ThreadPlacement& t = threads_[q.queue * per_queue + i];
      std::string who = "    " + std::string(to_string(t.role)) + " " + std::to_string(t.index);
      who.resize(std::max<std::size_t>(who.size(), 18), ' ');
      out += who + (t.pu ? "PU " + std::to_string(*t.pu) + ", " + node_text(t.numa_node)
                         : std::string("not bound")) +
             "\n";
    }
  }
  if (!notes_.empty()) {
    out += "  notes:\n";
    for (const std::string& note : notes_) out += "    - " + note + "\n";
  }
  return out;
}

std::string Plan::to_json() const {
  nlohmann::ordered_json queues = nlohmann::ordered_json::array();
  for (const QueuePlacement& q : queues_) {
    queues.push_back({{"queue", q.queue}, {"numa_node", optional_json(q.numa_node)}});
  }
  nlohmann::ordered_json threads = nlohmann::ordered_json::array();
  for (const ThreadPlacement& t : threads_) {
    threads.push_back({{"role", to_string(t.role)},
                       {"queue", t.queue},
                       {"index", t.index},
                       {"pu", optional_json(t.pu)},
                       {"numa_node", optional_json(t.numa_node)}});
  }
  nlohmann::ordered_json j = {
      {"policy", to_string(policy_)},
      {"source", source_},
      {"binds", binds_},
      {"request",
       {{"producers", producers_},
        {"consumers", consumers_},
        {"queues", queues_.size()},
        {"use_smt", use_smt_}}},
      {"queues", std::move(queues)},
      {"threads", std::move(threads)},
      {"notes", notes_},
  };
  return j.dump(2);
}

}  // namespace conveyor::topology
