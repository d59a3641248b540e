// The strategies end to end on real GGUF models: stories260K as the generator, a programmatic
// checker or a random-weight PRM (RLHFlow format) as the verifier.
#include <algorithm>

#include <gtest/gtest.h>

#include "engine/llama_engine.h"
#include "search/search.h"
#include "test_paths.h"
#include "verify/checker.h"
#include "verify/prm.h"

namespace ponder {
namespace {

using ponder::testing::stories_model;
using ponder::testing::test_model;

std::unique_ptr<Engine> open(const std::string& path, int branches, int n_ctx) {
  LlamaEngineOptions o;
  o.model_path = path;
  o.max_branches = branches;
  o.n_ctx = n_ctx;
  o.n_threads = 1;
  o.reproducible = true;  // batch composition must not move a greedy token
  return open_llama_engine(o);
}

SearchProblem story_problem(Engine& e) { return {"Once upon a time", e.tokenize("Once upon a time", true, false)}; }

SearchOptions options(Strategy s, int n, int m, int max_tokens) {
  SearchOptions o;
  o.strategy = s;
  o.n = n;
  o.beam_width = m;
  o.max_tokens = max_tokens;
  o.step_delimiter = ".";  // stories260K writes sentences, rarely blank lines
  o.seed = 11;
  return o;
}

double fraction_with(const std::vector<std::string>& steps, const std::string& word) {
  if (steps.empty()) return 0.0;
  return static_cast<double>(std::count_if(steps.begin(), steps.end(), [&](const std::string& s) {
           return s.find(word) != std::string::npos;
         })) /
         static_cast<double>(steps.size());
}

// Greedy beam search grows one sequence, step by step, on forked branches: its solution must be
// exactly what one greedy generation of the same length gives.
TEST(SearchOnLlama, GreedyBeamSearchReproducesGreedyGeneration) {
  PONDER_REQUIRE_FILE(stories_model());
  auto engine = open(stories_model(), 4, 4096);
  CheckerStepVerifier checker([](const std::string&, const std::vector<std::string>& steps) {
    return static_cast<double>(steps.back().size() % 7) / 7.0;
  });
  SearchOptions o = options(Strategy::kBeam, 4, 4, 80);
  o.temperature = 0.0f;
  const SearchResult r = run_search(*engine, {&checker, nullptr}, story_problem(*engine), o, nullptr);
  ASSERT_FALSE(r.solutions.empty());
  EXPECT_GT(r.usage.rounds, 3);

  GenerateRequest g;
  g.branch = engine->new_branch(story_problem(*engine).prompt);
  g.sampling.temperature = 0.0f;
  g.stop.max_tokens = 80;
  const Completion plain = engine->generate({g}).at(0);
  engine->free_branch(g.branch);
  for (const Solution& s : r.solutions) {
    EXPECT_EQ(s.text, plain.text);
    EXPECT_EQ(s.tokens, static_cast<int32_t>(plain.tokens.size()));
    EXPECT_GT(s.steps.size(), 3u);
  }
  EXPECT_EQ(engine->free_slots(), 4);
  EXPECT_EQ(checker.live_states(), 0u);
}

// Guided by a checker that likes steps about Lily, beam search returns stories with more such
// steps than plain sampling of the same budget and seed.
TEST(SearchOnLlama, BeamSearchFollowsItsVerifier) {
  PONDER_REQUIRE_FILE(stories_model());
  auto engine = open(stories_model(), 16, 16 * 512);
  CheckerStepVerifier checker([](const std::string&, const std::vector<std::string>& steps) {
    return steps.back().find("Lily") != std::string::npos ? 1.0 : 0.0;
  });
  const SearchProblem p = story_problem(*engine);
  auto lily_share = [&](Strategy s) {
    const SearchResult r = run_search(*engine, {&checker, nullptr}, p, options(s, 16, 4, 96), nullptr);
    std::vector<std::string> steps;
    for (const Solution& sol : r.solutions) steps.insert(steps.end(), sol.steps.begin(), sol.steps.end());
    return fraction_with(steps, "Lily");
  };
  const double sampled = lily_share(Strategy::kMajority);
  const double beam = lily_share(Strategy::kBeam);
  const double dvts = lily_share(Strategy::kDvts);
  EXPECT_GT(beam, sampled + 0.2) << "sampled " << sampled << " beam " << beam;
  EXPECT_GT(dvts, sampled + 0.1) << "sampled " << sampled << " dvts " << dvts;
  EXPECT_EQ(engine->free_slots(), 16);
  EXPECT_EQ(checker.live_states(), 0u);
}

// With a real PRM (random weights, RLHFlow chat format, another vocabulary than the
// generator's), each step is scored once during the search, and those scores equal scoring
// each finished solution's steps from scratch.
TEST(SearchOnLlama, PrmScoresDuringSearchEqualScoresFromScratch) {
  PONDER_REQUIRE_FILE(stories_model());
  PONDER_REQUIRE_FILE(test_model("prm-llama3-tiny.gguf"));
  auto generator = open(stories_model(), 8, 8 * 512);
  auto prm_engine = open(test_model("prm-llama3-tiny.gguf"), 9, 9 * 1024);
  ProcessRewardModel prm(*prm_engine, PrmFormat::rlhflow());
  const SearchProblem p = story_problem(*generator);
  for (Strategy s : {Strategy::kBeam, Strategy::kDvts, Strategy::kBestOfN}) {
    SearchOptions o = options(s, 8, 2, 64);
    const SearchResult r = run_search(*generator, {&prm, nullptr}, p, o, nullptr);
    ASSERT_FALSE(r.solutions.empty()) << to_string(s);
    EXPECT_GT(r.usage.verifier_tokens, 0);
    if (s != Strategy::kBestOfN) {
      EXPECT_LT(r.usage.verifier_tokens, r.usage.verifier_tokens_if_rescored) << to_string(s);
    }
    for (const Solution& sol : r.solutions) {
      ASSERT_EQ(sol.step_scores.size(), sol.steps.size());
      const VerifierState root = prm.root(p.problem);
      const auto fresh = prm.extend({{root, sol.steps, true}}).at(0);
      prm.release(fresh.state);
      for (size_t i = 0; i < sol.steps.size(); ++i) {
        EXPECT_NEAR(sol.step_scores[i], fresh.step_scores[i], 1e-4) << to_string(s) << " step " << i;
      }
    }
  }
  EXPECT_EQ(generator->free_slots(), 8);
  EXPECT_EQ(prm_engine->free_slots(), 9);
}

// Beam search that samples ahead on idle rows (either mode) gives what round-by-round beam
// search gives: the same solutions, step scores and answer, on a real model and PRM (engines in
// reproducible mode, so that batching does not move a sampled token).
TEST(SearchOnLlama, SpeculativeBeamSearchEqualsRoundByRound) {
  PONDER_REQUIRE_FILE(stories_model());
  PONDER_REQUIRE_FILE(test_model("prm-llama3-tiny.gguf"));
  auto generator = open(stories_model(), 16, 16 * 256);
  auto prm_engine = open(test_model("prm-llama3-tiny.gguf"), 9, 9 * 1024);
  ProcessRewardModel prm(*prm_engine, PrmFormat::rlhflow());
  const SearchProblem p = story_problem(*generator);
  SearchOptions o = options(Strategy::kBeam, 8, 4, 96);
  o.speculation = Speculation::kOff;
  const SearchResult sync = run_search(*generator, {&prm, nullptr}, p, o, nullptr);
  for (Speculation mode : {Speculation::kAll, Speculation::kSure}) {
    SCOPED_TRACE(to_string(mode));
    o.speculation = mode;
    const SearchResult ahead = run_search(*generator, {&prm, nullptr}, p, o, nullptr);
    if (mode == Speculation::kAll) {
      EXPECT_GT(ahead.usage.discarded_tokens, 0);  // it did sample ahead, and some went unused
    } else {
      EXPECT_EQ(ahead.usage.discarded_tokens, 0);
    }
    EXPECT_EQ(ahead.usage.completion_tokens, sync.usage.completion_tokens);
    EXPECT_EQ(ahead.tree.size(), sync.tree.size());
    EXPECT_EQ(ahead.usage.rounds, sync.usage.rounds);
    ASSERT_EQ(ahead.solutions.size(), sync.solutions.size());
    for (size_t i = 0; i < sync.solutions.size(); ++i) {
      EXPECT_EQ(ahead.solutions[i].steps, sync.solutions[i].steps) << "solution " << i;
      ASSERT_EQ(ahead.solutions[i].step_scores.size(), sync.solutions[i].step_scores.size());
      for (size_t j = 0; j < sync.solutions[i].step_scores.size(); ++j) {
        EXPECT_NEAR(ahead.solutions[i].step_scores[j], sync.solutions[i].step_scores[j], 1e-5);
      }
    }
  }
  EXPECT_EQ(generator->free_slots(), 16);
  EXPECT_EQ(prm_engine->free_slots(), 9);
}

// Progress arrives after each round with growing counts; setting the cancel flag from it stops
// the search at once: run_search throws Cancelled and every branch goes back to the engine.
TEST(SearchOnLlama, ProgressIsReportedAndCancelStopsTheSearch) {
  PONDER_REQUIRE_FILE(stories_model());
  auto engine = open(stories_model(), 16, 4096);  // room for beam search to sample ahead
  const int32_t free_before = engine->free_slots();
  CheckerStepVerifier checker([](const std::string&, const std::vector<std::string>& steps) {
    return static_cast<double>(steps.back().size() % 5) / 5.0;
  });
  for (const auto& [strategy, speculation] : std::vector<std::pair<Strategy, Speculation>>{
           {Strategy::kBeam, Speculation::kOff},
           {Strategy::kBeam, Speculation::kAll},
           {Strategy::kBeam, Speculation::kSure},
           {Strategy::kDvts, Speculation::kOff},
           {Strategy::kBestOfN, Speculation::kOff}}) {
    SCOPED_TRACE(std::string(to_string(strategy)) + " speculation " + to_string(speculation));
    SearchOptions o = options(strategy, 8, 4, 200);
    o.speculation = speculation;
    std::vector<SearchProgress> seen;
    o.on_progress = [&](const SearchProgress& p) { seen.push_back(p); };
    const SearchResult full = run_search(*engine, {&checker, nullptr}, story_problem(*engine), o, nullptr);
    ASSERT_GE(seen.size(), 2u);
    for (size_t i = 1; i < seen.size(); ++i) {
      EXPECT_GE(seen[i].completion_tokens, seen[i - 1].completion_tokens);
      EXPECT_GE(seen[i].finished, seen[i - 1].finished);
      EXPECT_GE(seen[i].rounds, seen[i - 1].rounds);
    }
    EXPECT_EQ(seen.back().target, 8);
    EXPECT_EQ(seen.back().finished, static_cast<int32_t>(full.solutions.size()));
    EXPECT_LE(seen.back().completion_tokens, full.usage.completion_tokens + full.usage.discarded_tokens);

    std::atomic<bool> cancel{false};
    int32_t reports = 0;
    o.cancel = &cancel;
    o.on_progress = [&](const SearchProgress&) {
      ++reports;
      cancel = true;
    };
    EXPECT_THROW(run_search(*engine, {&checker, nullptr}, story_problem(*engine), o, nullptr), Cancelled);
    EXPECT_EQ(reports, 1) << "nothing more is reported once cancelled";
    EXPECT_EQ(engine->free_slots(), free_before);
  }
}

// Fixed-size steps: every step but a solution's last holds exactly step_tokens tokens, and the
// steps of a solution still make up its text.
TEST(SearchOnLlama, FixedSizeStepsOfTokens) {
  PONDER_REQUIRE_FILE(stories_model());
  auto engine = open(stories_model(), 8, 4096);
  CheckerStepVerifier checker([](const std::string&, const std::vector<std::string>& steps) {
    return static_cast<double>(steps.back().size() % 5) / 5.0;
  });
  for (Strategy strategy : {Strategy::kBeam, Strategy::kDvts, Strategy::kBestOfN}) {
    SCOPED_TRACE(to_string(strategy));
    SearchOptions o = options(strategy, 8, 4, 60);
    o.step_delimiter.clear();
    o.step_tokens = 7;
    const SearchResult r = run_search(*engine, {&checker, nullptr}, story_problem(*engine), o, nullptr);
    ASSERT_FALSE(r.solutions.empty());
    for (const Solution& s : r.solutions) {
      std::vector<NodeId> path;
      for (NodeId n = s.node; r.tree.node(n).parent >= 0; n = r.tree.node(n).parent) path.push_back(n);
      ASSERT_GE(path.size(), 2u) << "60 tokens make several steps of 7";
      for (size_t i = 1; i < path.size(); ++i) EXPECT_EQ(r.tree.node(path[i]).step_tokens, 7);
      EXPECT_LE(r.tree.node(path[0]).step_tokens, 7);
      std::string text;
      for (const std::string& step : s.steps) text += step;
      EXPECT_EQ(text, s.text);
    }
  }
  SearchOptions bad = options(Strategy::kBeam, 4, 4, 20);
  bad.step_tokens = -1;
  EXPECT_THROW(run_search(*engine, {&checker, nullptr}, story_problem(*engine), bad, nullptr), EngineError);
}

}  // namespace
}  // namespace ponder
