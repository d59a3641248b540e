// Progress output where it is not a terminal (logs, CI): plain lines, throttled, the last always.
#include "cli/progress.h"

#include <cstdio>
#include <string>

#include <gtest/gtest.h>

namespace ponder::cli {
namespace {

std::string contents(std::FILE* f) {
  std::fflush(f);
  std::rewind(f);
  std::string s;
  for (int c; (c = std::fgetc(f)) != EOF;) s += static_cast<char>(c);
  return s;
}

TEST(Progress, FormatsDurations) {
  EXPECT_EQ(format_duration(0), "0s");
  EXPECT_EQ(format_duration(42.4), "42s");
  EXPECT_EQ(format_duration(185), "3m05s");
  EXPECT_EQ(format_duration(3720), "1h02m");
}

TEST(Progress, PlainLinesAtMostOneAnIntervalAndAlwaysTheLast) {
  std::FILE* f = std::tmpfile();
  ASSERT_NE(f, nullptr);
  ProgressDisplay display("eval", f, /*plain_interval=*/10.0);
  display.update(1, 4, 2.0, "p1");   // first: printed
  display.update(2, 4, 5.0, "p2");   // 3 s later: not
  display.update(3, 4, 12.4, "p3");  // 10.4 s later: printed, with the time left
  display.update(4, 4, 13.0, "p4");  // the last: printed
  display.finish();
  EXPECT_EQ(contents(f),
            "eval: 1/4 (25%) in 2s ETA 6s; last: p1\n"
            "eval: 3/4 (75%) in 12s ETA 4s; last: p3\n"
            "eval: 4/4 (100%) in 13s; last: p4\n");
  std::fclose(f);
}

}  // namespace
}  // namespace ponder::cli
