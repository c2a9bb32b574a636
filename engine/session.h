// Session: the context queue runners run in (TF's tf.Session, as far as the input pipeline
// sees it): a registry of named ops, a registry of queues (shared_name, SPEC.md A3), the queue
// runner collection (D9), the placement plan of runner threads, and ownership of those threads.
//
// Contract:
//  - Ops: `add_op(name, fn)` registers a callable under a unique name; `op(name)` finds it.
//    A queue runner names its ops (and a QueueRunnerDef stores those names, D8); they are
//    resolved here when its threads are created. An op reports failure by throwing (a
//    conveyor::Error carries TF's kind; see queue_error()).
//  - Queues: `fifo_queue<T, P>(capacity, name, shared_name)` creates a queue and registers its
//    default close ops "<name>_Close" (close) and "<name>_Close_1" (close with cancel), the
//    names TF gives `queue.close()` and the runner's cancel op. Without a shared_name each call
//    makes a private queue (a name already in use gets TF's "_1", "_2" suffix). With a
//    shared_name, later calls return the same queue (A3); a different capacity, element type or
//    queue kind -> InvalidArgument naming "capacity", "component types" or the kinds.
//    `shuffle_queue<T>(capacity, min_after_dequeue, seed, name, shared_name)` does the same for
//    a ShuffleQueue (B10: also "min_after_dequeue" and an explicit "seed").
//  - Runner threads: created by QueueRunner::create_threads (or start_queue_runners, D9) and
//    owned here. Each enqueue thread of the k-th queue (k in order of first use) is bound to the
//    plan's producer PU of queue (k mod plan queues), thread i to producer (i mod producers).
//    Binding on a topology that is not this machine is skipped with a note (placement_notes()).
//  - Queue memory: with a plan, the k-th queue made here gets its ring from an
//    alloc::NumaResource bound to the plan's memory node for queue (k mod plan queues) (its
//    consumers' node), and is constructed (its slots first touched) on a thread bound to that
//    queue's first consumer PU. On a topology that is not this machine, or without a plan, the
//    ring comes from alloc::aligned_resource(), with a note when a node was planned.
//  - close() (and the destructor), A25: runner threads stop before their next op run; threads
//    not yet started never run; queue operations blocked on behalf of the session (in its
//    runner threads, or inside run()) fail with kCancelled, so ops report TF's Cancelled; the
//    queues stay open and keep their elements. Then all runner threads are joined. The session
//    wakes the sleepers of the queues it created; an operation blocked on a queue made
//    elsewhere notices the teardown at its next wake-up or deadline, so give such waits a
//    deadline or release them first. After close(), creating runner threads is
//    FailedPrecondition; run() of an op that blocks on a queue fails at once with Cancelled.
//  - Thread-safety: every member may be called from any thread. Registries are guarded by a
//    mutex: they are setup paths, never a queue's hot path.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory_resource>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <typeindex>
#include <utility>
#include <vector>

#include "alloc/aligned_resource.h"
#include "engine/fifo_queue.h"
#include "engine/queue_errors.h"
#include "engine/queue_runner.h"
#include "engine/shuffle_queue.h"
#include "engine/thread.h"
#include "topology/placement.h"
#include "topology/topology.h"

namespace conveyor {

struct SessionOptions {
  // The machine (or a synthetic or XML one) runner threads are placed on. Null: no binding.
  std::shared_ptr<const topology::Topology> topology;
  // Where runner threads go; needs `topology`. Empty: runner threads are not bound.
  std::optional<topology::Plan> plan;
};

class Session {
 public:
  using Op = std::function<void()>;

  Session();
  explicit Session(SessionOptions options);
  ~Session();  // close()
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  // Unique for the life of the process (runners count their threads per session id, D3).
  std::uint64_t id() const noexcept { return id_; }

