// `conveyor perf`, the driver's side of a measurement (perf_internal.h): starting a worker
// process and waiting for it, finding the worker binaries, the machine's facts and the JSON
// document's header.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "tools/perf_internal.h"
#include "topology/topology.h"

extern char** environ;

namespace conveyor::tools::perf {

namespace {

std::string self_dir() {
  std::error_code ec;
  const auto p = std::filesystem::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : p.parent_path().string();
}

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

std::string command_output(const std::string& cmd) {
  std::string out;
  std::unique_ptr<FILE, int (*)(FILE*)> p(popen(cmd.c_str(), "r"), pclose);
  if (!p) return out;
  char buf[256];
  while (std::fgets(buf, sizeof buf, p.get()) != nullptr) out += buf;
  return trim(out);
}

std::string commit() {
#ifdef CONVEYOR_SOURCE_DIR
  const std::string dir = CONVEYOR_SOURCE_DIR;
  std::string c = command_output("git -C '" + dir + "' rev-parse --short HEAD 2>/dev/null");
  if (c.empty()) return "unknown";
  if (!command_output("git -C '" + dir + "' status --porcelain --untracked-files=no 2>/dev/null")
           .empty()) {
    c += " (with uncommitted changes)";
  }
  return c;
#else
  return "unknown";
#endif
}

std::string now_utc() {
  const std::time_t t = std::time(nullptr);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

}  // namespace

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string last_lines(const std::string& text, std::size_t max_chars) {
  std::string t = text;
  while (!t.empty() && (t.back() == '\n' || t.back() == '\r')) t.pop_back();
  if (t.size() > max_chars) t = "..." + t.substr(t.size() - max_chars);
  std::replace(t.begin(), t.end(), '\n', ' ');
  return t;
}

// Runs argv with stdout and stderr into `log`; kills it after `timeout_s`. The worker gets this
// process's environment without CONVEYOR_TRACE / CONVEYOR_TRACE_EVENTS (engine/trace.h): a
// measurement runs with tracing off unless it says otherwise (the trace scenario's "on").
Child spawn_and_wait(const std::vector<std::string>& args, const std::string& log,
                     double timeout_s) {
  std::vector<char*> argv;
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string_view v = *e;
    if (v.rfind("CONVEYOR_TRACE=", 0) == 0 || v.rfind("CONVEYOR_TRACE_EVENTS=", 0) == 0) continue;
    envp.push_back(*e);
  }
  envp.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    throw std::runtime_error("cannot start the worker '" + args[0] + "': " + std::strerror(rc));
  }
  Child child;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  for (;;) {
    int status = 0;
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) {
      if (WIFEXITED(status)) child.exit_code = WEXITSTATUS(status);
      if (WIFSIGNALED(status)) child.signal = WTERMSIG(status);
      return child;
    }
    if (std::chrono::steady_clock::now() > deadline && !child.killed_after_timeout) {
      kill(pid, SIGKILL);
      child.killed_after_timeout = true;
    }
    // The driver only polls here; the worker measures its own window.
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

std::string find_worker(const Options& o) {
  if (!o.worker.empty()) return o.worker;
  if (const char* env = std::getenv("CONVEYOR_PERF_WORKER"); env != nullptr && *env != '\0') {
    return env;
  }
  const std::string sibling = self_dir() + "/conveyor-perf-worker";
  if (access(sibling.c_str(), X_OK) == 0) return sibling;
#ifdef CONVEYOR_PERF_WORKER_PATH
  if (access(CONVEYOR_PERF_WORKER_PATH, X_OK) == 0) return CONVEYOR_PERF_WORKER_PATH;
#endif
  throw std::runtime_error(
      "conveyor-perf-worker not found next to conveyor (" + sibling +
      "); pass --worker PATH or set CONVEYOR_PERF_WORKER");
}

// The trace scenario's worker with tracing compiled out, or "" when there is none (a build
// with -DCONVEYOR_TRACING=OFF, or under a sanitizer: see engine/CMakeLists.txt).
std::string find_notrace_worker(const Options& o, const std::string& worker) {
  if (!o.notrace_worker.empty()) return o.notrace_worker;  // validate() checked it
  if (const char* env = std::getenv("CONVEYOR_PERF_WORKER_NOTRACE");
      env != nullptr && *env != '\0') {
    return env;
  }
  const std::string sibling = worker + "-notrace";
  return access(sibling.c_str(), X_OK) == 0 ? sibling : std::string();
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("model name", 0) == 0) {
      const auto colon = line.find(':');
      if (colon != std::string::npos) return trim(line.substr(colon + 2));
    }
  }
  return "unknown";
}

// Copy bandwidth (bytes copied per second) of memcpy over buffers far larger than the caches:
// the best of a few passes, each a fresh pass over both buffers.
double memcpy_gbps(std::size_t bytes) {
  std::vector<char> src(bytes, 1), dst(bytes, 0);
  double best = 0;
  for (int pass = 0; pass < 4; ++pass) {
    src[static_cast<std::size_t>(pass)] = static_cast<char>(pass);
    const auto t0 = std::chrono::steady_clock::now();
    std::memcpy(dst.data(), src.data(), bytes);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (dst[static_cast<std::size_t>(pass)] != static_cast<char>(pass)) return -1;  // never
    if (s > 0) best = std::max(best, static_cast<double>(bytes) / s / 1e9);
  }
  return best;
}

std::string loadavg() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a + " " + b + " " + c;
}

nlohmann::ordered_json header_json(const Options& o, const topology::Topology& topo,
                                   const std::string& command, const std::string& worker,
                                   double memcpy) {
  utsname u{};
  std::string kernel = "unknown";
  if (uname(&u) == 0) kernel = std::string(u.sysname) + " " + u.release + " " + u.version;
  nlohmann::ordered_json h;
  h["tool"] = "conveyor perf";
  h["schema_version"] = 1;
  h["machine"] = {{"cpu_model", cpu_model()},
                  {"cores", topo.num_pus()},
                  {"hardware_concurrency", std::thread::hardware_concurrency()},
                  {"numa_nodes", topo.num_numa_nodes()},
                  {"kernel", kernel},
                  {"topology", topo.source()}};
  h["commit"] = commit();
#ifdef CONVEYOR_PERF_COMPILER
  h["compiler"] = CONVEYOR_PERF_COMPILER;
#else
  h["compiler"] = "unknown";
#endif
#ifdef CONVEYOR_PERF_CXX_FLAGS
  h["cxx_flags"] = CONVEYOR_PERF_CXX_FLAGS;
#endif
  h["command"] = command;
  h["date"] = now_utc();
  h["loadavg_before"] = loadavg();  // 1, 5, 15 min: other work on the machine
  h["worker"] = worker;
  h["memcpy_gbps"] = memcpy;
  h["near_rtt_below_ns"] = kNearRttNs;
  h["capacity"] = 1024;
  h["options"] = {{"quick", o.quick},     {"reps", o.reps},         {"items", o.items},
                  {"threads", o.threads}, {"placements", o.placements}, {"queues", o.queues},
                  {"scenarios", o.scenarios}, {"element_sizes", o.element_sizes},
                  {"cap_s", o.cap_s},     {"stall_s", o.stall_s}};
  return h;
}

}  // namespace conveyor::tools::perf
