// Several `conveyor ingest --source nats://...` processes sharing one durable JetStream consumer
// (issue 8), against a nats-server this test starts on a free loopback port with a temporary
// file store (tests/nats_server.h):
//  1. three processes, no fault: every message handled exactly once, the work split between them;
//  2. one of three SIGKILLed mid-stream with --ack on_consumed: nothing lost, the messages it had
//     not acked are redelivered to the others and counted as redelivered;
//  3. the server restarted mid-stream: the processes ride it out and the pipeline completes.
// Each process appends "sequence deliveries" per handled message to its --record file (written
// and flushed before the ack), which is what the test checks, plus the server's consumer state.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "engine/jetstream.h"
#include "tests/nats_server.h"

extern char** environ;

namespace conveyor::jetstream {
namespace {

using std::chrono::milliseconds;

#if defined(__SANITIZE_ADDRESS__)
constexpr int kMessages = 3000;
#else
constexpr int kMessages = 6000;
#endif

struct Handled {
  std::uint64_t sequence;
  std::uint64_t deliveries;
};

class Process {
 public:
  explicit Process(std::vector<std::string> args) {
    args.insert(args.begin(), CONVEYOR_TOOL);
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    if (::posix_spawn(&pid_, CONVEYOR_TOOL, nullptr, nullptr, argv.data(), environ) != 0) {
      throw std::runtime_error("cannot start " CONVEYOR_TOOL);
    }
  }
  ~Process() {
    if (pid_ > 0) kill(SIGKILL);
  }
  // The exit code, or 128 + signal.
  int wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  void kill(int signal) {
    ::kill(pid_, signal);
    wait();
  }

 private:
  pid_t pid_ = -1;
};

std::vector<Handled> read_records(const std::filesystem::path& file) {
  std::vector<Handled> out;
  std::ifstream in(file);
  Handled h{};
  while (in >> h.sequence >> h.deliveries) out.push_back(h);
  return out;
}

std::size_t lines_in(const std::filesystem::path& file) {
  std::ifstream in(file);
  return static_cast<std::size_t>(
      std::count(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>(), '\n'));
}

// Polls until `ready()` (the processes' progress, seen in their record files), up to 60 s.
template <class F>
bool eventually(F ready) {
  const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!ready()) {
    if (std::chrono::steady_clock::now() > give_up) return false;
    std::this_thread::sleep_for(milliseconds(20));  // a poll of the files, not a handshake
  }
  return true;
}

class JetStreamProcesses : public ::testing::Test {
 protected:
  void SetUp() override {
    ConnectOptions o;
    o.url = server_.url();
    // `conveyor publish` loads the stream (file storage: it must survive a server restart).
    Process publish({"publish", "--server", server_.url(), "--stream", "WORK", "--count",
                     std::to_string(kMessages), "--size", "32"});
    ASSERT_EQ(publish.wait(), 0);
    conn_.emplace(Connection::connect(o));
  }

  // The consumer the processes share, created here with a short ack_wait so redeliveries after
  // a SIGKILL come within the test.
  void make_consumer(milliseconds ack_wait) {
    ConsumerConfig c;
    c.stream = "WORK";
    c.durable = "shared";
    c.ack_wait = ack_wait;
    ensure_consumer(*conn_, c);
  }

  std::filesystem::path record(int i) const {
    return server_.dir() / ("records-" + std::to_string(i) + ".txt");
  }

  std::vector<std::string> ingest_args(int i, int idle_exit_ms) const {
    return {"ingest", "--source", server_.url(), "--stream", "WORK", "--consumer", "shared",
            "--ack", "on_consumed", "--lanes", "2", "--batch-size", "32", "--capacity", "256",
            "--min-after-dequeue", "0", "--fetch-batch", "64", "--work-us", "10000",
            "--idle-exit-ms", std::to_string(idle_exit_ms), "--unavailable-ms", "30000",
            "--record", record(i).string(), "--no-progress"};
  }

  // How often each sequence was handled, over every process's records.
  std::map<std::uint64_t, int> handled(int processes, std::uint64_t* redelivered) const {
    std::map<std::uint64_t, int> count;
    for (int i = 0; i < processes; ++i) {
      for (const Handled& h : read_records(record(i))) {
        ++count[h.sequence];
        if (redelivered != nullptr && h.deliveries > 1) ++*redelivered;
      }
    }
    return count;
  }

