// `conveyor trace export --format perfetto`: Chrome trace event JSON (tools/trace.h).
#include <algorithm>
#include <string>

#include "tools/trace.h"

namespace conveyor::tools::trace {

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


}  // namespace conveyor::tools::trace
