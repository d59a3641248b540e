#include "engine/sampler.h"

#include <cmath>
#include <map>
#include <vector>

#include <gtest/gtest.h>

namespace ponder {
namespace {

double log_softmax(const std::vector<float>& logits, int i) {
  double m = *std::max_element(logits.begin(), logits.end());
  double sum = 0;
  for (float l : logits) sum += std::exp(l - m);
  return logits[i] - m - std::log(sum);
}

std::map<Token, int> draw(SamplingParams p, const std::vector<float>& logits, int n) {
  BranchSampler s(p);
  std::map<Token, int> counts;
  for (int i = 0; i < n; ++i) counts[s.sample(logits.data(), static_cast<int32_t>(logits.size())).token]++;
  return counts;
}

TEST(Sampler, GreedyTakesArgmaxAndLowestIdOnTies) {
  SamplingParams p;
  p.temperature = 0;
  BranchSampler s(p);
  std::vector<float> logits = {0.5f, 2.0f, -1.0f, 2.0f};
  EXPECT_EQ(s.sample(logits.data(), 4).token, 1);
}

TEST(Sampler, ReportsRawLogprobWhateverTheTemperature) {
  std::vector<float> logits = {1.0f, 2.0f, 3.0f, 0.0f};
  for (float t : {0.0f, 0.3f, 1.0f, 5.0f}) {
    SamplingParams p;
    p.temperature = t;
    p.seed = 7;
    BranchSampler s(p);
    StepInfo step = s.sample(logits.data(), 4);
    EXPECT_NEAR(step.logprob, log_softmax(logits, step.token), 1e-5) << "temperature " << t;
  }
}

TEST(Sampler, EntropyOfUniformIsLogV) {
  SamplingParams p;
  p.entropy = true;
  std::vector<float> logits(16, 0.25f);
  BranchSampler s(p);
  EXPECT_NEAR(s.sample(logits.data(), 16).entropy, std::log(16.0), 1e-5);
}

TEST(Sampler, TopLogprobsAreSortedAndExact) {
  SamplingParams p;
  p.top_logprobs = 3;
  std::vector<float> logits = {0.1f, 4.0f, 2.0f, 3.0f, -2.0f};
  BranchSampler s(p);
  StepInfo step = s.sample(logits.data(), 5);
  ASSERT_EQ(step.top.size(), 3u);
  EXPECT_EQ(step.top[0].token, 1);
  EXPECT_EQ(step.top[1].token, 3);
  EXPECT_EQ(step.top[2].token, 2);
  EXPECT_NEAR(step.top[0].logprob, log_softmax(logits, 1), 1e-5);
}

TEST(Sampler, SameSeedSameTokensDifferentSeedDifferent) {
  std::vector<float> logits(50);
  for (int i = 0; i < 50; ++i) logits[i] = std::sin(i * 1.7f);
  auto run = [&](uint64_t seed) {
    SamplingParams p;
    p.seed = seed;
    BranchSampler s(p);
    std::vector<Token> out;
    for (int i = 0; i < 40; ++i) out.push_back(s.sample(logits.data(), 50).token);
    return out;
  };
  EXPECT_EQ(run(3), run(3));
  EXPECT_NE(run(3), run(4));
}

TEST(Sampler, FrequenciesFollowTemperedSoftmax) {
  std::vector<float> logits = {0.0f, 1.0f, 2.0f};
  SamplingParams p;
  p.temperature = 0.5f;
  p.seed = 11;
  const int n = 20000;
  auto counts = draw(p, logits, n);
  double z = std::exp(0.0) + std::exp(2.0) + std::exp(4.0);
  EXPECT_NEAR(counts[0] / double(n), 1 / z, 0.01);
  EXPECT_NEAR(counts[1] / double(n), std::exp(2.0) / z, 0.01);
  EXPECT_NEAR(counts[2] / double(n), std::exp(4.0) / z, 0.01);
}

TEST(Sampler, TopKKeepsOnlyTheKMostLikely) {
  std::vector<float> logits = {1.0f, 3.0f, 2.9f, 0.5f, 2.8f};
  SamplingParams p;
  p.temperature = 5.0f;  // nearly flat: without truncation every token would appear
  p.top_k = 2;
  auto counts = draw(p, logits, 2000);
  EXPECT_EQ(counts.size(), 2u);
  EXPECT_GT(counts[1], 0);
  EXPECT_GT(counts[2], 0);
}

TEST(Sampler, TopPKeepsTheSmallestNucleus) {
  // probabilities at T=1: 0.5, 0.25, 0.125, 0.125
  std::vector<float> logits = {std::log(4.0f), std::log(2.0f), 0.0f, 0.0f};
  SamplingParams p;
  p.top_p = 0.7f;  // 0.5 < 0.7 <= 0.75: the first two
  auto counts = draw(p, logits, 4000);
  EXPECT_EQ(counts.size(), 2u);
  EXPECT_NEAR(counts[0] / 4000.0, 2.0 / 3.0, 0.03);
  p.top_p = 0.4f;
  EXPECT_EQ(draw(p, logits, 500).size(), 1u);
}

TEST(Sampler, MinPDropsTokensBelowTheFloor) {
  std::vector<float> logits = {std::log(4.0f), std::log(2.0f), 0.0f, 0.0f};
  SamplingParams p;
  p.min_p = 0.4f;  // floor 0.4 * p_max: keeps p_max and p_max/2, drops p_max/4
  auto counts = draw(p, logits, 3000);
  EXPECT_EQ(counts.size(), 2u);
  EXPECT_EQ(counts.count(2), 0u);
  EXPECT_EQ(counts.count(3), 0u);
}

}  // namespace
}  // namespace ponder
