// Evaluation datasets: JSONL files of problems with gold answers.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace ponder {

struct DatasetProblem {
  std::string id;       // unique_id, else idx, else "line N"
  std::string problem;
  std::string answer;   // the gold final answer
  std::optional<int> level;  // MATH difficulty 1-5
  std::string subject;
};

// Reads a JSONL dataset, one problem per line (blank lines skipped). Recognised layouts:
//   MATH-500      problem, answer, solution, subject, level (1-5), unique_id
//   full MATH     problem, solution, level ("Level N"), type, idx: the answer is the last
//                 \boxed{} of solution
//   GSM8K         question, answer: the final answer follows "####" (thousands separators kept;
//                 grading reads "1,000" as 1000)
// and any file with `problem` (or `question`) and `answer` fields. Throws std::runtime_error
// naming the file and line for unreadable files, lines that are not JSON objects, a problem
// without an answer, and duplicate ids.
std::vector<DatasetProblem> load_dataset(const std::string& path);

}  // namespace ponder
