#include "engine/trace.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#define CONVEYOR_HAVE_RDTSC 1
#else
#define CONVEYOR_HAVE_RDTSC 0
#endif

namespace conveyor::trace {

namespace {

// The registry of named objects (queues, runners, coordinators). Named whether or not tracing
// is on, so a trace started later still names what already exists.
struct Object {
  std::string kind;
  std::string name;
  std::int64_t capacity = 0;
  bool alive = true;  // forgotten while tracing: kept (its events name it) until stop()
};

constinit std::atomic<std::uint32_t> g_next_object{1};  // 0 means "no object"

#if CONVEYOR_TRACING

// One thread's ring. Written only by its thread (record()); read by stop() under Tracer::mu.
struct ThreadBuffer {
  ThreadBuffer() = default;
  ThreadBuffer(const ThreadBuffer&) = delete;
  ThreadBuffer& operator=(const ThreadBuffer&) = delete;
  ~ThreadBuffer() { std::free(words); }

  static constexpr std::size_t kWordsPerEvent = 3;  // timestamp; object|kind|aux; payload
  // kWordsPerEvent * (mask + 1) words, accessed only through std::atomic_ref (the reader may
  // copy a slot while its writer overwrites it; the copy is then discarded, see stop()).
  std::uint64_t* words = nullptr;
  std::uint64_t mask = 0;
  // Positions (events ever recorded by this thread). `started`: the writer is at or past it
  // (T1); `done`: every event below it is complete (T2).
  std::atomic<std::uint64_t> started{0};
  std::atomic<std::uint64_t> done{0};
  // Set by the thread's exit (release); stop() frees buffers it sees exited (acquire).
  std::atomic<bool> exited{false};
  // Guarded by Tracer::mu.
  std::uint64_t base = 0;  // `done` when the current trace started: older events are not in it
  std::uint32_t index = 0;
  long tid = 0;
  std::string name;
};

struct Tracer {
  std::mutex mu;  // guards everything below
  std::map<std::uint32_t, Object> objects;
  std::vector<std::unique_ptr<ThreadBuffer>> buffers;
  std::uint32_t next_thread_index = 1;
  Options options;
  std::size_t ring_events = 0;  // options.events_per_thread rounded up to a power of two
  std::uint64_t lost_threads = 0;  // threads whose ring could not be allocated
  // The clock pairs of start(): ticks (TSC or steady ns) and steady / wall clocks.
  std::uint64_t ticks0 = 0;
  std::chrono::steady_clock::time_point steady0;
  std::int64_t unix_ns0 = 0;
};

// Leaked on purpose: used from static constructors and from the exit handler, whatever the
// order of static destruction.
Tracer& tracer() {
  static Tracer* t = new Tracer;
  return *t;
}

// The TSC when it ticks at a constant rate through every power state (Linux's constant_tsc
// and nonstop_tsc flags), else CLOCK_MONOTONIC in nanoseconds.
bool detect_invariant_tsc() {
#if CONVEYOR_HAVE_RDTSC
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("flags", 0) != 0) continue;
    line += ' ';
    return line.find(" constant_tsc ") != std::string::npos &&
           line.find(" nonstop_tsc ") != std::string::npos;
  }
#endif
  return false;
}

bool use_tsc() {
  static const bool tsc = detect_invariant_tsc();
  return tsc;
}

std::uint64_t steady_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now().time_since_epoch())
                                        .count());
}

std::uint64_t ticks() noexcept {
#if CONVEYOR_HAVE_RDTSC
  if (use_tsc()) return __rdtsc();
#endif
  return steady_ns();
}

thread_local ThreadBuffer* t_buffer = nullptr;
thread_local bool t_exited = false;  // this thread's exit handler ran: record nothing more
thread_local char t_name[128] = {};   // set_thread_name(); empty: the kernel's name

// The calling thread's runner op in progress and its short ops not yet written (kOpStats).
struct OpState {
  std::uint32_t runner = 0;
  std::uint64_t begin = 0;     // ticks
  std::uint64_t last_end = 0;  // ticks; 0: no op ended yet for `runner`
  bool waited = false;         // a blocked span or a futex sleep since `begin`
  std::uint16_t count = 0;     // short ops since the last kOpStats
  std::uint64_t total = 0;     // their ticks
};
thread_local OpState t_op;