  void expect_all_acked() {
    // The server applies acks asynchronously: poll its state until the floor is reached.
    conn_->flush(milliseconds(5000));
    ConsumerState st = consumer_state(*conn_, "WORK", "shared");
    eventually([&] {
      st = consumer_state(*conn_, "WORK", "shared");
      return st.ack_floor >= static_cast<std::uint64_t>(kMessages) && st.num_ack_pending == 0;
    });
    EXPECT_EQ(st.ack_floor, static_cast<std::uint64_t>(kMessages));
    EXPECT_EQ(st.num_pending, 0u);
    EXPECT_EQ(st.num_ack_pending, 0u);
  }

  testing::NatsServer server_;
  std::optional<Connection> conn_;
};

TEST_F(JetStreamProcesses, ThreeProcessesShareOneConsumerExactlyOnce) {
  make_consumer(milliseconds(30000));
  {
    std::vector<std::unique_ptr<Process>> procs;
    for (int i = 0; i < 3; ++i) procs.push_back(std::make_unique<Process>(ingest_args(i, 1500)));
    for (auto& p : procs) EXPECT_EQ(p->wait(), 0);
  }
  const auto count = handled(3, nullptr);
  ASSERT_EQ(count.size(), static_cast<std::size_t>(kMessages));
  for (const auto& [sequence, n] : count) {
    ASSERT_GE(sequence, 1u);
    ASSERT_LE(sequence, static_cast<std::uint64_t>(kMessages));
    ASSERT_EQ(n, 1) << "sequence " << sequence << " handled " << n << " times";
  }
  for (int i = 0; i < 3; ++i) EXPECT_GT(lines_in(record(i)), 0u) << "process " << i << " idle";
  expect_all_acked();
}

TEST_F(JetStreamProcesses, SigkillMidStreamLosesNothingWithOnConsumed) {
  make_consumer(milliseconds(2000));
  std::vector<std::unique_ptr<Process>> procs;
  // The survivors idle out only well after ack_wait (2 s), so they see the redeliveries.
  procs.push_back(std::make_unique<Process>(ingest_args(0, 8000)));
  procs.push_back(std::make_unique<Process>(ingest_args(1, 8000)));
  procs.push_back(std::make_unique<Process>(ingest_args(2, 8000)));
  ASSERT_TRUE(eventually([&] { return lines_in(record(0)) >= 256; }));
  ASSERT_LT(handled(3, nullptr).size(), static_cast<std::size_t>(kMessages)) << "not mid-stream";
  procs[0]->kill(SIGKILL);
  EXPECT_EQ(procs[1]->wait(), 0);
  EXPECT_EQ(procs[2]->wait(), 0);

  std::uint64_t redelivered = 0;
  const auto count = handled(3, &redelivered);
  ASSERT_EQ(count.size(), static_cast<std::size_t>(kMessages)) << "messages lost";
  // Process 0 held fetched, unacked messages when it died: they came back to the others.
  EXPECT_GT(redelivered, 0u);
  expect_all_acked();
}

// Acks sent around the restart may be lost (the server had not recovered the consumer yet):
// those messages come back after ack_wait, so the processes stay until well after it.
TEST_F(JetStreamProcesses, ServerRestartMidStreamResumes) {
  make_consumer(milliseconds(2000));
  std::vector<std::unique_ptr<Process>> procs;
  for (int i = 0; i < 3; ++i) procs.push_back(std::make_unique<Process>(ingest_args(i, 6000)));
  ASSERT_TRUE(eventually([&] { return handled(3, nullptr).size() >= kMessages / 5; }));
  ASSERT_LT(handled(3, nullptr).size(), static_cast<std::size_t>(kMessages)) << "not mid-stream";
  server_.restart();
  for (auto& p : procs) EXPECT_EQ(p->wait(), 0);
  const auto count = handled(3, nullptr);
  ASSERT_EQ(count.size(), static_cast<std::size_t>(kMessages)) << "messages lost";
  ConnectOptions o;
  o.url = server_.url();
  conn_.emplace(Connection::connect(o));
  expect_all_acked();
}

}  // namespace
}  // namespace conveyor::jetstream
