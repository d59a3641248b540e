// Log-prob confidence against values worked out by hand.
#include "verify/confidence.h"

#include <cmath>
#include <stdexcept>

#include <gtest/gtest.h>

namespace ponder {
namespace {

Candidate with_logprobs(std::vector<float> token_logprobs) { return {"p", {"s"}, std::move(token_logprobs), {}}; }

// One top-1 row per token, with C_i = confidences[i] (k = 1: C_i = -logprob).
Candidate with_confidences(const std::vector<double>& confidences) {
  Candidate c{"p", {"s"}, {}, {}};
  for (double v : confidences) c.top_logprobs.push_back({static_cast<float>(-v)});
  return c;
}

TEST(MeanLogprobConfidence, IsTheGeometricMeanTokenProbability) {
  MeanLogprobConfidence v;
  const auto s = v.score({with_logprobs({std::log(0.5f), std::log(0.125f)}),  // sqrt(1/16)
                          with_logprobs({0.0f, 0.0f, 0.0f}),                  // certain
                          with_logprobs({-1.0f}),
                          with_logprobs({})});
  ASSERT_EQ(s.size(), 4u);
  EXPECT_NEAR(s[0], 0.25, 1e-6);
  EXPECT_DOUBLE_EQ(s[1], 1.0);
  EXPECT_NEAR(s[2], std::exp(-1.0), 1e-6);
  EXPECT_EQ(s[3], 0.0) << "no tokens, no confidence";
  EXPECT_TRUE(v.score({}).empty());
  EXPECT_EQ(v.stats().calls, 2);
  EXPECT_EQ(v.stats().tokens_evaluated, 0);
}

TEST(MeanLogprobStepConfidence, ScoresEachPrefixAsBestOfNScoresAWholeSolution) {
  MeanLogprobStepConfidence v;
  const VerifierState root = v.root("p");
  const float half = std::log(0.5f), eighth = std::log(0.125f);
  auto scored = v.extend({{root, {"a", "b"}, false, {{half}, {eighth, 0.0f}}}});
  ASSERT_EQ(scored.size(), 1u);
  ASSERT_EQ(scored[0].step_scores.size(), 2u);
  EXPECT_NEAR(scored[0].step_scores[0], 0.5, 1e-6);
  EXPECT_NEAR(scored[0].step_scores[1], std::cbrt(0.5 * 0.125), 1e-6);  // all three tokens so far
  // Incremental: a step appended to that state scores what the whole text scores from the root,
  // and both equal MeanLogprobConfidence's score of the finished solution.
  const auto more = v.extend({{scored[0].state, {"c"}, true, {{-1.0f}}},
                              {root, {"a", "b", "c"}, false, {{half}, {eighth, 0.0f}, {-1.0f}}}});
  MeanLogprobConfidence whole;
  const double expected = whole.score({{"p", {"abc"}, {half, eighth, 0.0f, -1.0f}, {}}})[0];
  EXPECT_NEAR(more[0].step_scores[0], expected, 1e-9);
  EXPECT_NEAR(more[1].step_scores[2], expected, 1e-9);
  EXPECT_THROW(v.extend({{scored[0].state, {"d"}, false, {{-1.0f}}}}), std::invalid_argument) << "consumed";
  v.release(more[0].state);
  EXPECT_THROW(v.extend({{more[0].state, {"d"}, false, {{-1.0f}}}}), std::invalid_argument) << "released";
  EXPECT_EQ(v.stats().calls, 2);
  EXPECT_EQ(v.stats().tokens_evaluated, 0);
}

TEST(MeanLogprobStepConfidence, NeedsTheGeneratorsLogprobsOfEveryStepWithText) {
  MeanLogprobStepConfidence v;
  const VerifierState root = v.root("p");
  EXPECT_THROW(v.extend({{root, {"a"}, false}}), std::invalid_argument) << "no rows";
  EXPECT_THROW(v.extend({{root, {"a", "b"}, false, {{-1.0f}}}}), std::invalid_argument) << "a row short";
  EXPECT_THROW(v.extend({{root, {"a"}, false, {{}}}}), std::invalid_argument) << "text without log-probabilities";
  // A bad extension in a call leaves the others' parents as they were.
  EXPECT_THROW(v.extend({{root, {"a"}, true, {{-1.0f}}}, {root, {"b"}, false}}), std::invalid_argument);
  const auto empty = v.extend({{root, {""}, false, {{}}}});
  EXPECT_EQ(empty[0].step_scores[0], 0.0) << "no token yet, no confidence";
}

TEST(LowestGroupConfidence, TokenConfidenceIsMinusTheMeanTopLogprob) {
  LowestGroupConfidence v;
  Candidate c{"p", {"s"}, {-0.5f}, {{-0.5f, -1.0f, -3.0f}}};  // k = 3: (0.5 + 1 + 3) / 3
  EXPECT_NEAR(v.score({c})[0], 1.5, 1e-6);
  // A peaked distribution is more confident than a flat one over the same k.
  Candidate peaked{"p", {"s"}, {}, {{-0.01f, -6.0f, -7.0f}}};
  Candidate flat{"p", {"s"}, {}, {{-1.1f, -1.1f, -1.1f}}};
  const auto s = v.score({peaked, flat});
  EXPECT_GT(s[0], s[1]);
}

TEST(LowestGroupConfidence, LowestMeanOverSlidingWindows) {
  const auto c = with_confidences({3, 1, 2, 5});
  auto lowest = [&](int32_t window) { return LowestGroupConfidence({window}).score({c})[0]; };
  EXPECT_NEAR(lowest(1), 1.0, 1e-6);   // the least confident token
  EXPECT_NEAR(lowest(2), 1.5, 1e-6);   // windows 2, 1.5, 3.5
  EXPECT_NEAR(lowest(3), 2.0, 1e-6);   // windows 2, 8/3
  EXPECT_NEAR(lowest(4), 2.75, 1e-6);  // one window: the mean
  EXPECT_NEAR(lowest(10), 2.75, 1e-6) << "shorter than the window: one group of all tokens";
}

TEST(LowestGroupConfidence, DefaultWindowIs2048Tokens) {
  // 3000 tokens of confidence 4 with a stretch of 100 at 0: the worst window of 2048 holds the
  // whole stretch, so its mean is 4 * 1948 / 2048.
  std::vector<double> conf(3000, 4.0);
  std::fill(conf.begin() + 1000, conf.begin() + 1100, 0.0);
  LowestGroupConfidence v;
  EXPECT_NEAR(v.score({with_confidences(conf)})[0], 4.0 * 1948 / 2048, 1e-9);
  // The same solution, one group: the stretch weighs less in the mean of all 3000 tokens.
  EXPECT_NEAR(LowestGroupConfidence({4096}).score({with_confidences(conf)})[0], 4.0 * 2900 / 3000, 1e-9);
}

TEST(LowestGroupConfidence, MissingTopLogprobsAreErrors) {
  LowestGroupConfidence v;
  const Candidate good = with_confidences({1, 2});
  try {
    v.score({good, with_logprobs({-0.1f, -0.2f})});
    ADD_FAILURE() << "no error";
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("candidate 1"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("top log-probabilities"), std::string::npos) << e.what();
  }
  Candidate empty_row = good;
  empty_row.top_logprobs[1].clear();
  EXPECT_THROW(v.score({empty_row}), std::invalid_argument);
  Candidate mismatched = good;
  mismatched.token_logprobs = {-0.1f, -0.2f, -0.3f};
  EXPECT_THROW(v.score({mismatched}), std::invalid_argument);
  EXPECT_THROW(LowestGroupConfidence({0}), std::invalid_argument);
}

}  // namespace
}  // namespace ponder
