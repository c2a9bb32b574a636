// The randomized schedule tester (issue 7): one seed -> one run of producers, consumers, a closer
// and (sometimes) queue runners under a Coordinator, on one queue kind; then the checks.
//
// Used by tests/schedule_test.cc (a bounded number of seeds, every kind, TSan in CI) and by
// `conveyor soak` (tools/soak.cc: as many seeds as the user's minutes allow). No GoogleTest here.
//
// What a run draws from its seed (Plan, below): the queue kind (seed % kNumKinds), capacity
// (1..12), min_after_dequeue for shuffle queues, 1..3 producers and 1..3 consumers (one each
// for Spsc), 1..160 items per producer, whether producers are plain threads or the enqueue ops
// of a QueueRunner under a Coordinator, the way the run ends, and for every operation its kind
// (single, try_, enqueue_many / dequeue_many / dequeue_up_to of 1..2*capacity+1 elements) and
// whether it carries a deadline (0..400 us).
// Endings: kDrain (the last producer closes, or with runners the last runner thread runs the
// close op, D5), kEarlyDrain / kEarlyCancel (a closer thread calls close(kDrain) /
// close(kCancelPendingEnqueues) once a drawn number of items went in), kStop (runners only: the
// closer calls coord.request_stop(), the close_on_stop thread cancels, D7), kThrow (runners
// only: one producer op throws mid-batch, the runner reports it to the coordinator, D6).
//
// The checks, for every run:
//  - conservation: every item a producer was told went in is dequeued exactly once; an item it
//    was told did not go in (timeout, closed, cancelled, never tried) is never dequeued; of a
//    TensorQueue enqueue_many that failed (TensorQueue does not say how many rows went in) the
//    dequeued rows are a prefix of the batch. Nothing is left in the queue at the end.
//  - order: on FIFO kinds, the items one consumer receives from one producer come in the order
//    that producer enqueued them (linearizability + FIFO imply it, also across dequeue_many).
//  - every thread ends (a watchdog deadline; a hang prints the report and aborts the process,
//    since the threads still use the run's state).
//  - with runners: coord.join(grace) returns within the grace period, raising nothing or only
//    the injected fault.
// A failing seed's report ends with a repro command (CONVEYOR_SCHEDULE_SEED=<seed>).
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <span>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "engine/coordinator.h"
#include "engine/deadline.h"
#include "engine/element.h"
#include "engine/fifo_queue.h"
#include "engine/queue_errors.h"
#include "engine/queue_runner.h"
#include "engine/session.h"
#include "engine/shuffle_queue.h"
#include "engine/status.h"
#include "engine/tensor.h"
#include "engine/tensor_queue.h"
#include "engine/thread.h"

namespace conveyor::schedule {

enum class Kind : std::uint8_t { kFifoMpmc, kFifoSpsc, kShuffle, kTensorFifo, kTensorShuffle };
inline constexpr std::uint64_t kNumKinds = 5;

inline std::string_view to_string(Kind k) {
  switch (k) {
    case Kind::kFifoMpmc: return "FifoQueue<Mpmc>";
    case Kind::kFifoSpsc: return "FifoQueue<Spsc>";
    case Kind::kShuffle: return "ShuffleQueue";
    case Kind::kTensorFifo: return "TensorQueue<FifoQueue>";
    case Kind::kTensorShuffle: return "TensorQueue<ShuffleQueue>";
  }
  return "?";
}
inline Kind kind_of_seed(std::uint64_t seed) { return static_cast<Kind>(seed % kNumKinds); }
inline bool is_fifo(Kind k) {
  return k == Kind::kFifoMpmc || k == Kind::kFifoSpsc || k == Kind::kTensorFifo;
}

enum class Ending : std::uint8_t { kDrain, kEarlyDrain, kEarlyCancel, kStop, kThrow };

inline std::string_view to_string(Ending e) {
  switch (e) {
    case Ending::kDrain: return "drain after producers";
    case Ending::kEarlyDrain: return "early close(drain)";
    case Ending::kEarlyCancel: return "early close(cancel)";
    case Ending::kStop: return "coordinator stop";
    case Ending::kThrow: return "runner op throws";
  }
  return "?";
}

// Everything a run does that is not up to the scheduler.
struct Plan {
  std::uint64_t seed = 0;
  Kind kind = Kind::kFifoMpmc;
  std::size_t capacity = 1;
  std::size_t min_after_dequeue = 0;  // shuffle kinds
  int producers = 1;
  int consumers = 1;
  std::uint32_t items = 1;  // per producer
  bool runners = false;     // producers are QueueRunner enqueue ops under a Coordinator
  Ending ending = Ending::kDrain;
  std::uint64_t close_after = 0;    // kEarly*/kStop: items enqueued before the closer acts
  int thrower = 0;                  // kThrow: the producer whose op throws ...
  std::uint32_t throw_at = 0;       // ... on reaching this item
  unsigned deadline_percent = 0;    // share of operations that carry a deadline

