#include "topology/topology.h"

#include <hwloc.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <utility>

namespace conveyor::topology {
namespace internal {

// The facts placement needs about one PU, computed once at load.
struct PuFacts {
  unsigned os_index = 0;
  unsigned core = 0;
  unsigned numa_node = 0;
  unsigned package = 0;
  unsigned cache_domain = 0;
};

// What a Topology owns: the loaded hwloc topology and the tables computed from it.
struct TopologyState {
  hwloc_topology_t topo = nullptr;  // owned, loaded
  std::string source;
  bool this_system = false;
  std::vector<PuFacts> pus;                     // by logical PU index
  std::vector<std::vector<unsigned>> core_pus;  // by core: its PUs in logical order
  unsigned numa_nodes = 1;
  unsigned packages = 1;
  unsigned cache_domains = 1;
  hwloc_obj_type_t cache_type = HWLOC_OBJ_PACKAGE;  // an L*CACHE type, or PACKAGE if none
  bool cache_shared = false;

  TopologyState() = default;
  TopologyState(const TopologyState&) = delete;
  TopologyState& operator=(const TopologyState&) = delete;
  ~TopologyState() {
    if (topo != nullptr) hwloc_topology_destroy(topo);
  }

  const PuFacts& pu(unsigned index, const char* operation) const {
    if (index >= pus.size()) {
      throw Error(std::string(operation) + ": pu = " + std::to_string(index) +
                  ": must be < num_pus() = " + std::to_string(pus.size()) + " (" + source + ")");
    }
    return pus[index];
  }
};

}  // namespace internal

using internal::PuFacts;
using internal::TopologyState;

namespace {

constexpr std::string_view kSyntheticExample =
    "an hwloc synthetic description such as 'pack:2 numa:2 core:4 pu:2' (levels type:count, "
    "outermost first, ending with pu)";

// "1 PU", "16 PUs".
std::string count_of(std::size_t n, std::string_view noun) {
  return std::to_string(n) + " " + std::string(noun) + (n == 1 ? "" : "s");
}

std::string in_quotes(std::string_view s) { return "'" + std::string(s) + "'"; }

std::string errno_text(int err) { return err != 0 ? std::strerror(err) : "unknown reason"; }

// Fills the per-PU tables of a loaded topology.
void compute_facts(TopologyState& st) {
  hwloc_topology_t topo = st.topo;
  const int npu = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PU);
  if (npu <= 0) throw Error(st.source + ": the topology has no PU");

  const int ncore = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_CORE);
  const int nnode = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_NUMANODE);
  const int npackage = hwloc_get_nbobjs_by_type(topo, HWLOC_OBJ_PACKAGE);
  st.numa_nodes = nnode > 0 ? static_cast<unsigned>(nnode) : 1;
  st.packages = npackage > 0 ? static_cast<unsigned>(npackage) : 1;
  st.cache_type = HWLOC_OBJ_PACKAGE;
  for (hwloc_obj_type_t t : {HWLOC_OBJ_L3CACHE, HWLOC_OBJ_L2CACHE, HWLOC_OBJ_L1CACHE}) {
    if (hwloc_get_nbobjs_by_type(topo, t) > 0) {
      st.cache_type = t;
      break;
    }
  }
  const int ncache = st.cache_type == HWLOC_OBJ_PACKAGE
                         ? 0
                         : hwloc_get_nbobjs_by_type(topo, st.cache_type);

  st.pus.assign(static_cast<std::size_t>(npu), PuFacts{});
  st.core_pus.assign(ncore > 0 ? static_cast<std::size_t>(ncore) : 0, {});
  // A PU outside the cache level (heterogeneous machines) gets one domain per package after the
  // real caches; without any cache the package is the domain.
  std::map<unsigned, unsigned> uncached_domain_of_package;
  for (unsigned i = 0; i < static_cast<unsigned>(npu); ++i) {
    hwloc_obj_t pu = hwloc_get_obj_by_type(topo, HWLOC_OBJ_PU, i);
    PuFacts& f = st.pus[i];
    f.os_index = pu->os_index;

    if (hwloc_obj_t core = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_CORE, pu)) {
      f.core = core->logical_index;
    } else {
      f.core = static_cast<unsigned>(st.core_pus.size());  // its own core
      st.core_pus.emplace_back();
    }
    st.core_pus[f.core].push_back(i);

    hwloc_obj_t package = hwloc_get_ancestor_obj_by_type(topo, HWLOC_OBJ_PACKAGE, pu);
    f.package = package != nullptr ? package->logical_index : 0;

    f.numa_node = 0;
    for (int n = 0; n < nnode; ++n) {
      hwloc_obj_t node = hwloc_get_obj_by_type(topo, HWLOC_OBJ_NUMANODE, static_cast<unsigned>(n));
      if (node->cpuset != nullptr && hwloc_bitmap_isincluded(pu->cpuset, node->cpuset)) {
        f.numa_node = node->logical_index;
        break;
      }
    }

    hwloc_obj_t cache = ncache > 0 ? hwloc_get_ancestor_obj_by_type(topo, st.cache_type, pu)
                                   : nullptr;
    if (cache != nullptr) {
      f.cache_domain = cache->logical_index;
    } else {
      auto [it, fresh] = uncached_domain_of_package.try_emplace(
          f.package, static_cast<unsigned>(ncache) +
                         static_cast<unsigned>(uncached_domain_of_package.size()));
      f.cache_domain = it->second;
    }
  }
  st.cache_domains = static_cast<unsigned>(ncache) +
                       static_cast<unsigned>(uncached_domain_of_package.size());

  std::vector<std::set<unsigned>> cores_of_domain(st.cache_domains);
  for (const PuFacts& f : st.pus) cores_of_domain[f.cache_domain].insert(f.core);
  st.cache_shared = false;
  for (const auto& cores : cores_of_domain) st.cache_shared |= cores.size() > 1;
}

