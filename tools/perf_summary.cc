// `conveyor perf`'s terminal output (perf_internal.h): the progress bar and the summary of
// medians and ratios per scenario.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "tools/perf_internal.h"

namespace conveyor::tools::perf {

namespace {

std::string fmt_rate(double v) {
  char buf[32];
  if (v >= 1e9) std::snprintf(buf, sizeof buf, "%.2f G/s", v / 1e9);
  else if (v >= 1e6) std::snprintf(buf, sizeof buf, "%.2f M/s", v / 1e6);
  else std::snprintf(buf, sizeof buf, "%.1f k/s", v / 1e3);
  return buf;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

std::string config_text(const Spec& s) {
  char buf[128];
  if (s.scenario == "element_size") {
    std::snprintf(buf, sizeof buf, "%zu B, 1P1C pinned", s.element_bytes);
  } else if (s.scenario == "trace") {
    std::snprintf(buf, sizeof buf, "conveyor ingest, default dataset, %d readers, tracing "
                  "compiled out / off / on", s.producers);
  } else if (s.scenario == "pipeline") {
    std::snprintf(buf, sizeof buf, "conveyor ingest, default dataset, 1 epoch, %d readers",
                  s.producers);
  } else if (s.scenario == "bulk") {
    std::snprintf(buf, sizeof buf, "batch %d, 1P1C pinned", s.batch);
  } else {
    std::snprintf(buf, sizeof buf, "%dP%dC %s", s.producers, s.consumers, s.placement.c_str());
  }
  return buf;
}

struct Stat {
  std::string queue;
  std::string wait, bound;
  double value = 0;  // median items/s (lower-is-better p50 for pingpong)
  double cpu_per_m = 0;
  int runs = 0;
};

// The trace scenario's overhead: off vs compiled out and on vs off, as ratios of medians and
// medians of same-rep ratios (the variants of one rep ran back to back), over every ok record
// whatever its tag (bench/perf_report.py also splits them by tag for PERF.md).
void print_trace_summary(const std::vector<Record>& records) {
  std::map<std::string, std::map<int, double>> by;  // queue -> rep -> records/s
  for (const Record& r : records) {
    if (r.spec.scenario == "trace" && r.status == "ok") by[r.spec.queue][r.spec.rep] = r.items_per_second();
  }
  auto line = [&](const char* what, std::string_view a, std::string_view b) {
    const auto ia = by.find(std::string(a));
    const auto ib = by.find(std::string(b));
    if (ia == by.end() || ib == by.end()) return;
    std::vector<double> va, vb, paired;
    for (const auto& [rep, v] : ia->second) va.push_back(v);
    for (const auto& [rep, v] : ib->second) {
      vb.push_back(v);
      const auto other = ia->second.find(rep);
      if (other != ia->second.end() && v > 0) paired.push_back(other->second / v);
    }
    const double ratio = median(vb) > 0 ? median(va) / median(vb) : 0;
    std::printf("  => tracing %s: %.3fx throughput (%+.1f%% cost); same-rep %.3fx over %zu reps\n",
                what, ratio, 100 * (1 - ratio), median(paired), paired.size());
  };
  if (by.empty()) return;
  std::printf("\ntrace: what tracing costs the pipeline (target: on under 5%% slower than off)\n");
  line("off vs compiled out", kTraceQueues[1], kTraceQueues[0]);
  line("on vs off", kTraceQueues[2], kTraceQueues[1]);
}

}  // namespace

std::string fmt_duration(double s) {
  char buf[32];
  const int t = static_cast<int>(std::lround(s));
  std::snprintf(buf, sizeof buf, "%dm%02ds", t / 60, t % 60);
  return buf;
}

// The summary: per configuration and tag, the queues' medians and Conveyor / best peer.
void print_summary(const std::vector<Record>& records, double memcpy) {
  using Key = std::tuple<std::string, int, int, int, std::string, std::size_t, std::string>;
  std::map<Key, std::map<std::string, std::vector<const Record*>>> groups;
  std::vector<Key> order;
  for (const Record& r : records) {
    if (r.status != "ok") continue;
    const Spec& s = r.spec;
    Key k{s.scenario, s.producers, s.consumers, s.batch, s.placement, s.element_bytes, r.tag()};
    if (groups.find(k) == groups.end()) order.push_back(k);
    groups[k][s.queue].push_back(&r);
  }
  std::printf("\nSummary (medians per queue; ratios only within one placement tag)\n");
  for (const Key& k : order) {
    const auto& by_queue = groups[k];
    const bool latency = std::get<0>(k) == "pingpong";
    std::vector<Stat> stats;
    for (const auto& [queue, rs] : by_queue) {
      Stat st;
      st.queue = queue;
      st.wait = rs.front()->wait;
      st.bound = rs.front()->bound;
      std::vector<double> v, cpu;
      for (const Record* r : rs) {
        v.push_back(latency ? r->p50_ns.value_or(0) : r->items_per_second());
        if (r->items > 0) cpu.push_back(r->cpu_seconds / (static_cast<double>(r->items) / 1e6));
      }
      st.value = median(v);
      st.cpu_per_m = median(cpu);
      st.runs = static_cast<int>(rs.size());
      stats.push_back(st);
    }
    auto better = [&](const Stat& a, const Stat& b) {
      return latency ? a.value < b.value : a.value > b.value;
    };
    std::sort(stats.begin(), stats.end(), better);
    const Stat* conv = nullptr;
    const Stat* peer = nullptr;
    const Stat* blocking_peer = nullptr;
    for (const Stat& st : stats) {
      const bool is_conv = st.queue.rfind("Conveyor", 0) == 0;
      if (is_conv && conv == nullptr) conv = &st;
      if (!is_conv && peer == nullptr) peer = &st;
      if (!is_conv && blocking_peer == nullptr && st.wait == "block" && st.bound == "bounded") {
        blocking_peer = &st;
      }
    }
    Spec s;
    s.scenario = std::get<0>(k);
    s.producers = std::get<1>(k);
    s.consumers = std::get<2>(k);
    s.batch = std::get<3>(k);
    s.placement = std::get<4>(k);
    s.element_bytes = std::get<5>(k);
    std::vector<double> others;
    for (const auto& [queue, rs] : by_queue) {
      for (const Record* r : rs) others.push_back(r->others_cpu_frac);
    }
    std::printf("\n%s, %s [%s; other work took %.0f%% of the CPUs]\n", s.scenario.c_str(),
                config_text(s).c_str(), std::get<6>(k).c_str(), 100 * median(others));
    for (const Stat& st : stats) {
      if (latency) {
        std::printf("  %-28s p50 %8.0f ns  (%d runs, %s/%s)\n", st.queue.c_str(), st.value,
                    st.runs, st.wait.c_str(), st.bound.c_str());
      } else if (s.scenario == "element_size") {
        const double gbps = st.value * static_cast<double>(s.element_bytes) / 1e9;
        std::printf("  %-28s %12s  %6.2f GB/s (%.0f%% of memcpy)  CPU %.3f s/M items  (%d runs)\n",
                    st.queue.c_str(), fmt_rate(st.value).c_str(), gbps,
                    memcpy > 0 ? 100 * gbps / memcpy : 0.0, st.cpu_per_m, st.runs);
      } else {
        std::printf("  %-28s %12s  CPU %.3f s/M items  (%d runs, %s/%s)\n", st.queue.c_str(),
                    fmt_rate(st.value).c_str(), st.cpu_per_m, st.runs, st.wait.c_str(),
                    st.bound.c_str());
      }
    }
    if (conv != nullptr && peer != nullptr && conv->value > 0 && peer->value > 0) {
      const double ratio = latency ? peer->value / conv->value : conv->value / peer->value;
      std::printf("  => %s / best peer %s: %.2fx%s\n", conv->queue.c_str(), peer->queue.c_str(),
                  ratio, latency ? " (latency: peer p50 / Conveyor p50)" : "");
    }
    if (!latency && conv != nullptr && blocking_peer != nullptr && blocking_peer != peer &&
        blocking_peer->value > 0) {
      std::printf("  => %s / best bounded blocking peer %s: %.2fx throughput, %.2fx CPU per item\n",
                  conv->queue.c_str(), blocking_peer->queue.c_str(),
                  conv->value / blocking_peer->value,
                  blocking_peer->cpu_per_m > 0 ? conv->cpu_per_m / blocking_peer->cpu_per_m : 0.0);
    }
  }
  print_trace_summary(records);
  std::vector<const Record*> bad;
  for (const Record& r : records) {
    if (r.status != "ok") bad.push_back(&r);
  }
  if (!bad.empty()) {
    std::printf("\nNot ok (%zu):\n", bad.size());
    for (const Record* r : bad) {
      std::printf("  %s %s %s rep %d: %s: %s\n", r->spec.scenario.c_str(), r->spec.queue.c_str(),
                  config_text(r->spec).c_str(), r->spec.rep, r->status.c_str(), r->error.c_str());
    }
  }
}

}  // namespace conveyor::tools::perf
