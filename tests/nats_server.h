// A nats-server with JetStream for one test or benchmark: its own free loopback port and its own
// temporary store directory, so tests never depend on a server someone else started, and can
// kill and restart theirs. The binary comes from CONVEYOR_NATS_SERVER (set by CMake from
// find_program) or the NATS_SERVER environment variable.
//
// Readiness: start() returns once the server accepts TCP connections on its port (polled with
// connect(), up to 20 s); JetStream is enabled before the client listener opens.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace conveyor::testing {

// A port nobody listens on right now (the kernel's pick for an ephemeral bind).
inline int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    ::close(fd);
    throw std::runtime_error("bind() to a loopback port failed");
  }
  ::close(fd);
  return ntohs(a.sin_port);
}

inline bool port_accepts(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

inline std::string nats_server_binary() {
  if (const char* env = std::getenv("NATS_SERVER"); env != nullptr && *env != '\0') return env;
#ifdef CONVEYOR_NATS_SERVER
  return CONVEYOR_NATS_SERVER;
#else
  return "nats-server";
#endif
}

class NatsServer {
 public:
  NatsServer() : port_(free_loopback_port()) {
    std::string tmpl = (std::filesystem::temp_directory_path() / "conveyor-nats-XXXXXX").string();
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    start();
  }
  ~NatsServer() {
    kill(SIGKILL);
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;

  int port() const noexcept { return port_; }
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  const std::filesystem::path& dir() const noexcept { return dir_; }
  bool running() const noexcept { return pid_ > 0; }

  // Starts the server (again: same port, same store, so durable state survives a restart).
  void start() {
    if (pid_ > 0) return;
    const std::string bin = nats_server_binary();
    const std::string port = std::to_string(port_);
    const std::string store = (dir_ / "store").string();
    const std::string log = (dir_ / "server.log").string();
    std::vector<std::string> args = {bin, "-js", "-a", "127.0.0.1", "-p", port, "-sd", store,
                                     "-l", log};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    if (::posix_spawnp(&pid, bin.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
      throw std::runtime_error("cannot start " + bin);
    }
    pid_ = pid;
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(20);
    while (!port_accepts(port_)) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error(bin + " exited at start; see " + log);
      }
      if (std::chrono::steady_clock::now() > give_up) {
        throw std::runtime_error(bin + " did not listen on port " + port + " within 20 s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));  // readiness poll
    }
  }

  // Stops it with `signal` (SIGTERM: clean shutdown; SIGKILL: crash) and reaps it.
  void kill(int signal = SIGTERM) {
    if (pid_ <= 0) return;
    ::kill(pid_, signal);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  void restart() {
    kill(SIGTERM);
    start();
  }

 private:
  int port_;
  std::filesystem::path dir_;
  pid_t pid_ = -1;
};

}  // namespace conveyor::testing
