// conveyor: the command-line tool of Conveyor.
//
//   conveyor demo [--items N] [--producers P] [--consumers C] [--capacity K]
//   conveyor ingest --source nats://HOST:PORT --stream S --consumer C [--ack on_consumed|on_enqueue]
//                   [--sink nats://HOST:PORT --sink-subject SUBJ] (tools/ingest_nats.h)
//   conveyor publish --server nats://HOST:PORT --stream S [--count N] [--size B]
//   conveyor topo [--synthetic DESC | --xml PATH] [--producers N] [--consumers M] [--queues K]
//                 [--policy none|compact|scatter|numa_local|explicit] [--smt] [--pus 0,2,4]
//                 [--json]
//   conveyor trace record [-o FILE] [--events N] -- <command> [args...]
//   conveyor trace report FILE [--json] [--top N]
//   conveyor trace export FILE --format perfetto [-o OUT]
//   conveyor ingest ... [--trace FILE]
//   conveyor perf [--quick] [--scenarios ...] [--queues ...] [--threads ...] [--placement ...]
//                 [--reps N] [--items N] [--element-size ...] [--json FILE]
//   conveyor soak --minutes N [--first-seed S | --seed S] [--rss-growth-mib M] [--json PATH]
//                 [--no-progress]
//
// trace: see tools/trace.h. perf: see tools/perf.h.
// One subcommand per job, each a `run_<name>(options)` returning the process exit code; main()
// only parses. Exit codes: 0 done, 1 the job ran and found something wrong, 2 usage error (no or
// unknown subcommand, bad option value: the message names the flag and the value).
//
// demo: tools/demo.h.
//
// soak: the randomized schedule tester for as long as asked (tools/soak.h).
//
// topo: loads a topology (this machine, or CONVEYOR_TOPOLOGY when set; --synthetic and --xml
// override both), makes a placement plan for K queues of N producers and M consumers each
// (topology/placement.h), and prints the topology tree and the plan, or with --json one JSON
// document {"topology": ..., "plan": ...}. It binds nothing. --pus alone implies --policy
// explicit. A topology or request the user described wrongly (bad synthetic string, unreadable
// XML, bad CONVEYOR_TOPOLOGY, explicit PUs that do not fit) is a usage error.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "tools/demo.h"
#include "tools/ingest.h"
#include "tools/trace.h"
#include "tools/perf.h"
#include "tools/soak.h"
#include "tools/ingest_nats.h"
#include "engine/status.h"
#include "topology/placement.h"
#include "topology/topology.h"

