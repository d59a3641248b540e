// The total story score: each metric as its own scorer gives it, combined by the weights (and
// re-weighted without a genre judge), on stories260K.
#include "verify/story/story_score.h"

#include <gtest/gtest.h>

#include "verify/story/coherence.h"
#include "fake_embed.h"
#include "stories_judge.h"
#include "test_engines.h"
#include "test_paths.h"

namespace ponder {
namespace {

const auto stories_judge = testing::stories_genre_judge;

using testing::letter_counts;

const std::string kPrompt = "Once upon a time, there was a little girl named Lily.";
const std::vector<std::string> kContinuations = {" She loved to play in the park with her dog.",
                                                 " Park dog her the with play to loved she.",
                                                 " One day, she found a big red ball. She was very happy."};

TEST(StoryScore, TotalIsTheWeightedMeanOfTheScorersOwnScores) {
  PONDER_REQUIRE_FILE(testing::stories_model());
  auto lm = testing::open_stories_engine();
  auto judge_engine = testing::open_stories_engine();
  FluencyScorer fluency(*lm);
  GenreScorer genre(*judge_engine, stories_judge());
  const StoryWeights weights{0.5, 0.2, 0.3};
  StoryScorer scorer(fluency, letter_counts, &genre, weights);
  const auto scores = scorer.score(kPrompt, "happy", kContinuations);
  ASSERT_EQ(scores.size(), kContinuations.size());

  std::vector<std::string> stories;
  for (const auto& c : kContinuations) stories.push_back(kPrompt + c);
  FluencyScorer fluency_alone(*lm);
  GenreScorer genre_alone(*judge_engine, stories_judge());
  const auto f = fluency_alone.score(kPrompt, kContinuations);
  const auto c = coherence_scores(stories, letter_counts);
  const auto g = genre_alone.score("happy", stories);
  for (size_t i = 0; i < scores.size(); ++i) {
    EXPECT_NEAR(scores[i].fluency, f[i], 1e-9);
    EXPECT_NEAR(scores[i].coherence, c[i], 1e-9);
    ASSERT_TRUE(scores[i].genre);
    EXPECT_NEAR(*scores[i].genre, g[i], 1e-9);
    EXPECT_NEAR(scores[i].total, 0.5 * c[i] + 0.2 * f[i] + 0.3 * g[i], 1e-9);
    EXPECT_GE(scores[i].total, 0.0);
    EXPECT_LE(scores[i].total, 1.0);
  }
  // The shuffled words read worse than the sentence they came from.
  EXPECT_GT(scores[0].fluency, scores[1].fluency);
}

TEST(StoryScore, WithoutAGenreJudgeTheOtherWeightsAreRescaled) {
  PONDER_REQUIRE_FILE(testing::stories_model());
  auto lm = testing::open_stories_engine();
  FluencyScorer fluency(*lm);
  StoryScorer scorer(fluency, letter_counts, nullptr);  // defaults 0.4 / 0.3 / 0.3
  const auto scores = scorer.score(kPrompt, "happy", kContinuations);
  for (const StoryScores& s : scores) {
    EXPECT_FALSE(s.genre);
    EXPECT_NEAR(s.total, (0.4 * s.coherence + 0.3 * s.fluency) / 0.7, 1e-12);
  }
}

TEST(StoryScore, RejectsUnusableWeights) {
  PONDER_REQUIRE_FILE(testing::stories_model());
  auto lm = testing::open_stories_engine();
  FluencyScorer fluency(*lm);
  EXPECT_THROW(StoryScorer(fluency, letter_counts, nullptr, {-0.1, 0.5, 0.5}), std::invalid_argument);
  EXPECT_THROW(StoryScorer(fluency, letter_counts, nullptr, {0.0, 0.0, 1.0}), std::invalid_argument);
  EXPECT_THROW(StoryScorer(fluency, nullptr, nullptr), std::invalid_argument);
}

}  // namespace
}  // namespace ponder