// kLongOpNs in ticks, set by start() before tracing turns on (a thread that sees it stale
// only writes a few short ops as spans).
constinit std::atomic<std::uint64_t> g_long_op_ticks{kLongOpNs};
// ticks() when the current (or last) trace started: op times from before it are not used.
constinit std::atomic<std::uint64_t> g_ticks0{0};

// Marks the thread's buffer exited when the thread ends. Constructed when the thread attaches
// (a thread_local with a destructor is built on first use).
struct ThreadExit {
  bool armed = false;
  ~ThreadExit() {
    if (t_buffer != nullptr) t_buffer->exited.store(true, std::memory_order_release);
    t_buffer = nullptr;
    t_exited = true;
  }
};
thread_local ThreadExit t_exit;

std::size_t round_up_pow2(std::size_t n) {
  std::size_t p = 16;
  while (p < n) p <<= 1;
  return p;
}

// The calling thread's first event: allocate its ring and register it. Null if it cannot.
// The ring is not touched here: a large allocation is fresh zero pages from the kernel, faulted
// in as the first pass writes them (one fault per 170 events), so a thread that records little
// costs little memory.
ThreadBuffer* attach() noexcept {
  if (t_exited) return nullptr;
  try {
    Tracer& t = tracer();
    std::lock_guard lock(t.mu);
    const std::size_t n = t.ring_events;
    if (n == 0) return nullptr;  // never started
    auto b = std::make_unique<ThreadBuffer>();
    b->words = static_cast<std::uint64_t*>(
        std::malloc(n * ThreadBuffer::kWordsPerEvent * sizeof(std::uint64_t)));
    if (b->words == nullptr) {
      t.lost_threads += 1;
      return nullptr;
    }
    b->mask = n - 1;
    b->index = t.next_thread_index++;
    b->tid = static_cast<long>(::syscall(SYS_gettid));
    if (t_name[0] != '\0') {
      b->name = t_name;
    } else {
      char kernel[32] = {};
      if (pthread_getname_np(pthread_self(), kernel, sizeof kernel) == 0) b->name = kernel;
    }
    t_exit.armed = true;
    t_buffer = b.get();
    t.buffers.push_back(std::move(b));
    return t_buffer;
  } catch (...) {
    return nullptr;
  }
}

