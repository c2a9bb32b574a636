// FifoQueue<T, Policy>: a bounded FIFO queue with TensorFlow FIFOQueue semantics (SPEC.md A),
// lock-free on its fast path, blocking through futexes when it must wait.
//
// Contract
//  - Policy `Mpmc`: any number of producer and consumer threads. `Spsc`: one producer thread and
//    one consumer thread at a time (close(), size_approx(), is_closed() from any thread).
//  - FIFO: elements leave in the order their enqueues took effect. The elements of one
//    enqueue_many are contiguous (A10); every dequeue_many / dequeue_up_to receives a contiguous
//    run, even with concurrent dequeuers and n larger than the capacity (A15).
//  - Linearizable single-element operations (each takes effect at the CAS or store on its side's
//    position word). A partial enqueue_many / dequeue_many takes effect element by element; while
//    it waits it holds its side, so later operations on that side wait behind it (as TF's queue
//    does: "later requests wait behind a blocked head").
//  - Nothing is lost: a failed enqueue leaves the value with the caller; a dequeue_many that
//    fails (closed with too few elements, deadline) puts what it took back at the FRONT in order
//    (A20), from where the next dequeues take it. Put-back elements may take the size above the
//    capacity for a while, as in TF.
//  - A blocking operation of a thread whose owner (a Session) is torn down ends as if its
//    deadline had passed and reports kCancelled (A25, engine/internal/owner.h): a partial
//    enqueue_many keeps what it pushed, a partial dequeue_many puts back what it took. The
//    queue is not closed by it.
//  - close(kDrain) waits behind blocked enqueues (A17): enqueues blocked before it still complete,
//    enqueues that arrive after it fail. close(kCancelPendingEnqueues) closes at once and fails
//    every blocked enqueue with kCancelled, keeping what a partial enqueue_many pushed (A23).
//  - Memory ordering: everything a producer wrote before enqueueing an element happens-before
//    everything its consumer does after dequeueing it. size_approx() is a snapshot.
//
// Fast path (try_*, and blocking calls that need not wait): one claim on the side's position word
// (MpmcRing: CAS; SpscRing: plain store), no lock, no allocation, no syscall; a notification costs
// a compiler fence and a load of the waiter count when nobody sleeps.
// Slow path (must wait): spin about 2 us, yield a few times, then sleep on the side's EventCount
// (a futex). A multi-element operation that must make partial progress first takes its side's
// hold bit (MpmcRing kHeld) so its run stays contiguous.
//
// Deviations from TF are listed in docs/deviations.md (blocked operations on one side are
// served in no guaranteed order; capacity must be >= 1).
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "alloc/aligned_resource.h"
#include "alloc/cache_padded.h"
#include "engine/deadline.h"
#include "engine/internal/backoff.h"
#include "engine/internal/event_count.h"
#include "engine/internal/mpmc_ring.h"
#include "engine/internal/owner.h"
#include "engine/internal/spsc_ring.h"
#include "engine/status.h"
#include "engine/trace.h"

namespace conveyor {

// Policy types.
struct Mpmc {
  template <class T>
  using Ring = internal::MpmcRing<T>;
};
struct Spsc {
  template <class T>
  using Ring = internal::SpscRing<T>;
};

enum class CloseMode : std::uint8_t {
  kDrain,                  // TF close(): waits behind blocked enqueues, then closes
  kCancelPendingEnqueues,  // TF close(cancel_pending_enqueues=True)
};

// Result of a bulk operation: `count` elements moved (the first `count` of the span).
struct [[nodiscard]] BulkResult {
  Status status;
  std::size_t count;
};

template <class T, class Policy = Mpmc>
class FifoQueue {
  static_assert(std::is_nothrow_move_constructible_v<T>, "FifoQueue needs nothrow-movable T");
  static_assert(std::is_nothrow_destructible_v<T>);

 public:
  using value_type = T;

  // capacity >= 1; anything else is InvalidArgument (TF's negative = unbounded is a deviation:
  // docs/deviations.md). `memory` holds the ring's slots and must outlive the queue: by default
  // alloc::aligned_resource() (128-byte aligned; rings of >= 2 MiB on huge pages); an
  // alloc::NumaResource puts them on one NUMA node (Session does so for its plan's queues).
  // The constructing thread touches the slots first.
  explicit FifoQueue(std::int64_t capacity, std::string name = "fifo_queue",
                     std::pmr::memory_resource* memory = alloc::aligned_resource())
      : ring_(checked_capacity(capacity), checked_memory(memory)),
        name_(std::move(name)),
        trace_("fifo_queue", name_, static_cast<std::int64_t>(ring_.capacity())) {}

