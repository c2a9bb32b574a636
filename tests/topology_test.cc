// topology/pin.h: the first cut of hwloc placement (a later issue adds synthetic topologies and
// placement policies). Checks what this machine can show: at least one PU, binding to PU 0
// takes effect, a bad index is a clear error naming it.
#include "topology/topology.h"

#include <gtest/gtest.h>
#include <sched.h>

#include <string>
#include <thread>

namespace conveyor::topology {
namespace {

TEST(Topology, HasProcessingUnits) {
  Topology topo;
  EXPECT_GE(topo.num_pus(), 1u);
}

TEST(Topology, PinningBindsTheCallingThread) {
  Topology topo;
  std::thread t([&] {
    topo.pin_current_thread(0);
    cpu_set_t set;
    CPU_ZERO(&set);
    ASSERT_EQ(sched_getaffinity(0, sizeof set, &set), 0);
    EXPECT_EQ(CPU_COUNT(&set), 1);
    EXPECT_TRUE(CPU_ISSET(topo.os_index(0), &set));
  });
  t.join();
}

TEST(Topology, OutOfRangeIndexIsAClearError) {
  Topology topo;
  const unsigned bad = topo.num_pus() + 3;
  try {
    topo.pin_current_thread(bad);
    FAIL() << "no error for PU " << bad;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(bad)), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace conveyor::topology
