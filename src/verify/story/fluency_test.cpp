// The fluency scorer on the real stories260K model. Scores are checked against the model's own
// log-probabilities of a greedy generate() continuation (computed a token at a time, independently
// of evaluate()), and the one-pass promise is checked by counting the engine calls it makes.
#include "verify/story/fluency.h"

#include <cmath>

#include <gtest/gtest.h>

#include "engine/llama_engine.h"
#include "forwarding_engine.h"
#include "test_engines.h"
#include "test_paths.h"

namespace ponder {
namespace {

using ponder::testing::stories_model;

std::unique_ptr<Engine> open(int branches = 16) { return testing::open_stories_engine(branches); }

// Passes everything through to a real engine, counting the calls that run the model.
class CountingEngine final : public testing::ForwardingEngine {
 public:
  using ForwardingEngine::ForwardingEngine;
  int evaluate_calls = 0;
  int generate_calls = 0;

  using ForwardingEngine::generate;
  std::vector<Completion> generate(const std::vector<GenerateRequest>& requests, const OnFinish& on_finish) override {
    ++generate_calls;
    return inner_.generate(requests, on_finish);
  }
  std::vector<EvaluateResult> evaluate(const std::vector<EvaluateRequest>& requests) override {
    ++evaluate_calls;
    return inner_.evaluate(requests);
  }
};

const std::string kFluent = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park.";
// The same words, shuffled by hand.
const std::string kShuffled = "park the girl time. Lily outside a She upon named little to in there play Once was loved, a";

const std::vector<std::string> kTexts = {
    " She had a red ball.",
    " The dog ran to the tree and barked.",
    "",  // nothing to score: 0
    " One day, Tom found a big box in the garden. He opened it and saw a cat.",
    " a",
    kShuffled,
};

// A greedy continuation of `context`, generated a token at a time; scoring its text must give
// back the mean of the model's own log-probabilities of those tokens.
void expect_matches_greedy_logprobs(Engine& engine, const std::string& context) {
  SCOPED_TRACE("context \"" + context + "\"");
  const std::vector<Token> context_tokens = engine.tokenize(context, true, false);
  const BranchId branch = engine.new_branch(context_tokens);
  GenerateRequest req{branch, {}, {}};
  req.sampling.temperature = 0.0f;
  req.stop.max_tokens = 30;
  const Completion c = engine.generate({req})[0];
  engine.free_branch(branch);
  // An EOS would end the text without a token of its own in it.
  ASSERT_EQ(c.finish_reason, FinishReason::kLength);

  // At the start of a document the first token's word-start space is the one SentencePiece adds
  // by itself: the story's text is without it.
  std::string text = c.text;
  if (context.empty() && !text.empty() && text[0] == ' ') text.erase(0, 1);
  // The scorer reads the tokens of context + text tokenized together: they must be the ones generated.
  std::vector<Token> expected_tokens = context_tokens;
  expected_tokens.insert(expected_tokens.end(), c.tokens.begin(), c.tokens.end());
  ASSERT_EQ(engine.tokenize(context + text, true, false), expected_tokens) << text;

  FluencyScorer scorer(engine);
  const double score = scorer.score(context, {text})[0];
  const double mean_logprob = c.logprob / static_cast<double>(c.tokens.size());
  EXPECT_NEAR(std::log(score), mean_logprob, 1e-4);
  EXPECT_NEAR(score, std::exp(mean_logprob), 1e-4);
  EXPECT_EQ(scorer.stats().scored_tokens, static_cast<int64_t>(c.tokens.size()));
}

TEST(Fluency, MatchesTheMeanLogprobOfAGreedyCompletion) {
  PONDER_REQUIRE_FILE(stories_model());
  auto engine = open();
  expect_matches_greedy_logprobs(*engine, "Once upon a time, there was a little");
  expect_matches_greedy_logprobs(*engine, "");  // BOS only
}

TEST(Fluency, FluentStoryBeatsTheSameWordsShuffled) {
  PONDER_REQUIRE_FILE(stories_model());
  auto engine = open();
  FluencyScorer scorer(*engine);
  const auto alone = scorer.score("", {kFluent, kShuffled});
  EXPECT_GT(alone[0], alone[1]);
  const auto continued = scorer.score("Tom and Sam went to the beach.", {" " + kFluent, " " + kShuffled});
  EXPECT_GT(continued[0], continued[1]);
  for (double s : {alone[0], alone[1], continued[0], continued[1]}) {
    EXPECT_GT(s, 0.0);
    EXPECT_LT(s, 1.0);
  }
}

TEST(Fluency, ManyTextsInOneCallScoreAsOneAtATime) {
  PONDER_REQUIRE_FILE(stories_model());
  auto engine = open();
  FluencyScorer scorer(*engine);
  const std::string context = "Once upon a time, there was a little girl named Lily.";
  const auto together = scorer.score(context, kTexts);
  ASSERT_EQ(together.size(), kTexts.size());
  for (size_t i = 0; i < kTexts.size(); ++i) {
    EXPECT_NEAR(together[i], scorer.score(context, {kTexts[i]})[0], 1e-5) << "text " << i;
  }
  EXPECT_EQ(together[2], 0.0);
  EXPECT_TRUE(scorer.score(context, {}).empty());
}

TEST(Fluency, FreesEveryBranch) {
  PONDER_REQUIRE_FILE(stories_model());
  auto engine = open(4);
  const int32_t free_before = engine->free_slots();
  FluencyScorer scorer(*engine);
  const auto reference = scorer.score("Lily had a cat.", kTexts);
  EXPECT_EQ(engine->free_slots(), free_before);
  scorer.score("", {kFluent});
  EXPECT_EQ(engine->free_slots(), free_before);

  // More texts than free branches: a group at a time, the same scores, nothing left behind.
  std::vector<std::string> many = kTexts;
  many.insert(many.end(), kTexts.begin(), kTexts.end());
  const auto grouped = scorer.score("Lily had a cat.", many);
  for (size_t i = 0; i < many.size(); ++i) EXPECT_NEAR(grouped[i], reference[i % kTexts.size()], 1e-5) << i;
  EXPECT_EQ(engine->free_slots(), free_before);

  // An error inside the engine (a context window too small for the text) frees them too.
  std::string too_long;
  for (int i = 0; i < 600; ++i) too_long += " The cat sat on the mat.";
  EXPECT_THROW(scorer.score("Lily had a cat.", {kFluent, too_long}), EngineError);
  EXPECT_EQ(engine->free_slots(), free_before);
}

TEST(Fluency, OneEvaluateCallPerScoreCall) {
  PONDER_REQUIRE_FILE(stories_model());
  auto engine = open();
  CountingEngine counting(*engine);
  FluencyScorer scorer(counting);
  scorer.score("Once upon a time, there was a little girl named Lily.", kTexts);
  EXPECT_EQ(counting.evaluate_calls, 1);
  EXPECT_EQ(counting.generate_calls, 0);
  scorer.score("", {kFluent});
  EXPECT_EQ(counting.evaluate_calls, 2);

  const FluencyStats stats = scorer.stats();
  EXPECT_EQ(stats.calls, 2);
  EXPECT_EQ(stats.evaluate_calls, 2);
  EXPECT_EQ(stats.texts, static_cast<int64_t>(kTexts.size()) + 1);
  // One pass per text: each scored token is appended once (the re-fed context token stands in
  // for the text's final token, which nothing reads after), give or take tokens merged across
  // the context boundary.
  EXPECT_EQ(stats.evaluated_tokens, stats.scored_tokens);
}

// Incremental reading: a text grown step by step scores as a whole reading of it does, each
// extension reads only its new tokens (plus the one re-fed token), and releasing the prefixes
// gives every branch back.
TEST(Fluency, ExtendingAPrefixReadsOnlyTheNewTokens) {
  PONDER_REQUIRE_FILE(stories_model());
  auto engine = open(8);
  const int32_t free_before = engine->free_slots();
  FluencyScorer scorer(*engine);
  const std::string context = "Once upon a time, there was a little girl named Lily.";
  const std::string a = " She loved to play outside.";
  const std::string b = " One day, she saw a big dog in the park.";
  const std::string c = " The dog was very happy.";

  FluencyPrefix root = scorer.begin(context);
  auto first = scorer.extend(context, {{&root, {a}}, {&root, {a, a + b}}});
  ASSERT_EQ(first.size(), 2u);
  ASSERT_EQ(first[1].scores.size(), 2u);
  FluencyScorer reference(*engine);
  EXPECT_NEAR(first[0].scores[0], reference.score(context, {a})[0], 1e-5);
  EXPECT_NEAR(first[1].scores[0], first[0].scores[0], 1e-5);
  EXPECT_NEAR(first[1].scores[1], reference.score(context, {a + b})[0], 1e-5);
  EXPECT_NEAR(first[1].prefix.score(), first[1].scores[1], 1e-12);

  const int64_t evaluated = scorer.stats().evaluated_tokens;
  auto second = scorer.extend(context, {{&first[1].prefix, {a + b + c}}});
  const size_t new_tokens = engine->tokenize(context + a + b + c, true, false).size() -
                            engine->tokenize(context + a + b, true, false).size();
  EXPECT_EQ(scorer.stats().evaluated_tokens - evaluated, static_cast<int64_t>(new_tokens))
      << "the new tokens, with the last old one re-fed and the last new one not fed";
  EXPECT_NEAR(second[0].scores[0], reference.score(context, {a + b + c})[0], 1e-5);
  EXPECT_EQ(scorer.stats().evaluate_calls, 2);

  for (FluencyPrefix* p : {&root, &first[0].prefix, &first[1].prefix, &second[0].prefix}) scorer.release(*p);
  EXPECT_EQ(engine->free_slots(), free_before);
}

}  // namespace
}  // namespace ponder
