// engine/jetstream.h against a real nats-server with JetStream, started by this test on a free
// loopback port with a temporary store (tests/nats_server.h). Sources feed Conveyor queues
// through queue runners (D3-D7), sinks publish; every test proves what was acked, nak'ed and
// redelivered through the server's own consumer state.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "engine/coordinator.h"
#include "engine/fifo_queue.h"
#include "engine/jetstream.h"
#include "engine/session.h"
#include "engine/shuffle_queue.h"
#include "tests/nats_server.h"
#include "tests/test_errors.h"

namespace conveyor::jetstream {
namespace {

using std::chrono::milliseconds;
using testutil::message_of;
using testutil::thrown_by;

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
constexpr int kMessages = 600;
#else
constexpr int kMessages = 3000;
#endif

// One server for the whole binary (each test uses its own stream).
testing::NatsServer& server() {
  static testing::NatsServer s;
  return s;
}

Connection connect() {
  ConnectOptions o;
  o.url = server().url();
  return Connection::connect(o);
}

// Makes stream `name` (subjects "<name>.>") holding `n` messages "<name>.data" with payload
// "m<i>", published through a Sink.
void fill(const Connection& c, const std::string& name, int n) {
  ensure_stream(c, StreamConfig{name, {}, true});
  SinkOptions so;
  so.subject = name + ".data";
  so.max_outstanding = 256;
  Sink sink(c, so);
  for (int i = 1; i <= n; ++i) sink.publish("m" + std::to_string(i));
  sink.flush(milliseconds(20000));
  EXPECT_EQ(sink.acked(), static_cast<std::uint64_t>(n));
}

// The consumer's state once the server has applied the acks it received (it applies them
// asynchronously, after the flush that proves they arrived): polled until the ack floor reaches
// `floor`, up to 20 s.
ConsumerState state_at(const Connection& c, const std::string& stream, std::uint64_t floor) {
  c.flush(milliseconds(5000));
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  ConsumerState st = consumer_state(c, stream, "workers");
  while (st.ack_floor < floor && std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(milliseconds(10));  // a poll of the server's state
    st = consumer_state(c, stream, "workers");
  }
  return st;
}

SourceOptions source_options(const std::string& stream, AckMode ack) {
  SourceOptions o;
  o.consumer.stream = stream;
  o.consumer.durable = "workers";
  o.ack = ack;
  o.fetch_batch = 64;
  o.max_in_flight = 512;
  o.fetch_wait = milliseconds(100);
  o.idle_exit = milliseconds(600);
  return o;
}

TEST(JetStreamUnit, ParsesBothAckSubjectForms) {
  std::uint64_t seq = 0, deliveries = 0;
  ASSERT_TRUE(internal::parse_ack_subject("$JS.ACK.S.C.2.17.9.1700000000000000000.5", seq,
                                          deliveries));
  EXPECT_EQ(seq, 17u);
  EXPECT_EQ(deliveries, 2u);
  ASSERT_TRUE(internal::parse_ack_subject(
      "$JS.ACK.dom.ACCHASH.S.C.1.42.40.1700000000000000000.0.xyz", seq, deliveries));
  EXPECT_EQ(seq, 42u);
  EXPECT_EQ(deliveries, 1u);
  EXPECT_FALSE(internal::parse_ack_subject("_INBOX.abc", seq, deliveries));
  EXPECT_FALSE(internal::parse_ack_subject("$JS.ACK.S.C.x.17.9.1.5", seq, deliveries));
}

TEST(JetStreamUnit, UrlsAreRedactedAndBadAckModesNamed) {
  EXPECT_EQ(redact_url("nats://alice:s3cret@h1:4222,nats://h2:4222,tls://tok@h3:1"),
            "nats://h1:4222,nats://h2:4222,tls://h3:1");
  EXPECT_EQ(parse_ack_mode("on_enqueue"), AckMode::kOnEnqueue);
  EXPECT_ERROR(parse_ack_mode("sometimes"), ErrorKind::kInvalidArgument, "ack = 'sometimes'");
}

TEST(JetStreamUnit, ConnectFailureIsUnavailableAndNeverShowsThePassword) {
  ConnectOptions o;
  o.url = "nats://alice:s3cret@127.0.0.1:" + std::to_string(testing::free_loopback_port());
  o.connect_timeout = milliseconds(500);
  const std::exception_ptr e = thrown_by([&] { (void)Connection::connect(o); });
  ASSERT_TRUE(e);
  EXPECT_EQ(kind_of(e), ErrorKind::kUnavailable);
  EXPECT_NE(message_of(e).find("cannot connect to nats://127.0.0.1:"), std::string::npos);
  EXPECT_EQ(message_of(e).find("s3cret"), std::string::npos);
}

TEST(JetStreamUnit, MissingStreamIsFailedPrecondition) {
  Connection c = connect();
  EXPECT_ERROR(Source(c, source_options("NOSUCH", AckMode::kOnConsumed)),
               ErrorKind::kFailedPrecondition, "stream 'NOSUCH' does not exist");
}

// The pipeline as a user runs it: two runner threads (lanes) feed a FifoQueue; one consumer
// acks every batch it handled. The idle exit ends the lanes (OutOfRange, D5: the last closes
// the queue), the consumer drains. Every message exactly once, all acked, none pending.
TEST(JetStream, OnConsumedDeliversEveryMessageExactlyOnceAndAcksAll) {
  Connection c = connect();
  fill(c, "ONCE", kMessages);
  Coordinator coord;
  Session session;
  auto queue = session.fifo_queue<Message>(128, "records");
  auto source = std::make_shared<Source>(c, source_options("ONCE", AckMode::kOnConsumed), 2,
                                         &coord);
  add_source_runner(session, source, queue);
  RunnerThreads threads = session.start_queue_runners(&coord);

  std::vector<int> seen(kMessages + 1, 0);
  std::vector<Message> batch;
  for (;;) {
    const Status s = queue->dequeue_up_to(32, batch);
    if (s == Status::kClosed) break;
    ASSERT_EQ(s, Status::kOk);
    for (const Message& m : batch) {
      ASSERT_GE(m.sequence(), 1u);
      ASSERT_LE(m.sequence(), static_cast<std::uint64_t>(kMessages));
      EXPECT_EQ(m.data(), "m" + std::to_string(m.sequence()));
      EXPECT_EQ(m.subject(), "ONCE.data");
      ++seen[m.sequence()];
    }
    ack_all(batch);
    batch.clear();
  }
  coord.request_stop();  // the close_on_stop thread waits for it (D7)
  coord.join();
  for (int i = 1; i <= kMessages; ++i) ASSERT_EQ(seen[i], 1) << "sequence " << i;
  const ConsumerState st = state_at(c, "ONCE", kMessages);
  EXPECT_EQ(st.ack_floor, static_cast<std::uint64_t>(kMessages));
  EXPECT_EQ(st.num_ack_pending, 0u);
  EXPECT_EQ(st.num_pending, 0u);
  const SourceStats stats = source->stats();
  EXPECT_EQ(stats.acked, static_cast<std::uint64_t>(kMessages));
  EXPECT_EQ(stats.nacked, 0u);
  EXPECT_EQ(stats.redelivered, 0u);
  EXPECT_LE(stats.max_in_flight_seen, 512);
}

// Back-pressure and the stop: nobody consumes a queue of 8, so the lane blocks in
// enqueue_many with at most one batch fetched beyond the queue. A stop cancels it (D7); the
// messages it did not enqueue are nak'ed, and when the queue dies its messages are nak'ed too:
// nothing was acked, everything is redelivered.
TEST(JetStream, FullQueueStopsFetchingAndStopAcksNothingUndelivered) {
  Connection c = connect();
  fill(c, "FULL", 200);
  Coordinator coord;
  SourceOptions o = source_options("FULL", AckMode::kOnConsumed);
  o.fetch_batch = 4;
  o.idle_exit = milliseconds(0);
  auto source = std::make_shared<Source>(c, o, 1, &coord);
  {
    Session session;
    auto queue = session.fifo_queue<Message>(8, "small");
    add_source_runner(session, source, queue);
    RunnerThreads threads = session.start_queue_runners(&coord);
    while (queue->waiting_producers_approx() == 0 || queue->size_approx() < 8) {
      std::this_thread::yield();  // wait for the lane to block on the full queue
    }
    const SourceStats blocked = source->stats();
    EXPECT_LE(blocked.fetched, 8u + 4u);
    EXPECT_GE(blocked.fetched, 8u);
    coord.request_stop();
    coord.join();
    EXPECT_EQ(source->stats().acked, 0u);
  }  // the session and its queue die: their messages are nak'ed
  const SourceStats stats = source->stats();
  EXPECT_EQ(stats.nacked, stats.fetched);
  EXPECT_EQ(stats.in_flight, 0);
  c.flush(milliseconds(5000));
  const ConsumerState st = consumer_state(c, "FULL", "workers");
  EXPECT_EQ(st.ack_floor, 0u);

  // Redelivered (the naks make it immediate) and counted as such.
  Source again(c, source_options("FULL", AckMode::kOnConsumed));
  std::uint64_t redelivered = 0;
  std::vector<std::uint64_t> sequences;
  while (sequences.size() < stats.fetched) {
    std::span<Message> got = again.fetch(0);
    for (Message& m : got) {
      sequences.push_back(m.sequence());
      if (m.deliveries() > 1) ++redelivered;
      m.ack();
    }
    again.settle(0, got.size());
  }
  EXPECT_EQ(again.stats().redelivered, redelivered);
  EXPECT_GE(redelivered, stats.fetched);
}

// kOnEnqueue acks exactly what enqueue_many put into the queue: a partial enqueue (deadline)
// acks the first part and naks the rest, which comes back with a delivery count of 2.
TEST(JetStream, OnEnqueueAcksOnlyWhatWasEnqueued) {
  Connection c = connect();
  fill(c, "ENQ", 40);
  SourceOptions o = source_options("ENQ", AckMode::kOnEnqueue);
  o.fetch_batch = 16;
  Source source(c, o);
  ShuffleQueue<Message> queue(10, 0, 7, "shuffled");
  std::span<Message> batch = source.fetch(0);
  ASSERT_EQ(batch.size(), 16u);
  const BulkResult r = queue.enqueue_many(batch, Deadline::now());
  EXPECT_EQ(r.count, 10u);
  source.settle(0, r.count);
  c.flush(milliseconds(5000));
  EXPECT_EQ(source.stats().acked, 10u);
  EXPECT_EQ(source.stats().nacked, 6u);
  const ConsumerState st = state_at(c, "ENQ", 10);
  EXPECT_EQ(st.ack_floor, 10u);  // the six nak'ed stay pending until redelivered

  // Consumer-side ack() is a no-op in this mode; the queued ten stay acked.
  std::vector<Message> out;
  ASSERT_EQ(queue.dequeue_up_to(10, out), Status::kOk);
  ack_all(out);
  EXPECT_EQ(source.stats().acked, 10u);

  std::span<Message> next = source.fetch(0);
  ASSERT_FALSE(next.empty());
  EXPECT_EQ(next[0].sequence(), 11u);
  EXPECT_EQ(next[0].deliveries(), 2u);
  source.settle(0, 0);
}

// An empty stream never makes a lane spin: each fetch blocks in the client for up to fetch_wait
// (100 ms), or, while the server's JetStream is still starting, fails and pauses 100 ms. The
// client may end a poll early now and then (seen: 10 fetches in 645 ms), so the bound allows
// twice the nominal count: elapsed / 50 ms + 4. A spinning lane would make thousands.
TEST(JetStream, EmptyStreamBlocksInFetchInsteadOfSpinning) {
  Connection c = connect();
  ensure_stream(c, StreamConfig{"EMPTY", {}, true});
  Source source(c, source_options("EMPTY", AckMode::kOnConsumed));
  FifoQueue<Message> queue(4, "empty");
  const auto start = std::chrono::steady_clock::now();
  const std::exception_ptr e = thrown_by([&] {
    for (;;) source.run(0, queue);
  });
  const auto elapsed = std::chrono::duration_cast<milliseconds>(
      std::chrono::steady_clock::now() - start);
  EXPECT_EQ(kind_of(e), ErrorKind::kOutOfRange);
  EXPECT_NE(message_of(e).find("idle exit"), std::string::npos);
  const SourceStats st = source.stats();
  EXPECT_LE(st.fetch_calls, static_cast<std::uint64_t>(elapsed.count() / 50 + 4))
      << "elapsed " << elapsed.count() << " ms, fetches while the server was away "
      << st.reconnect_waits;
}

// max_in_flight bounds the messages alive: with a bound of 32 and a consumer that holds what it
// takes until the bound is reached, the lane stops fetching; releasing them lets it go on.
TEST(JetStream, MaxInFlightBoundsLiveMessages) {
  Connection c = connect();
  fill(c, "BOUND", 100);
  SourceOptions o = source_options("BOUND", AckMode::kOnConsumed);
  o.fetch_batch = 8;
  o.max_in_flight = 32;
  Source source(c, o);
  FifoQueue<Message> queue(1000, "bound");
  std::vector<Message> held;
  while (source.stats().in_flight < 32) {
    source.run(0, queue);
    Message m;
    while (queue.try_dequeue(m) == Status::kOk) held.push_back(std::move(m));
  }
  EXPECT_EQ(source.fetch(0).size(), 0u);  // at the bound: waits fetch_wait, fetches nothing
  source.settle(0, 0);
  EXPECT_EQ(source.stats().max_in_flight_seen, 32);
  ack_all(held);
  held.clear();
  EXPECT_EQ(source.stats().in_flight, 0);
  EXPECT_EQ(source.fetch(0).size(), 8u);
  source.settle(0, 0);
}

// A publish the server refuses (no stream takes the subject) is the sink's error, handed to
// the coordinator: Unavailable naming the subject; flush rethrows it.
TEST(JetStream, SinkPublishErrorStopsTheCoordinator) {
  Connection c = connect();
  Coordinator coord;
  SinkOptions so;
  so.subject = "nowhere.data";
  so.ack_timeout = milliseconds(2000);
  Sink sink(c, so, &coord);
  sink.publish("lost");
  const std::exception_ptr e = thrown_by([&] { sink.flush(milliseconds(5000)); });
  ASSERT_TRUE(e);
  EXPECT_NE(message_of(e).find("'nowhere.data'"), std::string::npos);
  EXPECT_TRUE(coord.should_stop());
  ASSERT_TRUE(coord.recorded_error());
  EXPECT_EQ(kind_of(coord.recorded_error()), kind_of(e));
  EXPECT_TRUE(kind_of(e) == ErrorKind::kUnavailable || kind_of(e) == ErrorKind::kDeadlineExceeded)
      << message_of(e);
  EXPECT_THROW(sink.publish("after"), Error);
}

}  // namespace
}  // namespace conveyor::jetstream
