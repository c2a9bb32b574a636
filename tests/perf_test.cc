// `conveyor perf` (tools/perf.h): option parsing and validation, the interleaved plan, the JSON
// record schema the issue fixes, the near/far tag, and the log histogram behind the pingpong
// percentiles. The checksum failing on a dropped item is checked end to end by the tool tests
// (tools/CMakeLists.txt, tool_perf_fault_*), which run the worker processes.
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cmath>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "tools/log_histogram.h"
#include "tools/perf.h"

namespace conveyor::tools::perf {
namespace {

Options parse(const std::string& args) {
  CLI::App app;
  Options o;
  add_options(app, o);
  app.parse(args, false);
  return o;
}

TEST(PerfOptions, ParsesListsAndNumbers) {
  Options o = parse(
      "--quick --threads 1,3 --placement none,scatter --queues Conveyor,BoostSpsc "
      "--scenarios mpmc,bulk --reps 4 --items 5000 --element-size 8,4096 --json out.json "
      "--no-progress --cap-s 9");
  EXPECT_TRUE(o.quick);
  EXPECT_EQ(o.threads, (std::vector<int>{1, 3}));
  EXPECT_EQ(o.placements, (std::vector<std::string>{"none", "scatter"}));
  EXPECT_EQ(o.queues, (std::vector<std::string>{"Conveyor", "BoostSpsc"}));
  EXPECT_EQ(o.scenarios, (std::vector<std::string>{"mpmc", "bulk"}));
  EXPECT_EQ(o.reps, 4);
  EXPECT_EQ(o.items, 5000u);
  EXPECT_EQ(o.element_sizes, (std::vector<std::size_t>{8, 4096}));
  EXPECT_EQ(o.json, "out.json");
  EXPECT_FALSE(o.progress);
  EXPECT_DOUBLE_EQ(o.cap_s, 9);
  EXPECT_FALSE(o.fault_drop_item);
  EXPECT_TRUE(parse("--fault-drop-item").fault_drop_item);
}

TEST(PerfOptions, ParserRejectsBadNumbers) {
  EXPECT_THROW(parse("--reps 0"), CLI::ValidationError);
  EXPECT_THROW(parse("--threads 0"), CLI::ValidationError);
  EXPECT_THROW(parse("--items lots"), CLI::ParseError);
  EXPECT_THROW(parse("--frobnicate"), CLI::ParseError);
}

// The message names the flag and the value.
void expect_usage_error(Options o, const std::string& flag, const std::string& value) {
  try {
    validate(o, 2);
    FAIL() << "no UsageError for " << flag << " " << value;
  } catch (const UsageError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find(flag), std::string::npos) << what;
    EXPECT_NE(what.find(value), std::string::npos) << what;
  }
}

TEST(PerfOptions, ValidateNamesTheBadValue) {
  expect_usage_error(parse("--scenarios mpmc,sideways"), "--scenarios", "sideways");
  expect_usage_error(parse("--placement diagonal"), "--placement", "diagonal");
  expect_usage_error(parse("--element-size 100"), "--element-size", "100");
}

TEST(PerfOptions, DefaultsDependOnQuickAndCores) {
  Options quick = parse("--quick");
  validate(quick, 2);
  EXPECT_EQ(quick.reps, 3);
  EXPECT_EQ(quick.threads, (std::vector<int>{1}));
  EXPECT_EQ(quick.placements, (std::vector<std::string>{"none"}));
  EXPECT_EQ(quick.element_sizes.size(), std::size(kElementSizes));

  Options full = parse("");
  validate(full, 12);
  EXPECT_EQ(full.reps, 5);
  EXPECT_EQ(full.threads, (std::vector<int>{1, 2, 4, 8, 12}));  // 1 .. cores
}

std::vector<QueueInfo> fake_queues() {
  return {
      {"Conveyor", "block", "bounded", false, {"spsc_pinned", "mpmc", "oversub", "bulk"}},
      {"PeerA", "spin", "bounded", false, {"spsc_pinned", "mpmc", "oversub"}},
      {"PeerUnbounded", "spin", "unbounded", true, {"mpmc", "oversub"}},
      {"PeerB", "block", "bounded", false, {"spsc_pinned", "bulk"}},
  };
}

TEST(PerfPlan, InterleavesQueuesAndRotatesEachRep) {
  Options o = parse("--scenarios spsc_pinned --reps 3");
  validate(o, 2);
  const std::vector<Spec> plan = make_plan(o, fake_queues(), 2);
  std::vector<std::string> order;
  for (const Spec& s : plan) order.push_back(s.queue + std::to_string(s.rep));
  EXPECT_EQ(order, (std::vector<std::string>{"Conveyor0", "PeerA0", "PeerB0", "PeerA1", "PeerB1",
                                             "Conveyor1", "PeerB2", "Conveyor2", "PeerA2"}));
  for (const Spec& s : plan) {
    EXPECT_EQ(s.placement, "pinned");
    EXPECT_EQ(s.producers, 1);
    EXPECT_EQ(s.consumers, 1);
  }
}

TEST(PerfPlan, RunsRepKOfEveryConfigurationBeforeRepKPlusOne) {
  Options o = parse("--scenarios spsc_pinned,bulk --queues Conveyor,PeerB --reps 2");
  validate(o, 2);
  std::vector<std::string> order;
  for (const Spec& s : make_plan(o, fake_queues(), 2)) {
    order.push_back(s.scenario + "/" + std::to_string(s.batch) + "/" + s.queue + std::to_string(s.rep));
  }
  // Within a configuration the queues still alternate and rotate per rep.
  EXPECT_EQ(order, (std::vector<std::string>{
                       "spsc_pinned/1/Conveyor0", "spsc_pinned/1/PeerB0",
                       "bulk/8/Conveyor0", "bulk/8/PeerB0", "bulk/32/Conveyor0", "bulk/32/PeerB0",
                       "bulk/256/Conveyor0", "bulk/256/PeerB0",
                       "spsc_pinned/1/PeerB1", "spsc_pinned/1/Conveyor1",
                       "bulk/8/PeerB1", "bulk/8/Conveyor1", "bulk/32/PeerB1", "bulk/32/Conveyor1",
                       "bulk/256/PeerB1", "bulk/256/Conveyor1"}));
}

TEST(PerfPlan, OversubIsTwoAndFourTimesTheCoresAndSkipsSingleProducerStandIns) {
  Options o = parse("--scenarios oversub,mpmc --reps 1 --threads 1");
  validate(o, 2);
  std::set<std::string> seen;
  for (const Spec& s : make_plan(o, fake_queues(), 2)) {
    seen.insert(s.scenario + ":" + s.queue + ":" + std::to_string(s.producers) + "x" +
                std::to_string(s.consumers));
  }
  EXPECT_EQ(seen, (std::set<std::string>{"mpmc:Conveyor:1x1", "mpmc:PeerA:1x1",
                                         "oversub:Conveyor:2x2", "oversub:PeerA:2x2",
                                         "oversub:PeerUnbounded:2x2", "oversub:Conveyor:4x4",
                                         "oversub:PeerA:4x4", "oversub:PeerUnbounded:4x4"}));
}

TEST(PerfPlan, BulkRunsEachBatchSizeAndQueueFilterApplies) {
  Options o = parse("--scenarios bulk --reps 1 --queues Conveyor");
  validate(o, 2);
  std::vector<int> batches;
  for (const Spec& s : make_plan(o, fake_queues(), 2)) {
    EXPECT_EQ(s.queue, "Conveyor");
    batches.push_back(s.batch);
  }
  EXPECT_EQ(batches, (std::vector<int>{8, 32, 256}));
}

// trace (issue 6): the pipeline's job three ways, interleaved per rep like peers.
std::vector<QueueInfo> trace_queues() {
  return {
      {"ConveyorIngest", "block", "bounded", false, {"pipeline", "trace"}},
      {"ConveyorIngestTraced", "block", "bounded", false, {"trace"}},
      {"ConveyorIngestNoTrace", "block", "bounded", false, {"trace"}},
      {"Conveyor", "block", "bounded", false, {"spsc_pinned"}},
  };
}

TEST(PerfOptions, TraceScenarioAndNotraceWorker) {
  Options o = parse("--scenarios pipeline,trace --notrace-worker /bin/true");
  EXPECT_EQ(o.scenarios, (std::vector<std::string>{"pipeline", "trace"}));
  EXPECT_EQ(o.notrace_worker, "/bin/true");
  validate(o, 2);
  expect_usage_error(parse("--scenarios trace --notrace-worker /nonexistent/worker"),
                     "--notrace-worker", "/nonexistent/worker");
  EXPECT_NE(std::find(std::begin(kScenarios), std::end(kScenarios), "trace"), std::end(kScenarios));
}

TEST(PerfPlan, TraceRunsTheThreeVariantsInterleavedWithTheirOwnItems) {
  Options o = parse("--scenarios trace --reps 3");
  validate(o, 2);
  const std::vector<Spec> plan = make_plan(o, trace_queues(), 2);
  std::vector<std::string> order;
  for (const Spec& s : plan) {
    order.push_back(s.queue + std::to_string(s.rep));
    EXPECT_EQ(s.scenario, "trace");
    EXPECT_EQ(s.producers, 4);  // reader threads, as the pipeline scenario
    EXPECT_EQ(s.placement, "none");
    EXPECT_EQ(s.items, 4'194'304u);  // 32 epochs of the default dataset
  }
  // kTraceRepsFactor x --reps repetitions; the first three rotate the order as peers do.
  ASSERT_EQ(order.size(), 3u * 3u * static_cast<std::size_t>(kTraceRepsFactor));
  EXPECT_EQ(std::vector<std::string>(order.begin(), order.begin() + 9),
            (std::vector<std::string>{
                "ConveyorIngest0", "ConveyorIngestTraced0", "ConveyorIngestNoTrace0",
                "ConveyorIngestTraced1", "ConveyorIngestNoTrace1", "ConveyorIngest1",
                "ConveyorIngestNoTrace2", "ConveyorIngest2", "ConveyorIngestTraced2"}));
  EXPECT_EQ(plan.back().rep, 3 * kTraceRepsFactor - 1);

  Options quick = parse("--quick --scenarios trace,pipeline");
  validate(quick, 2);
  std::set<std::string> seen;
  for (const Spec& s : make_plan(quick, trace_queues(), 2)) {
    seen.insert(s.scenario + ":" + s.queue);
    if (s.scenario == "trace") {
      EXPECT_EQ(s.items, 1'048'576u);
    }
  }
  EXPECT_EQ(seen, (std::set<std::string>{"pipeline:ConveyorIngest", "trace:ConveyorIngest",
                                         "trace:ConveyorIngestTraced",
                                         "trace:ConveyorIngestNoTrace"}));
  Options items = parse("--scenarios trace --reps 1 --items 1000 --queues ConveyorIngestTraced");
  validate(items, 2);
  const std::vector<Spec> one = make_plan(items, trace_queues(), 2);
  ASSERT_EQ(one.size(), static_cast<std::size_t>(kTraceRepsFactor));  // reps 1 x the factor
  for (const Spec& s : one) EXPECT_EQ(s.items, 1000u);
}

TEST(PerfJson, TraceFieldsAreNullUnlessRecordingAndRoundTrip) {
  Record r;
  r.spec.scenario = "trace";
  r.spec.queue = "ConveyorIngest";
  r.items = 4096;
  r.seconds = 1;
  r.checksum_ok = true;
  r.tracing = "off";
  const nlohmann::ordered_json off = record_json(r);
  EXPECT_EQ(off["tracing"], "off");
  EXPECT_TRUE(off["trace_events"].is_null());
  EXPECT_TRUE(off["trace_dropped"].is_null());
  EXPECT_EQ(off["scenario"], "trace");  // the issue-5 fields are all there
  EXPECT_TRUE(off.contains("rtt_after_ns"));

  r.spec.queue = "ConveyorIngestTraced";
  r.tracing = "on";
  r.trace_events = 123456;
  r.trace_dropped = 7;
  const nlohmann::ordered_json on = record_json(r);
  EXPECT_EQ(on["trace_events"], 123456u);
  EXPECT_EQ(on["trace_dropped"], 7u);
  const Record back = record_from_json(nlohmann::json::parse(on.dump()));
  EXPECT_EQ(back.tracing, "on");
  EXPECT_EQ(back.trace_events, 123456u);
  EXPECT_EQ(back.trace_dropped, 7u);
  const Record old = record_from_json(nlohmann::json::parse(R"({"scenario": "pipeline",
      "queue": "ConveyorIngest", "producers": 4, "consumers": 1, "batch": 1, "placement": "none",
      "element_bytes": 8, "rep": 0, "items": 1, "seconds": 1, "cpu_seconds": 1,
      "voluntary_cs": 0, "involuntary_cs": 0, "checksum_ok": true})"));
  EXPECT_EQ(old.tracing, "");  // a record from before the field
  EXPECT_FALSE(old.trace_events.has_value());
}

TEST(PerfJson, RecordHasTheIssuesFieldsInOrder) {
  Record r;
  r.spec.scenario = "spsc_pinned";
  r.spec.queue = "Conveyor";
  r.items = 1000;
  r.seconds = 0.5;
  r.cpu_seconds = 0.25;
  r.rtt_before_ns = 120;
  r.rtt_after_ns = 460;
  r.checksum_ok = true;
  const nlohmann::ordered_json j = record_json(r);
  const std::vector<std::string> issue = {
      "scenario",     "queue",          "producers",        "consumers",     "batch",
      "placement",    "element_bytes",  "rep",              "items",         "seconds",
      "items_per_second", "cpu_seconds", "voluntary_cs",    "involuntary_cs", "p50_ns",
      "p99_ns",       "p999_ns",        "rtt_before_ns",    "rtt_after_ns",  "checksum_ok"};
  std::vector<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.push_back(it.key());
  ASSERT_GE(keys.size(), issue.size());
  EXPECT_EQ(std::vector<std::string>(keys.begin(), keys.begin() + static_cast<long>(issue.size())),
            issue);
  EXPECT_TRUE(j["p50_ns"].is_null());  // not measured outside pingpong
  EXPECT_TRUE(j["p999_ns"].is_null());
  EXPECT_DOUBLE_EQ(j["items_per_second"].get<double>(), 2000);
  EXPECT_TRUE(j["checksum_ok"].is_boolean());
  EXPECT_TRUE(j["items"].is_number_unsigned());
  EXPECT_EQ(j["tag"], "mixed");
  EXPECT_EQ(j["status"], "ok");

  r.p50_ns = 300;
  r.p99_ns = 900;
  r.p999_ns = 5000;
  r.rtt_before_ns = -1;  // a failed probe
  const nlohmann::ordered_json k = record_json(r);
  EXPECT_DOUBLE_EQ(k["p99_ns"].get<double>(), 900);
  EXPECT_TRUE(k["rtt_before_ns"].is_null());
  const Record back = record_from_json(nlohmann::json::parse(k.dump()));
  EXPECT_EQ(back.spec.scenario, "spsc_pinned");
  EXPECT_EQ(back.items, 1000u);
  EXPECT_EQ(back.p999_ns, 5000);
  EXPECT_EQ(back.rtt_before_ns, -1);
  EXPECT_TRUE(back.checksum_ok);
}

TEST(PerfJson, SpecRoundTripsAndRejectsNonsense) {
  Spec s;
  s.scenario = "bulk";
  s.queue = "BoostSpsc";
  s.batch = 32;
  s.items = 77;
  s.fault_drop_item = true;
  const Spec back = spec_from_json(nlohmann::json::parse(to_json(s).dump()));
  EXPECT_EQ(back.scenario, "bulk");
  EXPECT_EQ(back.batch, 32);
  EXPECT_EQ(back.items, 77u);
  EXPECT_TRUE(back.fault_drop_item);
  nlohmann::json bad = to_json(s);
  bad["producers"] = 0;
  EXPECT_THROW(spec_from_json(bad), std::invalid_argument);
  bad.erase("queue");
  EXPECT_THROW(spec_from_json(bad), nlohmann::json::exception);
}

TEST(PerfTag, NearFarMixedUnknown) {
  EXPECT_EQ(rtt_tag(150, 160), "near");
  EXPECT_EQ(rtt_tag(450, 470), "far");
  EXPECT_EQ(rtt_tag(150, 470), "mixed");
  EXPECT_EQ(rtt_tag(-1, 470), "unknown");
  EXPECT_EQ(rtt_tag(kNearRttNs, kNearRttNs), "far");
}

TEST(LogHistogram, BucketsAreMonotoneWithBoundedRelativeError) {
  std::size_t last = 0;
  for (std::uint64_t v = 0; v < 200000; v += (v < 1000 ? 1 : 97)) {
    const std::size_t i = LogHistogram::index_of(v);
    EXPECT_GE(i, last);
    last = i;
    const std::uint64_t top = LogHistogram::upper_edge(i);
    ASSERT_GE(top, v);
    EXPECT_LE(static_cast<double>(top - v), static_cast<double>(v) / 64.0 + 1e-9) << v;
  }
  const std::uint64_t huge = ~std::uint64_t{0};
  EXPECT_LT(LogHistogram::index_of(huge), LogHistogram::kBuckets);
  EXPECT_EQ(LogHistogram::upper_edge(LogHistogram::index_of(huge)), huge);
}

TEST(LogHistogram, PercentilesOfAKnownDistribution) {
  LogHistogram h;
  EXPECT_EQ(h.percentile(0.5), 0u);
  std::vector<std::uint64_t> values;
  std::mt19937_64 rng(7);
  for (int i = 0; i < 100000; ++i) values.push_back(100 + rng() % 1'000'000);
  for (const auto v : values) h.record(v);
  std::sort(values.begin(), values.end());
  for (const double q : {0.5, 0.99, 0.999}) {
    const auto exact = values[static_cast<std::size_t>(std::ceil(q * 100000)) - 1];
    const auto got = h.percentile(q);
    EXPECT_GE(got, exact) << q;
    EXPECT_LE(static_cast<double>(got), static_cast<double>(exact) * (1 + 1.0 / 64)) << q;
  }
  EXPECT_EQ(h.percentile(1.0), values.back());
  EXPECT_EQ(h.count(), 100000u);

  LogHistogram tail;
  tail.record(5'000'000);
  h.merge(tail);
  EXPECT_EQ(h.count(), 100001u);
  EXPECT_EQ(h.max(), 5'000'000u);
  EXPECT_EQ(h.percentile(1.0), 5'000'000u);
}

}  // namespace
}  // namespace conveyor::tools::perf
