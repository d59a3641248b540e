// The results database of `ponder eval` (SQLite): every search it ran, every finished solution,
// and the outcome of each strategy at each budget, written one search at a time so that an
// interrupted evaluation loses nothing it finished and resumes where it stopped.
//
// Tables (read by `ponder report`, and by people with sqlite3):
//   runs(id, settings, created)
//       settings: canonical JSON of everything that changes a search's outcome (models, sampling,
//       prompt, search options). The same settings find the same run; other settings start a
//       new run beside it, so results of different configurations never mix.
//   problems(run_id, problem_id, position, level, subject, gold)
//       level: 1-5 for MATH, NULL when the dataset has none.
//   searches(run_id, problem_id, search, budget, seed, prompt_tokens, completion_tokens,
//            verifier_tokens, rounds, seconds, verifier_seconds)
//       one row per search actually run: search is "sample" (the N samples majority voting and
//       best-of-N select from; smaller budgets take their first samples), "beam" or "dvts".
//   completions(run_id, problem_id, search, budget, seed, idx, text, answer, correct, score,
//               step_scores, tokens, finish)
//       every finished solution of a search; idx is the sample's index for "sample" (its
//       sampling order), the finishing order otherwise. step_scores: JSON array.
//   results(run_id, problem_id, strategy, budget, seed, naive_answer, naive_correct,
//           weighted_answer, weighted_correct, majority_answer, majority_correct, chosen,
//           prompt_tokens, completion_tokens, verifier_tokens, seconds)
//       what a strategy at a budget answered, by each selection (answer NULL: none; correct 0/1),
//       chosen = the strategy's own selection ("naive", "weighted" or "majority"), and what it
//       cost. Sub-sampled budgets count the tokens of their samples, and verifier tokens and
//       seconds pro rata.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

struct sqlite3;

namespace ponder {

class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ProblemRecord {
  std::string id;
  int64_t position = 0;
  std::optional<int> level;
  std::string subject;
  std::string gold;
};

struct CompletionRecord {
  std::string text;
  std::optional<std::string> answer;  // as extracted
  bool correct = false;
  double score = 0.0;
  std::vector<double> step_scores;
  int64_t tokens = 0;
  std::string finish;
};

struct SearchRecord {
  std::string problem_id;
  std::string search;  // "sample", "beam", "dvts"
  int64_t budget = 0;
  int64_t seed = 0;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t verifier_tokens = 0;
  int64_t rounds = 0;
  double seconds = 0.0;
  double verifier_seconds = 0.0;
  std::vector<CompletionRecord> completions;
};

struct SelectionRecord {
  std::optional<std::string> answer;
  bool correct = false;
};

struct ResultRecord {
  std::string problem_id;
  std::string strategy;  // majority, best-of-n, weighted-best-of-n, beam, dvts
  int64_t budget = 0;
  int64_t seed = 0;
  SelectionRecord naive, weighted, majority;
  std::string chosen;  // naive, weighted or majority
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t verifier_tokens = 0;
  double seconds = 0.0;
};

class Store {
 public:
  // Opens (creating when missing) the database at `path`. Throws StoreError when it is not a
  // ponder database or cannot be opened.
  explicit Store(const std::string& path);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // The run with these settings (canonical JSON), created when new.
  int64_t run_id(const std::string& settings);

  // Adds problems not yet known to the run (a known problem_id is left as it is).
  void add_problems(int64_t run, const std::vector<ProblemRecord>& problems);

  bool has_result(int64_t run, const std::string& problem_id, const std::string& strategy, int64_t budget,
                  int64_t seed);

  // The largest stored search of this kind for the problem and seed with budget >= min_budget.
  std::optional<SearchRecord> find_search(int64_t run, const std::string& problem_id, const std::string& search,
                                          int64_t seed, int64_t min_budget);

  // Writes a search (with its completions, unless `search` is null) and results, all or nothing.
  void write(int64_t run, const SearchRecord* search, const std::vector<ResultRecord>& results);

  int64_t count_results(int64_t run);

 private:
  sqlite3* db_ = nullptr;
};

}  // namespace ponder
