// The story step verifier on stories260K with a fake embedding: its step scores are the
// StoryScorer totals of the same texts, its states are handled as CheckerStepVerifier's are,
// and a story search through it releases every state it takes.
#include "verify/story/story_verifier.h"

#include <optional>
#include <stdexcept>

#include <gtest/gtest.h>

#include "search/search.h"
#include "tasks/story/segment.h"
#include "fake_embed.h"
#include "test_engines.h"
#include "test_paths.h"

namespace ponder {
namespace {

using testing::letter_counts;

const std::string kOpening = "Once upon a time, there was a little girl named Lily.";

TEST(StoryStepVerifier, StepScoresAreTheScorerTotalsOfEachPrefix) {
  PONDER_REQUIRE_FILE(testing::stories_model());
  auto lm = testing::open_stories_engine();
  FluencyScorer fluency(*lm);
  StoryScorer scorer(fluency, letter_counts, nullptr);
  StoryStepVerifier verifier(scorer, "happy");

  const VerifierState root = verifier.root(kOpening);
  const auto first = verifier.extend({{root, {" She loved to play in the park.", " She had a dog."}, false},
                                      {root, {" One day, she found a big red ball."}, false}});
  EXPECT_EQ(verifier.stats().calls, 1);  // one score() call for all new prefixes
  ASSERT_EQ(first.size(), 2u);
  ASSERT_EQ(first[0].step_scores.size(), 2u);
  ASSERT_EQ(first[1].step_scores.size(), 1u);

  // Fluency is read incrementally on forked branches: the same probabilities as a whole reading,
  // up to float rounding across batch layouts (~1e-7).
  constexpr double kTol = 1e-6;
  const auto expected = scorer.score(kOpening, "happy",
                                     {" She loved to play in the park.", " She loved to play in the park. She had a dog.",
                                      " One day, she found a big red ball."});
  EXPECT_NEAR(first[0].step_scores[0], expected[0].total, kTol);
  EXPECT_NEAR(first[0].step_scores[1], expected[1].total, kTol);
  EXPECT_NEAR(first[1].step_scores[0], expected[2].total, kTol);
  for (const auto& s : first) {
    for (double v : s.step_scores) {
      EXPECT_GE(v, 0.0);
      EXPECT_LE(v, 1.0);
    }
  }

  // Consuming the parent moves its text on: the child continues it, the parent is gone.
  const auto second = verifier.extend({{first[1].state, {" It was very happy."}, true}});
  EXPECT_THROW(verifier.release(first[1].state), std::invalid_argument);
  const auto again = scorer.score(kOpening, "happy", {" One day, she found a big red ball. It was very happy."});
  EXPECT_NEAR(second.at(0).step_scores.at(0), again[0].total, kTol);

  // The final report reads the memo: no new scorer call for prefixes already scored.
  const int64_t calls = verifier.stats().calls;
  const auto report = verifier.score_stories(kOpening, {" She loved to play in the park. She had a dog.",
                                                        " One day, she found a big red ball. It was very happy."});
  EXPECT_EQ(verifier.stats().calls, calls);
  EXPECT_NEAR(report[0].coherence, expected[1].coherence, kTol);
  EXPECT_NEAR(report[0].fluency, expected[1].fluency, kTol);
  EXPECT_FALSE(report[0].genre);
  EXPECT_NEAR(report[1].total, again[0].total, kTol);
  // ... and one call for those it has not seen.
  verifier.score_stories(kOpening, {" The end."});
  EXPECT_EQ(verifier.stats().calls, calls + 1);

  EXPECT_EQ(verifier.live_states(), 3u);  // root, first[0], second[0]
  for (VerifierState s : {root, first[0].state, second[0].state}) verifier.release(s);
  EXPECT_EQ(verifier.live_states(), 0u);
}

TEST(StoryStepVerifier, RejectsUnknownAndTwiceConsumedStatesBeforeChangingAnything) {
  PONDER_REQUIRE_FILE(testing::stories_model());
  auto lm = testing::open_stories_engine();
  FluencyScorer fluency(*lm);
  StoryScorer scorer(fluency, letter_counts, nullptr);
  StoryStepVerifier verifier(scorer, "happy");
  const VerifierState root = verifier.root(kOpening);
  EXPECT_THROW(verifier.extend({{root + 100, {" A."}, false}}), std::invalid_argument);
  EXPECT_THROW(verifier.extend({{root, {" A."}, true}, {root, {" B."}, true}}), std::invalid_argument);
  EXPECT_THROW(verifier.release(root + 100), std::invalid_argument);
  EXPECT_EQ(verifier.stats().calls, 0);
  EXPECT_EQ(verifier.live_states(), 1u);
  verifier.release(root);
  EXPECT_THROW(verifier.release(root), std::invalid_argument);
}

// A sentence-per-step DVTS search guided by the verifier: every solution's score is the total
// of its whole story, and the search releases every state.
TEST(StoryStepVerifier, SentenceSearchReleasesEveryState) {
  PONDER_REQUIRE_FILE(testing::stories_model());
  auto generator = testing::open_stories_engine(8, 4096);
  auto lm = testing::open_stories_engine();
  FluencyScorer fluency(*lm);
  StoryScorer scorer(fluency, letter_counts, nullptr);
  StoryStepVerifier verifier(scorer, "happy");

  SearchOptions o;
  o.strategy = Strategy::kDvts;
  o.n = 4;
  o.beam_width = 2;
  o.max_rounds = 3;
  o.max_tokens = 48;
  o.step_delimiter.clear();
  o.step_end = [](std::string_view text) -> std::optional<size_t> {
    const size_t end = story::first_sentence_end(text);
    if (end == std::string_view::npos) return std::nullopt;
    return end;
  };
  o.seed = 3;
  const SearchProblem problem{kOpening, generator->tokenize(kOpening, true, false)};
  const SearchResult r = run_search(*generator, {&verifier, nullptr}, problem, o, nullptr);
  ASSERT_FALSE(r.solutions.empty());
  for (const Solution& s : r.solutions) {
    const auto scores = verifier.score_stories(kOpening, {s.text});
    EXPECT_NEAR(s.score, scores[0].total, 1e-9) << s.text;
  }
  EXPECT_EQ(verifier.live_states(), 0u);
  EXPECT_EQ(generator->free_slots(), 8);
}

}  // namespace
}  // namespace ponder