  FifoQueue(const FifoQueue&) = delete;
  FifoQueue& operator=(const FifoQueue&) = delete;

  std::size_t capacity() const noexcept { return ring_.capacity(); }
  const std::string& name() const noexcept { return name_; }
  // Where the ring's slots live (the constructor's `memory`).
  std::pmr::memory_resource* memory() const noexcept { return ring_.memory(); }
  bool is_closed() const noexcept { return ring_.closed(); }  // A24
  // The queue's id in traces (engine/trace.h).
  std::uint32_t trace_id() const noexcept { return trace_.id(); }

  // Stored elements (A12): not those held by a pending dequeue_many, nor the unpushed rest of a
  // pending enqueue_many. A snapshot: stale as soon as it returns.
  std::size_t size_approx() const noexcept {
    const std::uint64_t h = ring_.head_pos();
    const std::uint64_t t = ring_.tail_pos();
    const std::size_t in_ring = t > h ? static_cast<std::size_t>(t - h) : 0;
    // relaxed: a snapshot.
    return in_ring + stash_count_.load(std::memory_order_relaxed);
  }

  // Producers blocked in enqueue / enqueue_many right now (they are what a drain close waits
  // for). A snapshot, for diagnostics and tests.
  std::size_t waiting_producers_approx() const noexcept {
    // relaxed: a snapshot.
    return registered_producers_->load(std::memory_order_relaxed);
  }

  // ---- single element ----

  // kOk | kFull | kClosed. On failure `value` is untouched.
  [[nodiscard]] Status try_enqueue(T&& value) noexcept {
    return push_one(value, internal::Claimant::kAny);
  }

  // A6, A18: kOk | kClosed (closed before it started) | kCancelled (close(cancel) while it was
  // blocked, or its owner torn down: A25) | kTimedOut. On failure `value` is untouched.
  [[nodiscard]] Status enqueue(T&& value, Deadline deadline = Deadline::never()) noexcept {
    const Status s = push_one(value, internal::Claimant::kAny);
    if (s != Status::kFull) return s;
    return verdict(enqueue_slow(std::span<T>(&value, 1), deadline).status);
  }

  // kOk | kEmpty | kClosed (closed and empty).
  [[nodiscard]] Status try_dequeue(T& out) noexcept {
    if (unflagged_stash()) return try_dequeue_held(out);
    const internal::ClaimResult c = ring_.claim_pop(1, internal::Amount::kExactly,
                                                   internal::Claimant::kAny);
    if (c.claim == internal::Claim::kOk) {
      out = ring_.pop(c.pos);
      ring_.publish_pop(c.pos + 1);
      not_full_->notify_all();
      return Status::kOk;
    }
    if (c.claim == internal::Claim::kClosed) return Status::kClosed;
    if (c.claim == internal::Claim::kBlocked) return try_dequeue_held(out);
    return Status::kEmpty;
  }

  // A11, A19: kOk | kClosed (closed and empty) | kTimedOut | kCancelled (owner torn down, A25).
  [[nodiscard]] Status dequeue(T& out, Deadline deadline = Deadline::never()) noexcept {
    for (;;) {
      const Status s = try_dequeue(out);
      if (s != Status::kEmpty) return s;
      if (traced_await(
              trace::Side::kEmpty, *not_empty_, deadline,
              [this] { return consumer_may_progress(); },
              [this] {
                return !ring_.consumers_held() && (ring_.poll_data() || stash_nonempty());
              }) == Status::kTimedOut) {
        const Status last = try_dequeue(out);
        return last == Status::kEmpty ? verdict(Status::kTimedOut) : last;
      }
    }
  }

  // ---- bulk ----

  // Burst: moves up to items.size() elements in, never waits. count = how many (the first ones).
  [[nodiscard]] BulkResult try_enqueue_burst(std::span<T> items) noexcept {
    if (items.empty()) return {Status::kOk, 0};
    const internal::ClaimResult c =
        ring_.claim_push(items.size(), internal::Amount::kUpTo, internal::Claimant::kAny);
    if (c.claim != internal::Claim::kOk) return {push_failure(c.claim), 0};
    fill(c, items.data());
    return {c.count == items.size() ? Status::kOk : Status::kFull, c.count};
  }