  static Plan from_seed(std::uint64_t seed, std::uint32_t max_items = 160) {
    std::mt19937_64 rng(seed);
    auto pick = [&rng](std::uint64_t lo, std::uint64_t hi) {  // [lo, hi]
      return lo + rng() % (hi - lo + 1);
    };
    Plan p;
    p.seed = seed;
    p.kind = kind_of_seed(seed);
    p.capacity = pick(1, 12);
    const bool shuffle = p.kind == Kind::kShuffle || p.kind == Kind::kTensorShuffle;
    p.min_after_dequeue = shuffle ? pick(0, std::min<std::uint64_t>(p.capacity - 1, 3)) : 0;
    // One shuffle plan in four gets 8x the capacity (8..96), so that lanes of 16 slots and more
    // hand emptied slots back in batches (ShuffleLane's lazy release) under the same random
    // schedules. Decided by its own hash of the seed: the other picks stay as they were.
    if (shuffle && (seed * 0x9e3779b97f4a7c15ULL) >> 62 == 0) p.capacity *= 8;
    const bool spsc = p.kind == Kind::kFifoSpsc;
    p.producers = spsc ? 1 : static_cast<int>(pick(1, 3));
    p.consumers = spsc ? 1 : static_cast<int>(pick(1, 3));
    p.items = static_cast<std::uint32_t>(pick(1, max_items));
    p.runners = pick(0, 1) == 1;
    p.ending = static_cast<Ending>(pick(0, p.runners ? 4 : 2));
    p.close_after = pick(0, std::uint64_t{p.items} * static_cast<std::uint64_t>(p.producers));
    p.thrower = static_cast<int>(pick(0, static_cast<std::uint64_t>(p.producers - 1)));
    p.throw_at = static_cast<std::uint32_t>(pick(0, p.items - 1));
    p.deadline_percent = static_cast<unsigned>(pick(0, 2) * 15);  // 0, 15 or 30 %
    return p;
  }

  std::string describe() const {
    std::ostringstream os;
    os << "seed " << seed << ": " << to_string(kind) << ", capacity " << capacity;
    if (kind == Kind::kShuffle || kind == Kind::kTensorShuffle) {
      os << ", min_after_dequeue " << min_after_dequeue;
    }
    os << ", " << producers << (runners ? " runner op(s)" : " producer thread(s)") << " x "
       << items << " items, " << consumers << " consumer(s), ending: " << to_string(ending);
    if (ending == Ending::kEarlyDrain || ending == Ending::kEarlyCancel ||
        ending == Ending::kStop) {
      os << " after " << close_after << " items";
    }
    if (ending == Ending::kThrow) os << " (producer " << thrower << " at item " << throw_at << ")";
    os << ", " << deadline_percent << "% of operations with a deadline";
    return os.str();
  }
};

// Totals over runs (one run's, or summed by the caller).
struct Tally {
  std::uint64_t runs = 0;
  std::uint64_t enqueued = 0;   // items producers were told went in (or prefixes of maybes)
  std::uint64_t dequeued = 0;   // items consumers received ("items moved")
  std::uint64_t returned = 0;   // items that did not go in (timed out, closed, cancelled, untried)
  std::uint64_t timeouts = 0;   // operations that ended at their deadline
  std::uint64_t injected_throws = 0;
  std::uint64_t lost = 0;
  std::uint64_t duplicated = 0;
  std::uint64_t phantom = 0;    // dequeued although its producer was told it did not go in
  std::uint64_t misordered = 0;
  std::uint64_t hung = 0;       // counted only by callers that survive a hang (never: abort)
  std::uint64_t failed_runs = 0;

