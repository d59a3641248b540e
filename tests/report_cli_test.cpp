// ponder report as a user runs it, on the database of tests/report_fixture.h: the Markdown on
// stdout, --out with report.md and plots, --run, and a one-line error with a non-zero exit for a
// missing database, a file that is not one, one without results, an unknown run and a missing
// gnuplot.
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "eval/store.h"
#include "report_fixture.h"
#include "run_command.h"
#include "test_paths.h"

namespace {

namespace fs = std::filesystem;
using ponder::testing::build_file;
using ponder::testing::CommandResult;
using ponder::testing::read_text_file;
using ponder::testing::run_command;
using ponder::testing::shell_quote;
using ponder::testing::write_known_results;

class ReportCli : public ::testing::Test {
 protected:
  void SetUp() override {
    PONDER_REQUIRE_FILE(build_file("ponder"));
    dir_ = fs::temp_directory_path() /
           ("ponder-report-cli-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    db_ = (dir_ / "results.sqlite").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  // `ponder report ARGS`, with `env` (VAR=value ...) before it.
  CommandResult report(const std::string& args, const std::string& env = "") const {
    return run_command(env + " " + shell_quote(build_file("ponder")) + " report " + args);
  }

  // A failure: non-zero exit, nothing on stdout, one error line that says `why`.
  void expect_error(const CommandResult& r, const std::string& why) const {
    EXPECT_NE(r.code, 0);
    EXPECT_EQ(r.out, "");
    EXPECT_TRUE(r.err.starts_with("ponder: error: ")) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(why), std::string::npos) << r.err;
  }

  fs::path dir_;
  std::string db_;
};

TEST_F(ReportCli, PrintsTheMarkdown) {
  write_known_results(db_);
  const CommandResult r = report("--db " + shell_quote(db_));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_TRUE(r.out.starts_with("# ponder report: results.sqlite\n")) << r.out;
  EXPECT_NE(r.out.find("| majority | **majority** (own) | 37.5 | 62.5 | 85.7 (7/8) |\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| 3 | 2 | majority | 0.0 | 25.0 | 66.7 (3/4) |\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| beam | 2 | 8 | 205.0 | 100.0 | 2.25 |\n"), std::string::npos) << r.out;
}

TEST_F(ReportCli, OutWritesReportAndPlots) {
  if (std::system("command -v gnuplot >/dev/null 2>&1") != 0) {
    if (std::getenv("CI")) FAIL() << "gnuplot is missing";
    GTEST_SKIP() << "gnuplot is missing";
  }
  write_known_results(db_);
  const fs::path out = dir_ / "report" / "new";
  const CommandResult r = report("--db " + shell_quote(db_) + " --out " + shell_quote(out.string()));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(read_text_file(out / "report.md"), r.out);
  EXPECT_NE(r.out.find("![accuracy against budget](accuracy.png)"), std::string::npos);
  for (const char* name : {"accuracy", "accuracy_selections", "accuracy_by_level"}) {
    EXPECT_EQ(read_text_file(out / (std::string(name) + ".png")).substr(0, 8), "\x89PNG\r\n\x1a\n") << name;
    EXPECT_NE(read_text_file(out / (std::string(name) + ".svg")).find("<svg"), std::string::npos) << name;
  }
}

TEST_F(ReportCli, RunPicksOneOfSeveral) {
  write_known_results(db_);
  write_known_results(db_, R"({"model":"other.gguf"})");
  const CommandResult both = report("--db " + shell_quote(db_));
  ASSERT_EQ(both.code, 0) << both.err;
  EXPECT_NE(both.out.find("## Run 1\n"), std::string::npos);
  EXPECT_NE(both.out.find("## Run 2\n"), std::string::npos);
  const CommandResult second = report("--db " + shell_quote(db_) + " --run 2");
  ASSERT_EQ(second.code, 0) << second.err;
  EXPECT_EQ(second.out.find("## Run 1\n"), std::string::npos);
  EXPECT_NE(second.out.find("- model: `other.gguf`\n"), std::string::npos) << second.out;
}

TEST_F(ReportCli, ErrorsAreOneLine) {
  expect_error(report("--db " + shell_quote(db_)), "no such file");
  EXPECT_FALSE(fs::exists(db_)) << "a missing database must not be created";

  std::ofstream(dir_ / "notes.txt") << "not a database, just text that is long enough to be a header of one\n";
  expect_error(report("--db " + shell_quote((dir_ / "notes.txt").string())), "is not a ponder results database");

  {
    ponder::Store store(db_);
    store.run_id("{}");
  }
  expect_error(report("--db " + shell_quote(db_)), "has no results yet");

  write_known_results(db_, R"({"model":"m.gguf"})");
  expect_error(report("--db " + shell_quote(db_) + " --run 9"), "no run 9");
  expect_error(report("--db " + shell_quote(db_) + " --run 1"), "run 1 in");

  expect_error(report("--db " + shell_quote(dir_.string())), "is a directory");

  const CommandResult usage = report("");
  EXPECT_EQ(usage.code, 2);
  EXPECT_NE(usage.err.find("--db"), std::string::npos) << usage.err;
}

TEST_F(ReportCli, MissingGnuplotIsNamedAndTheMarkdownStillWritten) {
  write_known_results(db_);
  const fs::path out = dir_ / "out";
  const std::string no_gnuplot = "PATH=" + shell_quote((dir_ / "empty").string());
  const CommandResult r = report("--db " + shell_quote(db_) + " --out " + shell_quote(out.string()), no_gnuplot);
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("gnuplot not found"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(read_text_file(out / "report.md"), r.out);
  EXPECT_NE(r.out.find("| majority | **majority** (own) |"), std::string::npos);
}

TEST_F(ReportCli, FailingGnuplotIsNamedWithItsMessage) {
  write_known_results(db_);
  const fs::path bin = dir_ / "bin";
  fs::create_directories(bin);
  std::ofstream(bin / "gnuplot") << "#!/bin/sh\necho '\"plots.gp\" line 3: no such terminal' >&2\nexit 1\n";
  fs::permissions(bin / "gnuplot", fs::perms::owner_all);
  const CommandResult r = report("--db " + shell_quote(db_) + " --out " + shell_quote((dir_ / "out").string()),
                                 "PATH=" + shell_quote(bin.string()));
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("gnuplot failed (exit 1)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("line 3: no such terminal"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

}  // namespace
