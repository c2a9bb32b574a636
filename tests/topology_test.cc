// topology/topology.h: where a topology comes from (this machine, synthetic, XML, the
// CONVEYOR_TOPOLOGY variable), the per-PU facts placement relies on, the tree, and binding:
// skipped with a note on a topology that is not this system, verified with current_pu() on this
// machine, one thread per PU.
//
// tests/data/pack2_numa2_core4_pu2.xml was made with
//   lstopo-no-graphics -i 'pack:2 numa:2 core:4 pu:2' --of xml
#include "topology/topology.h"

#include <gtest/gtest.h>
#include <hwloc.h>
#include <sched.h>
#include <unistd.h>

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/test_errors.h"

namespace conveyor::topology {
namespace {

const std::string kFixture = std::string(CONVEYOR_TEST_DATA_DIR) + "/pack2_numa2_core4_pu2.xml";

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// `text` with every " <digits>KB|MB|GB" replaced by " <mem>". (Not std::regex: GCC 12 reports
// false maybe-uninitialized warnings inside it under ASan.)
std::string without_sizes(const std::string& text) {
  std::string out;
  for (std::size_t i = 0; i < text.size();) {
    std::size_t j = i + 1;  // after the digits following a space
    if (text[i] == ' ') {
      while (j < text.size() && std::isdigit(static_cast<unsigned char>(text[j]))) ++j;
    }
    if (j > i + 1 && j + 1 < text.size() && text[j + 1] == 'B' &&
        (text[j] == 'K' || text[j] == 'M' || text[j] == 'G')) {
      out += " <mem>";
      i = j + 2;
    } else {
      out += text[i++];
    }
  }
  return out;
}

// what() of the topology::Error `f` throws; fails the test if it throws none.
template <typename F>
std::string error_of(F&& f) {
  return conveyor::testutil::what_of<Error>(f);
}

// Sets (or unsets, with nullopt) CONVEYOR_TOPOLOGY for one scope, then restores it.
class ScopedEnv {
 public:
  explicit ScopedEnv(const std::optional<std::string>& value) {
    if (const char* old = std::getenv(name_.c_str())) old_ = old;
    if (value) {
      ::setenv(name_.c_str(), value->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const std::string name_{kTopologyEnvVar};
  std::optional<std::string> old_;
};

// A file removed at the end of the scope.
struct TempFile {
  std::filesystem::path path;
  explicit TempFile(const std::string& name)
      : path(std::filesystem::temp_directory_path() /
             ("conveyor_topology_test_" + std::to_string(::getpid()) + "_" + name)) {}
  ~TempFile() {
    std::error_code ec;
    std::filesystem::remove(path, ec);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
};

// ---------------------------------------------------------------------------------------------
// This machine

TEST(Topology, ThisMachineHasProcessingUnitsAndIsThisSystem) {
  ScopedEnv env(std::nullopt);
  Topology topo;
  EXPECT_GE(topo.num_pus(), 1u);
  EXPECT_GE(topo.num_cores(), 1u);
  EXPECT_LE(topo.num_cores(), topo.num_pus());
  EXPECT_GE(topo.num_numa_nodes(), 1u);
  EXPECT_TRUE(topo.is_this_system());
  EXPECT_EQ(topo.source(), "this machine");
}

TEST(Topology, PinningBindsTheCallingThread) {
  const Topology topo = Topology::this_machine();
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
  const Topology topo = Topology::this_machine();
  const unsigned bad = topo.num_pus() + 3;
  const std::string message = error_of([&] { topo.pin_current_thread(bad); });
  EXPECT_TRUE(contains(message, "pu = " + std::to_string(bad))) << message;
  EXPECT_TRUE(contains(message, "num_pus() = " + std::to_string(topo.num_pus()))) << message;
  EXPECT_TRUE(contains(error_of([&] { (void)topo.bind_current_thread(bad); }),
                       "pu = " + std::to_string(bad)));
  EXPECT_TRUE(contains(error_of([&] { (void)topo.numa_node_of(bad); }), "numa_node_of"));
}

// One thread per PU binds itself, works a little, and must then be seen on exactly that PU: the
// affinity mask is strict, so the last location can be no other.
TEST(Topology, BindCurrentThreadPutsEachThreadOnItsPu) {
  const Topology topo = Topology::this_machine();
  const unsigned n = topo.num_pus();
  struct Seen {
    bool applied = false;
    std::string note;
    std::optional<unsigned> current;
    int os_cpu = -1;
    int mask_count = 0;
    bool mask_has_pu = false;
    std::uint64_t work = 0;
  };
  std::vector<Seen> seen(n);
  std::vector<std::thread> threads;
  for (unsigned pu = 0; pu < n; ++pu) {
    threads.emplace_back([&topo, &seen, pu] {
      Seen& s = seen[pu];
      const BindResult r = topo.bind_current_thread(pu);
      s.applied = r.applied;
      s.note = r.note;
      std::uint64_t x = pu + 1;  // a little work, so the scheduler has run us since the bind
      for (int i = 0; i < 100000; ++i) x = x * 6364136223846793005ull + 1442695040888963407ull;
      s.work = x;
      s.current = topo.current_pu();
      s.os_cpu = sched_getcpu();
      cpu_set_t set;
      CPU_ZERO(&set);
      if (sched_getaffinity(0, sizeof set, &set) == 0) {
        s.mask_count = CPU_COUNT(&set);
        s.mask_has_pu = CPU_ISSET(topo.os_index(pu), &set);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (unsigned pu = 0; pu < n; ++pu) {
    SCOPED_TRACE("pu " + std::to_string(pu));
    EXPECT_TRUE(seen[pu].applied);
    EXPECT_EQ(seen[pu].note, "");
    EXPECT_EQ(seen[pu].current, std::optional<unsigned>(pu));
    EXPECT_EQ(seen[pu].os_cpu, static_cast<int>(topo.os_index(pu)));
    EXPECT_EQ(seen[pu].mask_count, 1);
    EXPECT_TRUE(seen[pu].mask_has_pu);
  }
}

// The same machine exported to XML (hwloc_topology_export_xml) and loaded back: same shape, but
// no longer "this system", so nothing is bound.
TEST(Topology, ThisMachineExportedToXmlLoadsBackAsNotThisSystem) {
  TempFile file("machine.xml");
  {
    hwloc_topology_t raw = nullptr;
    ASSERT_EQ(hwloc_topology_init(&raw), 0);
    ASSERT_EQ(hwloc_topology_load(raw), 0);
    const int rc = hwloc_topology_export_xml(raw, file.path.c_str(), 0);
    hwloc_topology_destroy(raw);
    ASSERT_EQ(rc, 0);
  }
  const Topology machine = Topology::this_machine();
  const Topology xml = Topology::from_xml(file.path.string());
  EXPECT_FALSE(xml.is_this_system());
  EXPECT_EQ(xml.source(), "xml '" + file.path.string() + "'");
  EXPECT_EQ(xml.num_pus(), machine.num_pus());
  EXPECT_EQ(xml.num_cores(), machine.num_cores());
  EXPECT_EQ(xml.num_numa_nodes(), machine.num_numa_nodes());
  for (unsigned pu = 0; pu < machine.num_pus(); ++pu) {
    EXPECT_EQ(xml.os_index(pu), machine.os_index(pu));
    EXPECT_EQ(xml.core_of(pu), machine.core_of(pu));
  }
  EXPECT_FALSE(xml.bind_current_thread(0).applied);
}

// ---------------------------------------------------------------------------------------------
// Synthetic topologies: counts and per-PU facts

struct Shape {
  const char* description;
  unsigned pus, cores, numa_nodes, packages, cache_domains;
  const char* cache_kind;
  bool cache_shared;
};

class SyntheticShape : public testing::TestWithParam<Shape> {};

TEST_P(SyntheticShape, CountsMatchTheDescription) {
  const Shape& s = GetParam();
  const Topology topo = Topology::synthetic(s.description);
  EXPECT_FALSE(topo.is_this_system());
  EXPECT_EQ(topo.source(), std::string("synthetic '") + s.description + "'");
  EXPECT_EQ(topo.num_pus(), s.pus);
  EXPECT_EQ(topo.num_cores(), s.cores);
  EXPECT_EQ(topo.num_numa_nodes(), s.numa_nodes);
  EXPECT_EQ(topo.num_packages(), s.packages);
  EXPECT_EQ(topo.num_cache_domains(), s.cache_domains);
  EXPECT_EQ(topo.cache_domain_kind(), s.cache_kind);
  EXPECT_EQ(topo.cache_domains_shared(), s.cache_shared);
  EXPECT_EQ(topo.current_pu(), std::nullopt);  // not this system: no location to report
}

INSTANTIATE_TEST_SUITE_P(
    Topology, SyntheticShape,
    testing::Values(Shape{"core:4 pu:1", 4, 4, 1, 1, 1, "package", true},
                    Shape{"core:4 pu:2", 8, 4, 1, 1, 1, "package", true},
                    Shape{"pack:2 numa:1 core:4 pu:2", 16, 8, 2, 2, 2, "package", true},
                    Shape{"pack:2 numa:2 core:4 pu:1", 16, 16, 4, 2, 2, "package", true},
                    Shape{"pack:2 numa:2 core:4 pu:2", 32, 16, 4, 2, 2, "package", true},
                    Shape{"pack:1 l3:2 core:2 pu:2", 8, 4, 1, 1, 2, "L3", true},
                    Shape{"pack:1 l3:2 core:1 pu:2", 4, 2, 1, 1, 2, "L3", false},
                    Shape{"pack:2 l2:2 core:1 pu:1", 4, 4, 1, 2, 4, "L2", false},
                    Shape{"pu:3", 3, 3, 1, 1, 1, "package", true}),
    [](const testing::TestParamInfo<Shape>& info) {
      std::string name = info.param.description;
      for (char& c : name) {
        if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
      }
      return name;
    });

TEST(Topology, PerPuFactsOfATwoPackageFourNodeSmtMachine) {
  // pack:2 numa:2 core:4 pu:2: node k holds cores 4k..4k+3 = PUs 8k..8k+7; core c = PUs 2c, 2c+1.
  const Topology topo = Topology::synthetic("pack:2 numa:2 core:4 pu:2");
  for (unsigned pu = 0; pu < 32; ++pu) {
    SCOPED_TRACE("pu " + std::to_string(pu));
    EXPECT_EQ(topo.core_of(pu), pu / 2);
    EXPECT_EQ(topo.numa_node_of(pu), pu / 8);
    EXPECT_EQ(topo.package_of(pu), pu / 16);
    EXPECT_EQ(topo.cache_domain_of(pu), pu / 16);  // no cache level: the package
    EXPECT_EQ(topo.os_index(pu), pu);
    EXPECT_EQ(topo.smt_siblings(pu), std::vector<unsigned>{pu ^ 1u});
  }
  EXPECT_EQ(topo.pus_of_core(6), (std::vector<unsigned>{12, 13}));
  EXPECT_TRUE(contains(error_of([&] { (void)topo.pus_of_core(16); }), "core = 16"));
}

TEST(Topology, NoSmtSiblingsWithOnePuPerCore) {
  const Topology topo = Topology::synthetic("pack:2 numa:2 core:4 pu:1");
  for (unsigned pu = 0; pu < topo.num_pus(); ++pu) {
    EXPECT_TRUE(topo.smt_siblings(pu).empty());
    EXPECT_EQ(topo.core_of(pu), pu);
    EXPECT_EQ(topo.numa_node_of(pu), pu / 4);
  }
}

TEST(Topology, CacheDomainsOfAnL3SplitPackage) {
  const Topology topo = Topology::synthetic("pack:1 l3:2 core:2 pu:2");
  const std::vector<unsigned> expected = {0, 0, 0, 0, 1, 1, 1, 1};
  for (unsigned pu = 0; pu < topo.num_pus(); ++pu) {
    EXPECT_EQ(topo.cache_domain_of(pu), expected[pu]) << "pu " << pu;
    EXPECT_EQ(topo.numa_node_of(pu), 0u);
  }
}

TEST(Topology, BadSyntheticDescriptionNamesTheSourceAndValue) {
  std::string message = error_of([] { (void)Topology::synthetic("pack:2 core:x pu:1"); });
  EXPECT_TRUE(contains(message, "synthetic 'pack:2 core:x pu:1'")) << message;
  EXPECT_TRUE(contains(message, "pu:2")) << message;  // shows what a good one looks like
  message = error_of([] { (void)Topology::synthetic("core:4"); });  // no pu level
  EXPECT_TRUE(contains(message, "synthetic 'core:4'")) << message;
  message = error_of([] { (void)Topology::synthetic("  "); });
  EXPECT_TRUE(contains(message, "empty description")) << message;
}

// ---------------------------------------------------------------------------------------------
// XML

TEST(Topology, XmlFixtureMatchesItsSyntheticOrigin) {
  const Topology xml = Topology::from_xml(kFixture);
  const Topology synthetic = Topology::synthetic("pack:2 numa:2 core:4 pu:2");
  EXPECT_FALSE(xml.is_this_system());
  EXPECT_EQ(xml.source(), "xml '" + kFixture + "'");
  EXPECT_EQ(xml.num_pus(), 32u);
  EXPECT_EQ(xml.num_numa_nodes(), 4u);
  for (unsigned pu = 0; pu < xml.num_pus(); ++pu) {
    EXPECT_EQ(xml.core_of(pu), synthetic.core_of(pu));
    EXPECT_EQ(xml.numa_node_of(pu), synthetic.numa_node_of(pu));
    EXPECT_EQ(xml.package_of(pu), synthetic.package_of(pu));
  }
  // The same tree but for the first line, which names the source.
  const std::string a = xml.to_tree(), b = synthetic.to_tree();
  EXPECT_EQ(a.substr(a.find('\n')), b.substr(b.find('\n')));
}

TEST(Topology, UnreadableXmlNamesTheSourceAndPath) {
  std::string message = error_of([] { (void)Topology::from_xml("/nonexistent/topo.xml"); });
  EXPECT_TRUE(contains(message, "xml '/nonexistent/topo.xml'")) << message;
  TempFile junk("junk.xml");
  std::FILE* f = std::fopen(junk.path.c_str(), "w");
  ASSERT_NE(f, nullptr);
  std::fputs("this is not xml\n", f);
  std::fclose(f);
  message = error_of([&] { (void)Topology::from_xml(junk.path.string()); });
  EXPECT_TRUE(contains(message, "xml '" + junk.path.string() + "'")) << message;
}

// ---------------------------------------------------------------------------------------------
// CONVEYOR_TOPOLOGY

TEST(Topology, EnvSelectsASyntheticTopology) {
  ScopedEnv env("pack:2 numa:2 core:4 pu:2");
  const Topology topo;
  EXPECT_EQ(topo.source(), "synthetic 'pack:2 numa:2 core:4 pu:2'");
  EXPECT_EQ(topo.num_pus(), 32u);
  EXPECT_FALSE(topo.is_this_system());
  EXPECT_EQ(Topology::from_env_or_machine().num_pus(), 32u);
  // this_machine() does not read it.
  EXPECT_TRUE(Topology::this_machine().is_this_system());
}

TEST(Topology, EnvSelectsAnXmlFile) {
  ScopedEnv env(kFixture);
  const Topology topo;
  EXPECT_EQ(topo.source(), "xml '" + kFixture + "'");
  EXPECT_EQ(topo.num_numa_nodes(), 4u);
}

TEST(Topology, EnvNamingAnExistingFileWithoutXmlSuffixLoadsIt) {
  TempFile copy("fixture_copy");
  std::filesystem::copy_file(kFixture, copy.path);
  ScopedEnv env(copy.path.string());
  const Topology topo;
  EXPECT_EQ(topo.source(), "xml '" + copy.path.string() + "'");
  EXPECT_EQ(topo.num_pus(), 32u);
}

TEST(Topology, EmptyEnvMeansThisMachine) {
  ScopedEnv env("");
  EXPECT_EQ(Topology().source(), "this machine");
}

TEST(Topology, BadEnvValueNamesTheVariableAndValue) {
  {
    ScopedEnv env("pack:2 bogus:3");
    const std::string message = error_of([] { Topology topo; });
    EXPECT_TRUE(contains(message, "CONVEYOR_TOPOLOGY = 'pack:2 bogus:3'")) << message;
    EXPECT_TRUE(contains(message, "synthetic 'pack:2 bogus:3'")) << message;
  }
  {
    ScopedEnv env("/nonexistent/machine.xml");
    const std::string message = error_of([] { Topology topo; });
    EXPECT_TRUE(contains(message, "CONVEYOR_TOPOLOGY = '/nonexistent/machine.xml'")) << message;
    EXPECT_TRUE(contains(message, "xml '/nonexistent/machine.xml'")) << message;
  }
}

// ---------------------------------------------------------------------------------------------
// Binding on a topology that is not this system

TEST(Topology, BindingOnSyntheticIsPlannedNotApplied) {
  const Topology topo = Topology::synthetic("pack:2 numa:2 core:4 pu:2");
  cpu_set_t before;
  CPU_ZERO(&before);
  ASSERT_EQ(sched_getaffinity(0, sizeof before, &before), 0);
  const BindResult r = topo.bind_current_thread(31);
  EXPECT_FALSE(r.applied);
  EXPECT_EQ(r.note, "planned, not applied: topology is synthetic 'pack:2 numa:2 core:4 pu:2'");
  cpu_set_t after;
  CPU_ZERO(&after);
  ASSERT_EQ(sched_getaffinity(0, sizeof after, &after), 0);
  EXPECT_TRUE(CPU_EQUAL(&before, &after));  // nothing was bound
  // A PU the topology does not have is still the caller's bug.
  EXPECT_TRUE(contains(error_of([&] { (void)topo.bind_current_thread(32); }), "pu = 32"));
  // The strict form refuses.
  EXPECT_TRUE(contains(error_of([&] { topo.pin_current_thread(0); }), "planned, not applied"));
}

// ---------------------------------------------------------------------------------------------
// Tree and JSON

TEST(Topology, TreeShowsPackagesNodesCoresAndPus) {
  const Topology topo = Topology::synthetic("pack:2 numa:1 core:2 pu:2");
  // Memory sizes are hwloc's synthetic defaults; keep the test about the shape.
  const std::string tree = without_sizes(topo.to_tree());
  EXPECT_EQ(tree,
            "Machine (synthetic 'pack:2 numa:1 core:2 pu:2'): 8 PUs, 4 cores, 2 NUMA nodes, "
            "2 packages, 2 package domains\n"
            "  Package L#0 P#0\n"
            "    NUMANode L#0 P#0 <mem>\n"
            "      Core L#0 P#0: PU L#0 P#0, PU L#1 P#1\n"
            "      Core L#1 P#1: PU L#2 P#2, PU L#3 P#3\n"
            "  Package L#1 P#1\n"
            "    NUMANode L#1 P#1 <mem>\n"
            "      Core L#2 P#2: PU L#4 P#4, PU L#5 P#5\n"
            "      Core L#3 P#3: PU L#6 P#6, PU L#7 P#7\n");
}

TEST(Topology, TreeShowsTheCacheDomainLevel) {
  const std::string tree = Topology::synthetic("pack:1 l3:2 core:2 pu:1").to_tree();
  EXPECT_TRUE(contains(tree, "2 L3 domains")) << tree;
  EXPECT_TRUE(contains(tree, "      L3 L#1 ")) << tree;
  EXPECT_TRUE(contains(tree, "        Core L#3 P#3: PU L#3 P#3\n")) << tree;
}

TEST(Topology, JsonHasCountsAndThePuTable) {
  const Topology topo = Topology::synthetic("pack:2 numa:2 core:4 pu:2");
  const nlohmann::json j = nlohmann::json::parse(topo.to_json());
  EXPECT_EQ(j.at("source"), "synthetic 'pack:2 numa:2 core:4 pu:2'");
  EXPECT_EQ(j.at("this_system"), false);
  EXPECT_EQ(j.at("pus"), 32);
  EXPECT_EQ(j.at("numa_nodes"), 4);
  ASSERT_EQ(j.at("pu_table").size(), 32u);
  EXPECT_EQ(j.at("pu_table")[21].at("core"), 10);
  EXPECT_EQ(j.at("pu_table")[21].at("numa_node"), 2);
  EXPECT_EQ(j.at("pu_table")[21].at("package"), 1);
}

TEST(Topology, MovedFromTopologyIsAClearError) {
  Topology a = Topology::synthetic("core:2 pu:1");
  Topology b = std::move(a);
  EXPECT_EQ(b.num_pus(), 2u);
  EXPECT_EQ(a.num_pus(), 0u);  // NOLINT(bugprone-use-after-move): the documented state
  EXPECT_TRUE(contains(error_of([&] { (void)a.num_cores(); }), "moved from"));
}

}  // namespace
}  // namespace conveyor::topology
