// jetstream_bench: messages/s from a NATS JetStream stream through Conveyor (jetstream::Source
// -> ShuffleQueue<Message> -> batches of 128 taken by one consumer that acks them) against the
// NATS C client's own plain pull loop (natsSubscription_Fetch, ack every message), on one host.
//
// Setup: a nats-server with JetStream on a free loopback port and a temporary store
// (tests/nats_server.h), one memory stream loaded with --messages messages of --size bytes.
// Every run creates a fresh durable pull consumer (deliver all, explicit acks) and consumes the
// whole stream: the window runs from the first fetch to the last ack flushed to the server.
// Checksum: the run fails unless it handled exactly --messages messages whose stream sequences
// sum to n(n+1)/2.
//
// Variants: plain_pull (one thread: fetch 256, ack each, destroy), conveyor_1lane and
// conveyor_2lanes (Source with 1 or 2 runner threads, fetch 256, on_consumed acks; ShuffleQueue
// capacity 4096, min_after_dequeue 1024; the consumer takes dequeue_up_to(128)). Interleaved:
// for rep: for variant (order rotating each rep), so each variant sees the same machine state.
//
// Output: one JSON document (--json=PATH, default stdout) {"context": ..., "runs": [{variant,
// rep, messages, seconds, messages_per_second, cpu_seconds}]}, read by make_perf.py
// --jetstream. Flags: --messages=N (200000) --size=B (64) --reps=N (7) --json=PATH.
#include <sys/resource.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/coordinator.h"
#include "engine/jetstream.h"
#include "engine/session.h"
#include "engine/shuffle_queue.h"
#include "tests/nats_server.h"

namespace {

using conveyor::jetstream::Connection;
using conveyor::jetstream::Message;
using Clock = std::chrono::steady_clock;

struct Config {
  std::int64_t messages = 200000;
  std::int64_t size = 64;
  int reps = 7;
  std::string json;
};

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

struct Result {
  std::int64_t messages = 0;
  std::uint64_t sequence_sum = 0;
  double seconds = 0;
};

conveyor::jetstream::ConsumerConfig consumer(const std::string& durable) {
  conveyor::jetstream::ConsumerConfig c;
  c.stream = "BENCH";
  c.durable = durable;
  c.max_ack_pending = 1 << 20;
  return c;
}

Result plain_pull(const Connection& conn, const std::string& durable, std::int64_t n) {
  conveyor::jetstream::ensure_consumer(conn, consumer(durable));
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = "BENCH";
  so.Consumer = durable.c_str();
  natsSubscription* sub = nullptr;
  if (js_PullSubscribe(&sub, conn.js(), "", durable.c_str(), nullptr, &so, nullptr) != NATS_OK) {
    throw std::runtime_error("pull subscribe failed");
  }
  Result r;
  const auto start = Clock::now();
  while (r.messages < n) {
    natsMsgList list{nullptr, 0};
    const natsStatus s = natsSubscription_Fetch(&list, sub, 256, 1000, nullptr);
    if (s == NATS_TIMEOUT) continue;
    if (s != NATS_OK) throw std::runtime_error(natsStatus_GetText(s));
    for (int i = 0; i < list.Count; ++i) {
      jsMsgMetaData* meta = nullptr;
      if (natsMsg_GetMetaData(&meta, list.Msgs[i]) == NATS_OK) {
        r.sequence_sum += meta->Sequence.Stream;
        jsMsgMetaData_Destroy(meta);
      }
      natsMsg_Ack(list.Msgs[i], nullptr);
    }
    r.messages += list.Count;
    natsMsgList_Destroy(&list);
  }
  conn.flush(std::chrono::milliseconds(10000));
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  natsSubscription_Destroy(sub);
  return r;
}

Result through_conveyor(const Connection& conn, const std::string& durable, int lanes,
                        std::int64_t n) {
  conveyor::Coordinator coord;
  conveyor::jetstream::SourceOptions o;
  o.consumer = consumer(durable);
  o.ack = conveyor::jetstream::AckMode::kOnConsumed;
  o.fetch_batch = 256;
  o.max_in_flight = 4096 + 4 * 128 + lanes * 256;
  o.fetch_wait = std::chrono::milliseconds(100);
  auto source = std::make_shared<conveyor::jetstream::Source>(conn, o, lanes, &coord);
  Result r;
  conveyor::Session session;
  auto queue = session.shuffle_queue<Message>(4096, 1024, 1, "bench");
  conveyor::jetstream::add_source_runner(session, source, queue);
  const auto start = Clock::now();
  conveyor::RunnerThreads threads = session.start_queue_runners(&coord);
  std::vector<Message> batch;
  for (;;) {
    batch.clear();
    const conveyor::Status s =
        queue->dequeue_up_to(128, batch, conveyor::Deadline::after(std::chrono::milliseconds(20)));
    if (s == conveyor::Status::kClosed && batch.empty()) break;
    if (batch.empty()) {
      // The tail: min_after_dequeue keeps it in the queue while the queue is open. Once every
      // message was fetched, close (kDrain, waiting at most 1 ms behind the lane's last
      // enqueue_many) and drain.
      if (source->stats().fetched >= static_cast<std::uint64_t>(n)) {
        (void)queue->close(conveyor::CloseMode::kDrain,
                           conveyor::Deadline::after(std::chrono::milliseconds(1)));
      }
      continue;
    }
    for (const Message& m : batch) r.sequence_sum += m.sequence();
    conveyor::jetstream::ack_all(batch);
    r.messages += static_cast<std::int64_t>(batch.size());
  }
  batch.clear();
  conn.flush(std::chrono::milliseconds(10000));
  r.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  coord.request_stop();
  coord.join();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  Config cfg;
  std::string command = "build/release/bench/jetstream_bench";
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    command += " ";
    command += a;
    auto value = [&](std::string_view flag) -> const char* {
      return a.substr(0, flag.size()) == flag ? argv[i] + flag.size() : nullptr;
    };
    if (const char* v = value("--messages=")) {
      cfg.messages = std::atoll(v);
    } else if (const char* v = value("--size=")) {
      cfg.size = std::atoll(v);
    } else if (const char* v = value("--reps=")) {
      cfg.reps = std::atoi(v);
    } else if (const char* v = value("--json=")) {
      cfg.json = v;
    } else {
      std::fprintf(stderr, "jetstream_bench: unknown flag '%s'\n", argv[i]);
      return 2;
    }
  }
  if (cfg.messages < 2000 || cfg.size < 8 || cfg.reps < 1) {
    std::fprintf(stderr, "jetstream_bench: need --messages >= 2000, --size >= 8, --reps >= 1\n");
    return 2;
  }

