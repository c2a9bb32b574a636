// ShuffleQueue<T>: a bounded queue that hands out its elements in random order, with
// TensorFlow's RandomShuffleQueue semantics (SPEC.md B). Producers never take a lock: each
// appends to its own lane, a lock-free ring, so producers on different cores share no line.
//
// Contract
//  - Any number of producer and consumer threads. Each dequeue returns an element chosen
//    uniformly at random among the stored ones (TF's rule, B3); while the queue is open a
//    dequeue runs only when size > min_after_dequeue and never takes the size below it (B5),
//    dequeue_many / dequeue_up_to take their elements one at a time under that rule. After the
//    close the floor no longer applies (B6); a dequeue_many that cannot be filled puts what it
//    took back and reports kClosed (B7); dequeue_up_to returns what is left (B8).
//  - Capacity, enqueue on a closed queue (kClosed, TF's Cancelled: B4), partial enqueue_many
//    (A9), close(kDrain) waiting behind blocked enqueues (A17), close(kCancelPendingEnqueues)
//    (A23), owner cancellation (A25) and deadlines (A26, with put-back) are FifoQueue's.
//  - Nothing is lost or duplicated (B11): a failed enqueue leaves the value with the caller; a
//    failed dequeue_many puts what it took back. Put-back may take the size above the capacity
//    for a while, as in TF. While a dequeue_many / dequeue_up_to waits with elements in hand it
//    holds the consumer side (TF: later requests wait behind the head), so no other dequeue
//    can see a "closed and empty" queue while elements are out on loan.
//  - Determinism (B2): one random stream per queue (SplitMix64 seeded from the queue seed),
//    drawn only by the consumer holding the consumer lock; a producer appends to lane (its
//    index in the order threads first used the queue) mod lanes, spilling to the next lanes
//    when that one is full. So the same seed and the same sequence of operations, issued by
//    threads that first touch the queue in the same order, give the same output, element for
//    element. No seed: the queue seed comes from std::random_device (nondeterministic).
//  - Memory ordering: everything a producer wrote before enqueueing an element happens-before
//    everything its consumer does after dequeueing it (the slot's sequence word, R1/A2).
//    size_approx() is a snapshot.
//
// Algorithm. The capacity is split over L lanes (L = shards(), capacity_i = capacity / L, the
// first capacity % L lanes one more), so the lanes' capacities sum to the queue's and the
// capacity holds globally. Each lane is a Vyukov bounded ring (1024cores.net, "Bounded MPMC
// queue", 2010) on the producer side: producers claim positions by CAS on the lane's tail and
// publish each slot through its sequence word (2p free for position p, 2p+1 full). The consumer
// side is not a FIFO: consumers take the consumer lock (ShardLock), and the holder
//   1. extends each lane's published prefix [head, published) by reading sequence words,
//   2. draws r uniformly in [0, total), total = put-back stash + sum of the prefixes (B3: TF's
//      index = rand % size over every stored element),
//   3. moves the element at r out and the lane's oldest element (at head) into the hole and
//      advances head; the emptied slot goes back to producers (seq = 2(p + capacity_i)) later,
//      in a batch (lazy release, below).
// So a lane's stored elements stay contiguous from head, producers see an ordinary ring, and
// the pick is exactly TF's uniform pick over the same elements; only which element moves into
// the hole differs (TF moves the last one; docs/deviations.md B3). min_after_dequeue is checked
// against that total, so it holds globally too.
//
// Why one consumer lock and lock-free producers. Removing a *uniformly random* element needs
// the whole stored set in view and a compaction step; a lock-free version would need per-slot
// state that every dequeue scans. Producers are where a pipeline has its parallelism (readers
// and parsers feeding one reservoir), and in TF's design they fight over the one mutex with the
// consumer; here a producer's enqueue is the ring's CAS and two stores on lines it shares only
// with the consumer. A consumer's critical section is a few dozen instructions plus one load
// per lane.
//
// Lazy release (ShuffleLane has the references). A shuffle queue under load sits at its
// capacity: producers are faster than the consumer's random pick, and wait for room. Handing
// each emptied slot back at once made the consumer write, per element, the lines the waiting
// producers poll (the slot's sequence word, the lane's head): one cache-line transfer each way
// per element, which on this VM's far core placement (~460 ns round trip) cost more than the
// pick itself (2P1C: 4 M/s). Emptied slots are now handed back a batch at a time (capacity_i / 8,
// at most 32), so producers refill in bursts. Room held back is still room: try_enqueue asks for
// it before reporting kFull, a producer about to sleep asks for it (release_emptied(), under the
// consumer lock), and a take that sees a producer asleep for room releases everything (its
// registration is ordered before the take by that lock). The capacity holds as before; only a
// producer still spinning for room sees it a batch at a time.
//
// Waiting. Both EventCounts use the kAfterSeqCstRmw protocol (event_count.h). A producer
// publishes a slot with a seq_cst exchange of its sequence word, and consumers sleep until the
// *published* elements pass the floor (their predicate scans the sequence words past the
// consumer side's published prefix), so a consumer never spins on a producer that was
// preempted between its claim and its publication: it sleeps and the publication wakes it.
// (Spinning there was measured: on a machine busy with other processes, each sched_yield gave
// away a whole time slice.) Producers sleep until a lane has room; a release (a batch of freed
// slots) is followed by one seq_cst fence before reading the waiter count (store -> fence ->
// load, against the waiter's RMW -> load).
//
// Invariants (per lane; positions without state bits):
//   released <= head <= published <= tail;  tail - released <= capacity_i;
//   [released, head): emptied slots not yet handed back to producers (head_pub == released);
//   [head, published): elements the consumer side has seen published, in no order;
//   [published, tail): claimed by producers, published or about to be;
//   once the lane's tail has kClosed no position is claimed: tail is final.
//   The queue is "closed and drained" when every lane has head == tail, the stash is empty and
//   no other thread holds the consumer side (elements on loan come back as put-back).
//
// Deviations: blocked operations race instead of being served in arrival order (as FifoQueue,
// docs/deviations.md A10); the elements of one enqueue_many are not kept together (meaningless
// in a shuffle queue).
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <memory_resource>
#include <new>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "alloc/aligned_resource.h"
#include "alloc/cache_padded.h"
#include "engine/deadline.h"
#include "engine/fifo_queue.h"  // BulkResult, CloseMode
#include "engine/internal/backoff.h"
#include "engine/internal/event_count.h"
#include "engine/internal/owner.h"
#include "engine/internal/ring_common.h"
#include "engine/internal/shard_lock.h"
#include "engine/internal/shuffle_lane.h"
#include "engine/status.h"
#include "engine/trace.h"

