// Turning verifier scores into a choice: aggregating a solution's step scores, and picking the
// final answer from a set of solutions.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace ponder {

// How step scores become one score for a (partial) solution.
enum class Aggregation {
  kLast,  // the last step's score (a PRM's estimate that the solution so far is on track)
  kMin,   // the weakest step
  kProd,  // product of all steps
  kMean,
};
const char* to_string(Aggregation aggregation);
std::optional<Aggregation> parse_aggregation(const std::string& name);

// Empty scores aggregate to 0.
double aggregate(const std::vector<double>& scores, Aggregation aggregation);

// What selection sees of a solution: its answer (the voting key; nullopt when none could be
// extracted) and its score.
struct Ballot {
  std::optional<std::string> answer;
  double score = 0.0;
};

struct Selection {
  std::optional<std::string> answer;
  int32_t solution = -1;  // index of the representative solution (-1: nothing to select)
  double value = 0.0;     // best score / vote count / summed score
};

// Ties go to the earliest solution (for votes: to the answer whose first ballot came first), so
// a selection depends only on the solutions' order, never on hashing.
// naive: the single best-scored solution (with or without an answer).
Selection select_naive(const std::vector<Ballot>& ballots);
// majority: the most frequent answer; solutions without an answer do not vote.
Selection select_majority(const std::vector<Ballot>& ballots);
// weighted: the answer with the largest sum of scores; solutions without an answer do not vote.
// The representative is that answer's best-scored solution.
Selection select_weighted(const std::vector<Ballot>& ballots);

}  // namespace ponder
