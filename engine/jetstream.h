// JetStream source and sink: NATS JetStream (a durable, replicated log) feeding Conveyor queues
// and receiving their output, so several Conveyor processes on several hosts share one stream.
// A separate library (conveyor_nats, links Debian's libnats); nothing in conveyor_engine uses it.
//
// Contract:
//  - Connection: one NATS connection (cnats `natsConnection` + a JetStream context), shared by
//    the sources and sinks made from it. connect() fails with Unavailable naming the URL (the
//    credentials are never part of a message: describe() strips a URL's user:password@). The
//    client reconnects by itself after a server restart; sources ride that out (below).
//    Credentials and TLS (user/password, token, .creds file, CA, client certificate) are passed
//    to the client as they are.
//  - Source: a durable *pull* consumer on a stream. Each lane (one per runner thread) has its own
//    pull subscription bound to the same durable consumer, so lanes, processes and hosts split
//    the stream's messages between them (the server hands each message to one puller at a
//    time). A lane's run() fetches one batch and enqueues it into any Conveyor queue of Message
//    (FifoQueue<Message>, ShuffleQueue<Message>) with enqueue_many, blocking while the queue is
//    full: a full queue slows fetching (back-pressure). An empty stream never busy-spins: a
//    fetch blocks up to fetch_wait in the client, and a lane at its in-flight bound sleeps on a
//    futex until messages are released.
//  - In flight: messages fetched and not yet destroyed (in the lane, a queue, or a consumer's
//    hands) never exceed max_in_flight per Source, so memory stays flat whatever the stream
//    holds. It must exceed what the queue can hold plus what consumers keep, or fetching stalls.
//  - Ack modes (JetStream's explicit acks, "+ACK" / "-NAK" to the message's reply subject):
//      kOnEnqueue   a message is acked once enqueue_many has put it into the queue: at most
//                   once across a crash (a process killed with acked messages still queued
//                   loses them).
//      kOnConsumed  a message is acked by the consumer after it has handled it (Message::ack(),
//                   ack_all(batch)): at least once; a crash before the ack makes the server
//                   redeliver after the consumer's ack_wait.
//    Either way a message is never acked before it was delivered (to the queue, or to the
//    consumer): a message that is destroyed unacked (not enqueued at a stop, still queued when
//    the pipeline is torn down) is nak'ed, so the server redelivers it at once to whoever pulls.
//  - Redeliveries: a message delivered more than once (JetStream's delivery count > 1) is
//    counted in stats().redelivered; Message::deliveries() tells.
//  - Ending: a lane throws OutOfRange (the runner's closed kind: the last lane closes the queue,
//    D5) once `idle_exit` passes with no message for it, if set; Unavailable when the server was
//    unreachable for longer than `unavailable_after`; Cancelled/closed queue statuses as
//    queue_error(). With a coordinator, a stop ends blocked enqueues (D7's cancel op) and the
//    lane naks what it had fetched but not enqueued.
//  - Sink: publishes with JetStream async publish, at most max_outstanding acks outstanding (the
//    client stalls a publish while that many are pending). A negative publish ack or an ack not
//    back within ack_timeout is recorded as the sink's error (Unavailable or DeadlineExceeded,
//    naming the subject) and handed to the coordinator (request_stop); the next publish or
//    flush rethrows it.
// Thread-safety: Connection, Source and Sink may be used from any thread; one lane is run by one
//   thread at a time. A Message belongs to whoever holds it.
// Memory ordering: the in-flight counter (Link::in_flight) is seq_cst on both sides with the
//   waiter count (a Dekker pair: a releaser that does not see the waiter was seen by it).
//
// Reference: NATS JetStream consumers and acknowledgements
//   (https://docs.nats.io/nats-concepts/jetstream/consumers); ADR-15 "JetStream Subject
//   Naming" for the reply subject that carries the stream sequence and delivery count.
#pragma once

#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/coordinator.h"
#include "engine/deadline.h"
#include "engine/fifo_queue.h"
#include "engine/queue_errors.h"
#include "engine/queue_runner.h"
#include "engine/session.h"
#include "engine/status.h"

namespace conveyor::jetstream {

enum class AckMode : std::uint8_t { kOnEnqueue, kOnConsumed };

std::string_view to_string(AckMode mode) noexcept;
// "on_enqueue" / "on_consumed"; anything else -> InvalidArgument naming "ack".
AckMode parse_ack_mode(std::string_view text);

// ---- connection ----

struct ConnectOptions {
  std::string url = "nats://127.0.0.1:4222";  // comma-separated for several servers
  std::string name = "conveyor";              // the client name the server shows
  // Passed to the client as they are; never logged.
  std::string user, password, token;
  std::string creds_file;  // a NATS .creds file (JWT + NKey seed)
  bool tls = false;        // require TLS (also implied by a tls:// URL)
  std::string ca_file, cert_file, key_file;
  std::chrono::milliseconds connect_timeout{2000};
  std::chrono::milliseconds reconnect_wait{100};
  int max_reconnect = -1;  // -1: keep trying forever
};

// `url` without any user:password@ part (what messages and logs may show).
std::string redact_url(std::string_view url);

namespace internal {
struct ConnState;
}

class Connection {
 public:
  // Unavailable "cannot connect to nats://host:port: <client's reason>".
  static Connection connect(const ConnectOptions& options);

