// topology/placement.h: the exact PU and NUMA node of every thread and the memory node of every
// queue, for each policy on synthetic machines with 1, 2 and 4 NUMA nodes, with and without SMT;
// SMT siblings only when asked; oversubscription wraps with a note; request validation; and a
// plan applied on this machine puts each thread where it says.
#include "topology/placement.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/test_errors.h"
#include "topology/topology.h"

namespace conveyor::topology {
namespace {

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

bool any_note_contains(const Plan& plan, const std::string& needle) {
  return std::any_of(plan.notes().begin(), plan.notes().end(),
                     [&](const std::string& n) { return contains(n, needle); });
}

std::string notes_text(const Plan& plan) {
  std::string text;
  for (const std::string& n : plan.notes()) text += "\n  " + n;
  return text;
}

// what() of the topology::Error `f` throws; fails the test if it throws none.
template <typename F>
std::string error_of(F&& f) {
  return conveyor::testutil::what_of<Error>(f);
}

PlanRequest request(Policy policy, unsigned producers, unsigned consumers, unsigned queues,
                    bool use_smt = false, std::vector<unsigned> explicit_pus = {}) {
  PlanRequest r;
  r.policy = policy;
  r.producers = producers;
  r.consumers = consumers;
  r.queues = queues;
  r.use_smt = use_smt;
  r.explicit_pus = std::move(explicit_pus);
  return r;
}

// ---------------------------------------------------------------------------------------------
// Exact placements

struct Case {
  const char* name;
  const char* topology;
  PlanRequest request;
  std::vector<unsigned> pus;          // per thread, plan order
  std::vector<unsigned> nodes;        // per thread
  std::vector<unsigned> queue_nodes;  // per queue
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class ExactPlacement : public testing::TestWithParam<Case> {};

TEST_P(ExactPlacement, EveryThreadAndQueueIsWhereThePolicySays) {
  const Case& c = GetParam();
  const Topology topo = Topology::synthetic(c.topology);
  const Plan plan = make_plan(topo, c.request);
  ASSERT_EQ(plan.threads().size(), c.pus.size());
  ASSERT_EQ(c.nodes.size(), c.pus.size());
  for (std::size_t t = 0; t < c.pus.size(); ++t) {
    SCOPED_TRACE("thread " + std::to_string(t));
    EXPECT_EQ(plan.threads()[t].pu, std::optional<unsigned>(c.pus[t]));
    EXPECT_EQ(plan.threads()[t].numa_node, std::optional<unsigned>(c.nodes[t]));
  }
  ASSERT_EQ(plan.queues().size(), c.queue_nodes.size());
  for (std::size_t q = 0; q < c.queue_nodes.size(); ++q) {
    SCOPED_TRACE("queue " + std::to_string(q));
    EXPECT_EQ(plan.queues()[q].queue, q);
    EXPECT_EQ(plan.queues()[q].numa_node, std::optional<unsigned>(c.queue_nodes[q]));
  }
  EXPECT_EQ(plan.policy(), c.request.policy);
  EXPECT_FALSE(plan.binds());  // synthetic: planned, not applied
}

constexpr Policy kCompact = Policy::kCompact;
constexpr Policy kScatter = Policy::kScatter;
constexpr Policy kNuma = Policy::kNumaLocal;
constexpr Policy kExplicit = Policy::kExplicit;

// Thread order: q0 producers, q0 consumers, q1 producers, ... With 1 producer and 1 consumer per
// queue and 2 queues: q0p0, q0c0, q1p0, q1c0.
const Case kCases[] = {
    // core:4 pu:1: one node, four cores, no SMT.
    {"OneNode_Compact", "core:4 pu:1", request(kCompact, 1, 1, 2), {0, 1, 2, 3}, {0, 0, 0, 0},
     {0, 0}},
    {"OneNode_Scatter", "core:4 pu:1", request(kScatter, 1, 1, 2), {0, 1, 2, 3}, {0, 0, 0, 0},
     {0, 0}},
    {"OneNode_NumaLocal", "core:4 pu:1", request(kNuma, 1, 1, 2), {0, 1, 2, 3}, {0, 0, 0, 0},
     {0, 0}},
    {"OneNode_Explicit", "core:4 pu:1", request(kExplicit, 1, 1, 2, false, {3, 2, 1, 0}),
     {3, 2, 1, 0}, {0, 0, 0, 0}, {0, 0}},

    // core:4 pu:2: one node, four cores of two PUs (core c = PUs 2c, 2c+1).
    {"OneNodeSmt_Compact", "core:4 pu:2", request(kCompact, 1, 1, 2), {0, 2, 4, 6}, {0, 0, 0, 0},
     {0, 0}},
    {"OneNodeSmt_CompactUseSmt", "core:4 pu:2", request(kCompact, 1, 1, 2, true), {0, 1, 2, 3},
     {0, 0, 0, 0}, {0, 0}},
    // 6 threads: q0p0 q0c0 q0c1 q1p0 q1c0 q1c1. Without SMT 4 usable PUs, so it wraps.
    {"OneNodeSmt_Scatter", "core:4 pu:2", request(kScatter, 1, 2, 2), {0, 2, 4, 6, 0, 2},
     {0, 0, 0, 0, 0, 0}, {0, 0}},
    {"OneNodeSmt_ScatterUseSmt", "core:4 pu:2", request(kScatter, 1, 2, 2, true),
     {0, 2, 4, 6, 1, 3}, {0, 0, 0, 0, 0, 0}, {0, 0}},
    {"OneNodeSmt_NumaLocal", "core:4 pu:2", request(kNuma, 1, 1, 2), {0, 2, 4, 6}, {0, 0, 0, 0},
     {0, 0}},
    {"OneNodeSmt_NumaLocalUseSmt", "core:4 pu:2", request(kNuma, 1, 1, 2, true), {0, 1, 2, 3},
     {0, 0, 0, 0}, {0, 0}},

    // pack:2 numa:1 core:4 pu:2: two nodes, one per package; node k = PUs 8k..8k+7.
    {"TwoNodesSmt_Compact", "pack:2 numa:1 core:4 pu:2", request(kCompact, 1, 1, 2),
     {0, 2, 4, 6}, {0, 0, 0, 0}, {0, 0}},
    {"TwoNodesSmt_CompactUseSmt", "pack:2 numa:1 core:4 pu:2", request(kCompact, 1, 1, 2, true),
     {0, 1, 2, 3}, {0, 0, 0, 0}, {0, 0}},
    {"TwoNodesSmt_Scatter", "pack:2 numa:1 core:4 pu:2", request(kScatter, 1, 1, 2),
     {0, 8, 2, 10}, {0, 1, 0, 1}, {1, 1}},
    {"TwoNodesSmt_ScatterUseSmt", "pack:2 numa:1 core:4 pu:2", request(kScatter, 1, 1, 2, true),
     {0, 8, 2, 10}, {0, 1, 0, 1}, {1, 1}},
    {"TwoNodesSmt_NumaLocal", "pack:2 numa:1 core:4 pu:2", request(kNuma, 1, 1, 2),
     {0, 2, 8, 10}, {0, 0, 1, 1}, {0, 1}},
    {"TwoNodesSmt_NumaLocalUseSmt", "pack:2 numa:1 core:4 pu:2", request(kNuma, 1, 1, 2, true),
     {0, 1, 8, 9}, {0, 0, 1, 1}, {0, 1}},
    {"TwoNodesSmt_Explicit", "pack:2 numa:1 core:4 pu:2",
     request(kExplicit, 1, 1, 2, false, {9, 1, 0, 15}), {9, 1, 0, 15}, {1, 0, 0, 1}, {0, 1}},

    // pack:2 numa:2 core:4 pu:1: four nodes, two per package; node k = PUs 4k..4k+3.
    {"FourNodes_Compact", "pack:2 numa:2 core:4 pu:1", request(kCompact, 1, 1, 2), {0, 1, 2, 3},
     {0, 0, 0, 0}, {0, 0}},
    // Packages first (0 | 8), then the other node of each package (4 | 12).
    {"FourNodes_Scatter", "pack:2 numa:2 core:4 pu:1", request(kScatter, 1, 1, 2), {0, 8, 4, 12},
     {0, 2, 1, 3}, {2, 3}},
    {"FourNodes_NumaLocal", "pack:2 numa:2 core:4 pu:1", request(kNuma, 1, 1, 2), {0, 1, 4, 5},
     {0, 0, 1, 1}, {0, 1}},
    {"FourNodes_NumaLocalFourQueues", "pack:2 numa:2 core:4 pu:1", request(kNuma, 1, 1, 4),
     {0, 1, 4, 5, 8, 9, 12, 13}, {0, 0, 1, 1, 2, 2, 3, 3}, {0, 1, 2, 3}},
    // A fifth queue goes back to node 0 and continues after queue 0's PUs.
    {"FourNodes_NumaLocalFiveQueues", "pack:2 numa:2 core:4 pu:1", request(kNuma, 1, 1, 5),
     {0, 1, 4, 5, 8, 9, 12, 13, 2, 3}, {0, 0, 1, 1, 2, 2, 3, 3, 0, 0}, {0, 1, 2, 3, 0}},
    // The queue's memory follows its consumers, not its producers.
    {"FourNodes_ExplicitQueueNodeIsTheConsumers", "pack:2 numa:2 core:4 pu:1",
     request(kExplicit, 1, 1, 2, false, {15, 0, 7, 8}), {15, 0, 7, 8}, {3, 0, 1, 2}, {0, 2}},

    // pack:2 numa:2 core:4 pu:2: four nodes, SMT; node k = PUs 8k..8k+7, core c = PUs 2c, 2c+1.
    {"FourNodesSmt_Compact", "pack:2 numa:2 core:4 pu:2", request(kCompact, 1, 1, 2),
     {0, 2, 4, 6}, {0, 0, 0, 0}, {0, 0}},
    {"FourNodesSmt_CompactUseSmt", "pack:2 numa:2 core:4 pu:2", request(kCompact, 1, 1, 2, true),
     {0, 1, 2, 3}, {0, 0, 0, 0}, {0, 0}},
    {"FourNodesSmt_Scatter", "pack:2 numa:2 core:4 pu:2", request(kScatter, 1, 1, 2),
     {0, 16, 8, 24}, {0, 2, 1, 3}, {2, 3}},
    {"FourNodesSmt_NumaLocal", "pack:2 numa:2 core:4 pu:2", request(kNuma, 1, 1, 2),
     {0, 2, 8, 10}, {0, 0, 1, 1}, {0, 1}},
    {"FourNodesSmt_NumaLocalUseSmt", "pack:2 numa:2 core:4 pu:2", request(kNuma, 1, 1, 2, true),
     {0, 1, 8, 9}, {0, 0, 1, 1}, {0, 1}},
    {"FourNodesSmt_NumaLocalTwoByTwo", "pack:2 numa:2 core:4 pu:2", request(kNuma, 2, 2, 4),
     {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30},
     {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3}, {0, 1, 2, 3}},
    // 20 threads: without SMT the 16 cores' first PUs, then wrap; with SMT the second PUs next.
    // The queue's memory node is that of its first consumer, thread 10 on PU 12.
    {"FourNodesSmt_ScatterTwentyThreads", "pack:2 numa:2 core:4 pu:2",
     request(kScatter, 10, 10, 1),
     {0, 16, 8, 24, 2, 18, 10, 26, 4, 20, 12, 28, 6, 22, 14, 30, 0, 16, 8, 24},
     {0, 2, 1, 3, 0, 2, 1, 3, 0, 2, 1, 3, 0, 2, 1, 3, 0, 2, 1, 3}, {1}},
    {"FourNodesSmt_ScatterTwentyThreadsUseSmt", "pack:2 numa:2 core:4 pu:2",
     request(kScatter, 10, 10, 1, true),
     {0, 16, 8, 24, 2, 18, 10, 26, 4, 20, 12, 28, 6, 22, 14, 30, 1, 17, 9, 25},
     {0, 2, 1, 3, 0, 2, 1, 3, 0, 2, 1, 3, 0, 2, 1, 3, 0, 2, 1, 3}, {1}},

    // pack:1 l3:2 core:2 pu:2: one node, two shared L3s (PUs 0-3 | 4-7): numa_local splits by L3.
    {"TwoL3_NumaLocal", "pack:1 l3:2 core:2 pu:2", request(kNuma, 1, 1, 2), {0, 2, 4, 6},
     {0, 0, 0, 0}, {0, 0}},
    {"TwoL3_NumaLocalUseSmt", "pack:1 l3:2 core:2 pu:2", request(kNuma, 1, 1, 2, true),
     {0, 1, 4, 5}, {0, 0, 0, 0}, {0, 0}},
    {"TwoL3_Compact", "pack:1 l3:2 core:2 pu:2", request(kCompact, 1, 1, 2), {0, 2, 4, 6},
     {0, 0, 0, 0}, {0, 0}},
};

INSTANTIATE_TEST_SUITE_P(Placement, ExactPlacement, testing::ValuesIn(kCases),
                         [](const testing::TestParamInfo<Case>& info) {
                           return std::string(info.param.name);
                         });

// ---------------------------------------------------------------------------------------------
// Policy properties

const char* const kTopologies[] = {"core:4 pu:1", "core:4 pu:2", "pack:2 numa:1 core:4 pu:2",
                                   "pack:2 numa:2 core:4 pu:1", "pack:2 numa:2 core:4 pu:2",
                                   "pack:1 l3:2 core:2 pu:2"};

TEST(Placement, NoneLeavesEveryThreadAndQueueUnplaced) {
  for (const char* desc : kTopologies) {
    SCOPED_TRACE(desc);
    const Plan plan = make_plan(Topology::synthetic(desc), request(Policy::kNone, 2, 3, 2));
    ASSERT_EQ(plan.threads().size(), 10u);
    for (const ThreadPlacement& t : plan.threads()) {
      EXPECT_EQ(t.pu, std::nullopt);
      EXPECT_EQ(t.numa_node, std::nullopt);
    }
    for (const QueuePlacement& q : plan.queues()) EXPECT_EQ(q.numa_node, std::nullopt);
    EXPECT_FALSE(plan.binds());
    EXPECT_TRUE(plan.notes().empty()) << notes_text(plan);
  }
}

// Without use_smt every PU used is the first of its core and, while there are cores to spare, no
// two threads share a core; with use_smt the siblings are used too.
TEST(Placement, SmtSiblingsOnlyWhenAsked) {
  for (const char* desc : kTopologies) {
    const Topology topo = Topology::synthetic(desc);
    for (Policy policy : {kCompact, kScatter, kNuma}) {
      SCOPED_TRACE(std::string(desc) + ", " + std::string(to_string(policy)));
      // compact and scatter: one thread per core; numa_local: one queue of two per node.
      const PlanRequest r = policy == kNuma
                                ? request(policy, 1, 1, topo.num_numa_nodes())
                                : request(policy, topo.num_cores() - 1, 1, 1);
      const Plan plan = make_plan(topo, r);
      std::set<unsigned> cores;
      for (const ThreadPlacement& t : plan.threads()) {
        EXPECT_EQ(topo.pus_of_core(topo.core_of(*t.pu)).front(), *t.pu);
        cores.insert(topo.core_of(*t.pu));
      }
      EXPECT_EQ(cores.size(), plan.threads().size());
    }
    if (topo.num_pus() > topo.num_cores()) {
      SCOPED_TRACE(std::string(desc) + ", compact with use_smt");
      const Plan plan = make_plan(topo, request(kCompact, topo.num_pus() - 1, 1, 1, true));
      std::set<unsigned> pus;
      for (const ThreadPlacement& t : plan.threads()) pus.insert(*t.pu);
      EXPECT_EQ(pus.size(), topo.num_pus());
    }
  }
}

TEST(Placement, ThreadOrderIsProducersThenConsumersQueueByQueue) {
  const Plan plan =
      make_plan(Topology::synthetic("pack:2 numa:2 core:4 pu:2"), request(kCompact, 2, 3, 2));
  ASSERT_EQ(plan.threads().size(), 10u);
  std::size_t t = 0;
  for (unsigned q = 0; q < 2; ++q) {
    for (unsigned i = 0; i < 2; ++i, ++t) {
      EXPECT_EQ(plan.threads()[t], (ThreadPlacement{Role::kProducer, q, i, plan.threads()[t].pu,
                                                    plan.threads()[t].numa_node}));
      EXPECT_EQ(&plan.producer(q, i), &plan.threads()[t]);
    }
    for (unsigned i = 0; i < 3; ++i, ++t) {
      EXPECT_EQ(plan.threads()[t].role, Role::kConsumer);
      EXPECT_EQ(plan.threads()[t].queue, q);
      EXPECT_EQ(plan.threads()[t].index, i);
      EXPECT_EQ(&plan.consumer(q, i), &plan.threads()[t]);
    }
  }
  EXPECT_TRUE(contains(error_of([&] { (void)plan.producer(2, 0); }), "queue = 2"));
  EXPECT_TRUE(contains(error_of([&] { (void)plan.producer(0, 2); }), "index = 2"));
  EXPECT_TRUE(contains(error_of([&] { (void)plan.consumer(0, 3); }), "index = 3"));
  EXPECT_TRUE(contains(error_of([&] { (void)plan.consumer(5, 0); }), "queue = 5"));
}

TEST(Placement, PlansAreValuesEqualForEqualInputs) {
  const Topology topo = Topology::synthetic("pack:2 numa:2 core:4 pu:1");
  const Plan a = make_plan(topo, request(kScatter, 2, 2, 2));
  const Plan b = make_plan(topo, request(kScatter, 2, 2, 2));
  Plan c = make_plan(topo, request(kCompact, 2, 2, 2));
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  c = a;
  EXPECT_EQ(c, b);
  EXPECT_EQ(Plan().threads().size(), 0u);
  EXPECT_EQ(Plan().policy(), Policy::kNone);
}

// ---------------------------------------------------------------------------------------------
// Oversubscription: wrap around, say so, never fail

TEST(Placement, CompactOversubscriptionWrapsWithANote) {
  const Plan plan = make_plan(Topology::synthetic("core:4 pu:1"), request(kCompact, 3, 3, 1));
  std::vector<unsigned> pus;
  for (const ThreadPlacement& t : plan.threads()) pus.push_back(*t.pu);
  EXPECT_EQ(pus, (std::vector<unsigned>{0, 1, 2, 3, 0, 1}));
  EXPECT_TRUE(any_note_contains(plan, "oversubscribed: 6 threads on 4 usable PUs"))
      << notes_text(plan);
  EXPECT_TRUE(any_note_contains(plan, "up to 2 per PU")) << notes_text(plan);
}

TEST(Placement, OversubscriptionNoteSaysSmtWouldHelp) {
  const Plan plan = make_plan(Topology::synthetic("core:4 pu:2"), request(kScatter, 1, 2, 2));
  EXPECT_TRUE(any_note_contains(plan, "use_smt would offer 8 PUs")) << notes_text(plan);
  const Plan smt = make_plan(Topology::synthetic("core:4 pu:2"), request(kScatter, 1, 2, 2, true));
  EXPECT_FALSE(any_note_contains(smt, "oversubscribed")) << notes_text(smt);
}

TEST(Placement, NumaLocalSmtNoteCountsTheNodesPusNotTheMachines) {
  // Node 0 has 2 cores of 2 PUs: SMT would offer 4 PUs there, not the machine's 16.
  const Plan plan =
      make_plan(Topology::synthetic("pack:2 numa:2 core:2 pu:2"), request(Policy::kNumaLocal, 2, 1, 2));
  EXPECT_TRUE(any_note_contains(plan, "NUMA node 0 has 2 usable PUs for 3 threads"))
      << notes_text(plan);
  EXPECT_TRUE(any_note_contains(plan, "use_smt would offer 4 PUs")) << notes_text(plan);
  EXPECT_FALSE(any_note_contains(plan, "would offer 16")) << notes_text(plan);
}

TEST(Placement, NumaLocalOversubscriptionWrapsInsideTheNode) {
  const Plan plan =
      make_plan(Topology::synthetic("pack:2 numa:2 core:4 pu:1"), request(kNuma, 3, 3, 1));
  std::vector<unsigned> pus;
  for (const ThreadPlacement& t : plan.threads()) {
    pus.push_back(*t.pu);
    EXPECT_EQ(t.numa_node, 0u);  // never leaves the node, though three others are idle
  }
  EXPECT_EQ(pus, (std::vector<unsigned>{0, 1, 2, 3, 0, 1}));
  EXPECT_TRUE(any_note_contains(plan, "NUMA node 0 has 4 usable PUs for 6 threads (queue 0"))
      << notes_text(plan);
}

// A per-core "L3" (as VMs report) is no shared domain: numa_local keeps to the NUMA node.
TEST(Placement, NumaLocalIgnoresPerCoreCaches) {
  const Topology topo = Topology::synthetic("pack:1 l3:2 core:1 pu:2");
  ASSERT_FALSE(topo.cache_domains_shared());
  const Plan plan = make_plan(topo, request(kNuma, 1, 1, 2));
  std::vector<unsigned> pus;
  for (const ThreadPlacement& t : plan.threads()) pus.push_back(*t.pu);
  EXPECT_EQ(pus, (std::vector<unsigned>{0, 2, 0, 2}));
  EXPECT_TRUE(any_note_contains(plan, "NUMA node 0 has 2 usable PUs for 4 threads (queues 0, 1"))
      << notes_text(plan);
  EXPECT_FALSE(any_note_contains(plan, "L3")) << notes_text(plan);
}

TEST(Placement, NumaLocalSaysWhenItUsesCacheDomains) {
  const Plan plan =
      make_plan(Topology::synthetic("pack:1 l3:2 core:2 pu:2"), request(kNuma, 1, 1, 2));
  EXPECT_TRUE(any_note_contains(plan, "spread over its 2 L3 domains")) << notes_text(plan);
}

TEST(Placement, ExplicitSharedPusAreANoteNotAnError) {
  const Plan plan = make_plan(Topology::synthetic("core:4 pu:1"),
                              request(kExplicit, 1, 1, 2, false, {0, 0, 1, 1}));
  EXPECT_EQ(plan.consumer(1, 0).pu, 1u);
  EXPECT_TRUE(any_note_contains(
      plan, "oversubscribed: 2 PUs run more than one thread (PU 0: 2 threads, PU 1: 2 threads)"))
      << notes_text(plan);
}

TEST(Placement, NoOversubscriptionNoteWhenThreadsFit) {
  const Plan plan =
      make_plan(Topology::synthetic("pack:2 numa:2 core:4 pu:2"), request(kNuma, 2, 2, 4));
  EXPECT_EQ(plan.notes(), std::vector<std::string>{
                              "planned, not applied: topology is synthetic 'pack:2 numa:2 "
                              "core:4 pu:2'"});
}

// ---------------------------------------------------------------------------------------------
// Bad requests

TEST(Placement, ZeroCountsAreErrorsNamingTheArgument) {
  const Topology topo = Topology::synthetic("core:4 pu:1");
  EXPECT_EQ(error_of([&] { (void)make_plan(topo, request(kCompact, 0, 1, 1)); }),
            "producers = 0: must be >= 1");
  EXPECT_EQ(error_of([&] { (void)make_plan(topo, request(kCompact, 1, 0, 1)); }),
            "consumers = 0: must be >= 1");
  EXPECT_EQ(error_of([&] { (void)make_plan(topo, request(Policy::kNone, 1, 1, 0)); }),
            "queues = 0: must be >= 1");
  EXPECT_TRUE(contains(error_of([&] { (void)make_plan(topo, request(kCompact, 1, 1, 1u << 16)); }),
                       "queues * (producers + consumers) = 131072: must be <= 65536"));
}

TEST(Placement, ExplicitNeedsOneValidPuPerThread) {
  const Topology topo = Topology::synthetic("core:4 pu:1");
  EXPECT_EQ(
      error_of([&] { (void)make_plan(topo, request(kExplicit, 1, 1, 2, false, {0, 1, 2})); }),
      "explicit_pus has 3 PUs: must have one per thread, queues * (producers + consumers) = 4");
  EXPECT_TRUE(contains(error_of([&] { (void)make_plan(topo, request(kExplicit, 1, 1, 1)); }),
                       "explicit_pus has 0 PUs"));
  EXPECT_EQ(
      error_of([&] { (void)make_plan(topo, request(kExplicit, 1, 1, 2, false, {0, 1, 99, 2})); }),
      "explicit_pus[2] = 99: must be < num_pus() = 4 (synthetic 'core:4 pu:1')");
  EXPECT_EQ(error_of([&] { (void)make_plan(topo, request(kCompact, 1, 1, 1, false, {0, 1})); }),
            "explicit_pus has 2 PUs but policy = compact: explicit_pus is read only by policy "
            "explicit");
}

TEST(Placement, PolicyNamesRoundTrip) {
  for (Policy p : {Policy::kNone, kCompact, kScatter, kNuma, kExplicit}) {
    EXPECT_EQ(parse_policy(to_string(p)), p);
  }
  EXPECT_EQ(to_string(kNuma), "numa_local");
  EXPECT_EQ(to_string(Role::kConsumer), "consumer");
}

TEST(Placement, UnknownPolicyNameListsTheAcceptedOnes) {
  EXPECT_EQ(error_of([] { (void)parse_policy("Compact"); }),
            "policy = 'Compact': unknown; expected one of none, compact, scatter, numa_local, "
            "explicit");
  EXPECT_TRUE(contains(error_of([] { (void)parse_policy(""); }), "policy = ''"));
}

// ---------------------------------------------------------------------------------------------
// Text and JSON

TEST(Placement, TextShowsEveryQueueAndThread) {
  const Plan plan =
      make_plan(Topology::synthetic("pack:2 numa:2 core:4 pu:1"), request(kNuma, 1, 1, 2));
  EXPECT_EQ(plan.to_text(),
            "plan: numa_local, 2 queues x (1 producer + 1 consumer) = 4 threads, use_smt off, on "
            "synthetic 'pack:2 numa:2 core:4 pu:1' (planned, not applied)\n"
            "  queue 0: memory on NUMA node 0\n"
            "    producer 0    PU 0, NUMA node 0\n"
            "    consumer 0    PU 1, NUMA node 0\n"
            "  queue 1: memory on NUMA node 1\n"
            "    producer 0    PU 4, NUMA node 1\n"
            "    consumer 0    PU 5, NUMA node 1\n"
            "  notes:\n"
            "    - planned, not applied: topology is synthetic 'pack:2 numa:2 core:4 pu:1'\n");
}

TEST(Placement, JsonCarriesPolicyQueuesThreadsAndNotes) {
  const Plan plan =
      make_plan(Topology::synthetic("pack:2 numa:2 core:4 pu:1"), request(kScatter, 1, 2, 2));
  const nlohmann::json j = nlohmann::json::parse(plan.to_json());
  EXPECT_EQ(j.at("policy"), "scatter");
  EXPECT_EQ(j.at("binds"), false);
  EXPECT_EQ(j.at("request").at("consumers"), 2);
  EXPECT_EQ(j.at("request").at("queues"), 2);
  ASSERT_EQ(j.at("threads").size(), 6u);
  for (std::size_t t = 0; t < 6; ++t) {
    EXPECT_EQ(j.at("threads")[t].at("pu"), *plan.threads()[t].pu);
    EXPECT_EQ(j.at("threads")[t].at("numa_node"), *plan.threads()[t].numa_node);
  }
  EXPECT_EQ(j.at("threads")[4].at("role"), "consumer");
  EXPECT_EQ(j.at("queues")[1].at("numa_node"), *plan.queues()[1].numa_node);
  EXPECT_EQ(j.at("notes").size(), plan.notes().size());

  const nlohmann::json none = nlohmann::json::parse(
      make_plan(Topology::synthetic("core:2 pu:1"), request(Policy::kNone, 1, 1, 1)).to_json());
  EXPECT_TRUE(none.at("threads")[0].at("pu").is_null());
  EXPECT_TRUE(none.at("queues")[0].at("numa_node").is_null());
}

// ---------------------------------------------------------------------------------------------
// This machine: a plan applied puts each thread where it says.

TEST(Placement, PlanOnThisMachineBindsEachThreadWhereItSays) {
  const Topology topo = Topology::this_machine();
  for (Policy policy : {kCompact, kScatter, kNuma}) {
    SCOPED_TRACE(std::string(to_string(policy)));
    const Plan plan = make_plan(topo, request(policy, 2, 2, 1));
    EXPECT_TRUE(plan.binds());
    EXPECT_FALSE(any_note_contains(plan, "planned, not applied")) << notes_text(plan);
    std::vector<std::optional<unsigned>> seen(plan.threads().size());
    std::vector<char> applied(plan.threads().size(), 0);  // not vector<bool>: one byte per thread
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < plan.threads().size(); ++t) {
      threads.emplace_back([&, t] {
        applied[t] = topo.bind_current_thread(*plan.threads()[t].pu).applied ? 1 : 0;
        seen[t] = topo.current_pu();
      });
    }
    for (std::thread& th : threads) th.join();
    for (std::size_t t = 0; t < plan.threads().size(); ++t) {
      EXPECT_EQ(applied[t], 1) << "thread " << t;
      EXPECT_EQ(seen[t], plan.threads()[t].pu) << "thread " << t;
    }
  }
  EXPECT_FALSE(make_plan(topo, request(Policy::kNone, 1, 1, 1)).binds());
}

}  // namespace
}  // namespace conveyor::topology