  // Burst: moves up to out.size() elements into out[0..count), never waits.
  [[nodiscard]] BulkResult try_dequeue_burst(std::span<T> out) noexcept {
    if (out.empty()) return {Status::kOk, 0};
    internal::ClaimResult c{internal::Claim::kBlocked};
    if (!unflagged_stash()) {
      c = ring_.claim_pop(out.size(), internal::Amount::kUpTo, internal::Claimant::kAny);
    }
    if (c.claim == internal::Claim::kOk) {
      drain(c, out.data());
      return {Status::kOk, c.count};
    }
    if (c.claim == internal::Claim::kClosed) return {Status::kClosed, 0};
    if (c.claim == internal::Claim::kBlocked) {  // put-back elements first, one at a time
      const Status s = try_dequeue_held(out[0]);
      return {s, s == Status::kOk ? std::size_t{1} : std::size_t{0}};
    }
    return {Status::kEmpty, 0};
  }

  // A7-A10: pushes every item, waiting for room; the items form one contiguous run. An empty
  // span succeeds at once, even on a closed queue (A8). On failure count says how many of the
  // first items went in (they stay in the queue: A23); the rest are untouched.
  [[nodiscard]] BulkResult enqueue_many(std::span<T> items,
                                        Deadline deadline = Deadline::never()) noexcept {
    if (items.empty()) return {Status::kOk, 0};
    const std::size_t n = items.size();
    internal::ClaimResult c =
        ring_.claim_push(n, internal::Amount::kExactly, internal::Claimant::kAny);
    if (c.claim == internal::Claim::kNone && n <= capacity()) {
      // Room for the whole batch usually appears within a spin: wait that long before pushing
      // it piecemeal (each piece would share lines with the consumer's reads).
      spin_until([this, n] { return ring_.poll_free() >= n; });
      c = ring_.claim_push(n, internal::Amount::kExactly, internal::Claimant::kAny);
    }
    if (c.claim == internal::Claim::kOk) {
      fill(c, items.data());
      return {Status::kOk, c.count};
    }
    if (c.claim == internal::Claim::kClosed) return {Status::kClosed, 0};
    const BulkResult r = enqueue_slow(items, deadline);
    return {verdict(r.status), r.count};
  }

  // A13-A15, A19, A20: `out` is cleared, then receives exactly n elements in FIFO order (kOk).
  // Closed with fewer than n left: kClosed, `out` empty, and the elements it had taken are back
  // at the front. kTimedOut: the same, at the deadline. n == 0 returns kOk at once (A13).
  // Throws std::bad_alloc only from out.reserve(n), before touching the queue.
  [[nodiscard]] Status dequeue_many(std::size_t n, std::vector<T>& out,
                                    Deadline deadline = Deadline::never()) {
    return verdict(dequeue_n(n, out, deadline, Batch::kMany));
  }

  // A16, A21: on an open queue as dequeue_many; once closed returns min(n, remaining) >= 1
  // elements without waiting, or kClosed if none remain.
  [[nodiscard]] Status dequeue_up_to(std::size_t n, std::vector<T>& out,
                                     Deadline deadline = Deadline::never()) {
    return verdict(dequeue_n(n, out, deadline, Batch::kUpTo));
  }

  // ---- close ----

  // A17, A22-A24. kDrain: kOk once the close took effect (after the enqueues blocked before it);
  // kClosed if a close was already requested (TF: Cancelled "already closed"); kCancelled if a
  // close(cancel) overtook it (the queue is closed then); kTimedOut if blocked enqueues outlived
  // the deadline (the close still takes effect when they finish; enqueues arriving later fail).
  // kCancelPendingEnqueues: closes at once, fails blocked enqueues, always kOk.
  Status close(CloseMode mode = CloseMode::kDrain, Deadline deadline = Deadline::never()) noexcept {
    trace::queue_closed(trace_id(), mode == CloseMode::kCancelPendingEnqueues);
    if (mode == CloseMode::kCancelPendingEnqueues) {
      // seq_cst: visible to a drain close() before the ring's closed bit is.
      cancelled_.store(true, std::memory_order_seq_cst);
      ring_.begin_close(/*cancel=*/true);
      wake_everyone();
      return Status::kOk;
    }
    if (!ring_.begin_close(/*cancel=*/false)) return Status::kClosed;
    // seq_cst: pairs with the registration in enqueue_slow() (store->load on both sides).
    if (registered_producers_->load(std::memory_order_seq_cst) == 0) finish_close();
    const Status s =
        traced_await(trace::Side::kClose, *not_full_, deadline, [this] { return ring_.closed(); });
    if (s == Status::kTimedOut) return verdict(Status::kTimedOut);
    return cancelled_.load(std::memory_order_seq_cst) ? Status::kCancelled : Status::kOk;
  }

