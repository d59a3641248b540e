// BatchingEngine on the real stories260K model: clients on several threads get exactly what the
// same work gives on a plain LlamaEngine, while their decode steps are merged. And the
// LlamaEngine hook it rests on (generate_streaming).
//
// Every multi-threaded test runs its threads under a deadline: a hang prints which test hung and
// ends the test binary (a hung thread cannot be joined, so failing and going on would hang too).
#include "engine/batching_engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <future>
#include <latch>
#include <map>
#include <stdexcept>
#include <thread>

#include <gtest/gtest.h>

#include "search/search.h"
#include "test_paths.h"
#include "verify/checker.h"
#include "verify/prm.h"

namespace ponder {
namespace {

using namespace std::chrono_literals;
using ponder::testing::stories_model;

std::unique_ptr<LlamaEngine> open(int branches, int n_ctx = 4096) {
  LlamaEngineOptions o;
  o.model_path = stories_model();
  o.max_branches = branches;
  o.n_ctx = n_ctx;
  o.n_threads = 1;
  o.reproducible = true;  // batch composition must not move a sampled token
  return open_llama_engine(o);
}

GenerateRequest request(BranchId b, uint64_t seed, int max_tokens, bool stop_at_eos = true) {
  GenerateRequest r;
  r.branch = b;
  r.sampling.temperature = 0.9f;
  r.sampling.seed = seed;
  r.stop.max_tokens = max_tokens;
  r.stop.stop_at_eos = stop_at_eos;
  return r;
}

// Runs each function on its own thread and returns their results, in order. A thread's
// exception is rethrown here. Past the deadline, reports the hang and exits.
template <typename R>
std::vector<R> run_threads(std::vector<std::function<R()>> fns, std::chrono::seconds limit = 60s) {
  std::vector<std::future<R>> futures;
  std::vector<std::thread> threads;
  for (auto& fn : fns) {
    std::packaged_task<R()> task(std::move(fn));
    futures.push_back(task.get_future());
    threads.emplace_back(std::move(task));
  }
  const auto deadline = std::chrono::steady_clock::now() + limit;
  for (auto& f : futures) {
    if (f.wait_until(deadline) != std::future_status::ready) {
      const auto* test = ::testing::UnitTest::GetInstance()->current_test_info();
      std::fprintf(stderr, "FAILED: %s.%s: threads still running after %lld s (hang)\n", test->test_suite_name(),
                   test->name(), static_cast<long long>(limit.count()));
      std::fflush(stderr);
      std::_Exit(1);
    }
  }
  for (auto& t : threads) t.join();
  std::vector<R> out;
  for (auto& f : futures) out.push_back(f.get());
  return out;
}

// What a piece of work produced, by label (not by index: indices of requests added by on_finish
// follow the order in which completions finish, which merging may change).
using Results = std::map<std::string, std::vector<Token>>;

const char* const kPrompts[] = {"Once upon a time", "The little dog", "Lily and Tom", "One day"};

// A search-like piece of work: a prompt forked 4 ways and sampled with seeds of its own; as the
// first two finish, on_finish (on the caller's thread) forks each, and continues both the branch
// and the fork. Frees every branch at the end.
Results fork_and_continue(Engine& e, int t) {
  const BranchId root = e.new_branch(e.tokenize(kPrompts[t % 4], true, false));
  std::map<std::string, BranchId> owned = {{"branch 0", root}};
  std::vector<GenerateRequest> reqs;
  std::vector<std::string> label;
  for (int i = 0; i < 4; ++i) {
    const BranchId b = i == 0 ? root : e.fork(root);
    if (i > 0) owned["branch " + std::to_string(i)] = b;
    reqs.push_back(request(b, 100 * t + i, 10 + 5 * i));
    label.push_back("first " + std::to_string(i));
  }
  const auto out = e.generate(reqs, [&](size_t index, const Completion&) -> std::vector<GenerateRequest> {
    if (index >= 2) return {};
    const BranchId b = reqs[index].branch;
    const BranchId child = e.fork(b);
    owned["branch of fork " + std::to_string(index)] = child;
    label.push_back("again " + std::to_string(index));
    label.push_back("fork " + std::to_string(index));
    return {request(b, 1000 + 10 * t + index, 8), request(child, 2000 + 10 * t + index, 12)};
  });
  Results r;
  for (size_t i = 0; i < out.size(); ++i) r[label.at(i)] = out[i].tokens;
  for (const auto& [name, b] : owned) r[name] = e.branch_tokens(b);
  for (const auto& [name, b] : owned) e.free_branch(b);
  return r;
}

constexpr int kForkAndContinueBranches = 6;  // 4 forks + 2 more: the peak of one piece of work

TEST(BatchingEngine, ConcurrentClientsMatchSequentialRunsAndShareDecodeSteps) {
  PONDER_REQUIRE_FILE(stories_model());
  constexpr int kClients = 4;
  auto plain = open(kForkAndContinueBranches);
  std::vector<Results> expected;
  for (int t = 0; t < kClients; ++t) expected.push_back(fork_and_continue(*plain, t));
  const int64_t sequential_decodes = plain->stats().decode_calls;

  BatchingEngine batching(open(kClients * kForkAndContinueBranches));
  std::latch go(kClients);
  std::vector<std::function<std::pair<Results, EngineStats>()>> work;
  for (int t = 0; t < kClients; ++t) {
    work.push_back([&, t] {
      auto client = batching.client();
      go.arrive_and_wait();
      Results r = fork_and_continue(*client, t);
      return std::make_pair(std::move(r), client->stats());
    });
  }
  const auto got = run_threads(std::move(work));
  int64_t generated = 0;
  for (int t = 0; t < kClients; ++t) {
    EXPECT_EQ(got[t].first, expected[t]) << "client " << t;
    int64_t tokens = 0;
    for (const auto& [label, toks] : got[t].first) {
      if (label.rfind("branch", 0) != 0) tokens += static_cast<int64_t>(toks.size());
    }
    EXPECT_EQ(got[t].second.generated_tokens, tokens) << "a client counts its own tokens";
    generated += tokens;
  }
  const EngineStats shared = batching.stats();
  EXPECT_EQ(shared.generated_tokens, generated);
  EXPECT_EQ(shared.generated_tokens, plain->stats().generated_tokens);
  // Merged steps: fewer decode calls than the same work one after another (each alone takes
  // ~35 steps; four overlapping ones share most of theirs).
  EXPECT_LT(shared.decode_calls, sequential_decodes) << "sequential " << sequential_decodes;
  auto client = batching.client();
  EXPECT_EQ(client->free_slots(), kClients * kForkAndContinueBranches);
}

// Appends text to a branch piece by piece, reading two probabilities after each piece.
std::vector<std::vector<std::vector<float>>> probe_pieces(Engine& e, int t) {
  const BranchId b = e.new_branch(e.tokenize(kPrompts[t % 4], true, false));
  const std::vector<Token> candidates = e.tokenize(" the cat", false, false);
  std::vector<std::vector<std::vector<float>>> out;
  for (int k = 0; k < 8; ++k) {
    const std::vector<Token> piece = e.tokenize(k % 2 ? " and the cat ran" : " to the big park.", false, false);
    const auto r = e.evaluate({{b, piece, {0, static_cast<int32_t>(piece.size()) - 1}, candidates}});
    out.push_back(r.at(0).probs);
  }
  e.free_branch(b);
  return out;
}

TEST(BatchingEngine, EvaluateFromThreadsEqualsSequentialAndIsMerged) {
  PONDER_REQUIRE_FILE(stories_model());
  constexpr int kClients = 4;
  auto plain = open(1);
  std::vector<std::vector<std::vector<std::vector<float>>>> expected;
  for (int t = 0; t < kClients; ++t) expected.push_back(probe_pieces(*plain, t));
  const int64_t sequential_decodes = plain->stats().decode_calls;

  BatchingEngine batching(open(kClients));
  std::latch go(kClients);
  std::vector<std::function<std::vector<std::vector<std::vector<float>>>()>> work;
  for (int t = 0; t < kClients; ++t) {
    work.push_back([&, t] {
      auto client = batching.client();
      go.arrive_and_wait();
      return probe_pieces(*client, t);
    });
  }
  const auto got = run_threads(std::move(work));
  for (int t = 0; t < kClients; ++t) {
    ASSERT_EQ(got[t].size(), expected[t].size());
    for (size_t k = 0; k < got[t].size(); ++k) {
      ASSERT_EQ(got[t][k].size(), expected[t][k].size());
      for (size_t p = 0; p < got[t][k].size(); ++p) {
        for (size_t c = 0; c < got[t][k][p].size(); ++c) {
          EXPECT_NEAR(got[t][k][p][c], expected[t][k][p][c], 1e-5) << "client " << t << " call " << k;
        }
      }
    }
  }
  // One decode call per evaluate when alone; waiting calls of several clients share one.
  EXPECT_LT(batching.stats().decode_calls, sequential_decodes);
}

// Each client's errors are its own: the others' work completes as it would alone.
TEST(BatchingEngine, AnErrorReachesOnlyTheClientWhoseWorkFailed) {
  PONDER_REQUIRE_FILE(stories_model());
  auto plain = open(kForkAndContinueBranches);
  const Results expected0 = fork_and_continue(*plain, 0);
  const Results expected1 = fork_and_continue(*plain, 1);
  const auto expected_probs = probe_pieces(*plain, 2);

  BatchingEngine batching(open(4 * kForkAndContinueBranches));
  std::latch go(5);
  std::vector<std::function<std::string()>> work;
  // Generating from an empty branch (refused by the worker, for this client only).
  work.push_back([&] {
    auto c = batching.client();
    go.arrive_and_wait();
    const BranchId empty = c->new_branch({});
    const BranchId full = c->new_branch(c->tokenize("Once", true, false));
    std::string what;
    try {
      c->generate({request(full, 1, 6), request(empty, 2, 6)});
    } catch (const EngineError& e) {
      what = e.what();
    }
    // The client is usable again, its branches intact.
    const auto again = c->generate({request(full, 1, 6, false)});
    if (again.at(0).tokens.size() != 6) what += " / then wrong";
    return what;
  });
  // on_finish throws: the call throws once its other requests are done; nothing else is hurt.
  work.push_back([&] {
    auto c = batching.client();
    go.arrive_and_wait();
    const BranchId a = c->new_branch(c->tokenize("Once", true, false));
    const BranchId b = c->fork(a);
    std::string what;
    try {
      c->generate({request(a, 3, 4), request(b, 4, 30, false)},
                  [](size_t, const Completion&) -> std::vector<GenerateRequest> { throw std::runtime_error("boom"); });
    } catch (const std::runtime_error& e) {
      what = e.what();
    }
    // b ran to its end before the call returned, and may be worked on again.
    if (c->branch_tokens(b).size() != c->tokenize("Once", true, false).size() + 30) what += " / b cut short";
    c->free_branch(a);
    c->free_branch(b);
    return what;
  });
  // A bad evaluate request (probe outside the tokens), and another client's branch id.
  work.push_back([&] {
    auto c = batching.client();
    go.arrive_and_wait();
    const BranchId b = c->new_branch(c->tokenize("Once", true, false));
    std::string what;
    for (int k = 0; k < 8; ++k) {
      try {
        c->evaluate({{b, {c->eos_token()}, {3}, {1}}});
      } catch (const EngineError& e) {
        what = e.what();
      }
    }
    try {
      c->fork(b + 1000);
      what += " / foreign branch accepted";
    } catch (const EngineError&) {
    }
    const auto ok = c->evaluate({{b, {c->eos_token()}, {0}, {1}}});
    if (ok.at(0).probs.size() != 1) what += " / then wrong";
    return what;
  });
  // Meanwhile, good work on two more clients.
  work.push_back([&] {
    auto c = batching.client();
    auto d = batching.client();
    go.arrive_and_wait();
    std::string what;
    if (fork_and_continue(*c, 0) != expected0) what += "client 0 differs ";
    if (fork_and_continue(*d, 1) != expected1) what += "client 1 differs ";
    return what;
  });
  // Good evaluations beside the bad ones (merged with them, a call is retried alone).
  work.push_back([&] {
    auto c = batching.client();
    go.arrive_and_wait();
    const auto probs = probe_pieces(*c, 2);
    for (size_t k = 0; k < probs.size(); ++k) {
      for (size_t p = 0; p < probs[k].size(); ++p) {
        for (size_t j = 0; j < probs[k][p].size(); ++j) {
          if (std::abs(probs[k][p][j] - expected_probs[k][p][j]) > 1e-5f) return std::string("evaluate differs");
        }
      }
    }
    return std::string();
  });
  const auto got = run_threads(std::move(work));
  EXPECT_EQ(got[0], "cannot generate from an empty branch");
  EXPECT_EQ(got[1], "boom");
  EXPECT_EQ(got[2], "probe position outside the evaluated tokens");
  EXPECT_EQ(got[3], "");
  EXPECT_EQ(got[4], "");
}

TEST(BatchingEngine, ClientsOwnTheirBranchesAndFreeThemWhenGone) {
  PONDER_REQUIRE_FILE(stories_model());
  BatchingEngine batching(open(4));
  auto a = batching.client();
  const BranchId mine = a->new_branch(a->tokenize("Once", true, false));
  a->fork(mine);
  {
    auto b = batching.client();
    EXPECT_EQ(b->free_slots(), 2);  // shared by all clients
    EXPECT_THROW(b->append(mine, {1}), EngineError);
    EXPECT_THROW(b->branch_tokens(mine), EngineError);
    EXPECT_THROW(b->generate({request(mine, 1, 2)}), EngineError);
    b->new_branch({1, 2});
    EXPECT_EQ(b->free_slots(), 1);
  }
  EXPECT_EQ(a->free_slots(), 2);  // b's branch went with b
  // A request added by on_finish may not name a branch that is still generating.
  const BranchId other = a->fork(mine);
  EXPECT_THROW(a->generate({request(mine, 1, 2), request(other, 2, 8)},
                           [&](size_t index, const Completion&) -> std::vector<GenerateRequest> {
                             if (index == 0) return {request(other, 3, 2)};
                             return {};
                           }),
               EngineError);
  a.reset();
  auto c = batching.client();
  EXPECT_EQ(c->free_slots(), 4);
}

SearchOptions search_options(Strategy s, uint64_t seed) {
  SearchOptions o;
  o.strategy = s;
  o.n = 4;
  o.beam_width = 2;
  o.max_tokens = 40;
  o.max_rounds = 6;
  o.step_delimiter = ".";  // stories260K writes sentences
  o.seed = seed;
  return o;
}

// A search depends only on its seeds (DVTS numbers a sample's seed by its subtree, round and
// candidate, not by when it was asked for), so on a client it gives exactly what it gives alone.
// DVTS lists solutions in the order its subtrees finished, which batching may change: compared
// in text order.
void expect_same_search(const SearchResult& alone, const SearchResult& client, const std::string& what,
                        double score_tolerance, bool any_order) {
  ASSERT_FALSE(alone.solutions.empty()) << what;
  ASSERT_EQ(client.solutions.size(), alone.solutions.size()) << what;
  auto ordered = [any_order](std::vector<Solution> solutions) {
    if (any_order) {
      std::stable_sort(solutions.begin(), solutions.end(),
                       [](const Solution& x, const Solution& y) { return x.text < y.text; });
    }
    return solutions;
  };
  const std::vector<Solution> alone_solutions = ordered(alone.solutions);
  const std::vector<Solution> client_solutions = ordered(client.solutions);
  for (size_t i = 0; i < alone_solutions.size(); ++i) {
    const Solution& a = alone_solutions[i];
    const Solution& b = client_solutions[i];
    EXPECT_EQ(b.text, a.text) << what << " solution " << i;
    ASSERT_EQ(b.step_scores.size(), a.step_scores.size()) << what << " solution " << i;
    for (size_t k = 0; k < a.step_scores.size(); ++k) {
      EXPECT_NEAR(b.step_scores[k], a.step_scores[k], score_tolerance) << what << " solution " << i;
    }
  }
  EXPECT_EQ(client.tree.size(), alone.tree.size()) << what;
  EXPECT_EQ(client.usage.rounds, alone.usage.rounds) << what;
  EXPECT_EQ(client.usage.completion_tokens, alone.usage.completion_tokens) << what;
  EXPECT_EQ(client.usage.verifier_tokens, alone.usage.verifier_tokens) << what;
}

// A search's usage counts its own tokens, not those of the searches beside it: exactly the tokens
// of the steps in its tree.
void expect_own_usage(const SearchResult& r, const std::string& what) {
  EXPECT_FALSE(r.solutions.empty()) << what;
  int64_t tokens = 0;
  for (const SearchNode& n : r.tree.nodes()) tokens += n.step_tokens;
  EXPECT_EQ(r.usage.completion_tokens, tokens) << what;
  for (const Solution& s : r.solutions) EXPECT_EQ(s.step_scores.size(), s.steps.size()) << what;
}

// Whole searches on four threads, sharing one engine, give what each gives alone.
TEST(BatchingEngine, SearchesOnClientsMatchSearchesAlone) {
  PONDER_REQUIRE_FILE(stories_model());
  const std::vector<SearchOptions> searches = {search_options(Strategy::kBeam, 11), search_options(Strategy::kMajority, 12),
                                               search_options(Strategy::kBeam, 13), search_options(Strategy::kDvts, 14)};
  auto search = [](Engine& e, const SearchOptions& o) {
    CheckerStepVerifier checker([](const std::string&, const std::vector<std::string>& steps) {
      return static_cast<double>(steps.back().size() % 7) / 7.0;
    });  // a verifier per search: verifiers are not thread-safe
    const SearchProblem p{"Once upon a time", e.tokenize("Once upon a time", true, false)};
    return run_search(e, {&checker, nullptr}, p, o, nullptr);
  };
  std::vector<SearchResult> alone;
  int32_t branches = 0;
  for (const auto& o : searches) {
    auto plain = open(branches_wanted(o));
    alone.push_back(search(*plain, o));
    branches += branches_wanted(o);
  }

  BatchingEngine batching(open(branches));
  std::latch go(static_cast<std::ptrdiff_t>(searches.size()));
  std::vector<std::function<SearchResult()>> work;
  for (const auto& o : searches) {
    work.push_back([&, o] {
      auto client = batching.client();
      go.arrive_and_wait();
      return search(*client, o);
    });
  }
  const auto together = run_threads(std::move(work));
  for (size_t s = 0; s < searches.size(); ++s) {
    const std::string what = std::string(to_string(searches[s].strategy)) + " search " + std::to_string(s);
    expect_same_search(alone[s], together[s], what, 0.0, searches[s].strategy == Strategy::kDvts);
    expect_own_usage(together[s], what);
  }
  auto client = batching.client();
  EXPECT_EQ(client->free_slots(), branches);
}

// The searches of an evaluation as they would run: generator and PRM each one BatchingEngine,
// every search thread with a client of each. DVTS scores a subtree's round with the PRM from
// inside on_finish, on the search's own thread, while the others' steps go on.
TEST(BatchingEngine, SearchesWithAPrmOnClientsMatchSearchesAlone) {
  PONDER_REQUIRE_FILE(stories_model());
  PONDER_REQUIRE_FILE(ponder::testing::test_model("prm-llama3-tiny.gguf"));
  auto open_prm = [](int branches) {
    LlamaEngineOptions o;
    o.model_path = ponder::testing::test_model("prm-llama3-tiny.gguf");
    o.max_branches = branches;
    o.n_ctx = branches * 1024;
    o.n_threads = 1;
    o.reproducible = true;
    return open_llama_engine(o);
  };
  std::vector<SearchOptions> searches = {search_options(Strategy::kBeam, 21), search_options(Strategy::kBestOfN, 22),
                                         search_options(Strategy::kDvts, 23)};
  for (auto& o : searches) o.max_tokens = 24;
  constexpr int kPrmBranches = 5;  // a state per live branch, and the root's
  auto search = [](Engine& gen, Engine& prm_engine, const SearchOptions& o) {
    ProcessRewardModel prm(prm_engine, PrmFormat::rlhflow());
    const SearchProblem p{"Once upon a time", gen.tokenize("Once upon a time", true, false)};
    return run_search(gen, {&prm, nullptr}, p, o, nullptr);
  };
  std::vector<SearchResult> alone;
  int32_t branches = 0;
  {
    auto prm = open_prm(kPrmBranches);  // slow to open (a 128K vocabulary): one for all
    for (const auto& o : searches) {
      auto gen = open(branches_wanted(o));
      alone.push_back(search(*gen, *prm, o));
      branches += branches_wanted(o);
    }
  }

  const int prm_branches = kPrmBranches * static_cast<int>(searches.size());
  BatchingEngine generators(open(branches));
  BatchingEngine prms(open_prm(prm_branches));
  std::latch go(static_cast<std::ptrdiff_t>(searches.size()));
  std::vector<std::function<SearchResult()>> work;
  for (const auto& o : searches) {
    work.push_back([&, o] {
      auto gen = generators.client();
      auto prm = prms.client();
      go.arrive_and_wait();
      return search(*gen, *prm, o);
    });
  }
  const auto together = run_threads(std::move(work));
  for (size_t s = 0; s < searches.size(); ++s) {
    const std::string what = std::string(to_string(searches[s].strategy)) + " search " + std::to_string(s);
    // PRM scores: merged evaluate calls put other rows beside a request's (~1e-7 apart).
    expect_same_search(alone[s], together[s], what, 1e-5, searches[s].strategy == Strategy::kDvts);
    expect_own_usage(together[s], what);
  }
  EXPECT_EQ(generators.client()->free_slots(), branches);
  EXPECT_EQ(prms.client()->free_slots(), prm_branches);
}

// --- the LlamaEngine hook ---------------------------------------------------------------------------

// Work admitted between steps, and evaluate() run there, leave every completion as the plain
// generate() gives it; a completion is handed over once, through on_finish.
TEST(LlamaEngineStreaming, BetweenStepsAdmitsWorkWithoutChangingResults) {
  PONDER_REQUIRE_FILE(stories_model());
  auto engine = open(8);
  const auto prompt = engine->tokenize("Once upon a time", true, false);
  const std::vector<Token> piece = engine->tokenize(" the dog", false, false);
  ASSERT_GE(piece.size(), 2u);

  auto plain_run = [&] {
    const BranchId a = engine->new_branch(prompt);
    const BranchId b = engine->fork(a);
    const BranchId c = engine->new_branch(prompt);
    const auto ab = engine->generate({request(a, 1, 20), request(b, 2, 6)});
    const auto late = engine->generate({request(c, 3, 10)});
    const BranchId d = engine->new_branch(prompt);
    const auto probs = engine->evaluate({{d, piece, {1}, {5, 6}}}).at(0).probs;
    for (BranchId x : {a, b, c, d}) engine->free_branch(x);
    return std::make_tuple(ab[0].tokens, ab[1].tokens, late[0].tokens, probs);
  };
  const auto [a_tokens, b_tokens, c_tokens, probs] = plain_run();

  const BranchId a = engine->new_branch(prompt);
  const BranchId b = engine->fork(a);
  std::map<size_t, std::vector<Token>> finished;
  std::vector<std::vector<float>> streamed_probs;
  int steps = 0;
  LlamaEngine::StepHooks hooks;
  hooks.on_finish = [&](size_t index, Completion&& done) {
    EXPECT_FALSE(finished.count(index));
    finished[index] = std::move(done.tokens);
    return std::vector<GenerateRequest>{};
  };
  hooks.pending = [&] { return ++steps == 4; };
  std::vector<BranchId> made;
  hooks.between_steps = [&] {
    const BranchId d = engine->new_branch(prompt);
    streamed_probs = engine->evaluate({{d, piece, {1}, {5, 6}}}).at(0).probs;
    const BranchId c = engine->new_branch(prompt);
    made = {c, d};
    return std::vector<GenerateRequest>{request(c, 3, 10)};
  };
  engine->generate_streaming({request(a, 1, 20), request(b, 2, 6)}, hooks);
  EXPECT_EQ(steps, 20);
  ASSERT_EQ(finished.size(), 3u);
  EXPECT_EQ(finished[0], a_tokens);
  EXPECT_EQ(finished[1], b_tokens);
  EXPECT_EQ(finished[2], c_tokens);
  ASSERT_EQ(streamed_probs.size(), 1u);
  EXPECT_NEAR(streamed_probs[0][0], probs[0][0], 1e-6);
  EXPECT_NEAR(streamed_probs[0][1], probs[0][1], 1e-6);
  for (BranchId x : {a, b, made[0], made[1]}) engine->free_branch(x);
  EXPECT_EQ(engine->free_slots(), 8);
}

// A request added by on_finish that asks for no tokens is reported through on_finish too.
TEST(LlamaEngineStreaming, ZeroTokenRequestAddedByOnFinishIsReported) {
  PONDER_REQUIRE_FILE(stories_model());
  auto engine = open(2);
  const BranchId a = engine->new_branch(engine->tokenize("Once", true, false));
  std::vector<size_t> reported;
  const auto out = engine->generate({request(a, 1, 3)}, [&](size_t index, const Completion&) {
    reported.push_back(index);
    return index == 0 ? std::vector<GenerateRequest>{request(a, 2, 0)} : std::vector<GenerateRequest>{};
  });
  ASSERT_EQ(out.size(), 2u);
  EXPECT_TRUE(out[1].tokens.empty());
  EXPECT_EQ(reported, (std::vector<size_t>{0, 1}));
}

}  // namespace
}  // namespace ponder
