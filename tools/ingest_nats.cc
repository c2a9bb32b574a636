#include "tools/ingest_nats.h"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/coordinator.h"
#include "engine/jetstream.h"
#include "engine/session.h"
#include "engine/shuffle_queue.h"

namespace conveyor::tools {
namespace {

using Clock = std::chrono::steady_clock;
using jetstream::Message;

std::string error_text(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& err) {
    return err.what();
  } catch (...) {
    return "unknown error";
  }
}

// SIGINT / SIGTERM become a coordinator stop: blocked in every thread (the mask is inherited,
// so it is set before the client's and the runners' threads exist) and taken by one thread
// with sigtimedwait, which polls `done_` between waits.
class StopOnSignal {
 public:
  StopOnSignal() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, &old_);
  }
  ~StopOnSignal() {
    done_.store(true, std::memory_order_relaxed);  // a flag only: joined below
    if (thread_.joinable()) thread_.join();
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  void watch(Coordinator& coord) {
    thread_ = std::thread([this, &coord] {
      const timespec tick{0, 200'000'000};
      while (!done_.load(std::memory_order_relaxed)) {
        const int sig = sigtimedwait(&set_, nullptr, &tick);
        if (sig == SIGINT || sig == SIGTERM) {
          std::fprintf(stderr, "conveyor ingest: %s: stopping (draining what is queued)\n",
                       sig == SIGINT ? "SIGINT" : "SIGTERM");
          coord.request_stop();
          return;
        }
      }
    });
  }

 private:
  sigset_t set_{};
  sigset_t old_{};
  std::atomic<bool> done_{false};
  std::thread thread_;
};

}  // namespace

