// The eval loop over a scripted fake engine and a checker PRM: which searches it runs, what it
// stores, sub-sampled budgets, and resuming an interrupted evaluation.
#include "eval/evaluate.h"

#include <filesystem>
#include <set>
#include <thread>

#include <gtest/gtest.h>

#include "fake_engine.h"
#include "sqlite_rows.h"
#include "verify/checker.h"

namespace ponder {
namespace {

using testing::FakeContinuation;
using testing::FakeEngine;
using testing::FakeRequestInfo;
const auto rows = testing::query_rows;

// A sample's answer, from its seed: 1, 2 or 3. Gold answers are "2".
std::string answer_of_seed(uint64_t seed) { return std::to_string(seed % 3 + 1); }

// Solutions of two steps; the answer comes from the seed of the request that writes it (a
// sample written in one request, or the second step of a search).
FakeEngine::Model two_step_model() {
  return [](const FakeRequestInfo& r) {
    const std::string last = "So \\boxed{" + answer_of_seed(r.seed) + "}";
    if (r.context.find("Step 1") != std::string::npos) return FakeContinuation{last, true};
    return FakeContinuation{"Step 1: think.\n\n" + last, true};
  };
}

// The PRM stand-in: a step with the right answer scores 0.9, a wrong one 0.2, others 0.5.
CheckerStepVerifier checker_prm() {
  return CheckerStepVerifier([](const std::string&, const std::vector<std::string>& steps) {
    const std::string& last = steps.back();
    if (last.find("\\boxed{2}") != std::string::npos) return 0.9;
    if (last.find("\\boxed") != std::string::npos) return 0.2;
    return 0.5;
  });
}

std::vector<DatasetProblem> problems(int n) {
  std::vector<DatasetProblem> out;
  for (int i = 0; i < n; ++i) out.push_back({"p" + std::to_string(i), "problem " + std::to_string(i), "2", 1 + i % 5, "s"});
  return out;
}

class TempDb {
 public:
  TempDb() {
    static int counter = 0;
    path_ = (std::filesystem::temp_directory_path() /
             ("ponder-eval-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter++) + ".sqlite"))
                .string();
    std::filesystem::remove(path_);
  }
  ~TempDb() {
    for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path_ + suffix);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

EvalOptions options(std::vector<Strategy> strategies, std::vector<int32_t> budgets, int32_t seeds = 1) {
  EvalOptions o;
  o.strategies = std::move(strategies);
  o.budgets = std::move(budgets);
  o.seeds = seeds;
  o.base_seed = 5;
  o.search.beam_width = 2;
  o.search.max_tokens = 200;
  return o;
}

PromptFn prompt_for(const Engine& engine) {
  return [&engine](const DatasetProblem& p) { return engine.tokenize(p.problem + "\n", true, true); };
}

const std::string kResultColumns =
    "problem_id, strategy, budget, seed, naive_answer, naive_correct, weighted_answer, weighted_correct, "
    "majority_answer, majority_correct, chosen, completion_tokens";

TEST(Eval, SampledStrategiesShareOneSearchPerProblemAndSubsampleItsFirstSamples) {
  TempDb db;
  Store store(db.path());
  const int64_t run = store.run_id("{}");
  FakeEngine engine(two_step_model());
  CheckerStepVerifier prm = checker_prm();
  const auto ps = problems(3);
  const EvalOptions o =
      options({Strategy::kMajority, Strategy::kBestOfN, Strategy::kWeightedBestOfN}, {1, 2, 4, 8});
  const EvalSummary s = run_eval(engine, {&prm, nullptr}, store, run, ps, prompt_for(engine), o);
  EXPECT_EQ(s.searches_run, 3);  // one sample search per problem, at N = 8
  EXPECT_EQ(s.results_written, 3 * 3 * 4);
  EXPECT_FALSE(s.stopped);
  EXPECT_EQ(rows(db.path(), "SELECT problem_id, search, budget FROM searches ORDER BY problem_id"),
            (std::vector<std::string>{"p0|sample|8", "p1|sample|8", "p2|sample|8"}));

  // Each budget selects among the search's first n samples (in sampling order).
  for (const auto& p : ps) {
    const auto samples = rows(db.path(), "SELECT answer, correct, score, tokens FROM completions WHERE problem_id = '" +
                                             p.id + "' ORDER BY idx");
    ASSERT_EQ(samples.size(), 8u);
    for (int32_t n : {1, 2, 4, 8}) {
      std::map<std::string, int> votes;
      std::string first_best;
      std::map<std::string, double> weight;
      int64_t tokens = 0;
      bool any_correct = false;
      for (int i = 0; i < n; ++i) {
        const std::string answer = samples[i].substr(0, samples[i].find('|'));
        ++votes[answer];
        weight[answer] += answer == "2" ? 0.9 : 0.2;
        tokens += std::stoll(samples[i].substr(samples[i].rfind('|') + 1));
        any_correct = any_correct || answer == "2";
      }
      const auto result = rows(db.path(), "SELECT " + kResultColumns + " FROM results WHERE problem_id = '" + p.id +
                                              "' AND budget = " + std::to_string(n) + " ORDER BY strategy");
      ASSERT_EQ(result.size(), 3u);
      // best-of-n's naive pick is correct exactly when one of the first n samples is (the
      // checker scores right answers highest).
      EXPECT_NE(result[0].find("best-of-n|" + std::to_string(n) + "|5|"), std::string::npos) << result[0];
      EXPECT_EQ(result[0].find("|naive|") != std::string::npos, true);
      const std::string naive_correct = any_correct ? "|1|" : "|0|";
      EXPECT_NE(result[0].find(naive_correct), std::string::npos) << result[0];
      EXPECT_TRUE(result[0].ends_with("|" + std::to_string(tokens))) << result[0];
      // weighted's answer has the largest summed score.
      std::string best_weighted;
      for (const auto& [a, w] : weight) {
        if (best_weighted.empty() || w > weight[best_weighted] + 1e-12) best_weighted = a;
      }
      const auto fields = [](const std::string& row) {
        std::vector<std::string> f;
        size_t at = 0;
        for (size_t bar; (bar = row.find('|', at)) != std::string::npos; at = bar + 1) f.push_back(row.substr(at, bar - at));
        f.push_back(row.substr(at));
        return f;
      };
      const auto weighted_row = fields(result[2]);  // weighted-best-of-n
      EXPECT_EQ(weighted_row[1], "weighted-best-of-n");
      EXPECT_EQ(weighted_row[6], best_weighted) << result[2];
      EXPECT_EQ(weighted_row[7], best_weighted == "2" ? "1" : "0");
      EXPECT_EQ(weighted_row[10], "weighted");
      const auto majority_row = fields(result[1]);
      EXPECT_EQ(majority_row[1], "majority");
      EXPECT_EQ(votes[majority_row[8]], std::max_element(votes.begin(), votes.end(), [](auto& a, auto& b) {
                                          return a.second < b.second;
                                        })->second);
    }
  }
}

// Problems sample independently: their searches' seeds differ (a shared seed would make every
// problem's k-th sample draw the same random numbers), and the same eval gives the same seeds.
TEST(Eval, ProblemsSampleWithSeedsOfTheirOwn) {
  auto first_seeds = [] {
    TempDb db;
    Store store(db.path());
    FakeEngine engine(two_step_model());
    run_eval(engine, {}, store, store.run_id("{}"), problems(20), prompt_for(engine), options({Strategy::kMajority}, {1}));
    std::vector<uint64_t> seeds;
    for (const FakeRequestInfo& r : engine.requests_seen) seeds.push_back(r.seed);
    return seeds;
  };
  const std::vector<uint64_t> seeds = first_seeds();
  ASSERT_EQ(seeds.size(), 20u);
  EXPECT_EQ(std::set<uint64_t>(seeds.begin(), seeds.end()).size(), 20u);
  EXPECT_EQ(first_seeds(), seeds);
}

TEST(Eval, BeamSearchAndDvtsRunPerBudgetAndDvtsSkipsBudgetsBelowTheBeamWidth) {
  TempDb db;
  Store store(db.path());
  const int64_t run = store.run_id("{}");
  FakeEngine engine(two_step_model());
  CheckerStepVerifier prm = checker_prm();
  const EvalOptions o = options({Strategy::kBeam, Strategy::kDvts}, {1, 2, 16});
  const EvalSummary s = run_eval(engine, {&prm, nullptr}, store, run, problems(2), prompt_for(engine), o);
  EXPECT_EQ(s.searches_run, 2 * (3 + 2));
  EXPECT_EQ(rows(db.path(), "SELECT search, budget FROM searches WHERE problem_id = 'p0' ORDER BY search, budget"),
            (std::vector<std::string>{"beam|1", "beam|2", "beam|16", "dvts|2", "dvts|16"}));
  // Beam search keeps the checker's favourite: of 16 samples a round, some say 2 (a third do).
  EXPECT_EQ(rows(db.path(), "SELECT weighted_answer, weighted_correct, chosen FROM results WHERE strategy = 'beam' "
                            "AND budget = 16 ORDER BY problem_id"),
            (std::vector<std::string>{"2|1|weighted", "2|1|weighted"}));
  EXPECT_EQ(prm.live_states(), 0u);
  EXPECT_EQ(engine.live_branches(), 0);
}

TEST(Eval, AnInterruptedEvalResumesWithoutRedoingOrLosingWork) {
  const auto ps = problems(4);
  const EvalOptions o = options({Strategy::kMajority, Strategy::kWeightedBestOfN, Strategy::kBeam}, {1, 2, 4}, 2);
  const std::string all_results = "SELECT " + kResultColumns + " FROM results ORDER BY problem_id, strategy, budget, seed";

  TempDb whole;
  {
    Store store(whole.path());
    FakeEngine engine(two_step_model());
    CheckerStepVerifier prm = checker_prm();
    const EvalSummary s = run_eval(engine, {&prm, nullptr}, store, store.run_id("{}"), ps, prompt_for(engine), o);
    EXPECT_EQ(s.searches_run, 4 * 2 * (1 + 3));
  }

  TempDb parts;
  int64_t searches = 0;
  for (int stop_after : {5, 11, 1000}) {
    Store store(parts.path());
    FakeEngine engine(two_step_model());
    CheckerStepVerifier prm = checker_prm();
    int64_t done = 0;
    EvalHooks hooks;
    hooks.on_progress = [&](const EvalProgress& p) { done = p.done; };
    hooks.stop_requested = [&] { return done >= stop_after; };
    const EvalSummary s = run_eval(engine, {&prm, nullptr}, store, store.run_id("{}"), ps, prompt_for(engine), o, hooks);
    EXPECT_EQ(s.stopped, stop_after < 1000);
    searches += s.searches_run;
  }
  EXPECT_EQ(searches, 4 * 2 * (1 + 3));  // nothing done twice
  EXPECT_EQ(rows(parts.path(), all_results), rows(whole.path(), all_results));
  EXPECT_EQ(rows(parts.path(), "SELECT COUNT(*) FROM results"), (std::vector<std::string>{std::to_string(4 * 2 * 3 * 3)}));
}

TEST(Eval, LargerBudgetsLaterSampleAgainAndSmallerOnesReuseTheStoredSamples) {
  TempDb db;
  Store store(db.path());
  const int64_t run = store.run_id("{}");
  FakeEngine engine(two_step_model());
  CheckerStepVerifier prm = checker_prm();
  const auto ps = problems(1);
  run_eval(engine, {&prm, nullptr}, store, run, ps, prompt_for(engine), options({Strategy::kMajority}, {1, 4}));
  // A new strategy at budgets the stored 4 samples cover: no new search.
  EvalSummary s = run_eval(engine, {&prm, nullptr}, store, run, ps, prompt_for(engine),
                           options({Strategy::kMajority, Strategy::kBestOfN}, {2, 4}));
  EXPECT_EQ(s.searches_run, 0);
  EXPECT_EQ(s.results_written, 3);  // majority at 2, best-of-n at 2 and 4
  // A budget beyond them samples again, at the new largest budget.
  s = run_eval(engine, {&prm, nullptr}, store, run, ps, prompt_for(engine), options({Strategy::kMajority}, {1, 4, 16}));
  EXPECT_EQ(s.searches_run, 1);
  EXPECT_EQ(s.results_written, 1);
  EXPECT_EQ(rows(db.path(), "SELECT budget FROM searches ORDER BY budget"), (std::vector<std::string>{"4", "16"}));
}

TEST(Eval, WorkersInParallelStoreWhatOneWorkerStores) {
  const auto ps = problems(5);
  const EvalOptions o = options({Strategy::kMajority, Strategy::kBestOfN, Strategy::kBeam, Strategy::kDvts}, {1, 2, 4}, 2);
  const std::string all_results = "SELECT " + kResultColumns + " FROM results ORDER BY problem_id, strategy, budget, seed";
  TempDb one, three;
  {
    Store store(one.path());
    FakeEngine engine(two_step_model());
    CheckerStepVerifier prm = checker_prm();
    run_eval(engine, {&prm, nullptr}, store, store.run_id("{}"), ps, prompt_for(engine), o);
  }
  Store store(three.path());
  std::vector<std::unique_ptr<FakeEngine>> engines;
  std::vector<std::unique_ptr<CheckerStepVerifier>> prms;
  std::vector<EvalWorker> workers;
  for (int w = 0; w < 3; ++w) {
    engines.push_back(std::make_unique<FakeEngine>(two_step_model()));
    prms.push_back(std::make_unique<CheckerStepVerifier>(checker_prm()));
    workers.push_back({engines.back().get(), {prms.back().get(), nullptr}});
  }
  int64_t last_done = 0;
  EvalHooks hooks;
  hooks.on_progress = [&](const EvalProgress& p) {
    EXPECT_EQ(p.done, last_done + 1);  // one at a time, counted once
    last_done = p.done;
  };
  const EvalSummary s = run_eval(workers, store, store.run_id("{}"), ps, prompt_for(*engines[0]), o, hooks);
  EXPECT_EQ(s.searches_run, 5 * 2 * (1 + 3 + 2));
  EXPECT_EQ(last_done, s.searches_run);
  EXPECT_EQ(rows(three.path(), all_results), rows(one.path(), all_results));
  for (const auto& e : engines) EXPECT_GT(e->requests_seen.size(), 0u);  // every worker searched
}

TEST(Eval, AWorkersErrorStopsTheOthersAndKeepsWhatFinished) {
  const auto ps = problems(6);
  const EvalOptions o = options({Strategy::kBeam}, {2});
  TempDb db;
  Store store(db.path());
  // The good worker is slow, so that the bad one (on the calling thread) surely takes a search.
  FakeEngine good([model = two_step_model()](const FakeRequestInfo& r) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return model(r);
  });
  FakeEngine bad([](const FakeRequestInfo&) -> FakeContinuation { throw EngineError("the model broke"); });
  CheckerStepVerifier prm_good = checker_prm(), prm_bad = checker_prm();
  std::vector<EvalWorker> workers = {{&bad, {&prm_bad, nullptr}}, {&good, {&prm_good, nullptr}}};
  EXPECT_THROW(run_eval(workers, store, store.run_id("{}"), ps, prompt_for(good), o), EngineError);
  // Searches stored before the error stay; a second run does the rest.
  const auto stored = rows(db.path(), "SELECT COUNT(*) FROM results");
  FakeEngine again(two_step_model());
  CheckerStepVerifier prm = checker_prm();
  const EvalSummary s = run_eval(again, {&prm, nullptr}, store, store.run_id("{}"), ps, prompt_for(again), o);
  EXPECT_EQ(s.searches_run + std::stoll(stored[0]), 6);
}

TEST(Eval, RejectsBadBudgets) {
  TempDb db;
  Store store(db.path());
  FakeEngine engine(two_step_model());
  EXPECT_THROW(run_eval(engine, {}, store, store.run_id("{}"), problems(1), prompt_for(engine),
                        options({Strategy::kMajority}, {4, 2})),
               EngineError);
  EXPECT_THROW(run_eval(engine, {}, store, store.run_id("{}"), problems(1), prompt_for(engine),
                        options({Strategy::kMajority}, {})),
               EngineError);
}

}  // namespace
}  // namespace ponder
