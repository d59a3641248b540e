// Diversity with a fake embedder: distinct-n and pairwise distances computed by hand.
#include "verify/story/diversity.h"

#include <map>

#include <gtest/gtest.h>

namespace ponder {
namespace {

TEST(DiversityTest, DistinctNByHand) {
  // Words: "the cat sat" / "The cat ran": 6 unigrams, 4 distinct (the, cat, sat, ran);
  // 4 bigrams, 3 distinct (the cat, cat sat, cat ran). No bigram spans the two stories.
  const std::vector<std::string> stories = {"the cat  sat", "The\ncat ran"};
  EXPECT_DOUBLE_EQ(distinct_n(stories, 1), 4.0 / 6.0);
  EXPECT_DOUBLE_EQ(distinct_n(stories, 2), 3.0 / 4.0);
  EXPECT_DOUBLE_EQ(distinct_n(stories, 3), 1.0);
  EXPECT_DOUBLE_EQ(distinct_n(stories, 4), 0.0);  // no 4-grams at all
  EXPECT_DOUBLE_EQ(distinct_n({}, 1), 0.0);
  EXPECT_THROW(distinct_n(stories, 0), std::invalid_argument);
}

TEST(DiversityTest, PairwiseDistanceByHand) {
  const std::map<std::string, std::vector<float>> table = {
      {"a b", {1, 0}}, {"b c", {0, 2}}, {"c a", {-1, 0}}};
  int calls = 0;
  std::vector<std::string> embedded;
  EmbedFunction embed = [&](const std::vector<std::string>& texts) {
    ++calls;
    embedded = texts;
    std::vector<std::vector<float>> out;
    for (const auto& t : texts) out.push_back(table.at(t));
    return out;
  };
  // Pairs: (a b, b c) 1 - 0 = 1; (a b, c a) 1 - (-1) = 2; (b c, c a) 1 - 0 = 1; mean 4/3.
  const DiversityStats three = diversity({"a b", "b c", "c a"}, embed);
  EXPECT_DOUBLE_EQ(three.distinct_1, 3.0 / 6.0);
  EXPECT_DOUBLE_EQ(three.distinct_2, 1.0);
  EXPECT_DOUBLE_EQ(three.mean_pairwise_distance, 4.0 / 3.0);
  EXPECT_EQ(calls, 1);

  // A repeated story is embedded once and is at distance 0 from its copy:
  // pairs (a b, a b) 0, (a b, b c) 1, (a b, b c) 1: mean 2/3. Unigrams a b a b b c: 3 of 6
  // distinct; bigrams "a b" "a b" "b c": 2 of 3.
  const DiversityStats repeated = diversity({"a b", "a b", "b c"}, embed);
  EXPECT_EQ(embedded, (std::vector<std::string>{"a b", "b c"}));
  EXPECT_DOUBLE_EQ(repeated.mean_pairwise_distance, 2.0 / 3.0);
  EXPECT_DOUBLE_EQ(repeated.distinct_1, 3.0 / 6.0);
  EXPECT_DOUBLE_EQ(repeated.distinct_2, 2.0 / 3.0);
}

TEST(DiversityTest, FewerThanTwoStoriesHaveNoDistance) {
  int calls = 0;
  EmbedFunction embed = [&](const std::vector<std::string>& texts) {
    ++calls;
    return std::vector<std::vector<float>>(texts.size(), std::vector<float>{1, 0});
  };
  const DiversityStats one = diversity({"only one story"}, embed);
  EXPECT_DOUBLE_EQ(one.mean_pairwise_distance, 0.0);
  EXPECT_DOUBLE_EQ(one.distinct_1, 1.0);
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace ponder
