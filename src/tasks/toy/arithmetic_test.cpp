#include "tasks/toy/arithmetic.h"

#include <filesystem>
#include <fstream>
#include <set>
#include <stdexcept>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "eval/dataset.h"

namespace ponder::toy {
namespace {

Problem example() {
  Problem p;
  p.level = 3;
  p.start = 7;
  p.ops = {{Op::kAdd, 5}, {Op::kMul, 3}, {Op::kSub, 4}};
  return p;
}

TEST(ToyArithmetic, TextAndSolution) {
  const Problem p = example();
  EXPECT_EQ(p.text(), "Start with 7, add 5, multiply by 3, subtract 4. What is the result?");
  EXPECT_EQ(p.solution(), "7 + 5 = 12\n\n12 * 3 = 36\n\n36 - 4 = 32\n\nAnswer: \\boxed{32}");
  EXPECT_EQ(p.answer(), 32);
  EXPECT_EQ(p.values(), (std::vector<int64_t>{7, 12, 36, 32}));
}

TEST(ToyArithmetic, LevelsGrowHarder) {
  EXPECT_THROW(level_spec(0), std::invalid_argument);
  EXPECT_THROW(level_spec(kLevels + 1), std::invalid_argument);
  for (int level = 2; level <= kLevels; ++level) {
    EXPECT_GT(level_spec(level).operations, level_spec(level - 1).operations);
    EXPECT_GE(level_spec(level).max_operand, level_spec(level - 1).max_operand);
  }
}

TEST(ToyArithmetic, RandomProblemsStayInRange) {
  Rng rng(42);
  std::set<char> ops_seen;
  for (int level = 1; level <= kLevels; ++level) {
    const LevelSpec spec = level_spec(level);
    for (int i = 0; i < 2000; ++i) {
      const Problem p = random_problem(level, rng);
      ASSERT_EQ(p.level, level);
      ASSERT_EQ(static_cast<int>(p.ops.size()), spec.operations);
      ASSERT_GE(p.start, 1);
      ASSERT_LE(p.start, spec.max_operand);
      for (const auto& o : p.ops) {
        ops_seen.insert(static_cast<char>(o.op));
        if (o.op == Op::kMul) {
          ASSERT_GE(o.operand, 2);
          ASSERT_LE(o.operand, 9);
        } else {
          ASSERT_GE(o.operand, 1);
          ASSERT_LE(o.operand, spec.max_operand);
        }
      }
      for (int64_t v : p.values()) {
        ASSERT_GE(v, 0);
        ASSERT_LE(v, kMaxValue);
      }
      // The reference solution passes its own checker.
      ASSERT_TRUE(check_solution(p, p.solution()).correct) << p.text();
    }
  }
  EXPECT_EQ(ops_seen, (std::set<char>{'+', '-', '*'}));
}

TEST(ToyArithmetic, RngIsFixedBySeed) {
  Rng a(7), b(7), c(8);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const int64_t x = a.uniform(0, 1000);
    ASSERT_EQ(x, b.uniform(0, 1000));
    ASSERT_GE(x, 0);
    ASSERT_LE(x, 1000);
    differs = differs || x != c.uniform(0, 1000);
  }
  EXPECT_TRUE(differs);
}

TEST(ToyArithmetic, SplitsDoNotChange) {
  // The committed test set and models were made from these: a change to the generator that moves
  // them must be deliberate (and come with new models).
  const Splits s = make_splits(0, 0, 2);
  EXPECT_EQ(s.test[0].text(), "Start with 9, add 2. What is the result?");
  EXPECT_EQ(s.test[1].text(), "Start with 7, multiply by 8. What is the result?");
  EXPECT_EQ(s.test[2].text(), "Start with 2, add 8, multiply by 4. What is the result?");
}

TEST(ToyArithmetic, SplitsAreFixedDisjointAndBalanced) {
  const Splits s = make_splits(30, 10, 10);
  ASSERT_EQ(s.train.size(), 30u * kLevels);
  ASSERT_EQ(s.validation.size(), 10u * kLevels);
  ASSERT_EQ(s.test.size(), 10u * kLevels);
  std::set<std::string> test, validation;
  for (const auto& p : s.test) EXPECT_TRUE(test.insert(p.text()).second) << "repeated test problem";
  for (const auto& p : s.validation) {
    EXPECT_TRUE(validation.insert(p.text()).second) << "repeated validation problem";
    EXPECT_FALSE(test.contains(p.text()));
  }
  for (const auto& p : s.train) {
    EXPECT_FALSE(test.contains(p.text()));
    EXPECT_FALSE(validation.contains(p.text()));
  }
  for (size_t i = 0; i < s.test.size(); ++i) EXPECT_EQ(s.test[i].level, static_cast<int>(i / 10) + 1);

  // Same seeds, same problems; a split's size does not change the other levels' problems.
  const Splits again = make_splits(5, 3, 10);
  for (size_t i = 0; i < s.test.size(); ++i) EXPECT_EQ(again.test[i].text(), s.test[i].text());
  const Splits fewer = make_splits(0, 0, 4);
  EXPECT_EQ(fewer.test[4].text(), s.test[10].text());  // the first level-2 problem
  EXPECT_TRUE(fewer.train.empty());
  EXPECT_THROW(make_splits(-1, 0, 0), std::invalid_argument);
}

TEST(ToyArithmetic, UsedUpLevelIsAnError) {
  // Level 1 has about 200 distinct problems.
  EXPECT_THROW(make_splits(0, 0, 1000), std::runtime_error);
}

TEST(ToyArithmetic, JsonlIsAnEvalDataset) {
  const auto dir = std::filesystem::temp_directory_path() / ("ponder_toy_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "test.jsonl").string();
  const Splits s = make_splits(0, 0, 2);
  write_jsonl(path, s.test, "test");
  const auto problems = load_dataset(path);
  ASSERT_EQ(problems.size(), s.test.size());
  for (size_t i = 0; i < problems.size(); ++i) {
    EXPECT_EQ(problems[i].problem, s.test[i].text());
    EXPECT_EQ(problems[i].answer, std::to_string(s.test[i].answer()));
    EXPECT_EQ(problems[i].level, s.test[i].level);
    EXPECT_EQ(problems[i].id, "toy-test-" + std::to_string(i));
  }
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  EXPECT_EQ(nlohmann::json::parse(line)["solution"], s.test[0].solution());
  EXPECT_THROW(write_jsonl((dir / "no/such/dir/x.jsonl").string(), s.test, "test"), std::runtime_error);
  std::filesystem::remove_all(dir);
}

TEST(ToyArithmetic, CheckerLabelsEachStep) {
  const Problem p = example();
  // As the generator writes it: a newline first, the delimiter after each step.
  SolutionCheck c = check_solution(p, "\n" + p.solution());
  EXPECT_TRUE(c.correct);
  EXPECT_EQ(c.steps.size(), 4u);
  EXPECT_EQ(c.steps[0], "7 + 5 = 12");
  EXPECT_EQ(c.labels, (std::vector<bool>{true, true, true, true}));
  EXPECT_EQ(c.answer, 32);

  // A wrong sum: that step and every later one are bad, though the later ones are right on
  // their own terms; the steps after it are checked against the true values.
  c = check_solution(p, "7 + 5 = 13\n\n12 * 3 = 36\n\n36 - 4 = 32\n\nAnswer: \\boxed{32}");
  EXPECT_FALSE(c.correct);
  EXPECT_EQ(c.step_ok, (std::vector<bool>{false, true, true, true}));
  EXPECT_EQ(c.labels, (std::vector<bool>{false, false, false, false}));

  // Carrying a wrong value on is wrong too (13 is not the value after one operation).
  c = check_solution(p, "7 + 5 = 12\n\n13 * 3 = 39\n\n39 - 4 = 35\n\nAnswer: \\boxed{35}");
  EXPECT_EQ(c.step_ok, (std::vector<bool>{true, false, false, false}));
  EXPECT_EQ(c.labels, (std::vector<bool>{true, false, false, false}));
  EXPECT_EQ(c.answer, 35);

  // The wrong operation or operand, a missing step, an early answer, extra steps.
  EXPECT_EQ(check_solution(p, "7 * 5 = 35").step_ok, std::vector<bool>{false});
  EXPECT_EQ(check_solution(p, "7 + 6 = 13").step_ok, std::vector<bool>{false});
  c = check_solution(p, "7 + 5 = 12\n\n12 * 3 = 36\n\nAnswer: \\boxed{36}");
  EXPECT_EQ(c.labels, (std::vector<bool>{true, true, false}));
  EXPECT_FALSE(c.correct);
  c = check_solution(p, p.solution() + "\n\nAnswer: \\boxed{32}");
  EXPECT_EQ(c.labels, (std::vector<bool>{true, true, true, true, false}));
  EXPECT_FALSE(c.correct);

  // A prefix: every step right, not finished.
  c = check_solution(p, "7 + 5 = 12\n\n12 * 3 = 36\n\n");
  EXPECT_EQ(c.labels, (std::vector<bool>{true, true}));
  EXPECT_FALSE(c.correct);
  EXPECT_FALSE(c.answer.has_value());

  // Format: spacing, signs, trailing text, other answer forms.
  for (const char* bad : {"7+5=12", "7 + 5 = 12.", "7 + 5 = +12", "7 + 5 = -12", "7 + 5 =12", "7 + 5 = ", "",
                          "x + 5 = 12", "7 / 5 = 12", "7 + 5 = 99999999999999999999999"}) {
    const auto r = check_solution(p, std::string(bad) + "\n\n12 * 3 = 36");
    EXPECT_FALSE(r.correct) << bad;
    if (*bad) EXPECT_FALSE(r.step_ok[0]) << bad;
  }
  Problem one;
  one.start = 3;
  one.ops = {{Op::kAdd, 4}};
  EXPECT_TRUE(check_solution(one, "3 + 4 = 7\n\nAnswer: \\boxed{7}").correct);
  EXPECT_FALSE(check_solution(one, "3 + 4 = 7\n\nAnswer: 7").correct);
  EXPECT_FALSE(check_solution(one, "3 + 4 = 7\n\nAnswer: \\boxed{8}").correct);
  EXPECT_FALSE(check_solution(one, "3 + 4 = 7\n\nAnswer: \\boxed{}").correct);
  EXPECT_FALSE(check_solution(one, "").correct);
}

}  // namespace
}  // namespace ponder::toy
