#include "tools/trace.h"

#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <sstream>
#include <unordered_map>

namespace conveyor::tools::trace {

namespace {

constexpr std::string_view kMagic = "CONVEYOR-TRACE 1";
constexpr std::size_t kRecordBytes = 32;

std::uint64_t read_le(const char* p, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= std::uint64_t{static_cast<unsigned char>(p[i])} << (8 * i);
  return v;
}

std::string side_name(Side side) {
  switch (side) {
    case Side::kFull: return "full";
    case Side::kEmpty: return "empty";
    case Side::kClose: return "close";
  }
  return "?";
}

std::size_t side_index(std::uint16_t aux) { return aux >= 1 && aux <= 3 ? aux : 0; }

bool is_queue(const ObjectInfo& o) { return o.kind.ends_with("queue"); }

// Percentiles of weighted values: the smallest value whose cumulative weight reaches q.
Percentiles weighted_percentiles(std::vector<std::pair<double, double>> values) {
  Percentiles p;
  p.count = values.size();
  if (values.empty()) return p;
  std::sort(values.begin(), values.end());
  double total = 0;
  for (const auto& v : values) total += v.second;
  if (total <= 0) {  // no durations: count each sample once
    for (auto& v : values) v.second = 1;
    total = static_cast<double>(values.size());
  }
  auto at = [&](double q) {
    double acc = 0;
    for (const auto& v : values) {
      acc += v.second;
      if (acc >= q * total) return v.first;
    }
    return values.back().first;
  };
  p.p50 = at(0.50);
  p.p90 = at(0.90);
  p.p99 = at(0.99);
  p.max = values.back().first;
  return p;
}

std::string seconds(std::uint64_t ns) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f s", static_cast<double>(ns) / 1e9);
  return buf;
}

std::string duration(double ns) {
  char buf[32];
  if (ns < 1e3) {
    std::snprintf(buf, sizeof buf, "%.0f ns", ns);
  } else if (ns < 1e6) {
    std::snprintf(buf, sizeof buf, "%.1f us", ns / 1e3);
  } else if (ns < 1e9) {
    std::snprintf(buf, sizeof buf, "%.1f ms", ns / 1e6);
  } else {
    std::snprintf(buf, sizeof buf, "%.3f s", ns / 1e9);
  }
  return buf;
}

std::string percent(std::uint64_t part, std::uint64_t whole) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "%5.1f%%",
                whole == 0 ? 0.0 : 100.0 * static_cast<double>(part) / static_cast<double>(whole));
  return buf;
}

}  // namespace

const ThreadInfo* Trace::thread(std::uint32_t index) const {
  for (const ThreadInfo& t : threads) {
    if (t.index == index) return &t;
  }
  return nullptr;
}

std::string Trace::thread_name(std::uint32_t index) const {
  const ThreadInfo* t = thread(index);
  if (t == nullptr) return "thread #" + std::to_string(index);
  if (t->name.empty()) return "thread " + std::to_string(t->tid);
  return t->name;
}

std::string Trace::object_name(std::uint32_t id) const {
  auto it = objects.find(id);
  if (it == objects.end() || it->second.name.empty()) return "#" + std::to_string(id);
  return it->second.name;
}

Trace read_trace(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw invalid_argument("trace file", "'" + path + "'", "cannot be opened");
  const std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto bad = [&](const std::string& what) {
    return invalid_argument("trace file", "'" + path + "'", what);
  };
  const std::size_t l1 = data.find('\n');
  if (l1 == std::string::npos || std::string_view(data).substr(0, l1) != kMagic) {
    if (data.starts_with("CONVEYOR-TRACE ")) {
      throw bad("unsupported version '" + data.substr(0, std::min(l1, data.size())) +
                "' (this tool reads '" + std::string(kMagic) + "')");
    }
    throw bad("not a Conveyor trace (no '" + std::string(kMagic) + "' line)");
  }
  const std::size_t l2 = data.find('\n', l1 + 1);
  if (l2 == std::string::npos) throw bad("truncated (no metadata line)");
  nlohmann::json meta;
  try {
    meta = nlohmann::json::parse(data.substr(l1 + 1, l2 - l1 - 1));
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("metadata is not JSON: ") + e.what());
  }
  Trace t;
  std::uint64_t count = 0;
  try {
    t.program = meta.value("program", "");
    t.pid = meta.value("pid", 0L);
    t.clock = meta.value("clock", "");
    t.duration_ns = meta.value("duration_ns", std::uint64_t{0});
    t.ring_events = meta.value("ring_events", std::uint64_t{0});
    t.dropped = meta.value("dropped", std::uint64_t{0});
    count = meta.at("events").get<std::uint64_t>();
    for (const auto& th : meta.at("threads")) {
      t.threads.push_back(ThreadInfo{th.at("index").get<std::uint32_t>(), th.value("tid", 0L),
                                     th.value("name", ""), th.value("events", std::uint64_t{0}),
                                     th.value("dropped", std::uint64_t{0})});
    }
    for (const auto& o : meta.at("objects")) {
      ObjectInfo info{o.at("id").get<std::uint32_t>(), o.value("kind", ""), o.value("name", ""),
                      o.value("capacity", std::int64_t{0})};
      t.objects.emplace(info.id, info);
    }
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("metadata lacks a field: ") + e.what());
  }
  const std::size_t body = data.size() - (l2 + 1);
  if (body != count * kRecordBytes) {
    throw bad("truncated: metadata says " + std::to_string(count) + " events (" +
              std::to_string(count * kRecordBytes) + " bytes), the file holds " +
              std::to_string(body) + " bytes of events");
  }
  t.events.reserve(count);
  for (std::uint64_t i = 0; i < count; ++i) {
    const char* p = data.data() + l2 + 1 + i * kRecordBytes;
    Event e;
    e.ns = read_le(p, 8);
    e.thread = static_cast<std::uint32_t>(read_le(p + 8, 4));
    e.object = static_cast<std::uint32_t>(read_le(p + 12, 4));
    e.kind = static_cast<Kind>(read_le(p + 16, 2));
    e.aux = static_cast<std::uint16_t>(read_le(p + 18, 2));
    e.payload = read_le(p + 24, 8);
    t.events.push_back(e);
    t.duration_ns = std::max(t.duration_ns, e.ns);
  }
  return t;
}