// Inits an hwloc topology, lets `set_source` point it somewhere (0 on success, else -1 with
// errno), loads it and computes the tables. Errors name `source`.
template <typename SetSource>
std::unique_ptr<TopologyState> load(std::string source, std::string_view expected,
                                    SetSource set_source) {
  auto st = std::make_unique<TopologyState>();
  st->source = std::move(source);
  if (hwloc_topology_init(&st->topo) != 0) {
    st->topo = nullptr;
    throw Error(st->source + ": hwloc_topology_init failed: " + errno_text(errno));
  }
  errno = 0;
  if (set_source(st->topo) != 0) {
    throw Error(st->source + ": hwloc rejected it (" + errno_text(errno) + "); expected " +
                std::string(expected));
  }
  errno = 0;
  if (hwloc_topology_load(st->topo) != 0) {
    throw Error(st->source + ": hwloc_topology_load failed (" + errno_text(errno) +
                "); expected " + std::string(expected));
  }
  st->this_system = hwloc_topology_is_thissystem(st->topo) != 0;
  compute_facts(*st);
  return st;
}

std::string_view type_name(hwloc_obj_type_t type) {
  switch (type) {
    case HWLOC_OBJ_L3CACHE: return "L3";
    case HWLOC_OBJ_L2CACHE: return "L2";
    case HWLOC_OBJ_L1CACHE: return "L1";
    default: return "package";
  }
}

std::string bytes_text(std::uint64_t bytes) {
  constexpr std::uint64_t kKiB = 1024, kMiB = kKiB * 1024, kGiB = kMiB * 1024;
  if (bytes >= 10 * kGiB) return std::to_string(bytes / kGiB) + "GB";
  if (bytes >= kMiB) return std::to_string(bytes / kMiB) + "MB";
  return std::to_string(bytes / kKiB) + "KB";
}

std::string indexes(hwloc_obj_t obj) {
  std::string s = "L#" + std::to_string(obj->logical_index);
  if (obj->os_index != HWLOC_UNKNOWN_INDEX) s += " P#" + std::to_string(obj->os_index);
  return s;
}

