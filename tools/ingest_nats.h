// `conveyor ingest --source nats://HOST:PORT --stream S --consumer C` and `conveyor publish`:
// the ingest job scaled past one machine through NATS JetStream (engine/jetstream.h).
//
//   JetStream stream S, durable pull consumer C (shared by every process that names it)
//     -> --lanes runner threads, each a pull subscription (jetstream::Source)
//     -> ShuffleQueue<Message> (capacity, min_after_dequeue)
//     -> one consumer taking batches (dequeue_up_to batch_size): optional simulated work,
//        optional --record file (one "sequence deliveries" line per message, written and flushed
//        before the ack), optional --sink (publish every message to a subject), then the ack
//        (--ack on_consumed) or nothing (--ack on_enqueue: the source acked at enqueue).
// Ends when every lane saw no message for --idle-exit-ms (OutOfRange; the last lane closes the
// queue and the consumer drains it), on SIGINT/SIGTERM (coordinator stop: lanes stop fetching,
// what they fetched and did not enqueue is nak'ed, the consumer drains the queue and acks what
// it handled), or on an error (the server gone longer than --unavailable-ms, a sink error: exit
// code 1; unhandled messages are nak'ed). Credentials are passed to the client, never printed.
//
// `conveyor publish --server URL --stream S [--subject S.data] --count N --size B` creates the
// stream if needed and loads it with N messages (payload: the index in decimal, padded to B
// bytes), through the sink (async publish, bounded outstanding acks).
#pragma once

#include <cstdint>
#include <string>

#include "engine/jetstream.h"

namespace conveyor::tools {

struct NatsIngestOptions {
  jetstream::ConnectOptions connect;  // url = --source
  std::string stream;
  std::string consumer;
  std::string filter_subject;
  std::string ack = "on_consumed";
  int lanes = 2;
  int fetch_batch = 256;
  std::int64_t max_in_flight = 0;  // 0: capacity + 4 batches + lanes x fetch_batch
  std::int64_t ack_wait_ms = 30000;  // only used when this process creates the consumer
  std::int64_t batch_size = 128;
  std::int64_t capacity = 4096;
  std::int64_t min_after_dequeue = 0;
  std::uint64_t seed = 1;
  std::int64_t idle_exit_ms = 2000;
  std::int64_t unavailable_ms = 30000;
  std::int64_t work_us = 0;  // simulated work per batch
  std::string record;        // append "sequence deliveries" per handled message
  std::string sink_url;      // empty: no sink
  std::string sink_subject;
  std::int64_t sink_max_outstanding = 4096;
  std::string json;
  bool progress = true;
};

int run_ingest_nats(const NatsIngestOptions& options);

struct PublishOptions {
  jetstream::ConnectOptions connect;
  std::string stream;
  std::string subject;  // empty: "<stream>.data"
  std::int64_t count = 100000;
  std::int64_t size = 64;
  std::int64_t max_outstanding = 4096;
  bool memory = false;
};

int run_publish(const PublishOptions& options);

}  // namespace conveyor::tools