  // ---- ops ----
  // InvalidArgument for an empty name, an empty callable, or a name already registered.
  void add_op(std::string name, Op op);
  // As add_op, but a name already in use gets TF's graph suffix ("_1", "_2", ...); returns the
  // name it was registered under.
  std::string add_unique_op(const std::string& base, Op op);
  bool has_op(std::string_view name) const;
  // InvalidArgument "op = '<name>': no op of that name in this session".
  Op op(std::string_view name) const;
  // Runs the op on the calling thread on behalf of the session: a queue operation it blocks in
  // is cancelled by close() (A25).
  void run(std::string_view name) const;

  // ---- queues (A3) ----
  template <class T, class P = Mpmc>
  std::shared_ptr<FifoQueue<T, P>> fifo_queue(std::int64_t capacity, std::string name,
                                              const std::string& shared_name = {}) {
    using Q = FifoQueue<T, P>;
    QueueKey key{std::type_index(typeid(T)), std::is_same_v<P, Spsc> ? "FIFOQueue(Spsc)"
                                                                     : "FIFOQueue"};
    std::shared_ptr<void> q = find_or_add_queue(
        shared_name, std::move(name), capacity, key,
        [capacity](const std::string& unique_name,
                   std::shared_ptr<std::pmr::memory_resource> memory) -> QueueEntry {
          // The deleter keeps the ring's memory resource alive as long as the queue.
          std::shared_ptr<Q> queue(
              new Q(capacity, unique_name, memory ? memory.get() : alloc::aligned_resource()),
              [memory](Q* doomed) { delete doomed; });
          return QueueEntry{queue,
                            [queue](CloseMode mode) {
                              const Status s = queue->close(mode);
                              if (s != Status::kOk) {
                                throw queue_error(s, QueueOp::kClose, queue->name());
                              }
                            },
                            [q = std::weak_ptr<Q>(queue)] {
                              if (auto alive = q.lock()) alive->interrupt_waiters();
                            }};
        });
    return std::static_pointer_cast<Q>(q);
  }

  // B10: a RandomShuffleQueue (ShuffleQueue<T>, default shards), with the same registry and
  // default close ops as fifo_queue(). Reopening a shared_name with a different capacity,
  // element type, min_after_dequeue, or an explicit seed that differs from the queue's (an
  // explicit seed never matches a queue made without one; no seed matches any) ->
  // InvalidArgument naming it; a different kind of queue -> InvalidArgument.
  template <class T>
  std::shared_ptr<ShuffleQueue<T>> shuffle_queue(std::int64_t capacity,
                                                 std::int64_t min_after_dequeue,
                                                 std::optional<std::uint64_t> seed,
                                                 std::string name,
                                                 const std::string& shared_name = {}) {
    using Q = ShuffleQueue<T>;
    std::shared_ptr<void> q = find_or_add_queue(
        shared_name, std::move(name), capacity,
        QueueKey{std::type_index(typeid(T)), "RandomShuffleQueue"},
        [capacity, min_after_dequeue, seed](
            const std::string& unique_name,
            std::shared_ptr<std::pmr::memory_resource> memory) -> QueueEntry {
          std::shared_ptr<Q> queue(
              new Q(capacity, min_after_dequeue, seed, unique_name, 0,
                    memory ? memory.get() : alloc::aligned_resource()),
              [memory](Q* doomed) { delete doomed; });
          return QueueEntry{queue,
                            [queue](CloseMode mode) {
                              const Status s = queue->close(mode);
                              if (s != Status::kOk) {
                                throw queue_error(s, QueueOp::kClose, queue->name(), 1, 0,
                                                  "RandomShuffleQueue");
                              }
                            },
                            [w = std::weak_ptr<Q>(queue)] {
                              if (auto alive = w.lock()) alive->interrupt_waiters();
                            }};
        });
    auto queue = std::static_pointer_cast<Q>(q);
    // The parameters fifo_queue() does not have; immutable, so checked after the lookup.
    const std::string which = "Shared queue '" + shared_name + "'";
    if (queue->min_after_dequeue() != static_cast<std::size_t>(min_after_dequeue)) {
      throw Error(ErrorKind::kInvalidArgument,
                  which + " has min_after_dequeue " + std::to_string(queue->min_after_dequeue()) +
                      " but requested min_after_dequeue was " + std::to_string(min_after_dequeue));
    }
    if (seed && queue->seed() != seed) {
      throw Error(ErrorKind::kInvalidArgument,
                  which + " has seed " +
                      (queue->seed() ? std::to_string(*queue->seed()) : std::string("none")) +
                      " but requested seed was " + std::to_string(*seed));
    }
    return queue;
  }