namespace conveyor {

namespace internal {

inline std::uint64_t mix64(std::uint64_t z) noexcept {  // SplitMix64's finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// SplitMix64 (Steele, Lea, Flood 2014): 64-bit state, passes BigCrush; plenty for picking
// slots, and cheap enough for one draw per dequeued element.
struct SplitMix64 {
  std::uint64_t state = 0;
  std::uint64_t next() noexcept {
    state += 0x9e3779b97f4a7c15ULL;
    return mix64(state);
  }
};

// What a thread keeps per ShuffleQueue it enqueues to: its index in the order threads first
// used that queue (its home lane). A small direct-mapped cache keyed by the queue's
// process-unique id: a thread that alternates between queues whose ids collide gets a new index
// on each switch, which is correct (another home lane), only not reproducible.
struct ShuffleThreadEntry {
  std::uint64_t queue_uid = 0;  // 0 = empty
  std::uint64_t index = 0;
};
inline constexpr std::size_t kShuffleThreadEntries = 8;
inline thread_local std::array<ShuffleThreadEntry, kShuffleThreadEntries> shuffle_thread_entries{};
inline std::atomic<std::uint64_t> next_shuffle_queue_uid{1};

// The seed of a queue's random stream: SplitMix64 seeded with mix64(seed ^ mix64(1)) (tests
// reproduce the stream from it).
inline std::uint64_t shuffle_stream_seed(std::uint64_t seed) noexcept {
  return mix64(seed ^ mix64(1));
}

}  // namespace internal

template <class T>
class ShuffleQueue {
  static_assert(std::is_nothrow_move_constructible_v<T>, "ShuffleQueue needs nothrow-movable T");
  static_assert(std::is_nothrow_move_assignable_v<T>, "ShuffleQueue needs nothrow-movable T");
  static_assert(std::is_nothrow_destructible_v<T>);

 public:
  using value_type = T;
  // The kind TF's messages name (TensorQueue over a ShuffleQueue says "RandomShuffleQueue").
  static constexpr std::string_view kTfKind = "RandomShuffleQueue";
  static constexpr int kMaxShards = 64;
  static constexpr int kDefaultMaxShards = 8;

