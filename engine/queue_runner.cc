#include "engine/queue_runner.h"

#include <algorithm>
#include <map>
#include <string_view>
#include <mutex>
#include <utility>

#include "engine/internal/event_count.h"
#include "engine/internal/futex.h"
#include "engine/internal/owner.h"
#include "engine/session.h"
#include "engine/trace.h"

namespace conveyor {
namespace internal {

void StartGate::open() noexcept {
  std::uint32_t s = kShut;
  // release: pairs with the acquire in wait(); what the creator wrote is seen by the threads.
  if (state_.compare_exchange_strong(s, kOpen, std::memory_order_release)) {
    futex_wake(state_, kWakeAll);
  }
}

void StartGate::abandon() noexcept {
  std::uint32_t s = kShut;
  if (state_.compare_exchange_strong(s, kAbandoned, std::memory_order_release)) {
    futex_wake(state_, kWakeAll);
  }
}

bool StartGate::wait() const noexcept {
  std::uint32_t s = state_.load(std::memory_order_acquire);
  while (s == kShut) {
    (void)futex_wait(state_, kShut, Deadline::never());
    s = state_.load(std::memory_order_acquire);
  }
  return s == kOpen;
}

// F2: how many enqueue threads have not yet finished their first run, and the first error one
// of those runs raised. `remaining` is a futex word for start()'s wait.
struct FirstRuns {
  std::atomic<std::uint32_t> remaining{0};
  std::mutex mu;
  std::exception_ptr error;  // guarded by mu

  void done(std::exception_ptr e) noexcept {
    if (e) {
      std::lock_guard lock(mu);
      if (!error) error = std::move(e);
    }
    // release: pairs with the acquire load in wait(), which then reads `error` under mu anyway.
    if (remaining.fetch_sub(1, std::memory_order_release) == 1) futex_wake(remaining, kWakeAll);
  }
  bool wait(Deadline deadline) const noexcept {
    for (;;) {
      const std::uint32_t n = remaining.load(std::memory_order_acquire);
      if (n == 0) return true;
      if (futex_wait(remaining, n, deadline) == WaitResult::kTimedOut) {
        return remaining.load(std::memory_order_acquire) == 0;
      }
    }
  }
};

}  // namespace internal

// ---- RunnerThreads ----

void RunnerThreads::start() noexcept {
  for (const auto& gate : gates_) gate->open();
}

bool RunnerThreads::wait_done(Deadline deadline) const noexcept {
  return std::all_of(handles_.begin(), handles_.end(),
                     [deadline](const Thread::Handle& h) { return h.wait_done(deadline); });
}

void RunnerThreads::append(RunnerThreads&& other) {
  handles_.insert(handles_.end(), other.handles_.begin(), other.handles_.end());
  gates_.insert(gates_.end(), other.gates_.begin(), other.gates_.end());
  other.handles_.clear();
  other.gates_.clear();
}

// ---- QueueRunner ----

struct QueueRunner::State {
  std::string queue;
  std::vector<std::string> enqueue_ops;
  std::string close_op;
  std::string cancel_op;
  std::vector<ErrorKind> closed_kinds;

  mutable std::mutex mu;  // guards what follows; taken per thread start / end / error, never per op
  std::map<std::uint64_t, int> runs;  // session id -> threads counted as running (D3)
  std::vector<std::exception_ptr> exceptions;
  std::vector<ErrorCallback> callbacks;

