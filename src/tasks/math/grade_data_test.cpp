// The grader against the MATH answers in ../shared/data: every answer is read and equals itself
// through the parser, MATH-500's answers equal the boxed answers of their solutions, and answers
// of different problems are told apart. Prints the figures it measures.
#include <algorithm>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tasks/math/answer.h"
#include "tasks/math/grade.h"
#include "test_paths.h"

namespace ponder {
namespace {

using nlohmann::json;

std::vector<json> read_jsonl(const std::string& path) {
  std::ifstream in(path);
  std::vector<json> rows;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty()) rows.push_back(json::parse(line));
  }
  return rows;
}

// Equal strings are compared through the parser too, not taken as equal on sight.
GradeOptions parse_both() {
  GradeOptions o;
  o.compare_text_first = false;
  return o;
}

TEST(GradeData, Math500AnswersEqualTheirSolutionsBoxedAnswer) {
  const std::string path = testing::shared_file("data/math500.jsonl");
  PONDER_REQUIRE_FILE(path);
  const std::vector<json> rows = read_jsonl(path);
  ASSERT_EQ(rows.size(), 500u);
  int equivalent = 0;
  for (const json& row : rows) {
    const std::string answer = row["answer"];
    const std::optional<std::string> boxed = extract_answer(row["solution"].get<std::string>());
    ASSERT_TRUE(boxed) << row["unique_id"];
    const Grade g = grade_answer(answer, *boxed, parse_both());
    EXPECT_TRUE(g.equivalent) << row["unique_id"] << ": " << answer << " vs " << *boxed << ": " << g.reason;
    equivalent += g.equivalent;
  }
  std::cout << "[ MATH-500 ] " << equivalent << "/500 answers equivalent to their solution's last \\boxed{}\n";
  EXPECT_EQ(equivalent, 500);
}

TEST(GradeData, FullMathAnswersParseStablyAndAgreeWithMath500) {
  const std::string full_path = testing::shared_file("data/math/test.jsonl");
  const std::string math500_path = testing::shared_file("data/math500.jsonl");
  PONDER_REQUIRE_FILE(full_path);
  PONDER_REQUIRE_FILE(math500_path);
  const std::vector<json> rows = read_jsonl(full_path);
  ASSERT_EQ(rows.size(), 5000u);
  int reflexive = 0;
  std::map<std::string, std::string> answer_of_problem;
  for (const json& row : rows) {
    const std::optional<std::string> boxed = extract_answer(row["solution"].get<std::string>());
    ASSERT_TRUE(boxed) << "idx " << row["idx"];
    answer_of_problem[row["problem"]] = *boxed;
    const Grade g = grade_answer(*boxed, *boxed, parse_both());
    if (g.equivalent) {
      ++reflexive;
    } else {
      std::cout << "  not reflexive: " << *boxed << " (" << g.reason << ")\n";
    }
  }
  int found = 0, agree = 0;
  for (const json& row : read_jsonl(math500_path)) {
    const auto it = answer_of_problem.find(row["problem"]);
    if (it == answer_of_problem.end()) continue;
    ++found;
    const Grade g = grade_answer(row["answer"].get<std::string>(), it->second, parse_both());
    EXPECT_TRUE(g.equivalent) << row["answer"] << " vs " << it->second << ": " << g.reason;
    agree += g.equivalent;
  }
  std::cout << "[ MATH ] " << reflexive << "/5000 boxed answers read and equivalent to themselves; " << agree << "/"
            << found << " MATH-500 answers equivalent to the full set's boxed answer\n";
  // Measured: 5000/5000 and 500/500. A few answers of unusual notation may come and go with
  // changes to the parser; more would mean it reads MATH's notation badly.
  EXPECT_GE(reflexive, 4995);
  EXPECT_EQ(found, 500);
  EXPECT_EQ(agree, found);
}

// Every pair of different MATH-500 answers (by normalize_answer): the grader may call a pair
// equivalent only when it is one value written two ways. Those pairs are listed here, each
// checked by hand, so that any other "equivalent" is a failure.
TEST(GradeData, AnswersOfDifferentProblemsAreNotEquivalent) {
  const std::string path = testing::shared_file("data/math500.jsonl");
  PONDER_REQUIRE_FILE(path);
  const std::set<std::pair<std::string, std::string>> same_value = {
      {"42", "52_8"},       // 5*8 + 2
      {"90^\\circ", "90"},  // a bare angle is its degrees
      {"5", "x=5"},         // the solved side
      {"1,-2", "-2,1"},     // a list of solutions is a set
      {"40_9", "40"},       // the digits, base left out
      {"40_9", "36"},       // 4*9
      {"40_9", "36^\\circ"},
      {"40_9", "\\$36"},
      {"120^\\circ", "120"},
      {"36", "36^\\circ"},
      {"36", "\\$36"},
      {"204_5", "54"},  // 2*25 + 4
      {"\\frac{1}{4}", "\\frac14"},
      {"30^\\circ", "30"},
      {"10,\\!080", "10080"},
      {"15", "15\\mbox{ cm}^2"},  // the unit dropped
      {"36^\\circ", "\\$36"},
  };
  std::vector<std::string> answers;
  std::set<std::string> seen;
  for (const json& row : read_jsonl(path)) {
    const std::string answer = row["answer"];
    if (seen.insert(normalize_answer(answer)).second) answers.push_back(answer);
  }
  size_t pairs = 0;
  std::set<std::pair<std::string, std::string>> judged_equivalent;
  for (size_t i = 0; i < answers.size(); ++i) {
    for (size_t j = i + 1; j < answers.size(); ++j) {
      ++pairs;
      const Grade g = grade_answer(answers[i], answers[j]);
      if (!g.equivalent) continue;
      const auto pair = std::minmax(answers[i], answers[j]);
      judged_equivalent.insert(pair);
      EXPECT_TRUE(same_value.contains(pair) || same_value.contains({pair.second, pair.first}))
          << "different answers judged equivalent: " << answers[i] << " vs " << answers[j] << " (" << g.reason << ")";
    }
  }
  std::cout << "[ MATH-500 ] " << answers.size() << " different answers, " << pairs
            << " pairs: " << judged_equivalent.size() << " judged equivalent, of " << same_value.size()
            << " listed as one value written two ways\n";
  EXPECT_EQ(judged_equivalent.size(), same_value.size()) << "a listed same-value pair was judged not equivalent";
}

}  // namespace
}  // namespace ponder
