#include "engine/thread.h"

#include <pthread.h>

#include "engine/internal/event_count.h"
#include "engine/internal/futex.h"
#include "engine/trace.h"

namespace conveyor {

namespace internal {

namespace {
// constinit: EventCount is two zeroed atomics, so it is ready before any static constructor
// runs (no initialisation-order question for Threads started from static constructors).
constinit EventCount g_lifecycle_events;
}  // namespace

EventCount& lifecycle_events() noexcept { return g_lifecycle_events; }

}  // namespace internal

struct Thread::State {
  State(std::string n, std::string k) : name(std::move(n)), kernel(std::move(k)) {}

  const std::string name;
  const std::string kernel;  // the kernel name; empty: the first bytes of `name`
  // 0 while the body runs, 1 once it has returned or thrown (D1). A futex word for wait_done().
  std::atomic<std::uint32_t> done{0};
  // Written once by the running thread before D1; read only after D2 sees done == 1.
  std::exception_ptr error;
};

// ---- Handle ----

const std::string& Thread::Handle::name() const noexcept {
  static const std::string kEmpty;
  return state_ ? state_->name : kEmpty;
}

bool Thread::Handle::done() const noexcept {
  // D2: pairs with D1 in finish(); makes the body's writes and `error` visible.
  return !state_ || state_->done.load(std::memory_order_acquire) != 0;
}

bool Thread::Handle::wait_done(Deadline deadline) const noexcept {
  if (!state_) return true;
  while (!done()) {
    const internal::WaitResult r = internal::futex_wait(state_->done, 0, deadline);
    if (r == internal::WaitResult::kTimedOut) return done();
    // kAwoken, kValueChanged, kInterrupted: re-check.
  }
  return true;
}

std::exception_ptr Thread::Handle::exception() const noexcept {
  if (!done() || !state_) return nullptr;  // done() is D2: `error` is stable from here on
  return state_->error;
}

// ---- Thread ----

std::shared_ptr<Thread::State> Thread::make_state(std::string name, std::string kernel) {
  return std::make_shared<State>(std::move(name), std::move(kernel));
}

std::string Thread::kernel_name(const std::string& name) {
  if (name.size() <= kMaxKernelNameBytes) return name;
  std::size_t n = kMaxKernelNameBytes;
  // Step back over UTF-8 continuation bytes (10xxxxxx) so that no character is cut in half.
  while (n > 0 && (static_cast<unsigned char>(name[n]) & 0xC0u) == 0x80u) n -= 1;
  return name.substr(0, n);
}

void Thread::begin(const State& s) noexcept {
  trace::thread_begin(s.name);
  try {
    const std::string k = kernel_name(s.kernel.empty() ? s.name : s.kernel);
    // The name is cosmetic (debuggers, top -H, traces): a failure is ignored.
    (void)pthread_setname_np(pthread_self(), k.c_str());
  } catch (...) {
    // kernel_name() could only fail to allocate; keep the inherited name.
  }
}

void Thread::finish(State& s, std::exception_ptr error) noexcept {
  trace::thread_end();
  s.error = std::move(error);
  // D1: pairs with D2 in Handle::done(); publishes `error` and everything the body wrote.
  s.done.store(1, std::memory_order_release);
  // One syscall per thread exit, which costs far more already; no waiter count needed.
  internal::futex_wake(s.done, internal::kWakeAll);
  // Wakes Coordinator::join; no syscall when nobody joins (EventCount's protocol).
  internal::lifecycle_events().notify_all();
}

Thread& Thread::operator=(Thread&& other) noexcept(false) {
  if (this != &other) {
    join();
    state_ = std::move(other.state_);
    os_thread_ = std::move(other.os_thread_);
  }
  return *this;
}

Thread::~Thread() {
  if (os_thread_.joinable()) {
    try {
      os_thread_.join();
    } catch (...) {
      // Only a self-join (a body destroying its own Thread) throws; detaching is all that is
      // left, and the body keeps its own reference to the state.
      os_thread_.detach();
    }
  }
}

const std::string& Thread::name() const noexcept {
  static const std::string kEmpty;
  return state_ ? state_->name : kEmpty;
}

void Thread::join() {
  if (os_thread_.joinable()) os_thread_.join();
}

}  // namespace conveyor
