// The remote engine against real llama-server processes (built from the same llama.cpp): what it
// gives must be what the in-process engine gives on the same model.
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <string>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "engine/remote_engine.h"
#include "fake_vllm.h"
#include "llama_server.h"
#include "run_command.h"
#include "serve_process.h"
#include "sqlite_rows.h"
#include "search/search.h"
#include "test_engines.h"
#include "test_paths.h"
#include "verify/prm.h"

namespace ponder {
namespace {

using namespace ponder::testing;

// Two stories260K servers and a PRM server, shared by the suite's tests and started when one
// first needs them (ctest runs each test in a process of its own).
class Remote : public ::testing::Test {
 protected:
  static void TearDownTestSuite() {
    for (auto& s : servers_) s.reset();
  }
  void SetUp() override {
    PONDER_REQUIRE_FILE(llama_server_binary());
    PONDER_REQUIRE_FILE(stories_model());
    PONDER_REQUIRE_FILE(test_model("prm-llama3-tiny.gguf"));
  }

  static LlamaServer* a() { return server(0, stories_model(), 1024); }
  static LlamaServer* b() { return server(1, stories_model(), 1024); }
  static LlamaServer* prm() { return server(2, test_model("prm-llama3-tiny.gguf"), 2048); }

  static std::unique_ptr<RemoteEngine> remote(std::vector<std::string> urls) {
    RemoteOptions o;
    o.endpoints = std::move(urls);
    o.max_inflight_per_endpoint = 4;
    o.retries = 1;
    o.retry_backoff_s = 0.05;
    return open_remote_engine(o);
  }