  // capacity >= 1 and 0 <= min_after_dequeue < capacity, else InvalidArgument (B1). seed:
  // nullopt = nondeterministic (B2). shards = lanes: 0 = one per hardware thread, at most 8;
  // else 1..64; never more than the capacity. All lane storage (exactly `capacity` slots) comes
  // from `memory` (must outlive the queue) at construction: enqueue and dequeue never allocate
  // (a put-back may grow the stash, which starts with room for 64 elements).
  ShuffleQueue(std::int64_t capacity, std::int64_t min_after_dequeue,
               std::optional<std::uint64_t> seed = std::nullopt,
               std::string name = "random_shuffle_queue", int shards = 0,
               std::pmr::memory_resource* memory = alloc::aligned_resource())
      : capacity_(checked_capacity(capacity)),
        min_after_dequeue_(checked_min(min_after_dequeue, capacity)),
        num_lanes_(std::min(checked_shards(shards), capacity_)),
        seed_(seed ? *seed : random_seed()),
        seed_explicit_(seed.has_value()),
        uid_(internal::next_shuffle_queue_uid.fetch_add(1, std::memory_order_relaxed)),
        name_(std::move(name)),
        trace_("shuffle_queue", name_, static_cast<std::int64_t>(capacity_)),
        consumer_(checked_memory(memory), internal::shuffle_stream_seed(seed_)) {
    // relaxed above: only uniqueness matters.
    lanes_.reserve(num_lanes_);
    for (std::size_t i = 0; i < num_lanes_; ++i) {
      const std::size_t share = capacity_ / num_lanes_ + (i < capacity_ % num_lanes_ ? 1 : 0);
      lanes_.push_back(std::make_unique<Lane>(share, memory));
    }
    consumer_->stash.reserve(kInitialStash);
  }

  ShuffleQueue(const ShuffleQueue&) = delete;
  ShuffleQueue& operator=(const ShuffleQueue&) = delete;

  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t min_after_dequeue() const noexcept { return min_after_dequeue_; }
  std::size_t shards() const noexcept { return num_lanes_; }
  const std::string& name() const noexcept { return name_; }
  // The queue's id in traces (engine/trace.h).
  std::uint32_t trace_id() const noexcept { return trace_.id(); }
  // The seed given to the constructor (nullopt: it was drawn from std::random_device).
  std::optional<std::uint64_t> seed() const noexcept {
    return seed_explicit_ ? std::optional<std::uint64_t>(seed_) : std::nullopt;
  }
  bool is_closed() const noexcept {  // A24
    return (consumer_->state.load(std::memory_order_seq_cst) & kStateClosed) != 0;
  }

  // Stored elements, counting those being inserted and not those in a pending dequeue_many's
  // hands. A snapshot: stale as soon as it returns.
  std::size_t size_approx() const noexcept { return static_cast<std::size_t>(claimed_total()); }
  // Producers blocked in enqueue / enqueue_many right now (what a drain close waits for).
  std::size_t waiting_producers_approx() const noexcept {
    return registered_->load(std::memory_order_relaxed);  // relaxed: a snapshot
  }

  // ---- single element ----

  // kOk | kFull | kClosed (closing or closed). On failure `value` is untouched. Never waits
  // for room; when every lane looks full it takes the consumer lock once to claim the slots
  // consumers emptied and hold back (lazy release), so kFull means the queue is at capacity.
  [[nodiscard]] Status try_enqueue(T&& value) noexcept {
    Pushed p = push_some(&value, 1, internal::Claimant::kAny);
    if (p.count == 0 && p.status == Status::kFull && release_emptied() != 0) {
      p = push_some(&value, 1, internal::Claimant::kAny);  // slots the consumers held back
    }
    return p.count == 1 ? Status::kOk : p.status;
  }

  // B4: kOk | kClosed | kCancelled (close(cancel) while blocked, or owner torn down: A25) |
  // kTimedOut. On failure `value` is untouched.
  [[nodiscard]] Status enqueue(T&& value, Deadline deadline = Deadline::never()) noexcept {
    const Pushed p = push_some(&value, 1, internal::Claimant::kAny);
    if (p.count == 1) return Status::kOk;
    if (p.status != Status::kFull) return p.status;
    return verdict(enqueue_slow(std::span<T>(&value, 1), deadline).status);
  }

  // kOk | kEmpty (nothing above the floor, or a dequeue_many holds the consumer side) |
  // kClosed (closed and nothing left).
  [[nodiscard]] Status try_dequeue(T& out) noexcept {
    Consumer& c = *consumer_;
    c.lock.lock();
    if (c.held.load(std::memory_order_relaxed) != 0) {  // relaxed: written under the lock
      c.lock.unlock();
      return Status::kEmpty;
    }
    const Taken t =
        take_locked(1, internal::Amount::kExactly, [&out](T&& v) noexcept { out = std::move(v); });
    if (t.count == 1) {
      c.lock.unlock();
      after_take(t);
      return Status::kOk;
    }
    const bool drained = drained_locked();
    c.lock.unlock();
    return drained ? Status::kClosed : Status::kEmpty;
  }

  // B5, B6: kOk | kClosed (closed and empty) | kTimedOut | kCancelled (owner torn down, A25).
  [[nodiscard]] Status dequeue(T& out, Deadline deadline = Deadline::never()) noexcept {
    for (;;) {
      const Status s = try_dequeue(out);
      if (s != Status::kEmpty) return s;
      if (traced_await(trace::Side::kEmpty, *not_empty_, deadline,
                       [this] { return consumer_may_progress(false); }) == Status::kTimedOut) {
        const Status last = try_dequeue(out);
        return last == Status::kEmpty ? verdict(Status::kTimedOut) : last;
      }
    }
  }