  natsConnection* nats() const noexcept;
  jsCtx* js() const noexcept;
  const std::string& describe() const noexcept;  // the redacted URL
  // Sends everything buffered (acks included) and waits for the server's answer.
  void flush(std::chrono::milliseconds timeout) const;

 private:
  std::shared_ptr<internal::ConnState> state_;
};

// ---- stream and consumer set-up ----

struct StreamConfig {
  std::string name;
  std::vector<std::string> subjects;  // empty: {name + ".>"}
  bool memory = false;                // memory storage instead of files
};
// Creates the stream if it does not exist (an existing one is used as it is).
void ensure_stream(const Connection& c, const StreamConfig& config);

struct ConsumerConfig {
  std::string stream;
  std::string durable;
  std::string filter_subject;  // empty: the whole stream
  std::chrono::milliseconds ack_wait{30000};  // redelivery of an unacked message after this
  std::int64_t max_ack_pending = 65536;       // the server's own in-flight bound per consumer
};
// Creates the durable pull consumer if it does not exist; an existing one is used as it is (so
// several processes may call this with the same names). FailedPrecondition naming a stream that
// does not exist.
void ensure_consumer(const Connection& c, const ConsumerConfig& config);

struct ConsumerState {
  std::uint64_t num_pending = 0;      // not yet delivered
  std::uint64_t num_ack_pending = 0;  // delivered, not acked
  std::uint64_t num_redelivered = 0;
  std::uint64_t ack_floor = 0;        // stream sequence below which everything is acked
};
ConsumerState consumer_state(const Connection& c, const std::string& stream,
                             const std::string& durable);

// ---- messages ----

namespace internal {
class Link;
// Stream sequence and delivery count from a JetStream reply subject (ADR-15, both the
// 9-token "$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>" and the
// 12-token form with domain and account hash). False if `reply` is neither.
bool parse_ack_subject(std::string_view reply, std::uint64_t& sequence,
                       std::uint64_t& deliveries) noexcept;
}  // namespace internal

// One record of the stream: bytes + subject + stream sequence. Move-only; owns the client's
// message. Destroying an unacked kOnConsumed message naks it.
class Message {
 public:
  Message() noexcept = default;
  Message(Message&& other) noexcept { steal(other); }
  Message& operator=(Message&& other) noexcept {
    if (this != &other) {
      reset();
      steal(other);
    }
    return *this;
  }
  ~Message() { reset(); }

  explicit operator bool() const noexcept { return msg_ != nullptr; }
  std::string_view data() const noexcept;
  std::string_view subject() const noexcept;
  std::uint64_t sequence() const noexcept { return sequence_; }      // in the stream
  std::uint64_t deliveries() const noexcept { return deliveries_; }  // 1 on first delivery

  // kOnConsumed: acks now (the consumer has handled it); idempotent. kOnEnqueue: no-op (the
  // source acked it when it was enqueued).
  void ack() noexcept;

 private:
  friend class Source;
  Message(natsMsg* msg, internal::Link* link, std::uint64_t sequence,
          std::uint64_t deliveries) noexcept
      : msg_(msg), link_(link), sequence_(sequence), deliveries_(deliveries) {}
  void steal(Message& other) noexcept;
  void reset() noexcept;  // naks if unsettled, destroys the client's message, releases the link
  void nak() noexcept;

  natsMsg* msg_ = nullptr;
  internal::Link* link_ = nullptr;
  std::uint64_t sequence_ = 0;
  std::uint64_t deliveries_ = 0;
  bool settled_ = false;  // acked or nak'ed (or acked by the source, kOnEnqueue)
};

// Acks every message of a batch the consumer has handled (kOnConsumed).
void ack_all(std::span<Message> batch) noexcept;

// ---- source ----

struct SourceOptions {
  ConsumerConfig consumer;
  AckMode ack = AckMode::kOnConsumed;
  int fetch_batch = 256;             // messages asked for per fetch
  std::int64_t max_in_flight = 8192;
  std::chrono::milliseconds fetch_wait{250};  // longest block of one fetch on an empty stream
  std::chrono::milliseconds idle_exit{0};     // > 0: OutOfRange after this long without messages
  std::chrono::milliseconds unavailable_after{30000};
};

struct SourceStats {
  std::uint64_t fetch_calls = 0;  // fetches asked of the server
  std::uint64_t fetched = 0;
  std::uint64_t enqueued = 0;
  std::uint64_t acked = 0;      // by the source (kOnEnqueue) or by consumers (kOnConsumed)
  std::uint64_t nacked = 0;
  std::uint64_t redelivered = 0;  // messages whose delivery count was > 1
  std::uint64_t reconnect_waits = 0;  // fetches that failed because the server was away
  std::int64_t in_flight = 0;
  std::int64_t max_in_flight_seen = 0;
};

class Source {
 public:
  // Makes sure the durable consumer exists (ensure_consumer) and binds `lanes` pull
  // subscriptions to it. `coord` (may be null, must outlive the source) is waited on instead of
  // sleeping while the server is away. InvalidArgument for lanes < 1, fetch_batch < 1,
  // max_in_flight < fetch_batch.
  Source(Connection connection, SourceOptions options, int lanes = 1,
         Coordinator* coord = nullptr);
  ~Source();
  Source(const Source&) = delete;
  Source& operator=(const Source&) = delete;

