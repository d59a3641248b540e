#include "search/selection.h"

#include <gtest/gtest.h>

namespace ponder {
namespace {

TEST(Aggregate, LastMinProdMean) {
  const std::vector<double> s = {0.5, 0.8, 0.4};
  EXPECT_DOUBLE_EQ(aggregate(s, Aggregation::kLast), 0.4);
  EXPECT_DOUBLE_EQ(aggregate(s, Aggregation::kMin), 0.4);
  EXPECT_DOUBLE_EQ(aggregate(s, Aggregation::kProd), 0.16);
  EXPECT_DOUBLE_EQ(aggregate(s, Aggregation::kMean), 1.7 / 3);
  EXPECT_DOUBLE_EQ(aggregate({0.9, 0.2, 0.7}, Aggregation::kMin), 0.2);
  EXPECT_DOUBLE_EQ(aggregate({}, Aggregation::kProd), 0.0);
  EXPECT_EQ(parse_aggregation("prod"), Aggregation::kProd);
  EXPECT_EQ(parse_aggregation("max"), std::nullopt);
}

TEST(Select, NaiveMajorityWeighted) {
  const std::vector<Ballot> b = {{"7", 0.9}, {"3", 0.5}, {"3", 0.6}, {std::nullopt, 0.95}, {"4", 0.2}};
  const Selection naive = select_naive(b);
  EXPECT_EQ(naive.solution, 3);
  EXPECT_EQ(naive.answer, std::nullopt);
  const Selection majority = select_majority(b);
  EXPECT_EQ(majority.answer, "3");
  EXPECT_EQ(majority.value, 2.0);
  EXPECT_EQ(majority.solution, 2);  // the answer's best-scored solution represents it
  const Selection weighted = select_weighted(b);
  EXPECT_EQ(weighted.answer, "3");
  EXPECT_DOUBLE_EQ(weighted.value, 1.1);
}

TEST(Select, WeightedCanDisagreeWithMajority) {
  const std::vector<Ballot> b = {{"1", 0.1}, {"1", 0.1}, {"2", 0.9}};
  EXPECT_EQ(select_majority(b).answer, "1");
  EXPECT_EQ(select_weighted(b).answer, "2");
}

TEST(Select, TiesGoToTheFirst) {
  const std::vector<Ballot> b = {{"b", 0.5}, {"a", 0.5}, {"a", 0.2}, {"b", 0.2}};
  EXPECT_EQ(select_naive(b).solution, 0);
  EXPECT_EQ(select_majority(b).answer, "b");
  EXPECT_EQ(select_weighted(b).answer, "b");
}

TEST(Select, NothingToSelect) {
  EXPECT_EQ(select_naive({}).solution, -1);
  const Selection m = select_majority({{std::nullopt, 0.3}});
  EXPECT_EQ(m.solution, -1);
  EXPECT_EQ(m.answer, std::nullopt);
}

}  // namespace
}  // namespace ponder