  // ---- bulk ----

  // A8, A9: pushes every item, waiting for room; what fits goes in at once. An empty span
  // succeeds at once, even on a closed queue. On failure `count` items (the first ones) went
  // in and stay; the rest are untouched.
  [[nodiscard]] BulkResult enqueue_many(std::span<T> items,
                                        Deadline deadline = Deadline::never()) noexcept {
    if (items.empty()) return {Status::kOk, 0};
    const Pushed p = push_some(items.data(), items.size(), internal::Claimant::kAny);
    if (p.count == items.size()) return {Status::kOk, p.count};
    if (p.status == Status::kClosed) return {Status::kClosed, p.count};
    const BulkResult rest = enqueue_slow(items.subspan(p.count), deadline);
    return {verdict(rest.status), p.count + rest.count};
  }

  // B5, B7: `out` is cleared, then receives exactly n elements (kOk), taken one at a time under
  // the min_after_dequeue rule. Closed with too few: kClosed, `out` empty, what it took is back
  // in the queue. kTimedOut / kCancelled: the same at the deadline / owner teardown. n == 0:
  // kOk at once. Throws std::bad_alloc only from out.reserve(n), before touching the queue.
  [[nodiscard]] Status dequeue_many(std::size_t n, std::vector<T>& out,
                                    Deadline deadline = Deadline::never()) {
    return verdict(dequeue_n(n, out, deadline, Batch::kMany));
  }

  // B8: on an open queue as dequeue_many; once closed returns min(n, left) >= 1 elements, or
  // kClosed if none are left.
  [[nodiscard]] Status dequeue_up_to(std::size_t n, std::vector<T>& out,
                                     Deadline deadline = Deadline::never()) {
    return verdict(dequeue_n(n, out, deadline, Batch::kUpTo));
  }

  // ---- close ----

  // As FifoQueue::close (A17, A22-A24). kDrain: kOk once closed (after the enqueues blocked
  // before it), kClosed if a close was already requested, kCancelled if a close(cancel)
  // overtook it, kTimedOut at the deadline (the close still happens later).
  // kCancelPendingEnqueues: closes at once, fails blocked enqueues, always kOk.
  Status close(CloseMode mode = CloseMode::kDrain, Deadline deadline = Deadline::never()) noexcept {
    trace::queue_closed(trace_id(), mode == CloseMode::kCancelPendingEnqueues);
    if (mode == CloseMode::kCancelPendingEnqueues) {
      // seq_cst: visible to a waiting drain close() before the closed state it waits for.
      cancelled_.store(true, std::memory_order_seq_cst);
      for (auto& lane : lanes_) lane->shut(kClosing | kClosed);
      finish_close();
      return Status::kOk;
    }
    // G1: seq_cst RMWs on every lane (lane 0 first), then the load of registered_; pairs with
    // G2 in enqueue_slow() (store->load on both sides): either we see the producer registered,
    // or it sees kClosing on lane 0 and gives up.
    if ((lanes_[0]->shut(kClosing) & (kClosing | kClosed)) != 0) return Status::kClosed;
    for (std::size_t i = 1; i < num_lanes_; ++i) (void)lanes_[i]->shut(kClosing);
    if (registered_->load(std::memory_order_seq_cst) == 0) finish_close();
    if (traced_await(trace::Side::kClose, *not_full_, deadline, [this] { return is_closed(); }) ==
        Status::kTimedOut) {
      return verdict(Status::kTimedOut);
    }
    return cancelled_.load(std::memory_order_seq_cst) ? Status::kCancelled : Status::kOk;
  }

  // A25: wakes every sleeping operation so that it re-checks its deadline and its owner.
  void interrupt_waiters() noexcept { wake_everyone(); }

 private:
  enum class Batch : std::uint8_t { kMany, kUpTo };

  using Lane = internal::ShuffleLane<T>;
  static constexpr std::uint64_t kClosed = Lane::kClosed;
  static constexpr std::uint64_t kClosing = Lane::kClosing;
  static constexpr std::uint64_t kPosMask = Lane::kPosMask;
  // The consumer side's state word: the close took effect (every lane has kClosed).
  static constexpr std::uint32_t kStateClosed = 1;
  static constexpr std::size_t kInitialStash = 64;
  static constexpr std::uint32_t kSpinRounds = 8;  // await(): pause 2^round times per round


