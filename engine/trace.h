// trace: Conveyor's built-in event tracer (issue 6). Records where a pipeline waits: queue
// operations that block (on full or empty, and for how long), park / wake of futex sleeps, close,
// coordinator stop / first error / join, runner op spans, assembled batches and queue occupancy.
// `conveyor trace report` and `conveyor trace export` (tools/trace.h) read what it writes.
//
// Contract
//  - Off by default. Off costs one predictable branch per trace point (a relaxed load of one
//    global flag); the points sit on slow paths only (a thread about to wait, or done waiting),
//    runner op boundaries and assembled batches, never on a queue's fast path. Built with
//    -DCONVEYOR_TRACING=OFF (CMake) every point compiles to nothing.
//  - On at run time: CONVEYOR_TRACE=<path> in the environment of any program linked with
//    Conveyor (started before main(), written at exit), or start() / stop() from code.
//  - Recording is per thread into a ring of events allocated once, when the
//    thread records its first event: no allocation, lock or syscall per event. When a ring is
//    full the oldest events are overwritten; the loss is counted per thread, written into the
//    trace and reported by stop(), never silent.
//  - Every point is also a USDT probe (provider `conveyor`, <sys/sdt.h>), so perf, bpftrace and
//    SystemTap can attach to a production binary without a rebuild and without CONVEYOR_TRACE:
//    `bpftrace -e 'usdt:./conveyor:conveyor:queue_blocked_begin { @[arg0] = count(); }'`.
//    A probe site is a single nop while nothing is attached.
//  - Runner ops are the one point that runs per element (an enqueue op moves one example), so
//    they cost one clock read each and no event when short: an op that took longer than
//    kLongOpNs, waited (a blocked span or a futex sleep inside it) or threw is a kOpSpan event;
//    the others are counted per thread and written as one kOpStats event per kOpStatsEvery ops
//    (and when the thread ends). An op starts when the thread's previous op of the same runner
//    ended (runner loops run ops back to back), so one clock read serves as both ends.
//  - Each event: a timestamp (TSC when the CPU's is invariant, else CLOCK_MONOTONIC; written
//    as nanoseconds since start()), the recording thread, an object id (queue, runner or
//    coordinator, from register_object()), a kind, a small `aux` field and one 64-bit payload.
//
// Ring algorithm (one writer, the owning thread; one reader, stop()): the writer announces
// position p in `started`, fences, writes the slot (relaxed atomic stores), then publishes p+1 in
// `done` (release). The reader takes `done`, copies the slots, fences, reads `started`: a slot
// is valid only if no write that started after it could have landed on it (p >= started - N).
// This is the seqlock reader of Boehm, "Can seqlocks get along with programming language memory
// models?" (MSPC 2012), applied to a ring.
//
// File format (version 1): the line "CONVEYOR-TRACE 1", one line of JSON metadata (clock,
// duration, threads with name, OS tid, events and drops, objects with kind, name and capacity),
// then `events` records of 32 bytes, little-endian: u64 ns since start, u32 thread index,
// u32 object id, u16 kind, u16 aux, u32 zero, u64 payload. Events of one thread are contiguous
// and in the order the thread recorded them, with non-decreasing timestamps.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "engine/status.h"

#ifndef CONVEYOR_TRACING
#define CONVEYOR_TRACING 1
#endif

#if CONVEYOR_TRACING && defined(__has_include)
#if __has_include(<sys/sdt.h>)
#include <sys/sdt.h>
#define CONVEYOR_USDT1(name, a) DTRACE_PROBE1(conveyor, name, a)
#define CONVEYOR_USDT2(name, a, b) DTRACE_PROBE2(conveyor, name, a, b)
#define CONVEYOR_USDT3(name, a, b, c) DTRACE_PROBE3(conveyor, name, a, b, c)
#endif
#endif
#ifndef CONVEYOR_USDT1
#define CONVEYOR_USDT1(name, a) ((void)0)
#define CONVEYOR_USDT2(name, a, b) ((void)0)
#define CONVEYOR_USDT3(name, a, b, c) ((void)0)
#endif

