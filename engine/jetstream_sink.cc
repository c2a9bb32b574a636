// JetStream sink (engine/jetstream.h): async publish with a bounded number of outstanding acks.
//
// The client keeps the pending publishes; its jsOptions.PublishAsync.MaxPending makes a publish
// stall (up to StallWait) while that many acks are outstanding, which is the bound. Every ack,
// positive or not, comes back on the client's own thread through on_ack(); jsPubOptions.MaxWait
// makes the client report an ack that does not come back in time as NATS_TIMEOUT there.
#include <utility>

#include "engine/internal/nats_status.h"
#include "engine/jetstream.h"

namespace conveyor::jetstream {

using internal::nats_error;

Sink::Sink(Connection connection, SinkOptions options, Coordinator* coord)
    : connection_(std::move(connection)), options_(std::move(options)), coord_(coord) {
  if (options_.max_outstanding < 1) {
    throw invalid_argument("max_outstanding", options_.max_outstanding, "must be >= 1");
  }
  if (options_.ack_timeout.count() < 1) {
    throw invalid_argument("ack_timeout", options_.ack_timeout.count(), "must be >= 1 ms");
  }
  jsOptions o;
  jsOptions_Init(&o);
  o.PublishAsync.MaxPending = options_.max_outstanding;
  o.PublishAsync.AckHandler = &Sink::on_ack;
  o.PublishAsync.AckHandlerClosure = this;
  o.PublishAsync.StallWait = options_.ack_timeout.count();
  o.Wait = options_.ack_timeout.count();
  const natsStatus s = natsConnection_JetStream(&js_, connection_.nats(), &o);
  if (s != NATS_OK) throw nats_error("JetStream context for the sink", s);
}

Sink::~Sink() {
  // Outstanding acks would call on_ack() on a destroyed sink: wait for them (bounded), then
  // drop the context (the client discards what is still pending).
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = options_.ack_timeout.count();
  (void)js_PublishAsyncComplete(js_, &po);
  jsCtx_Destroy(js_);
}

void Sink::publish(const std::string& subject, std::string_view data) {
  throw_if_failed();
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = options_.ack_timeout.count();  // an ack later than this -> on_ack(NATS_TIMEOUT)
  const natsStatus s = js_PublishAsync(js_, subject.c_str(), data.data(),
                                       static_cast<int>(data.size()), &po);
  if (s == NATS_TIMEOUT) {
    auto e = std::make_exception_ptr(Error(
        ErrorKind::kDeadlineExceeded,
        "publish to '" + subject + "' on " + connection_.describe() + ": " +
            std::to_string(options_.max_outstanding) + " acks outstanding for more than " +
            std::to_string(options_.ack_timeout.count()) + " ms"));
    record(e);
    std::rethrow_exception(e);
  }
  if (s != NATS_OK) {
    auto e = std::make_exception_ptr(
        nats_error("publish to '" + subject + "' on " + connection_.describe(), s));
    record(e);
    std::rethrow_exception(e);
  }
  // Relaxed: a statistic.
  published_.fetch_add(1, std::memory_order_relaxed);
}

void Sink::flush(std::chrono::milliseconds timeout) {
  throw_if_failed();
  jsPubOptions po;
  jsPubOptions_Init(&po);
  po.MaxWait = timeout.count();
  const natsStatus s = js_PublishAsyncComplete(js_, &po);
  throw_if_failed();  // an error reported while we waited comes first
  if (s == NATS_TIMEOUT) {
    auto e = std::make_exception_ptr(
        Error(ErrorKind::kDeadlineExceeded,
              "flush of sink '" + options_.subject + "' on " + connection_.describe() + ": " +
                  std::to_string(published() - acked()) + " publishes unacknowledged after " +
                  std::to_string(timeout.count()) + " ms"));
    record(e);
    std::rethrow_exception(e);
  }
  if (s != NATS_OK) {
    auto e = std::make_exception_ptr(nats_error("flush of sink '" + options_.subject + "'", s));
    record(e);
    std::rethrow_exception(e);
  }
}

std::exception_ptr Sink::error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return error_;
}

void Sink::record(std::exception_ptr e) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (error_) return;  // the first error wins, as in the coordinator (C4)
    error_ = e;
  }
  // R: pairs with the acquire in throw_if_failed(), which then reads error_ under the lock.
  failed_.store(true, std::memory_order_release);
  if (coord_ != nullptr) {
    try {
      coord_->request_stop(e);
    } catch (...) {
      // After join() a non-clean error is rethrown (C9): the sink keeps it for flush().
    }
  }
}

void Sink::throw_if_failed() const {
  if (!failed_.load(std::memory_order_acquire)) return;
  std::rethrow_exception(error());
}

void Sink::on_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
  auto* self = static_cast<Sink*>(closure);
  if (pa != nullptr) {
    self->acked_.fetch_add(1, std::memory_order_relaxed);  // a statistic
  } else if (pae != nullptr) {
    const std::string subject = natsMsg_GetSubject(msg) != nullptr ? natsMsg_GetSubject(msg) : "";
    const std::string what = "publish to '" + subject + "' on " + self->connection_.describe();
    Error e = pae->Err == NATS_TIMEOUT
                  ? Error(ErrorKind::kDeadlineExceeded,
                          what + ": no ack within " +
                              std::to_string(self->options_.ack_timeout.count()) + " ms")
                  : nats_error(pae->Err == NATS_NO_RESPONDERS || pae->Err == NATS_ERR
                                   ? ErrorKind::kUnavailable
                                   : internal::kind_of(pae->Err),
                               what + (pae->ErrText != nullptr &&
                                               std::string_view(pae->ErrText) !=
                                                   natsStatus_GetText(pae->Err)
                                           ? std::string(" (") + pae->ErrText + ")"
                                           : std::string()),
                               pae->Err, pae->ErrCode);
    self->record(std::make_exception_ptr(std::move(e)));
  }
  natsMsg_Destroy(msg);  // ours in either case (jsPubAckHandler's contract)
}

}  // namespace conveyor::jetstream