 private:
  static LlamaServer* server(int i, const std::string& model, int ctx_per_slot) {
    if (!servers_[i]) servers_[i] = std::make_unique<LlamaServer>(model, 4, ctx_per_slot);
    return servers_[i].get();
  }
  static std::unique_ptr<LlamaServer> servers_[3];
};
std::unique_ptr<LlamaServer> Remote::servers_[3];

const char* kPrompt = "Once upon a time, there was a little girl";

GenerateRequest greedy(BranchId b, int max_tokens) {
  GenerateRequest r;
  r.branch = b;
  r.sampling.temperature = 0.0f;
  r.stop.max_tokens = max_tokens;
  return r;
}

void expect_same(const Completion& local, const Completion& remote, const std::string& what) {
  EXPECT_EQ(remote.tokens, local.tokens) << what;
  EXPECT_EQ(remote.text, local.text) << what;
  EXPECT_EQ(remote.finish_reason, local.finish_reason) << what;
  ASSERT_EQ(remote.steps.size(), local.steps.size()) << what;
  for (size_t i = 0; i < local.steps.size(); ++i) {
    EXPECT_NEAR(remote.steps[i].logprob, local.steps[i].logprob, 1e-3) << what << " step " << i;
    ASSERT_EQ(remote.steps[i].top.size(), local.steps[i].top.size()) << what << " step " << i;
    for (size_t k = 0; k < local.steps[i].top.size(); ++k) {
      EXPECT_EQ(remote.steps[i].top[k].token, local.steps[i].top[k].token) << what << " step " << i;
      EXPECT_NEAR(remote.steps[i].top[k].logprob, local.steps[i].top[k].logprob, 1e-3) << what << " step " << i;
    }
  }
  EXPECT_NEAR(remote.logprob, local.logprob, 1e-2) << what;
}

// Runs the same requests (built by make, for branches forked from one prompt) on both engines;
// returns the remote completions.
template <typename Make>
std::vector<Completion> compare_generation(Engine& local, Engine& remote, int n, Make make, const std::string& what) {
  std::vector<Completion> outs[2];
  Engine* engines[2] = {&local, &remote};
  for (int e = 0; e < 2; ++e) {
    const BranchId root = engines[e]->new_branch(engines[e]->tokenize(kPrompt, true, false));
    std::vector<GenerateRequest> reqs;
    for (int i = 0; i < n; ++i) reqs.push_back(make(i == 0 ? root : engines[e]->fork(root), i));
    outs[e] = engines[e]->generate(reqs);
    for (const auto& r : reqs) {
      if (e == 1) {
        // The branch holds its prompt and then exactly the completion's tokens.
        std::vector<Token> expected = engines[e]->tokenize(kPrompt, true, false);
        const auto& c = outs[e][&r - reqs.data()];
        expected.insert(expected.end(), c.tokens.begin(), c.tokens.end());
        EXPECT_EQ(engines[e]->branch_tokens(r.branch), expected) << what;
      }
      engines[e]->free_branch(r.branch);
    }
  }
  EXPECT_EQ(outs[1].size(), outs[0].size());
  for (size_t i = 0; i < std::min(outs[0].size(), outs[1].size()); ++i) {
    expect_same(outs[0][i], outs[1][i], what + " #" + std::to_string(i));
  }
  return outs[1];
}

TEST_F(Remote, TextCallsMatchInProcess) {
  auto local = open_stories_engine(4, 1024);
  auto r = remote({a()->url()});
  EXPECT_EQ(r->vocab_size(), local->vocab_size());
  EXPECT_EQ(r->eos_token(), local->eos_token());
  EXPECT_EQ(r->has_chat_template(), local->has_chat_template());
  EXPECT_THROW(r->apply_chat_template({{"user", "hi"}}, true), EngineError);
  for (const char* text : {kPrompt, "Lily said: \"Héllo — 日本\" </s>", ""}) {
    for (bool special : {false, true}) {
      EXPECT_EQ(r->tokenize(text, special, special), local->tokenize(text, special, special)) << text;
    }
  }
  for (Token t = 0; t < local->vocab_size(); ++t) {
    ASSERT_EQ(r->token_to_piece(t), local->token_to_piece(t)) << "token " << t;
    ASSERT_EQ(r->is_end_of_generation(t), local->is_end_of_generation(t)) << "token " << t;
  }
  EXPECT_EQ(r->context_size(), 1024);
}

TEST_F(Remote, ChatTemplateMatchesInProcess) {
  LlamaEngineOptions o;
  o.model_path = test_model("prm-llama3-tiny.gguf");
  o.vocab_only = true;
  auto local = open_llama_engine(o);
  auto r = remote({prm()->url()});
  ASSERT_TRUE(r->has_chat_template());
  const std::vector<ChatMessage> chat = {{"system", "Be brief."}, {"user", "2+2?"}, {"assistant", "4, since"}};
  EXPECT_EQ(r->apply_chat_template({chat[0], chat[1]}, true), local->apply_chat_template({chat[0], chat[1]}, true));
  EXPECT_EQ(r->apply_chat_template(chat, false, true), local->apply_chat_template(chat, false, true));
  EXPECT_THROW(r->apply_chat_template({chat[0]}, false, true), EngineError);
}

// Greedy generation, with and without top entries and with settings that cannot change a greedy
// pick: the in-process engine's completions.
void expect_greedy_matches(Engine& local, RemoteEngine& r) {
  compare_generation(local, r, 4, [](BranchId b, int i) {
    GenerateRequest g = greedy(b, 20 + 10 * i);
    g.sampling.top_logprobs = i % 2 == 0 ? 3 : 0;
    return g;
  }, "greedy");
  // Sampling settings that cannot change a greedy pick, and a stop at end-of-generation off.
  compare_generation(local, r, 2, [](BranchId b, int i) {
    GenerateRequest g = greedy(b, 40);
    g.sampling.top_k = 5;
    g.sampling.min_p = 0.01f;
    g.stop.stop_at_eos = i == 0;
    return g;
  }, "greedy, settings");
  const EngineStats s = r.stats();
  EXPECT_GT(s.prompt_tokens, 0);
  EXPECT_GE(s.generated_tokens, 20 + 30 + 40 + 50);
  EXPECT_GT(s.decode_calls, 0);
}

TEST_F(Remote, GreedyGenerationMatchesInProcess) {
  auto local = open_stories_engine(8, 4096);
  auto r = remote({a()->url()});
  expect_greedy_matches(*local, *r);
}

// Each stop rule (strings, inside and across tokens, with the string kept, a predicate, no
// tokens at all) ends a completion where the in-process engine ends it.
void expect_stops_match(Engine& local, Engine& r) {
  const auto out = compare_generation(local, r, 6, [](BranchId b, int i) {
    GenerateRequest g = greedy(b, 60);
    switch (i) {
      case 0: g.stop.stop = {"."}; break;
      case 1: g.stop.stop = {"."}; g.stop.include_stop_in_text = true; break;
      case 2: g.stop.stop = {"e w", ", "}; break;  // ends inside a token / across tokens
      case 3: g.stop.stop = {"zzzz"}; g.stop.max_tokens = 7; break;
      case 4: g.stop.max_tokens = 0; break;
      case 5:
        // A predicate: cut before the first comma; tokens after it are dropped.
        g.stop.stop_when = [](std::string_view text) -> std::optional<size_t> {
          const size_t at = text.find(',');
          return at == std::string_view::npos ? std::nullopt : std::optional<size_t>(at);
        };
        break;
    }
    return g;
  }, "stops");
  // Each rule was met (the comparison above is only as strong as the cases it covers).
  ASSERT_EQ(out.size(), 6u);
  EXPECT_EQ(out[0].finish_reason, FinishReason::kStop);
  EXPECT_EQ(out[1].text.back(), '.');
  EXPECT_EQ(out[2].finish_reason, FinishReason::kStop);
  EXPECT_EQ(out[3].finish_reason, FinishReason::kLength);
  EXPECT_EQ(out[3].tokens.size(), 7u);
  EXPECT_TRUE(out[4].tokens.empty());
  EXPECT_EQ(out[5].finish_reason, FinishReason::kStop);
  EXPECT_EQ(out[5].text.find(','), std::string::npos);
}

TEST_F(Remote, StopSemanticsMatchInProcess) {
  auto local = open_stories_engine(8, 4096);
  auto r = remote({a()->url()});
  expect_stops_match(*local, *r);
}

// Continuous batching: each finished request forks its branch into two more, to a depth of
// three; the whole tree must equal the in-process engine's.
TEST_F(Remote, ContinuousBatchingMatchesInProcess) {
  auto local = open_stories_engine(32, 8192);
  auto r = remote({a()->url(), b()->url()});
  std::vector<std::vector<std::string>> texts(2);
  Engine* engines[2] = {local.get(), r.get()};
  for (int e = 0; e < 2; ++e) {
    Engine& eng = *engines[e];
    std::vector<BranchId> branches;
    std::vector<int> depth;
    const BranchId root = eng.new_branch(eng.tokenize(kPrompt, true, false));
    branches.push_back(root);
    depth.push_back(0);
    auto step = [](BranchId b, int d) { return greedy(b, 4 + d); };
    const auto out = eng.generate({step(root, 0)}, [&](size_t i, const Completion&) {
      std::vector<GenerateRequest> more;
      if (depth[i] >= 3) return more;
      for (int k = 0; k < 2; ++k) {
        const BranchId child = eng.fork(branches[i]);
        eng.append(child, {static_cast<Token>(300 + k)});  // make the children differ
        branches.push_back(child);
        depth.push_back(depth[i] + 1);
        more.push_back(step(child, depth[i] + 1));
      }
      return more;
    });
    ASSERT_EQ(out.size(), 15u);
    for (size_t i = 0; i < out.size(); ++i) texts[e].push_back(eng.detokenize(eng.branch_tokens(branches[i])));
    for (BranchId b : branches) eng.free_branch(b);
    // The order of requests that finish together differs between engines (branch ids here,
    // arrival remotely), and with it the indices: compare the trees as sets of texts.
    std::sort(texts[e].begin(), texts[e].end());
  }
  EXPECT_EQ(texts[1], texts[0]);
  // Both endpoints took part.
  for (const EndpointStats& s : r->endpoint_stats()) EXPECT_GT(s.requests, 0) << s.url;
}

// Probabilities at several positions of two branches, for candidates in and outside the top
// entries a probe lists (`r` lists 2): the in-process engine's.
void expect_evaluate_matches(Engine& local, Engine& r) {
  std::vector<EvaluateResult> res[2];
  Engine* engines[2] = {&local, &r};
  for (int e = 0; e < 2; ++e) {
    const BranchId b1 = engines[e]->new_branch(engines[e]->tokenize(kPrompt, true, false));
    const BranchId b2 = engines[e]->fork(b1);
    res[e] = engines[e]->evaluate({{b1, engines[e]->tokenize(" who liked to play.", false, false), {0, 2, 4}, {13, 269, 300, 2}},
                                   {b2, {419, 261}, {1, 0}, {5}}});
    // The tokens were appended.
    EXPECT_EQ(engines[e]->branch_tokens(b2).size(), engines[e]->tokenize(kPrompt, true, false).size() + 2);
    engines[e]->free_branch(b1);
    engines[e]->free_branch(b2);
  }
  ASSERT_EQ(res[1].size(), 2u);
  for (size_t q = 0; q < 2; ++q) {
    ASSERT_EQ(res[1][q].probs.size(), res[0][q].probs.size());
    for (size_t i = 0; i < res[0][q].probs.size(); ++i) {
      for (size_t j = 0; j < res[0][q].probs[i].size(); ++j) {
        const float want = res[0][q].probs[i][j];
        EXPECT_NEAR(res[1][q].probs[i][j], want, 1e-4 + 1e-3 * want) << q << " " << i << " " << j;
      }
    }
  }
  EXPECT_THROW(r.evaluate({{r.new_branch({1}), {5}, {1}, {5}}}), EngineError);  // position outside
}

TEST_F(Remote, EvaluateMatchesInProcess) {
  auto local = open_stories_engine(8, 4096);
  RemoteOptions o;
  o.endpoints = {a()->url()};
  o.probe_top_k = 2;  // most candidates below are outside: read by a forced probe
  auto r = open_remote_engine(o);
  expect_evaluate_matches(*local, *r);
}

// Greedy beam search and DVTS with a PRM on `remote_prm` and the generator on `remote_gen`
// (stories260K): the same solutions and step scores as in-process.
void expect_prm_search_matches(RemoteEngine& remote_gen, Engine& remote_prm) {
  auto local_gen = open_stories_engine(8, 8 * 512);
  LlamaEngineOptions po;
  po.model_path = test_model("prm-llama3-tiny.gguf");
  po.max_branches = 9;
  po.n_ctx = 9 * 1024;
  po.n_threads = 1;
  po.reproducible = true;
  auto local_prm = open_llama_engine(po);
  for (Strategy s : {Strategy::kBeam, Strategy::kDvts}) {
    SearchOptions o;
    o.strategy = s;
    o.n = 4;
    o.beam_width = 2;
    o.max_tokens = 48;
    o.step_delimiter = ".";
    o.temperature = 0.0f;
    o.seed = 3;
    SearchResult results[2];
    Engine* gens[2] = {local_gen.get(), &remote_gen};
    Engine* prms[2] = {local_prm.get(), &remote_prm};
    for (int e = 0; e < 2; ++e) {
      ProcessRewardModel prm(*prms[e], PrmFormat::rlhflow());
      const SearchProblem p{kPrompt, gens[e]->tokenize(kPrompt, true, false)};
      results[e] = run_search(*gens[e], {&prm, nullptr}, p, o, nullptr);
    }
    ASSERT_FALSE(results[1].solutions.empty()) << to_string(s);
    ASSERT_EQ(results[1].solutions.size(), results[0].solutions.size()) << to_string(s);
    for (size_t i = 0; i < results[0].solutions.size(); ++i) {
      const Solution& want = results[0].solutions[i];
      const Solution& got = results[1].solutions[i];
      EXPECT_EQ(got.text, want.text) << to_string(s);
      ASSERT_EQ(got.step_scores.size(), want.step_scores.size()) << to_string(s);
      for (size_t k = 0; k < want.step_scores.size(); ++k) {
        EXPECT_NEAR(got.step_scores[k], want.step_scores[k], 1e-3) << to_string(s) << " step " << k;
      }
    }
  }
  EXPECT_EQ(remote_gen.free_slots(), 4096);
  for (const EndpointStats& s : remote_gen.endpoint_stats()) EXPECT_GT(s.requests, 0) << s.url;
}

// Greedy beam search with a PRM, both served remotely (the generator by two servers): the same
// solutions and step scores as in-process.
TEST_F(Remote, BeamSearchWithRemotePrmMatchesInProcess) {
  auto remote_gen = remote({a()->url(), b()->url()});
  auto remote_prm = remote({prm()->url()});
  expect_prm_search_matches(*remote_gen, *remote_prm);
}

// Sampling hot (temperature 3) from stories260K: its byte tokens (<0xE2> and the like) end inside
// UTF-8 characters, and llama-server streams no id and reports no probability for such a token.
// The engine must still return every id, and each step's log-probability must be the model's
// (read in-process).
TEST_F(Remote, SampledIdsAndLogprobsAreExactAcrossSplitCharacters) {
  auto local = open_stories_engine(4, 4096);
  auto r = remote({a()->url()});
  const std::vector<Token> prompt = r->tokenize(kPrompt, true, false);
  const BranchId root = r->new_branch(prompt);
  std::vector<GenerateRequest> reqs;
  for (int i = 0; i < 4; ++i) {
    GenerateRequest g;
    g.branch = i == 0 ? root : r->fork(root);
    g.sampling.temperature = 3.0f;
    g.sampling.seed = 100 + i;
    g.sampling.top_logprobs = 2;
    g.stop.max_tokens = 40;
    g.stop.stop = {"\n\n"};
    reqs.push_back(g);
  }
  const auto out = r->generate(reqs);
  int split = 0;  // tokens after which the text ends inside a character
  for (size_t i = 0; i < out.size(); ++i) {
    const Completion& c = out[i];
    ASSERT_FALSE(c.tokens.empty());
    std::vector<Token> expected = prompt;
    expected.insert(expected.end(), c.tokens.begin(), c.tokens.end());
    EXPECT_EQ(r->branch_tokens(reqs[i].branch), expected);
    // Each step's log-probability and top entries, read in-process at its position.
    const BranchId b = local->new_branch(std::vector<Token>(prompt.begin(), prompt.end() - 1));
    std::vector<Token> fed = {prompt.back()};
    fed.insert(fed.end(), c.tokens.begin(), c.tokens.end() - 1);
    std::vector<int32_t> positions;
    for (size_t k = 0; k < fed.size(); ++k) positions.push_back(static_cast<int32_t>(k));
    std::vector<Token> all(static_cast<size_t>(local->vocab_size()));
    for (size_t t = 0; t < all.size(); ++t) all[t] = static_cast<Token>(t);
    const auto probs = local->evaluate({{b, fed, positions, all}}).at(0).probs;
    std::string text;
    for (size_t k = 0; k < c.tokens.size(); ++k) {
      EXPECT_NEAR(c.steps[k].logprob, std::log(probs[k][c.tokens[k]]), 1e-3) << "completion " << i << " step " << k;
      ASSERT_EQ(c.steps[k].top.size(), 2u);
      const auto best = std::max_element(probs[k].begin(), probs[k].end()) - probs[k].begin();
      EXPECT_EQ(c.steps[k].top[0].token, best) << "completion " << i << " step " << k;
      text += r->token_to_piece(c.tokens[k]);
      const unsigned char last = static_cast<unsigned char>(text.back());
      if (last >= 0xC0 || (last & 0xC0) == 0x80) ++split;
    }
    local->free_branch(b);
  }
  EXPECT_GT(split, 0) << "no token ended inside a character: the case this test is for did not occur";
}

TEST_F(Remote, CancelFlagFinishesWithCancelled) {
  auto r = remote({a()->url()});
  std::atomic<bool> cancel{true};
  GenerateRequest g = greedy(r->new_branch(r->tokenize(kPrompt, true, false)), 50);
  g.stop.cancel = &cancel;
  const Completion c = r->generate({g}).at(0);
  EXPECT_EQ(c.finish_reason, FinishReason::kCancelled);
  EXPECT_TRUE(c.tokens.empty());

  // Set mid-generation (when a short request finishes), it ends a long one where it is: the
  // branch holds what was generated until then.
  std::atomic<bool> later{false};
  const std::vector<Token> prompt = r->tokenize(kPrompt, true, false);
  GenerateRequest quick = greedy(r->new_branch(prompt), 3);
  GenerateRequest slow = greedy(r->new_branch(prompt), 900);
  slow.stop.stop_at_eos = false;
  slow.stop.cancel = &later;
  const auto out = r->generate({quick, slow}, [&](size_t i, const Completion&) {
    if (i == 0) later = true;
    return std::vector<GenerateRequest>{};
  });
  EXPECT_EQ(out[1].finish_reason, FinishReason::kCancelled);
  EXPECT_LT(out[1].tokens.size(), 900u);
  EXPECT_EQ(r->branch_tokens(slow.branch).size(), prompt.size() + out[1].tokens.size());
}

TEST_F(Remote, RefusesWhatItCannotDo) {
  auto r = remote({a()->url()});
  GenerateRequest g = greedy(r->new_branch({1, 365}), 5);
  g.sampling.entropy = true;
  EXPECT_THROW(r->generate({g}), EngineError);
  EXPECT_THROW(r->new_branch({r->vocab_size()}), EngineError);
  EXPECT_THROW(r->generate({greedy(r->new_branch({}), 5)}), EngineError);
}

// Generation on `r` whose server `kill` ends as the first completion finishes: an EngineError
// that names `url`, soon, not a hang.
void expect_death_reported(RemoteEngine& r, const std::string& url, const std::function<void()>& kill) {
  const BranchId root = r.new_branch(r.tokenize(kPrompt, true, false));
  int finished = 0;
  const auto t0 = std::chrono::steady_clock::now();
  try {
    r.generate({greedy(root, 8)}, [&](size_t, const Completion&) {
      if (++finished == 1) kill();
      return std::vector<GenerateRequest>{greedy(r.fork(root), 8)};
    });
    FAIL() << "generation went on after its server died";
  } catch (const EngineError& e) {
    EXPECT_NE(std::string(e.what()).find(url), std::string::npos) << e.what();
  }
  EXPECT_EQ(finished, 1);
  EXPECT_LT(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(), 10.0);
}

TEST_F(Remote, KilledServerFailsFastNamingIt) {
  LlamaServer doomed(stories_model(), 2, 512);
  auto r = remote({doomed.url()});
  expect_death_reported(*r, doomed.url(), [&] { doomed.kill(); });
}

TEST(RemoteEngine, UnreachableEndpointFailsClearly) {
  RemoteOptions o;
  const std::string url = "http://127.0.0.1:" + std::to_string(free_port());
  o.endpoints = {url};
  o.retries = 1;
  o.retry_backoff_s = 0.05;
  for (RemoteApi api : {RemoteApi::kAuto, RemoteApi::kLlamaServer, RemoteApi::kVllm}) {
    o.api = api;
    try {
      open_remote_engine(o);
      FAIL() << "opened an engine on " << url;
    } catch (const EngineError& e) {
      EXPECT_NE(std::string(e.what()).find(url), std::string::npos) << to_string(api) << ": " << e.what();
    }
  }
  o.endpoints = {};
  EXPECT_THROW(open_remote_engine(o), EngineError);
}

TEST(RemoteEngine, SplitsEndpointLists) {
  EXPECT_EQ(split_endpoints({"http://a:1, http://b:2", "c:3", ""}),
            (std::vector<std::string>{"http://a:1", "http://b:2", "c:3"}));
}

// The CLI: `ponder solve` and `ponder generate` against servers instead of model files.
// ponder serve with its generator on llama-server: searches answer over HTTP as with --model,
// two workers each with a remote engine; the story page, which runs in-process, says so.
TEST_F(Remote, ServeOverRemote) {
  ServeProcess server(build_file("ponder"), {"--remote", a()->url(), "--parallel", "2", "--max-n", "4",
                                             "--max-tokens", "16", "--max-prompt-tokens", "64"});
  httplib::Client c(server.host(), server.port());
  c.set_read_timeout(120, 0);
  const nlohmann::json body = {{"model", a()->url()},
                               {"messages", {{{"role", "user"}, {"content", "Once upon a time"}}}},
                               {"n", 3},
                               {"strategy", "majority"},
                               {"search_details", true}};
  const auto res = c.Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const nlohmann::json r = nlohmann::json::parse(res->body);
  EXPECT_FALSE(r["choices"][0]["message"]["content"].get<std::string>().empty());
  EXPECT_EQ(r["ponder"]["solutions"].size(), 3u);
  EXPECT_GT(r["usage"]["completion_tokens"].get<int64_t>(), 0);
  const auto story = c.Post("/v1/story", R"({"opening": "Once upon a time, there was a cat."})", "application/json");
  ASSERT_TRUE(story);
  EXPECT_EQ(story->status, 400);
  EXPECT_NE(story->body.find("--model"), std::string::npos) << story->body;
  EXPECT_EQ(server.stop(), 0);
}

TEST_F(Remote, CliSolveAndGenerateOverRemote) {
  const std::string ponder = shell_quote(build_file("ponder"));
  const CommandResult solve = run_command(
      ponder + " solve 'Once upon a time' --remote " + a()->url() + "," + b()->url() + " --prm-remote " + prm()->url() +
      " --strategy beam -n 4 --beam-width 2 --max-tokens 32 --delimiter . --seed 1 --json");
  ASSERT_EQ(solve.code, 0) << solve.err;
  const auto j = nlohmann::json::parse(solve.out);
  EXPECT_FALSE(j.at("solutions").empty());
  EXPECT_EQ(j.at("model"), a()->url() + "," + b()->url());

  const CommandResult gen = run_command(ponder + " generate -p 'Once upon a time' --remote " + a()->url() +
                                        " -n 3 -t 0 --max-tokens 12 --json");
  ASSERT_EQ(gen.code, 0) << gen.err;
  EXPECT_EQ(nlohmann::json::parse(gen.out).at("completions").size(), 3u);

  const std::string dead = "http://127.0.0.1:" + std::to_string(free_port());
  const CommandResult bad = run_command(ponder + " generate -p hi --remote " + dead);
  EXPECT_NE(bad.code, 0);
  EXPECT_NE(bad.err.find(dead), std::string::npos) << bad.err;
  const CommandResult both = run_command(ponder + " generate -p hi --remote " + a()->url() + " --model x.gguf");
  EXPECT_NE(both.code, 0);
}

// ponder eval on servers: results are stored under the served models' names and sizes, not
// the endpoints' URLs, so the same models served elsewhere resume the run instead of redoing it.
TEST_F(Remote, CliEvalOverRemoteResumesOnOtherEndpoints) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ("ponder-remote-eval-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  const std::string dataset = (dir / "d.jsonl").string();
  const std::string db = (dir / "e.sqlite").string();
  std::ofstream(dataset) << R"({"problem": "Tom had 3 red balls.", "answer": "3"})" "\n"
                         << R"({"problem": "Lily saw 2 birds.", "answer": "2"})" "\n";
  const std::string ponder = shell_quote(build_file("ponder"));
  auto eval = [&](const std::string& generator) {
    return run_command(ponder + " eval --dataset " + shell_quote(dataset) + " --db " + shell_quote(db) + " --remote " +
                       generator + " --prm-remote " + prm()->url() +
                       " --strategies majority,beam --budgets 1,2 --max-tokens 24 --delimiter . --seed 1");
  };
  const CommandResult first = eval(a()->url());
  ASSERT_EQ(first.code, 0) << first.err;
  // Per problem: one sampling search for majority, a beam search per budget.
  EXPECT_NE(first.err.find("6 searches run"), std::string::npos) << first.err;
  const auto settings = ponder::testing::query_rows(db, "SELECT settings FROM runs");
  ASSERT_EQ(settings.size(), 1u);
  EXPECT_NE(settings[0].find("stories260K.gguf"), std::string::npos) << settings[0];
  EXPECT_EQ(settings[0].find(a()->url()), std::string::npos) << settings[0];

  const CommandResult again = eval(b()->url());
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_NE(again.err.find("0 searches run"), std::string::npos) << again.err;
  const CommandResult report = run_command(ponder + " report --db " + shell_quote(db) + " --out " + shell_quote((dir / "r").string()));
  EXPECT_EQ(report.code, 0) << report.err;
  std::filesystem::remove_all(dir);
}

// --- vLLM's OpenAI API, against FakeVllm (tests/fake_vllm.h): the in-process engine behind
// vLLM's requests and answers.

class Vllm : public ::testing::Test {
 protected:
  static void TearDownTestSuite() {
    for (auto& s : servers_) s.reset();
  }
  void SetUp() override {
    PONDER_REQUIRE_FILE(stories_model());
    PONDER_REQUIRE_FILE(test_model("prm-llama3-tiny.gguf"));
  }