// ---------------------------------------------------------------------------------------------
// analysis

Report analyze(const Trace& trace, std::size_t top_stalls) {
  Report r;
  r.program = trace.program;
  r.pid = trace.pid;
  r.duration_ns = trace.duration_ns;
  r.events = trace.events.size();
  r.dropped = trace.dropped;

  std::map<std::uint32_t, QueueReport> queues;
  auto queue = [&](std::uint32_t id) -> QueueReport& {
    auto [it, fresh] = queues.try_emplace(id);
    if (fresh) {
      it->second.id = id;
      it->second.name = trace.object_name(id);
      if (auto o = trace.objects.find(id); o != trace.objects.end()) {
        it->second.kind = o->second.kind;
        it->second.capacity = o->second.capacity;
      }
    }
    return it->second;
  };
  for (const auto& [id, o] : trace.objects) {
    if (is_queue(o)) queue(id);
  }
  std::map<std::uint32_t, CoordinatorReport> coordinators;
  auto coordinator = [&](std::uint32_t id) -> CoordinatorReport& {
    auto [it, fresh] = coordinators.try_emplace(id);
    if (fresh) it->second.id = id;
    return it->second;
  };

  // Wakes by futex word, in time order, for wake latencies.
  std::unordered_map<std::uint64_t, std::vector<std::uint64_t>> wakes;
  for (const Event& e : trace.events) {
    if (e.kind == Kind::kWake) wakes[e.payload].push_back(e.ns);
  }
  for (auto& [word, times] : wakes) std::sort(times.begin(), times.end());
  std::map<std::uint32_t, std::vector<std::pair<double, double>>> wake_latencies;  // queue ->
  std::map<std::uint32_t, std::vector<std::pair<std::uint64_t, std::uint64_t>>> samples;  // queue -> (ns, size)

  std::vector<Stall> stalls;
  std::size_t i = 0;
  while (i < trace.events.size()) {
    const std::uint32_t th = trace.events[i].thread;
    std::size_t end = i;
    while (end < trace.events.size() && trace.events[end].thread == th) ++end;

    ThreadReport tr;
    tr.index = th;
    if (const ThreadInfo* info = trace.thread(th)) {
      tr.tid = info->tid;
      tr.events = info->events;
      tr.dropped = info->dropped;
    }
    tr.name = trace.thread_name(th);
    std::uint64_t begin_ns = tr.dropped != 0 ? trace.events[i].ns : 0;
    std::uint64_t end_ns = trace.duration_ns;
    struct Open {
      Kind kind{};
      std::uint32_t object = 0;
      std::uint16_t aux = 0;
      std::uint64_t ns = 0;
      std::uint64_t payload = 0;
      bool active = true;
    };
    std::vector<Open> blocked;  // open blocked spans
    Open park{.active = false}, join{.active = false};
    std::uint64_t blocked_total = 0, parked_total = 0, parked_in_blocked = 0;
    for (std::size_t k = i; k < end; ++k) {
      const Event& e = trace.events[k];
      switch (e.kind) {
        case Kind::kThreadBegin: begin_ns = e.ns; break;
        case Kind::kThreadEnd: end_ns = e.ns; break;
        case Kind::kBlockedBegin:
          blocked.push_back(Open{e.kind, e.object, e.aux, e.ns, e.payload});
          samples[e.object].emplace_back(e.ns, e.payload);
          break;
        case Kind::kBlockedEnd: {
          samples[e.object].emplace_back(e.ns, e.payload);
          auto it = std::find_if(blocked.rbegin(), blocked.rend(), [&](const Open& o) {
            return o.object == e.object && o.aux == e.aux;
          });
          if (it == blocked.rend()) break;  // its begin was dropped
          const std::uint64_t d = e.ns - it->ns;
          QueueReport& q = queue(e.object);
          const std::size_t s = side_index(e.aux);
          q.blocked_ns[s] += d;
          q.waits[s] += 1;
          q.blocked_by_thread[s][th] += d;
          if (blocked.size() == 1) blocked_total += d;  // outermost only
          stalls.push_back(Stall{e.object, th, static_cast<Side>(e.aux), it->ns, d});
          blocked.erase(std::next(it).base());
          break;
        }
        case Kind::kPark: park = Open{e.kind, e.object, e.aux, e.ns, e.payload}; break;
        case Kind::kUnpark: {
          if (!park.active || park.payload != e.payload) break;
          const std::uint64_t d = e.ns - park.ns;
          parked_total += d;
          if (!blocked.empty()) {
            parked_in_blocked += d;
            // Woken (not timed out / interrupted / value changed): find the wake that did it.
            if (e.aux == 0) {
              auto w = wakes.find(e.payload);
              if (w != wakes.end()) {
                auto ub = std::upper_bound(w->second.begin(), w->second.end(), e.ns);
                if (ub != w->second.begin() && *std::prev(ub) >= park.ns) {
                  wake_latencies[blocked.back().object].emplace_back(
                      static_cast<double>(e.ns - *std::prev(ub)), 1.0);
                }
              }
            }
          }
          park.active = false;
          break;
        }
        case Kind::kOpSpan:
          tr.ops += 1;
          tr.op_ns += e.payload;
          if (e.aux == 0) tr.failed_ops += 1;
          break;
        case Kind::kOpStats:
          tr.ops += e.aux;
          tr.op_ns += e.payload;
          break;
        case Kind::kJoinBegin: join = Open{e.kind, e.object, e.aux, e.ns, e.payload}; break;
        case Kind::kJoinEnd:
          coordinator(e.object).joins += 1;
          if (join.active) coordinator(e.object).join_ns += e.ns - join.ns;
          join.active = false;
          break;
        case Kind::kStopRequested: coordinator(e.object).stops.emplace_back(e.ns, e.aux != 0); break;
        case Kind::kFirstError: {
          CoordinatorReport& c = coordinator(e.object);
          if (!c.first_error) c.first_error.emplace(e.ns, static_cast<ErrorKind>(e.payload));
          break;
        }
        case Kind::kClose: queue(e.object).closes.emplace_back(e.ns, e.aux != 0); break;
        case Kind::kBatch:
          queue(e.object).batches += 1;
          queue(e.object).batched_elements += e.payload;
          break;
        case Kind::kOccupancy: samples[e.object].emplace_back(e.ns, e.payload); break;
        case Kind::kWake: break;
      }
    }
    // Spans still open at the thread's end (or the trace's) count up to it.
    const std::uint64_t last = std::max(end_ns, trace.events[end - 1].ns);
    if (!blocked.empty()) blocked_total += last - blocked.front().ns;
    if (park.active) {
      parked_total += last - park.ns;
      if (!blocked.empty()) parked_in_blocked += last - park.ns;
    }
    end_ns = last;
    tr.lifetime_ns = end_ns > begin_ns ? end_ns - begin_ns : 0;
    tr.parked_ns = std::min(parked_total, tr.lifetime_ns);
    tr.blocked_ns = std::min(blocked_total - std::min(blocked_total, parked_in_blocked),
                             tr.lifetime_ns - tr.parked_ns);
    tr.busy_ns = tr.lifetime_ns - tr.parked_ns - tr.blocked_ns;
    r.threads.push_back(tr);
    i = end;
  }

  for (auto& [id, q] : queues) {
    auto s = samples.find(id);
    if (s != samples.end()) {
      auto& v = s->second;
      std::stable_sort(v.begin(), v.end(),
                       [](const auto& a, const auto& b) { return a.first < b.first; });
      std::vector<std::pair<double, double>> weighted;
      for (std::size_t k = 0; k < v.size(); ++k) {
        const double w = k + 1 < v.size() ? static_cast<double>(v[k + 1].first - v[k].first) : 0;
        weighted.emplace_back(static_cast<double>(v[k].second), w);
      }
      q.occupancy = weighted_percentiles(std::move(weighted));
      const std::size_t step = v.size() / 2000 + 1;  // at most about 2000 points to plot
      for (std::size_t k = 0; k < v.size(); k += step) q.occupancy_samples.push_back(v[k]);
      if ((v.size() - 1) % step != 0) q.occupancy_samples.push_back(v.back());
    }
    if (auto w = wake_latencies.find(id); w != wake_latencies.end()) {
      q.wake_latency = weighted_percentiles(w->second);
    }
    r.queues.push_back(q);
  }
  auto total_blocked = [](const QueueReport& q) {
    return q.blocked_ns[1] + q.blocked_ns[2] + q.blocked_ns[3];
  };
  std::stable_sort(r.queues.begin(), r.queues.end(), [&](const auto& a, const auto& b) {
    return total_blocked(a) > total_blocked(b);
  });
  std::stable_sort(stalls.begin(), stalls.end(),
                   [](const Stall& a, const Stall& b) { return a.duration_ns > b.duration_ns; });
  if (stalls.size() > top_stalls) stalls.resize(top_stalls);
  r.top_stalls = std::move(stalls);
  for (auto& [id, c] : coordinators) r.coordinators.push_back(c);
  return r;
}