  int lanes() const noexcept { return static_cast<int>(lanes_.size()); }
  const SourceOptions& options() const noexcept { return options_; }
  SourceStats stats() const noexcept;

  // One run of lane `lane`'s enqueue op: fetch a batch, enqueue it (blocking while `queue` is
  // full), settle it per ack mode. Throws as the contract says.
  template <class Queue>
  void run(int lane, Queue& queue) {
    std::span<Message> batch = fetch(lane);
    if (batch.empty()) return;
    const BulkResult r = queue.enqueue_many(batch, Deadline::never());
    settle(lane, r.count);
    if (r.status != Status::kOk) {
      throw queue_error(r.status, QueueOp::kEnqueue, queue.name(), batch.size(),
                        queue.size_approx(), "queue");
    }
  }

  // The lane's fetch: up to fetch_batch messages, fewer at the in-flight bound; empty when the
  // stream had nothing within fetch_wait (or the server is away). The span stays valid until
  // settle(lane, ...).
  std::span<Message> fetch(int lane);
  // After enqueueing the first `enqueued` messages of the last fetch: kOnEnqueue acks them;
  // the rest (not enqueued) are nak'ed.
  void settle(int lane, std::size_t enqueued) noexcept;

 private:
  struct Lane;
  void wait_for_room(Deadline deadline);
  void pause(std::chrono::milliseconds d) const;

  Connection connection_;
  const SourceOptions options_;
  Coordinator* const coord_;
  internal::Link* link_;  // shared with every live Message; freed by the last of them
  std::vector<std::unique_ptr<Lane>> lanes_;
};

// Registers one enqueue op per lane of `source` feeding `queue` and a QueueRunner for them in
// `session` (threads start with session.start_queue_runners(&coord)). Returns the runner.
template <class Queue>
QueueRunner add_source_runner(Session& session, std::shared_ptr<Source> source,
                              std::shared_ptr<Queue> queue) {
  std::vector<std::string> ops;
  for (int lane = 0; lane < source->lanes(); ++lane) {
    ops.push_back(session.add_unique_op(queue->name() + "/jetstream_fetch",
                                        [source, queue, lane] { source->run(lane, *queue); }));
  }
  QueueRunner runner(queue->name(), std::move(ops));
  session.add_queue_runner(runner);
  return runner;
}

// ---- sink ----

struct SinkOptions {
  std::string subject;                         // where publish(data) goes
  std::int64_t max_outstanding = 4096;         // publish acks outstanding at most
  std::chrono::milliseconds ack_timeout{5000};  // a publish ack later than this is an error
};

class Sink {
 public:
  // `coord` (may be null, must outlive the sink) receives the first publish error.
  Sink(Connection connection, SinkOptions options, Coordinator* coord = nullptr);
  ~Sink();
  Sink(const Sink&) = delete;
  Sink& operator=(const Sink&) = delete;

  // Queues one message for publishing; blocks while max_outstanding acks are pending (up to
  // ack_timeout, then DeadlineExceeded). Rethrows a recorded error.
  void publish(std::string_view data) { publish(options_.subject, data); }
  void publish(const std::string& subject, std::string_view data);
  // Waits until every publish is acked; DeadlineExceeded after `timeout`; rethrows a recorded
  // error.
  void flush(std::chrono::milliseconds timeout);

  std::uint64_t published() const noexcept { return published_.load(std::memory_order_relaxed); }
  std::uint64_t acked() const noexcept { return acked_.load(std::memory_order_relaxed); }
  std::exception_ptr error() const;

 private:
  static void on_ack(jsCtx* js, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure);
  void record(std::exception_ptr e);
  void throw_if_failed() const;

  Connection connection_;
  const SinkOptions options_;
  Coordinator* const coord_;
  jsCtx* js_ = nullptr;
  // Counters only (nothing is published through them): relaxed.
  std::atomic<std::uint64_t> published_{0};
  std::atomic<std::uint64_t> acked_{0};
  std::atomic<bool> failed_{false};  // R: set after error_ is written (release); read acquire
  mutable std::mutex mu_;            // guards error_ (written once, by the client's thread)
  std::exception_ptr error_;
};

}  // namespace conveyor::jetstream
