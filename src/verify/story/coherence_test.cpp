// Coherence with a fake embedder whose vectors give hand-computable scores, and once end to end
// on stories260K's mean-pooled hidden states.
#include "verify/story/coherence.h"

#include <cmath>
#include <map>

#include <gtest/gtest.h>

#include "engine/llama_embedder.h"
#include "fake_embed.h"
#include "test_paths.h"

namespace ponder {
namespace {

// Looks each text up in a table, recording every call.
struct FakeEmbedder {
  std::map<std::string, std::vector<float>> table;
  std::vector<std::vector<std::string>> calls;
  EmbedFunction function() {
    return [this](const std::vector<std::string>& texts) {
      calls.push_back(texts);
      std::vector<std::vector<float>> out;
      for (const auto& t : texts) out.push_back(table.at(t));
      return out;
    };
  }
};

FakeEmbedder fake() {
  FakeEmbedder f;
  f.table = {{"A.", {1, 0}}, {"B.", {0, 1}}, {"C.", {-1, 0}}, {"D.", {3, 3}}};
  return f;
}

TEST(CoherenceTest, HandComputedScores) {
  FakeEmbedder f = fake();
  const auto scores = coherence_scores({"A. B.", "A. C.", "A. A.", "A. D. B.", "A."}, f.function());
  ASSERT_EQ(scores.size(), 5u);
  EXPECT_DOUBLE_EQ(scores[0], 0.5);  // cos 0
  EXPECT_DOUBLE_EQ(scores[1], 0.0);  // cos -1
  EXPECT_DOUBLE_EQ(scores[2], 1.0);  // cos 1
  // cos(A, D) = cos(D, B) = 1/sqrt(2): (1 + 1/sqrt(2)) / 2
  EXPECT_NEAR(scores[3], (1.0 + 1.0 / std::sqrt(2.0)) / 2.0, 1e-12);
  EXPECT_DOUBLE_EQ(scores[4], 1.0);  // one sentence
}

TEST(CoherenceTest, OneEmbedCallWithDistinctTrimmedSentences) {
  FakeEmbedder f = fake();
  coherence_scores({"A. B.", "A.  C.\n\nA.", "B."}, f.function());
  ASSERT_EQ(f.calls.size(), 1u);
  EXPECT_EQ(f.calls[0], (std::vector<std::string>{"A.", "B.", "C."}));
}

TEST(CoherenceTest, EmptyStoriesScoreZeroWithoutEmbedding) {
  FakeEmbedder f = fake();
  EXPECT_EQ(coherence_scores({"", "  \n"}, f.function()), (std::vector<double>{0.0, 0.0}));
  EXPECT_TRUE(f.calls.empty());
  EXPECT_TRUE(coherence_scores({}, f.function()).empty());
}

TEST(CoherenceTest, WrongVectorCountThrows) {
  EmbedFunction broken = [](const std::vector<std::string>&) { return std::vector<std::vector<float>>{{1, 0}}; };
  EXPECT_THROW(coherence_scores({"A. B."}, broken), std::invalid_argument);
}

TEST(CoherenceTest, EndToEndOnStoriesModel) {
  PONDER_REQUIRE_FILE(ponder::testing::stories_model());
  LlamaEmbedderOptions o;
  o.model_path = ponder::testing::stories_model();
  o.n_threads = 1;
  LlamaEmbedder embedder(o);
  EmbedFunction embed = [&](const std::vector<std::string>& texts) { return embedder.embed(texts); };
  const std::vector<std::string> stories = {
      "Once upon a time, there was a little girl named Lily. She liked to play in the park. "
      "One day, she saw a big dog.",
      "Tom had a red ball. The ball was big. zq 7 ## ]] xkcd.",
      "The end.",
  };
  const auto first = coherence_scores(stories, embed);
  const auto second = coherence_scores(stories, embed);
  ASSERT_EQ(first.size(), stories.size());
  for (size_t i = 0; i < first.size(); ++i) {
    EXPECT_GE(first[i], 0.0);
    EXPECT_LE(first[i], 1.0);
    EXPECT_DOUBLE_EQ(first[i], second[i]);
  }
  EXPECT_DOUBLE_EQ(first[2], 1.0);
}

// The memo embeds each distinct text once across calls, and gives the same vectors back.
TEST(CoherenceTest, MemoizedEmbedEmbedsEachTextOnce) {
  std::vector<std::string> embedded;
  const EmbedFunction counting = [&](const std::vector<std::string>& texts) {
    embedded.insert(embedded.end(), texts.begin(), texts.end());
    return testing::letter_counts(texts);
  };
  const EmbedFunction embed = memoized(counting);
  const auto first = embed({"a cat", "a dog", "a cat"});
  EXPECT_EQ(embedded, (std::vector<std::string>{"a cat", "a dog"}));
  const auto second = embed({"a dog", "a bird"});
  EXPECT_EQ(embedded, (std::vector<std::string>{"a cat", "a dog", "a bird"}));
  EXPECT_EQ(second[0], first[1]);
  EXPECT_EQ(first[0], first[2]);
  EXPECT_EQ(second[1], testing::letter_counts({"a bird"})[0]);
}

}  // namespace
}  // namespace ponder