// ---------------------------------------------------------------------------------------------
// report

std::string report_text(const Report& r, const Trace& trace) {
  std::ostringstream out;
  out << "trace of " << (r.program.empty() ? "?" : r.program) << " (pid " << r.pid << "): "
      << seconds(r.duration_ns) << ", " << r.events << " events from " << r.threads.size()
      << " threads\n";
  if (r.dropped != 0) {
    out << "WARNING: " << r.dropped
        << " events dropped (rings full: the oldest were overwritten; raise "
        << conveyor::trace::kTraceEventsEnvVar << " or record --events):";
    for (const ThreadReport& t : r.threads) {
      if (t.dropped != 0) out << " " << t.name << " " << t.dropped << ";";
    }
    out << "\n";
  }
  out << "\nqueues (most blocked first):\n";
  if (r.queues.empty()) out << "  (none)\n";
  for (const QueueReport& q : r.queues) {
    out << "  " << q.name << " (" << (q.kind.empty() ? "queue" : q.kind);
    if (q.capacity != 0) out << ", capacity " << q.capacity;
    out << ", id " << q.id << ")\n";
    const char* labels[4] = {"", "producers blocked on full ", "consumers blocked on empty",
                             "close waiting for producers"};
    for (std::size_t s = 1; s <= 3; ++s) {
      if (s == 3 && q.waits[3] == 0) continue;
      out << "    " << labels[s] << "  " << seconds(q.blocked_ns[s]) << " in " << q.waits[s]
          << " waits";
      if (!q.blocked_by_thread[s].empty()) {
        std::vector<std::pair<std::uint64_t, std::uint32_t>> who;
        for (const auto& [th, ns] : q.blocked_by_thread[s]) who.emplace_back(ns, th);
        std::sort(who.rbegin(), who.rend());
        out << " (";
        for (std::size_t k = 0; k < who.size() && k < 4; ++k) {
          out << (k ? ", " : "") << trace.thread_name(who[k].second) << " "
              << seconds(who[k].first);
        }
        if (who.size() > 4) out << ", +" << who.size() - 4 << " more";
        out << ")";
      }
      out << "\n";
    }
    if (q.occupancy.count != 0) {
      char buf[160];
      std::snprintf(buf, sizeof buf, "p50 %.0f  p90 %.0f  p99 %.0f  max %.0f  (%" PRIu64
                    " samples, time-weighted)",
                    q.occupancy.p50, q.occupancy.p90, q.occupancy.p99, q.occupancy.max,
                    q.occupancy.count);
      out << "    occupancy                    " << buf << "\n";
    } else {
      out << "    occupancy                    no samples\n";
    }
    if (q.wake_latency.count != 0) {
      out << "    wake latency                 p50 " << duration(q.wake_latency.p50) << "  p90 "
          << duration(q.wake_latency.p90) << "  p99 " << duration(q.wake_latency.p99) << "  max "
          << duration(q.wake_latency.max) << "  (" << q.wake_latency.count << " wakes)\n";
    } else {
      out << "    wake latency                 no sleeper was woken\n";
    }
    if (q.batches != 0) {
      out << "    batches                      " << q.batches << " (" << q.batched_elements
          << " elements)\n";
    }
    for (const auto& [ns, cancel] : q.closes) {
      out << "    closed" << (cancel ? " (cancel pending enqueues)" : "") << " at "
          << seconds(ns) << "\n";
    }
  }
  out << "\ntop stalls:\n";
  if (r.top_stalls.empty()) out << "  (none)\n";
  for (std::size_t k = 0; k < r.top_stalls.size(); ++k) {
    const Stall& s = r.top_stalls[k];
    out << "  " << k + 1 << ". " << duration(static_cast<double>(s.duration_ns)) << "  "
        << trace.thread_name(s.thread) << " blocked on " << side_name(s.side) << " in queue "
        << trace.object_name(s.queue) << " at " << seconds(s.begin_ns) << "\n";
  }
  out << "\nthreads:\n    busy  blocked   parked      ops   mean op   lifetime  thread\n";
  for (const ThreadReport& t : r.threads) {
    char buf[200];
    std::snprintf(buf, sizeof buf, "  %s  %s  %s  %7" PRIu64 "  %8s  %9s  ",
                  percent(t.busy_ns, t.lifetime_ns).c_str(),
                  percent(t.blocked_ns, t.lifetime_ns).c_str(),
                  percent(t.parked_ns, t.lifetime_ns).c_str(), t.ops,
                  t.ops ? duration(static_cast<double>(t.op_ns) / static_cast<double>(t.ops)).c_str()
                        : "-",
                  seconds(t.lifetime_ns).c_str());
    out << buf << t.name;
    if (t.dropped != 0) out << " (" << t.dropped << " events dropped)";
    out << "\n";
  }
  if (!r.coordinators.empty()) out << "\ncoordinators:\n";
  for (const CoordinatorReport& c : r.coordinators) {
    out << "  " << trace.object_name(c.id) << " (id " << c.id << "):";
    if (c.stops.empty()) out << " no stop requested;";
    if (!c.stops.empty()) {
      out << " stop requested at " << seconds(c.stops.front().first);
      if (c.stops.size() > 1) out << " (+" << c.stops.size() - 1 << " more requests)";
      out << ";";
    }
    if (c.first_error) {
      out << " first error " << to_string(c.first_error->second) << " at "
          << seconds(c.first_error->first) << ";";
    }
    out << " " << c.joins << " join(s), " << seconds(c.join_ns) << " joining\n";
  }
  return out.str();
}

