// JetStream connection, set-up and source (engine/jetstream.h); the sink is jetstream_sink.cc.
#include "engine/jetstream.h"

#include <algorithm>
#include <charconv>
#include <optional>
#include <thread>
#include <utility>

#include "engine/internal/futex.h"
#include "engine/internal/nats_status.h"

namespace conveyor::jetstream {

using internal::nats_error;

std::string_view to_string(AckMode mode) noexcept {
  return mode == AckMode::kOnEnqueue ? "on_enqueue" : "on_consumed";
}

AckMode parse_ack_mode(std::string_view text) {
  if (text == "on_enqueue") return AckMode::kOnEnqueue;
  if (text == "on_consumed") return AckMode::kOnConsumed;
  throw invalid_argument("ack", "'" + std::string(text) + "'",
                         "expected on_enqueue or on_consumed");
}

std::string redact_url(std::string_view url) {
  std::string out;
  std::size_t start = 0;
  while (start <= url.size()) {  // each comma-separated URL on its own
    std::size_t end = url.find(',', start);
    if (end == std::string_view::npos) end = url.size();
    std::string_view one = url.substr(start, end - start);
    const std::size_t scheme = one.find("://");
    const std::size_t host_from = scheme == std::string_view::npos ? 0 : scheme + 3;
    const std::size_t at = one.find('@', host_from);
    if (!out.empty()) out += ',';
    if (at == std::string_view::npos) {
      out += one;
    } else {
      out += one.substr(0, host_from);
      out += one.substr(at + 1);
    }
    start = end + 1;
  }
  return out;
}

// ---- connection ----

namespace internal {

struct ConnState {
  natsConnection* nc = nullptr;
  jsCtx* js = nullptr;
  std::string url;  // redacted
  ~ConnState() {
    if (js != nullptr) jsCtx_Destroy(js);
    if (nc != nullptr) {
      // Acks and naks are buffered publishes: send them before closing.
      (void)natsConnection_FlushTimeout(nc, 2000);
      natsConnection_Destroy(nc);
    }
  }
};

}  // namespace internal

namespace {

struct OptionsGuard {
  natsOptions* o = nullptr;
  ~OptionsGuard() { natsOptions_Destroy(o); }
};

void check(natsStatus s, std::string_view what) {
  if (s != NATS_OK) throw nats_error(what, s);
}

std::vector<std::string> split_urls(std::string_view url) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (start <= url.size()) {
    std::size_t end = url.find(',', start);
    if (end == std::string_view::npos) end = url.size();
    if (end > start) out.emplace_back(url.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

}  // namespace

Connection Connection::connect(const ConnectOptions& options) {
  const std::string shown = redact_url(options.url);
  const std::vector<std::string> urls = split_urls(options.url);
  if (urls.empty()) throw invalid_argument("url", "''", "expected nats://HOST:PORT");
  OptionsGuard g;
  check(natsOptions_Create(&g.o), "nats options");
  std::vector<const char*> servers;
  for (const std::string& u : urls) servers.push_back(u.c_str());
  check(natsOptions_SetServers(g.o, servers.data(), static_cast<int>(servers.size())),
        "url = '" + shown + "'");
  check(natsOptions_SetName(g.o, options.name.c_str()), "client name");
  check(natsOptions_SetTimeout(g.o, options.connect_timeout.count()), "connect timeout");
  check(natsOptions_SetMaxReconnect(g.o, options.max_reconnect), "max reconnect");
  check(natsOptions_SetReconnectWait(g.o, options.reconnect_wait.count()), "reconnect wait");
  // Credentials: their values never appear in a message.
  if (!options.user.empty()) {
    check(natsOptions_SetUserInfo(g.o, options.user.c_str(), options.password.c_str()),
          "user credentials");
  }
  if (!options.token.empty()) check(natsOptions_SetToken(g.o, options.token.c_str()), "token");
  if (!options.creds_file.empty()) {
    check(natsOptions_SetUserCredentialsFromFiles(g.o, options.creds_file.c_str(), nullptr),
          "credentials file");
  }
  if (options.tls) check(natsOptions_SetSecure(g.o, true), "tls");
  if (!options.ca_file.empty()) {
    check(natsOptions_LoadCATrustedCertificates(g.o, options.ca_file.c_str()),
          "tls CA file '" + options.ca_file + "'");
  }
  if (!options.cert_file.empty() || !options.key_file.empty()) {
    check(natsOptions_LoadCertificatesChain(g.o, options.cert_file.c_str(),
                                            options.key_file.c_str()),
          "tls certificate '" + options.cert_file + "'");
  }
  auto state = std::make_shared<internal::ConnState>();
  state->url = shown;
  const natsStatus s = natsConnection_Connect(&state->nc, g.o);
  if (s != NATS_OK) {
    state->nc = nullptr;
    throw nats_error(ErrorKind::kUnavailable, "cannot connect to " + shown, s);
  }
  check(natsConnection_JetStream(&state->js, state->nc, nullptr), "JetStream context");
  Connection c;
  c.state_ = std::move(state);
  return c;
}

natsConnection* Connection::nats() const noexcept { return state_->nc; }
jsCtx* Connection::js() const noexcept { return state_->js; }
const std::string& Connection::describe() const noexcept { return state_->url; }

void Connection::flush(std::chrono::milliseconds timeout) const {
  const natsStatus s = natsConnection_FlushTimeout(state_->nc, timeout.count());
  if (s != NATS_OK) throw nats_error("flush to " + state_->url, s);
}

// ---- stream and consumer set-up ----

void ensure_stream(const Connection& c, const StreamConfig& config) {
  if (config.name.empty()) throw invalid_argument("stream", "''", "must not be empty");
  jsStreamInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_GetStreamInfo(&info, c.js(), config.name.c_str(), nullptr, &code);
  if (s == NATS_OK) {
    jsStreamInfo_Destroy(info);
    return;
  }
  if (s != NATS_NOT_FOUND) throw nats_error("stream '" + config.name + "' info", s, code);
  std::vector<std::string> subjects = config.subjects;
  if (subjects.empty()) subjects.push_back(config.name + ".>");
  std::vector<const char*> subject_ptrs;
  for (const std::string& subject : subjects) subject_ptrs.push_back(subject.c_str());
  jsStreamConfig cfg;
  jsStreamConfig_Init(&cfg);
  cfg.Name = config.name.c_str();
  cfg.Subjects = subject_ptrs.data();
  cfg.SubjectsLen = static_cast<int>(subject_ptrs.size());
  cfg.Storage = config.memory ? js_MemoryStorage : js_FileStorage;
  s = js_AddStream(&info, c.js(), &cfg, nullptr, &code);
  if (s == NATS_OK) {
    jsStreamInfo_Destroy(info);
    return;
  }
  if (code == JSStreamNameExistErr) return;  // another process made it first
  throw nats_error("add stream '" + config.name + "'", s, code);
}

void ensure_consumer(const Connection& c, const ConsumerConfig& config) {
  if (config.durable.empty()) throw invalid_argument("consumer", "''", "must not be empty");
  if (config.durable.find('.') != std::string::npos) {
    throw invalid_argument("consumer", "'" + config.durable + "'", "must not contain '.'");
  }
  const std::string which = "consumer '" + config.stream + "'/'" + config.durable + "'";
  jsConsumerInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  natsStatus s = js_GetConsumerInfo(&info, c.js(), config.stream.c_str(),
                                    config.durable.c_str(), nullptr, &code);
  if (s == NATS_OK) {
    jsConsumerInfo_Destroy(info);
    return;
  }
  if (code == JSStreamNotFoundErr) {
    throw Error(ErrorKind::kFailedPrecondition,
                "stream '" + config.stream + "' does not exist on " + c.describe());
  }
  if (s != NATS_NOT_FOUND) throw nats_error(which + " info", s, code);
  jsConsumerConfig cfg;
  jsConsumerConfig_Init(&cfg);
  cfg.Durable = config.durable.c_str();
  cfg.AckPolicy = js_AckExplicit;
  cfg.DeliverPolicy = js_DeliverAll;
  cfg.AckWait = std::chrono::duration_cast<std::chrono::nanoseconds>(config.ack_wait).count();
  cfg.MaxAckPending = config.max_ack_pending;
  if (!config.filter_subject.empty()) cfg.FilterSubject = config.filter_subject.c_str();
  s = js_AddConsumer(&info, c.js(), config.stream.c_str(), &cfg, nullptr, &code);
  if (s == NATS_OK) {
    jsConsumerInfo_Destroy(info);
    return;
  }
  if (code == JSConsumerNameExistErr || code == JSConsumerExistingActiveErr) return;
  if (code == JSStreamNotFoundErr) {
    throw Error(ErrorKind::kFailedPrecondition,
                "stream '" + config.stream + "' does not exist on " + c.describe());
  }
  throw nats_error("add " + which, s, code);
}

ConsumerState consumer_state(const Connection& c, const std::string& stream,
                             const std::string& durable) {
  jsConsumerInfo* info = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus s =
      js_GetConsumerInfo(&info, c.js(), stream.c_str(), durable.c_str(), nullptr, &code);
  if (s != NATS_OK) {
    throw nats_error("consumer '" + stream + "'/'" + durable + "' info", s, code);
  }
  ConsumerState state;
  state.num_pending = info->NumPending;
  state.num_ack_pending = static_cast<std::uint64_t>(info->NumAckPending);
  state.num_redelivered = static_cast<std::uint64_t>(info->NumRedelivered);
  state.ack_floor = info->AckFloor.Stream;
  jsConsumerInfo_Destroy(info);
  return state;
}

// ---- messages ----

namespace internal {

// What a Source shares with the messages it fetched: the ack mode, the in-flight count, the
// subscriptions (a message acks through its subscription) and the connection. Freed by whoever
// drops the last reference: the source holds one, each live message one.
class Link {
 public:
  Link(Connection c, AckMode mode) : connection(std::move(c)), mode(mode) {}
  ~Link() {
    for (natsSubscription* sub : subs) natsSubscription_Destroy(sub);
  }

  void acquire(std::uint32_t n) noexcept {
    // Relaxed: only counts; the messages themselves are published by the queue they go
    // through, and the link's fields are read-only after construction.
    refs.fetch_add(n, std::memory_order_relaxed);
    // W1: seq_cst, pairs with W2 in Source::wait_for_room (waiters, then in_flight).
    in_flight.fetch_add(n, std::memory_order_seq_cst);
  }

  void release() noexcept {
    // W3: seq_cst with the load below: either this decrement is seen by a waiter's re-check
    // (W2), or its increment of `waiters` is seen here and we wake it (Dekker).
    in_flight.fetch_sub(1, std::memory_order_seq_cst);
    if (waiters.load(std::memory_order_seq_cst) != 0) {
      conveyor::internal::futex_wake(in_flight, conveyor::internal::kWakeAll);
    }
    unref();
  }

  void unref() noexcept {
    // acq_rel: the last owner sees every other owner's writes before it destroys the link.
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  const Connection connection;
  const AckMode mode;
  std::vector<natsSubscription*> subs;  // one per lane; set up before any message exists
  // Messages alive (fetched, not destroyed); the futex word lanes sleep on at the bound.
  std::atomic<std::uint32_t> in_flight{0};
  // Lanes sleeping on in_flight.
  std::atomic<std::uint32_t> waiters{0};
  // Owners: the source (1) + live messages. Kept apart from in_flight so that a release can
  // wake after its decrement while the link is still certainly alive.
  std::atomic<std::uint32_t> refs{1};
  // Counters (relaxed: statistics only).
  std::atomic<std::uint64_t> acked{0};
  std::atomic<std::uint64_t> nacked{0};
};

namespace {

bool parse_u64(std::string_view token, std::uint64_t& out) noexcept {
  const auto [p, ec] = std::from_chars(token.data(), token.data() + token.size(), out);
  return ec == std::errc() && p == token.data() + token.size();
}

}  // namespace

bool parse_ack_subject(std::string_view reply, std::uint64_t& sequence,
                       std::uint64_t& deliveries) noexcept {
  std::string_view tokens[12];
  std::size_t n = 0;
  std::size_t start = 0;
  for (;;) {
    const std::size_t dot = reply.find('.', start);
    if (n == std::size(tokens)) return false;
    tokens[n++] = reply.substr(start, dot == std::string_view::npos ? dot : dot - start);
    if (dot == std::string_view::npos) break;
    start = dot + 1;
  }
  if (n < 9 || tokens[0] != "$JS" || tokens[1] != "ACK") return false;
  // 9 tokens: $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>;
  // 12 tokens: $JS.ACK.<domain>.<account hash>.<stream>.<consumer>.<delivered>.<sseq>...
  const std::size_t first = n == 9 ? 4 : n >= 11 ? 6 : 0;
  if (first == 0) return false;
  return parse_u64(tokens[first], deliveries) && parse_u64(tokens[first + 1], sequence);
}

}  // namespace internal

std::string_view Message::data() const noexcept {
  if (msg_ == nullptr) return {};
  return {natsMsg_GetData(msg_), static_cast<std::size_t>(natsMsg_GetDataLength(msg_))};
}

std::string_view Message::subject() const noexcept {
  if (msg_ == nullptr) return {};
  return natsMsg_GetSubject(msg_);
}

void Message::ack() noexcept {
  if (msg_ == nullptr || settled_ || link_->mode == AckMode::kOnEnqueue) return;
  settled_ = true;
  // A failure (connection gone) leaves the message unacked: the server redelivers it after
  // ack_wait, which is what at-least-once allows.
  if (natsMsg_Ack(msg_, nullptr) == NATS_OK) {
    link_->acked.fetch_add(1, std::memory_order_relaxed);
  }
}

void Message::nak() noexcept {
  if (msg_ == nullptr || settled_) return;
  settled_ = true;
  if (natsMsg_Nak(msg_, nullptr) == NATS_OK) {
    link_->nacked.fetch_add(1, std::memory_order_relaxed);
  }
}

void Message::steal(Message& other) noexcept {
  msg_ = std::exchange(other.msg_, nullptr);
  link_ = std::exchange(other.link_, nullptr);
  sequence_ = other.sequence_;
  deliveries_ = other.deliveries_;
  settled_ = other.settled_;
}

void Message::reset() noexcept {
  if (msg_ == nullptr) return;
  // kOnEnqueue messages were acked by the source when they were enqueued (or nak'ed by it when
  // they were not); kOnConsumed ones still unacked were never handled: let the server
  // redeliver them now rather than after ack_wait.
  if (link_->mode == AckMode::kOnConsumed) nak();
  natsMsg_Destroy(std::exchange(msg_, nullptr));
  std::exchange(link_, nullptr)->release();
}

void ack_all(std::span<Message> batch) noexcept {
  for (Message& m : batch) m.ack();
}

// ---- source ----

struct Source::Lane {
  natsSubscription* sub = nullptr;  // owned by the link
  std::vector<Message> batch;       // the last fetch, until settle()
  std::vector<std::string> replies;  // kOnEnqueue: reply subjects of `batch`, to ack after
  std::size_t replies_used = 0;
  Deadline::Clock::time_point last_activity = Deadline::Clock::now();
  std::optional<Deadline::Clock::time_point> away_since;  // first failed fetch of an outage
  natsStatus last_failure = NATS_OK;
  // Counters (relaxed: statistics only; several lanes run on several threads).
  std::atomic<std::uint64_t> fetch_calls{0};
  std::atomic<std::uint64_t> fetched{0};
  std::atomic<std::uint64_t> enqueued{0};
  std::atomic<std::uint64_t> redelivered{0};
  std::atomic<std::uint64_t> reconnect_waits{0};
  std::atomic<std::int64_t> max_in_flight_seen{0};
};

Source::Source(Connection connection, SourceOptions options, int lanes, Coordinator* coord)
    : connection_(std::move(connection)), options_(std::move(options)), coord_(coord) {
  if (lanes < 1) throw invalid_argument("lanes", lanes, "must be >= 1");
  if (options_.fetch_batch < 1) {
    throw invalid_argument("fetch_batch", options_.fetch_batch, "must be >= 1");
  }
  if (options_.max_in_flight < options_.fetch_batch || options_.max_in_flight > (1 << 30)) {
    throw invalid_argument("max_in_flight", options_.max_in_flight,
                           "must be >= fetch_batch (" + std::to_string(options_.fetch_batch) +
                               ") and <= 2^30");
  }
  if (options_.fetch_wait.count() < 1) {
    throw invalid_argument("fetch_wait", options_.fetch_wait.count(), "must be >= 1 ms");
  }
  ensure_consumer(connection_, options_.consumer);
  link_ = new internal::Link(connection_, options_.ack);
  try {
    for (int i = 0; i < lanes; ++i) {
      auto lane = std::make_unique<Lane>();
      jsSubOptions so;
      jsSubOptions_Init(&so);
      so.Stream = options_.consumer.stream.c_str();
      so.Consumer = options_.consumer.durable.c_str();
      jsErrCode code = static_cast<jsErrCode>(0);
      const natsStatus s =
          js_PullSubscribe(&lane->sub, connection_.js(), options_.consumer.filter_subject.c_str(),
                           options_.consumer.durable.c_str(), nullptr, &so, &code);
      if (s != NATS_OK) {
        throw nats_error("pull subscribe to consumer '" + options_.consumer.stream + "'/'" +
                             options_.consumer.durable + "'",
                         s, code);
      }
      link_->subs.push_back(lane->sub);
      lane->batch.reserve(static_cast<std::size_t>(options_.fetch_batch));
      lanes_.push_back(std::move(lane));
    }
  } catch (...) {
    link_->unref();
    throw;
  }
}

Source::~Source() {
  lanes_.clear();  // naks whatever a lane still holds
  link_->unref();
}

SourceStats Source::stats() const noexcept {
  SourceStats s;
  for (const auto& lane : lanes_) {
    s.fetch_calls += lane->fetch_calls.load(std::memory_order_relaxed);
    s.fetched += lane->fetched.load(std::memory_order_relaxed);
    s.enqueued += lane->enqueued.load(std::memory_order_relaxed);
    s.redelivered += lane->redelivered.load(std::memory_order_relaxed);
    s.reconnect_waits += lane->reconnect_waits.load(std::memory_order_relaxed);
    s.max_in_flight_seen =
        std::max(s.max_in_flight_seen, lane->max_in_flight_seen.load(std::memory_order_relaxed));
  }
  s.acked = link_->acked.load(std::memory_order_relaxed);
  s.nacked = link_->nacked.load(std::memory_order_relaxed);
  s.in_flight = link_->in_flight.load(std::memory_order_relaxed);
  return s;
}

void Source::wait_for_room(Deadline deadline) {
  const auto max = static_cast<std::uint32_t>(options_.max_in_flight);
  // W2: seq_cst increment before the re-check of in_flight, pairs with W3 in Link::release.
  link_->waiters.fetch_add(1, std::memory_order_seq_cst);
  for (;;) {
    const std::uint32_t now = link_->in_flight.load(std::memory_order_seq_cst);
    if (now < max) break;
    if (conveyor::internal::futex_wait(link_->in_flight, now, deadline) ==
        conveyor::internal::WaitResult::kTimedOut) {
      break;
    }
  }
  link_->waiters.fetch_sub(1, std::memory_order_seq_cst);
}

void Source::pause(std::chrono::milliseconds d) const {
  if (coord_ != nullptr) {
    (void)coord_->wait_for_stop(Deadline::after(d));
  } else {
    std::this_thread::sleep_for(d);
  }
}

std::span<Message> Source::fetch(int lane_index) {
  Lane& lane = *lanes_.at(static_cast<std::size_t>(lane_index));
  lane.batch.clear();
  lane.replies_used = 0;
  const auto now = [] { return Deadline::Clock::now(); };
  const auto max = static_cast<std::int64_t>(options_.max_in_flight);

  std::int64_t room = max - link_->in_flight.load(std::memory_order_seq_cst);
  if (room <= 0) {
    // At the bound: the pipeline is busy, not idle. Sleep until messages are released (or
    // fetch_wait passes, so the runner can look at the coordinator).
    lane.last_activity = now();
    wait_for_room(Deadline::after(options_.fetch_wait));
    room = max - link_->in_flight.load(std::memory_order_seq_cst);
    if (room <= 0) return {};
  }
  const int want = static_cast<int>(std::min<std::int64_t>(options_.fetch_batch, room));

  lane.fetch_calls.fetch_add(1, std::memory_order_relaxed);
  natsMsgList list{nullptr, 0};
  jsErrCode code = static_cast<jsErrCode>(0);
  const natsStatus s =
      natsSubscription_Fetch(&list, lane.sub, want, options_.fetch_wait.count(), &code);
  const auto t = now();
  if (s == NATS_OK) {
    const auto count = static_cast<std::uint32_t>(list.Count);
    link_->acquire(count);
    for (int i = 0; i < list.Count; ++i) {
      natsMsg* m = std::exchange(list.Msgs[i], nullptr);
      const char* reply = natsMsg_GetReply(m);
      std::uint64_t sequence = 0, deliveries = 1;
      if (reply == nullptr || !internal::parse_ack_subject(reply, sequence, deliveries)) {
        jsMsgMetaData* meta = nullptr;  // a reply subject of a form we do not know
        if (natsMsg_GetMetaData(&meta, m) == NATS_OK) {
          sequence = meta->Sequence.Stream;
          deliveries = meta->NumDelivered;
          jsMsgMetaData_Destroy(meta);
        }
      }
      if (deliveries > 1) lane.redelivered.fetch_add(1, std::memory_order_relaxed);
      if (options_.ack == AckMode::kOnEnqueue) {
        // Kept beside the batch: once enqueued, a message may be consumed and destroyed
        // before the source acks it. Strings are reused, so this allocates only while a
        // lane's subjects grow.
        if (lane.replies.size() <= lane.replies_used) lane.replies.emplace_back();
        lane.replies[lane.replies_used++].assign(reply == nullptr ? "" : reply);
      }
      lane.batch.push_back(Message(m, link_, sequence, deliveries));
    }
    natsMsgList_Destroy(&list);  // the array only: every message was taken
    lane.fetched.fetch_add(count, std::memory_order_relaxed);
    const auto seen = static_cast<std::int64_t>(link_->in_flight.load(std::memory_order_relaxed));
    if (seen > lane.max_in_flight_seen.load(std::memory_order_relaxed)) {
      lane.max_in_flight_seen.store(seen, std::memory_order_relaxed);
    }
    lane.last_activity = t;
    lane.away_since.reset();
    return lane.batch;
  }
  natsMsgList_Destroy(&list);
  if (s == NATS_TIMEOUT) {  // nothing within fetch_wait: the stream is empty for us
    lane.away_since.reset();
    if (options_.idle_exit.count() > 0 && t - lane.last_activity >= options_.idle_exit) {
      throw Error(ErrorKind::kOutOfRange,
                  "no message from consumer '" + options_.consumer.stream + "'/'" +
                      options_.consumer.durable + "' for " +
                      std::to_string(options_.idle_exit.count()) + " ms (idle exit)");
    }
    return {};
  }
  const std::string which = "fetch from consumer '" + options_.consumer.stream + "'/'" +
                            options_.consumer.durable + "' on " + connection_.describe();
  if (internal::is_permanent(s)) throw nats_error(which, s, code);
  // The server is away (restarting, failing over) or its JetStream is still recovering (it may
  // answer "no responders", "consumer not found" or a 503 for a while): the client reconnects
  // by itself. Wait without spinning, do not count it as idle, give up after
  // unavailable_after.
  if (!lane.away_since) lane.away_since = t;
  lane.last_failure = s;
  lane.reconnect_waits.fetch_add(1, std::memory_order_relaxed);
  if (t - *lane.away_since >= options_.unavailable_after) {
    throw nats_error(ErrorKind::kUnavailable,
                     which + ": unreachable for " +
                         std::to_string(options_.unavailable_after.count()) + " ms",
                     s, code);
  }
  lane.last_activity = t;
  pause(std::chrono::milliseconds(100));
  return {};
}

void Source::settle(int lane_index, std::size_t enqueued) noexcept {
  Lane& lane = *lanes_[static_cast<std::size_t>(lane_index)];
  if (options_.ack == AckMode::kOnEnqueue) {
    // The first `enqueued` messages are in the queue: ack them through their reply subjects
    // (the "+ACK" a natsMsg_Ack would send). A failed send leaves them unacked: redelivered.
    std::uint64_t acked = 0;
    for (std::size_t i = 0; i < enqueued && i < lane.replies_used; ++i) {
      if (natsConnection_Publish(connection_.nats(), lane.replies[i].c_str(), "+ACK", 4) ==
          NATS_OK) {
        ++acked;
      }
    }
    link_->acked.fetch_add(acked, std::memory_order_relaxed);
  }
  // The rest never reached the queue (a cancel at a stop, a closed queue): nak them.
  for (std::size_t i = enqueued; i < lane.batch.size(); ++i) lane.batch[i].nak();
  lane.enqueued.fetch_add(enqueued, std::memory_order_relaxed);
  lane.batch.clear();
  lane.replies_used = 0;
}

}  // namespace conveyor::jetstream