  // The consumer side, on its own lines: the lock, the hold, the state and the random stream.
  struct Consumer {
    Consumer(std::pmr::memory_resource* memory, std::uint64_t stream_seed)
        : rng{stream_seed}, stash(memory) {}
    internal::ShardLock lock;
    // A partial dequeue_many / up_to holds the side (1). Written under the lock by RMW (the
    // holder's release is the change non-holders wait for); read without it by predicates.
    std::atomic<std::uint32_t> held{0};
    std::atomic<std::uint32_t> state{0};  // kStateClosed
    std::atomic<std::size_t> stash_size{0};  // stash.size(), for predicates
    internal::SplitMix64 rng;              // guarded by lock
    std::pmr::vector<T> stash;             // put-back elements; guarded by lock
  };

  struct Taken {
    std::size_t count = 0;
    bool released = false;  // emptied slots went back to producers
  };

  struct Pushed {
    std::size_t count;
    Status status;  // when count < n: kFull, or kClosed (any lane refused the claim)
  };

  static std::size_t checked_capacity(std::int64_t capacity) {
    if (capacity < 1) throw invalid_argument("capacity", capacity, "must be >= 1");
    if (static_cast<std::uint64_t>(capacity) > (kPosMask >> 2)) {
      throw invalid_argument("capacity", capacity, "is too large");
    }
    return static_cast<std::size_t>(capacity);
  }
  static std::size_t checked_min(std::int64_t min_after_dequeue, std::int64_t capacity) {
    if (min_after_dequeue < 0) {
      throw invalid_argument("min_after_dequeue", min_after_dequeue, "must be >= 0");
    }
    if (min_after_dequeue >= capacity) {  // B1, TF's message
      throw Error(ErrorKind::kInvalidArgument, "min_after_dequeue " +
                                                   std::to_string(min_after_dequeue) +
                                                   " must be < capacity " +
                                                   std::to_string(capacity));
    }
    return static_cast<std::size_t>(min_after_dequeue);
  }
  // Checked before anything is built from it (the stash's allocator is the first user).
  static std::pmr::memory_resource* checked_memory(std::pmr::memory_resource* memory) {
    if (memory == nullptr) throw invalid_argument("memory", "null", "must be a memory resource");
    return memory;
  }
  static std::size_t checked_shards(int shards) {
    if (shards < 0 || shards > kMaxShards) {
      throw invalid_argument("shards", shards, "must be 0 (default) or 1..64");
    }
    if (shards > 0) return static_cast<std::size_t>(shards);
    const unsigned hw = std::thread::hardware_concurrency();
    return std::clamp<std::size_t>(hw, 1, kDefaultMaxShards);
  }
  static std::uint64_t random_seed() {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd();
  }

  static Status verdict(Status s) noexcept {  // A25: an owner's teardown reads as kCancelled
    return s == Status::kTimedOut && internal::owner_cancelled() ? Status::kCancelled : s;
  }

  // The calling thread's home lane (registering the thread on first use).
  std::size_t home_lane() noexcept {
    internal::ShuffleThreadEntry& e =
        internal::shuffle_thread_entries[uid_ % internal::kShuffleThreadEntries];
    if (e.queue_uid != uid_) {
      e.queue_uid = uid_;
      // relaxed: only distinct, consecutive indices matter.
      e.index = threads_seen_->fetch_add(1, std::memory_order_relaxed);
    }
    return static_cast<std::size_t>(e.index % num_lanes_);
  }

  // ---- producers ----

  // Pushes up to n items: the home lane first, then the next lanes. Stops at the first lane
  // that refuses for closing (the queue is closing for this producer).
  Pushed push_some(T* items, std::size_t n, internal::Claimant who) noexcept {
    const std::size_t home = home_lane();
    std::size_t done = 0;
    Status status = Status::kFull;
    for (std::size_t i = 0, l = home; i < num_lanes_ && done < n; ++i, l = l + 1 == num_lanes_ ? 0 : l + 1) {
      Lane& lane = *lanes_[l];
      for (;;) {  // a lane may take several claims (bulk claims stop at a stale head)
        const internal::ClaimResult c = lane.claim(n - done, who);
        if (c.claim == internal::Claim::kClosed) {
          status = Status::kClosed;
          break;
        }
        if (c.claim != internal::Claim::kOk) break;
        for (std::size_t k = 0; k < c.count; ++k) lane.push(c.pos + k, std::move(items[done + k]));
        done += c.count;
        if (done == n) break;
      }
      if (status == Status::kClosed) break;
    }
    if (done != 0) not_empty_->notify_all();  // N1: after E1 (seq_cst), see event_count.h
    return {done, done == n ? Status::kOk : status};
  }

