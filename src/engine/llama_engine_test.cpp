// The in-process engine on real GGUF models: stories260K (trained) and random-weight fixtures.
#include "engine/llama_engine.h"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>

#include <gtest/gtest.h>

#include "test_paths.h"

namespace ponder {
namespace {

using ponder::testing::stories_model;
using ponder::testing::test_model;

std::unique_ptr<Engine> open(const std::string& path, int branches = 16, int n_ctx = 8192,
                             KvLayout layout = KvLayout::kUnified, bool reproducible = true) {
  LlamaEngineOptions o;
  o.reproducible = reproducible;
  o.model_path = path;
  o.max_branches = branches;
  o.n_ctx = n_ctx;
  o.n_threads = 1;  // results must not depend on threading; 1 thread also keeps CI quiet
  o.kv_layout = layout;
  return open_llama_engine(o);
}

GenerateRequest request(BranchId b, uint64_t seed, int max_tokens, float temperature = 0.8f) {
  GenerateRequest r;
  r.branch = b;
  r.sampling.temperature = temperature;
  r.sampling.seed = seed;
  r.stop.max_tokens = max_tokens;
  return r;
}

std::vector<Token> prompt_of(Engine& e) { return e.tokenize("Once upon a time", true, true); }

// N branches forked from one prompt and decoded together give, seed for seed, the tokens that N
// separate single-branch runs give; freeing the branches and doing it again gives them again.
void check_fork_matches_separate_runs(KvLayout layout) {
  PONDER_REQUIRE_FILE(stories_model());
  const int n = 8;
  auto engine = open(stories_model(), n, 4096, layout);
  const auto prompt = prompt_of(*engine);

  auto forked_run = [&] {
    std::vector<GenerateRequest> reqs;
    const BranchId root = engine->new_branch(prompt);
    for (int i = 0; i < n; ++i) reqs.push_back(request(i == 0 ? root : engine->fork(root), 100 + i, 48));
    auto out = engine->generate(reqs);
    for (const auto& r : reqs) engine->free_branch(r.branch);
    return out;
  };
  const auto together = forked_run();

  std::set<std::vector<Token>> distinct;
  for (int i = 0; i < n; ++i) {
    auto single = open(stories_model(), 1, 512, layout);
    const BranchId b = single->new_branch(prompt);
    const auto alone = single->generate({request(b, 100 + i, 48)});
    EXPECT_EQ(together[i].tokens, alone[0].tokens) << "branch " << i;
    EXPECT_EQ(together[i].text, alone[0].text) << "branch " << i;
    EXPECT_NEAR(together[i].logprob, alone[0].logprob, 1e-3) << "branch " << i;
    distinct.insert(together[i].tokens);
  }
  EXPECT_GT(distinct.size(), n / 2u) << "different seeds should give different samples";

  // Slots freed above are reused: same seeds, same results.
  EXPECT_EQ(engine->free_slots(), n);
  const auto again = forked_run();
  for (int i = 0; i < n; ++i) EXPECT_EQ(again[i].tokens, together[i].tokens) << "branch " << i;
}

TEST(LlamaEngine, ForkedBranchesMatchSeparateRunsUnified) { check_fork_matches_separate_runs(KvLayout::kUnified); }
TEST(LlamaEngine, ForkedBranchesMatchSeparateRunsSplit) { check_fork_matches_separate_runs(KvLayout::kSplit); }

// Split streams: branches whose requests end early stay live among those still decoding. The
// engine moves branches between streams so that each step's rows are consecutive (llama.cpp
// computes each run of consecutive streams as a step of its own), and every branch still gives
// the tokens of a run of its own, and continues from where it was afterwards.
TEST(LlamaEngine, SplitStreamsPackTheRowsOfAStepAndKeepEveryBranch) {
  PONDER_REQUIRE_FILE(stories_model());
  const int n = 8;
  auto engine = open(stories_model(), n, 4096, KvLayout::kSplit);
  const auto prompt = prompt_of(*engine);
  const BranchId root = engine->new_branch(prompt);
  std::vector<GenerateRequest> reqs;
  for (int i = 0; i < n; ++i) reqs.push_back(request(i == 0 ? root : engine->fork(root), 200 + i, i % 2 ? 40 : 3));
  const auto together = engine->generate(reqs);
  EXPECT_GT(engine->stats().stream_moves, 0);
  // Each branch goes on from where it stood: 10 more tokens after its first completion.
  std::vector<GenerateRequest> more;
  for (int i = 0; i < n; ++i) more.push_back(request(reqs[i].branch, 300 + i, 10));
  const auto after = engine->generate(more);

  auto single = open(stories_model(), 1, 512, KvLayout::kSplit);
  for (int i = 0; i < n; ++i) {
    const BranchId b = single->new_branch(prompt);
    const auto alone = single->generate({request(b, 200 + i, i % 2 ? 40 : 3)});
    const auto alone_after = single->generate({request(b, 300 + i, 10)});
    EXPECT_EQ(together[i].tokens, alone[0].tokens) << "branch " << i;
    EXPECT_EQ(after[i].tokens, alone_after[0].tokens) << "branch " << i;
    std::vector<Token> whole = prompt;
    whole.insert(whole.end(), alone[0].tokens.begin(), alone[0].tokens.end());
    whole.insert(whole.end(), alone_after[0].tokens.begin(), alone_after[0].tokens.end());
    EXPECT_EQ(engine->branch_tokens(reqs[i].branch), whole) << "branch " << i;
    single->free_branch(b);
  }
}

// Without reproducible mode (flash attention, F16 cache) batching changes log-probabilities
// only at the level of rounding: greedy tokens agree and log-probs stay close.
TEST(LlamaEngine, DefaultModeAgreesWithSeparateRunsUpToRounding) {
  PONDER_REQUIRE_FILE(stories_model());
  const int n = 8;
  auto engine = open(stories_model(), n, 4096, KvLayout::kUnified, /*reproducible=*/false);
  const auto prompt = prompt_of(*engine);
  const BranchId root = engine->new_branch(prompt);
  std::vector<GenerateRequest> reqs;
  for (int i = 0; i < n; ++i) reqs.push_back(request(i == 0 ? root : engine->fork(root), i, 32, 0.0f));
  const auto together = engine->generate(reqs);
  auto single = open(stories_model(), 1, 512, KvLayout::kUnified, false);
  const auto alone = single->generate({request(single->new_branch(prompt), 0, 32, 0.0f)})[0];
  for (int i = 0; i < n; ++i) {
    EXPECT_EQ(together[i].tokens, alone.tokens);
    for (size_t t = 0; t < alone.steps.size(); ++t) {
      EXPECT_NEAR(together[i].steps[t].logprob, alone.steps[t].logprob, 1e-2);
    }
  }
}

TEST(LlamaEngine, GreedyStoryBeginsAsDocumented) {
  PONDER_REQUIRE_FILE(stories_model());
  auto engine = open(stories_model(), 1, 512);
  const BranchId b = engine->new_branch(engine->tokenize("", true, true));
  auto out = engine->generate({request(b, 0, 24, 0.0f)});
  EXPECT_EQ(out[0].text.rfind(" Once upon a time, there was a little girl named Lily.", 0), 0u) << out[0].text;
}

TEST(LlamaEngine, ContinuingABranchEqualsGeneratingInOneGo) {
  PONDER_REQUIRE_FILE(stories_model());
  auto engine = open(stories_model(), 4, 2048);
  const auto prompt = prompt_of(*engine);
  const BranchId whole = engine->new_branch(prompt);
  const auto one_go = engine->generate({request(whole, 0, 30, 0.0f)});
  const BranchId part = engine->new_branch(prompt);
  auto first = engine->generate({request(part, 0, 12, 0.0f)});
  // Fork mid-way, then continue both the original and the fork: the prefix is shared.
  const BranchId child = engine->fork(part);
  auto rest = engine->generate({request(part, 0, 18, 0.0f), request(child, 0, 18, 0.0f)});
  std::vector<Token> joined = first[0].tokens;
  joined.insert(joined.end(), rest[0].tokens.begin(), rest[0].tokens.end());
  EXPECT_EQ(joined, one_go[0].tokens);
  EXPECT_EQ(rest[1].tokens, rest[0].tokens);
  EXPECT_EQ(engine->branch_tokens(part).size(), prompt.size() + 30);
}

// Picks a stop string that straddles the boundary between two generated tokens.
// Continuous batching: a request that finishes early is continued (and forked) from the
// callback while a long one is still decoding; every completion equals a separate run.
void check_continuous_generate(KvLayout layout) {
  PONDER_REQUIRE_FILE(stories_model());
  auto engine = open(stories_model(), 8, 4096, layout);
  const BranchId a = engine->new_branch(prompt_of(*engine));
  const BranchId b = engine->fork(a);
  std::vector<size_t> finish_order;
  BranchId c = -1;
  const auto out = engine->generate({request(a, 1, 4), request(b, 2, 40)}, [&](size_t i, const Completion&) {
    finish_order.push_back(i);
    if (i != 0) return std::vector<GenerateRequest>{};
    c = engine->fork(a);
    return std::vector<GenerateRequest>{request(c, 3, 8), request(a, 4, 8)};
  });
  ASSERT_EQ(out.size(), 4u);
  // The continuations (2, 3) finished while the long request (1) was still decoding.
  ASSERT_EQ(finish_order.size(), 4u);
  EXPECT_EQ(finish_order.front(), 0u);
  EXPECT_EQ(finish_order.back(), 1u);
  EXPECT_EQ(out[2].tokens.size(), 8u);
  EXPECT_EQ(out[1].tokens.size(), 40u);

  // The same work, one step after another.
  auto fresh = open(stories_model(), 8, 4096, layout);
  const BranchId a2 = fresh->new_branch(prompt_of(*fresh));
  const BranchId b2 = fresh->fork(a2);
  EXPECT_EQ(fresh->generate({request(b2, 2, 40)})[0].tokens, out[1].tokens);
  EXPECT_EQ(fresh->generate({request(a2, 1, 4)})[0].tokens, out[0].tokens);
  const BranchId c2 = fresh->fork(a2);
  EXPECT_EQ(fresh->generate({request(c2, 3, 8)})[0].tokens, out[2].tokens);
  EXPECT_EQ(fresh->generate({request(a2, 4, 8)})[0].tokens, out[3].tokens);
  EXPECT_EQ(engine->branch_tokens(c), fresh->branch_tokens(c2));
}

TEST(LlamaEngine, ContinuousGenerateUnified) { check_continuous_generate(KvLayout::kUnified); }
TEST(LlamaEngine, ContinuousGenerateSplit) { check_continuous_generate(KvLayout::kSplit); }

TEST(LlamaEngine, ContinuousGenerateRefusesABranchStillGenerating) {
  PONDER_REQUIRE_FILE(stories_model());
  auto engine = open(stories_model(), 4, 2048);
  const BranchId a = engine->new_branch(prompt_of(*engine));
  const BranchId b = engine->fork(a);
  EXPECT_THROW(engine->generate({request(a, 1, 2), request(b, 2, 20)},
                                [&](size_t i, const Completion&) {
                                  return i == 0 ? std::vector<GenerateRequest>{request(b, 5, 5)}
                                                : std::vector<GenerateRequest>{};
                                }),
               EngineError);
}

TEST(LlamaEngine, StopStringSplitAcrossTokens) {
  PONDER_REQUIRE_FILE(stories_model());
  auto engine = open(stories_model(), 4, 2048);
  const auto prompt = prompt_of(*engine);
  auto full = engine->generate({request(engine->new_branch(prompt), 0, 40, 0.0f)})[0];
  std::string text;
  std::string stop;
  size_t k = 0;
  for (; k + 1 < full.tokens.size(); ++k) {
    const std::string a = engine->token_to_piece(full.tokens[k]);
    const std::string b = engine->token_to_piece(full.tokens[k + 1]);
    text += a;
    if (k >= 3 && a.size() >= 2 && b.size() >= 2) {
      stop = a.substr(a.size() - 2) + b.substr(0, 2);
      if (full.text.find(stop) == text.size() - 2) break;  // first occurrence is right here
    }
    stop.clear();
  }
  ASSERT_FALSE(stop.empty()) << "no token boundary fit for the test in: " << full.text;

  GenerateRequest r = request(engine->new_branch(prompt), 0, 40, 0.0f);
  r.stop.stop = {"never appears", stop};
  auto cut = engine->generate({r})[0];
  EXPECT_EQ(cut.finish_reason, FinishReason::kStop);
  EXPECT_EQ(cut.text, full.text.substr(0, text.size() - 2)) << "stop: '" << stop << "'";
  // The token that completed the stop string is the last one kept.
  EXPECT_EQ(cut.tokens, std::vector<Token>(full.tokens.begin(), full.tokens.begin() + k + 2));

  r = request(engine->new_branch(prompt), 0, 40, 0.0f);
  r.stop.stop = {stop};
  r.stop.include_stop_in_text = true;
  auto kept = engine->generate({r})[0];
  EXPECT_EQ(kept.text, full.text.substr(0, text.size() + 2));
}

// A stop_when predicate stops where the stop string it mimics would: same tokens, same cut text.
TEST(LlamaEngine, StopWhenStopsWhereTheStopStringWould) {
  PONDER_REQUIRE_FILE(stories_model());
  auto engine = open(stories_model(), 4, 2048);
  const auto prompt = prompt_of(*engine);
  GenerateRequest by_string = request(engine->new_branch(prompt), 0, 60, 0.0f);
  by_string.stop.stop = {". "};
  const Completion want = engine->generate({by_string})[0];
  ASSERT_EQ(want.finish_reason, FinishReason::kStop) << want.text;

  GenerateRequest by_predicate = request(engine->new_branch(prompt), 0, 60, 0.0f);
  size_t calls = 0;
  std::string last_seen;
  by_predicate.stop.stop_when = [&](std::string_view text) -> std::optional<size_t> {
    ++calls;
    last_seen = text;
    const size_t at = text.find(". ");
    if (at == std::string_view::npos) return std::nullopt;
    return at;
  };
  const Completion got = engine->generate({by_predicate})[0];
  EXPECT_EQ(got.finish_reason, FinishReason::kStop);
  EXPECT_EQ(got.text, want.text);
  EXPECT_EQ(got.tokens, want.tokens);
  // Called once per token, with the whole text so far (the last token uncut).
  EXPECT_EQ(calls, got.tokens.size());
  EXPECT_EQ(last_seen, engine->detokenize(got.tokens));

  // The offset may lie anywhere in the text: here just after ". ", so the cut keeps it.
  GenerateRequest keep = request(engine->new_branch(prompt), 0, 60, 0.0f);
  keep.stop.stop_when = [](std::string_view text) -> std::optional<size_t> {
    const size_t at = text.find(". ");
    if (at == std::string_view::npos) return std::nullopt;
    return at + 2;
  };
  const Completion kept = engine->generate({keep})[0];
  EXPECT_EQ(kept.tokens, want.tokens);
  EXPECT_EQ(kept.text, want.text + ". ");
}

TEST(LlamaEngine, MaxTokens) {
  PONDER_REQUIRE_FILE(stories_model());
  auto engine = open(stories_model(), 4, 2048);
  const auto prompt = prompt_of(*engine);
  auto out = engine->generate({request(engine->new_branch(prompt), 1, 7), request(engine->new_branch(prompt), 2, 1)});
  EXPECT_EQ(out[0].tokens.size(), 7u);
  EXPECT_EQ(out[0].finish_reason, FinishReason::kLength);
  EXPECT_EQ(out[1].tokens.size(), 1u);
  EXPECT_EQ(out[1].steps.size(), 1u);
}

TEST(LlamaEngine, EndOfGenerationEndsABranch) {
  const std::string model = test_model("llama-eos.gguf");
  PONDER_REQUIRE_FILE(model);
  auto engine = open(model, 16, 8192);
  const auto prompt = engine->tokenize("Hello", true, true);
  std::vector<GenerateRequest> reqs;
  for (int i = 0; i < 16; ++i) reqs.push_back(request(engine->new_branch(prompt), i, 200, 1.0f));
  auto out = engine->generate(reqs);
  int eos = 0;
  for (const auto& c : out) {
    if (c.finish_reason != FinishReason::kEos) continue;
    ++eos;
    ASSERT_FALSE(c.tokens.empty());
    EXPECT_TRUE(engine->is_end_of_generation(c.tokens.back()));
    for (size_t i = 0; i + 1 < c.tokens.size(); ++i) EXPECT_FALSE(engine->is_end_of_generation(c.tokens[i]));
    EXPECT_EQ(c.text, engine->detokenize(std::vector<Token>(c.tokens.begin(), c.tokens.end() - 1)));
  }
  EXPECT_GT(eos, 0) << "the fixture makes end-of-generation likely; none of 16 samples ended";

  // Told to ignore it, samples run to max tokens, through end-of-generation tokens.
  for (const auto& r : reqs) engine->free_branch(r.branch);
  std::vector<GenerateRequest> again;
  for (int i = 0; i < 16; ++i) {
    again.push_back(request(engine->new_branch(prompt), i, 200, 1.0f));
    again.back().stop.stop_at_eos = false;
  }
  int passed_eos = 0;
  for (const auto& c : engine->generate(again)) {
    EXPECT_EQ(c.tokens.size(), 200u);
    EXPECT_EQ(c.finish_reason, FinishReason::kLength);
    passed_eos += std::any_of(c.tokens.begin(), c.tokens.end() - 1,
                              [&](Token t) { return engine->is_end_of_generation(t); });
  }
  EXPECT_GT(passed_eos, 0);
}

TEST(LlamaEngine, TwoHundredFiftySixBranchesAtOnce) {
  PONDER_REQUIRE_FILE(stories_model());
  auto engine = open(stories_model(), kMaxBranches, 16384);
  const auto prompt = prompt_of(*engine);
  const BranchId root = engine->new_branch(prompt);
  std::vector<GenerateRequest> reqs{request(root, 0, 16)};
  for (int i = 1; i < kMaxBranches; ++i) reqs.push_back(request(engine->fork(root), i, 16));
  EXPECT_EQ(engine->free_slots(), 0);
  EXPECT_THROW(engine->fork(root), EngineError);
  const int64_t calls_before = engine->stats().decode_calls;
  auto out = engine->generate(reqs);
  // One llama_decode per token step for all 256 branches (the 16th token needs none).
  EXPECT_EQ(engine->stats().decode_calls - calls_before, 15);
  std::set<std::vector<Token>> distinct;
  for (const auto& c : out) {
    EXPECT_EQ(c.tokens.size(), 16u);
    distinct.insert(c.tokens);
  }
  // stories260K is confident after "Once upon a time": many samples agree.
  EXPECT_GT(distinct.size(), 64u);
  // The last branch agrees with a run of its own.
  auto single = open(stories_model(), 1, 512);
  auto alone = single->generate({request(single->new_branch(prompt), kMaxBranches - 1, 16)});
  EXPECT_EQ(alone[0].tokens, out.back().tokens);
}

// Probabilities read by evaluate() agree with the log-probabilities generate() reports, and
// evaluating on a fork that already holds a prefix gives what evaluating everything from
// scratch gives: the incremental scoring a PRM relies on.
TEST(LlamaEngine, EvaluateMatchesGenerateAndIsIncremental) {
  PONDER_REQUIRE_FILE(stories_model());
  auto engine = open(stories_model(), 8, 4096);
  const auto prompt = prompt_of(*engine);
  auto gen = engine->generate({request(engine->new_branch(prompt), 5, 20, 1.0f)})[0];

  EvaluateRequest ev;
  ev.branch = engine->new_branch(prompt);
  ev.tokens = gen.tokens;
  for (int p = 0; p + 1 < static_cast<int>(gen.tokens.size()); ++p) ev.positions.push_back(p);
  ev.candidates = {gen.tokens[5], engine->eos_token()};
  auto scratch = engine->evaluate({ev})[0];
  ASSERT_EQ(scratch.probs.size(), gen.tokens.size() - 1);
  EXPECT_NEAR(std::log(scratch.probs[4][0]), gen.steps[5].logprob, 1e-3);

  // Per position, P(the token that followed) from a 2-candidate read at each position:
  for (size_t p = 0; p + 1 < gen.tokens.size(); ++p) {
    EvaluateRequest one;
    one.branch = engine->new_branch(prompt);
    one.tokens = std::vector<Token>(gen.tokens.begin(), gen.tokens.begin() + p + 1);
    one.positions = {static_cast<int32_t>(p)};
    one.candidates = {gen.tokens[p + 1]};
    auto r = engine->evaluate({one})[0];
    EXPECT_NEAR(std::log(r.probs[0][0]), gen.steps[p + 1].logprob, 1e-3) << "position " << p;
    engine->free_branch(one.branch);
  }

  // Incremental: first half on a branch, fork it, then the second half on the fork.
  EvaluateRequest head;
  head.branch = engine->new_branch(prompt);
  head.tokens = std::vector<Token>(gen.tokens.begin(), gen.tokens.begin() + 10);
  engine->evaluate({head});
  EvaluateRequest tail;
  tail.branch = engine->fork(head.branch);
  tail.tokens = std::vector<Token>(gen.tokens.begin() + 10, gen.tokens.end());
  for (int p = 0; p + 1 < static_cast<int>(tail.tokens.size()); ++p) tail.positions.push_back(p);
  tail.candidates = ev.candidates;
  const int64_t decoded_before = engine->stats().prompt_tokens;
  auto inc = engine->evaluate({tail})[0];
  EXPECT_EQ(engine->stats().prompt_tokens - decoded_before, static_cast<int64_t>(tail.tokens.size()))
      << "only the new tokens are computed";
  for (size_t i = 0; i < inc.probs.size(); ++i) {
    for (size_t j = 0; j < 2; ++j) {
      EXPECT_NEAR(inc.probs[i][j], scratch.probs[10 + i][j], 1e-4 + 1e-3 * scratch.probs[10 + i][j]);
    }
  }
}

// A generator and a second model (as a PRM would be) side by side, each on its own context with
// its own branches: the second reads probabilities at chosen positions, incrementally on forks.
TEST(LlamaEngine, SecondModelOnItsOwnContext) {
  const std::string scorer_path = test_model("llama-bpe-tiny.gguf");
  PONDER_REQUIRE_FILE(stories_model());
  PONDER_REQUIRE_FILE(scorer_path);
  auto generator = open(stories_model(), 4, 2048);
  auto scorer = open(scorer_path, 8, 4096);
  const BranchId g = generator->new_branch(prompt_of(*generator));
  const auto step = generator->generate({request(g, 3, 12, 0.0f)})[0];

  const auto plus = scorer->tokenize("+", false, false);
  const auto minus = scorer->tokenize("-", false, false);
  ASSERT_EQ(plus.size(), 1u);
  ASSERT_EQ(minus.size(), 1u);
  const auto question = scorer->tokenize("Question: a story.\n", true, false);
  const auto step_tokens = scorer->tokenize(step.text, false, false);

  // From scratch: question + step, read at the step's last token.
  EvaluateRequest whole{scorer->new_branch({}), question, {}, {plus[0], minus[0]}};
  whole.tokens.insert(whole.tokens.end(), step_tokens.begin(), step_tokens.end());
  whole.positions = {static_cast<int32_t>(whole.tokens.size() - 1)};
  const auto from_scratch = scorer->evaluate({whole})[0].probs[0];

  // Incrementally: the question once, then the step on a fork of it.
  const BranchId q = scorer->new_branch(question);
  const BranchId fork = scorer->fork(q);
  const auto incremental = scorer->evaluate({{fork, step_tokens, {static_cast<int32_t>(step_tokens.size() - 1)},
                                              {plus[0], minus[0]}}})[0].probs[0];
  ASSERT_EQ(incremental.size(), 2u);
  EXPECT_GT(incremental[0], 0.0f);
  for (int j = 0; j < 2; ++j) EXPECT_NEAR(incremental[j], from_scratch[j], 1e-5 + 1e-3 * from_scratch[j]);
  // The generator's branch is untouched by the scorer's work.
  EXPECT_EQ(generator->branch_tokens(g).size(), prompt_of(*generator).size() + 12);
}

TEST(LlamaEngine, ChatTemplateWithOpenAssistantMessage) {
  const std::string model = test_model("qwen2-tiny.gguf");
  PONDER_REQUIRE_FILE(model);
  auto engine = open(model, 2, 1024);
  ASSERT_TRUE(engine->has_chat_template());
  std::vector<ChatMessage> msgs = {{"system", "Solve it."}, {"user", "What is 2+2?"}};
  const std::string prompt = engine->apply_chat_template(msgs, true);
  EXPECT_NE(prompt.find("<|im_start|>user\nWhat is 2+2?<|im_end|>"), std::string::npos) << prompt;
  EXPECT_TRUE(prompt.ends_with("<|im_start|>assistant\n")) << prompt;

  msgs.push_back({"assistant", "## Step 1: add\n\n"});
  const std::string open_msg = engine->apply_chat_template(msgs, true, /*continue_final=*/true);
  EXPECT_TRUE(open_msg.ends_with("<|im_start|>assistant\n## Step 1: add\n\n")) << open_msg;
  // Special tokens in the rendered text become single tokens.
  const auto tokens = engine->tokenize(open_msg, false, true);
  const auto im_start = engine->tokenize("<|im_start|>", false, true);
  ASSERT_EQ(im_start.size(), 1u);
  EXPECT_EQ(std::count(tokens.begin(), tokens.end(), im_start[0]), 3);
}

TEST(LlamaEngine, ModelWithoutChatTemplate) {
  PONDER_REQUIRE_FILE(stories_model());
  auto engine = open(stories_model(), 1, 256);
  EXPECT_FALSE(engine->has_chat_template());
  EXPECT_THROW(engine->apply_chat_template({{"user", "hi"}}, true), EngineError);
}

TEST(LlamaEngine, BadModelFilesAreClearErrors) {
  const auto dir = std::filesystem::temp_directory_path() / "ponder-bad-models";
  std::filesystem::create_directories(dir);
  auto expect_error = [](const std::string& path, const std::string& words) {
    try {
      open(path, 1, 256);
      ADD_FAILURE() << "no error for " << path;
    } catch (const EngineError& e) {
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  expect_error((dir / "missing.gguf").string(), "not found");
  {
    std::ofstream f(dir / "text.gguf");
    f << "this is not a model\n";
  }
  expect_error((dir / "text.gguf").string(), "not a GGUF");
  PONDER_REQUIRE_FILE(stories_model());
  {
    std::ifstream in(stories_model(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream out(dir / "truncated.gguf", std::ios::binary);
    out.write(bytes.data(), bytes.size() / 2);
  }
  expect_error((dir / "truncated.gguf").string(), "cannot load model");
}

TEST(LlamaEngine, MisuseIsAnErrorNotACrash) {
  PONDER_REQUIRE_FILE(stories_model());
  LlamaEngineOptions small_batch;
  small_batch.model_path = stories_model();
  small_batch.max_branches = 64;
  small_batch.n_batch = 16;
  EXPECT_THROW(open_llama_engine(small_batch), EngineError);
  auto engine = open(stories_model(), 2, 256);
  EXPECT_THROW(engine->fork(7), EngineError);
  EXPECT_THROW(engine->new_branch({999999}), EngineError);
  const BranchId b = engine->new_branch(prompt_of(*engine));
  EXPECT_THROW(engine->generate({request(b, 0, 4), request(b, 1, 4)}), EngineError);
  const size_t before = engine->branch_tokens(b).size();
  EXPECT_THROW(engine->evaluate({{b, {5}, {0}, {1}}, {b, {6}, {0}, {1}}}), EngineError);
  EXPECT_THROW(engine->evaluate({{b, {5, 999999}, {0}, {1}}}), EngineError);
  EXPECT_EQ(engine->branch_tokens(b).size(), before) << "a rejected call changes nothing";
  engine->free_branch(b);
  EXPECT_THROW(engine->free_branch(b), EngineError);
}

TEST(LlamaEngine, FullContextEndsBranchesInsteadOfFailing) {
  PONDER_REQUIRE_FILE(stories_model());
  auto engine = open(stories_model(), 4, 256);
  const auto prompt = prompt_of(*engine);
  const BranchId root = engine->new_branch(prompt);
  std::vector<GenerateRequest> reqs{request(root, 0, 200)};
  for (int i = 1; i < 4; ++i) reqs.push_back(request(engine->fork(root), i, 200));
  auto out = engine->generate(reqs);
  for (const auto& c : out) {
    EXPECT_EQ(c.finish_reason, FinishReason::kContextFull);
    EXPECT_LT(c.tokens.size(), 200u);
  }
}

// A set cancel flag ends a completion before its next token: requests already cancelled sample
// nothing, running ones stop at the step after the flag is set (here: from on_finish).
TEST(LlamaEngine, CancelFlagEndsCompletions) {
  PONDER_REQUIRE_FILE(ponder::testing::stories_model());
  LlamaEngineOptions o;
  o.model_path = ponder::testing::stories_model();
  o.max_branches = 4;
  o.n_ctx = 1024;
  o.n_threads = 1;
  auto engine = open_llama_engine(o);
  const auto prompt = engine->tokenize("Once upon a time", true, false);
  std::atomic<bool> cancel{true};
  GenerateRequest r;
  r.branch = engine->new_branch(prompt);
  r.stop.max_tokens = 50;
  r.stop.cancel = &cancel;
  Completion c = engine->generate({r}).at(0);
  EXPECT_EQ(c.finish_reason, FinishReason::kCancelled);
  EXPECT_TRUE(c.tokens.empty());
  EXPECT_EQ(std::string(to_string(c.finish_reason)), "cancelled");

  cancel = false;
  GenerateRequest short_one = r;
  short_one.branch = engine->fork(r.branch);
  short_one.stop.max_tokens = 3;
  short_one.stop.cancel = nullptr;
  const auto done = engine->generate({r, short_one}, [&](size_t, const Completion&) {
    cancel = true;
    return std::vector<GenerateRequest>{};
  });
  EXPECT_EQ(done.at(1).finish_reason, FinishReason::kLength);
  EXPECT_EQ(done.at(0).finish_reason, FinishReason::kCancelled);
  EXPECT_EQ(done.at(0).tokens.size(), 3u) << "stopped at the step after the flag was set";
}

}  // namespace
}  // namespace ponder
