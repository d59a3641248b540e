// ponder report's engine on a database with known results (tests/report_fixture.h): the
// accuracies, pair counts and cost means against hand-computed values, the Markdown that shows
// them, the plots, and the errors.
#include "eval/report.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <gtest/gtest.h>

#include "eval/store.h"
#include "report_fixture.h"

namespace ponder {
namespace {

namespace fs = std::filesystem;
using testing::write_known_results;

constexpr size_t kNaive = 0, kWeighted = 1, kMajority = 2;

class Report : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("ponder-report-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    db_ = (dir_ / "results.sqlite").string();
  }
  void TearDown() override { fs::remove_all(dir_); }

  fs::path dir_;
  std::string db_;
};

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool has_gnuplot() { return std::system("command -v gnuplot >/dev/null 2>&1") == 0; }

TEST_F(Report, AccuracyPairsAndCostAreMeansOverProblemSeedPairs) {
  write_known_results(db_);
  const std::vector<RunReport> runs = read_report(db_);
  ASSERT_EQ(runs.size(), 1u);
  const RunReport& run = runs[0];
  EXPECT_EQ(run.problems, 4);
  EXPECT_EQ(run.seeds, (std::vector<int64_t>{0, 1}));
  EXPECT_EQ(run.budgets, (std::vector<int64_t>{1, 2, 4}));
  EXPECT_EQ(run.complete_pairs(), 8);
  ASSERT_EQ(run.levels.size(), 2u);
  EXPECT_EQ(run.levels[0].level, 1);
  EXPECT_EQ(run.levels[1].level, 3);
  EXPECT_EQ(run.complete_pairs(1), 4);

  ASSERT_EQ(run.strategies.size(), 2u);
  const StrategyReport& majority = run.strategies[0];
  const StrategyReport& beam = run.strategies[1];
  EXPECT_EQ(majority.name, "majority");
  EXPECT_EQ(majority.chosen, kMajority);
  EXPECT_EQ(beam.name, "beam");
  EXPECT_EQ(beam.chosen, kNaive);

  EXPECT_EQ(majority.overall.at(1).pairs, 8);
  EXPECT_DOUBLE_EQ(majority.overall.at(1).accuracy_percent(kMajority), 37.5);
  EXPECT_DOUBLE_EQ(majority.overall.at(1).accuracy_percent(kNaive), 12.5);
  EXPECT_DOUBLE_EQ(majority.overall.at(2).accuracy_percent(kWeighted), 50.0);
  // The unfinished cell: 7 pairs, p4 seed 1 missing.
  EXPECT_EQ(majority.overall.at(4).pairs, 7);
  EXPECT_DOUBLE_EQ(majority.overall.at(4).accuracy_percent(kMajority), 600.0 / 7.0);
  EXPECT_DOUBLE_EQ(majority.overall.at(4).accuracy_percent(kWeighted), 500.0 / 7.0);
  EXPECT_EQ(beam.overall.count(1), 0u);
  EXPECT_DOUBLE_EQ(beam.overall.at(4).accuracy_percent(kNaive), 87.5);
  EXPECT_DOUBLE_EQ(beam.overall.at(4).accuracy_percent(kMajority), 100.0);

  EXPECT_DOUBLE_EQ(majority.by_level[0].at(1).accuracy_percent(kMajority), 75.0);
  EXPECT_EQ(majority.by_level[1].at(4).pairs, 3);
  EXPECT_DOUBLE_EQ(majority.by_level[1].at(4).accuracy_percent(kMajority), 200.0 / 3.0);
  EXPECT_DOUBLE_EQ(beam.by_level[1].at(4).accuracy_percent(kNaive), 75.0);

  // Seeds 0 (4 pairs) and 1 (3 pairs): 100 N + 10 seed tokens, N + 0.5 seed seconds.
  EXPECT_DOUBLE_EQ(majority.overall.at(4).mean_completion_tokens(), 400.0 + 30.0 / 7.0);
  EXPECT_DOUBLE_EQ(majority.overall.at(4).mean_seconds(), 4.0 + 1.5 / 7.0);
  EXPECT_DOUBLE_EQ(majority.overall.at(4).mean_verifier_tokens(), 0.0);
  EXPECT_DOUBLE_EQ(beam.overall.at(2).mean_verifier_tokens(), 100.0);
  EXPECT_DOUBLE_EQ(beam.overall.at(2).mean_completion_tokens(), 205.0);
}

TEST_F(Report, MarkdownShowsSettingsAccuracyLevelsAndCost) {
  write_known_results(db_);
  const std::string md = report_markdown(read_report(db_), false);
  for (const char* line : {
           "# ponder report: results.sqlite\n",
           "## Run 1\n",
           "- dataset: `math500.jsonl`\n- model: `qwen-0.5b.gguf (494 MB)`\n- prm: `prm-1.5b.gguf (1544 MB)`\n"
           "- settings: `delimiter=\"\\n\\n\"`, `max_tokens=512`, `search.beam_width=4`, `temperature=0.8`\n",
           "- problems: 4 (level 1: 2, level 3: 2); seeds: 0, 1; a complete cell averages 8 (problem, seed) pairs\n",
           "| strategy | selection | N=1 | N=2 | N=4 |\n",
           "| majority | **majority** (own) | 37.5 | 62.5 | 85.7 (7/8) |\n",
           "| | naive | 12.5 | 25.0 | 42.9 (7/8) |\n",
           "| | weighted | 0.0 | 50.0 | 71.4 (7/8) |\n",
           "| beam | **naive** (own) | - | 37.5 | 87.5 |\n",
           "| | weighted | - | 50.0 | 75.0 |\n",
           "| | majority | - | 25.0 | 100.0 |\n",
           "| 1 | 2 | majority | 75.0 | 100.0 | 100.0 |\n",
           "| | | beam | - | 50.0 | 100.0 |\n",
           "| 3 | 2 | majority | 0.0 | 25.0 | 66.7 (3/4) |\n",
           "| | | beam | - | 25.0 | 75.0 |\n",
           "| majority | 1 | 8 | 105.0 | 0.0 | 1.25 |\n",
           "| majority | 4 | 7 | 404.3 | 0.0 | 4.21 |\n",
           "| beam | 2 | 8 | 205.0 | 100.0 | 2.25 |\n",
       }) {
    EXPECT_NE(md.find(line), std::string::npos) << "missing: " << line << "in:\n" << md;
  }
  EXPECT_EQ(md.find("!["), std::string::npos) << "no plots to link";
  EXPECT_NE(report_markdown(read_report(db_), true).find("![accuracy by level](accuracy_by_level.png)"),
            std::string::npos);
}

TEST_F(Report, ProblemsWithoutLevelsHaveNoLevelTable) {
  {
    Store store(db_);
    const int64_t run = store.run_id(R"({"model":"m.gguf"})");
    store.add_problems(run, {{"q1", 0, std::nullopt, "", "1"}});
    testing::add_cell(store, run, "majority", "majority", 1, {"q1/0"}, {}, {}, {"*"});
  }
  const std::vector<RunReport> runs = read_report(db_);
  ASSERT_EQ(runs.size(), 1u);
  EXPECT_FALSE(runs[0].has_levels());
  const std::string md = report_markdown(runs, true);
  EXPECT_NE(md.find("| majority | **majority** (own) | 100.0 |"), std::string::npos) << md;
  EXPECT_EQ(md.find("by level"), std::string::npos) << md;
}

// A sampled search of `budget` for problem/seed with solutions scored `right` and `wrong`.
void add_sampled(const std::string& db, int64_t run, const std::string& search, const std::string& problem,
                 int64_t seed, int64_t budget, const std::vector<double>& right, const std::vector<double>& wrong) {
  Store store(db);
  SearchRecord r;
  r.problem_id = problem;
  r.search = search;
  r.budget = budget;
  r.seed = seed;
  for (double score : right) r.completions.push_back({"right", std::string("1"), true, score, {score}, 10, "eos"});
  for (double score : wrong) r.completions.push_back({"wrong", std::string("2"), false, score, {score}, 10, "eos"});
  store.write(run, &r, {});
}

TEST_F(Report, VerifierRankingPoolsRightWrongPairsWithinAProblem) {
  const int64_t run = write_known_results(db_);
  add_sampled(db_, run, "sample", "p1", 0, 4, {0.9, 0.5}, {0.5, 0.1});  // 3.5 of 4 (a tie is half)
  add_sampled(db_, run, "sample", "p3", 1, 4, {0.2}, {0.8, 0.3});       // 0 of 2
  add_sampled(db_, run, "sample", "p2", 0, 4, {0.7, 0.6}, {});          // no pair
  add_sampled(db_, run, "sample", "p4", 0, 2, {0.9}, {0.1});            // a smaller budget: not read
  add_sampled(db_, run, "beam", "p1", 1, 4, {0.9}, {0.1});              // not a sampled search
  const std::vector<RunReport> runs = read_report(db_);
  ASSERT_TRUE(runs[0].ranking.has_value());
  const VerifierRanking& r = *runs[0].ranking;
  EXPECT_EQ(r.budget, 4);
  EXPECT_EQ(r.overall.searches, 2);
  EXPECT_EQ(r.overall.pairs, 6);
  EXPECT_DOUBLE_EQ(r.overall.auc(), 3.5 / 6.0);
  ASSERT_EQ(r.by_level.size(), 2u);
  EXPECT_DOUBLE_EQ(r.by_level[0].auc(), 3.5 / 4.0);
  EXPECT_DOUBLE_EQ(r.by_level[1].auc(), 0.0);
  const std::string md = report_markdown(runs, false);
  EXPECT_NE(md.find("### Verifier ranking within a problem"), std::string::npos) << md;
  EXPECT_NE(md.find("| 1 | 1 | 4 | 0.875 |"), std::string::npos) << md;
  EXPECT_NE(md.find("| all | 2 | 6 | 0.583 |"), std::string::npos) << md;

  // Without a verifier the scores mean nothing: no ranking.
  const int64_t plain = write_known_results(db_, R"({"confidence":"","judge":null,"model":"m.gguf"})");
  add_sampled(db_, plain, "sample", "p1", 0, 4, {0.0}, {0.0});
  const std::vector<RunReport> second = read_report(db_, plain);
  EXPECT_FALSE(second[0].ranking.has_value());
  EXPECT_EQ(report_markdown(second, false).find("Verifier ranking"), std::string::npos);
}

TEST_F(Report, SeveralRunsEachOrOnlyTheOneAsked) {
  write_known_results(db_);
  write_known_results(db_, R"({"model":"other.gguf"})");
  const std::vector<RunReport> both = read_report(db_);
  ASSERT_EQ(both.size(), 2u);
  EXPECT_EQ(both[1].id, 2);
  const std::string md = report_markdown(both, true);
  EXPECT_NE(md.find("## Run 2\n"), std::string::npos);
  EXPECT_NE(md.find("![accuracy against budget](run-2/accuracy.png)"), std::string::npos) << md;
  const std::vector<RunReport> second = read_report(db_, 2);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].id, 2);
}