int run_ingest_nats(const NatsIngestOptions& o) {
  const jetstream::AckMode ack = jetstream::parse_ack_mode(o.ack);
  Coordinator coord;
  StopOnSignal signals;  // before any thread exists; stops watching before coord dies
  jetstream::Connection conn = jetstream::Connection::connect(o.connect);
  std::optional<jetstream::Connection> sink_conn;
  if (!o.sink_url.empty()) {
    jetstream::ConnectOptions so = o.connect;
    so.url = o.sink_url;
    sink_conn = so.url == o.connect.url ? conn : jetstream::Connection::connect(so);
  }

  jetstream::SourceOptions so;
  so.consumer.stream = o.stream;
  so.consumer.durable = o.consumer;
  so.consumer.filter_subject = o.filter_subject;
  so.consumer.ack_wait = std::chrono::milliseconds(o.ack_wait_ms);
  so.ack = ack;
  so.fetch_batch = o.fetch_batch;
  so.max_in_flight = o.max_in_flight > 0
                         ? o.max_in_flight
                         : o.capacity + 4 * o.batch_size + std::int64_t{o.lanes} * o.fetch_batch;
  so.idle_exit = std::chrono::milliseconds(o.idle_exit_ms);
  so.unavailable_after = std::chrono::milliseconds(o.unavailable_ms);
  if (so.max_in_flight <= o.min_after_dequeue + o.batch_size) {
    throw invalid_argument("--max-in-flight", so.max_in_flight,
                           "must be > --min-after-dequeue + --batch-size (" +
                               std::to_string(o.min_after_dequeue + o.batch_size) +
                               "), or the consumer could never take a batch");
  }
  auto source = std::make_shared<jetstream::Source>(conn, so, o.lanes, &coord);

  std::unique_ptr<jetstream::Sink> sink;
  if (sink_conn) {
    jetstream::SinkOptions sink_options;
    sink_options.subject = o.sink_subject;
    sink_options.max_outstanding = o.sink_max_outstanding;
    sink = std::make_unique<jetstream::Sink>(*sink_conn, sink_options, &coord);
  }
  std::FILE* record = nullptr;
  if (!o.record.empty()) {
    record = std::fopen(o.record.c_str(), "a");
    if (record == nullptr) throw invalid_argument("--record", "'" + o.record + "'", "cannot be written");
  }

  std::fprintf(stderr,
               "conveyor ingest: %s stream '%s' consumer '%s', %d lanes, ack %s, max in flight "
               "%" PRId64 "\n",
               conn.describe().c_str(), o.stream.c_str(), o.consumer.c_str(), o.lanes,
               o.ack.c_str(), so.max_in_flight);

  std::uint64_t messages = 0, redelivered_seen = 0, batches = 0;
  std::exception_ptr consumer_error;
  const auto start = Clock::now();
  {
    Session session;
    auto queue = session.shuffle_queue<Message>(o.capacity, o.min_after_dequeue, o.seed,
                                                "records");
    jetstream::add_source_runner(session, source, queue);
    RunnerThreads threads = session.start_queue_runners(&coord);
    signals.watch(coord);

    std::vector<Message> batch;
    for (;;) {
      // After an error, stop handling: what is left is nak'ed when the queue dies.
      if (coord.should_stop() && coord.recorded_error()) break;
      batch.clear();
      const Status s = queue->dequeue_up_to(static_cast<std::size_t>(o.batch_size), batch);
      if (s == Status::kClosed) break;  // every lane ended (or a stop) and the queue is drained
      if (s != Status::kOk) {
        consumer_error = std::make_exception_ptr(
            queue_error(s, QueueOp::kDequeue, queue->name(), o.batch_size, 0,
                        "RandomShuffleQueue"));
        break;
      }
      try {
        if (o.work_us > 0) std::this_thread::sleep_for(std::chrono::microseconds(o.work_us));
        if (record != nullptr) {
          for (const Message& m : batch) {
            std::fprintf(record, "%" PRIu64 " %" PRIu64 "\n", m.sequence(), m.deliveries());
          }
          std::fflush(record);  // in the kernel before the ack: survives a SIGKILL
        }
        if (sink) {
          for (const Message& m : batch) sink->publish(m.data());
          // on_consumed is at least once end to end: ack the input after its output is stored.
          if (ack == jetstream::AckMode::kOnConsumed) sink->flush(std::chrono::seconds(30));
        }
      } catch (...) {
        consumer_error = std::current_exception();
        coord.request_stop(consumer_error);
        break;
      }
      for (const Message& m : batch) redelivered_seen += m.deliveries() > 1 ? 1 : 0;
      jetstream::ack_all(batch);
      messages += batch.size();
      ++batches;
    }
    batch.clear();
    coord.request_stop();
    try {
      coord.join({}, std::chrono::seconds(30));
    } catch (...) {
      if (!consumer_error) consumer_error = std::current_exception();
    }
  }  // the queue dies here: what it still holds is nak'ed (kOnConsumed)
  if (sink && !consumer_error) {
    try {
      sink->flush(std::chrono::seconds(30));
    } catch (...) {
      consumer_error = std::current_exception();
    }
  }
  if (record != nullptr) std::fclose(record);
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  try {
    conn.flush(std::chrono::milliseconds(5000));  // the last acks reach the server
  } catch (...) {
    if (!consumer_error) consumer_error = std::current_exception();
  }
  const jetstream::SourceStats st = source->stats();
  std::printf("nats ingest: %" PRIu64 " messages in %" PRIu64 " batches, %.3f s = %.0f messages/s\n",
              messages, batches, seconds, seconds > 0 ? messages / seconds : 0.0);
  std::printf("fetched %" PRIu64 ", redelivered %" PRIu64 " (handled here: %" PRIu64
              "), acked %" PRIu64 ", nak'ed %" PRIu64 ", max in flight %" PRId64
              ", fetches while the server was away %" PRIu64 "\n",
              st.fetched, st.redelivered, redelivered_seen, st.acked, st.nacked,
              st.max_in_flight_seen, st.reconnect_waits);
  if (sink) {
    std::printf("sink: %" PRIu64 " published, %" PRIu64 " acked\n", sink->published(),
                sink->acked());
  }
  if (consumer_error) {
    std::fprintf(stderr, "conveyor ingest: %s\n", error_text(consumer_error).c_str());
  }
  if (!o.json.empty()) {
    nlohmann::ordered_json doc = {
        {"source", conn.describe()},
        {"stream", o.stream},
        {"consumer", o.consumer},
        {"ack", o.ack},
        {"lanes", o.lanes},
        {"messages", messages},
        {"batches", batches},
        {"seconds", seconds},
        {"messages_per_second", seconds > 0 ? messages / seconds : 0.0},
        {"fetched", st.fetched},
        {"redelivered", st.redelivered},
        {"acked", st.acked},
        {"nacked", st.nacked},
        {"max_in_flight_seen", st.max_in_flight_seen},
        {"reconnect_waits", st.reconnect_waits},
        {"error", consumer_error ? error_text(consumer_error) : ""},
    };
    std::ofstream out(o.json);
    out << doc.dump(1) << "\n";
    if (!out) throw invalid_argument("--json", "'" + o.json + "'", "cannot be written");
  }
  return consumer_error ? 1 : 0;
}

int run_publish(const PublishOptions& o) {
  jetstream::Connection conn = jetstream::Connection::connect(o.connect);
  jetstream::ensure_stream(conn, jetstream::StreamConfig{o.stream, {}, o.memory});
  jetstream::SinkOptions so;
  so.subject = o.subject.empty() ? o.stream + ".data" : o.subject;
  so.max_outstanding = o.max_outstanding;
  jetstream::Sink sink(conn, so);
  const auto start = Clock::now();
  std::string payload;
  for (std::int64_t i = 1; i <= o.count; ++i) {
    payload = std::to_string(i);
    if (static_cast<std::int64_t>(payload.size()) < o.size) {
      payload.resize(static_cast<std::size_t>(o.size), '.');
    }
    sink.publish(payload);
  }
  sink.flush(std::chrono::seconds(60));
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::printf("published %" PRId64 " messages of %" PRId64 " bytes to '%s' on %s in %.3f s = %.0f "
              "messages/s\n",
              o.count, o.size, so.subject.c_str(), conn.describe().c_str(), seconds,
              seconds > 0 ? o.count / seconds : 0.0);
  return 0;
}

}  // namespace conveyor::tools