  Tally& operator+=(const Tally& o) {
    runs += o.runs;
    enqueued += o.enqueued;
    dequeued += o.dequeued;
    returned += o.returned;
    timeouts += o.timeouts;
    injected_throws += o.injected_throws;
    lost += o.lost;
    duplicated += o.duplicated;
    phantom += o.phantom;
    misordered += o.misordered;
    hung += o.hung;
    failed_runs += o.failed_runs;
    return *this;
  }
};

struct Result {
  Tally tally;
  std::string failure;  // empty: every check passed
  bool ok() const { return failure.empty(); }
};

// The command that reruns one seed, printed with every failure. `program` is the executable
// (tests/schedule_test or `conveyor soak`).
inline std::string repro_command(std::uint64_t seed, std::string_view program) {
  return "env CONVEYOR_SCHEDULE_SEED=" + std::to_string(seed) + " " + std::string(program);
}

namespace detail {

using Token = std::uint64_t;  // (producer << 32) | item
inline Token token(int producer, std::uint32_t item) {
  return (static_cast<Token>(producer) << 32) | item;
}
inline int producer_of(Token t) { return static_cast<int>(t >> 32); }
inline std::uint32_t item_of(Token t) { return static_cast<std::uint32_t>(t); }

struct ManyResult {
  Status status;
  std::size_t count;  // how many of the first items went in
  bool exact;         // false: count unknown (TensorQueue::enqueue_many threw); any prefix
};

// One interface over every queue kind, in tokens. Statuses as FifoQueue's.
class Adapter {
 public:
  virtual ~Adapter() = default;
  virtual Status enqueue(Token t, Deadline d) = 0;
  virtual Status try_enqueue(Token t) = 0;
  virtual ManyResult enqueue_many(std::span<const Token> ts, Deadline d) = 0;
  virtual Status dequeue(Token& out, Deadline d) = 0;
  virtual Status try_dequeue(Token& out) = 0;
  virtual Status dequeue_n(std::size_t n, std::vector<Token>& out, Deadline d, bool up_to) = 0;
  virtual Status close(CloseMode mode) = 0;
  virtual bool is_closed() const = 0;
  virtual std::size_t size() const = 0;
  virtual const std::string& name() const = 0;
};

template <class Q>
class TypedAdapter final : public Adapter {
 public:
  explicit TypedAdapter(std::shared_ptr<Q> q) : q_(std::move(q)) {}
  Status enqueue(Token t, Deadline d) override { return q_->enqueue(Token(t), d); }
  Status try_enqueue(Token t) override { return q_->try_enqueue(Token(t)); }
  ManyResult enqueue_many(std::span<const Token> ts, Deadline d) override {
    std::vector<Token> copy(ts.begin(), ts.end());
    const BulkResult r = q_->enqueue_many(std::span<Token>(copy), d);
    return {r.status, r.count, true};
  }
  Status dequeue(Token& out, Deadline d) override { return q_->dequeue(out, d); }
  Status try_dequeue(Token& out) override { return q_->try_dequeue(out); }
  Status dequeue_n(std::size_t n, std::vector<Token>& out, Deadline d, bool up_to) override {
    return up_to ? q_->dequeue_up_to(n, out, d) : q_->dequeue_many(n, out, d);
  }
  Status close(CloseMode mode) override { return q_->close(mode); }
  bool is_closed() const override { return q_->is_closed(); }
  std::size_t size() const override { return q_->size_approx(); }
  const std::string& name() const override { return q_->name(); }

 private:
  std::shared_ptr<Q> q_;
};

// A TensorQueue of one uint64 scalar component; its errors turned back into statuses.
template <class Q>
class TensorAdapter final : public Adapter {
 public:
  explicit TensorAdapter(std::shared_ptr<Q> q)
      : tq_(QueueSpec{{DType::kUInt64}, {Shape{}}}, q), name_(q->name()) {}

