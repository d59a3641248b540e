// Progress of long work, on standard error: on a terminal a bar with the elapsed time and an
// estimate of the time left, redrawn in place; otherwise (a log file, CI) plain lines, at most
// one every `plain_interval` seconds, and always the last.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace ponder::cli {

class ProgressDisplay {
 public:
  explicit ProgressDisplay(std::string label, std::FILE* out = stderr, double plain_interval = 10.0);
  // `done` of `total` units after `seconds`; `last` names what finished last.
  void update(int64_t done, int64_t total, double seconds, const std::string& last);
  // Ends the bar's line on a terminal.
  void finish();

 private:
  std::string label_;
  std::FILE* out_;
  bool terminal_;
  double plain_interval_;
  double last_plain_ = -1.0;
  bool drawn_ = false;
};

// "1h02m", "3m05s", "42s".
std::string format_duration(double seconds);

}  // namespace ponder::cli