  // A25: wakes every sleeping operation so that it re-checks its deadline and its owner
  // (engine/internal/owner.h); those whose owner was torn down return kCancelled, the others
  // sleep again. Changes nothing in the queue. Session::close() calls it.
  void interrupt_waiters() noexcept { wake_everyone(); }

 private:
  using Ring = typename Policy::template Ring<T>;
  enum class Batch : std::uint8_t { kMany, kUpTo };

  static std::size_t checked_capacity(std::int64_t capacity) {
    if (capacity < 1) throw invalid_argument("capacity", capacity, "must be >= 1");
    return static_cast<std::size_t>(capacity);
  }
  static std::pmr::memory_resource* checked_memory(std::pmr::memory_resource* memory) {
    if (memory == nullptr) throw invalid_argument("memory", "null", "must be a memory resource");
    return memory;
  }

  Status push_one(T& value, internal::Claimant who) noexcept {
    const internal::ClaimResult c = ring_.claim_push(1, internal::Amount::kExactly, who);
    if (c.claim != internal::Claim::kOk) return push_failure(c.claim);
    ring_.push(c.pos, std::move(value));
    ring_.publish_push(c.pos + 1);
    not_empty_->notify_all();
    return Status::kOk;
  }

  // A wait that ended as timed out because the calling thread's owner was torn down (A25) is
  // reported as kCancelled.
  static Status verdict(Status s) noexcept {
    return s == Status::kTimedOut && internal::owner_cancelled() ? Status::kCancelled : s;
  }

  static Status push_failure(internal::Claim c) noexcept {
    return c == internal::Claim::kClosed ? Status::kClosed : Status::kFull;
  }

  void fill(const internal::ClaimResult& c, T* items) noexcept {
    ring_.push_bulk(c.pos, items, c.count);
    ring_.publish_push(c.pos + c.count);
    not_empty_->notify_all();
  }

  void drain(const internal::ClaimResult& c, T* out) noexcept {
    ring_.pop_bulk(c.pos, out, c.count);
    ring_.publish_pop(c.pos + c.count);
    not_full_->notify_all();
  }

  // Waits until `ready()` or the deadline: spin and yield for about the cost of a futex round
  // trip, polling the cheaper hint `spin_ready()`, then sleep on `event` after checking
  // `ready()`, the exact condition its notifiers announce. Returns kOk when ready (or the hint)
  // held, else kTimedOut.
  using EventCount = internal::BasicEventCount<Ring::kWaitProtocol>;

  // Pauses a waiting side spends before its first look at the other side's position word
  // (SpscRing::kPollPacing; 0 for rings that do not ask for it).
  static constexpr std::uint32_t kPollPacing = [] {
    if constexpr (requires { Ring::kPollPacing; }) {
      return Ring::kPollPacing;
    } else {
      return std::uint32_t{0};
    }
  }();

  static void pace() noexcept {
    for (std::uint32_t i = 0; i < kPollPacing; ++i) internal::cpu_relax();
  }

  template <class Ready, class SpinReady>
  static Status await(EventCount& event, Deadline deadline, Ready ready,
                      SpinReady spin_ready) noexcept {
    internal::Backoff backoff;
    pace();
    while (!backoff.should_park()) {
      if (spin_ready()) return Status::kOk;
      backoff.snooze();
    }
    for (;;) {
      if (ready()) return Status::kOk;
      const typename EventCount::Key key = event.prepare_wait();
      if (ready()) {
        event.cancel_wait(key);
        return Status::kOk;
      }
      // A25: a torn-down owner ends the wait as a deadline would (verdict() says kCancelled).
      if (deadline.expired() || internal::owner_cancelled()) {
        event.cancel_wait(key);
        return Status::kTimedOut;
      }
      event.wait(key, deadline);
    }
  }