  conveyor::testing::NatsServer server;
  conveyor::jetstream::ConnectOptions connect;
  connect.url = server.url();
  Connection conn = Connection::connect(connect);
  conveyor::jetstream::ensure_stream(conn, {"BENCH", {}, true});
  {
    conveyor::jetstream::SinkOptions so;
    so.subject = "BENCH.data";
    conveyor::jetstream::Sink sink(conn, so);
    std::string payload;
    for (std::int64_t i = 1; i <= cfg.messages; ++i) {
      payload = std::to_string(i);
      payload.resize(static_cast<std::size_t>(cfg.size), '.');
      sink.publish(payload);
    }
    sink.flush(std::chrono::seconds(60));
  }
  const std::uint64_t want_sum =
      static_cast<std::uint64_t>(cfg.messages) * static_cast<std::uint64_t>(cfg.messages + 1) / 2;

  const std::vector<std::string> variants = {"plain_pull", "conveyor_1lane", "conveyor_2lanes"};
  nlohmann::ordered_json runs = nlohmann::ordered_json::array();
  bool ok = true;
  for (int rep = 0; rep < cfg.reps; ++rep) {
    for (std::size_t k = 0; k < variants.size(); ++k) {
      const std::string& v = variants[(k + static_cast<std::size_t>(rep)) % variants.size()];
      const std::string durable = "b" + std::to_string(rep) + "_" + v;
      const double cpu0 = cpu_seconds();
      const Result r = v == "plain_pull"       ? plain_pull(conn, durable, cfg.messages)
                       : v == "conveyor_1lane" ? through_conveyor(conn, durable, 1, cfg.messages)
                                               : through_conveyor(conn, durable, 2, cfg.messages);
      const double cpu = cpu_seconds() - cpu0;
      const bool good = r.messages == cfg.messages && r.sequence_sum == want_sum;
      ok = ok && good;
      std::fprintf(stderr, "rep %d %-16s %8.0f messages/s  (%.3f s, cpu %.3f s)%s\n", rep,
                   v.c_str(), r.messages / r.seconds, r.seconds, cpu,
                   good ? "" : "  CHECKSUM FAILED");
      runs.push_back({{"variant", v},
                      {"rep", rep},
                      {"messages", r.messages},
                      {"seconds", r.seconds},
                      {"messages_per_second", r.messages / r.seconds},
                      {"cpu_seconds", cpu},
                      {"checksum_ok", good}});
      js_DeleteConsumer(conn.js(), "BENCH", durable.c_str(), nullptr, nullptr);
    }
  }
  std::string load;
  {
    std::ifstream in("/proc/loadavg");
    std::getline(in, load);
  }
  nlohmann::ordered_json doc = {
      {"context",
       {{"command", command},
        {"messages", cfg.messages},
        {"size", cfg.size},
        {"reps", cfg.reps},
        {"nats_client", NATS_VERSION_STRING},
        {"loadavg_after", load}}},
      {"runs", runs}};
  if (cfg.json.empty()) {
    std::printf("%s\n", doc.dump(1).c_str());
  } else {
    std::ofstream(cfg.json) << doc.dump(1) << "\n";
  }
  return ok ? 0 : 1;
}