namespace {

constexpr int kExitOk = 0;
constexpr int kExitWrong = 1;
constexpr int kExitUsage = 2;

// ---------------------------------------------------------------------------------------------
// topo

struct TopoOptions {
  std::optional<std::string> synthetic;  // --synthetic
  std::optional<std::string> xml;        // --xml
  std::int64_t producers = 1;
  std::int64_t consumers = 1;
  std::int64_t queues = 1;
  std::string policy;  // empty: explicit if --pus is given, else none
  bool smt = false;
  std::vector<std::int64_t> pus;
  bool json = false;
};

int run_topo(const TopoOptions& o) {
  namespace topo = conveyor::topology;
  // A topology the user described (flag or environment) that does not load is a usage error;
  // this machine failing to load is not.
  const char* env = std::getenv(std::string(topo::kTopologyEnvVar).c_str());
  const bool described = o.synthetic || o.xml || (env != nullptr && *env != '\0');
  std::optional<topo::Topology> topology;
  try {
    topology.emplace(o.synthetic ? topo::Topology::synthetic(*o.synthetic)
                     : o.xml     ? topo::Topology::from_xml(*o.xml)
                                 : topo::Topology());
  } catch (const topo::Error& e) {
    std::fprintf(stderr, "conveyor topo: %s\n", e.what());
    return described ? kExitUsage : kExitWrong;
  }

  topo::PlanRequest request;
  request.producers = static_cast<unsigned>(o.producers);
  request.consumers = static_cast<unsigned>(o.consumers);
  request.queues = static_cast<unsigned>(o.queues);
  request.use_smt = o.smt;
  for (std::int64_t pu : o.pus) request.explicit_pus.push_back(static_cast<unsigned>(pu));
  std::optional<topo::Plan> plan;
  try {
    request.policy = !o.policy.empty() ? topo::parse_policy(o.policy)
                     : o.pus.empty() ? topo::Policy::kNone
                                     : topo::Policy::kExplicit;
    plan.emplace(topo::make_plan(*topology, request));
  } catch (const topo::Error& e) {
    std::fprintf(stderr, "conveyor topo: %s\n", e.what());
    return kExitUsage;  // every request value came from the command line
  }

  if (o.json) {
    const nlohmann::ordered_json doc = {
        {"topology", nlohmann::ordered_json::parse(topology->to_json())},
        {"plan", nlohmann::ordered_json::parse(plan->to_json())},
    };
    std::printf("%s\n", doc.dump(2).c_str());
  } else {
    std::printf("%s\n%s", topology->to_tree().c_str(), plan->to_text().c_str());
  }
  return kExitOk;
}

// ---------------------------------------------------------------------------------------------
// command line

constexpr std::string_view kSubcommands[] = {"demo", "ingest", "publish", "soak", "topo",
                                             "trace", "perf"};

// An integer option's check, run on the text before conversion, so that the error names the
// value as given: "--items: 'lots' is not an integer", "--producers: 0 is out of range [1, 64]".
// (CLI11 prefixes the option name.)
CLI::Validator integer_in(std::int64_t lo, std::int64_t hi) {
  const std::string range = "[" + std::to_string(lo) + ", " + std::to_string(hi) + "]";
  return CLI::Validator(
      [lo, hi, range](std::string& text) -> std::string {
        std::int64_t value = 0;
        const char* end = text.data() + text.size();
        const auto [ptr, ec] = std::from_chars(text.data(), end, value);
        const bool parsed =
            ptr == end && (ec == std::errc() || ec == std::errc::result_out_of_range);
        if (!parsed) return "'" + text + "' is not an integer";
        if (ec != std::errc() || value < lo || value > hi)
          return text + " is out of range " + range;
        return {};
      },
      "INT in " + range);
}

// An integer option in [lo, hi] (integer_in), its default shown in --help.
template <class Int>
CLI::Option* add_bounded(CLI::App* cmd, const std::string& name, Int& value,
                         const std::string& help, std::int64_t lo, std::int64_t hi) {
  return cmd->add_option(name, value, help)->check(integer_in(lo, hi))->capture_default_str();
}

void print_usage(std::FILE* to) {
  std::fprintf(to,
               "usage: conveyor <subcommand> [options]\n"
               "\n"
               "subcommands:\n"
               "  ingest TF's input pipeline: files -> readers -> shuffle_batch_join -> consumer,\n"
               "         on a generated default dataset or --files; checks exactly once per epoch\n"
               "         or, with --source nats://HOST:PORT, from a NATS JetStream stream shared\n"
               "         by several processes and hosts\n"
               "  publish load a NATS JetStream stream with messages (for ingest --source)\n"
               "  demo   producers -> FifoQueue -> consumers on embedded text; prints throughput\n"
               "         and checks that every record arrived exactly once\n"
               "  soak   seeded random schedules of producers, consumers, closes, runners and\n"
               "         deadlines on every queue kind, for --minutes N; checks nothing is lost,\n"
               "         duplicated or hung and that RSS stays flat\n"
               "  topo   the topology tree (this machine, CONVEYOR_TOPOLOGY, --synthetic, --xml)\n"
               "         and a thread placement plan for queues of producers and consumers\n"
               "  trace  record (-- <command>), report or export (--format perfetto) a trace of\n"
               "         where a pipeline waits: per queue, per thread, top stalls\n"
               "  perf   the perf harness: scenarios x queues (Conveyor and peers) x threads,\n"
               "         one process per measurement, checksums, --json for PERF.md\n"
               "\n"
               "`conveyor <subcommand> --help` lists a subcommand's options.\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    print_usage(stderr);
    return kExitUsage;
  }
  const std::string_view first = argv[1];
  if (first == "-h" || first == "--help" || first == "help") {
    print_usage(stdout);
    return kExitOk;
  }
  if (std::find(std::begin(kSubcommands), std::end(kSubcommands), first) ==
      std::end(kSubcommands)) {
    std::fprintf(stderr, "conveyor: unknown subcommand '%s'\n\n", argv[1]);
    print_usage(stderr);
    return kExitUsage;
  }

  CLI::App app{"Conveyor: TensorFlow v1's queue pipeline as a lock-free C++ engine", "conveyor"};
  app.require_subcommand(1);

  conveyor::tools::DemoOptions demo;
  CLI::App* demo_cmd =
      app.add_subcommand("demo", "Producers -> FifoQueue -> consumers on embedded text");
  add_bounded(demo_cmd, "--items", demo.items, "Records to send, in total over all producers", 1,
              1'000'000'000);
  add_bounded(demo_cmd, "--producers", demo.producers, "Producer threads", 1, 64);
  add_bounded(demo_cmd, "--consumers", demo.consumers, "Consumer threads", 1, 64);
  add_bounded(demo_cmd, "--capacity", demo.capacity, "Queue capacity, in records", 1,
              std::int64_t{1} << 26);

  conveyor::tools::IngestOptions ingest;
  CLI::App* ingest_cmd = app.add_subcommand(
      "ingest", "files -> reader threads -> shuffle_batch_join -> a consumer checking every record");
  ingest_cmd->add_option("--files", ingest.files,
                         "TFRecord files (.txt: newline-delimited text); default: a generated "
                         "dataset in the cache folder")
      ->delimiter(',');
  ingest_cmd->add_option("--data-dir", ingest.data_dir, "Where the default dataset is kept");
  add_bounded(ingest_cmd, "--readers", ingest.readers, "Reader threads", 1, 256);
  add_bounded(ingest_cmd, "--batch-size", ingest.batch_size, "Examples per batch", 1, 1 << 20);
  add_bounded(ingest_cmd, "--capacity", ingest.capacity, "Shuffle queue capacity", 2,
              std::int64_t{1} << 26);
  add_bounded(ingest_cmd, "--min-after-dequeue", ingest.min_after_dequeue,
              "Examples kept in the shuffle queue while it is open (< capacity)", 0,
              std::int64_t{1} << 26);
  add_bounded(ingest_cmd, "--epochs", ingest.epochs, "Passes over the files", 1, 1000);
  ingest_cmd->add_option("--seed", ingest.seed, "Seed of the file order and the shuffle")
      ->capture_default_str();
  ingest_cmd->add_option("--json", ingest.json, "Write the summary to this file as JSON");
  bool no_progress = false;
  ingest_cmd->add_flag("--no-progress", no_progress, "No progress bar or progress lines");
  ingest_cmd->add_option("--trace", ingest.trace,
                         "Record a trace of the run into this file (`conveyor trace report`)");

  struct TraceOptions {
    std::string output = "conveyor.trace";
    std::int64_t events = std::int64_t{1} << 18;
    std::vector<std::string> command;
    std::string file;
    bool json = false;
    std::int64_t top = 10;
    std::string format;
    std::string html;
  } tr;
  CLI::App* trace_cmd =
      app.add_subcommand("trace", "Record, report or export a trace of where a pipeline waits");
  trace_cmd->require_subcommand(1);
  CLI::App* record_cmd = trace_cmd->add_subcommand(
      "record", "Run a command linked with Conveyor with tracing on (CONVEYOR_TRACE=FILE)");
  record_cmd->add_option("-o,--output", tr.output, "Trace file to write")->capture_default_str();
  add_bounded(record_cmd, "--events", tr.events, "Ring size per thread, in events", 16,
              std::int64_t{1} << 28);
  record_cmd->add_option("command", tr.command, "The command and its arguments, after --")
      ->required();
  CLI::App* report_cmd = trace_cmd->add_subcommand(
      "report", "Per queue and per thread: who waited on whom, and for how long");
  report_cmd->add_option("file", tr.file, "Trace file")->required();
  CLI::Option* report_json_opt =
      report_cmd->add_flag("--json", tr.json, "Print one JSON document instead of text");
  report_cmd->add_option("--html", tr.html, "Write an HTML page (occupancy plots) to this file")
      ->excludes(report_json_opt);
  add_bounded(report_cmd, "--top", tr.top, "Stalls to list", 0, 1000000);
  CLI::App* export_cmd =
      trace_cmd->add_subcommand("export", "Write the trace as Chrome trace event JSON");
  export_cmd->add_option("file", tr.file, "Trace file")->required();
  export_cmd->add_option("--format", tr.format, "Output format: perfetto")
      ->required()
      ->check(CLI::IsMember({"perfetto"}));
  export_cmd->add_option("-o,--output", tr.output,
                         "Where to write (default: FILE with .json appended)");

  conveyor::tools::SoakOptions soak;
  soak.program = std::string(argv[0]) + " soak";
  CLI::App* soak_cmd = app.add_subcommand(
      "soak", "Seeded random schedules on every queue kind for N minutes, RSS sampled");
  soak_cmd->add_option("--minutes", soak.minutes, "How long to run (fractions allowed)")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  CLI::Option* first_seed_opt =
      soak_cmd->add_option("--first-seed", soak.first_seed, "Seed of the first schedule");
  soak_cmd->add_option("--seed", soak.seed, "Run only this seed (a failure's repro)")
      ->excludes(first_seed_opt);
  soak_cmd->add_option("--rss-growth-mib", soak.rss_growth_mib,
                       "RSS growth allowed after the warm-up quarter")
      ->check(CLI::Range(0.0, 1e6))
      ->capture_default_str();
  soak_cmd->add_option("--json", soak.json, "Write the summary to this file as JSON");
  bool soak_no_progress = false;
  soak_cmd->add_flag("--no-progress", soak_no_progress, "No progress line");

  // NATS JetStream (tools/ingest_nats.h): --source switches ingest from files to a stream.
  conveyor::tools::NatsIngestOptions nats;
  CLI::Option* source_opt = ingest_cmd->add_option(
      "--source", nats.connect.url, "NATS server(s), nats://HOST:PORT[,...]: ingest a JetStream stream");
  ingest_cmd->add_option("--stream", nats.stream, "JetStream stream (with --source)")
      ->needs(source_opt);
  ingest_cmd->add_option("--consumer", nats.consumer,
                         "Durable pull consumer, shared by every process naming it (with --source)")
      ->needs(source_opt);
  ingest_cmd->add_option("--filter-subject", nats.filter_subject,
                         "Only this subject of the stream (when the consumer is created)")
      ->needs(source_opt);
  ingest_cmd->add_option("--ack", nats.ack,
                         "on_consumed (at least once: ack after the batch was handled) or "
                         "on_enqueue (at most once: ack when queued)")
      ->check(CLI::IsMember({"on_consumed", "on_enqueue"}))
      ->capture_default_str()
      ->needs(source_opt);
  add_bounded(ingest_cmd, "--lanes", nats.lanes, "Fetching runner threads (pull subscriptions)", 1,
              64);
  add_bounded(ingest_cmd, "--fetch-batch", nats.fetch_batch, "Messages per fetch", 1, 1 << 16);
  add_bounded(ingest_cmd, "--max-in-flight", nats.max_in_flight,
              "Messages fetched and not yet released, at most (0: capacity + 4 "
              "batches + lanes x fetch batch)",
              0, 1 << 30);
  add_bounded(ingest_cmd, "--ack-wait-ms", nats.ack_wait_ms,
              "Redelivery of unacked messages after this (when the consumer is created)", 1,
              std::int64_t{1} << 40);
  add_bounded(ingest_cmd, "--idle-exit-ms", nats.idle_exit_ms,
              "End once no message came for this long (0: run until stopped)", 0,
              std::int64_t{1} << 40);
  add_bounded(ingest_cmd, "--unavailable-ms", nats.unavailable_ms,
              "Fail when the server was unreachable for this long", 1, std::int64_t{1} << 40);
  add_bounded(ingest_cmd, "--work-us", nats.work_us, "Simulated work per batch, microseconds", 0,
              60'000'000);
  ingest_cmd->add_option("--record", nats.record,
                         "Append 'sequence deliveries' per handled message to this file");
  CLI::Option* sink_opt = ingest_cmd->add_option(
      "--sink", nats.sink_url, "Publish every handled message to this NATS server's JetStream");
  ingest_cmd->add_option("--sink-subject", nats.sink_subject, "Subject of the sink")
      ->needs(sink_opt);
  sink_opt->needs(ingest_cmd->get_option("--sink-subject"));
  // Credentials and TLS for --source and --sink (passed to the client; never printed).
  auto add_credentials = [](CLI::App* cmd, conveyor::jetstream::ConnectOptions& c) {
    cmd->add_option("--user", c.user, "NATS user");
    cmd->add_option("--password", c.password, "NATS password");
    cmd->add_option("--token", c.token, "NATS token");
    cmd->add_option("--creds", c.creds_file, "NATS credentials file (JWT + NKey)");
    cmd->add_flag("--tls", c.tls, "Require TLS");
    cmd->add_option("--tls-ca", c.ca_file, "CA certificates (PEM)");
    cmd->add_option("--tls-cert", c.cert_file, "Client certificate (PEM)");
    cmd->add_option("--tls-key", c.key_file, "Client key (PEM)");
  };
  add_credentials(ingest_cmd, nats.connect);

  conveyor::tools::PublishOptions publish;
  CLI::App* publish_cmd =
      app.add_subcommand("publish", "Load a NATS JetStream stream (created if missing)");
  publish_cmd->add_option("--server", publish.connect.url, "NATS server(s), nats://HOST:PORT")
      ->required();
  publish_cmd->add_option("--stream", publish.stream, "Stream (subjects '<stream>.>')")
      ->required();
  publish_cmd->add_option("--subject", publish.subject, "Subject (default '<stream>.data')");
  add_bounded(publish_cmd, "--count", publish.count, "Messages", 0, std::int64_t{1} << 40);
  add_bounded(publish_cmd, "--size", publish.size, "Payload bytes (at least the index's digits)", 1,
              1 << 20);
  add_bounded(publish_cmd, "--max-outstanding", publish.max_outstanding,
              "Publish acks outstanding at most", 1, 1 << 20);
  publish_cmd->add_flag("--memory", publish.memory, "Memory storage when creating the stream");
  add_credentials(publish_cmd, publish.connect);

  TopoOptions topo;
  CLI::App* topo_cmd = app.add_subcommand(
      "topo", "Topology tree and a placement plan for producer and consumer threads");
  CLI::Option* synthetic_opt =
      topo_cmd->add_option("--synthetic", topo.synthetic,
                           "hwloc synthetic topology, e.g. 'pack:2 numa:2 core:4 pu:2'");
  CLI::Option* xml_opt =
      topo_cmd->add_option("--xml", topo.xml, "hwloc XML export (lstopo --of xml)");
  synthetic_opt->excludes(xml_opt);
  add_bounded(topo_cmd, "--producers", topo.producers, "Producer threads per queue", 1, 4096);
  add_bounded(topo_cmd, "--consumers", topo.consumers, "Consumer threads per queue", 1, 4096);
  add_bounded(topo_cmd, "--queues", topo.queues, "Queues", 1, 4096);
  topo_cmd
      ->add_option("--policy", topo.policy,
                   "none, compact, scatter, numa_local or explicit (default: explicit with "
                   "--pus, else none)")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            try {
              (void)conveyor::topology::parse_policy(text);
              return {};
            } catch (const conveyor::topology::Error& e) {
              return e.what();
            }
          },
          "POLICY"));
  topo_cmd->add_flag("--smt", topo.smt, "Use SMT siblings (hardware threads sharing a core)");
  topo_cmd
      ->add_option("--pus", topo.pus,
                   "Logical PUs, one per thread in plan order (q0 producers, q0 consumers, q1 "
                   "...), comma-separated")
      ->delimiter(',')
      ->check(integer_in(0, 1 << 20));
  topo_cmd->add_flag("--json", topo.json, "Print one JSON document instead of text");

  conveyor::tools::perf::Options perf;
  CLI::App* perf_cmd = app.add_subcommand(
      "perf", "Perf harness: Conveyor vs peer queues over scenarios, threads and placements");
  conveyor::tools::perf::add_options(*perf_cmd, perf);

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);  // prints the help of the subcommand asked about; exit code 0
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "conveyor %s: %s\n", argv[1], e.what());
    std::fprintf(stderr, "run `conveyor %s --help` for its options\n", argv[1]);
    return kExitUsage;
  }

  try {
    if (*demo_cmd) return conveyor::tools::run_demo(demo);
    // Both ingest forms (files and --source) fill one ShuffleQueue (B1).
    if (*ingest_cmd && ingest.min_after_dequeue >= ingest.capacity) {
      std::fprintf(stderr, "conveyor ingest: --min-after-dequeue %lld must be < --capacity %lld\n",
                   static_cast<long long>(ingest.min_after_dequeue),
                   static_cast<long long>(ingest.capacity));
      return kExitUsage;
    }
    if (*ingest_cmd && source_opt->count() > 0) {
      if (nats.stream.empty() || nats.consumer.empty()) {
        std::fprintf(stderr, "conveyor ingest: --source needs --stream and --consumer\n");
        return kExitUsage;
      }
      nats.batch_size = ingest.batch_size;
      nats.capacity = ingest.capacity;
      nats.min_after_dequeue = ingest.min_after_dequeue;
      nats.seed = ingest.seed;
      nats.json = ingest.json;
      nats.progress = !no_progress;
      return conveyor::tools::run_ingest_nats(nats);
    }
    if (*publish_cmd) return conveyor::tools::run_publish(publish);
    if (*ingest_cmd) {
      ingest.progress = !no_progress;
      return conveyor::tools::run_ingest(ingest);
    }
    if (*soak_cmd) {
      soak.progress = !soak_no_progress;
      return conveyor::tools::run_soak(soak);
    }
    if (*topo_cmd) return run_topo(topo);
    namespace ttrace = conveyor::tools::trace;
    if (*record_cmd) {
      return ttrace::run_record(tr.output, static_cast<std::size_t>(tr.events), tr.command);
    }
    if (*report_cmd || *export_cmd) {
      ttrace::Trace t;
      try {
        t = ttrace::read_trace(tr.file);
      } catch (const conveyor::Error& e) {
        std::fprintf(stderr, "conveyor trace: %s\n", e.what());
        return kExitUsage;  // the file named on the command line is missing or not a trace
      }
      if (*report_cmd) {
        const ttrace::Report r = ttrace::analyze(t, static_cast<std::size_t>(tr.top));
        if (!tr.html.empty()) {
          std::FILE* f = std::fopen(tr.html.c_str(), "wb");
          const std::string page = ttrace::report_html(r, t);
          const bool ok = f != nullptr && std::fwrite(page.data(), 1, page.size(), f) == page.size();
          if (f == nullptr || std::fclose(f) != 0 || !ok) {
            std::fprintf(stderr, "conveyor trace report: --html '%s': cannot be written\n",
                         tr.html.c_str());
            return kExitUsage;
          }
          std::fprintf(stderr, "conveyor trace report: wrote %s\n", tr.html.c_str());
        } else if (tr.json) {
          std::printf("%s\n", ttrace::report_json(r, t).dump(2).c_str());
        } else {
          std::printf("%s", ttrace::report_text(r, t).c_str());
        }
        return kExitOk;
      }
      const std::string out = export_cmd->count("--output") != 0 ? tr.output : tr.file + ".json";
      std::FILE* f = std::fopen(out.c_str(), "wb");
      if (f == nullptr) {
        std::fprintf(stderr, "conveyor trace export: --output '%s': cannot be written\n",
                     out.c_str());
        return kExitUsage;
      }
      const std::string text = ttrace::export_perfetto(t).dump();
      const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
      if (std::fclose(f) != 0 || !ok) {
        std::fprintf(stderr, "conveyor trace export: writing '%s' failed\n", out.c_str());
        return kExitWrong;
      }
      std::fprintf(stderr,
                   "conveyor trace export: %s (open it in ui.perfetto.dev or chrome://tracing)\n",
                   out.c_str());
      return kExitOk;
    }
    if (*perf_cmd) {
      std::string command = "conveyor";
      for (int i = 1; i < argc; ++i) command += std::string(" ") + argv[i];
      return conveyor::tools::perf::run(perf, command);
    }
  } catch (const conveyor::tools::perf::UsageError& e) {
    std::fprintf(stderr, "conveyor %s: %s\n", argv[1], e.what());
    return kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "conveyor %s: %s\n", argv[1], e.what());
    return kExitWrong;
  }
  print_usage(stderr);
  return kExitUsage;
}