  template <class Ready>
  static Status await(EventCount& event, Deadline deadline, Ready ready) noexcept {
    return await(event, deadline, ready, ready);
  }

  // await() as a blocked span in traces (engine/trace.h), with the queue's size at both ends.
  // noinline: a slow path; kept out of the fast paths that call it (STYLE.md, "Waiting").
  template <class Ready, class SpinReady>
  [[gnu::noinline]] Status traced_await(trace::Side side, EventCount& event, Deadline deadline, Ready ready,
                      SpinReady spin_ready) noexcept {
    trace::queue_blocked_begin(trace_id(), side, size_approx());
    const Status s = await(event, deadline, ready, spin_ready);
    trace::queue_blocked_end(trace_id(), side, size_approx());
    return s;
  }
  template <class Ready>
  Status traced_await(trace::Side side, EventCount& event, Deadline deadline,
                      Ready ready) noexcept {
    return traced_await(side, event, deadline, ready, ready);
  }

  // The spin phase of await() alone: never sleeps.
  template <class Ready>
  static void spin_until(Ready ready) noexcept {
    internal::Backoff backoff;
    pace();
    while (!backoff.should_park() && !ready()) backoff.snooze();
  }

  bool consumer_may_progress() const noexcept {
    if (ring_.consumers_held()) return false;
    return has_data() || ring_.closed() || stash_nonempty();
  }

  // Snapshots for waiting predicates. Head is read before tail: head never passes tail, so the
  // difference cannot wrap; progress after the read is announced by a notification.
  bool has_data() const noexcept {
    const std::uint64_t h = ring_.head_pos();
    return ring_.tail_pos() != h;
  }
  bool has_room() const noexcept {
    const std::uint64_t h = ring_.head_pos();
    return ring_.tail_pos() - h < ring_.capacity();
  }

  // Put-back elements that the ring's claim does not report by itself. MpmcRing flags them in
  // its head word (kStash), so its claims already return kBlocked and the fast path need not
  // look twice; SpscRing has no such bit and its single consumer checks the count here.
  bool unflagged_stash() const noexcept {
    if constexpr (Ring::kStashFlaggedInClaims) {
      return false;
    } else {
      return stash_nonempty();
    }
  }

  bool stash_nonempty() const noexcept {
    // relaxed: a hint; the stash itself is read only by the consumers' holder.
    return stash_count_.load(std::memory_order_relaxed) != 0;
  }

  // ---- blocked producers ----

  // The producers' slow path, a blocked span in traces from before it registers (so a
  // registered producer is always inside its span) until it is done.
  [[gnu::noinline]] BulkResult enqueue_slow(std::span<T> items, Deadline deadline) noexcept {
    trace::queue_blocked_begin(trace_id(), trace::Side::kFull, size_approx());
    const BulkResult r = enqueue_blocked(items, deadline);
    trace::queue_blocked_end(trace_id(), trace::Side::kFull, size_approx());
    return r;
  }

  // Registers as a blocked producer (so a plain close waits for it: A17), then pushes all of
  // `items` as one run, holding the producer side when it needs more than one claim.
  BulkResult enqueue_blocked(std::span<T> items, Deadline deadline) noexcept {
    // seq_cst: pairs with begin_close() + the load in close() (store->load on both sides).
    registered_producers_->fetch_add(1, std::memory_order_seq_cst);
    if (ring_.closing()) return unregister({Status::kClosed, 0});
    const bool single = items.size() == 1;
    const internal::Claimant who =
        single ? internal::Claimant::kRegistered : internal::Claimant::kHolder;
    if (!single) {
      // Become the producers' holder: one partial enqueue_many at a time.
      for (;;) {
        if (ring_.cancelled_for_registered()) return unregister({Status::kCancelled, 0});
        if (ring_.try_hold_producers()) break;
        if (await(*not_full_, deadline, [this] {
              return !ring_.producers_held() || ring_.cancelled_for_registered();
            }) == Status::kTimedOut) {
          return unregister({Status::kTimedOut, 0});
        }
      }
    }
    std::size_t done = 0;
    Status result = Status::kOk;
    bool last_try = false;
    while (done < items.size()) {
      const internal::ClaimResult c =
          ring_.claim_push(items.size() - done, internal::Amount::kUpTo, who);
      if (c.claim == internal::Claim::kOk) {
        fill(c, items.data() + done);
        done += c.count;
        continue;
      }
      if (c.claim == internal::Claim::kClosed) {  // closed while we were registered: cancel
        result = Status::kCancelled;
        break;
      }
      if (last_try) {
        result = Status::kTimedOut;
        break;
      }
      // On timeout, one last claim: room may have appeared just as the deadline passed.
      const bool holder = who == internal::Claimant::kHolder;
      last_try = await(
                     *not_full_, deadline,
                     [this, holder] {
                       return (has_room() && (holder || !ring_.producers_held())) ||
                              ring_.closed() || ring_.cancelled_for_registered();
                     },
                     [this, holder] {
                       return (ring_.poll_room() && (holder || !ring_.producers_held())) ||
                              ring_.closed();
                     }) == Status::kTimedOut;
    }
    if (!single) {
      ring_.release_producers();
      not_full_->notify_all();  // the next producer waiting for the hold
    }
    return unregister({result, done});
  }