void append_tree(const TopologyState& st, hwloc_obj_t obj, int depth, std::string& out) {
  auto line = [&](int d, const std::string& text) {
    out.append(static_cast<std::size_t>(2 * d), ' ');
    out += text;
    out += '\n';
  };
  bool shown = true;
  switch (obj->type) {
    case HWLOC_OBJ_MACHINE:
      line(depth, "Machine (" + st.source + "): " + count_of(st.pus.size(), "PU") + ", " +
                      count_of(st.core_pus.size(), "core") + ", " +
                      count_of(st.numa_nodes, "NUMA node") + ", " +
                      count_of(st.packages, "package") + ", " +
                      count_of(st.cache_domains, std::string(type_name(st.cache_type)) +
                                                     " domain"));
      break;
    case HWLOC_OBJ_PACKAGE: line(depth, "Package " + indexes(obj)); break;
    case HWLOC_OBJ_DIE: line(depth, "Die " + indexes(obj)); break;
    case HWLOC_OBJ_NUMANODE:
      line(depth, "NUMANode " + indexes(obj) + " " + bytes_text(obj->attr->numanode.local_memory));
      break;
    case HWLOC_OBJ_CORE: {
      std::string text = "Core " + indexes(obj) + ":";
      for (hwloc_obj_t pu = obj->first_child; pu != nullptr; pu = pu->next_sibling) {
        if (pu->type == HWLOC_OBJ_PU) {
          text += (pu == obj->first_child ? " PU " : ", PU ") + indexes(pu);
        }
      }
      line(depth, text);
      return;  // its PUs are on its line
    }
    case HWLOC_OBJ_PU: line(depth, "PU " + indexes(obj)); break;
    default:
      shown = obj->type == st.cache_type;
      if (shown) {
        line(depth, std::string(type_name(obj->type)) + " " + indexes(obj) + " " +
                        bytes_text(obj->attr->cache.size));
      }
      break;
  }
  // An object's NUMA nodes are memory children, siblings of its CPU children in hwloc 2. With
  // exactly one, the CPU children are printed under it, which is where the eye looks for them.
  int child_depth = shown ? depth + 1 : depth;
  for (hwloc_obj_t m = obj->memory_first_child; m != nullptr; m = m->next_sibling) {
    append_tree(st, m, child_depth, out);
  }
  if (obj->memory_arity == 1) ++child_depth;
  for (hwloc_obj_t c = obj->first_child; c != nullptr; c = c->next_sibling) {
    append_tree(st, c, child_depth, out);
  }
}

}  // namespace

Topology::Topology() : Topology(from_env_or_machine()) {}
Topology::Topology(std::unique_ptr<TopologyState> state) : state_(std::move(state)) {}
Topology::~Topology() = default;
Topology::Topology(Topology&& other) noexcept = default;
Topology& Topology::operator=(Topology&& other) noexcept = default;

Topology Topology::this_machine() {
  std::unique_ptr<TopologyState> st =
      load("this machine", "the running machine", [](hwloc_topology_t) { return 0; });
  if (!st->this_system) {
    st->source += " (hwloc environment override: not this system)";
  }
  return Topology(std::move(st));
}

Topology Topology::synthetic(std::string_view description) {
  const std::string desc(description);
  const std::string source = "synthetic " + in_quotes(desc);
  if (desc.find_first_not_of(" \t\n") == std::string::npos) {
    throw Error(source + ": empty description; expected " + std::string(kSyntheticExample));
  }
  return Topology(load(source, kSyntheticExample, [&](hwloc_topology_t t) {
    return hwloc_topology_set_synthetic(t, desc.c_str());
  }));
}

Topology Topology::from_xml(const std::string& path) {
  const std::string source = "xml " + in_quotes(path);
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) {
    throw Error(source + ": " + (ec ? ec.message() : std::string("not a readable regular file")));
  }
  return Topology(load(source, "an hwloc XML export (lstopo --of xml)", [&](hwloc_topology_t t) {
    return hwloc_topology_set_xml(t, path.c_str());
  }));
}

Topology Topology::from_env_or_machine() {
  const std::string var(kTopologyEnvVar);
  const char* raw = std::getenv(var.c_str());
  if (raw == nullptr || *raw == '\0') return this_machine();
  const std::string value(raw);
  std::error_code ec;
  const bool xml = value.ends_with(".xml") || std::filesystem::is_regular_file(value, ec);
  try {
    return xml ? from_xml(value) : synthetic(value);
  } catch (const Error& e) {
    throw Error(var + " = " + in_quotes(value) + ": " + e.what());
  }
}

const TopologyState& Topology::state(const char* operation) const {
  if (state_ == nullptr) throw Error(std::string(operation) + ": topology was moved from");
  return *state_;
}

bool Topology::is_this_system() const { return state("is_this_system").this_system; }
std::string Topology::source() const { return state("source").source; }

unsigned Topology::num_pus() const noexcept {
  return state_ != nullptr ? static_cast<unsigned>(state_->pus.size()) : 0;
}
unsigned Topology::num_cores() const {
  return static_cast<unsigned>(state("num_cores").core_pus.size());
}
unsigned Topology::num_numa_nodes() const { return state("num_numa_nodes").numa_nodes; }
unsigned Topology::num_packages() const { return state("num_packages").packages; }
unsigned Topology::num_cache_domains() const { return state("num_cache_domains").cache_domains; }
std::string_view Topology::cache_domain_kind() const {
  return type_name(state("cache_domain_kind").cache_type);
}
bool Topology::cache_domains_shared() const { return state("cache_domains_shared").cache_shared; }