TEST_F(Report, WritesMarkdownAndPlots) {
  if (!has_gnuplot()) {
    if (std::getenv("CI")) FAIL() << "gnuplot is missing";
    GTEST_SKIP() << "gnuplot is missing";
  }
  write_known_results(db_);
  const std::vector<RunReport> runs = read_report(db_);
  const fs::path out = dir_ / "out" / "new";
  write_report(runs, out);
  EXPECT_EQ(read_file(out / "report.md"), report_markdown(runs, true));
  for (const char* name : {"accuracy", "accuracy_selections", "accuracy_by_level"}) {
    const std::string png = read_file(out / (std::string(name) + ".png"));
    EXPECT_EQ(png.substr(0, 8), "\x89PNG\r\n\x1a\n") << name;
    EXPECT_NE(read_file(out / (std::string(name) + ".svg")).find("<svg"), std::string::npos) << name;
  }
  EXPECT_NE(read_file(out / "plots.gp").find("$overall_0 << EOD\n1 12.5000 0.0000 37.5000\n"), std::string::npos);
}

TEST_F(Report, ErrorsNameTheProblem) {
  auto message = [](auto&& f) {
    try {
      f();
    } catch (const ReportError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([&] { read_report(db_); }).find("no such file"), std::string::npos);
  EXPECT_FALSE(fs::exists(db_)) << "a missing database must not be created";

  std::ofstream(db_) << "not a database, just text that is long enough to be a header of one\n";
  EXPECT_NE(message([&] { read_report(db_); }).find("is not a ponder results database"), std::string::npos);
  fs::remove(db_);

  {
    Store store(db_);
    store.run_id("{}");
  }
  EXPECT_NE(message([&] { read_report(db_); }).find("has no results yet"), std::string::npos);
  EXPECT_NE(message([&] { read_report(db_, 1); }).find("run 1 in"), std::string::npos);
  EXPECT_NE(message([&] { read_report(db_, 7); }).find("no run 7"), std::string::npos);
}

}  // namespace
}  // namespace ponder