nlohmann::ordered_json report_json(const Report& r, const Trace& trace) {
  using J = nlohmann::ordered_json;
  auto pct = [](const Percentiles& p) {
    return J{{"count", p.count}, {"p50", p.p50}, {"p90", p.p90}, {"p99", p.p99}, {"max", p.max}};
  };
  J queues = J::array();
  for (const QueueReport& q : r.queues) {
    J by_side = J::object();
    for (std::size_t s = 1; s <= 3; ++s) {
      J who = J::array();
      for (const auto& [th, ns] : q.blocked_by_thread[s]) {
        who.push_back(J{{"thread", trace.thread_name(th)}, {"blocked_ns", ns}});
      }
      by_side[side_name(static_cast<Side>(s))] =
          J{{"blocked_ns", q.blocked_ns[s]}, {"waits", q.waits[s]}, {"threads", who}};
    }
    J closes = J::array();
    for (const auto& [ns, cancel] : q.closes) closes.push_back(J{{"ns", ns}, {"cancel", cancel}});
    queues.push_back(J{{"id", q.id},
                       {"name", q.name},
                       {"kind", q.kind},
                       {"capacity", q.capacity},
                       {"blocked", by_side},
                       {"occupancy", pct(q.occupancy)},
                       {"wake_latency_ns", pct(q.wake_latency)},
                       {"batches", q.batches},
                       {"batched_elements", q.batched_elements},
                       {"closes", closes}});
  }
  J stalls = J::array();
  for (const Stall& s : r.top_stalls) {
    stalls.push_back(J{{"thread", trace.thread_name(s.thread)},
                       {"queue", trace.object_name(s.queue)},
                       {"side", side_name(s.side)},
                       {"begin_ns", s.begin_ns},
                       {"duration_ns", s.duration_ns}});
  }
  J threads = J::array();
  for (const ThreadReport& t : r.threads) {
    const double life = t.lifetime_ns ? static_cast<double>(t.lifetime_ns) : 1.0;
    threads.push_back(J{{"name", t.name},
                        {"tid", t.tid},
                        {"lifetime_ns", t.lifetime_ns},
                        {"busy", static_cast<double>(t.busy_ns) / life},
                        {"blocked", static_cast<double>(t.blocked_ns) / life},
                        {"parked", static_cast<double>(t.parked_ns) / life},
                        {"ops", t.ops},
                        {"op_ns", t.op_ns},
                        {"failed_ops", t.failed_ops},
                        {"events", t.events},
                        {"dropped", t.dropped}});
  }
  J coords = J::array();
  for (const CoordinatorReport& c : r.coordinators) {
    J stops = J::array();
    for (const auto& [ns, err] : c.stops) stops.push_back(J{{"ns", ns}, {"with_error", err}});
    J first = nullptr;
    if (c.first_error) {
      first = J{{"ns", c.first_error->first},
                {"kind", std::string(to_string(c.first_error->second))}};
    }
    coords.push_back(J{{"id", c.id},
                       {"stops", stops},
                       {"first_error", first},
                       {"joins", c.joins},
                       {"join_ns", c.join_ns}});
  }
  return J{{"program", r.program},   {"pid", r.pid},         {"duration_ns", r.duration_ns},
           {"events", r.events},     {"dropped", r.dropped}, {"queues", queues},
           {"top_stalls", stalls},   {"threads", threads},   {"coordinators", coords}};
}

