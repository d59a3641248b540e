// Reports on a results database of `ponder eval` (eval/store.h): accuracy against budget for
// each strategy and answer selection, overall and per MATH level, and what each budget cost, as
// Markdown and as gnuplot plots.
//
// Averages: a cell (one strategy at one budget, over all problems or one level's) is the mean
// over the (problem, seed) pairs that have a result in it, each pair counting once; a problem
// therefore weighs as much as its seeds that finished. The cell keeps that pair count, and a
// cell with fewer pairs than the run's problems x seeds shows it, so a partial run is visible.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace ponder {

class ReportError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The answer selections every result records, in the order of ReportCell::correct.
inline constexpr std::array<const char*, 3> kReportSelections = {"naive", "weighted", "majority"};

// Sums over the (problem, seed) pairs of one strategy at one budget.
struct ReportCell {
  int64_t pairs = 0;
  std::array<int64_t, 3> correct{};  // pairs answered correctly, by kReportSelections
  int64_t completion_tokens = 0;
  int64_t verifier_tokens = 0;
  double seconds = 0.0;

  double accuracy_percent(size_t selection) const;
  double mean_completion_tokens() const;
  double mean_verifier_tokens() const;
  double mean_seconds() const;
  ReportCell& operator+=(const ReportCell& other);
};

// Problems of one MATH level (nullopt: problems without a level).
struct LevelGroup {
  std::optional<int> level;
  int64_t problems = 0;
};

using CellsByBudget = std::map<int64_t, ReportCell>;

struct StrategyReport {
  std::string name;          // majority, best-of-n, weighted-best-of-n, beam, dvts
  size_t chosen = 0;         // its own selection, an index into kReportSelections
  CellsByBudget overall;     // a budget it did not run has no cell
  std::vector<CellsByBudget> by_level;  // parallel to RunReport::levels
};

// (right, wrong) pairs of solutions to one problem under one seed, and in how many the verifier
// scored the right one higher (ties count one half).
struct RankingCell {
  int64_t searches = 0;  // sampled searches with both a right and a wrong solution
  int64_t pairs = 0;
  double wins = 0.0;
  // wins / pairs: the within-problem AUC (0.5 for a coin toss; NaN without pairs).
  double auc() const;
};

// How well the run's verifier ranks the solutions to one problem, which is what best-of-N and
// weighted best-of-N pick from: over the sampled searches of the largest budget (the N samples
// the sampled strategies share), pairs pooled over problems and seeds. Unlike an AUC over all
// solutions, it gives no credit for telling easy problems from hard ones.
struct VerifierRanking {
  int64_t budget = 0;
  RankingCell overall;
  std::vector<RankingCell> by_level;  // parallel to RunReport::levels
};

struct RunReport {
  std::string database;  // the file's name, for titles
  int64_t id = 0;
  std::string created;
  // The run's settings JSON flattened to (dotted key, value) in key order; long values cut.
  std::vector<std::pair<std::string, std::string>> settings;
  int64_t problems = 0;
  std::vector<int64_t> seeds;       // every seed with a result
  std::vector<int64_t> budgets;     // every budget any strategy ran, ascending
  std::vector<LevelGroup> levels;   // levels ascending, then problems without one (if any)
  std::vector<StrategyReport> strategies;  // majority, best-of-n, ... order; others after
  // When the run had a verifier (its settings name a PRM, judge or confidence) and sampled.
  std::optional<VerifierRanking> ranking;

  // The pairs a finished cell holds: problems (of the level group, or all) times seeds.
  int64_t complete_pairs() const;
  int64_t complete_pairs(size_t level_group) const;
  // True when some problem has a MATH level (a per-level breakdown says something).
  bool has_levels() const;
};

// Reads the database read-only (a missing file is an error, never created) and reports every
// run with results, or only `run`. Throws ReportError, one line, when the file is missing or
// not a ponder results database, when it holds no results yet, or when `run` is unknown or
// has none.
std::vector<RunReport> read_report(const std::filesystem::path& database, std::optional<int64_t> run = {});

// One Markdown document for the runs: per run a settings summary, accuracy by budget (strategy x
// selection, the strategy's own selection marked), accuracy by level (each strategy's own
// selection; only when the problems have levels), cost per problem and, with a verifier, its
// ranking within a problem (overall and by level). With `link_plots` it
// links the plots that write_report draws.
std::string report_markdown(const std::vector<RunReport>& runs, bool link_plots);

// Writes into `dir` (which must exist) the gnuplot script plots.gp with the data inline, and runs
// gnuplot on it: accuracy.{png,svg} (each strategy's own selection against budget, log2 axis),
// accuracy_selections.{png,svg} (a panel per strategy with all three selections) and, when the
// problems have levels, accuracy_by_level.{png,svg} (a panel per level). Throws ReportError
// naming gnuplot when it is missing or fails.
void write_plots(const RunReport& run, const std::filesystem::path& dir);

// Creates `dir` when missing and writes dir/report.md (report_markdown with links), then the
// plots: beside it for one run, in dir/run-ID/ for each of several. report.md is written even
// when the plots fail (the ReportError then says so).
void write_report(const std::vector<RunReport>& runs, const std::filesystem::path& dir);

}  // namespace ponder