namespace conveyor::trace {

// What an event is. Stable numbers: they are the file format's `kind`.
enum class Kind : std::uint16_t {
  kBlockedBegin = 1,   // object: queue; aux: Side; payload: queue size
  kBlockedEnd = 2,     // object: queue; aux: Side; payload: queue size
  kPark = 3,           // futex sleep begins; payload: address of the futex word
  kUnpark = 4,         // futex sleep ends; aux: WaitResult (0 awoken, 1 value changed, ...)
  kWake = 5,           // futex wake that woke someone; aux: threads woken; payload: word
  kClose = 6,          // object: queue; aux: 0 drain, 1 cancel pending enqueues
  kStopRequested = 7,  // object: coordinator; aux: 1 with an error to record
  kFirstError = 8,     // object: coordinator; payload: ErrorKind of the recorded error
  kJoinBegin = 9,      // object: coordinator
  kJoinEnd = 10,       // object: coordinator
  kOpSpan = 11,        // a runner op that was long, waited or threw; at its end. object: runner
                       // thread; aux: 1 ok, 0 the op threw; payload: its duration in ns
  kOpStats = 12,       // the other ops since the last kOpStats of this thread: object: runner
                       // thread; aux: how many; payload: their total duration in ns
  kBatch = 13,         // object: queue; payload: batch size
  kOccupancy = 14,     // object: queue; payload: elements stored
  kThreadBegin = 15,   // a conveyor::Thread's body starts
  kThreadEnd = 16,     // ... and ends
};

// What a blocked queue operation waits for.
enum class Side : std::uint16_t {
  kFull = 1,   // a producer: room (or its turn behind another blocked producer)
  kEmpty = 2,  // a consumer: elements (or its turn, or the close)
  kClose = 3,  // a drain close(): the producers blocked before it
};

inline constexpr std::uint64_t kLongOpNs = 20'000;
inline constexpr std::uint16_t kOpStatsEvery = 1024;

struct Options {
  std::string path;                             // where stop() writes the trace
  std::size_t events_per_thread = std::size_t{1} << 18;  // ring size; rounded up to 2^k
};

struct Summary {
  std::string path;
  std::uint64_t events = 0;   // written to the file
  std::uint64_t dropped = 0;  // overwritten before stop() (oldest first), over all threads
  std::size_t threads = 0;
};

// Starts recording. InvalidArgument for an empty path or events_per_thread < 16;
// FailedPrecondition if tracing is already on, or compiled out.
void start(const Options& options);
// Stops recording and writes the trace; FailedPrecondition if tracing is off; InvalidArgument
// naming the path if it cannot be written. Threads still running may record until they see the
// flag: what they record after the copy is left out (and not counted as dropped).
Summary stop();
// The environment variable that turns tracing on for a whole program run.
inline constexpr std::string_view kTraceEnvVar = "CONVEYOR_TRACE";
// Ring size for CONVEYOR_TRACE runs (default Options::events_per_thread).
inline constexpr std::string_view kTraceEventsEnvVar = "CONVEYOR_TRACE_EVENTS";

// Names the objects events refer to. Ids are unique for the process; 0 means "none". Objects
// are named whether or not tracing is on, so a trace started later still names them.
// Not for hot paths (a mutex); compiled out, returns 0.
std::uint32_t register_object(std::string_view kind, std::string_view name,
                              std::int64_t capacity = 0);
void forget_object(std::uint32_t id) noexcept;

// register_object() for the lifetime of an owner (a queue's member, a runner thread's local).
class Registration {
 public:
  Registration(std::string_view kind, std::string_view name, std::int64_t capacity = 0)
      : id_(register_object(kind, name, capacity)) {}
  ~Registration() { forget_object(id_); }
  Registration(const Registration&) = delete;
  Registration& operator=(const Registration&) = delete;
  std::uint32_t id() const noexcept { return id_; }

 private:
  std::uint32_t id_;
};

namespace internal {
#if CONVEYOR_TRACING
extern std::atomic<bool> g_on;
// Appends one event to the calling thread's ring. Out of line: the trace points inline only
// the flag test.
void record(Kind kind, std::uint32_t object, std::uint16_t aux, std::uint64_t payload) noexcept;
void set_thread_name(std::string_view name) noexcept;
void op_begin(std::uint32_t runner) noexcept;
void op_end(std::uint32_t runner, bool ok) noexcept;
#endif
}  // namespace internal

// True while recording. relaxed: a hint; an event recorded just after stop() began is dropped
// or kept, either is fine.
inline bool enabled() noexcept {
#if CONVEYOR_TRACING
  return internal::g_on.load(std::memory_order_relaxed);
#else
  return false;
#endif
}

// ---- trace points ----

#if CONVEYOR_TRACING
#define CONVEYOR_TRACE_RECORD(kind, object, aux, payload)                                      \
  do {                                                                                        \
    if (enabled()) [[unlikely]]                                                               \
      internal::record(kind, object, static_cast<std::uint16_t>(aux),                         \
                       static_cast<std::uint64_t>(payload));                                  \
  } while (false)
#else  // compiled out: the arguments are only named, so that nothing is left
#define CONVEYOR_TRACE_RECORD(kind, object, aux, payload) \
  ((void)(kind), (void)(object), (void)(aux), (void)(payload))
#endif

// A queue operation must wait (called once it knows, before it registers or sleeps) ...
inline void queue_blocked_begin(std::uint32_t queue, Side side, std::size_t size) noexcept {
  CONVEYOR_USDT3(queue_blocked_begin, queue, static_cast<int>(side), size);
  CONVEYOR_TRACE_RECORD(Kind::kBlockedBegin, queue, side, size);
}
// ... and is done waiting (succeeded, failed or timed out).
inline void queue_blocked_end(std::uint32_t queue, Side side, std::size_t size) noexcept {
  CONVEYOR_USDT3(queue_blocked_end, queue, static_cast<int>(side), size);
  CONVEYOR_TRACE_RECORD(Kind::kBlockedEnd, queue, side, size);
}
// One blocked span over all the waits of one operation (a dequeue_many waiting for its batch
// to fill waits once per arriving element): begun at the first wait, ended once when the
// operation is done. `size` (a callable) is read only at those two points.
class BlockedSpan {
 public:
  BlockedSpan(std::uint32_t queue, Side side) noexcept : queue_(queue), side_(side) {}
  BlockedSpan(const BlockedSpan&) = delete;
  BlockedSpan& operator=(const BlockedSpan&) = delete;