  static FakeVllm* a() { return server(0, stories_model(), "stories260K", 1024); }
  static FakeVllm* b() { return server(1, stories_model(), "stories260K", 1024); }
  static FakeVllm* prm() { return server(2, test_model("prm-llama3-tiny.gguf"), "prm-llama3-tiny", 2048); }

  static std::unique_ptr<RemoteEngine> remote(std::vector<std::string> urls, int32_t probe_top_k = 20) {
    RemoteOptions o;
    o.api = RemoteApi::kVllm;
    o.endpoints = std::move(urls);
    o.max_inflight_per_endpoint = 4;
    o.retries = 1;
    o.retry_backoff_s = 0.05;
    o.probe_top_k = probe_top_k;
    return open_remote_engine(o);
  }

 private:
  static FakeVllm* server(int i, const std::string& model, const std::string& name, int max_len) {
    if (!servers_[i]) servers_[i] = std::make_unique<FakeVllm>(model, name, max_len);
    return servers_[i].get();
  }
  static std::unique_ptr<FakeVllm> servers_[3];
};
std::unique_ptr<FakeVllm> Vllm::servers_[3];

TEST_F(Vllm, TextCallsMatchInProcess) {
  auto local = open_stories_engine(4, 1024);
  RemoteOptions o;
  o.endpoints = {a()->url()};
  auto r = open_remote_engine(o);  // auto: vLLM, by its /v1/models
  EXPECT_EQ(r->vocab_size(), local->vocab_size());
  EXPECT_EQ(r->context_size(), 1024);
  EXPECT_EQ(r->model_info().id, "stories260K");
  EXPECT_FALSE(r->has_chat_template());
  EXPECT_THROW(r->apply_chat_template({{"user", "hi"}}, true), EngineError);
  for (const char* text : {kPrompt, "Lily said: \"Héllo — 日本\" </s>", ""}) {
    for (bool special : {false, true}) {
      // vLLM's tokenizer always parses special tokens.
      EXPECT_EQ(r->tokenize(text, special, false), local->tokenize(text, special, true)) << text;
    }
  }
  // Token texts are exact, except for byte tokens that are no UTF-8 alone: vLLM decodes those
  // as U+FFFD.
  int replaced = 0;
  for (Token t = 0; t < local->vocab_size(); ++t) {
    const std::string piece = local->token_to_piece(t);
    if (hf_utf8(piece) == piece) {
      ASSERT_EQ(r->token_to_piece(t), piece) << "token " << t;
    } else {
      ASSERT_EQ(r->token_to_piece(t), "\xEF\xBF\xBD") << "token " << t;
      ++replaced;
    }
  }
  EXPECT_GT(replaced, 0) << "no byte token: the case the exception above is for did not occur";
  o.api = RemoteApi::kLlamaServer;
  EXPECT_THROW(open_remote_engine(o), EngineError);
}

TEST_F(Vllm, ChatTemplateMatchesInProcess) {
  LlamaEngineOptions o;
  o.model_path = test_model("prm-llama3-tiny.gguf");
  o.vocab_only = true;
  auto local = open_llama_engine(o);
  auto r = remote({prm()->url()});
  EXPECT_EQ(r->vocab_size(), local->vocab_size());
  ASSERT_TRUE(r->has_chat_template());
  const std::vector<ChatMessage> chat = {{"system", "Be brief."}, {"user", "2+2?"}, {"assistant", "4, since"}};
  EXPECT_EQ(r->apply_chat_template({chat[0], chat[1]}, true), local->apply_chat_template({chat[0], chat[1]}, true));
  EXPECT_EQ(r->apply_chat_template(chat, false, true), local->apply_chat_template(chat, false, true));
  EXPECT_THROW(r->apply_chat_template({chat[0]}, false, true), EngineError);
}

TEST_F(Vllm, GreedyGenerationMatchesInProcess) {
  auto local = open_stories_engine(8, 4096);
  auto r = remote({a()->url()});
  expect_greedy_matches(*local, *r);
}

// vLLM tells no end-of-generation tokens: the engine learns each from a completion the server
// ends there (llama-eos makes them likely), and goes through them with stop_at_eos off.
TEST_F(Vllm, EndOfGenerationIsLearnedFromTheServer) {
  const std::string model = test_model("llama-eos.gguf");
  PONDER_REQUIRE_FILE(model);
  FakeVllm server(model, "llama-eos", 512);
  auto r = remote({server.url()});
  LlamaEngineOptions lo;
  lo.model_path = model;
  lo.vocab_only = true;
  auto local = open_llama_engine(lo);
  EXPECT_EQ(r->eos_token(), -1);
  const std::vector<Token> prompt = r->tokenize("Hello", true, true);
  for (bool stop_at_eos : {true, false}) {
    std::vector<GenerateRequest> reqs;
    for (int i = 0; i < 8; ++i) {
      GenerateRequest g = greedy(r->new_branch(prompt), 100);
      g.sampling.temperature = 1.0f;
      g.sampling.seed = static_cast<uint64_t>(i);
      g.stop.stop_at_eos = stop_at_eos;
      reqs.push_back(g);
    }
    int eos = 0, passed = 0;
    for (const Completion& c : r->generate(reqs)) {
      eos += c.finish_reason == FinishReason::kEos;
      passed += std::any_of(c.tokens.begin(), c.tokens.end() - 1, [&](Token t) { return local->is_end_of_generation(t); });
      if (!stop_at_eos) EXPECT_EQ(c.tokens.size(), 100u);
    }
    if (stop_at_eos) {
      EXPECT_GT(eos, 0) << "the fixture makes end-of-generation likely; none of 8 samples ended";
      EXPECT_EQ(r->eos_token(), local->eos_token());
      EXPECT_TRUE(r->is_end_of_generation(local->eos_token()));
    } else {
      EXPECT_GT(passed, 0);
    }
  }
}

TEST_F(Vllm, StopSemanticsMatchInProcess) {
  auto local = open_stories_engine(8, 4096);
  auto r = remote({a()->url()});
  expect_stops_match(*local, *r);
}

TEST_F(Vllm, ContinuousBatchingAcrossEndpoints) {
  auto local = open_stories_engine(8, 4096);
  auto r = remote({a()->url(), b()->url()});
  compare_generation(*local, *r, 8, [](BranchId b, int i) { return greedy(b, 10 + i); }, "two endpoints");
  for (const EndpointStats& s : r->endpoint_stats()) EXPECT_GT(s.requests, 0) << s.url;
}

TEST_F(Vllm, EvaluateMatchesInProcess) {
  auto local = open_stories_engine(8, 4096);
  const int before = a()->completions();
  auto r = remote({a()->url()}, 2);  // most candidates below are outside: a prompt of their own
  const int opening = a()->completions() - before;
  expect_evaluate_matches(*local, *r);
  // The top entries serve where they hold a candidate: with the whole vocabulary listed, one
  // request per evaluated branch.
  auto wide = remote({a()->url()}, 20);
  const BranchId b = wide->new_branch(wide->tokenize(kPrompt, true, false));
  std::vector<Token> top;
  {
    const BranchId lb = local->new_branch(local->tokenize(kPrompt, true, false));
    local->append(lb, {13});
    GenerateRequest g = greedy(lb, 1);
    g.sampling.top_logprobs = 3;
    const auto out = local->generate({g});
    for (const TokenLogprob& t : out.at(0).steps.at(0).top) top.push_back(t.token);
  }
  const int start = a()->completions();
  const auto res = wide->evaluate({{b, {13}, {0}, top}});
  EXPECT_EQ(a()->completions() - start, 1);
  EXPECT_GT(opening, 0);
  ASSERT_EQ(res.at(0).probs.at(0).size(), 3u);
  EXPECT_GT(res[0].probs[0][0], res[0].probs[0][2]);
}

TEST_F(Vllm, BeamSearchWithRemotePrmMatchesInProcess) {
  auto remote_gen = remote({a()->url(), b()->url()});
  auto remote_prm = remote({prm()->url()});
  expect_prm_search_matches(*remote_gen, *remote_prm);
}

TEST_F(Vllm, StoppedServerFailsFastNamingIt) {
  FakeVllm doomed(stories_model(), "stories260K", 512);
  auto r = remote({doomed.url()});
  expect_death_reported(*r, doomed.url(), [&] { doomed.stop(); });
}

TEST_F(Vllm, CliSolveOverVllm) {
  const std::string ponder = shell_quote(build_file("ponder"));
  for (const std::string api : {"", " --remote-api vllm"}) {
    const CommandResult solve = run_command(
        ponder + " solve 'Once upon a time' --remote " + a()->url() + "," + b()->url() + " --prm-remote " + prm()->url() +
        api + " --strategy beam -n 4 --beam-width 2 --max-tokens 32 --delimiter . --seed 1 --json");
    ASSERT_EQ(solve.code, 0) << solve.err;
    const auto j = nlohmann::json::parse(solve.out);
    EXPECT_FALSE(j.at("solutions").empty()) << api;
  }
  const CommandResult wrong = run_command(ponder + " generate -p hi --remote " + a()->url() + " --remote-api llama-server");
  EXPECT_NE(wrong.code, 0);
  EXPECT_NE(wrong.err.find("not a llama-server"), std::string::npos) << wrong.err;
}

}  // namespace
}  // namespace ponder
