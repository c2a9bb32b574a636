#include "engine/session.h"

#include <exception>
#include <thread>

#include "alloc/numa_resource.h"

#include "engine/internal/event_count.h"
#include "engine/internal/owner.h"

namespace conveyor {
namespace {

std::uint64_t next_session_id() noexcept {
  static std::atomic<std::uint64_t> next{1};
  return next.fetch_add(1, std::memory_order_relaxed);
}

}  // namespace

Session::Session() : Session(SessionOptions{}) {}

Session::Session(SessionOptions options)
    : id_(next_session_id()), options_(std::move(options)), shared_(std::make_shared<Shared>()) {
  if (options_.plan && !options_.topology) {
    throw invalid_argument("SessionOptions::plan", "given",
                           "needs SessionOptions::topology, the machine it was made for");
  }
}

Session::~Session() { close(); }

// ---- ops ----

void Session::add_op(std::string name, Op op) {
  std::lock_guard lock(mu_);
  add_op_locked(std::move(name), std::move(op));
}

void Session::add_op_locked(std::string name, Op op) {
  if (name.empty()) throw invalid_argument("op name", "''", "must not be empty");
  if (!op) throw invalid_argument("op", "'" + name + "'", "must be callable");
  if (ops_.contains(name)) {
    throw invalid_argument("op name", "'" + name + "'", "already registered in this session");
  }
  ops_.emplace(std::move(name), std::move(op));
}

void Session::run(std::string_view name) const {
  const Op body = op(name);
  internal::OwnerScope scope(owner_flag());
  body();
}

std::string Session::add_unique_op(const std::string& base, Op op) {
  std::lock_guard lock(mu_);
  std::string name = base;
  for (std::size_t i = 1; ops_.contains(name); ++i) name = base + "_" + std::to_string(i);
  add_op_locked(name, std::move(op));
  return name;
}

bool Session::has_op(std::string_view name) const {
  std::lock_guard lock(mu_);
  return ops_.find(name) != ops_.end();
}

Session::Op Session::op(std::string_view name) const {
  std::lock_guard lock(mu_);
  auto it = ops_.find(name);
  if (it == ops_.end()) {
    throw invalid_argument("op", "'" + std::string(name) + "'", "no op of that name in this session");
  }
  return it->second;
}

// ---- queues ----

std::string Session::unique_name_locked(const std::string& name) const {
  auto used = [this](const std::string& n) {
    for (const Registered& r : queues_) {
      if (r.name == n) return true;
    }
    return false;
  };
  if (!used(name)) return name;
  for (std::size_t i = 1;; ++i) {  // TF's graph naming: name, name_1, name_2, ...
    std::string candidate = name + "_" + std::to_string(i);
    if (!used(candidate)) return candidate;
  }
}

std::shared_ptr<void> Session::find_or_add_queue(const std::string& shared_name,
                                                 std::string name, std::int64_t capacity,
                                                 const QueueKey& key, const MakeQueue& make) {
  if (name.empty()) throw invalid_argument("name", "''", "a queue needs a name");
  std::lock_guard lock(mu_);
  if (!shared_name.empty()) {
    auto it = by_shared_name_.find(shared_name);
    if (it != by_shared_name_.end()) {  // A3: the same queue, if it is the same kind of queue
      const Registered& r = queues_[it->second];
      const std::string which = "Shared queue '" + shared_name + "'";
      if (r.key.kind != key.kind) {
        throw Error(ErrorKind::kInvalidArgument, which + " has type '" + std::string(r.key.kind) +
                                                     "' that does not match type '" +
                                                     std::string(key.kind) + "'");
      }
      if (r.key.element != key.element) {
        throw Error(ErrorKind::kInvalidArgument,
                    which + " has component types " + r.key.element.name() +
                        " but requested component types were " + key.element.name());
      }
      if (r.capacity != capacity) {
        throw Error(ErrorKind::kInvalidArgument,
                    which + " has capacity " + std::to_string(r.capacity) +
                        " but requested capacity was " + std::to_string(capacity));
      }
      return r.entry.queue;
    }
  }
  const std::string unique = unique_name_locked(name);
  QueueEntry entry = make_placed(unique, make);  // throws for a bad capacity: nothing added
  // The default ops of a queue runner of this queue (QueueRunner: "<queue>_Close[_1]").
  const std::string close_name = unique + "_Close";
  const std::string cancel_name = unique + "_Close_1";
  if (!ops_.contains(close_name)) {
    add_op_locked(close_name, [close = entry.close] { close(CloseMode::kDrain); });
  }
  if (!ops_.contains(cancel_name)) {
    add_op_locked(cancel_name,
                  [close = entry.close] { close(CloseMode::kCancelPendingEnqueues); });
  }
  queues_.push_back(Registered{entry, key, capacity, unique});
  if (!shared_name.empty()) by_shared_name_.emplace(shared_name, queues_.size() - 1);
  return entry.queue;
}

// The queue made where the plan puts it: memory from the node's NumaResource, constructed by a
// thread bound to the queue's first consumer PU so that it touches the slots first. mu_ is held.
Session::QueueEntry Session::make_placed(const std::string& name, const MakeQueue& make) {
  const std::optional<unsigned> slot = placement_slot_locked(name);
  if (!slot) return make(name, nullptr);
  const topology::Plan& plan = *options_.plan;
  const topology::QueuePlacement& where = plan.queues()[*slot];
  const std::optional<unsigned> pu = plan.consumer(*slot, 0).pu;
  if (!where.numa_node) return make(name, nullptr);
  if (!options_.topology->is_this_system()) {
    add_note("queue '" + name + "': memory on NUMA node " + std::to_string(*where.numa_node) +
             " planned, not applied: topology is " + options_.topology->source());
    return make(name, nullptr);
  }
  std::shared_ptr<std::pmr::memory_resource>& memory = node_memory_[*where.numa_node];
  if (!memory) memory = std::make_shared<alloc::NumaResource>(*where.numa_node);
  if (!pu) return make(name, memory);
  // Construct on a thread bound to the consumer's PU; its exception, if any, comes back here.
  std::optional<QueueEntry> entry;
  std::exception_ptr error;
  std::thread builder([&] {
    try {
      // A refused binding is a note, not a failure (as for runner threads): the queue is built
      // unbound; its memory is still on the planned node. (tests/fault_test.cc,
      // FaultRegression.RefusedPlacementBindingThrewDuringSessionQueueCreation)
      try {
        const topology::BindResult r = options_.topology->bind_current_thread(*pu);
        if (!r.applied) add_note("queue '" + name + "': " + r.note);
      } catch (const std::exception& e) {
        add_note("queue '" + name + "': constructing on PU " + std::to_string(*pu) +
                 " failed to bind: " + e.what());
      }
      entry = make(name, memory);
    } catch (...) {
      error = std::current_exception();
    }
  });
  builder.join();
  if (error) std::rethrow_exception(error);
  return std::move(*entry);
}

std::optional<unsigned> Session::placement_slot_locked(const std::string& queue) {
  if (!options_.plan || options_.plan->queues().empty()) return std::nullopt;
  auto [it, added] = placement_slot_.emplace(queue, static_cast<unsigned>(placement_slot_.size()));
  return it->second % static_cast<unsigned>(options_.plan->queues().size());
}

void Session::add_note(std::string note) const {
  std::lock_guard lock(shared_->mu);
  shared_->notes.push_back(std::move(note));
}

// ---- queue runners ----

void Session::add_queue_runner(QueueRunner runner) {
  std::lock_guard lock(mu_);
  runners_.push_back(std::move(runner));
}

std::vector<QueueRunner> Session::queue_runners() const {
  std::lock_guard lock(mu_);
  return runners_;
}

RunnerThreads Session::start_queue_runners(Coordinator* coord, bool start) {
  RunnerThreads all;
  for (const QueueRunner& runner : queue_runners()) {
    all.append(runner.create_threads(*this, coord, start));
  }
  return all;
}

void Session::adopt(Thread thread) {
  std::lock_guard lock(mu_);
  threads_.push_back(std::move(thread));
}

void Session::adopt_gate(std::shared_ptr<internal::StartGate> gate) {
  std::lock_guard lock(mu_);
  // close() sets closed before it takes mu_ to collect gates: a gate added after that is
  // abandoned here, so its threads never wait for a start that cannot come.
  if (closed()) gate->abandon();
  gates_.push_back(std::move(gate));
}

// ---- placement ----

std::optional<unsigned> Session::runner_pu(const std::string& queue, std::size_t op_index) {
  std::optional<unsigned> slot;
  {
    std::lock_guard lock(mu_);
    slot = placement_slot_locked(queue);
  }
  if (!slot) return std::nullopt;
  const topology::Plan& plan = *options_.plan;
  unsigned producers = 0;  // of this queue in the plan
  for (const topology::ThreadPlacement& t : plan.threads()) {
    if (t.queue == *slot && t.role == topology::Role::kProducer) ++producers;
  }
  if (producers == 0) return std::nullopt;
  return plan.producer(*slot, static_cast<unsigned>(op_index % producers)).pu;
}

void Session::bind_runner_thread(std::optional<unsigned> pu,
                                 const std::string& thread_name) const {
  if (!pu || !options_.topology) return;
  std::string note;
  try {
    const topology::BindResult r = options_.topology->bind_current_thread(*pu);
    if (r.applied) return;
    note = thread_name + ": " + r.note;
  } catch (const std::exception& e) {
    note = thread_name + ": binding to PU " + std::to_string(*pu) + " failed: " + e.what();
  }
  add_note(std::move(note));
}

std::vector<std::string> Session::placement_notes() const {
  std::lock_guard lock(shared_->mu);
  return shared_->notes;
}

// ---- teardown ----

void Session::close() {
  // A25: first the owner flag, then the wakes (engine/internal/owner.h explains the order).
  shared_->closed.store(true, std::memory_order_seq_cst);
  // close_on_stop threads wait on lifecycle_events() for "stop requested or session closed".
  internal::lifecycle_events().notify_all();
  std::vector<std::function<void()>> interrupts;
  {
    std::lock_guard lock(mu_);
    for (const Registered& r : queues_) interrupts.push_back(r.entry.interrupt_waiters);
  }
  for (const auto& interrupt : interrupts) interrupt();
  // A create_threads() that passed its closed() check just before may still adopt threads:
  // repeat until none are left. Join outside the lock: finishing threads call into the session.
  for (;;) {
    std::vector<std::shared_ptr<internal::StartGate>> gates;
    std::vector<Thread> threads;
    {
      std::lock_guard lock(mu_);
      gates.swap(gates_);
      threads.swap(threads_);
    }
    if (gates.empty() && threads.empty()) break;
    for (const auto& gate : gates) gate->abandon();
    threads.clear();  // ~Thread joins
  }
}

}  // namespace conveyor
