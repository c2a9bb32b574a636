// TensorQueue<Q>: TF's FIFOQueue / PaddingFIFOQueue (and, over a shuffle queue,
// RandomShuffleQueue) for tuples of tensors: dtype and shape checks, enqueue_many splitting,
// dequeue_many stacking and padding (SPEC.md A1-A7, A13, A14, A28, A31), on top of a typed
// queue of Elements.
//
// Contract
//  - Q is any typed queue of Elements with FifoQueue's API shape (the TypedQueue concept
//    below): FifoQueue<Element> by default; a ShuffleQueue<Element> plugs in the same way.
//    The ordering, blocking, close and cancellation guarantees are Q's; this layer adds no
//    lock and no shared state of its own, so it is as thread-safe as Q (every member may be
//    called from any thread).
//  - Checks first (A5, A7, A4, A13): every check runs before the call touches Q, so a failed
//    check leaves the queue unchanged and never blocks.
//  - Errors are thrown as conveyor::Error with TF's kinds and messages: the check messages of
//    engine/element.h, and queue_error() for Q's statuses (A18 Cancelled "<Kind> '<name>' is
//    closed.", A19 OutOfRange "... is closed and has insufficient elements (requested n,
//    current size m)", A23 Cancelled "Enqueue operation was cancelled", A26 DeadlineExceeded).
//    <Kind> is Q::kTfKind when Q defines it, else "FIFOQueue"; "PaddingFIFOQueue" with padding.
//  - A failed enqueue leaves the element with the caller (enqueue takes Element&&; the
//    NamedElement is given back too). A failed enqueue_many keeps what it pushed (A23).
//  - Memory: rows split by enqueue_many and batches stacked by dequeue_many come from `memory`
//    (default alloc::scalable_resource()); Q's slots hold Elements (three pointers each).
//    Running out of it (std::bad_alloc) loses nothing: enqueue_many splits before it pushes,
//    dequeue_many / dequeue_up_to allocate the batch before they dequeue (fully defined shapes;
//    padded batches are the exception, see take()).
//
// Stacking (dequeue_many): Q hands over n Elements; component c of the batch is one tensor of
// shape [n] + shape_c, filled by one memcpy per element (engine/element.h, stack()).
#pragma once

#include <algorithm>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <memory_resource>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "alloc/scalable_resource.h"
#include "engine/deadline.h"
#include "engine/element.h"
#include "engine/fifo_queue.h"
#include "engine/queue_errors.h"
#include "engine/status.h"
#include "engine/tensor.h"

namespace conveyor {

// What TensorQueue needs of the queue it wraps (FifoQueue's API shape).
template <class Q>
concept TypedQueue = std::same_as<typename Q::value_type, Element> &&
    requires(Q q, const Q cq, Element e, std::span<Element> s, std::vector<Element> v,
             std::size_t n, Deadline d, CloseMode m) {
  { q.enqueue(std::move(e), d) } -> std::same_as<Status>;
  { q.enqueue_many(s, d) } -> std::same_as<BulkResult>;
  { q.dequeue(e, d) } -> std::same_as<Status>;
  { q.dequeue_many(n, v, d) } -> std::same_as<Status>;
  { q.dequeue_up_to(n, v, d) } -> std::same_as<Status>;
  { q.close(m, d) } -> std::same_as<Status>;
  { cq.is_closed() } -> std::convertible_to<bool>;
  { cq.size_approx() } -> std::convertible_to<std::size_t>;
  { cq.name() } -> std::convertible_to<std::string_view>;
};

template <TypedQueue Q = FifoQueue<Element>>
class TensorQueue {
 public:
  using Queue = Q;
  using Memory = std::pmr::memory_resource;

