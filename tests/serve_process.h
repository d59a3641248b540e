// `ponder serve` as a child process for tests: started on a free port (--port 0), its URL read
// from the line it prints, stopped with SIGTERM.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "run_command.h"

extern char** environ;

namespace ponder::testing {

class ServeProcess {
 public:
  // Runs `ponder serve ARGS --port 0`; throws std::runtime_error when it does not print its URL
  // within `start_timeout` (the reason is in its standard error).
  ServeProcess(const std::string& ponder, const std::vector<std::string>& args,
               std::chrono::seconds start_timeout = std::chrono::seconds(60)) {
    static int counter = 0;
    err_path_ = std::filesystem::temp_directory_path() /
                ("ponder-serve-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".err");
    std::vector<std::string> argv_s = {ponder, "serve"};
    argv_s.insert(argv_s.end(), args.begin(), args.end());
    argv_s.insert(argv_s.end(), {"--port", "0"});
    std::vector<char*> argv;
    for (std::string& a : argv_s) argv.push_back(a.data());
    argv.push_back(nullptr);

    int out[2];
    if (pipe(out) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_addclose(&actions, out[0]);
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int rc = posix_spawn(&pid_, ponder.c_str(), &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    close(out[1]);
    if (rc != 0) {
      close(out[0]);
      throw std::runtime_error("cannot run " + ponder);
    }
    out_fd_ = out[0];

    // The first line that names a URL: "ponder serve: listening on http://HOST:PORT (...)".
    const auto deadline = std::chrono::steady_clock::now() + start_timeout;
    std::string text;
    static const std::regex url(R"(listening on (http://[^ :]+):(\d+))");
    std::smatch m;
    while (!std::regex_search(text, m, url)) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      pollfd p{out_fd_, POLLIN, 0};
      char buf[512];
      ssize_t n = 0;
      if (left.count() <= 0 || poll(&p, 1, static_cast<int>(left.count())) <= 0 ||
          (n = read(out_fd_, buf, sizeof buf)) <= 0) {
        stop();
        throw std::runtime_error("ponder serve did not start: " + stderr_text());
      }
      text.append(buf, static_cast<size_t>(n));
    }
    host_ = m[1].str().substr(7);
    port_ = std::stoi(m[2].str());
    url_ = m[1].str() + ":" + m[2].str();
  }

  ~ServeProcess() {
    stop();
    std::filesystem::remove(err_path_);
  }
  ServeProcess(const ServeProcess&) = delete;
  ServeProcess& operator=(const ServeProcess&) = delete;

  const std::string& url() const { return url_; }  // http://HOST:PORT
  const std::string& host() const { return host_; }
  int port() const { return port_; }

  // Whether the process is still running.
  bool alive() {
    if (pid_ <= 0) return false;
    int status = 0;
    const pid_t r = waitpid(pid_, &status, WNOHANG);
    if (r == 0) return true;
    finish(status);
    return false;
  }

  // Sends SIGTERM and waits (SIGKILL after `timeout`): the exit status, -1 when a signal ended
  // it (the kill included).
  int stop(std::chrono::seconds timeout = std::chrono::seconds(30)) {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      const auto deadline = std::chrono::steady_clock::now() + timeout;
      int status = 0;
      while (waitpid(pid_, &status, WNOHANG) == 0) {
        if (std::chrono::steady_clock::now() > deadline) {
          kill(pid_, SIGKILL);
          waitpid(pid_, &status, 0);
          break;
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      finish(status);
    }
    return exit_code_;
  }

  std::string stderr_text() const { return read_text_file(err_path_); }

 private:
  void finish(int status) {
    exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    pid_ = -1;
    if (out_fd_ >= 0) close(out_fd_);
    out_fd_ = -1;
  }

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int exit_code_ = -1;
  std::filesystem::path err_path_;
  std::string url_, host_;
  int port_ = 0;
};

}  // namespace ponder::testing
