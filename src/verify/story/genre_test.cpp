// The genre scorer on the real stories260K model as a (weak) judge: stories260K has no chat
// template and its 512-token vocabulary has no "yes", so the question is phrased for what it can
// answer ("big" / "little"). Scores are checked against a from-scratch evaluation of each
// sentence's whole question on a separate engine, and batching against one story at a time.
#include "verify/story/genre.h"

#include <cmath>
#include <numeric>
#include <stdexcept>

#include <gtest/gtest.h>

#include "engine/llama_engine.h"
#include "fake_embed.h"
#include "tasks/story/segment.h"
#include "stories_judge.h"
#include "test_engines.h"
#include "test_paths.h"

namespace ponder {
namespace {

using ponder::testing::stories_model;

std::unique_ptr<Engine> open(int branches = 16) { return testing::open_stories_engine(branches); }

const auto stories_options = testing::stories_genre_judge;

const std::vector<std::string> kStories = {
    "Lily had a big red ball. She played with it in the park. Then it rained.",
    "Tom saw a little dog. The dog was sad.",
    "",  // no sentence: 0
    "Tom saw a little dog. The dog was happy and ran to the big tree.",  // shares a sentence
};

// P(big) / (P(big) + P(little)) for one question, on a fresh one-branch engine.
double reference(const std::string& question, const YesNoTokens& answers) {
  auto e = open(1);
  std::vector<Token> candidates = answers.yes;
  candidates.insert(candidates.end(), answers.no.begin(), answers.no.end());
  const auto tokens = e->tokenize(question, true, true);
  const auto r = e->evaluate({{e->new_branch({}), tokens, {static_cast<int32_t>(tokens.size() - 1)}, candidates}});
  double yes = 0, no = 0;
  for (size_t j = 0; j < candidates.size(); ++j) (j < answers.yes.size() ? yes : no) += r[0].probs[0][j];
  return yes / (yes + no);
}

TEST(GenreScorer, ScoresAreSentenceMeansOfFromScratchJudgements) {
  PONDER_REQUIRE_FILE(stories_model());
  auto engine = open();
  GenreScorer scorer(*engine, stories_options());
  const int32_t slots = engine->free_slots();
  const auto scores = scorer.score("happy", kStories);
  ASSERT_EQ(scores.size(), kStories.size());
  EXPECT_EQ(engine->free_slots(), slots) << "every branch is freed";
  EXPECT_EQ(scores[2], 0.0);

  for (size_t s = 0; s < kStories.size(); ++s) {
    if (kStories[s].empty()) continue;
    double sum = 0;
    int n = 0;
    for (std::string sentence : story::split_sentences(kStories[s])) {
      while (!sentence.empty() && sentence.back() == ' ') sentence.pop_back();
      EXPECT_EQ(scorer.render("happy", sentence),
                "Once upon a time, there was a happy story. " + sentence + " Was it big or little? It was");
      sum += reference(scorer.render("happy", sentence), scorer.answer_tokens());
      ++n;
    }
    EXPECT_NEAR(scores[s], sum / n, 1e-4) << "story " << s;
    EXPECT_GT(scores[s], 0.0);
    EXPECT_LT(scores[s], 1.0);
  }

  // 3 + 2 + 0 + 2 sentences, "Tom saw a little dog." once: 6 distinct, in one evaluate() call.
  const auto stats = scorer.stats();
  EXPECT_EQ(stats.sentences, 6);
  EXPECT_EQ(stats.stories, 4);
  EXPECT_EQ(stats.evaluate_calls, 1);
  EXPECT_EQ(stats.calls, 1);
  // The question's start is computed once, not per sentence.
  const auto prefix = engine->tokenize("Once upon a time, there was a happy story.", true, true).size();
  int64_t whole = 0;
  for (const auto& story : kStories) {
    for (const auto& s : story::split_sentences(story)) {
      whole += static_cast<int64_t>(engine->tokenize(scorer.render("happy", s), true, true).size());
    }
  }
  EXPECT_LT(stats.tokens_evaluated, whole - 4 * static_cast<int64_t>(prefix));
}

TEST(GenreScorer, DeterministicAndBatchEqualsOneAtATime) {
  PONDER_REQUIRE_FILE(stories_model());
  auto engine = open();
  GenreScorer scorer(*engine, stories_options());
  const auto batch = scorer.score("sad", kStories);
  EXPECT_EQ(scorer.score("sad", kStories), batch) << "deterministic";
  for (size_t s = 0; s < kStories.size(); ++s) {
    const auto alone = scorer.score("sad", {kStories[s]});
    EXPECT_NEAR(alone[0], batch[s], 1e-5) << "story " << s;
    const auto per_sentence = scorer.score_sentences("sad", kStories[s]);
    ASSERT_EQ(per_sentence.sentences.size(), per_sentence.scores.size());
    if (per_sentence.scores.empty()) continue;
    const double mean = std::accumulate(per_sentence.scores.begin(), per_sentence.scores.end(), 0.0) /
                        static_cast<double>(per_sentence.scores.size());
    EXPECT_NEAR(mean, batch[s], 1e-5);
    for (double x : per_sentence.scores) {
      EXPECT_GE(x, 0.0);
      EXPECT_LE(x, 1.0);
    }
  }
  // The genre is part of the question.
  EXPECT_NE(scorer.score("happy", {kStories[0]})[0], batch[0]);
}

TEST(GenreScorer, FewBranchesTakeSeveralCallsAndLeakNone) {
  PONDER_REQUIRE_FILE(stories_model());
  auto wide = open();
  auto narrow = open(3);  // a shared branch and two forks at a time
  GenreScorer a(*wide, stories_options());
  GenreScorer b(*narrow, stories_options());
  const auto expected = a.score("happy", kStories);
  const auto got = b.score("happy", kStories);
  for (size_t s = 0; s < kStories.size(); ++s) EXPECT_NEAR(got[s], expected[s], 1e-5) << "story " << s;
  EXPECT_GT(b.stats().evaluate_calls, 1);
  EXPECT_EQ(narrow->free_slots(), 3);
}

TEST(GenreScorer, RejectsUnusableOptions) {
  PONDER_REQUIRE_FILE(stories_model());
  auto engine = open(1);
  auto with = [](auto change) {
    auto o = stories_options();
    change(o);
    return o;
  };
  EXPECT_THROW(GenreScorer(*engine, with([](auto& o) { o.question_template = "Is it {genre}?"; })), EngineError);
  EXPECT_THROW(GenreScorer(*engine, with([](auto& o) { o.yes = ""; })), EngineError);
  EXPECT_THROW(GenreScorer(*engine, with([](auto& o) { o.no = "big"; })), EngineError);
  EXPECT_NO_THROW(GenreScorer(*engine, stories_options()));
}

// Genre by embeddings, with letter-count vectors worked out by hand: the description "a b" is
// (1,1,0,...); sentence "aa." is (2,0,...) (cos = 1/sqrt 2) and "c." is (0,0,1) (cos = 0). (A
// line break ends a sentence for ICU; ". c" would not, before a lower-case letter.)
TEST(EmbeddingGenre, MeanOverSentencesOfTheSimilarityToTheDescription) {
  EmbeddingGenreScorer scorer(testing::letter_counts, "a {genre}");
  const std::vector<double> s = scorer.score("b", {"aa.\nc.", "aa.", "", "c."});
  const double aa = (1.0 + 1.0 / std::sqrt(2.0)) / 2.0;
  const double c = 0.5;
  ASSERT_EQ(s.size(), 4u);
  EXPECT_NEAR(s[0], (aa + c) / 2.0, 1e-6);
  EXPECT_NEAR(s[1], aa, 1e-6);
  EXPECT_EQ(s[2], 0.0);
  EXPECT_NEAR(s[3], c, 1e-6);
  EXPECT_THROW(EmbeddingGenreScorer(nullptr), std::invalid_argument);
}

}  // namespace
}  // namespace ponder