namespace {

std::string html_escape(std::string_view s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

std::string report_html(const Report& r, const Trace& trace) {
  std::ostringstream out;
  out << "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>conveyor trace: "
      << html_escape(r.program) << "</title>\n<style>body{font-family:sans-serif;margin:2em}"
      << "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;"
      << "text-align:right}td.l,th.l{text-align:left}.bar{display:flex;width:300px;height:12px}"
      << ".busy{background:#4a4}.blocked{background:#e94}.parked{background:#99c}"
      << "pre{background:#f6f6f6;padding:1em}</style></head><body>\n";
  out << "<h1>Where <code>" << html_escape(r.program) << "</code> waited</h1>\n";
  out << "<p>" << seconds(r.duration_ns) << ", " << r.events << " events from "
      << r.threads.size() << " threads";
  if (r.dropped != 0) out << "; <b>" << r.dropped << " events dropped</b> (rings full)";
  out << ".</p>\n<h2>Queues: occupancy over time</h2>\n";
  const double width = 800, height = 160;
  for (const QueueReport& q : r.queues) {
    out << "<h3>" << html_escape(q.name) << " <small>(" << html_escape(q.kind);
    if (q.capacity != 0) out << ", capacity " << q.capacity;
    out << ")</small></h3>\n<p>producers blocked on full " << seconds(q.blocked_ns[1]) << " in "
        << q.waits[1] << " waits; consumers blocked on empty " << seconds(q.blocked_ns[2])
        << " in " << q.waits[2] << " waits; occupancy p50 " << q.occupancy.p50 << ", p90 "
        << q.occupancy.p90 << ", max " << q.occupancy.max << "; wake latency p50 "
        << duration(q.wake_latency.p50) << ", p99 " << duration(q.wake_latency.p99) << "</p>\n";
    if (q.occupancy_samples.empty()) continue;
    double top = static_cast<double>(q.capacity);
    for (const auto& s : q.occupancy_samples) top = std::max(top, static_cast<double>(s.second));
    if (top <= 0) top = 1;
    const double span = r.duration_ns ? static_cast<double>(r.duration_ns) : 1.0;
    out << "<svg width=\"" << width + 60 << "\" height=\"" << height + 30
        << "\" style=\"border:1px solid #ddd\"><polyline fill=\"none\" stroke=\"#36c\" points=\"";
    double last_y = -1;
    for (const auto& [ns, size] : q.occupancy_samples) {
      const double x = 50 + width * static_cast<double>(ns) / span;
      const double y = 10 + height * (1 - static_cast<double>(size) / top);
      if (last_y >= 0) out << x << "," << last_y << " ";  // a step: holds until the next sample
      out << x << "," << y << " ";
      last_y = y;
    }
    out << "\"/><text x=\"2\" y=\"18\" font-size=\"11\">" << top
        << "</text><text x=\"2\" y=\"" << height + 10 << "\" font-size=\"11\">0</text>"
        << "<text x=\"50\" y=\"" << height + 26 << "\" font-size=\"11\">0 s</text><text x=\""
        << width << "\" y=\"" << height + 26 << "\" font-size=\"11\">" << seconds(r.duration_ns)
        << "</text></svg>\n";
  }
  out << "<h2>Top stalls</h2>\n<table><tr><th>#</th><th>blocked</th><th class=\"l\">thread</th>"
      << "<th class=\"l\">on</th><th class=\"l\">queue</th><th>at</th></tr>\n";
  for (std::size_t k = 0; k < r.top_stalls.size(); ++k) {
    const Stall& s = r.top_stalls[k];
    out << "<tr><td>" << k + 1 << "</td><td>" << duration(static_cast<double>(s.duration_ns))
        << "</td><td class=\"l\">" << html_escape(trace.thread_name(s.thread))
        << "</td><td class=\"l\">" << side_name(s.side) << "</td><td class=\"l\">"
        << html_escape(trace.object_name(s.queue)) << "</td><td>" << seconds(s.begin_ns)
        << "</td></tr>\n";
  }
  out << "</table>\n<h2>Threads</h2>\n<p><span class=\"busy\">&nbsp;&nbsp;</span> busy "
      << "<span class=\"blocked\">&nbsp;&nbsp;</span> blocked (spinning in a queue wait) "
      << "<span class=\"parked\">&nbsp;&nbsp;</span> parked (asleep)</p>\n<table>"
      << "<tr><th class=\"l\">thread</th><th class=\"l\">time</th><th>ops</th><th>lifetime</th>"
      << "</tr>\n";
  for (const ThreadReport& t : r.threads) {
    const double life = t.lifetime_ns ? static_cast<double>(t.lifetime_ns) : 1.0;
    auto w = [&](std::uint64_t ns) { return 100.0 * static_cast<double>(ns) / life; };
    out << "<tr><td class=\"l\">" << html_escape(t.name) << "</td><td class=\"l\"><div class="
        << "\"bar\"><div class=\"busy\" style=\"width:" << w(t.busy_ns)
        << "%\"></div><div class=\"blocked\" style=\"width:" << w(t.blocked_ns)
        << "%\"></div><div class=\"parked\" style=\"width:" << w(t.parked_ns)
        << "%\"></div></div></td><td>" << t.ops << "</td><td>" << seconds(t.lifetime_ns)
        << "</td></tr>\n";
  }
  out << "</table>\n<h2>Full report</h2>\n<pre>" << html_escape(report_text(r, trace))
      << "</pre>\n</body></html>\n";
  return out.str();
}

// ---------------------------------------------------------------------------------------------
// export

nlohmann::ordered_json export_perfetto(const Trace& trace) {
  using J = nlohmann::ordered_json;
  J events = J::array();
  const long pid = trace.pid;
  events.push_back(J{{"name", "process_name"},
                     {"ph", "M"},
                     {"pid", pid},
                     {"tid", 0},
                     {"args", {{"name", trace.program.empty() ? "conveyor" : trace.program}}}});
  std::map<std::uint32_t, long> tids;
  for (const ThreadInfo& t : trace.threads) {
    const long tid = t.tid != 0 ? t.tid : static_cast<long>(t.index);
    tids[t.index] = tid;
    events.push_back(J{{"name", "thread_name"},
                       {"ph", "M"},
                       {"pid", pid},
                       {"tid", tid},
                       {"args", {{"name", trace.thread_name(t.index)}}}});
  }
  auto us = [](std::uint64_t ns) { return static_cast<double>(ns) / 1e3; };
  std::vector<std::pair<std::uint64_t, J>> counters;

  std::size_t i = 0;
  while (i < trace.events.size()) {
    const std::uint32_t th = trace.events[i].thread;
    const long tid = tids.count(th) ? tids[th] : static_cast<long>(th);
    struct Open {
      Kind begin;
      std::uint32_t object;
      std::uint16_t aux;
      std::string name;
    };
    std::vector<Open> stack;
    std::uint64_t last_ns = 0;
    auto begin = [&](const Event& e, std::string name, const char* cat, J args) {
      events.push_back(J{{"name", name}, {"cat", cat}, {"ph", "B"}, {"pid", pid}, {"tid", tid},
                         {"ts", us(e.ns)}, {"args", std::move(args)}});
      stack.push_back(Open{e.kind, e.object, e.aux, std::move(name)});
    };
    // Closes the innermost open span that `e` ends (and any opened inside it); an end whose
    // begin was dropped closes nothing.
    auto end = [&](const Event& e, Kind begin_kind, bool match_object, J args) {
      auto it = std::find_if(stack.rbegin(), stack.rend(), [&](const Open& o) {
        return o.begin == begin_kind &&
               (!match_object || (o.object == e.object && o.aux == e.aux));
      });
      if (it == stack.rend()) return;
      const std::size_t keep = static_cast<std::size_t>(stack.rend() - it) - 1;
      while (stack.size() > keep) {
        events.push_back(J{{"name", stack.back().name}, {"ph", "E"}, {"pid", pid}, {"tid", tid},
                           {"ts", us(e.ns)}, {"args", stack.size() == keep + 1 ? args : J::object()}});
        stack.pop_back();
      }
    };
    auto instant = [&](const Event& e, std::string name, const char* cat, J args) {
      events.push_back(J{{"name", std::move(name)}, {"cat", cat}, {"ph", "i"}, {"s", "t"},
                         {"pid", pid}, {"tid", tid}, {"ts", us(e.ns)}, {"args", std::move(args)}});
    };
    auto counter = [&](const Event& e) {
      counters.emplace_back(e.ns, J{{"name", "occupancy " + trace.object_name(e.object)},
                                    {"ph", "C"},
                                    {"pid", pid},
                                    {"ts", us(e.ns)},
                                    {"args", {{"elements", e.payload}}}});
    };
    // An op span is one event at its end (engine/trace.h); its B goes where its begin falls:
    // after every earlier event of the thread (and after the previous op's end at the same
    // time), before the events inside the op.
    std::size_t end_i = i;
    while (end_i < trace.events.size() && trace.events[end_i].thread == th) ++end_i;
    std::multimap<std::size_t, std::size_t> op_begins;  // position -> the kOpSpan event
    for (std::size_t k = i; k < end_i; ++k) {
      const Event& e = trace.events[k];
      if (e.kind != Kind::kOpSpan) continue;
      const std::uint64_t b = e.ns > e.payload ? e.ns - e.payload : 0;
      std::size_t p = k;
      while (p > i && (trace.events[p - 1].ns > b ||
                       (trace.events[p - 1].ns == b && trace.events[p - 1].kind != Kind::kOpSpan))) {
        --p;
      }
      op_begins.emplace(p, k);
    }
    for (; i < end_i; ++i) {
      for (auto [it, last] = op_begins.equal_range(i); it != last; ++it) {
        const Event& op = trace.events[it->second];
        Event b = op;
        b.kind = Kind::kOpSpan;
        b.ns = std::max(last_ns, op.ns > op.payload ? op.ns - op.payload : 0);
        begin(b, "op " + trace.object_name(op.object), "runner", J::object());
        last_ns = b.ns;
      }
      const Event& e = trace.events[i];
      last_ns = e.ns;
      switch (e.kind) {
        case Kind::kBlockedBegin:
          begin(e, "blocked on " + side_name(static_cast<Side>(e.aux)) + ": " +
                       trace.object_name(e.object),
                "queue", J{{"queue", trace.object_name(e.object)}, {"size", e.payload}});
          counter(e);
          break;
        case Kind::kBlockedEnd:
          end(e, Kind::kBlockedBegin, true, J{{"size", e.payload}});
          counter(e);
          break;
        case Kind::kPark: begin(e, "parked", "futex", J::object()); break;
        case Kind::kUnpark: {
          static const char* results[] = {"awoken", "value changed", "interrupted", "timed out"};
          end(e, Kind::kPark, false, J{{"result", e.aux < 4 ? results[e.aux] : "?"}});
          break;
        }
        case Kind::kOpSpan: end(e, Kind::kOpSpan, false, J{{"ok", e.aux != 0}}); break;
        case Kind::kOpStats: break;  // counted by the report; no span
        case Kind::kJoinBegin: begin(e, "coordinator join", "coordinator", J::object()); break;
        case Kind::kJoinEnd: end(e, Kind::kJoinBegin, false, J::object()); break;
        case Kind::kWake: instant(e, "wake", "futex", J{{"woken", e.aux}}); break;
        case Kind::kClose:
          instant(e, std::string(e.aux ? "close(cancel): " : "close: ") + trace.object_name(e.object),
                  "queue", J::object());
          break;
        case Kind::kStopRequested:
          instant(e, "request_stop", "coordinator", J{{"with_error", e.aux != 0}});
          break;
        case Kind::kFirstError:
          instant(e, "first error", "coordinator",
                  J{{"kind", std::string(to_string(static_cast<ErrorKind>(e.payload)))}});
          break;
        case Kind::kBatch:
          instant(e, "batch", "batching",
                  J{{"queue", trace.object_name(e.object)}, {"size", e.payload}});
          break;
        case Kind::kOccupancy: counter(e); break;
        case Kind::kThreadBegin: instant(e, "thread start", "thread", J::object()); break;
        case Kind::kThreadEnd: instant(e, "thread end", "thread", J::object()); break;
      }
    }
    while (!stack.empty()) {  // cut short: closed at the thread's last event
      events.push_back(J{{"name", stack.back().name}, {"ph", "E"}, {"pid", pid}, {"tid", tid},
                         {"ts", us(last_ns)}, {"args", {{"cut_short", true}}}});
      stack.pop_back();
    }
  }
  std::stable_sort(counters.begin(), counters.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& c : counters) events.push_back(std::move(c.second));
  return J{{"traceEvents", std::move(events)},
           {"displayTimeUnit", "ns"},
           {"otherData",
            {{"producer", "conveyor trace export"},
             {"clock", trace.clock},
             {"dropped_events", trace.dropped}}}};
}

// ---------------------------------------------------------------------------------------------
// record

int run_record(const std::string& path, std::size_t events_per_thread,
               const std::vector<std::string>& command) {
  if (command.empty()) throw invalid_argument("command", "''", "must name a program to run");
  std::remove(path.c_str());  // so that a stale trace is never mistaken for this run's
  const pid_t child = ::fork();
  if (child < 0) {
    throw Error(ErrorKind::kInternal, std::string("fork failed: ") + std::strerror(errno));
  }
  if (child == 0) {
    ::setenv(std::string(conveyor::trace::kTraceEnvVar).c_str(), path.c_str(), 1);
    ::setenv(std::string(conveyor::trace::kTraceEventsEnvVar).c_str(),
             std::to_string(events_per_thread).c_str(), 1);
    std::vector<char*> argv;
    for (const std::string& a : command) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    std::fprintf(stderr, "conveyor trace record: cannot run '%s': %s\n", argv[0],
                 std::strerror(errno));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) {
      throw Error(ErrorKind::kInternal, std::string("waitpid failed: ") + std::strerror(errno));
    }
  }
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (code == 127) return code;  // not run: said above
  try {
    const Trace t = read_trace(path);
    std::fprintf(stderr,
                 "conveyor trace record: '%s' exited with %d; %zu events from %zu threads in %s "
                 "(%" PRIu64 " dropped); see `conveyor trace report %s`\n",
                 command[0].c_str(), code, t.events.size(), t.threads.size(), path.c_str(),
                 t.dropped, path.c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr,
                 "conveyor trace record: '%s' exited with %d and wrote no readable trace (%s): "
                 "is it linked with Conveyor, built with CONVEYOR_TRACING=ON, and did it exit "
                 "normally?\n",
                 command[0].c_str(), code, e.what());
    return code != 0 ? code : 1;
  }
  return code;
}

}  // namespace conveyor::tools::trace