  // Wraps an existing queue (shared, e.g. from a Session, or a ShuffleQueue built with its own
  // arguments). spec.validate() first (A1, A2, A31).
  TensorQueue(QueueSpec spec, std::shared_ptr<Q> queue, Memory* memory = alloc::scalable_resource())
      : spec_(validated(std::move(spec))), queue_(std::move(queue)), memory_(memory) {
    if (!queue_) throw invalid_argument("queue", "null", "must be a queue");
    if (memory_ == nullptr) throw invalid_argument("memory", "null", "must be a memory resource");
  }

  // Builds Q(capacity, name).
  TensorQueue(QueueSpec spec, std::int64_t capacity, std::string name = "fifo_queue",
              Memory* memory = alloc::scalable_resource()) requires
      std::constructible_from<Q, std::int64_t, std::string>
      : TensorQueue(validated(std::move(spec)), nullptr, capacity, std::move(name), memory) {}

  const QueueSpec& spec() const noexcept { return spec_; }
  Q& queue() noexcept { return *queue_; }
  const std::shared_ptr<Q>& shared_queue() const noexcept { return queue_; }
  std::string_view name() const noexcept { return queue_->name(); }
  std::size_t size_approx() const noexcept { return queue_->size_approx(); }  // A12
  bool is_closed() const noexcept { return queue_->is_closed(); }
  // TF's class name in error messages.
  std::string_view kind() const noexcept {
    if (spec_.padding == Padding::kDynamic) return "PaddingFIFOQueue";
    if constexpr (requires { Q::kTfKind; }) {
      return Q::kTfKind;
    } else {
      return "FIFOQueue";
    }
  }

  // ---- enqueue ----

  // A4, A5, A6, A18: checks, then blocks while the queue is full. On failure `element` is
  // untouched.
  void enqueue(Element&& element, Deadline deadline = Deadline::never()) {
    if (spec_.named()) throw positional_into_named();
    spec_.check_element(element);
    push(element, deadline);
  }
  // A4: a dict whose keys equal the names.
  void enqueue(NamedElement&& element, Deadline deadline = Deadline::never()) {
    Element positional = spec_.to_positional(std::move(element));
    give_back_on_error(positional, element, [&] {
      spec_.check_element(positional);
      push(positional, deadline);
    });
  }

  // A7-A10: splits every component along dimension 0 and enqueues the rows as one contiguous
  // run. A batch of 0 succeeds at once, even on a closed queue (A8).
  void enqueue_many(const Element& batch, Deadline deadline = Deadline::never()) {
    if (spec_.named()) throw positional_into_named();
    push_many(batch, deadline);
  }
  void enqueue_many(NamedElement&& batch, Deadline deadline = Deadline::never()) {
    Element positional = spec_.to_positional(std::move(batch));
    give_back_on_error(positional, batch, [&] { push_many(positional, deadline); });
  }

  // ---- dequeue ----

  // A11, A19.
  Element dequeue(Deadline deadline = Deadline::never()) {
    Element out;
    const Status s = queue_->dequeue(out, deadline);
    if (s != Status::kOk) throw failure(s, QueueOp::kDequeue, 1);
    return out;
  }

  // A13-A15, A19, A20: n elements stacked, component c of shape [n] + shape_c (padded: A31).
  // InvalidArgument "DequeueManyOp requested -1 < 0 elements"; without shapes
  // "FIFOQueue's DequeueMany and DequeueUpTo require the components to have specified shapes.";
  // n = 0 returns an empty batch at once.
  Element dequeue_many(std::int64_t n, Deadline deadline = Deadline::never()) {
    return take(n, deadline, Batch::kMany);
  }
  // A16, A21: as dequeue_many on an open queue; once closed, the remaining min(n, size) >= 1.
  Element dequeue_up_to(std::int64_t n, Deadline deadline = Deadline::never()) {
    return take(n, deadline, Batch::kUpTo);
  }

  // ---- close ----