  // Registers as a blocked producer (a drain close waits for it: A17), then pushes all of
  // `items`, waiting for room.
  BulkResult enqueue_slow(std::span<T> items, Deadline deadline) noexcept {
    // G2: seq_cst, pairs with G1 in close().
    registered_->fetch_add(1, std::memory_order_seq_cst);
    if ((lanes_[0]->tail_word() & (kClosing | kClosed)) != 0) {
      return unregister({Status::kClosed, 0});
    }
    std::size_t done = 0;
    Status result = Status::kOk;
    bool last_try = false;
    while (done < items.size()) {
      const Pushed p =
          push_some(items.data() + done, items.size() - done, internal::Claimant::kRegistered);
      done += p.count;
      if (done == items.size()) break;
      // A registered producer is refused only by kClosed, and a drain close sets kClosed only
      // once no producer is registered: it was a close(cancel) (A23).
      if (p.status == Status::kClosed) {
        result = Status::kCancelled;
        break;
      }
      if (p.count != 0) continue;
      if (last_try) {
        result = Status::kTimedOut;
        break;
      }
      // On timeout, one last try: room may have appeared just as the deadline passed.
      // Before sleeping, a producer hands back the slots consumers emptied and held back (and
      // re-reads the room: another producer may have done it): see take_locked().
      last_try = traced_await(
                     trace::Side::kFull, *not_full_, deadline,
                     [this] { return producer_may_progress(); },
                     [this] { return release_emptied() != 0 || producer_may_progress(); }) ==
                 Status::kTimedOut;
    }
    return unregister({result, done});
  }

  BulkResult unregister(BulkResult r) noexcept {
    // seq_cst: pairs with G1; the last producer out finishes a pending drain close.
    if (registered_->fetch_sub(1, std::memory_order_seq_cst) == 1 &&
        (lanes_[0]->tail_word() & kClosing) != 0 && !is_closed()) {
      finish_close();
    }
    return r;
  }

  // Room in some lane, or a verdict (closed).
  bool producer_may_progress() const noexcept {
    for (const auto& lane : lanes_) {
      if ((lane->tail_word() & kClosed) != 0 || lane->has_room()) return true;
    }
    return false;
  }

  void finish_close() noexcept {
    // Every lane's tail final (kClosed) before the state says closed: a consumer that sees the
    // state knows no claim can follow (drained_locked() relies on it). Idempotent.
    for (auto& lane : lanes_) (void)lane->shut(kClosed);
    (void)consumer_->state.fetch_or(kStateClosed, std::memory_order_seq_cst);
    wake_everyone();
  }

  void wake_everyone() noexcept {
    not_empty_->notify_slow();
    not_full_->notify_slow();
  }

  // ---- consumers ----

  // Under the consumer lock: takes `want` elements (kExactly: all or none) while the stored
  // total is above the floor (B5; 0 once closed: B6), each a uniform pick among all stored
  // elements (B3), passing each to sink(T&&). Returns how many.
  // Emptied slots go back to producers in batches (ShuffleLane::release_due()), or all at once
  // when a producer sleeps for room: it registered on not_full_ and then, under this lock,
  // handed back what was held (release_emptied()), so every take after that sees it here
  // (happens-before through the lock) and releases; no producer sleeps while room is held back.
  template <class Sink>
  Taken take_locked(std::size_t want, internal::Amount amount, Sink&& sink) noexcept {
    Consumer& c = *consumer_;
    std::array<std::size_t, kMaxShards> sizes;
    std::size_t total = c.stash.size();
    for (std::size_t i = 0; i < num_lanes_; ++i) total += (sizes[i] = lanes_[i]->refresh());
    // relaxed: written under the lock we hold.
    const std::size_t floor =
        (c.state.load(std::memory_order_relaxed) & kStateClosed) != 0 ? 0 : min_after_dequeue_;
    if (total <= floor) return {};
    const std::size_t k = std::min(want, total - floor);
    if (amount == internal::Amount::kExactly && k < want) return {};
    std::uint64_t touched = 0;  // lanes whose head moved (bit i: lane i)
    const std::size_t stashed = c.stash.size();
    for (std::size_t j = 0; j < k; ++j, --total) {
      std::uint64_t r = c.rng.next() % total;  // B3: TF's index = rand % size
      if (r < c.stash.size()) {
        const auto s = static_cast<std::size_t>(r);
        sink(std::move(c.stash[s]));
        if (s + 1 != c.stash.size()) c.stash[s] = std::move(c.stash.back());
        c.stash.pop_back();
        continue;
      }
      r -= c.stash.size();
      std::size_t i = 0;
      while (r >= sizes[i]) r -= sizes[i++];
      sink(lanes_[i]->take_at(static_cast<std::size_t>(r)));
      --sizes[i];
      touched |= std::uint64_t{1} << i;
    }
    std::size_t released = 0;
    // relaxed: a producer's registration is ordered before this load by the lock (see above).
    if (not_full_->has_waiters()) {
      for (auto& lane : lanes_) released += lane->release();
      touched = 0;
    }
    for (; touched != 0; touched &= touched - 1) {
      Lane& lane = *lanes_[static_cast<std::size_t>(std::countr_zero(touched))];
      lane.publish_taken();
      if (lane.release_due()) released += lane.release();
    }
    if (released != 0) {
      for (auto& lane : lanes_) lane->publish_taken();
    }
    if (c.stash.size() != stashed) {
      c.stash_size.store(c.stash.size(), std::memory_order_relaxed);  // relaxed: a hint
    }
    return {k, released != 0};
  }