  Status enqueue(Token t, Deadline d) override {
    return status_of([&] { tq_.enqueue(element(t), d); });
  }
  Status try_enqueue(Token t) override {
    const Status s = enqueue(t, Deadline::now());
    return s == Status::kTimedOut ? Status::kFull : s;
  }
  ManyResult enqueue_many(std::span<const Token> ts, Deadline d) override {
    Element batch;
    batch.components.push_back(Tensor::from(Shape{static_cast<std::int64_t>(ts.size())}, ts));
    const Status s = status_of([&] { tq_.enqueue_many(batch, d); });
    return {s, s == Status::kOk ? ts.size() : 0, s == Status::kOk};
  }
  Status dequeue(Token& out, Deadline d) override {
    return status_of([&] { out = tq_.dequeue(d)[0].template flat<std::uint64_t>()[0]; });
  }
  Status try_dequeue(Token& out) override {
    const Status s = dequeue(out, Deadline::now());
    return s == Status::kTimedOut ? Status::kEmpty : s;
  }
  Status dequeue_n(std::size_t n, std::vector<Token>& out, Deadline d, bool up_to) override {
    out.clear();
    return status_of([&] {
      const auto k = static_cast<std::int64_t>(n);
      Element batch = up_to ? tq_.dequeue_up_to(k, d) : tq_.dequeue_many(k, d);
      const auto values = batch[0].template flat<std::uint64_t>();
      out.assign(values.begin(), values.end());
    });
  }
  Status close(CloseMode mode) override {
    return status_of([&] { tq_.close(mode); });
  }
  bool is_closed() const override { return tq_.is_closed(); }
  std::size_t size() const override { return tq_.size_approx(); }
  const std::string& name() const override { return name_; }

 private:
  static Element element(Token t) {
    Element e;
    e.components.push_back(Tensor::scalar<std::uint64_t>(t));
    return e;
  }
  // TensorQueue's TF errors back to FifoQueue's statuses (queue_errors.cc has the mapping the
  // other way). Anything else is a defect and propagates.
  template <class F>
  static Status status_of(F&& f) {
    try {
      f();
      return Status::kOk;
    } catch (const Error& e) {
      switch (e.kind()) {
        case ErrorKind::kOutOfRange: return Status::kClosed;
        case ErrorKind::kDeadlineExceeded: return Status::kTimedOut;
        case ErrorKind::kCancelled:
          return e.message().find("was cancelled") != std::string::npos ? Status::kCancelled
                                                                         : Status::kClosed;
        default: throw;
      }
    }
  }

  TensorQueue<Q> tq_;
  std::string name_;
};

// What one producer was told about each of its items.
enum class Fate : std::uint8_t { kNotIn, kIn, kMaybe };

struct ProducerLog {
  std::vector<Fate> fate;
  std::string failure;  // an unexpected exception
  std::vector<std::pair<std::uint32_t, std::uint32_t>> maybe_batches;  // (first item, count)
  std::uint64_t timeouts = 0;
};

struct ConsumerLog {
  std::vector<Token> received;
  std::uint64_t timeouts = 0;
  std::string failure;
};

class Rng {
 public:
  explicit Rng(std::uint64_t seed) : gen_(seed) {}
  std::uint64_t pick(std::uint64_t lo, std::uint64_t hi) { return lo + gen_() % (hi - lo + 1); }
  bool percent(unsigned p) { return gen_() % 100 < p; }

