// The strategies' exact semantics, driven by a scripted fake engine and verifier: which nodes
// are expanded, kept and pruned, how many samples each round takes, and what is selected.
#include "search/search.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <string_view>
#include <tuple>

#include <gtest/gtest.h>

#include "fake_engine.h"
#include "verify/confidence.h"

namespace ponder {
namespace {

using testing::FakeContinuation;
using testing::FakeEngine;
using testing::FakeRequestInfo;

// Scores a step by the number in brackets it carries ("a[0.7]\n\n" scores 0.7; none: 0).
// Tracks the states it holds, so tests can check that a search gives them all back.
class BracketVerifier final : public StepVerifier {
 public:
  VerifierState root(const std::string& problem) override { return add({problem, {}}); }
  std::vector<Scored> extend(const std::vector<Extension>& extensions) override {
    ++calls;
    std::vector<Scored> out;
    for (const Extension& e : extensions) {
      Prefix p = states_.at(e.parent);
      Scored s;
      for (const std::string& step : e.steps) {
        p.steps.push_back(step);
        s.step_scores.push_back(score_of(step) + jitter * static_cast<double>(out.size()));
        stats_.tokens_evaluated += static_cast<int64_t>(step.size());
      }
      s.state = add(p);
      out.push_back(s);
    }
    for (const Extension& e : extensions) {
      if (e.consume_parent) release(e.parent);
    }
    return out;
  }
  void release(VerifierState s) override {
    if (!states_.erase(s)) throw std::invalid_argument("unknown state");
  }
  VerifierStats stats() const override { return stats_; }
  size_t live() const { return states_.size(); }
  int calls = 0;
  // Added to a score per place in its call: what batching does to a real verifier's last digits.
  double jitter = 0.0;

  static double score_of(const std::string& step) {
    const size_t open = step.find('[');
    return open == std::string::npos ? 0.0 : std::stod(step.substr(open + 1));
  }

