// Running the built binaries from tests, as a user's shell would.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace ponder::testing {

struct CommandResult {
  int code;  // exit status; -1 when killed by a signal
  std::string out;
  std::string err;
};

// The text as one single-quoted shell word.
inline std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

inline std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs a shell command line; stdout and stderr apart.
inline CommandResult run_command(const std::string& command) {
  static int counter = 0;
  const auto err_path = std::filesystem::temp_directory_path() /
                        ("ponder-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".err");
  const std::string cmd = command + " 2>" + shell_quote(err_path.string());
  CommandResult r{-1, {}, {}};
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf;
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  const int status = pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = read_text_file(err_path);
  std::filesystem::remove(err_path);
  return r;
}

}  // namespace ponder::testing