  // ---- queue runners (D9) ----
  void add_queue_runner(QueueRunner runner);
  std::vector<QueueRunner> queue_runners() const;
  // create_threads(*this, coord, start) of every collected runner; all their threads.
  RunnerThreads start_queue_runners(Coordinator* coord = nullptr, bool start = true);

  // ---- placement ----
  const topology::Topology* topology() const noexcept { return options_.topology.get(); }
  const std::optional<topology::Plan>& plan() const noexcept { return options_.plan; }
  // The PU the plan gives enqueue thread `op_index` of the runner of `queue` (nullopt: none).
  std::optional<unsigned> runner_pu(const std::string& queue, std::size_t op_index);
  // What binding reported, one line per thread whose binding was skipped or failed.
  std::vector<std::string> placement_notes() const;

  // ---- teardown ----
  void close();
  bool closed() const noexcept { return shared_->closed.load(std::memory_order_acquire); }

 private:
  friend class QueueRunner;

  // What runner threads share with the session; outlives it only until they are joined.
  struct Shared {
    // Set once by close(); the owner flag of engine/internal/owner.h for runner threads and
    // run(). (seq_cst store: before the wakes of interrupt_waiters(), see owner.h.)
    std::atomic<bool> closed{false};
    std::mutex mu;  // guards notes
    std::vector<std::string> notes;
  };
  struct QueueKey {
    std::type_index element;
    std::string_view kind;
  };
  struct QueueEntry {
    std::shared_ptr<void> queue;
    std::function<void(CloseMode)> close;
    std::function<void()> interrupt_waiters;
  };
  struct Registered {
    QueueEntry entry;
    QueueKey key;
    std::int64_t capacity;
    std::string name;
  };

  using MakeQueue =
      std::function<QueueEntry(const std::string&, std::shared_ptr<std::pmr::memory_resource>)>;
  std::shared_ptr<void> find_or_add_queue(const std::string& shared_name, std::string name,
                                          std::int64_t capacity, const QueueKey& key,
                                          const MakeQueue& make);
  // The plan's queue slot of `queue` (assigned in order of first use, modulo the plan's queues);
  // nullopt without a plan. mu_ is held.
  std::optional<unsigned> placement_slot_locked(const std::string& queue);
  QueueEntry make_placed(const std::string& name, const MakeQueue& make);
  void add_note(std::string note) const;
  std::string unique_name_locked(const std::string& name) const;
  void add_op_locked(std::string name, Op op);

  // Called by QueueRunner::create_threads.
  void adopt(Thread thread);
  void adopt_gate(std::shared_ptr<internal::StartGate> gate);
  void bind_runner_thread(std::optional<unsigned> pu, const std::string& thread_name) const;
  // The owner flag runner threads install (internal::OwnerScope).
  const std::atomic<bool>* owner_flag() const noexcept { return &shared_->closed; }

  const std::uint64_t id_;
  const SessionOptions options_;
  const std::shared_ptr<Shared> shared_;

  mutable std::mutex mu_;  // guards everything below
  std::map<std::string, Op, std::less<>> ops_;
  std::vector<Registered> queues_;                 // creation order
  std::map<std::string, std::size_t> by_shared_name_;  // shared_name -> index in queues_
  std::map<std::string, unsigned> placement_slot_;  // queue name -> plan queue slot
  std::map<unsigned, std::shared_ptr<std::pmr::memory_resource>> node_memory_;  // by NUMA node
  std::vector<QueueRunner> runners_;
  std::vector<Thread> threads_;
  std::vector<std::shared_ptr<internal::StartGate>> gates_;  // abandoned by close()
};

}  // namespace conveyor