unsigned Topology::core_of(unsigned pu) const { return state("core_of").pu(pu, "core_of").core; }
unsigned Topology::numa_node_of(unsigned pu) const {
  return state("numa_node_of").pu(pu, "numa_node_of").numa_node;
}
unsigned Topology::package_of(unsigned pu) const {
  return state("package_of").pu(pu, "package_of").package;
}
unsigned Topology::cache_domain_of(unsigned pu) const {
  return state("cache_domain_of").pu(pu, "cache_domain_of").cache_domain;
}
unsigned Topology::os_index(unsigned pu) const {
  return state("os_index").pu(pu, "os_index").os_index;
}

std::vector<unsigned> Topology::smt_siblings(unsigned pu) const {
  const TopologyState& i = state("smt_siblings");
  std::vector<unsigned> siblings;
  for (unsigned other : i.core_pus[i.pu(pu, "smt_siblings").core]) {
    if (other != pu) siblings.push_back(other);
  }
  return siblings;
}

const std::vector<unsigned>& Topology::pus_of_core(unsigned core) const {
  const TopologyState& i = state("pus_of_core");
  if (core >= i.core_pus.size()) {
    throw Error("pus_of_core: core = " + std::to_string(core) + ": must be < num_cores() = " +
                std::to_string(i.core_pus.size()) + " (" + i.source + ")");
  }
  return i.core_pus[core];
}

BindResult Topology::bind_current_thread(unsigned pu) const {
  const TopologyState& i = state("bind_current_thread");
  const PuFacts& f = i.pu(pu, "bind_current_thread");
  if (!i.this_system) {
    return BindResult{false, "planned, not applied: topology is " + i.source};
  }
  hwloc_obj_t obj = hwloc_get_obj_by_type(i.topo, HWLOC_OBJ_PU, pu);
  errno = 0;
  if (hwloc_set_cpubind(i.topo, obj->cpuset, HWLOC_CPUBIND_THREAD) != 0) {
    throw Error("bind_current_thread: pu = " + std::to_string(pu) + " (os cpu " +
                std::to_string(f.os_index) + "): hwloc_set_cpubind failed: " +
                errno_text(errno));
  }
  return BindResult{true, {}};
}

void Topology::pin_current_thread(unsigned pu) const {
  const BindResult r = bind_current_thread(pu);
  if (!r.applied) {
    throw Error("pin_current_thread: pu = " + std::to_string(pu) + ": " + r.note);
  }
}

std::optional<unsigned> Topology::current_pu() const {
  const TopologyState& i = state("current_pu");
  if (!i.this_system) return std::nullopt;
  std::unique_ptr<hwloc_bitmap_s, void (*)(hwloc_bitmap_t)> set(hwloc_bitmap_alloc(),
                                                                 &hwloc_bitmap_free);
  if (set == nullptr) return std::nullopt;
  if (hwloc_get_last_cpu_location(i.topo, set.get(), HWLOC_CPUBIND_THREAD) != 0) {
    return std::nullopt;
  }
  const int os = hwloc_bitmap_first(set.get());
  if (os < 0) return std::nullopt;
  hwloc_obj_t pu = hwloc_get_pu_obj_by_os_index(i.topo, static_cast<unsigned>(os));
  if (pu == nullptr) return std::nullopt;
  return pu->logical_index;
}

std::string Topology::to_tree() const {
  const TopologyState& i = state("to_tree");
  std::string out;
  append_tree(i, hwloc_get_root_obj(i.topo), 0, out);
  return out;
}

std::string Topology::to_json() const {
  const TopologyState& i = state("to_json");
  nlohmann::ordered_json pus = nlohmann::ordered_json::array();
  for (std::size_t p = 0; p < i.pus.size(); ++p) {
    const PuFacts& f = i.pus[p];
    pus.push_back({{"pu", p},
                   {"os_index", f.os_index},
                   {"core", f.core},
                   {"numa_node", f.numa_node},
                   {"package", f.package},
                   {"cache_domain", f.cache_domain}});
  }
  nlohmann::ordered_json j = {
      {"source", i.source},
      {"this_system", i.this_system},
      {"pus", i.pus.size()},
      {"cores", i.core_pus.size()},
      {"numa_nodes", i.numa_nodes},
      {"packages", i.packages},
      {"cache_domains", i.cache_domains},
      {"cache_domain_kind", type_name(i.cache_type)},
      {"cache_domains_shared", i.cache_shared},
      {"pu_table", std::move(pus)},
  };
  return j.dump(2);
}

}  // namespace conveyor::topology