void json_string(std::string& out, std::string_view s) {
  out += '"';
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

std::string program_name() {
  std::ifstream in("/proc/self/cmdline");
  std::string arg0;
  std::getline(in, arg0, '\0');
  return arg0;
}

// A file record (see the header's "File format").
struct FileEvent {
  std::uint64_t ns;
  std::uint32_t thread;
  std::uint32_t object;
  std::uint16_t kind;
  std::uint16_t aux;
  std::uint32_t zero;
  std::uint64_t payload;
};
static_assert(sizeof(FileEvent) == 32 && offsetof(FileEvent, kind) == 16 &&
              offsetof(FileEvent, payload) == 24);

void write_le(std::string& out, std::uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

// Writes the trace at exit for CONVEYOR_TRACE runs.
void write_at_exit() {
  if (!enabled()) return;
  try {
    const Summary s = stop();
    std::fprintf(stderr, "conveyor: trace written to %s: %llu events from %zu threads",
                 s.path.c_str(), static_cast<unsigned long long>(s.events), s.threads);
    if (s.dropped != 0) {
      std::fprintf(stderr, "; %llu oldest events DROPPED (rings full: raise %s)",
                   static_cast<unsigned long long>(s.dropped),
                   std::string(kTraceEventsEnvVar).c_str());
    }
    std::fprintf(stderr, "\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "conveyor: trace not written: %s\n", e.what());
  }
}

#endif  // CONVEYOR_TRACING

// CONVEYOR_TRACE=<path>: trace the whole run (from static initialisation to exit).
struct StartFromEnvironment {
  StartFromEnvironment() {
    const char* path = std::getenv(std::string(kTraceEnvVar).c_str());
    if (path == nullptr || *path == '\0') return;
#if CONVEYOR_TRACING
    Options options;
    options.path = path;
    if (const char* n = std::getenv(std::string(kTraceEventsEnvVar).c_str());
        n != nullptr && *n != '\0') {
      std::size_t value = 0;
      const char* end = n + std::strlen(n);
      const auto [ptr, ec] = std::from_chars(n, end, value);
      if (ec != std::errc() || ptr != end || value < 16 || value > (std::size_t{1} << 28)) {
        std::fprintf(stderr,
                     "conveyor: %s = '%s': must be an integer in [16, 2^28]; using %zu\n",
                     std::string(kTraceEventsEnvVar).c_str(), n, options.events_per_thread);
      } else {
        options.events_per_thread = value;
      }
    }
    try {
      start(options);
      std::atexit(write_at_exit);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "conveyor: %s = '%s': not tracing: %s\n",
                   std::string(kTraceEnvVar).c_str(), path, e.what());
    }
#else
    std::fprintf(stderr,
                 "conveyor: %s is set but this build has tracing compiled out "
                 "(CONVEYOR_TRACING=OFF); not tracing\n",
                 std::string(kTraceEnvVar).c_str());
#endif
  }
};
StartFromEnvironment g_start_from_environment;

}  // namespace

#if CONVEYOR_TRACING

namespace internal {

constinit std::atomic<bool> g_on{false};

namespace {

void record_at(std::uint64_t ts, Kind kind, std::uint32_t object, std::uint16_t aux,
               std::uint64_t payload) noexcept {
  ThreadBuffer* b = t_buffer;
  if (b == nullptr) [[unlikely]] {
    b = attach();
    if (b == nullptr) return;
  }
  // relaxed: only this thread writes `done`.
  const std::uint64_t p = b->done.load(std::memory_order_relaxed);
  // T1: announces that slot p & mask is being overwritten. relaxed store + release fence:
  // pairs with the reader's acquire fence in stop(); a reader that copied any word of this
  // write then sees started >= p + 1 and discards the slot.
  b->started.store(p + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  std::uint64_t* slot = b->words + ThreadBuffer::kWordsPerEvent * (p & b->mask);
  // relaxed: published by T2.
  std::atomic_ref<std::uint64_t>(slot[0]).store(ts, std::memory_order_relaxed);
  std::atomic_ref<std::uint64_t>(slot[1]).store(
      std::uint64_t{object} | (std::uint64_t{static_cast<std::uint16_t>(kind)} << 32) |
          (std::uint64_t{aux} << 48),
      std::memory_order_relaxed);
  std::atomic_ref<std::uint64_t>(slot[2]).store(payload, std::memory_order_relaxed);
  // T2: pairs with the acquire load of `done` in stop(); publishes the slot.
  b->done.store(p + 1, std::memory_order_release);
}

void flush_op_stats() noexcept {
  if (t_op.count == 0) return;
  record_at(ticks(), Kind::kOpStats, t_op.runner, t_op.count, t_op.total);
  t_op.count = 0;
  t_op.total = 0;
}

}  // namespace

void record(Kind kind, std::uint32_t object, std::uint16_t aux, std::uint64_t payload) noexcept {
  if (kind == Kind::kBlockedBegin || kind == Kind::kPark) t_op.waited = true;
  if (kind == Kind::kThreadEnd) flush_op_stats();
  record_at(ticks(), kind, object, aux, payload);
}

void op_begin(std::uint32_t runner) noexcept {
  if (runner != t_op.runner) {
    flush_op_stats();
    t_op.runner = runner;
    t_op.last_end = 0;
  }
  // relaxed: set by start() before the flag that brought us here.
  const bool fresh = t_op.last_end >= g_ticks0.load(std::memory_order_relaxed);
  t_op.begin = t_op.last_end != 0 && fresh ? t_op.last_end : ticks();
  t_op.waited = false;
}

void op_end(std::uint32_t runner, bool ok) noexcept {
  const std::uint64_t now = ticks();
  // relaxed: as in op_begin().
  if (runner != t_op.runner || t_op.begin < g_ticks0.load(std::memory_order_relaxed) ||
      t_op.begin == 0) {  // began before the trace did
    flush_op_stats();
    t_op.runner = runner;
    t_op.last_end = now;
    return;
  }
  const std::uint64_t d = now > t_op.begin ? now - t_op.begin : 0;
  // relaxed: a threshold; see g_long_op_ticks.
  if (!ok || t_op.waited || d > g_long_op_ticks.load(std::memory_order_relaxed)) {
    record_at(now, Kind::kOpSpan, runner, ok ? 1 : 0, d);
  } else {
    t_op.count += 1;
    t_op.total += d;
    if (t_op.count == kOpStatsEvery) flush_op_stats();
  }
  t_op.last_end = now;
}

void set_thread_name(std::string_view name) noexcept {
  const std::size_t n = std::min(name.size(), sizeof t_name - 1);
  std::memcpy(t_name, name.data(), n);
  t_name[n] = '\0';
}

}  // namespace internal

void start(const Options& options) {
  if (options.path.empty()) throw invalid_argument("path", "''", "must name a file");
  if (options.events_per_thread < 16 || options.events_per_thread > (std::size_t{1} << 28)) {
    throw invalid_argument("events_per_thread", static_cast<long long>(options.events_per_thread),
                           "must be in [16, 2^28]");
  }
  Tracer& t = tracer();
  std::lock_guard lock(t.mu);
  // relaxed: start/stop are serialised by t.mu.
  if (internal::g_on.load(std::memory_order_relaxed)) {
    throw Error(ErrorKind::kFailedPrecondition,
                "tracing is already on (writing to '" + t.options.path + "')");
  }
  t.options = options;
  t.ring_events = round_up_pow2(options.events_per_thread);
  // Events recorded before this start (a previous trace) are not part of this one.
  for (const auto& b : t.buffers) b->base = b->done.load(std::memory_order_acquire);
  (void)use_tsc();  // detect the clock now, not in the first record()
  t.steady0 = std::chrono::steady_clock::now();
  t.ticks0 = ticks();
  // relaxed: published with the flag below (a thread that sees it late mis-times one op).
  g_ticks0.store(t.ticks0, std::memory_order_relaxed);
  if (use_tsc()) {  // ticks per ns, roughly: 2 ms of the steady clock against the TSC
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    const double ns =
        std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t.steady0)
            .count();
    const double per_ns = static_cast<double>(ticks() - t.ticks0) / ns;
    // relaxed: see g_long_op_ticks.
    g_long_op_ticks.store(static_cast<std::uint64_t>(per_ns * kLongOpNs),
                          std::memory_order_relaxed);
  }
  t.unix_ns0 = std::chrono::duration_cast<std::chrono::nanoseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
  // relaxed: record() reads only `ring_events` beyond the flag, under t.mu (attach).
  internal::g_on.store(true, std::memory_order_relaxed);
}

Summary stop() {
  Tracer& t = tracer();
  std::lock_guard lock(t.mu);
  // relaxed: start/stop are serialised by t.mu.
  if (!internal::g_on.load(std::memory_order_relaxed)) {
    throw Error(ErrorKind::kFailedPrecondition, "tracing is not on");
  }
  internal::g_on.store(false, std::memory_order_relaxed);

  // Ticks -> nanoseconds since start: the steady clock over the trace's duration calibrates
  // the TSC (at least 20 ms, so that the reads' own cost is below 10 ppm).
  auto steady1 = std::chrono::steady_clock::now();
  if (use_tsc() && steady1 - t.steady0 < std::chrono::milliseconds(20)) {
    std::this_thread::sleep_until(t.steady0 + std::chrono::milliseconds(20));
    steady1 = std::chrono::steady_clock::now();
  }
  const std::uint64_t ticks1 = ticks();
  const double duration_ns = std::chrono::duration<double, std::nano>(steady1 - t.steady0).count();
  const double ns_per_tick =
      use_tsc() && ticks1 > t.ticks0 ? duration_ns / static_cast<double>(ticks1 - t.ticks0) : 1.0;

  std::vector<FileEvent> events;
  struct ThreadInfo {
    std::uint32_t index;
    long tid;
    std::string name;
    std::uint64_t events;
    std::uint64_t dropped;
  };
  std::vector<ThreadInfo> threads;
  Summary summary;
  summary.path = t.options.path;
  for (const auto& b : t.buffers) {
    const std::uint64_t n = b->mask + 1;
    // T2': pairs with T2 in record(): every slot below `done` is complete and visible.
    const std::uint64_t done = b->done.load(std::memory_order_acquire);
    if (done <= b->base) continue;  // nothing in this trace
    const std::uint64_t lo = std::max(b->base, done > n ? done - n : 0);
    const std::size_t first = events.size();
    for (std::uint64_t p = lo; p < done; ++p) {
      std::uint64_t* slot = b->words + ThreadBuffer::kWordsPerEvent * (p & b->mask);
      // relaxed: validated below.
      const std::uint64_t ts = std::atomic_ref<std::uint64_t>(slot[0]).load(std::memory_order_relaxed);
      const std::uint64_t w1 = std::atomic_ref<std::uint64_t>(slot[1]).load(std::memory_order_relaxed);
      const std::uint64_t payload =
          std::atomic_ref<std::uint64_t>(slot[2]).load(std::memory_order_relaxed);
      const double rel = ts > t.ticks0 ? static_cast<double>(ts - t.ticks0) * ns_per_tick : 0.0;
      const auto kind = static_cast<std::uint16_t>(w1 >> 32);
      const bool ticks_payload = kind == static_cast<std::uint16_t>(Kind::kOpSpan) ||
                                 kind == static_cast<std::uint16_t>(Kind::kOpStats);
      events.push_back(FileEvent{
          static_cast<std::uint64_t>(rel), b->index, static_cast<std::uint32_t>(w1), kind,
          static_cast<std::uint16_t>(w1 >> 48), 0,
          ticks_payload ? static_cast<std::uint64_t>(static_cast<double>(payload) * ns_per_tick)
                        : payload});
    }
    // T1': pairs with T1's release fence: if we copied any word of a write that started after
    // `done`, we see its `started` now. Slots those writes may have hit are dropped.
    std::atomic_thread_fence(std::memory_order_acquire);
    // relaxed: ordered by the fence above.
    const std::uint64_t started = b->started.load(std::memory_order_relaxed);
    const std::uint64_t valid = std::max(lo, started > n ? started - n : 0);
    events.erase(events.begin() + static_cast<std::ptrdiff_t>(first),
                 events.begin() + static_cast<std::ptrdiff_t>(first + std::min(valid, done) - lo));
    // Per thread, timestamps never go back (a thread that moved between cores reads another
    // core's TSC, which Linux keeps in step but a VM may not exactly).
    for (std::size_t i = first + 1; i < events.size(); ++i) {
      events[i].ns = std::max(events[i].ns, events[i - 1].ns);
    }
    const std::uint64_t kept = events.size() - first;
    const std::uint64_t dropped = (done - b->base) - kept;
    threads.push_back(ThreadInfo{b->index, b->tid, b->name, kept, dropped});
    summary.events += kept;
    summary.dropped += dropped;
  }
  summary.threads = threads.size();

  std::string meta = "{\"version\":1,\"clock\":";
  json_string(meta, use_tsc() ? "tsc" : "steady");
  meta += ",\"pid\":" + std::to_string(::getpid());
  meta += ",\"program\":";
  json_string(meta, program_name());
  meta += ",\"start_unix_ns\":" + std::to_string(t.unix_ns0);
  meta += ",\"duration_ns\":" + std::to_string(static_cast<std::uint64_t>(duration_ns));
  meta += ",\"ring_events\":" + std::to_string(t.ring_events);
  meta += ",\"events\":" + std::to_string(summary.events);
  meta += ",\"dropped\":" + std::to_string(summary.dropped);
  meta += ",\"lost_threads\":" + std::to_string(t.lost_threads);
  meta += ",\"threads\":[";
  for (std::size_t i = 0; i < threads.size(); ++i) {
    const ThreadInfo& th = threads[i];
    if (i != 0) meta += ',';
    meta += "{\"index\":" + std::to_string(th.index) + ",\"tid\":" + std::to_string(th.tid) +
            ",\"name\":";
    json_string(meta, th.name);
    meta += ",\"events\":" + std::to_string(th.events) +
            ",\"dropped\":" + std::to_string(th.dropped) + "}";
  }
  meta += "],\"objects\":[";
  bool first_object = true;
  for (const auto& [id, o] : t.objects) {
    if (!first_object) meta += ',';
    first_object = false;
    meta += "{\"id\":" + std::to_string(id) + ",\"kind\":";
    json_string(meta, o.kind);
    meta += ",\"name\":";
    json_string(meta, o.name);
    meta += ",\"capacity\":" + std::to_string(o.capacity) + "}";
  }
  meta += "]}";

  std::string out = "CONVEYOR-TRACE 1\n" + meta + "\n";
  out.reserve(out.size() + events.size() * sizeof(FileEvent));
  if constexpr (std::endian::native == std::endian::little) {  // the file's layout already
    out.append(reinterpret_cast<const char*>(events.data()), events.size() * sizeof(FileEvent));
  } else {
    for (const FileEvent& e : events) {
      write_le(out, e.ns, 8);
      write_le(out, e.thread, 4);
      write_le(out, e.object, 4);
      write_le(out, e.kind, 2);
      write_le(out, e.aux, 2);
      write_le(out, 0, 4);
      write_le(out, e.payload, 8);
    }
  }

  // Buffers of exited threads are no longer written; forgotten objects are no longer named.
  std::erase_if(t.buffers, [](const std::unique_ptr<ThreadBuffer>& b) {
    // acquire: pairs with the release in ~ThreadExit; its thread wrote its last event before.
    return b->exited.load(std::memory_order_acquire);
  });
  std::erase_if(t.objects, [](const auto& entry) { return !entry.second.alive; });

  std::FILE* f = std::fopen(t.options.path.c_str(), "wb");
  const bool written = f != nullptr && std::fwrite(out.data(), 1, out.size(), f) == out.size();
  if (f != nullptr && std::fclose(f) != 0) {
    throw invalid_argument("path", "'" + t.options.path + "'", "cannot be written");
  }
  if (!written) throw invalid_argument("path", "'" + t.options.path + "'", "cannot be written");
  return summary;
}

std::uint32_t register_object(std::string_view kind, std::string_view name,
                              std::int64_t capacity) {
  // relaxed: only uniqueness matters.
  const std::uint32_t id = g_next_object.fetch_add(1, std::memory_order_relaxed);
  Tracer& t = tracer();
  std::lock_guard lock(t.mu);
  t.objects.emplace(id, Object{std::string(kind), std::string(name), capacity, true});
  return id;
}

void forget_object(std::uint32_t id) noexcept {
  if (id == 0) return;
  try {
    Tracer& t = tracer();
    std::lock_guard lock(t.mu);
    auto it = t.objects.find(id);
    if (it == t.objects.end()) return;
    // relaxed: under t.mu, which start/stop hold to change the flag.
    if (internal::g_on.load(std::memory_order_relaxed)) {
      it->second.alive = false;
    } else {
      t.objects.erase(it);
    }
  } catch (...) {
    // Only the mutex could throw; the name stays in the registry.
  }
}

#else  // tracing compiled out

void start(const Options&) {
  throw Error(ErrorKind::kFailedPrecondition,
              "tracing is compiled out (built with CONVEYOR_TRACING=OFF)");
}
Summary stop() {
  throw Error(ErrorKind::kFailedPrecondition,
              "tracing is compiled out (built with CONVEYOR_TRACING=OFF)");
}
std::uint32_t register_object(std::string_view, std::string_view, std::int64_t) { return 0; }
void forget_object(std::uint32_t) noexcept {}

#endif

}  // namespace conveyor::trace
