// The toy task: multi-step arithmetic word problems small enough that a model trained from
// scratch on a laptop CPU solves them only part of the time, so that test-time search has
// something to gain (issue 7).
//
// A problem is a start value and a chain of operations applied left to right:
//   "Start with 7, add 5, multiply by 3, subtract 4. What is the result?"
// and its solution has one step per operation, then the answer, steps separated by "\n\n":
//   "7 + 5 = 12\n\n12 * 3 = 36\n\n36 - 4 = 32\n\nAnswer: \boxed{32}"
// The generator is trained on problem + "\n" + solution, so that a model without a chat template
// (whose prompt is the problem's raw text) starts its solution on a new line.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace ponder::toy {

enum class Op : char { kAdd = '+', kSub = '-', kMul = '*' };

struct Operation {
  Op op;
  int64_t operand;
};

// Difficulty: more operations and larger operands. Levels 1..kLevels (the `level` field of the
// JSONL dataset, read by `ponder eval` as MATH's levels are).
struct LevelSpec {
  int operations;       // steps before the answer
  int64_t max_operand;  // start value and +/- operands in [1, max_operand]
};
inline constexpr int kLevels = 5;
// Multipliers stay in [2, 9] and every running value in [0, kMaxValue] at all levels: larger
// operands in multiplication would make the hard levels hopeless rather than hard.
inline constexpr int64_t kMaxValue = 999;
// Throws std::invalid_argument for a level outside 1..kLevels.
LevelSpec level_spec(int level);

struct Problem {
  int level = 1;
  int64_t start = 0;
  std::vector<Operation> ops;

  // values()[0] is start, values()[i] the result of the first i operations.
  std::vector<int64_t> values() const;
  int64_t answer() const;
  std::string text() const;      // the problem as the generator and the dataset see it
  std::string solution() const;  // the reference solution (see the top of this file)
};

// Apply one operation (no range check: the generator keeps values in range, the checker only
// compares).
int64_t apply(Op op, int64_t a, int64_t b);

// A deterministic random source: std::mt19937_64 (whose output the standard fixes) with our own
// unbiased range reduction, since std::uniform_int_distribution differs between libraries.
class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  int64_t uniform(int64_t lo, int64_t hi);  // inclusive; lo <= hi

 private:
  std::mt19937_64 gen_;
};

// One random problem of `level`: each operation drawn among those that keep the running value in
// [0, kMaxValue] (subtraction needs operand <= value; a value of 0 is never multiplied).
Problem random_problem(int level, Rng& rng);

// The fixed splits. Test is drawn first, then validation without test's problems, then train
// without either's (compared by text): the model never trains on a problem it is scored on.
// Test and validation problems are distinct within their split; train may repeat a problem (level
// 1 has only ~200 distinct problems). Each split holds per_level problems of every level, level 1
// first. Throws std::invalid_argument for a negative count, and std::runtime_error when a level
// has too few distinct problems left for a split.
enum class Split { kTrain, kValidation, kTest };
inline constexpr uint64_t kTrainSeed = 1001;
inline constexpr uint64_t kValidationSeed = 1002;
inline constexpr uint64_t kTestSeed = 1003;
struct Splits {
  std::vector<Problem> train, validation, test;
};
Splits make_splits(int train_per_level, int validation_per_level, int test_per_level);

// The test split as `ponder eval` reads it: one JSON object per line with problem, answer (the
// number as a string), level, unique_id ("toy-<split>-<index>", from 0) and solution (the
// reference). Throws std::runtime_error when the file cannot be written.
void write_jsonl(const std::string& path, const std::vector<Problem>& problems, std::string_view split_name);

// --- checking a solution ---------------------------------------------------------------------

// Exact labels for each step of a solution to `problem`, as a PRM is trained to predict them.
// The solution's text is split on "\n\n" and each piece stripped of surrounding whitespace
// (pieces that are only whitespace are dropped, as a PRM never sees them).
//
// Step i < ops.size() is right (`step_ok`) when it reads exactly "a op b = c" with a the true
// value after i operations, op and b the problem's operation i and c = a op b. The step after the
// last operation is right when it reads "Answer: \boxed{N}" with N the true answer. Any other
// step, and any step past that one, is wrong. `labels[i]` is true when steps 0..i are all right:
// a step is good when the solution is still on track after it (Math-Shepherd's hard label), so
// that a PRM's last-step score says whether the whole prefix is correct.
struct SolutionCheck {
  std::vector<std::string> steps;  // stripped
  std::vector<bool> step_ok;
  std::vector<bool> labels;
  std::optional<int64_t> answer;  // N of the last step when it reads "Answer: \boxed{N}"
  bool correct = false;           // every step right and the answer step last
};
SolutionCheck check_solution(const Problem& problem, std::string_view solution);

}  // namespace ponder::toy
