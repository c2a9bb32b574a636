#include "engine/coordinator.h"

#include <algorithm>
#include <string>

#include "engine/internal/backoff.h"
#include "engine/internal/event_count.h"
#include "engine/internal/futex.h"
#include "engine/trace.h"

namespace conveyor {

namespace {

// Phases of Coordinator::state_ (bits 1..0); the generation sits above them.
constexpr std::uint32_t kPhaseMask = 3;
constexpr std::uint32_t kRunning = 0;
constexpr std::uint32_t kStopped = 1;
constexpr std::uint32_t kHeld = 2;        // stopped; one thread holds the error slot
constexpr std::uint32_t kHeldWaited = 3;  // as kHeld, and someone sleeps on the word for the slot
constexpr std::uint32_t kGenerationStep = 4;

constexpr std::uint32_t phase(std::uint32_t w) noexcept { return w & kPhaseMask; }
constexpr std::uint32_t with_phase(std::uint32_t w, std::uint32_t p) noexcept {
  return (w & ~kPhaseMask) | p;
}
// Wraps after 2^30 clears; a waiter would have to sleep through all of them to be confused.
constexpr std::uint32_t next_generation(std::uint32_t w) noexcept {
  return (w & ~kPhaseMask) + kGenerationStep;  // phase kRunning
}

std::uint32_t mask_of(const ErrorKind* begin, const ErrorKind* end) noexcept {
  std::uint32_t m = 0;
  for (const ErrorKind* k = begin; k != end; ++k) m |= 1u << static_cast<unsigned>(*k);
  return m;
}

// Sleeps on lifecycle_events() until `ready()` or the deadline; returns ready().
template <class Ready>
bool wait_lifecycle(Ready ready, Deadline deadline) {
  internal::EventCount& events = internal::lifecycle_events();
  for (;;) {
    if (ready()) return true;
    const internal::EventCount::Key key = events.prepare_wait();
    // Re-check after registering: a thread finishing or a stop arriving now notifies us.
    if (ready()) {
      events.cancel_wait(key);
      return true;
    }
    if (events.wait(key, deadline) == internal::WaitResult::kTimedOut) return ready();
  }
}

bool all_done(const std::vector<Thread::Handle>& threads) noexcept {
  return std::all_of(threads.begin(), threads.end(),
                     [](const Thread::Handle& h) { return h.done(); });
}

}  // namespace

Coordinator::Coordinator() : Coordinator({ErrorKind::kOutOfRange}) {}

Coordinator::Coordinator(std::initializer_list<ErrorKind> clean_stop_kinds)
    : clean_stop_mask_(mask_of(clean_stop_kinds.begin(), clean_stop_kinds.end())),
      trace_id_(trace::register_object("coordinator", "coordinator")) {}

Coordinator::Coordinator(const std::vector<ErrorKind>& clean_stop_kinds)
    : clean_stop_mask_(mask_of(clean_stop_kinds.data(),
                               clean_stop_kinds.data() + clean_stop_kinds.size())),
      trace_id_(trace::register_object("coordinator", "coordinator")) {}

Coordinator::~Coordinator() {
  trace::forget_object(trace_id_);
  // relaxed: by contract nobody else uses the coordinator while it is destroyed.
  RegisteredThread* n = registered_.load(std::memory_order_relaxed);
  while (n != nullptr) {
    RegisteredThread* next = n->next;
    delete n;
    n = next;
  }
}

bool Coordinator::is_clean_stop(const std::exception_ptr& error) const noexcept {
  if (!error) return true;
  return (clean_stop_mask_ >> static_cast<unsigned>(kind_of(error))) & 1u;
}

bool Coordinator::should_stop() const noexcept {
  // S4: pairs with S1/S2 in request_stop().
  return phase(state_.load(std::memory_order_acquire)) != kRunning;
}

bool Coordinator::wait_for_stop(Deadline deadline) const noexcept {
  // S4: pairs with S1/S2 in request_stop().
  const std::uint32_t start = state_.load(std::memory_order_acquire);
  if (phase(start) != kRunning) return true;
  for (;;) {
    const internal::WaitResult r = internal::futex_wait(state_, start, deadline);
    // Any change from the running word we started with is a stop (the generation only moves from
    // a stopped phase), even if clear_stop() has already run again: TF's Event.wait() is true then.
    // S4: pairs with S1/S2.
    if (state_.load(std::memory_order_acquire) != start) return true;
    if (r == internal::WaitResult::kTimedOut) return false;
    // kAwoken without a change (a spurious wake), kInterrupted: sleep again.
  }
}

void Coordinator::request_stop(std::exception_ptr error) {
  if (error && is_clean_stop(error)) error = nullptr;  // C5
  // C9. J2: pairs with J1 in join().
  if (error && joined_.load(std::memory_order_acquire)) std::rethrow_exception(error);

  // relaxed: only the first guess for the CAS, which re-reads the word.
  std::uint32_t w = state_.load(std::memory_order_relaxed);
  for (;;) {
    // F1: a stop was requested before (or is being recorded, or the slot is read: all stopped
    // phases). First stop wins; this one is a no-op, like TF Python.
    if (phase(w) != kRunning) return;
    // S1, the linearization point of the stop. With an error we take the slot at once, so no
    // reader can see the stop without the error. acq_rel: see the header. Failure: relaxed, the
    // loop only looks at the phase again.
    if (state_.compare_exchange_weak(w, with_phase(w, error ? kHeld : kStopped),
                                     std::memory_order_acq_rel, std::memory_order_relaxed)) {
      break;
    }
  }
  trace::stop_requested(trace_id_, error != nullptr);
  if (error) {
    trace::first_error(trace_id_, kind_of(error));
    error_ = std::move(error);
    // S2: pairs with S3 of the next slot holder (join's read, clear_stop). A plain store, not
    // unlock_slot(): the wake below is unconditional anyway and also wakes slot sleepers.
    state_.store(with_phase(w, kStopped), std::memory_order_release);
  }
  // A stop is rare: always wake, no sleeper count on the word.
  internal::futex_wake(state_, internal::kWakeAll);  // wait_for_stop() and slot sleepers
  internal::lifecycle_events().notify_all();          // join() sleepers
}

std::uint32_t Coordinator::lock_slot() const noexcept {
  internal::Backoff backoff;
  // relaxed: a first guess; the slot is only taken by the acquire CAS below (S3).
  std::uint32_t w = state_.load(std::memory_order_relaxed);
  for (;;) {
    switch (phase(w)) {
      case kRunning:
        return w;  // nothing recorded (error_ is null while running); nothing to lock
      case kStopped:
        // S3: pairs with S2 of the last holder. Failure: relaxed, we loop on the new value.
        if (state_.compare_exchange_weak(w, with_phase(w, kHeld), std::memory_order_acquire,
                                         std::memory_order_relaxed)) {
          return w;
        }
        break;
      case kHeld:
        // Holders keep the slot for a copy or a reset: spin a little before sleeping.
        if (!backoff.should_park()) {
          backoff.snooze();
          // relaxed: only to see whether the slot was released; taking it is S3.
          w = state_.load(std::memory_order_relaxed);
          break;
        }
        // relaxed: only marks that a sleeper exists, so that the holder wakes us (unlock_slot).
        if (!state_.compare_exchange_weak(w, with_phase(w, kHeldWaited), std::memory_order_relaxed,
                                          std::memory_order_relaxed)) {
          break;
        }
        w = with_phase(w, kHeldWaited);
        [[fallthrough]];
      case kHeldWaited:
        internal::futex_wait(state_, w, Deadline::never());
        // relaxed: as above.
        w = state_.load(std::memory_order_relaxed);
        break;
    }
  }
}

void Coordinator::unlock_slot(std::uint32_t to) const noexcept {
  // S2: pairs with S3 of the next holder and with S1 (when `to` opens a new generation).
  const std::uint32_t prev = state_.exchange(to, std::memory_order_release);
  // Wake all: each sleeper re-marks kHeldWaited if it loses again, so no wake is lost.
  if (phase(prev) == kHeldWaited) internal::futex_wake(state_, internal::kWakeAll);
}

std::exception_ptr Coordinator::recorded_error() const noexcept {
  const std::uint32_t w = lock_slot();
  if (phase(w) == kRunning) return nullptr;
  std::exception_ptr e = error_;  // a reference-count increment: cannot throw
  unlock_slot(w);
  return e;
}

void Coordinator::raise_requested_exception() const {
  if (std::exception_ptr e = recorded_error()) std::rethrow_exception(e);
}

void Coordinator::clear_stop() noexcept {
  const std::uint32_t w = lock_slot();
  if (phase(w) == kRunning) {
    // Not stopped: only joined() to reset (TF does the same). relaxed: joined_ publishes no data
    // of ours; J1/J2 order join's effects, and a reset carries none.
    joined_.store(false, std::memory_order_relaxed);
    return;
  }
  error_ = nullptr;
  // relaxed: ordered before the release below, which any later reader of the state acquires.
  joined_.store(false, std::memory_order_relaxed);
  unlock_slot(next_generation(w));  // S2: the new generation, running
}

bool Coordinator::joined() const noexcept {
  // relaxed: a status query; J2 is the load that orders (C9).
  return joined_.load(std::memory_order_relaxed);
}

void Coordinator::register_thread(const Thread& thread) { register_thread(thread.handle()); }

void Coordinator::register_thread(Thread::Handle handle) {
  if (!handle.valid()) throw invalid_argument("thread", "an empty Thread", "must be started");
  auto* node = new RegisteredThread{std::move(handle), nullptr};
  // relaxed: the CAS below re-reads the head.
  node->next = registered_.load(std::memory_order_relaxed);
  // R1: pairs with R2 in join(); publishes *node. Failure: relaxed, node->next is refreshed and
  // nothing else is read.
  while (!registered_.compare_exchange_weak(node->next, node, std::memory_order_release,
                                            std::memory_order_relaxed)) {
  }
}

void Coordinator::join(const std::vector<const Thread*>& threads,
                       std::chrono::nanoseconds stop_grace_period, LiveThreads live_threads) {
  std::vector<Thread::Handle> all;
  for (const Thread* t : threads) {
    if (t == nullptr) throw invalid_argument("threads", "nullptr", "must point to Threads");
    Thread::Handle h = t->handle();
    if (!h.valid()) throw invalid_argument("threads", "an empty Thread", "must be started");
    if (std::find(all.begin(), all.end(), h) == all.end()) all.push_back(std::move(h));
  }

  // Take the registered threads (checks above first, so an InvalidArgument loses none of them).
  // R2: pairs with R1 in register_thread().
  RegisteredThread* head = registered_.exchange(nullptr, std::memory_order_acquire);
  std::vector<Thread::Handle> registered;
  while (head != nullptr) {
    RegisteredThread* next = head->next;
    registered.push_back(std::move(head->handle));
    delete head;
    head = next;
  }
  // The stack is newest first; list names in registration order.
  for (auto it = registered.rbegin(); it != registered.rend(); ++it) {
    if (std::find(all.begin(), all.end(), *it) == all.end()) all.push_back(std::move(*it));
  }

  // C7/C8: until every thread is done or a stop is requested; join itself never requests one.
  trace::join_begin(trace_id_);
  wait_lifecycle([&] { return should_stop() || all_done(all); }, Deadline::never());
  // C7: the stragglers' grace period.
  if (!all_done(all)) {
    wait_lifecycle([&] { return all_done(all); }, Deadline::after(stop_grace_period));
  }
  trace::join_end(trace_id_);

  std::string stragglers;
  for (const Thread::Handle& h : all) {
    if (h.done()) continue;
    if (!stragglers.empty()) stragglers += ' ';
    stragglers += h.name();
  }

  // J1: pairs with J2 in request_stop().
  joined_.store(true, std::memory_order_release);
  if (std::exception_ptr e = recorded_error()) std::rethrow_exception(e);
  if (!stragglers.empty() && live_threads == LiveThreads::kRaise) {
    throw Error(ErrorKind::kFailedPrecondition,
                "Coordinator stopped with threads still running: " + stragglers);
  }
}

}  // namespace conveyor