  template <class Size>
  void begin_once(Size size) noexcept {
    if (open_) return;
    open_ = true;
    queue_blocked_begin(queue_, side_, size());
  }
  template <class Size>
  void end(Size size) noexcept {
    if (!open_) return;
    open_ = false;
    queue_blocked_end(queue_, side_, size());
  }

 private:
  std::uint32_t queue_;
  Side side_;
  bool open_ = false;
};

// Elements stored in a queue at a moment of interest (a sample of its occupancy).
inline void occupancy(std::uint32_t queue, std::size_t size) noexcept {
  CONVEYOR_USDT2(queue_occupancy, queue, size);
  CONVEYOR_TRACE_RECORD(Kind::kOccupancy, queue, 0, size);
}
inline void queue_closed(std::uint32_t queue, bool cancel_pending_enqueues) noexcept {
  CONVEYOR_USDT2(queue_close, queue, static_cast<int>(cancel_pending_enqueues));
  CONVEYOR_TRACE_RECORD(Kind::kClose, queue, cancel_pending_enqueues ? 1 : 0, 0);
}
// A consumer assembled a batch of `size` elements from `queue`.
inline void batch(std::uint32_t queue, std::size_t size) noexcept {
  CONVEYOR_USDT2(batch, queue, size);
  CONVEYOR_TRACE_RECORD(Kind::kBatch, queue, 0, size);
}
// A runner thread's op (see "Runner ops" above).
inline void op_begin(std::uint32_t runner) noexcept {
  CONVEYOR_USDT1(op_begin, runner);
#if CONVEYOR_TRACING
  if (enabled()) [[unlikely]] internal::op_begin(runner);
#else
  (void)runner;
#endif
}
inline void op_end(std::uint32_t runner, bool ok) noexcept {
  CONVEYOR_USDT2(op_end, runner, static_cast<int>(ok));
#if CONVEYOR_TRACING
  if (enabled()) [[unlikely]] internal::op_end(runner, ok);
#else
  (void)runner;
  (void)ok;
#endif
}
inline void stop_requested(std::uint32_t coordinator, bool with_error) noexcept {
  CONVEYOR_USDT2(stop_requested, coordinator, static_cast<int>(with_error));
  CONVEYOR_TRACE_RECORD(Kind::kStopRequested, coordinator, with_error ? 1 : 0, 0);
}
inline void first_error(std::uint32_t coordinator, ErrorKind kind) noexcept {
  CONVEYOR_USDT2(first_error, coordinator, static_cast<int>(kind));
  CONVEYOR_TRACE_RECORD(Kind::kFirstError, coordinator, 0, static_cast<int>(kind));
}
inline void join_begin(std::uint32_t coordinator) noexcept {
  CONVEYOR_USDT1(join_begin, coordinator);
  CONVEYOR_TRACE_RECORD(Kind::kJoinBegin, coordinator, 0, 0);
}
inline void join_end(std::uint32_t coordinator) noexcept {
  CONVEYOR_USDT1(join_end, coordinator);
  CONVEYOR_TRACE_RECORD(Kind::kJoinEnd, coordinator, 0, 0);
}
// Futex level (engine/internal/futex.cc): every sleep of every Conveyor wait, and every wake
// that found a sleeper. The word's address ties a wake to the sleeps it ended.
inline void park(const void* word) noexcept {
  CONVEYOR_USDT1(park, word);
  CONVEYOR_TRACE_RECORD(Kind::kPark, 0, 0, reinterpret_cast<std::uintptr_t>(word));
}
inline void unpark(const void* word, int result) noexcept {
  CONVEYOR_USDT2(unpark, word, result);
  CONVEYOR_TRACE_RECORD(Kind::kUnpark, 0, result, reinterpret_cast<std::uintptr_t>(word));
}
inline void wake(const void* word, long woken) noexcept {
  CONVEYOR_USDT2(wake, word, woken);
  CONVEYOR_TRACE_RECORD(Kind::kWake, 0, woken > 0xffff ? 0xffff : woken,
                        reinterpret_cast<std::uintptr_t>(word));
}
// A conveyor::Thread's body begins (its full name becomes the thread's name in traces) / ends.
inline void thread_begin(const std::string& name) noexcept {
#if CONVEYOR_TRACING
  internal::set_thread_name(name);
#else
  (void)name;
#endif
  CONVEYOR_USDT1(thread_begin, name.c_str());
  CONVEYOR_TRACE_RECORD(Kind::kThreadBegin, 0, 0, 0);
}
inline void thread_end() noexcept {
  CONVEYOR_USDT1(thread_end, 0);
  CONVEYOR_TRACE_RECORD(Kind::kThreadEnd, 0, 0, 0);
}

#undef CONVEYOR_TRACE_RECORD

}  // namespace conveyor::trace
