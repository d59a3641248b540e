#include "cli/progress.h"

#include <unistd.h>

#include <cmath>

#include <fmt/core.h>

namespace ponder::cli {

std::string format_duration(double seconds) {
  const int64_t s = static_cast<int64_t>(std::llround(std::max(0.0, seconds)));
  if (s >= 3600) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  if (s >= 60) return fmt::format("{}m{:02}s", s / 60, s % 60);
  return fmt::format("{}s", s);
}

ProgressDisplay::ProgressDisplay(std::string label, std::FILE* out, double plain_interval)
    : label_(std::move(label)), out_(out), terminal_(isatty(fileno(out)) != 0), plain_interval_(plain_interval) {}

void ProgressDisplay::update(int64_t done, int64_t total, double seconds, const std::string& last) {
  const double fraction = total > 0 ? static_cast<double>(done) / static_cast<double>(total) : 1.0;
  // The time left, from the mean time per unit so far.
  const std::string eta = done > 0 && done < total
                              ? " ETA " + format_duration(seconds / static_cast<double>(done) *
                                                          static_cast<double>(total - done))
                              : "";
  if (terminal_) {
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(fraction * kWidth);
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(kWidth, '.');
    std::string tail = last.size() > 40 ? last.substr(0, 37) + "..." : last;
    fmt::print(out_, "\r\033[K{} [{}] {}/{} {:3.0f}% {}{}  {}", label_, bar, done, total, 100 * fraction,
               format_duration(seconds), eta, tail);
    drawn_ = true;
  } else if (done == total || last_plain_ < 0 || seconds - last_plain_ >= plain_interval_) {
    fmt::print(out_, "{}: {}/{} ({:.0f}%) in {}{}; last: {}\n", label_, done, total, 100 * fraction,
               format_duration(seconds), eta, last);
    last_plain_ = seconds;
  }
  std::fflush(out_);
}

void ProgressDisplay::finish() {
  if (terminal_ && drawn_) {
    fmt::print(out_, "\n");
    std::fflush(out_);
  }
  drawn_ = false;
}

}  // namespace ponder::cli
