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


}  // namespace

std::string side_name(Side side) {
  switch (side) {
    case Side::kFull: return "full";
    case Side::kEmpty: return "empty";
    case Side::kClose: return "close";
  }
  return "?";
}

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
