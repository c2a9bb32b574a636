// `conveyor trace report`: the text, JSON and HTML forms of a Report (tools/trace.h).
#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <sstream>
#include <string>
#include <string_view>

#include "tools/trace.h"

namespace conveyor::tools::trace {

namespace {

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


}  // namespace conveyor::tools::trace