  BulkResult unregister(BulkResult r) noexcept {
    // seq_cst: pairs with begin_close(); the last producer out finishes a pending close.
    if (registered_producers_->fetch_sub(1, std::memory_order_seq_cst) == 1 && ring_.closing() &&
        !ring_.closed()) {
      finish_close();
    }
    return r;
  }

  void finish_close() noexcept {
    ring_.finish_close();
    wake_everyone();
  }

  void wake_everyone() noexcept {
    not_empty_->notify_slow();
    not_full_->notify_slow();
  }

  // ---- the consumers' hold and the stash ----

  // Takes one element while the consumer side is held or put-back elements wait in the stash.
  Status try_dequeue_held(T& out) noexcept {
    if (!ring_.try_hold_consumers()) return Status::kEmpty;
    Status s = Status::kEmpty;
    if (take_from_stash(out)) {
      s = Status::kOk;
    } else {
      const internal::ClaimResult c =
          ring_.claim_pop(1, internal::Amount::kExactly, internal::Claimant::kHolder);
      if (c.claim == internal::Claim::kOk) {
        out = ring_.pop(c.pos);
        ring_.publish_pop(c.pos + 1);
        not_full_->notify_all();
        s = Status::kOk;
      } else if (c.claim == internal::Claim::kClosed) {
        s = Status::kClosed;
      }
    }
    release_consumers();
    return s;
  }

  // Holder only. Takes the front put-back element, if any.
  bool take_from_stash(T& out) noexcept {
    if (stash_pos_ == stash_.size()) return false;
    out = std::move(stash_[stash_pos_]);
    ++stash_pos_;
    settle_stash();
    return true;
  }

  // Holder only: publishes the stash's count and clears it (keeping its buffer) once drained.
  void settle_stash() noexcept {
    if (stash_pos_ == stash_.size()) {
      stash_.clear();
      stash_pos_ = 0;
      ring_.set_stash_flag(false);
    }
    // relaxed: read only as a hint (stash_nonempty, size_approx); the kStash bit in the ring's
    // head word is what orders consumers.
    stash_count_.store(stash_.size() - stash_pos_, std::memory_order_relaxed);
  }

  void release_consumers() noexcept {
    ring_.release_consumers();
    not_empty_->notify_all();  // consumers waiting for the hold
  }