  bool is_closed_kind(const std::exception_ptr& e) const noexcept {
    const ErrorKind k = kind_of(e);
    return std::find(closed_kinds.begin(), closed_kinds.end(), k) != closed_kinds.end();
  }
  // Lowers the session's count; true when this was the last running thread.
  bool leave(std::uint64_t session) {
    std::lock_guard lock(mu);
    auto it = runs.find(session);
    if (it == runs.end()) return false;
    const bool last = --it->second == 0;
    if (last) runs.erase(it);
    return last;
  }
};

namespace {

std::string default_op(const std::string& given, const std::string& queue,
                       const char* suffix) {
  return given.empty() ? queue + suffix : given;
}

}  // namespace

QueueRunner::QueueRunner(std::string queue_name, std::vector<std::string> enqueue_ops,
                         std::string close_op, std::string cancel_op,
                         std::optional<std::vector<ErrorKind>> closed_error_kinds)
    : state_(std::make_shared<State>()) {
  if (queue_name.empty() || enqueue_ops.empty()) {  // D1
    throw Error(ErrorKind::kInvalidArgument, "Must provide queue and enqueue_ops.");
  }
  for (const std::string& op : enqueue_ops) {
    if (op.empty()) throw invalid_argument("enqueue_ops", "''", "op names must not be empty");
  }
  if (closed_error_kinds && closed_error_kinds->empty()) {
    throw invalid_argument("queue_closed_exception_types", "[]",
                           "when provided, must be a non-empty list of error kinds");
  }
  state_->close_op = default_op(close_op, queue_name, "_Close");
  state_->cancel_op = default_op(cancel_op, queue_name, "_Close_1");
  state_->queue = std::move(queue_name);
  state_->enqueue_ops = std::move(enqueue_ops);
  state_->closed_kinds =
      closed_error_kinds ? std::move(*closed_error_kinds) : std::vector{ErrorKind::kOutOfRange};
}

QueueRunner::QueueRunner(const QueueRunnerDef& def) : state_(std::make_shared<State>()) {
  if (def.enqueue_op_names.empty()) {  // F2
    throw Error(ErrorKind::kInvalidArgument, "Empty enqueue ops to run.");
  }
  if (def.queue_name.empty()) {
    throw Error(ErrorKind::kInvalidArgument, "Must provide queue and enqueue_ops.");
  }
  state_->queue = def.queue_name;
  state_->enqueue_ops = def.enqueue_op_names;
  state_->close_op = default_op(def.close_op_name, def.queue_name, "_Close");
  state_->cancel_op = default_op(def.cancel_op_name, def.queue_name, "_Close_1");
  state_->closed_kinds = def.queue_closed_error_kinds.empty()
                             ? std::vector{ErrorKind::kOutOfRange}  // D8: legacy defs
                             : def.queue_closed_error_kinds;
}

const std::string& QueueRunner::name() const noexcept { return state_->queue; }
const std::vector<std::string>& QueueRunner::enqueue_ops() const noexcept {
  return state_->enqueue_ops;
}
const std::string& QueueRunner::close_op() const noexcept { return state_->close_op; }
const std::string& QueueRunner::cancel_op() const noexcept { return state_->cancel_op; }
const std::vector<ErrorKind>& QueueRunner::closed_error_kinds() const noexcept {
  return state_->closed_kinds;
}

QueueRunnerDef QueueRunner::to_def() const {
  return QueueRunnerDef{state_->queue, state_->enqueue_ops, state_->close_op, state_->cancel_op,
                        state_->closed_kinds};
}

std::vector<std::exception_ptr> QueueRunner::exceptions_raised() const {
  std::lock_guard lock(state_->mu);
  return state_->exceptions;
}

void QueueRunner::add_error_callback(ErrorCallback callback) {
  if (!callback) throw invalid_argument("callback", "empty", "must be callable");
  std::lock_guard lock(state_->mu);
  state_->callbacks.push_back(std::move(callback));
}

int QueueRunner::running_threads(const Session& session) const {
  std::lock_guard lock(state_->mu);
  auto it = state_->runs.find(session.id());
  return it == state_->runs.end() ? 0 : it->second;
}

RunnerThreads QueueRunner::create_threads(Session& session, Coordinator* coord,
                                          bool start) const {
  return make_threads(session, coord, start, nullptr);
}

RunnerThreads QueueRunner::start(Session& session, Coordinator* coord,
                                 std::chrono::nanoseconds wait_for) const {
  const Deadline deadline = Deadline::after(wait_for);
  auto first = std::make_shared<internal::FirstRuns>();
  RunnerThreads threads = make_threads(session, coord, true, first);
  if (threads.empty()) return threads;  // already running in this session: nothing to wait for
  if (!first->wait(deadline)) {
    throw Error(ErrorKind::kDeadlineExceeded, "Queues not fed before the timeout");
  }
  std::lock_guard lock(first->mu);
  if (first->error && !state_->is_closed_kind(first->error)) std::rethrow_exception(first->error);
  return threads;
}

RunnerThreads QueueRunner::make_threads(Session& session, Coordinator* coord, bool start,
                                        std::shared_ptr<internal::FirstRuns> first) const {
  if (session.closed()) {
    throw Error(ErrorKind::kFailedPrecondition,
                "QueueRunner '" + state_->queue + "': the session is closed");
  }
  // Resolve every op before anything changes, so a missing one leaves no trace (D3 count).
  std::vector<Session::Op> ops;
  ops.reserve(state_->enqueue_ops.size());
  for (const std::string& name : state_->enqueue_ops) ops.push_back(session.op(name));
  Session::Op close_op = session.op(state_->close_op);
  Session::Op cancel_op = coord != nullptr ? session.op(state_->cancel_op) : Session::Op();

  const std::uint64_t sid = session.id();
  {
    std::lock_guard lock(state_->mu);
    auto it = state_->runs.find(sid);
    if (it != state_->runs.end() && it->second > 0) return {};  // D3: still running here
    state_->runs[sid] = static_cast<int>(ops.size());
    state_->exceptions.clear();
  }
  if (first) first->remaining.store(static_cast<std::uint32_t>(ops.size()));

  RunnerThreads result;
  auto gate = std::make_shared<internal::StartGate>();
  result.gates_.push_back(gate);
  session.adopt_gate(gate);  // before any thread: Session::close() abandons it, or sees it closed
  const std::shared_ptr<State> state = state_;
  const std::string prefix = "QueueRunnerThread-" + state->queue + "-";

  for (std::size_t i = 0; i < ops.size(); ++i) {
    const std::string& op_name = state->enqueue_ops[i];
    const std::optional<unsigned> pu = session.runner_pu(state->queue, i);
    std::string thread_name = prefix + op_name;
    Thread t(thread_name, runner_kernel_name(state->queue, op_name),
             [state, &session, coord, gate, first, pu, sid, thread_name, op = std::move(ops[i]),
              close_op] {
               bool counted = true;  // still in the session's count
               bool first_pending = first != nullptr;
               auto first_done = [&](std::exception_ptr e) {
                 if (first_pending) first->done(std::move(e));
                 first_pending = false;
               };
               if (!gate->wait()) {  // abandoned by Session::close(): never ran
                 state->leave(sid);
                 first_done(nullptr);
                 return;
               }
               std::exception_ptr error;
               // A25: queue operations this thread blocks in end when the session closes.
               const internal::OwnerScope owner(session.owner_flag());
               try {
                 session.bind_runner_thread(pu, thread_name);
                 const trace::Registration runner("runner", thread_name);
                 for (;;) {
                   // D4: a stop (or the session closing) ends the thread without closing.
                   if ((coord != nullptr && coord->should_stop()) || session.closed()) break;
                   try {
                     trace::op_begin(runner.id());
                     op();
                     trace::op_end(runner.id(), true);
                   } catch (...) {
                     trace::op_end(runner.id(), false);
                     std::exception_ptr e = std::current_exception();
                     if (!state->is_closed_kind(e)) throw;
                     // D5: the queue was closed; the last thread of the session closes ours.
                     first_done(nullptr);
                     counted = false;
                     if (state->leave(sid)) {
                       try {
                         close_op();
                       } catch (...) {  // ignored, as in TF
                       }
                     }
                     return;
                   }
                   first_done(nullptr);
                 }
               } catch (...) {
                 error = std::current_exception();
               }
               first_done(error);
               if (counted) state->leave(sid);
               if (!error) return;
               // D6 and F2's error callbacks.
               std::vector<ErrorCallback> callbacks;
               {
                 std::lock_guard lock(state->mu);
                 callbacks = state->callbacks;
                 if (coord == nullptr) state->exceptions.push_back(error);
               }
               for (const ErrorCallback& cb : callbacks) cb(error);
               if (coord != nullptr) {
                 coord->request_stop(error);  // may rethrow after join (C9): the Thread keeps it
               } else {
                 std::rethrow_exception(error);  // as TF re-raises: Handle::exception() has it
               }
             });
    if (coord != nullptr) coord->register_thread(t);
    result.handles_.push_back(t.handle());
    session.adopt(std::move(t));
  }

  if (coord != nullptr) {  // D7
    Thread t(prefix + "close_on_stop", runner_kernel_name(state->queue, "close"),
             [&session, coord, gate, cancel_op = std::move(cancel_op)] {
               // Both a stop request and Session::close() notify lifecycle_events().
               internal::EventCount& events = internal::lifecycle_events();
               auto stop = [&] { return coord->should_stop() || session.closed(); };
               while (!stop()) {
                 const internal::EventCount::Key key = events.prepare_wait();
                 if (stop()) {
                   events.cancel_wait(key);
                   break;
                 }
                 events.wait(key, Deadline::never());
               }
               if (!gate->wait()) return;  // never started
               try {
                 cancel_op();
               } catch (...) {  // ignored, as in TF
               }
             });
    coord->register_thread(t);
    result.handles_.push_back(t.handle());
    session.adopt(std::move(t));
  }
  if (start) gate->open();
  return result;
}

namespace {

// Largest n <= limit such that s[0, n) does not end inside a UTF-8 sequence.
std::size_t utf8_prefix(const std::string& s, std::size_t limit) {
  std::size_t n = std::min(limit, s.size());
  while (n > 0 && n < s.size() && (static_cast<unsigned char>(s[n]) & 0xC0u) == 0x80u) --n;
  return n;
}

// Smallest start >= s.size() - limit such that s[start, end) does not begin inside a sequence.
std::size_t utf8_suffix_start(const std::string& s, std::size_t limit) {
  std::size_t start = s.size() - std::min(limit, s.size());
  while (start < s.size() && (static_cast<unsigned char>(s[start]) & 0xC0u) == 0x80u) ++start;
  return start;
}

}  // namespace

std::string runner_kernel_name(const std::string& queue, const std::string& op) {
  constexpr std::size_t kBudget = Thread::kMaxKernelNameBytes - 3 - 1;  // "QR-" and "-"
  constexpr std::size_t kOpTail = 5;
  std::string o = op;
  if (o.size() > queue.size() && o.compare(0, queue.size(), queue) == 0) {
    o.erase(0, queue.size());
    const std::size_t keep = o.find_first_not_of("/_-");
    o.erase(0, keep == std::string::npos ? o.size() : keep);
    if (o.empty()) o = op;
  }
  std::size_t tail = std::min(o.size(), kOpTail);
  std::size_t head = utf8_prefix(queue, kBudget - tail);
  while (head > 1 && std::string_view("/_-").find(queue[head - 1]) != std::string_view::npos) {
    --head;  // "input_" -> "input": the "-" separator follows
  }
  tail = std::min(o.size(), kBudget - head);  // a short queue name leaves room for more op
  return "QR-" + queue.substr(0, head) + "-" + o.substr(utf8_suffix_start(o, tail));
}

}  // namespace conveyor