 private:
  struct Prefix {
    std::string problem;
    std::vector<std::string> steps;
  };
  VerifierState add(Prefix p) {
    states_[next_] = std::move(p);
    return next_++;
  }
  std::map<VerifierState, Prefix> states_;
  VerifierState next_ = 0;
  VerifierStats stats_;
};

// How many steps a branch's text holds (the prompt has none).
int steps_in(const std::string& context) {
  int n = 0;
  for (size_t at = context.find("\n\n"); at != std::string::npos; at = context.find("\n\n", at + 2)) ++n;
  return n;
}

// A model scripted by round and by position in the round's generate() call: script[round][i]
// is the i-th request's step. A step without "\n\n" at its end finishes the solution (EOS).
// Requests that generate to the end (no stop string) get `to_end`.
FakeEngine::Model scripted(std::vector<std::vector<std::string>> script, std::string to_end = "end[0.5]") {
  return [script, to_end](const FakeRequestInfo& r) -> FakeContinuation {
    if (r.stop.empty()) return {to_end, true};
    const auto& round = script.at(steps_in(r.context));
    const std::string& step = round.at(r.index);
    return {step, true};
  };
}

// A model for lookahead: request i of the first round samples first[i % first.size()]; a greedy
// rollout continues with `if_marked` from a branch whose text holds `marker`, else with
// `otherwise`; later rounds end the solution with "done".
FakeEngine::Model rolling_out(std::vector<std::string> first, std::string marker, std::string if_marked,
                              std::string otherwise) {
  return [=](const FakeRequestInfo& r) -> FakeContinuation {
    if (r.greedy) return {r.context.find(marker) != std::string::npos ? if_marked : otherwise, true};
    if (steps_in(r.context) == 0) return {first.at(r.index % first.size()), true};
    return {"done", true};
  };
}

// Greedy requests the engine saw: lookahead rollouts.
long greedy_requests(const FakeEngine& engine) {
  return std::count_if(engine.requests_seen.begin(), engine.requests_seen.end(),
                       [](const FakeRequestInfo& q) { return q.greedy; });
}

std::optional<std::string> boxed(const std::string& text) {
  const size_t at = text.rfind("\\boxed{");
  if (at == std::string::npos) return std::nullopt;
  const size_t end = text.find('}', at);
  return text.substr(at + 7, end - at - 7);
}

SearchProblem problem() { return {"Q", {'Q', ':'}}; }

// Round by round: scripted models answer by position in a round's generate() call, which
// speculation (sampling ahead as candidates finish) would reorder. Its own tests are below.
SearchOptions beam_options(int n, int m) {
  SearchOptions o;
  o.strategy = Strategy::kBeam;
  o.n = n;
  o.beam_width = m;
  o.speculation = Speculation::kOff;
  return o;
}

// Round-r nodes in order of creation.
std::vector<const SearchNode*> round_nodes(const SearchTree& tree, int round) {
  std::vector<const SearchNode*> out;
  for (const SearchNode& n : tree.nodes()) {
    if (n.round == round) out.push_back(&n);
  }
  return out;
}

TEST(BeamSearch, KeepsTheBestNOverMAndExpandsEachMWays) {
  FakeEngine engine(scripted({
      {"a0[0.1]\n\n", "a1[0.9]\n\n", "a2[0.5]\n\n", "a3[0.7]\n\n"},
      {"b0[0.2]\n\n", "b1[0.8]", "b2[0.6]\n\n", "b3[0.3]\n\n"},
      {"c0[0.4]", "c1[0.5]", "c2[0.6]", "c3[0.7]"},
  }));
  BracketVerifier prm;
  const SearchResult r = run_search(engine, {&prm, nullptr}, problem(), beam_options(4, 2), boxed);

  // Every round samples N = 4 steps in one batched call.
  EXPECT_EQ(engine.generate_calls, (std::vector<size_t>{4, 4, 4}));
  EXPECT_EQ(r.usage.rounds, 3);
  const auto r0 = round_nodes(r.tree, 0), r1 = round_nodes(r.tree, 1), r2 = round_nodes(r.tree, 2);
  ASSERT_EQ(r0.size(), 4u);
  // Round 0: the best N/M = 2 (a1 0.9, a3 0.7) are kept, the others pruned.
  EXPECT_EQ(r0[0]->status, NodeStatus::kPruned);
  EXPECT_EQ(r0[1]->status, NodeStatus::kKept);
  EXPECT_EQ(r0[2]->status, NodeStatus::kPruned);
  EXPECT_EQ(r0[3]->status, NodeStatus::kKept);
  // Round 1: the best kept beam (a1) grows the first two children, a3 the next two.
  ASSERT_EQ(r1.size(), 4u);
  EXPECT_EQ(r1[0]->parent, r0[1]->id);
  EXPECT_EQ(r1[1]->parent, r0[1]->id);
  EXPECT_EQ(r1[2]->parent, r0[3]->id);
  EXPECT_EQ(r1[3]->parent, r0[3]->id);
  EXPECT_EQ(r1[0]->step, "b0[0.2]\n\n");
  // b1 finished (EOS) and left the pool; of the rest b2 (0.6) and b3 (0.3) are kept.
  EXPECT_EQ(r1[1]->status, NodeStatus::kFinished);
  EXPECT_EQ(r1[0]->status, NodeStatus::kPruned);
  EXPECT_EQ(r1[2]->status, NodeStatus::kKept);
  EXPECT_EQ(r1[3]->status, NodeStatus::kKept);
  ASSERT_EQ(r2.size(), 4u);
  EXPECT_EQ(r2[0]->parent, r1[2]->id);
  EXPECT_EQ(r2[2]->parent, r1[3]->id);
  // Round 2 finishes four more: 5 >= N stops the search.
  ASSERT_EQ(r.solutions.size(), 5u);
  EXPECT_EQ(r.solutions[0].text, "a1[0.9]\n\nb1[0.8]");
  EXPECT_EQ(r.solutions[0].steps, (std::vector<std::string>{"a1[0.9]\n\n", "b1[0.8]"}));
  EXPECT_EQ(r.solutions[0].step_scores, (std::vector<double>{0.9, 0.8}));
  EXPECT_DOUBLE_EQ(r.solutions[0].score, 0.8);  // aggregation "last"
  EXPECT_EQ(r.solutions[4].text, "a3[0.7]\n\nb3[0.3]\n\nc3[0.7]");
  EXPECT_EQ(r.solutions[0].finish, FinishReason::kEos);

  // Nothing is left behind: every branch and verifier state was given back.
  EXPECT_EQ(engine.live_branches(), 0);
  EXPECT_EQ(prm.live(), 0u);
  // One verifier call per round, each step scored once.
  EXPECT_EQ(prm.calls, 3);
  int64_t step_chars = 0;
  for (const SearchNode& n : r.tree.nodes()) step_chars += static_cast<int64_t>(n.step.size());
  EXPECT_EQ(r.usage.verifier_tokens, step_chars);
  EXPECT_EQ(r.usage.completion_tokens, [&] {
    int64_t t = 0;
    for (const SearchNode& n : r.tree.nodes()) t += n.step_tokens;
    return t;  // a finished step's count includes its end-of-generation token
  }());
}

TEST(BeamSearch, TiesGoToTheEarlierBeam) {
  FakeEngine engine(scripted({
      {"a0[0.5]\n\n", "a1[0.5]\n\n", "a2[0.5]\n\n", "a3[0.5]\n\n"},
      {"b0", "b1", "b2", "b3"},
  }));
  BracketVerifier prm;
  const SearchResult r = run_search(engine, {&prm, nullptr}, problem(), beam_options(4, 2), boxed);
  const auto r0 = round_nodes(r.tree, 0);
  EXPECT_EQ(r0[0]->status, NodeStatus::kKept);
  EXPECT_EQ(r0[1]->status, NodeStatus::kKept);
  EXPECT_EQ(r0[2]->status, NodeStatus::kPruned);
  EXPECT_EQ(r0[3]->status, NodeStatus::kPruned);
}

// Small models often sample the same step twice. The duplicates' verifier scores may differ in
// their last digits by what else was batched with them; that noise must not pick the beam.
TEST(BeamSearch, DuplicateSamplesScoreAlikeAndTheEarlierIsKept) {
  FakeEngine engine(scripted({
      {"c[0.1]\n\n", "a[0.5]\n\n", "b[0.3]\n\n", "a[0.5]\n\n"},
      {"x0", "x1", "x2", "x3"},
  }));
  BracketVerifier prm;
  prm.jitter = 1e-9;
  const SearchResult r = run_search(engine, {&prm, nullptr}, problem(), beam_options(4, 4), boxed);
  const auto r0 = round_nodes(r.tree, 0);
  ASSERT_EQ(r0.size(), 4u);
  EXPECT_EQ(r0[3]->score, r0[1]->score);
  EXPECT_EQ(r0[1]->status, NodeStatus::kKept);
  EXPECT_EQ(r0[3]->status, NodeStatus::kPruned);
  // Different texts keep their own scores.
  EXPECT_NE(r0[2]->score, BracketVerifier::score_of("b[0.3]"));
}

TEST(BeamSearch, DuplicateCandidatesShareOneLookaheadRollout) {
  FakeEngine engine(rolling_out({"c[0.1]\n\n", "a[0.5]\n\n", "b[0.3]\n\n", "a[0.5]\n\n"}, "a[", "good[0.9]\n\n",
                                "bad[0.2]\n\n"));
  BracketVerifier prm;
  SearchOptions o = beam_options(4, 4);
  o.lookahead = 1;
  const SearchResult r = run_search(engine, {&prm, nullptr}, problem(), o, boxed);
  const auto r0 = round_nodes(r.tree, 0);
  ASSERT_EQ(r0.size(), 4u);
  // Three texts, three rollouts: the second "a" takes the first one's.
  EXPECT_EQ(greedy_requests(engine), 3);
  EXPECT_EQ(r0[3]->lookahead, r0[1]->lookahead);
  EXPECT_EQ(r0[3]->lookahead, (std::vector<std::string>{"good[0.9]\n\n"}));
  EXPECT_EQ(r0[3]->selection_score, r0[1]->selection_score);
  EXPECT_EQ(r0[1]->status, NodeStatus::kKept);
  EXPECT_EQ(r0[3]->status, NodeStatus::kPruned);
  EXPECT_EQ(engine.live_branches(), 0);
  EXPECT_EQ(prm.live(), 0u);
}

TEST(BeamSearch, EveryBeamFinishingAtOnceEndsTheSearch) {
  FakeEngine engine(scripted({{"x[0.1]", "y[0.2]", "z[0.3]", "w[0.4]"}}));
  BracketVerifier prm;
  const SearchResult r = run_search(engine, {&prm, nullptr}, problem(), beam_options(4, 4), boxed);
  EXPECT_EQ(r.usage.rounds, 1);
  EXPECT_EQ(r.solutions.size(), 4u);
  EXPECT_EQ(engine.generate_calls.size(), 1u);
}

TEST(BeamSearch, TheLastRoundGeneratesToTheEndAndSplitsSteps) {
  FakeEngine engine(scripted({{"a[0.3]\n\n", "b[0.6]\n\n", "c[0.2]\n\n", "d[0.1]\n\n"}},
                             "e[0.4]\n\nf[0.9]"));
  BracketVerifier prm;
  SearchOptions o = beam_options(4, 2);
  o.max_rounds = 2;
  const SearchResult r = run_search(engine, {&prm, nullptr}, problem(), o, boxed);
  EXPECT_EQ(r.usage.rounds, 2);
  ASSERT_EQ(r.solutions.size(), 4u);
  // The final round had no stop string; its text became two steps, each scored once.
  for (const FakeRequestInfo& req : engine.requests_seen) {
    EXPECT_EQ(req.stop.empty(), steps_in(req.context) == 1);
  }
  EXPECT_EQ(r.solutions[0].steps, (std::vector<std::string>{"b[0.6]\n\n", "e[0.4]\n\n", "f[0.9]"}));
  EXPECT_EQ(r.solutions[0].step_scores, (std::vector<double>{0.6, 0.4, 0.9}));
  EXPECT_EQ(r.solutions[2].steps.front(), "a[0.3]\n\n");
  EXPECT_EQ(engine.live_branches(), 0);
  EXPECT_EQ(prm.live(), 0u);
}

TEST(BeamSearch, MaxTokensEndsASolutionWithLength) {
  FakeEngine engine([](const FakeRequestInfo&) { return FakeContinuation{"abcdefghij\n\n", false}; });
  BracketVerifier prm;
  SearchOptions o = beam_options(2, 2);
  o.max_tokens = 5;
  const SearchResult r = run_search(engine, {&prm, nullptr}, problem(), o, boxed);
  ASSERT_EQ(r.solutions.size(), 2u);
  EXPECT_EQ(r.solutions[0].finish, FinishReason::kLength);
  EXPECT_EQ(r.solutions[0].text, "abcde");
  EXPECT_EQ(r.solutions[0].tokens, 5);
}

// Each round keeps exactly the open nodes ranked best by the chosen aggregation of their path's
// step scores (scores here come from the seeds, so they vary from node to node).
TEST(BeamSearch, KeepsTheTopByEachAggregation) {
  for (Aggregation a : {Aggregation::kLast, Aggregation::kMin, Aggregation::kProd, Aggregation::kMean}) {
    FakeEngine engine([](const FakeRequestInfo& r) -> FakeContinuation {
      const int depth = steps_in(r.context);
      const double score = static_cast<double>(r.seed % 97) / 97.0;
      return {"s[" + std::to_string(score) + "]" + (depth < 4 ? "\n\n" : ""), true};
    });
    BracketVerifier prm;
    SearchOptions o = beam_options(8, 2);
    o.aggregation = a;
    const SearchResult r = run_search(engine, {&prm, nullptr}, problem(), o, boxed);
    for (int round = 0; round < r.usage.rounds - 1; ++round) {
      std::vector<const SearchNode*> open;
      for (const SearchNode* n : round_nodes(r.tree, round)) {
        if (n->status != NodeStatus::kFinished) open.push_back(n);
      }
      std::vector<const SearchNode*> ranked = open;
      std::stable_sort(ranked.begin(), ranked.end(), [&](const SearchNode* x, const SearchNode* y) {
        return aggregate(r.tree.scores(x->id), a) > aggregate(r.tree.scores(y->id), a);
      });
      for (size_t i = 0; i < ranked.size(); ++i) {
        EXPECT_EQ(ranked[i]->status, i < 4 ? NodeStatus::kKept : NodeStatus::kPruned)
            << to_string(a) << " round " << round << " rank " << i;
      }
    }
    EXPECT_EQ(r.usage.rounds, 5);
  }
}

TEST(BeamSearch, LookaheadRanksAStepByItsGreedyRollout) {
  // a scores 0.9 but leads to a 0.1 step; b scores 0.2 but leads to 0.95.
  FakeEngine engine(rolling_out({"a[0.9]\n\n", "b[0.2]\n\n"}, "a[", "bad[0.1]\n\n", "good[0.95]\n\n"));
  BracketVerifier prm;
  SearchOptions o = beam_options(2, 2);
  o.lookahead = 1;
  const SearchResult r = run_search(engine, {&prm, nullptr}, problem(), o, boxed);
  const auto r0 = round_nodes(r.tree, 0);
  EXPECT_EQ(r0[0]->status, NodeStatus::kPruned);
  EXPECT_EQ(r0[1]->status, NodeStatus::kKept);
  EXPECT_EQ(r0[1]->lookahead, (std::vector<std::string>{"good[0.95]\n\n"}));
  EXPECT_DOUBLE_EQ(*r0[1]->selection_score, 0.95);
  EXPECT_DOUBLE_EQ(*r0[1]->score, 0.2);  // the step's own score is kept apart
  // Rollouts are greedy and do not become part of any solution.
  EXPECT_EQ(greedy_requests(engine), 2);
  EXPECT_EQ(r.solutions.at(0).text, "b[0.2]\n\ndone");
  EXPECT_EQ(engine.live_branches(), 0);
  EXPECT_EQ(prm.live(), 0u);
}

TEST(BeamSearch, TheGeneratorsConfidenceGuidesItStepByStep) {
  // "?" is a token the model doubts (p = e^-3); every other token is e^-0.1. Round 0 offers a
  // doubtful and a sure step; from the sure one a greedy rollout runs into doubt, from the
  // doubtful one it does not.
  FakeEngine engine(rolling_out({"sure\n\n", "d?\n\n"}, "sure", "??????\n\n", "fine\n\n"));
  engine.logprob_of = [](Token t) { return t == '?' ? -3.0f : -0.1f; };
  MeanLogprobStepConfidence confidence;
  const SearchOptions o = beam_options(2, 2);
  SearchResult r = run_search(engine, {&confidence, nullptr}, problem(), o, boxed);
  auto r0 = round_nodes(r.tree, 0);
  EXPECT_EQ(r0[0]->status, NodeStatus::kKept) << "the sure step";
  EXPECT_NEAR(*r0[0]->score, std::exp(-0.1), 1e-6);
  EXPECT_NEAR(*r0[1]->score, std::exp((-0.1 - 3.0 - 0.1 - 0.1) / 4.0), 1e-6);  // "d?\n\n"
  // The solution's last step scores the whole solution, end of generation included.
  ASSERT_EQ(r.solutions.size(), 2u);
  EXPECT_EQ(r.solutions[0].text, "sure\n\ndone");
  EXPECT_NEAR(r.solutions[0].score, std::exp(-0.1), 1e-6);
  // With a rollout one step on, the sure step's doubtful future ranks it below the other.
  SearchOptions ahead = o;
  ahead.lookahead = 1;
  r = run_search(engine, {&confidence, nullptr}, problem(), ahead, boxed);
  r0 = round_nodes(r.tree, 0);
  EXPECT_EQ(r0[0]->status, NodeStatus::kPruned);
  EXPECT_EQ(r0[1]->status, NodeStatus::kKept);
  EXPECT_NEAR(*r0[0]->selection_score, std::exp((6 * -0.1 + 6 * -3.0 + 2 * -0.1) / 14.0), 1e-6);
  EXPECT_EQ(engine.live_branches(), 0);
}

// A model whose step depends only on the branch's text and the request's seed, as a sampler's
// would: steps score by their seed, run from 1 to 40 characters (so that in lockstep they end
// at different times), and about one in five ends its solution.
FakeContinuation seeded_step(const FakeRequestInfo& r) {
  const std::string score = "[0." + std::to_string(r.seed % 1000) + "]";
  const std::string filler(r.seed / 1000 % 40, 'x');
  if (r.stop.empty()) return {"last" + filler + score, true};
  const bool ends = steps_in(r.context) > 0 && r.seed % 5 == 0;
  return {filler + score + (ends ? "" : "\n\n"), true};
}

// Both modes of sampling ahead give the round-by-round result; "all" discards some of what it
// sampled, "sure" nothing; both take fewer decode steps (the lockstep fake engine counts them).
TEST(BeamSearch, SpeculationGivesTheSynchronousResultAndFreesWhatItDiscards) {
  struct Case {
    int n, m, max_rounds;
    uint64_t seed;
  };
  for (Speculation mode : {Speculation::kAll, Speculation::kSure}) {
    SCOPED_TRACE(to_string(mode));
    int64_t discarded = 0, steps = 0, sync_steps = 0;
    for (const Case& c : {Case{4, 2, 5, 1}, Case{16, 4, 8, 2}, Case{6, 4, 6, 3}, Case{8, 2, 3, 4}, Case{5, 2, 4, 5},
                          Case{4, 4, 1, 6}, Case{16, 4, 40, 7}, Case{16, 4, 40, 8}, Case{8, 1, 10, 9}}) {
      const std::string what =
          "n " + std::to_string(c.n) + " m " + std::to_string(c.m) + " seed " + std::to_string(c.seed);
      SearchOptions o = beam_options(c.n, c.m);
      o.max_rounds = c.max_rounds;
      o.seed = c.seed;
      FakeEngine sync_engine(seeded_step, branches_needed(o));
      BracketVerifier sync_prm;
      const SearchResult sync = run_search(sync_engine, {&sync_prm, nullptr}, problem(), o, boxed);

      o.speculation = mode;
      FakeEngine engine(seeded_step, branches_wanted(o));  // it throws past its branches
      engine.lockstep = true;
      BracketVerifier prm;
      const SearchResult r = run_search(engine, {&prm, nullptr}, problem(), o, boxed);
      ASSERT_EQ(r.solutions.size(), sync.solutions.size()) << what;
      for (size_t i = 0; i < r.solutions.size(); ++i) {
        EXPECT_EQ(r.solutions[i].steps, sync.solutions[i].steps) << what;
        EXPECT_EQ(r.solutions[i].step_scores, sync.solutions[i].step_scores) << what;
        EXPECT_EQ(r.solutions[i].finish, sync.solutions[i].finish) << what;
      }
      EXPECT_EQ(r.weighted.answer, sync.weighted.answer) << what;
      EXPECT_EQ(r.usage.rounds, sync.usage.rounds) << what;
      // The tree holds the same nodes; what was sampled ahead and dropped is counted apart.
      EXPECT_EQ(r.tree.size(), sync.tree.size()) << what;
      EXPECT_EQ(r.usage.completion_tokens, sync.usage.completion_tokens) << what;
      EXPECT_EQ(engine.stats().generated_tokens, r.usage.completion_tokens + r.usage.discarded_tokens) << what;
      EXPECT_EQ(sync.usage.discarded_tokens, 0) << what;
      if (mode == Speculation::kSure) EXPECT_EQ(r.usage.discarded_tokens, 0) << what;
      // Every branch and verifier state given back.
      EXPECT_EQ(engine.live_branches(), 0) << what;
      EXPECT_EQ(prm.live(), 0u) << what;
      discarded += r.usage.discarded_tokens;
      steps += engine.lockstep_steps;

      FakeEngine sync_lockstep(seeded_step, branches_needed(o));
      sync_lockstep.lockstep = true;
      o.speculation = Speculation::kOff;
      BracketVerifier sync_lockstep_prm;
      run_search(sync_lockstep, {&sync_lockstep_prm, nullptr}, problem(), o, boxed);
      sync_steps += sync_lockstep.lockstep_steps;
    }
    // "all" samples ahead for candidates the round may not keep: some of it did not pay off.
    if (mode == Speculation::kAll) EXPECT_GT(discarded, 0);
    // The point of it: fewer decode steps for the same search.
    EXPECT_LT(steps, sync_steps);
  }
}

TEST(BeamSearch, WithoutRoomForSpeculationItRunsRoundByRound) {
  SearchOptions o = beam_options(8, 4);
  o.speculation = Speculation::kAll;
  o.max_rounds = 4;
  FakeEngine engine(seeded_step, branches_needed(o));
  BracketVerifier prm;
  const SearchResult r = run_search(engine, {&prm, nullptr}, problem(), o, boxed);
  EXPECT_EQ(r.usage.discarded_tokens, 0);
  EXPECT_EQ(engine.generate_calls.size(), static_cast<size_t>(r.usage.rounds));  // one call a round
  EXPECT_EQ(engine.live_branches(), 0);
}

TEST(Dvts, SubtreesKeepTheirBestCandidateAndNeverMix) {
  FakeEngine engine(scripted({
      // subtree 0: candidates 0-3, best 2; subtree 1: candidates 4-7, best 5 finishes it.
      {"s0a[0.1]\n\n", "s0b[0.3]\n\n", "s0c[0.8]\n\n", "s0d[0.2]\n\n", "s1a[0.4]\n\n", "s1b[0.9]", "s1c[0.5]",
       "s1d[0.6]\n\n"},
      {"t0[0.2]\n\n", "t1[0.7]", "t2[0.1]", "t3[0.3]\n\n"},
  }));
  BracketVerifier prm;
  SearchOptions o;
  o.strategy = Strategy::kDvts;
  o.n = 8;
  o.beam_width = 4;
  const SearchResult r = run_search(engine, {&prm, nullptr}, problem(), o, boxed);
  // Round 0: 2 subtrees x 4 candidates; round 1: only subtree 0 is left.
  EXPECT_EQ(engine.generate_calls, (std::vector<size_t>{8, 4}));
  const auto r0 = round_nodes(r.tree, 0), r1 = round_nodes(r.tree, 1);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(r0[i]->subtree, i / 4) << i;
  EXPECT_EQ(r0[2]->status, NodeStatus::kKept);
  for (int i : {0, 1, 3}) EXPECT_EQ(r0[i]->status, NodeStatus::kPruned) << i;
  // Subtree 1 ended: its finished candidates (the best, and s1c) are solutions.
  EXPECT_EQ(r0[5]->status, NodeStatus::kFinished);
  EXPECT_EQ(r0[6]->status, NodeStatus::kFinished);
  EXPECT_EQ(r0[4]->status, NodeStatus::kPruned);
  for (const SearchNode* n : r1) {
    EXPECT_EQ(n->parent, r0[2]->id);
    EXPECT_EQ(n->subtree, 0);
  }
  // Subtree 0's best in round 1 (t1) finished it, with t2 beside it.
  std::vector<std::string> texts;
  for (const Solution& s : r.solutions) texts.push_back(s.text);
  EXPECT_EQ(texts, (std::vector<std::string>{"s1b[0.9]", "s1c[0.5]", "s0c[0.8]\n\nt1[0.7]", "s0c[0.8]\n\nt2[0.1]"}));
  EXPECT_EQ(engine.live_branches(), 0);
  EXPECT_EQ(prm.live(), 0u);
}

// With lookahead DVTS advances round by round (rollouts need the engine between rounds) and
// keeps the candidate whose rollout scores best.
TEST(Dvts, LookaheadRanksCandidatesByTheirRollouts) {
  FakeEngine engine(rolling_out({"a[0.9]\n\n", "b[0.2]\n\n"}, "a[", "bad[0.1]\n\n", "good[0.95]\n\n"));
  BracketVerifier prm;
  SearchOptions o;
  o.strategy = Strategy::kDvts;
  o.n = 4;
  o.beam_width = 2;
  o.lookahead = 1;
  const SearchResult r = run_search(engine, {&prm, nullptr}, problem(), o, boxed);
  const auto r0 = round_nodes(r.tree, 0);
  ASSERT_EQ(r0.size(), 4u);
  for (int i : {0, 2}) EXPECT_EQ(r0[i]->status, NodeStatus::kPruned) << i;
  for (int i : {1, 3}) EXPECT_EQ(r0[i]->status, NodeStatus::kKept) << i;
  EXPECT_EQ(engine.generate_calls.front(), 4u);  // both subtrees' candidates in one batch
  ASSERT_EQ(r.solutions.size(), 4u);
  for (const Solution& s : r.solutions) EXPECT_EQ(s.text, "b[0.2]\n\ndone");
  EXPECT_EQ(engine.live_branches(), 0);
  EXPECT_EQ(prm.live(), 0u);
}

// Four solutions: answer 3 once with 0.6; answer 5 twice with 0.4 each; one without an answer.
FakeEngine voting_engine() {
  return FakeEngine([](const FakeRequestInfo& r) -> FakeContinuation {
    static const char* texts[] = {"so \\boxed{3}[0.6]", "\\boxed{5}[0.4]", "none[0.9]", "\\boxed{5}[0.4]"};
    return {texts[r.index], true};
  });
}

TEST(SampleN, MajorityBestOfNAndWeightedSelectDifferently) {
  for (Strategy s : {Strategy::kMajority, Strategy::kBestOfN, Strategy::kWeightedBestOfN}) {
    FakeEngine engine = voting_engine();
    BracketVerifier prm;
    SearchOptions o;
    o.strategy = s;
    o.n = 4;
    const SearchResult r = run_search(engine, {&prm, nullptr}, problem(), o, boxed);
    EXPECT_EQ(engine.generate_calls, (std::vector<size_t>{4}));
    ASSERT_EQ(r.solutions.size(), 4u);
    EXPECT_EQ(r.majority.answer, "5");
    EXPECT_EQ(r.majority.value, 2.0);
    EXPECT_EQ(r.naive.solution, 2);  // the best score, though it has no answer
    EXPECT_EQ(r.naive.answer, std::nullopt);
    EXPECT_EQ(r.weighted.answer, "5");
    EXPECT_DOUBLE_EQ(r.weighted.value, 0.8);
    const Selection& expected =
        s == Strategy::kMajority ? r.majority : s == Strategy::kBestOfN ? r.naive : r.weighted;
    EXPECT_EQ(r.chosen.solution, expected.solution) << to_string(s);
    EXPECT_EQ(engine.live_branches(), 0);
    EXPECT_EQ(prm.live(), 0u);
  }
}

TEST(SampleN, MajorityNeedsNoVerifierAndSolutionsSplitIntoSteps) {
  FakeEngine engine([](const FakeRequestInfo& r) -> FakeContinuation {
    return {"x\n\ny" + std::to_string(r.index % 2) + "\n\n\\boxed{" + std::to_string(r.index % 2) + "}", true};
  });
  SearchOptions o;
  o.strategy = Strategy::kMajority;
  o.n = 5;
  const SearchResult r = run_search(engine, {}, problem(), o, boxed);
  ASSERT_EQ(r.solutions.size(), 5u);
  EXPECT_EQ(r.chosen.answer, "0");  // three zeros against two ones
  EXPECT_EQ(r.solutions[1].steps, (std::vector<std::string>{"x\n\n", "y1\n\n", "\\boxed{1}"}));
  EXPECT_TRUE(r.solutions[1].step_scores.empty());
  EXPECT_EQ(r.usage.verifier_tokens, 0);
}

TEST(SampleN, OutcomeVerifierDecidesTheScore) {
  class Longest final : public OutcomeVerifier {
   public:
    std::vector<double> score(const std::vector<Candidate>& c) override {
      std::vector<double> out;
      for (const Candidate& x : c) {
        EXPECT_EQ(x.problem, "Q");
        EXPECT_FALSE(x.token_logprobs.empty());
        std::string text;
        for (const auto& s : x.steps) text += s;
        out.push_back(static_cast<double>(text.size()));
      }
      return out;
    }
    VerifierStats stats() const override { return {}; }
  } longest;
  FakeEngine engine = voting_engine();
  SearchOptions o;
  o.strategy = Strategy::kBestOfN;
  o.n = 4;
  const SearchResult r = run_search(engine, {nullptr, &longest}, problem(), o, boxed);
  EXPECT_EQ(r.chosen.solution, 0);  // "so \boxed{3}[0.6]" is the longest
  EXPECT_EQ(r.chosen.answer, "3");
}

TEST(Search, SameSeedSameSearchAndEverySampleHasItsOwnSeed) {
  auto run = [](uint64_t seed, std::vector<uint64_t>* seeds) {
    FakeEngine engine([](const FakeRequestInfo& r) -> FakeContinuation {
      const int depth = steps_in(r.context);
      const double score = static_cast<double>(r.seed % 1000) / 1000.0;
      return {std::to_string(depth) + "[" + std::to_string(score) + "]" + (depth < 3 ? "\n\n" : ""), true};
    });
    BracketVerifier prm;
    SearchOptions o = beam_options(8, 4);
    o.seed = seed;
    SearchResult r = run_search(engine, {&prm, nullptr}, problem(), o, boxed);
    for (const auto& q : engine.requests_seen) seeds->push_back(q.seed);
    std::vector<std::string> texts;
    for (const auto& s : r.solutions) texts.push_back(s.text);
    return texts;
  };
  std::vector<uint64_t> a, b, c;
  EXPECT_EQ(run(7, &a), run(7, &b));
  EXPECT_EQ(a, b);
  run(8, &c);
  EXPECT_NE(a, c);
  EXPECT_EQ(std::set<uint64_t>(a.begin(), a.end()).size(), a.size());
}

// A step_end that ends a step after its first "!" (the offset is past it).
std::optional<size_t> after_bang(std::string_view step) {
  const size_t at = step.find('!');
  if (at == std::string_view::npos) return std::nullopt;
  return at + 1;
}

// Steps decided by a predicate: the engine stops each step where step_end answers (not at the
// delimiter, which is empty here), and a to-the-end completion splits where it answers.
TEST(Search, StepEndDecidesWhereStepsEnd) {
  FakeEngine engine([](const FakeRequestInfo& r) -> FakeContinuation {
    if (!r.stop_when) return {"e[0.4]\n\n!f[0.9]", true};  // to the end: two steps
    const std::vector<std::string> first = {"a\n\n[0.3]!", "b[0.6]!", "c[0.2]!", "d[0.1]!"};
    // Text past the "!" never comes out: the step stops there.
    return {first.at(r.index) + "never seen", true};
  });
  BracketVerifier prm;
  SearchOptions o = beam_options(4, 2);
  o.max_rounds = 2;
  o.step_delimiter = "";
  o.step_end = after_bang;
  const SearchResult r = run_search(engine, {&prm, nullptr}, problem(), o, boxed);
  ASSERT_EQ(r.solutions.size(), 4u);
  for (const FakeRequestInfo& req : engine.requests_seen) {
    EXPECT_TRUE(req.stop.empty());
    EXPECT_EQ(req.stop_when, req.context == "Q:");  // the final round runs to the end
  }
  EXPECT_EQ(r.solutions[0].steps, (std::vector<std::string>{"b[0.6]!", "e[0.4]\n\n!", "f[0.9]"}));
  EXPECT_EQ(r.solutions[0].step_scores, (std::vector<double>{0.6, 0.4, 0.9}));
  EXPECT_EQ(r.solutions[2].steps.front(), "a\n\n[0.3]!");
  for (const Solution& s : r.solutions) EXPECT_EQ(s.text.find("never"), std::string::npos);
  EXPECT_EQ(engine.live_branches(), 0);
  EXPECT_EQ(prm.live(), 0u);

  // Sampling to the end splits its completions the same way.
  FakeEngine sampler([](const FakeRequestInfo&) { return FakeContinuation{"x!y\n\nz!\\boxed{1}", true}; });
  SearchOptions m;
  m.strategy = Strategy::kMajority;
  m.n = 2;
  m.step_end = after_bang;
  const SearchResult votes = run_search(sampler, {}, problem(), m, boxed);
  ASSERT_EQ(votes.solutions.size(), 2u);
  EXPECT_EQ(votes.solutions[0].steps, (std::vector<std::string>{"x!", "y\n\nz!", "\\boxed{1}"}));
  EXPECT_EQ(votes.chosen.answer, "1");
}

// A step_end that mimics the delimiter gives the delimiter's search: same samples, steps,
// scores and tree, rollouts (lookahead) and the final round's split included.
TEST(Search, StepEndMimickingTheDelimiterEqualsIt) {
  auto run = [](bool by_predicate) {
    FakeEngine engine([](const FakeRequestInfo& r) -> FakeContinuation {
      const std::string score = "[" + std::to_string(static_cast<double>(r.seed % 1000) / 1000.0) + "]";
      const int depth = steps_in(r.context);
      if (r.stop.empty() && !r.stop_when) return {"to" + score + "\n\nend" + score, true};
      return {std::to_string(depth) + score + "\n\nmore", true};
    });
    BracketVerifier prm;
    SearchOptions o = beam_options(4, 2);
    o.max_rounds = 3;
    o.lookahead = 1;
    if (by_predicate) {
      o.step_end = [](std::string_view step) -> std::optional<size_t> {
        const size_t at = step.find("\n\n");
        if (at == std::string_view::npos) return std::nullopt;
        return at;
      };
    }
    const SearchResult r = run_search(engine, {&prm, nullptr}, problem(), o, boxed);
    EXPECT_EQ(engine.live_branches(), 0);
    std::vector<std::vector<std::string>> steps;
    std::vector<std::vector<double>> scores;
    for (const Solution& s : r.solutions) {
      steps.push_back(s.steps);
      scores.push_back(s.step_scores);
    }
    std::vector<std::string> nodes;
    for (const SearchNode& n : r.tree.nodes()) nodes.push_back(n.step);
    return std::make_tuple(steps, scores, nodes, engine.requests_seen.size());
  };
  const auto by_delimiter = run(false);
  EXPECT_EQ(std::get<0>(by_delimiter).size(), 4u);
  EXPECT_EQ(std::get<0>(by_delimiter)[0].size(), 4u);  // three rounds, the last of two steps
  EXPECT_EQ(run(true), by_delimiter);
}

TEST(Search, RefusesWhatItCannotDo) {
  FakeEngine engine(scripted({{"x"}}), /*max_branches=*/8);
  BracketVerifier prm;
  SearchOptions o = beam_options(4, 2);
  EXPECT_THROW(run_search(engine, {}, problem(), o, boxed), EngineError);  // beam without a PRM
  o.n = 16;
  EXPECT_THROW(run_search(engine, {&prm, nullptr}, problem(), o, boxed), EngineError);  // too many branches
  o.n = 4;
  o.lookahead = 1;
  o.strategy = Strategy::kMajority;
  EXPECT_THROW(run_search(engine, {&prm, nullptr}, problem(), o, boxed), EngineError);
  o = beam_options(0, 2);
  EXPECT_THROW(run_search(engine, {&prm, nullptr}, problem(), o, boxed), EngineError);
  o.strategy = Strategy::kBestOfN;
  o.n = 2;
  EXPECT_THROW(run_search(engine, {}, problem(), o, boxed), EngineError);  // best-of-N, no verifier
  o = beam_options(4, 2);
  o.step_delimiter = "";  // without step_end, nothing would end a step
  EXPECT_THROW(run_search(engine, {&prm, nullptr}, problem(), o, boxed), EngineError);
  EXPECT_EQ(engine.live_branches(), 0);
}

}  // namespace
}  // namespace ponder