  Status dequeue_n(std::size_t n, std::vector<T>& out, Deadline deadline, Batch batch) {
    out.clear();
    if (n == 0) return Status::kOk;  // A13: no wait, no closed check
    out.reserve(n);                  // may throw, before the queue is touched
    // Fast path: the whole batch is there and nobody holds the side. If it is not there yet,
    // spin briefly for it before the slow path takes elements one piece at a time (TF's
    // semantics, A15, are kept: the slow path still takes what exists once the spin is over).
    if (!unflagged_stash()) {
      internal::ClaimResult c =
          ring_.claim_pop(n, internal::Amount::kExactly, internal::Claimant::kAny);
      if (c.claim == internal::Claim::kNone && n <= capacity()) {
        spin_until([this, n] { return ring_.poll_stored() >= n || ring_.closed(); });
        c = ring_.claim_pop(n, internal::Amount::kExactly, internal::Claimant::kAny);
      }
      if (c.claim == internal::Claim::kOk) {
        take_run(c, out);
        return Status::kOk;
      }
    }
    // Slow path: hold the consumer side so our run stays contiguous, take what there is, wait.
    while (!ring_.try_hold_consumers()) {
      if (traced_await(trace::Side::kEmpty, *not_empty_, deadline,
                       [this] { return !ring_.consumers_held(); }) == Status::kTimedOut) {
        return Status::kTimedOut;
      }
    }
    Status result = Status::kOk;
    // One blocked span for the whole wait for the batch, not one per element that arrives.
    trace::BlockedSpan blocked(trace_id(), trace::Side::kEmpty);
    auto size = [this] { return size_approx(); };
    while (out.size() < n) {
      if (stash_pos_ < stash_.size()) {
        const std::size_t k = std::min(n - out.size(), stash_.size() - stash_pos_);
        for (std::size_t i = 0; i < k; ++i) out.push_back(std::move(stash_[stash_pos_ + i]));
        stash_pos_ += k;
        settle_stash();
        continue;
      }
      const internal::ClaimResult c =
          ring_.claim_pop(n - out.size(), internal::Amount::kUpTo, internal::Claimant::kHolder);
      if (c.claim == internal::Claim::kOk) {
        take_run(c, out);
        continue;
      }
      if (c.claim == internal::Claim::kClosed) {
        result = Status::kClosed;
        break;
      }
      blocked.begin_once(size);
      const auto ready = [this] { return has_data() || ring_.closed(); };
      if (await(*not_empty_, deadline, ready, ready) == Status::kTimedOut) {
        if (has_data()) continue;  // we hold the side: this claim cannot fail
        result = Status::kTimedOut;
        break;
      }
    }
    blocked.end(size);
    if (result == Status::kClosed && batch == Batch::kUpTo && !out.empty()) {
      result = Status::kOk;  // A21: the remainder
    }
    if (result != Status::kOk && !out.empty()) put_back(out);  // A20
    release_consumers();
    return result;
  }

  // Appends the claimed run to `out` (reserved for it) and frees its slots. SpscRing's slots
  // are laid out as a T[], so a trivially copyable T moves in one copy per contiguous piece
  // (pop_bulk); otherwise element by element.
  void take_run(const internal::ClaimResult& c, std::vector<T>& out) noexcept {
    if constexpr (std::is_same_v<Policy, Spsc> && std::is_trivially_copyable_v<T> &&
                  std::is_trivially_default_constructible_v<T>) {
      const std::size_t at = out.size();
      out.resize(at + c.count);  // within the reserved capacity: no allocation
      ring_.pop_bulk(c.pos, out.data() + at, c.count);
    } else {
      for (std::size_t i = 0; i < c.count; ++i) out.push_back(ring_.pop(c.pos + i));
    }
    ring_.publish_pop(c.pos + c.count);
    not_full_->notify_all();
  }

  // Holder only. The stash is empty here (the loop drains it before the ring), so the taken
  // elements become the stash by swapping buffers: no allocation, nothing can fail.
  void put_back(std::vector<T>& taken) noexcept {
    stash_.swap(taken);
    stash_pos_ = 0;
    ring_.set_stash_flag(true);
    settle_stash();
  }

  Ring ring_;
  const std::string name_;  // read-only configuration
  const trace::Registration trace_;  // the queue's name in traces; read-only
  // Producers sleep here for room or for the producers' hold; a drain close() sleeps here for
  // the blocked producers to finish. Consumers notify it after freeing slots.
  CachePadded<EventCount> not_full_;
  // Consumers sleep here for elements, for the consumers' hold or for the close.
  CachePadded<EventCount> not_empty_;
  // Blocked producers registered before a close (A17); read by close().
  CachePadded<std::atomic<std::uint32_t>> registered_producers_{0};
  // Put-back elements (A20), front at stash_pos_. Touched only by the consumers' holder
  // (ordered by the acquire/release of the hold); stash_count_ mirrors the count for readers.
  std::vector<T> stash_;
  std::size_t stash_pos_ = 0;
  std::atomic<std::size_t> stash_count_{0};
  std::atomic<bool> cancelled_{false};  // close(kCancelPendingEnqueues) was called
};

}  // namespace conveyor
