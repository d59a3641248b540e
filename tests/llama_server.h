// Real llama-server processes for tests: started on loopback on a free port, ready when /health
// answers, killed when the object goes (and with the test binary, should it die first).
#pragma once

#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <httplib.h>

#include <chrono>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "run_command.h"
#include "test_paths.h"

namespace ponder::testing {

// A port nothing listens on now (the kernel's pick for an ephemeral bind).
inline int free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("cannot find a free port");
  }
  const int port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}

inline std::string llama_server_binary() { return build_file("bin/llama-server"); }

class LlamaServer {
 public:
  // Serves `model` with `slots` parallel slots of `ctx_per_slot` cells each, one thread, and the
  // in-process engine's reproducible numerics (F32 KV cache, no flash attention). Throws when it
  // does not come up within 30 s (with the end of its log).
  LlamaServer(const std::string& model, int slots, int ctx_per_slot) : port_(free_port()) {
    log_ = std::filesystem::temp_directory_path() /
           ("ponder-llama-server-" + std::to_string(::getpid()) + "-" + std::to_string(port_) + ".log");
    const std::vector<std::string> args = {llama_server_binary(), "-m", model, "--host", "127.0.0.1", "--port",
                                           std::to_string(port_), "-np", std::to_string(slots), "-c",
                                           std::to_string(slots * ctx_per_slot), "-t", "1", "-fa", "off", "-ctk",
                                           "f32", "-ctv", "f32", "--no-warmup", "--no-webui"};
    // Everything the child needs is made before fork: after it, only async-signal-safe calls.
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const std::string log_path = log_.string();
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // never outlive the tests (the starting thread)
      const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    httplib::Client client("127.0.0.1", port_);
    client.set_connection_timeout(0, 200000);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("llama-server exited at start:\n" + log_tail());
      }
      if (auto r = client.Get("/health"); r && r->status == 200) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    kill();
    throw std::runtime_error("llama-server did not come up in 30 s:\n" + log_tail());
  }
  ~LlamaServer() {
    kill();
    std::error_code ec;
    std::filesystem::remove(log_, ec);
  }
  LlamaServer(const LlamaServer&) = delete;
  LlamaServer& operator=(const LlamaServer&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

  // SIGKILL, as a crash: connections drop, nothing is answered.
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

  std::string log_tail() const {
    const std::string text = read_text_file(log_);
    return text.size() > 2000 ? text.substr(text.size() - 2000) : text;
  }

 private:
  int port_;
  pid_t pid_ = -1;
  std::filesystem::path log_;
};

}  // namespace ponder::testing