  // A17, A22, A23. A second plain close -> Cancelled "Queue '<name>' is already closed.".
  void close(CloseMode mode = CloseMode::kDrain, Deadline deadline = Deadline::never()) {
    const Status s = queue_->close(mode, deadline);
    if (s != Status::kOk) throw failure(s, QueueOp::kClose, 0);
  }

 private:
  TensorQueue(QueueSpec spec, std::nullptr_t, std::int64_t capacity, std::string name,
              Memory* memory)
      : TensorQueue(std::move(spec), std::make_shared<Q>(capacity, std::move(name)), memory) {}

  static QueueSpec validated(QueueSpec spec) {
    spec.validate();
    return spec;
  }

  static Error positional_into_named() {
    return Error(ErrorKind::kInvalidArgument,
                 "You must enqueue a dictionary in a Queue with names");
  }

  Error failure(Status s, QueueOp op, std::size_t requested) const {
    return queue_error(s, op, queue_->name(), requested, queue_->size_approx(), kind());
  }

  void push(Element& element, Deadline deadline) {
    const Status s = queue_->enqueue(std::move(element), deadline);
    if (s != Status::kOk) throw failure(s, QueueOp::kEnqueue, 1);
  }

  void push_many(const Element& batch, Deadline deadline) {
    spec_.check_batch(batch);  // A5, A7: before anything is split or pushed
    std::vector<Element> rows = split_batch(batch, memory_);
    const BulkResult r = queue_->enqueue_many(std::span<Element>(rows), deadline);
    if (r.status != Status::kOk) throw failure(r.status, QueueOp::kEnqueue, rows.size());
  }

  // Runs f; if it throws, moves the tensors of `positional` back into `named` first.
  template <class F>
  void give_back_on_error(Element& positional, NamedElement& named, F&& f) {
    try {
      f();
    } catch (...) {
      for (std::size_t i = 0; i < spec_.names.size(); ++i) {
        if (positional[i].initialized()) named[spec_.names[i]] = std::move(positional[i]);
      }
      throw;
    }
  }

  enum class Batch : std::uint8_t { kMany, kUpTo };

  Element take(std::int64_t n, Deadline deadline, Batch batch) {
    if (n < 0) {
      throw Error(ErrorKind::kInvalidArgument,
                  std::string(batch == Batch::kMany ? "DequeueManyOp" : "DequeueUpToOp") +
                      " requested " + std::to_string(n) + " < 0 elements");
    }
    if (!spec_.specified_shapes()) {
      throw Error(ErrorKind::kInvalidArgument,
                  std::string(kind()) +
                      "'s DequeueMany and DequeueUpTo require the components to have specified "
                      "shapes.");
    }
    const std::size_t k = static_cast<std::size_t>(n);
    // Fully defined shapes: the batch is allocated before anything leaves Q (as TF's DequeueMany
    // allocates its output first), so running out of memory throws std::bad_alloc with the
    // queue untouched. Padded shapes are known only from the elements: stack() allocates after
    // the dequeue, and if that fails the taken elements are lost with the exception, as in TF's
    // PaddingFIFOQueue (docs/reliability.md, "Known limits").
    const bool ahead = std::all_of(spec_.shapes.begin(), spec_.shapes.end(),
                                   [](const Shape& s) { return s.fully_defined(); });
    Element out;
    if (ahead) out = allocate_batch(spec_, k, memory_);
    std::vector<Element> taken;
    if (n > 0) {
      const Status s = batch == Batch::kMany ? queue_->dequeue_many(k, taken, deadline)
                                             : queue_->dequeue_up_to(k, taken, deadline);
      if (s != Status::kOk) throw failure(s, QueueOp::kDequeue, k);
    }
    if (!ahead) return stack(std::span<Element>(taken), spec_, memory_);  // n = 0: empty (A13)
    stack_into(std::span<Element>(taken), out);
    return out;
  }

  const QueueSpec spec_;  // read-only configuration
  std::shared_ptr<Q> queue_;
  Memory* memory_;
};

}  // namespace conveyor