  // After the lock is released: if slots went back to producers (R2, R3), wake those waiting
  // for room.
  void after_take(Taken t) noexcept {
    if (!t.released) return;
    // F1: store (R3) -> seq_cst fence -> load of the waiter count (notify_all); pairs with a
    // waiter's RMW in prepare_wait() followed by its seq_cst loads of head_pub.
    std::atomic_thread_fence(std::memory_order_seq_cst);
    not_full_->notify_all();
  }

  // A producer's request: hands back every emptied slot the consumer side holds (take_locked()
  // holds them back in batches). Returns how many. No wake-up: a producer asleep for room
  // registered before its own call of this, so the consumers' takes since then released
  // everything themselves, and producers still spinning re-read the room.
  std::size_t release_emptied() noexcept {
    Consumer& c = *consumer_;
    c.lock.lock();
    std::size_t released = 0;
    for (auto& lane : lanes_) released += lane->release();
    c.lock.unlock();
    return released;
  }

  // Under the consumer lock: closed and nothing left for the lock holder (every lane's final
  // tail reached, nothing stashed; non-holders do not get here while the side is held).
  bool drained_locked() const noexcept {
    const Consumer& c = *consumer_;
    if ((c.state.load(std::memory_order_seq_cst) & kStateClosed) == 0) return false;
    if (!c.stash.empty()) return false;
    for (const auto& lane : lanes_) {
      if (!lane->empty_final()) return false;
    }
    return true;
  }

  // Claimed and not taken, over the lanes and the stash (a snapshot).
  std::uint64_t claimed_total() const noexcept {
    // relaxed: a hint; the stash is re-read under the lock.
    std::uint64_t n = consumer_->stash_size.load(std::memory_order_relaxed);
    for (const auto& lane : lanes_) n += lane->stored();
    return n;
  }

  // The waiting predicate of consumers: something to take, or a verdict to reach.
  bool consumer_may_progress(bool holder) const noexcept {
    const Consumer& c = *consumer_;
    if (!holder && c.held.load(std::memory_order_seq_cst) != 0) return false;
    const bool closed = (c.state.load(std::memory_order_seq_cst) & kStateClosed) != 0;
    // relaxed: a hint; a put-back happens under the hold, which non-holders wait for.
    std::uint64_t n = c.stash_size.load(std::memory_order_relaxed);
    for (const auto& lane : lanes_) n += lane->published();
    if (n > (closed ? 0 : min_after_dequeue_)) return true;  // B5, B6
    // Closed: a verdict once nothing is claimed and unpublished (every tail is final).
    return closed && claimed_total() == 0;
  }

  Status dequeue_n(std::size_t n, std::vector<T>& out, Deadline deadline, Batch batch) {
    out.clear();
    if (n == 0) return Status::kOk;  // A13: no wait, no closed check
    out.reserve(n);                  // may throw, before the queue is touched
    auto sink = [&out](T&& v) noexcept { out.push_back(std::move(v)); };
    Consumer& c = *consumer_;
    // The consumer side, free of any other holder.
    for (;;) {
      c.lock.lock();
      if (c.held.load(std::memory_order_relaxed) == 0) break;  // relaxed: under the lock
      c.lock.unlock();
      if (traced_await(trace::Side::kEmpty, *not_empty_, deadline, [&c] {
            return c.held.load(std::memory_order_seq_cst) == 0;
          }) == Status::kTimedOut) {
        return Status::kTimedOut;
      }
    }
    // Fast path: all n above the floor.
    if (const Taken t = take_locked(n, internal::Amount::kExactly, sink); t.count == n) {
      c.lock.unlock();
      after_take(t);
      trace::occupancy(trace_id(), size_approx());  // the reservoir's fill, once per batch
      return Status::kOk;
    }
    // Slow path (B5): hold the side, take what the floor allows, wait for more.
    (void)c.held.exchange(1, std::memory_order_seq_cst);
    Status result = Status::kOk;
    bool last_try = false;
    // One blocked span for the whole wait for the batch, not one per element that arrives.
    trace::BlockedSpan blocked(trace_id(), trace::Side::kEmpty);
    auto size = [this] { return size_approx(); };
    for (;;) {
      const Taken t = take_locked(n - out.size(), internal::Amount::kUpTo, sink);
      const bool drained = t.count == 0 && drained_locked();
      c.lock.unlock();
      if (t.count != 0) {
        after_take(t);
        if (out.size() == n) break;
        continue_locked(c);
        continue;
      }
      if (drained) {
        result = Status::kClosed;
        break;
      }
      if (last_try) {
        result = Status::kTimedOut;
        break;
      }
      blocked.begin_once(size);
      const auto ready = [this] { return consumer_may_progress(true); };
      last_try = await(*not_empty_, deadline, ready, ready) == Status::kTimedOut;
      continue_locked(c);
    }
    blocked.end(size);
    if (result == Status::kClosed && batch == Batch::kUpTo && !out.empty()) {
      result = Status::kOk;  // B8: the remainder
    }
    c.lock.lock();
    if (result != Status::kOk && !out.empty()) put_back_locked(out);  // B7, A26
    // H1: seq_cst RMW, the change waiting non-holders wait for.
    (void)c.held.exchange(0, std::memory_order_seq_cst);
    c.lock.unlock();
    not_empty_->notify_all();
    return result;
  }

