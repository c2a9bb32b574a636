// `conveyor perf`: the driver (contract in perf.h). It plans the measurements, runs each in a
// fresh conveyor-perf-worker process, collects the records, shows progress and a summary, and
// writes the JSON document.
#include "tools/perf.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <thread>
#include <tuple>

#include "tools/perf_internal.h"
#include "topology/topology.h"

extern char** environ;

namespace conveyor::tools::perf {
namespace {

template <class Names>
std::string joined(const Names& names) {
  std::string out;
  for (const auto& n : names) {
    if (!out.empty()) out += ", ";
    out += std::string(n);
  }
  return out;
}

template <class Names, class V>
bool contains(const Names& names, const V& v) {
  return std::find(std::begin(names), std::end(names), v) != std::end(names);
}

bool wants(const std::vector<std::string>& filter, std::string_view v) {
  return filter.empty() || contains(filter, v);
}

// 1, 2, 4, ... up to and including `top`.
std::vector<int> powers_up_to(int top) {
  std::vector<int> out;
  for (int t = 1; t < top; t *= 2) out.push_back(t);
  out.push_back(top);
  return out;
}

}  // namespace

// ---- options --------------------------------------------------------------------------------

void add_options(CLI::App& cmd, Options& o) {
  cmd.add_flag("--quick", o.quick,
               "A short sweep (fewer items, reps and thread counts): under 3 minutes on 2 cores");
  cmd.add_option("--threads", o.threads,
                 "mpmc and shuffle: producers (= consumers) per run, comma-separated; default "
                 "1, 2, 4, ... up to the cores (oversub always runs 2x and 4x the cores in all)")
      ->delimiter(',')
      ->check(CLI::Range(1, 4096));
  cmd.add_option("--placement", o.placements,
                 "mpmc, oversub, shuffle: none, compact, scatter (comma-separated; default none, "
                 "plus scatter without --quick); the 1P1C scenarios always pin PU 0 and PU 1")
      ->delimiter(',');
  cmd.add_option("--queues", o.queues, "Queues to run, comma-separated (default: all)")
      ->delimiter(',');
  cmd.add_option("--scenarios", o.scenarios,
                 "Scenarios, comma-separated (default: all): " + joined(kScenarios))
      ->delimiter(',');
  cmd.add_option("--reps", o.reps, "Interleaved repetitions per configuration (default 3 with "
                                   "--quick, else 5)")
      ->check(CLI::Range(1, 1000));
  cmd.add_option("--items", o.items,
                 "Items per measurement (round trips for pingpong; element_size: at most 64 MiB "
                 "of payload with --quick, else 256 MiB; default per scenario)")
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
  cmd.add_option("--element-size", o.element_sizes,
                 "element_size: payload bytes, comma-separated, of 8, 64, 512, 4096")
      ->delimiter(',');
  cmd.add_option("--json", o.json, "Write every record and the machine header to this file");
  cmd.add_option("--worker", o.worker,
                 "The conveyor-perf-worker executable (default: next to conveyor, or "
                 "$CONVEYOR_PERF_WORKER)");
  cmd.add_option("--notrace-worker", o.notrace_worker,
                 "trace scenario: the worker built with tracing compiled out (default: the "
                 "worker's path + '-notrace', or $CONVEYOR_PERF_WORKER_NOTRACE)");
  cmd.add_option("--cap-s", o.cap_s, "Time cap per measurement, seconds (default 60)")
      ->check(CLI::Range(0.1, 86400.0));
  cmd.add_option("--stall-s", o.stall_s,
                 "Cut a measurement after this long without progress (default 5)")
      ->check(CLI::Range(0.1, 86400.0));
  cmd.add_flag_function("--no-progress", [&o](std::int64_t) { o.progress = false; },
                        "No progress bar or progress lines");
  // Test only: consumers drop one item, so every checksum must fail (tools/CMakeLists.txt).
  cmd.add_flag("--fault-drop-item", o.fault_drop_item, "")->group("");
}

void validate(Options& o, unsigned cores) {
  for (const auto& s : o.scenarios) {
    if (!contains(kScenarios, s)) {
      throw UsageError("--scenarios: '" + s + "' is not a scenario; expected one of " +
                       joined(kScenarios));
    }
  }
  for (const auto& p : o.placements) {
    if (!contains(kPlacements, p)) {
      throw UsageError("--placement: '" + p + "' is not a placement; expected one of " +
                       joined(kPlacements));
    }
  }
  for (const std::size_t e : o.element_sizes) {
    if (!contains(kElementSizes, e)) {
      std::vector<std::string> sizes;
      for (const std::size_t s : kElementSizes) sizes.push_back(std::to_string(s));
      throw UsageError("--element-size: " + std::to_string(e) + " is not measured; expected one of " +
                       joined(sizes));
    }
  }
  if (!o.notrace_worker.empty() && access(o.notrace_worker.c_str(), X_OK) != 0) {
    throw UsageError("--notrace-worker: '" + o.notrace_worker + "' is not an executable");
  }
  const int c = static_cast<int>(std::max(1u, cores));
  if (o.reps == 0) o.reps = o.quick ? 3 : 5;
  if (o.cap_s == 0) o.cap_s = 60;
  if (o.stall_s == 0) o.stall_s = 5;
  if (o.threads.empty()) o.threads = o.quick ? std::vector<int>{1} : powers_up_to(c);
  if (o.placements.empty()) {
    o.placements = o.quick ? std::vector<std::string>{"none"}
                           : std::vector<std::string>{"none", "scatter"};
  }
  if (o.element_sizes.empty()) o.element_sizes.assign(std::begin(kElementSizes), std::end(kElementSizes));
}

// ---- spec and record JSON -------------------------------------------------------------------

nlohmann::json to_json(const Spec& s) {
  return {{"scenario", s.scenario},     {"queue", s.queue},
          {"producers", s.producers},   {"consumers", s.consumers},
          {"batch", s.batch},           {"placement", s.placement},
          {"element_bytes", s.element_bytes}, {"rep", s.rep},
          {"items", s.items},           {"cap_s", s.cap_s},
          {"stall_s", s.stall_s},       {"fault_drop_item", s.fault_drop_item}};
}

Spec spec_from_json(const nlohmann::json& j) {
  Spec s;
  s.scenario = j.at("scenario").get<std::string>();
  s.queue = j.at("queue").get<std::string>();
  s.producers = j.at("producers").get<int>();
  s.consumers = j.at("consumers").get<int>();
  s.batch = j.at("batch").get<int>();
  s.placement = j.at("placement").get<std::string>();
  s.element_bytes = j.at("element_bytes").get<std::size_t>();
  s.rep = j.at("rep").get<int>();
  s.items = j.at("items").get<std::uint64_t>();
  s.cap_s = j.value("cap_s", 60.0);
  s.stall_s = j.value("stall_s", 5.0);
  s.fault_drop_item = j.value("fault_drop_item", false);
  if (s.producers < 1 || s.consumers < 1 || s.batch < 1) {
    throw std::invalid_argument("producers, consumers and batch must be >= 1");
  }
  return s;
}

std::string rtt_tag(double before_ns, double after_ns) {
  if (before_ns < 0 || after_ns < 0) return "unknown";
  const bool near_before = before_ns < kNearRttNs;
  const bool near_after = after_ns < kNearRttNs;
  if (near_before != near_after) return "mixed";
  return near_before ? "near" : "far";
}

std::string Record::tag() const { return rtt_tag(rtt_before_ns, rtt_after_ns); }

namespace {
nlohmann::json optional_number(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}
nlohmann::json rtt_number(double v) { return v < 0 ? nlohmann::json(nullptr) : nlohmann::json(v); }
std::optional<double> number_or_null(const nlohmann::json& j, const char* key) {
  if (!j.contains(key) || j.at(key).is_null()) return std::nullopt;
  return j.at(key).get<double>();
}
}  // namespace

nlohmann::ordered_json record_json(const Record& r) {
  nlohmann::ordered_json j;
  j["scenario"] = r.spec.scenario;
  j["queue"] = r.spec.queue;
  j["producers"] = r.spec.producers;
  j["consumers"] = r.spec.consumers;
  j["batch"] = r.spec.batch;
  j["placement"] = r.spec.placement;
  j["element_bytes"] = r.spec.element_bytes;
  j["rep"] = r.spec.rep;
  j["items"] = r.items;
  j["seconds"] = r.seconds;
  j["items_per_second"] = r.items_per_second();
  j["cpu_seconds"] = r.cpu_seconds;
  j["voluntary_cs"] = r.voluntary_cs;
  j["involuntary_cs"] = r.involuntary_cs;
  j["p50_ns"] = optional_number(r.p50_ns);
  j["p99_ns"] = optional_number(r.p99_ns);
  j["p999_ns"] = optional_number(r.p999_ns);
  j["rtt_before_ns"] = rtt_number(r.rtt_before_ns);
  j["rtt_after_ns"] = rtt_number(r.rtt_after_ns);
  j["checksum_ok"] = r.checksum_ok;
  // Beyond the schema:
  j["tag"] = r.tag();
  j["status"] = r.status;
  j["error"] = r.error;
  j["peak_rss_kb"] = r.peak_rss_kb;
  j["cpu_s_per_mitem"] =
      r.items > 0 ? nlohmann::json(r.cpu_seconds / (static_cast<double>(r.items) / 1e6))
                  : nlohmann::json(nullptr);
  j["others_cpu_frac"] = r.others_cpu_frac;
  j["bytes_per_second"] = optional_number(r.bytes_per_second);
  j["wait"] = r.wait;
  j["bound"] = r.bound;
  j["process_seconds"] = r.process_seconds;
  j["tracing"] = r.tracing;
  j["trace_events"] = r.trace_events ? nlohmann::json(*r.trace_events) : nlohmann::json(nullptr);
  j["trace_dropped"] =
      r.trace_dropped ? nlohmann::json(*r.trace_dropped) : nlohmann::json(nullptr);
  return j;
}

Record record_from_json(const nlohmann::json& j) {
  Record r;
  r.spec.scenario = j.at("scenario").get<std::string>();
  r.spec.queue = j.at("queue").get<std::string>();
  r.spec.producers = j.at("producers").get<int>();
  r.spec.consumers = j.at("consumers").get<int>();
  r.spec.batch = j.at("batch").get<int>();
  r.spec.placement = j.at("placement").get<std::string>();
  r.spec.element_bytes = j.at("element_bytes").get<std::size_t>();
  r.spec.rep = j.at("rep").get<int>();
  r.items = j.at("items").get<std::uint64_t>();
  r.seconds = j.at("seconds").get<double>();
  r.cpu_seconds = j.at("cpu_seconds").get<double>();
  r.voluntary_cs = j.at("voluntary_cs").get<long>();
  r.involuntary_cs = j.at("involuntary_cs").get<long>();
  r.p50_ns = number_or_null(j, "p50_ns");
  r.p99_ns = number_or_null(j, "p99_ns");
  r.p999_ns = number_or_null(j, "p999_ns");
  r.rtt_before_ns = number_or_null(j, "rtt_before_ns").value_or(-1);
  r.rtt_after_ns = number_or_null(j, "rtt_after_ns").value_or(-1);
  r.checksum_ok = j.at("checksum_ok").get<bool>();
  r.status = j.value("status", std::string("ok"));
  r.error = j.value("error", std::string());
  r.peak_rss_kb = j.value("peak_rss_kb", 0L);
  r.others_cpu_frac = j.value("others_cpu_frac", 0.0);
  r.bytes_per_second = number_or_null(j, "bytes_per_second");
  r.wait = j.value("wait", std::string());
  r.bound = j.value("bound", std::string());
  r.process_seconds = j.value("process_seconds", 0.0);
  r.tracing = j.value("tracing", std::string());
  if (j.contains("trace_events") && !j.at("trace_events").is_null()) {
    r.trace_events = j.at("trace_events").get<std::uint64_t>();
  }
  if (j.contains("trace_dropped") && !j.at("trace_dropped").is_null()) {
    r.trace_dropped = j.at("trace_dropped").get<std::uint64_t>();
  }
  return r;
}

std::vector<QueueInfo> queues_from_json(const nlohmann::json& j) {
  std::vector<QueueInfo> out;
  for (const auto& q : j.at("queues")) {
    QueueInfo i;
    i.name = q.at("name").get<std::string>();
    i.wait = q.at("wait").get<std::string>();
    i.bound = q.at("bound").get<std::string>();
    i.multi_producer_only = q.value("multi_producer_only", false);
    i.scenarios = q.at("scenarios").get<std::vector<std::string>>();
    out.push_back(std::move(i));
  }
  return out;
}

// ---- the plan -------------------------------------------------------------------------------

namespace {

struct Config {
  int producers = 1;
  int consumers = 1;
  int batch = 1;
  std::string placement = "pinned";
  std::size_t element_bytes = 8;
  std::uint64_t items = 0;
};

std::uint64_t default_items(const Options& o, std::string_view scenario) {
  if (scenario == "pingpong") return o.quick ? 10'000 : 50'000;
  // The 1P1C throughput scenarios move 100 M to 1 G items/s with the fast queues: 2 M items
  // lasted 2-20 ms, where thread start-up, first touches and one descheduling weigh as much as
  // the queue. These counts make the fastest queues' runs last about 100 ms (every queue gets
  // the same count; the slow ones run longer).
  if (scenario == "spsc_pinned") return o.quick ? 200'000 : 10'000'000;
  if (scenario == "bulk") return o.quick ? 200'000 : 40'000'000;
  if (scenario == "shuffle") return o.quick ? 200'000 : 1'000'000;
  // trace: records per run (the default dataset holds 131072: 8 epochs quick, else 32).
  if (scenario == "trace") return o.quick ? 1'048'576 : 4'194'304;
  return o.quick ? 200'000 : 2'000'000;
}

std::vector<Config> configs(const Options& o, std::string_view scenario, unsigned cores) {
  const int c = static_cast<int>(std::max(1u, cores));
  const std::uint64_t items = o.items != 0 ? o.items : default_items(o, scenario);
  std::vector<Config> out;
  if (scenario == "pipeline" || scenario == "trace") {
    out.push_back({4, 1, 1, "none", 8, items});  // 4 reader threads -> shuffle -> 1 consumer
  } else if (scenario == "spsc_pinned" || scenario == "pingpong") {
    out.push_back({1, 1, 1, "pinned", 8, items});
  } else if (scenario == "bulk") {
    for (const int b : kBulkBatches) out.push_back({1, 1, b, "pinned", 8, items});
  } else if (scenario == "mpmc" || scenario == "shuffle") {
    for (const auto& p : o.placements) {
      for (const int t : o.threads) out.push_back({t, t, 1, p, 8, items});
    }
  } else if (scenario == "oversub") {
    for (const auto& p : o.placements) {
      for (const int t : {c, 2 * c}) out.push_back({t, t, 1, p, 8, items});
    }
  } else if (scenario == "element_size") {
    // A byte budget caps every measurement (--items too), so 4 KiB payloads do not take 512x
    // longer than 8 B.
    const std::uint64_t budget = o.quick ? (std::uint64_t{64} << 20) : (std::uint64_t{256} << 20);
    for (const std::size_t e : o.element_sizes) {
      const std::uint64_t n = std::max<std::uint64_t>(1, std::min<std::uint64_t>(items, budget / e));
      out.push_back({1, 1, 1, "pinned", e, n});
    }
  }
  return out;
}

bool applies(const QueueInfo& q, std::string_view scenario, const Config& c) {
  if (!contains(q.scenarios, scenario)) return false;
  if (q.multi_producer_only && c.producers < 2) return false;
  return true;
}

}  // namespace

std::vector<Spec> make_plan(const Options& o, const std::vector<QueueInfo>& queues,
                            unsigned cores) {
  // One block per configuration: the queues it runs and its repetitions.
  struct Block {
    std::string_view scenario;
    Config config;
    std::vector<const QueueInfo*> queues;
    int reps = 0;
  };
  std::vector<Block> blocks;
  int max_reps = 0;
  for (const std::string_view scenario : kScenarios) {
    if (!wants(o.scenarios, scenario)) continue;
    for (const Config& c : configs(o, scenario, cores)) {
      Block b{scenario, c, {}, scenario == "trace" ? kTraceRepsFactor * o.reps : o.reps};
      for (const QueueInfo& q : queues) {
        if (wants(o.queues, q.name) && applies(q, scenario, c)) b.queues.push_back(&q);
      }
      if (b.queues.empty()) continue;
      max_reps = std::max(max_reps, b.reps);
      blocks.push_back(std::move(b));
    }
  }
  // Rep-major: rep k of every configuration before rep k + 1 of any, so each configuration's
  // repetitions spread over the whole run and sample every placement the host moves the vCPUs
  // through while it lasts (config-major order ran a configuration's reps within a minute,
  // often all near or all far, leaving the other tag without enough runs to compare).
  std::vector<Spec> plan;
  for (int rep = 0; rep < max_reps; ++rep) {
    for (const Block& b : blocks) {
      if (rep >= b.reps) continue;
      for (std::size_t k = 0; k < b.queues.size(); ++k) {
        const QueueInfo& q = *b.queues[(k + static_cast<std::size_t>(rep)) % b.queues.size()];
        Spec s;
        s.scenario = std::string(b.scenario);
        s.queue = q.name;
        s.producers = b.config.producers;
        s.consumers = b.config.consumers;
        s.batch = b.config.batch;
        s.placement = b.config.placement;
        s.element_bytes = b.config.element_bytes;
        s.rep = rep;
        s.items = b.config.items;
        s.cap_s = o.cap_s;
        s.stall_s = o.stall_s;
        s.fault_drop_item = o.fault_drop_item;
        plan.push_back(std::move(s));
      }
    }
  }
  return plan;
}

// Running workers, machine facts and the JSON header: perf_host.cc; the terminal summary:
// perf_summary.cc (declared in perf_internal.h).


int run(const Options& opts, const std::string& command_line) {
  Options o = opts;
  const topology::Topology topo;
  validate(o, topo.num_pus());
  const std::string worker = find_worker(o);

  char dir_template[] = "/tmp/conveyor-perf-XXXXXX";
  if (mkdtemp(dir_template) == nullptr) throw std::runtime_error("cannot create a temporary folder");
  const std::string dir = dir_template;
  const std::string log = dir + "/worker.log";
  const std::string out = dir + "/record.json";

  // The queues the worker knows.
  const Child listed = spawn_and_wait({worker, "--list"}, out, 60);
  std::vector<QueueInfo> queues;
  try {
    if (listed.exit_code != 0) throw std::runtime_error("exit code " + std::to_string(listed.exit_code));
    queues = queues_from_json(nlohmann::json::parse(read_file(out)));
  } catch (const std::exception& e) {
    std::filesystem::remove_all(dir);
    throw std::runtime_error("'" + worker + " --list' failed: " + e.what());
  }
  // The trace scenario's compiled-out variant runs in its own worker: its queues the main
  // worker does not know are added, and run there.
  std::map<std::string, std::string> worker_of;  // queue -> executable, when not `worker`
  std::string notrace;
  if (wants(o.scenarios, "trace")) {
    notrace = find_notrace_worker(o, worker);
    if (!notrace.empty()) {
      const Child listed_notrace = spawn_and_wait({notrace, "--list"}, out, 60);
      try {
        if (listed_notrace.exit_code != 0) {
          throw std::runtime_error("exit code " + std::to_string(listed_notrace.exit_code));
        }
        for (QueueInfo& q : queues_from_json(nlohmann::json::parse(read_file(out)))) {
          if (std::any_of(queues.begin(), queues.end(),
                          [&](const QueueInfo& i) { return i.name == q.name; })) {
            continue;
          }
          worker_of[q.name] = notrace;
          queues.push_back(std::move(q));
        }
      } catch (const std::exception& e) {
        std::filesystem::remove_all(dir);
        throw std::runtime_error("'" + notrace + " --list' failed: " + e.what());
      }
    } else {
      std::printf("trace: no worker with tracing compiled out (%s-notrace; --notrace-worker); "
                  "ConveyorIngestNoTrace is not measured\n",
                  worker.c_str());
    }
  }
  for (const auto& q : o.queues) {
    if (std::none_of(queues.begin(), queues.end(), [&](const QueueInfo& i) { return i.name == q; })) {
      std::vector<std::string> names;
      for (const auto& i : queues) names.push_back(i.name);
      std::filesystem::remove_all(dir);
      throw UsageError("--queues: '" + q + "' is not a queue; expected one of " + joined(names));
    }
  }

  const std::vector<Spec> plan = make_plan(o, queues, topo.num_pus());
  if (plan.empty()) {
    std::filesystem::remove_all(dir);
    throw UsageError("nothing to run: no queue of --queues runs in --scenarios");
  }
  const bool wants_memcpy = wants(o.scenarios, "element_size");
  const double memcpy = wants_memcpy ? memcpy_gbps(o.quick ? (32u << 20) : (128u << 20)) : 0;
  const nlohmann::ordered_json header = header_json(o, topo, command_line, worker, memcpy);
  std::printf("conveyor perf: %zu measurements, %d reps, on %s (%u PUs, %u NUMA nodes); "
              "worker %s\n",
              plan.size(), o.reps, header["machine"]["cpu_model"].get<std::string>().c_str(),
              topo.num_pus(), topo.num_numa_nodes(), worker.c_str());
  std::fflush(stdout);

  std::vector<Record> records;
  records.reserve(plan.size());
  std::set<std::string> cut;  // configurations whose earlier rep was cut: later reps skipped
  auto cut_key = [](const Spec& s) {
    return s.scenario + "|" + s.queue + "|" + std::to_string(s.producers) + "|" +
           std::to_string(s.consumers) + "|" + std::to_string(s.batch) + "|" + s.placement + "|" +
           std::to_string(s.element_bytes);
  };
  ProgressBar bar(o.progress, plan.size());
  for (std::size_t i = 0; i < plan.size(); ++i) {
    const Spec& s = plan[i];
    bar.show(i, s);
    Record r;
    if (cut.count(cut_key(s)) != 0) {
      r.spec = s;
      r.status = "skipped";
      r.error = "not run: an earlier rep of this queue and configuration was cut";
      records.push_back(std::move(r));
      continue;
    }
    std::filesystem::remove(out);
    const auto started = std::chrono::steady_clock::now();
    const auto runner = worker_of.find(s.queue);
    const Child child = spawn_and_wait(
        {runner == worker_of.end() ? worker : runner->second, "--spec", to_json(s).dump(), "--out",
         out},
        log, s.cap_s + s.stall_s + 30);
    try {
      if (child.exit_code != 0) throw std::runtime_error("no record");
      r = record_from_json(nlohmann::json::parse(read_file(out)));
    } catch (const std::exception&) {
      r = Record{};
      r.spec = s;
      r.status = "crashed";
      r.error = child.killed_after_timeout
                    ? "worker killed after " + std::to_string(s.cap_s + s.stall_s + 30) + " s"
                : child.signal != 0 ? "worker died of signal " + std::to_string(child.signal)
                                    : "worker exit code " + std::to_string(child.exit_code);
      r.error += "; log: " + last_lines(read_file(log), 300);
    }
    r.process_seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    if (r.status == "livelock" || r.status == "time_cap" || r.status == "crashed") {
      cut.insert(cut_key(s));
    }
    records.push_back(std::move(r));
  }
  bar.finish();
  std::filesystem::remove_all(dir);

  print_summary(records, memcpy);
  std::size_t ok = 0, failed_checksums = 0, broken = 0;
  for (const Record& r : records) {
    if (r.status == "ok") ok += 1;
    if (r.status == "checksum") failed_checksums += 1;
    if (r.status == "crashed" || r.status == "error") broken += 1;
  }
  std::printf("\n%zu measurements: %zu ok, %zu checksum FAILED, %zu crashed or error, %zu cut or "
              "skipped\n",
              records.size(), ok, failed_checksums, broken,
              records.size() - ok - failed_checksums - broken);
  if (failed_checksums == 0 && broken == 0) std::printf("all checksums ok\n");

  if (!o.json.empty()) {
    nlohmann::ordered_json doc;
    doc["header"] = header;
    doc["header"]["loadavg_after"] = loadavg();
    if (!notrace.empty()) doc["header"]["worker_notrace"] = notrace;
    doc["records"] = nlohmann::ordered_json::array();
    for (const Record& r : records) doc["records"].push_back(record_json(r));
    const std::string tmp = o.json + ".tmp";
    {
      std::ofstream f(tmp);
      f << doc.dump(1) << "\n";
      if (!f) throw std::runtime_error("--json: cannot write '" + o.json + "'");
    }
    std::filesystem::rename(tmp, o.json);
    std::printf("wrote %s\n", o.json.c_str());
  }
  return failed_checksums == 0 && broken == 0 ? 0 : 1;
}

}  // namespace conveyor::tools::perf