 private:
  std::mt19937_64 gen_;
};

inline Deadline maybe_deadline(Rng& rng, unsigned percent) {
  if (!rng.percent(percent)) return Deadline::never();
  return Deadline::after(std::chrono::microseconds(rng.pick(0, 400)));
}

// The run's shared state. Producers write only their own ProducerLog, consumers their own
// ConsumerLog; the main thread reads them after the threads are done (Thread::done() / join
// give the happens-before edge).
struct Run {
  Plan plan;
  std::unique_ptr<Session> session;
  std::unique_ptr<Adapter> queue;
  Coordinator coord{ErrorKind::kOutOfRange, ErrorKind::kCancelled};
  std::vector<ProducerLog> producer_logs;
  std::vector<ConsumerLog> consumer_logs;
  std::atomic<std::uint64_t> enqueued{0};        // progress, for the closer
  std::atomic<int> producers_finished{0};
  std::atomic<std::uint64_t> injected_throws{0};
};

struct InjectedFault : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// One step of producer `p`: moves the next few items (a single enqueue, a try_enqueue, or an
// enqueue_many) and records their fate. Returns false once the producer is finished (all items
// tried, or the queue refused for good: closed or cancelled).
inline bool produce_step(Run& run, int p, std::uint32_t& next, Rng& rng) {
  ProducerLog& log = run.producer_logs[static_cast<std::size_t>(p)];
  const Plan& plan = run.plan;
  if (next >= plan.items) return false;
  const Deadline d = maybe_deadline(rng, plan.deadline_percent);
  const std::uint64_t op = rng.pick(0, 2);
  if (op < 2) {
    if (run.plan.ending == Ending::kThrow && p == plan.thrower && next == plan.throw_at) {
      run.injected_throws.fetch_add(1, std::memory_order_relaxed);  // relaxed: a count
      throw InjectedFault("injected fault: producer " + std::to_string(p) + " at item " +
                          std::to_string(next));
    }
    Status s = op == 0 ? run.queue->enqueue(token(p, next), d)
                       : run.queue->try_enqueue(token(p, next));
    if (s == Status::kFull) s = run.queue->enqueue(token(p, next), d);
    if (s == Status::kOk) {
      log.fate[next] = Fate::kIn;
      run.enqueued.fetch_add(1, std::memory_order_relaxed);  // relaxed: a progress hint
    } else if (s == Status::kTimedOut) {
      ++log.timeouts;
    } else {
      return false;  // kClosed / kCancelled: this and the rest stay kNotIn
    }
    ++next;
    return true;
  }
  const auto k = static_cast<std::uint32_t>(
      std::min<std::uint64_t>(rng.pick(1, 2 * plan.capacity + 1), plan.items - next));
  std::vector<Token> batch(k);
  for (std::uint32_t i = 0; i < k; ++i) batch[i] = token(p, next + i);
  // kThrow mid-batch: push the part before the fault, then throw.
  if (run.plan.ending == Ending::kThrow && p == plan.thrower && plan.throw_at >= next &&
      plan.throw_at < next + k) {
    const std::uint32_t before = plan.throw_at - next;
    if (before > 0) {
      const ManyResult r = run.queue->enqueue_many(std::span<const Token>(batch.data(), before),
                                                   Deadline::never());
      for (std::uint32_t i = 0; i < r.count; ++i) log.fate[next + i] = Fate::kIn;
      if (!r.exact) log.maybe_batches.emplace_back(next, before);
      for (std::uint32_t i = 0; i < before && !r.exact; ++i) log.fate[next + i] = Fate::kMaybe;
      run.enqueued.fetch_add(r.count, std::memory_order_relaxed);  // relaxed: a progress hint
      if (r.status != Status::kOk) return false;
    }
    next = plan.throw_at;
    run.injected_throws.fetch_add(1, std::memory_order_relaxed);  // relaxed: a count
    throw InjectedFault("injected fault: producer " + std::to_string(p) + " mid-batch at item " +
                        std::to_string(next));
  }
  const ManyResult r = run.queue->enqueue_many(batch, d);
  for (std::uint32_t i = 0; i < r.count; ++i) log.fate[next + i] = Fate::kIn;
  if (!r.exact) {
    log.maybe_batches.emplace_back(next, k);
    for (std::uint32_t i = 0; i < k; ++i) log.fate[next + i] = Fate::kMaybe;
  }
  run.enqueued.fetch_add(r.count, std::memory_order_relaxed);  // relaxed: a progress hint
  if (r.status == Status::kTimedOut) ++log.timeouts;
  if (r.status == Status::kClosed || r.status == Status::kCancelled) return false;
  next += k;
  return true;
}

inline void consume(Run& run, int c) {
  ConsumerLog& log = run.consumer_logs[static_cast<std::size_t>(c)];
  Rng rng(run.plan.seed * 1000003 + 7919 * static_cast<std::uint64_t>(c) + 1);
  bool many_refused = false;  // a dequeue_many saw "closed, too few": drain with up_to / one
  std::vector<Token> batch;
  for (;;) {
    const Deadline d = maybe_deadline(rng, run.plan.deadline_percent);
    std::uint64_t op = rng.pick(0, 3);
    if (many_refused && op == 2) op = 3;
    Status s;
    if (op <= 1) {
      Token t = 0;
      s = op == 0 ? run.queue->dequeue(t, d) : run.queue->try_dequeue(t);
      if (s == Status::kOk) log.received.push_back(t);
      if (s == Status::kEmpty) std::this_thread::yield();
      if (s == Status::kClosed) return;  // closed and empty: done
    } else {
      const std::size_t n = rng.pick(1, 2 * run.plan.capacity + 1);
      s = run.queue->dequeue_n(n, batch, d, op == 3);
      if (s == Status::kOk) {
        if (batch.empty() || batch.size() > n || (op == 2 && batch.size() != n)) {
          log.failure = "consumer " + std::to_string(c) + ": dequeue_" +
                        (op == 3 ? "up_to(" : "many(") + std::to_string(n) + ") returned " +
                        std::to_string(batch.size()) + " elements";
          return;
        }
        log.received.insert(log.received.end(), batch.begin(), batch.end());
      } else if (!batch.empty()) {
        log.failure = "consumer " + std::to_string(c) + ": a failed dequeue_" +
                      (op == 3 ? "up_to" : "many") + " left " + std::to_string(batch.size()) +
                      " elements in its output";
        return;
      }
      if (s == Status::kClosed) {
        if (op == 3) return;  // closed and empty
        many_refused = true;
      }
    }
    if (s == Status::kTimedOut) ++log.timeouts;
    if (s == Status::kCancelled) {
      log.failure = "consumer " + std::to_string(c) + ": a dequeue reported kCancelled";
      return;
    }
  }
}

inline std::string check(Run& run, Tally& tally) {
  const Plan& plan = run.plan;
  std::ostringstream problems;
  // Conservation.
  std::vector<std::vector<std::uint8_t>> seen(static_cast<std::size_t>(plan.producers),
                                              std::vector<std::uint8_t>(plan.items, 0));
  for (const ConsumerLog& log : run.consumer_logs) {
    if (!log.failure.empty()) problems << log.failure << "; ";
    tally.timeouts += log.timeouts;
    tally.dequeued += log.received.size();
    for (Token t : log.received) {
      const int p = producer_of(t);
      const std::uint32_t i = item_of(t);
      if (p >= plan.producers || i >= plan.items) {
        problems << "dequeued a token never made: " << t << "; ";
        ++tally.phantom;
        continue;
      }
      std::uint8_t& n = seen[static_cast<std::size_t>(p)][i];
      if (n == 1) {
        ++tally.duplicated;
        if (tally.duplicated <= 3) problems << "duplicated: producer " << p << " item " << i << "; ";
      }
      n = 1;
    }
  }
  for (int p = 0; p < plan.producers; ++p) {
    const ProducerLog& log = run.producer_logs[static_cast<std::size_t>(p)];
    if (!log.failure.empty()) problems << log.failure << "; ";
    tally.timeouts += log.timeouts;
    for (std::uint32_t i = 0; i < plan.items; ++i) {
      const bool got = seen[static_cast<std::size_t>(p)][i] != 0;
      switch (log.fate[i]) {
        case Fate::kIn:
          ++tally.enqueued;
          if (!got) {
            ++tally.lost;
            if (tally.lost <= 3) problems << "lost: producer " << p << " item " << i << "; ";
          }
          break;
        case Fate::kNotIn:
          ++tally.returned;
          if (got) {
            ++tally.phantom;
            problems << "dequeued although refused: producer " << p << " item " << i << "; ";
          }
          break;
        case Fate::kMaybe:
          got ? ++tally.enqueued : ++tally.returned;
          break;
      }
    }
    for (auto [first, count] : log.maybe_batches) {  // the rows that went in are a prefix
      bool gap = false;
      for (std::uint32_t i = first; i < first + count; ++i) {
        const bool got = seen[static_cast<std::size_t>(p)][i] != 0;
        if (got && gap) {
          ++tally.lost;
          problems << "a failed enqueue_many of producer " << p << " delivered item " << i
                   << " but not an earlier row; ";
          break;
        }
        gap = gap || !got;
      }
    }
  }
  // Per-producer order, per consumer, on FIFO kinds.
  if (is_fifo(plan.kind)) {
    for (std::size_t c = 0; c < run.consumer_logs.size(); ++c) {
      std::vector<std::int64_t> last(static_cast<std::size_t>(plan.producers), -1);
      for (Token t : run.consumer_logs[c].received) {
        const int p = producer_of(t);
        if (p >= plan.producers) continue;
        std::int64_t& l = last[static_cast<std::size_t>(p)];
        if (static_cast<std::int64_t>(item_of(t)) <= l) {
          ++tally.misordered;
          if (tally.misordered <= 3) {
            problems << "consumer " << c << " got producer " << p << " item " << item_of(t)
                     << " after item " << l << "; ";
          }
        }
        l = item_of(t);
      }
    }
  }
  if (const std::size_t left = run.queue->size(); left != 0) {
    problems << left << " element(s) left in the queue after every consumer saw it closed; ";
  }
  if (!run.queue->is_closed()) problems << "the queue is not closed at the end; ";
  tally.injected_throws += run.injected_throws.load(std::memory_order_relaxed);
  return problems.str();
}

[[noreturn]] inline void hung(const Plan& plan, std::string_view what, std::string_view program) {
  std::fprintf(stderr,
               "\nschedule HUNG: %s\n  %s\n  repro: %s\n", std::string(what).c_str(),
               plan.describe().c_str(), repro_command(plan.seed, program).c_str());
  std::fflush(stderr);
  std::abort();  // the threads still use the run's state: no way to return
}

}  // namespace detail

struct Limits {
  std::chrono::seconds watchdog{120};  // a thread not done by then is hung
  std::chrono::seconds grace{30};      // coord.join's stop_grace_period
  std::uint32_t max_items = 160;
};

// Runs one seed and checks it. A hang aborts the process after printing the report.
inline Result run_schedule(std::uint64_t seed, std::string_view program, Limits limits = {}) {
  using namespace detail;
  Run run;
  run.plan = Plan::from_seed(seed, limits.max_items);
  const Plan& plan = run.plan;
  run.session = std::make_unique<Session>();
  Session& session = *run.session;
  switch (plan.kind) {
    case Kind::kFifoMpmc:
      run.queue = std::make_unique<TypedAdapter<FifoQueue<Token>>>(
          session.fifo_queue<Token>(static_cast<std::int64_t>(plan.capacity), "q"));
      break;
    case Kind::kFifoSpsc:
      run.queue = std::make_unique<TypedAdapter<FifoQueue<Token, Spsc>>>(
          session.fifo_queue<Token, Spsc>(static_cast<std::int64_t>(plan.capacity), "q"));
      break;
    case Kind::kShuffle:
      run.queue = std::make_unique<TypedAdapter<ShuffleQueue<Token>>>(
          session.shuffle_queue<Token>(static_cast<std::int64_t>(plan.capacity),
                                       static_cast<std::int64_t>(plan.min_after_dequeue), seed,
                                       "q"));
      break;
    case Kind::kTensorFifo:
      run.queue = std::make_unique<TensorAdapter<FifoQueue<Element>>>(
          session.fifo_queue<Element>(static_cast<std::int64_t>(plan.capacity), "q"));
      break;
    case Kind::kTensorShuffle:
      run.queue = std::make_unique<TensorAdapter<ShuffleQueue<Element>>>(
          session.shuffle_queue<Element>(static_cast<std::int64_t>(plan.capacity),
                                         static_cast<std::int64_t>(plan.min_after_dequeue), seed,
                                         "q"));
      break;
  }
  run.producer_logs.resize(static_cast<std::size_t>(plan.producers));
  for (ProducerLog& log : run.producer_logs) log.fate.assign(plan.items, Fate::kNotIn);
  run.consumer_logs.resize(static_cast<std::size_t>(plan.consumers));

  std::vector<Thread> threads;  // consumers, plain producers, the closer
  for (int c = 0; c < plan.consumers; ++c) {
    threads.emplace_back("consumer-" + std::to_string(c), [&run, c] {
      try {
        consume(run, c);
      } catch (const std::exception& e) {
        run.consumer_logs[static_cast<std::size_t>(c)].failure =
            "consumer " + std::to_string(c) + " threw '" + e.what() + "'";
      }
    });
  }
  const auto producer_finished = [&run] {
    // acq_rel: the last producer to finish closes the queue (kDrain ending).
    return run.producers_finished.fetch_add(1, std::memory_order_acq_rel) + 1 ==
           run.plan.producers;
  };
  RunnerThreads runner_threads;
  if (plan.runners) {
    std::vector<std::string> ops;
    for (int p = 0; p < plan.producers; ++p) {
      auto next = std::make_shared<std::uint32_t>(0);
      auto rng = std::make_shared<Rng>(seed * 31 + static_cast<std::uint64_t>(p));
      ops.push_back(session.add_unique_op("produce", [&run, p, next, rng, producer_finished] {
        if (!produce_step(run, p, *next, *rng)) {
          producer_finished();
          // Both are closed kinds of this runner: the thread ends, the last one closes (D5).
          if (*next >= run.plan.items) throw Error(ErrorKind::kOutOfRange, "producer done");
          throw queue_error(Status::kClosed, QueueOp::kEnqueue, run.queue->name());
        }
      }));
    }
    QueueRunner runner(run.queue->name(), ops, {}, {},
                       std::vector<ErrorKind>{ErrorKind::kOutOfRange, ErrorKind::kCancelled});
    runner_threads = runner.create_threads(session, &run.coord, /*start=*/true);
  } else {
    for (int p = 0; p < plan.producers; ++p) {
      threads.emplace_back("producer-" + std::to_string(p), [&run, p, producer_finished] {
        Rng rng(run.plan.seed * 31 + static_cast<std::uint64_t>(p));
        std::uint32_t next = 0;
        try {
          while (produce_step(run, p, next, rng)) {
          }
        } catch (const std::exception& e) {
          run.producer_logs[static_cast<std::size_t>(p)].failure =
              "producer " + std::to_string(p) + " threw '" + e.what() + "'";
        }
        if (producer_finished() && run.plan.ending == Ending::kDrain) {
          (void)run.queue->close(CloseMode::kDrain);
        }
      });
    }
  }
  if (plan.ending == Ending::kEarlyDrain || plan.ending == Ending::kEarlyCancel ||
      plan.ending == Ending::kStop) {
    threads.emplace_back("closer", [&run] {
      // Polls (with yield) until enough went in, or nothing more will: this is the schedule's
      // choice of when to act, not a synchronisation.
      // relaxed/acquire: progress hints only.
      while (run.enqueued.load(std::memory_order_relaxed) < run.plan.close_after &&
             run.producers_finished.load(std::memory_order_acquire) < run.plan.producers &&
             !run.queue->is_closed() && !run.coord.should_stop()) {
        std::this_thread::yield();
      }
      if (run.plan.ending == Ending::kStop) {
        run.coord.request_stop();
      } else {
        (void)run.queue->close(run.plan.ending == Ending::kEarlyCancel
                                   ? CloseMode::kCancelPendingEnqueues
                                   : CloseMode::kDrain);
      }
    });
  }

  // Plain producers with an early ending that is not their close: after the closer acted they
  // stop on kClosed; with kDrain the last of them closes. With runners the last runner thread
  // closes (D5) or close_on_stop cancels (D7). Either way every consumer ends on a closed, empty
  // queue.
  for (const Thread& t : threads) {
    if (!t.wait_done(Deadline::after(limits.watchdog))) {
      hung(plan, "thread '" + t.name() + "' did not end within " +
                     std::to_string(limits.watchdog.count()) + " s",
           program);
    }
  }
  std::string join_problem;
  if (plan.runners) {
    run.coord.request_stop();  // the consumers are done: TF's pattern, stop then join
    const auto start = Deadline::Clock::now();
    try {
      run.coord.join({}, limits.grace);
    } catch (const InjectedFault&) {
      if (plan.ending != Ending::kThrow) join_problem = "join raised an injected fault; ";
    } catch (const std::exception& e) {
      if (kind_of(std::current_exception()) == ErrorKind::kFailedPrecondition) {
        hung(plan, std::string("coord.join: ") + e.what(), program);
      }
      join_problem = std::string("join raised '") + e.what() + "'; ";
    }
    if (Deadline::Clock::now() - start > limits.grace) {
      join_problem += "join returned after its grace period; ";
    }
    if (!runner_threads.wait_done(Deadline::after(limits.watchdog))) {
      hung(plan, "a runner thread did not end after join", program);
    }
  }
  Result result;
  result.tally.runs = 1;
  result.failure = join_problem + check(run, result.tally);
  if (!result.ok()) {
    result.tally.failed_runs = 1;
    result.failure = plan.describe() + "\n  " + result.failure + "\n  repro: " +
                     repro_command(seed, program);
  }
  return result;
}

}  // namespace conveyor::schedule