  static void continue_locked(Consumer& c) noexcept { c.lock.lock(); }

  // Holder, under the lock. Returns the elements in `taken` to the queue (B7, A26), where the
  // next picks see them as any stored element. The stash may grow past its reserve here (a
  // put-back larger than 64 elements): that allocation is the one on a queue path.
  void put_back_locked(std::vector<T>& taken) noexcept {
    Consumer& c = *consumer_;
    for (T& v : taken) c.stash.push_back(std::move(v));
    taken.clear();
    c.stash_size.store(c.stash.size(), std::memory_order_seq_cst);
  }

  // ---- waiting (as FifoQueue::await) ----

  using EventCount = internal::BasicEventCount<internal::Protocol::kAfterSeqCstRmw>;

  // Spins (pause only: 2^0 + ... + 2^7 = 255 pauses, a few microseconds) and then sleeps. No
  // sched_yield phase, unlike FifoQueue: a shuffle queue's sides wait on each other at the
  // floor and at the capacity all the time, and on a machine busy with other processes every
  // yield hands a whole time slice to them (measured: 4k yields turned a 0.2 s CPU run into
  // 17 s of wall time under a load average of 12), while a futex sleeper is woken promptly.
  // `last_check` runs once registered, before sleeping (defaults to `ready`).
  template <class Ready, class LastCheck>
  static Status await(EventCount& event, Deadline deadline, Ready ready,
                      LastCheck last_check) noexcept {
    for (std::uint32_t round = 0; round < kSpinRounds; ++round) {
      if (ready()) return Status::kOk;
      for (std::uint32_t i = 0; i < (1u << round); ++i) internal::cpu_relax();
    }
    for (;;) {
      if (ready()) return Status::kOk;
      const EventCount::Key key = event.prepare_wait();
      if (last_check()) {
        event.cancel_wait(key);
        return Status::kOk;
      }
      // A25: a torn-down owner ends the wait as a deadline would (verdict() says kCancelled).
      if (deadline.expired() || internal::owner_cancelled()) {
        event.cancel_wait(key);
        return Status::kTimedOut;
      }
      (void)event.wait(key, deadline);
    }
  }

  // await() as a blocked span in traces (engine/trace.h), with the queue's size at both ends.
  // noinline: a slow path, kept out of the fast paths that call it.
  template <class Ready, class LastCheck>
  [[gnu::noinline]] Status traced_await(trace::Side side, EventCount& event, Deadline deadline,
                                        Ready ready, LastCheck last_check) noexcept {
    trace::queue_blocked_begin(trace_id(), side, size_approx());
    const Status s = await(event, deadline, ready, last_check);
    trace::queue_blocked_end(trace_id(), side, size_approx());
    return s;
  }
  template <class Ready>
  Status traced_await(trace::Side side, EventCount& event, Deadline deadline,
                      Ready ready) noexcept {
    return traced_await(side, event, deadline, ready, ready);
  }

  // Read-only configuration.
  const std::size_t capacity_;
  const std::size_t min_after_dequeue_;
  const std::size_t num_lanes_;
  const std::uint64_t seed_;
  const bool seed_explicit_;
  const std::uint64_t uid_;  // process-unique, keys the threads' entries
  const std::string name_;
  const trace::Registration trace_;  // the queue's name in traces
  std::vector<std::unique_ptr<Lane>> lanes_;  // each lane's words on their own lines

  CachePadded<Consumer> consumer_;
  // Producers sleep here for room; a drain close() sleeps here for the close.
  CachePadded<EventCount> not_full_;
  // Consumers sleep here for elements, for the consumer hold, or for the close.
  CachePadded<EventCount> not_empty_;
  // Blocked producers registered before a close (A17); read by close().
  CachePadded<std::atomic<std::uint32_t>> registered_{0u};
  CachePadded<std::atomic<std::uint64_t>> threads_seen_{std::uint64_t{0}};  // home_lane() indices
  std::atomic<bool> cancelled_{false};  // close(kCancelPendingEnqueues) was called
};

}  // namespace conveyor
