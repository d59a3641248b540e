// ponder grade as a user runs it: the verdict and reason for one pair, JSONL in and out, and a
// one-line error naming the line for bad input.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "run_command.h"
#include "test_paths.h"

namespace {

using ponder::testing::build_file;
using ponder::testing::CommandResult;
using ponder::testing::read_text_file;
using ponder::testing::run_command;
using ponder::testing::shell_quote;

std::string grade_command() { return shell_quote(build_file("ponder")) + " grade"; }

CommandResult grade_pair(const std::string& gold, const std::string& pred, const std::string& flags = "") {
  return run_command(grade_command() + " --gold " + shell_quote(gold) + " --pred " + shell_quote(pred) + flags);
}

class GradeCliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    PONDER_REQUIRE_FILE(build_file("ponder"));
    dir_ = std::filesystem::temp_directory_path() / ("ponder-grade-cli-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const std::string path = (dir_ / name).string();
    std::ofstream(path) << text;
    return path;
  }

  std::filesystem::path dir_;
};

TEST_F(GradeCliTest, OnePairPrintsTheVerdictAndTheReason) {
  CommandResult r = grade_pair("\\frac{1}{2}", "0.5");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(r.out.starts_with("equivalent\nreason: ")) << r.out;
  EXPECT_TRUE(r.out.ends_with("\n"));
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2);

  r = grade_pair("(1,2)", "(2,1)");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(r.out.starts_with("not equivalent\nreason: item 1: ")) << r.out;

  r = grade_pair("10^{10^{10^{10}}}", "1");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("not equivalent\nreason: cannot read gold: number too large"), std::string::npos) << r.out;
}

TEST_F(GradeCliTest, ExtractFindsTheAnswerInASolution) {
  const std::string solution = "The final answer is 3. Checking again, \\boxed{4}.";
  CommandResult r = grade_pair("4", solution, " --extract");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(r.out.starts_with("equivalent\nanswer: 4\nreason: ")) << r.out;

  r = grade_pair("4", solution, " --extract --answer-rules final-answer,boxed");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(r.out.starts_with("not equivalent\nanswer: 3\n")) << r.out;

  r = grade_pair("4", "no numbers here", " --extract");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "not equivalent\nanswer: none\nreason: no answer found in the prediction\n");

  r = grade_pair("4", solution, " --extract --answer-rules boxed,latest");
  EXPECT_NE(r.code, 0);
  EXPECT_EQ(r.out, "");
  EXPECT_NE(r.err.find("unknown answer rule 'latest'"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST_F(GradeCliTest, JsonlLinesComeBackWithTheVerdict) {
  const std::string in = write("in.jsonl",
                               "{\"id\": 7, \"gold\": \"\\\\frac{1}{2}\", \"pred\": \"0.5\"}\n"
                               "\n"
                               "{\"id\": 8, \"gold\": 42, \"pred\": \"41\"}\n"
                               "{\"id\": 9, \"gold\": \"x=5\", \"pred\": null}\n");
  const CommandResult r = run_command(grade_command() + " --jsonl " + shell_quote(in));
  ASSERT_EQ(r.code, 0) << r.err;
  std::istringstream lines(r.out);
  std::string line;
  std::vector<nlohmann::ordered_json> out;
  while (std::getline(lines, line)) out.push_back(nlohmann::ordered_json::parse(line));
  ASSERT_EQ(out.size(), 3u) << "the blank line is skipped";
  EXPECT_EQ(out[0].dump(), "{\"id\":7,\"gold\":\"\\\\frac{1}{2}\",\"pred\":\"0.5\",\"equivalent\":true,\"reason\":" +
                               nlohmann::json(out[0]["reason"]).dump() + "}")
      << "fields kept in order, two added";
  EXPECT_EQ(out[1]["equivalent"], false) << "a number as gold";
  EXPECT_EQ(out[2]["equivalent"], false);
  EXPECT_EQ(out[2]["reason"], "no prediction");
}

TEST_F(GradeCliTest, JsonlFromStandardInputToAFile) {
  const std::string out = (dir_ / "out.jsonl").string();
  const CommandResult r = run_command("printf '%s\\n' '{\"gold\":\"\\\\{1,2\\\\}\",\"pred\":\"\\\\{2,1\\\\}\"}' | " +
                                      grade_command() + " --jsonl - --out " + shell_quote(out));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  const nlohmann::json line = nlohmann::json::parse(read_text_file(out));
  EXPECT_EQ(line["equivalent"], true) << line.dump();
}

TEST_F(GradeCliTest, BadLinesAreOneLineErrorsWithTheLineNumber) {
  struct Case {
    std::string text;
    std::string error;
  };
  const Case cases[] = {
      {"{\"gold\":\"1\",\"pred\":\"1\"}\n{\"gold\": 1,\n", ":2: not JSON"},
      {"{\"gold\":\"1\",\"pred\":\"1\"}\n\n{\"gold\":\"1\"}\n", ":3: no \"pred\" field"},
      {"[1, 2]\n", ":1: not a JSON object"},
      {"{\"gold\":[1],\"pred\":\"1\"}\n", ":1: \"gold\" is not a string or a number"},
      {"{\"gold\":null,\"pred\":\"1\"}\n", ":1: \"gold\" is not a string or a number"},
  };
  for (const Case& c : cases) {
    const std::string in = write("bad.jsonl", c.text);
    const CommandResult r = run_command(grade_command() + " --jsonl " + shell_quote(in));
    EXPECT_EQ(r.code, 1) << c.text;
    EXPECT_EQ(r.out, "") << "nothing written for a bad file";
    EXPECT_EQ(r.err, "ponder: error: " + in + c.error + "\n");
  }
  const CommandResult missing =
      run_command(grade_command() + " --jsonl " + shell_quote((dir_ / "none.jsonl").string()));
  EXPECT_EQ(missing.code, 1);
  EXPECT_NE(missing.err.find("cannot read"), std::string::npos) << missing.err;
}

TEST_F(GradeCliTest, ArgumentsMustMakeOneJob) {
  for (const std::string args : {"", " --gold 1", " --gold 1 --pred 1 --jsonl -", " --gold 1 --pred 1 --out x.jsonl",
                                 " --gold 1 --pred 1 --answer-rules boxed", " --gold 1 --pred 1 --tolerance 2"}) {
    const CommandResult r = run_command(grade_command() + args);
    EXPECT_NE(r.code, 0) << args;
    EXPECT_TRUE(r.err.starts_with("ponder: error: ")) << args << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  const CommandResult help = run_command(grade_command() + " --help");
  EXPECT_EQ(help.code, 0);
  EXPECT_NE(help.out.find("'not equivalent'"), std::string::npos) << help.out;
}

}  // namespace
