// The AUC helpers against values worked out by hand.
#include "util/auc.h"

#include <cmath>
#include <stdexcept>

#include <gtest/gtest.h>

namespace ponder {
namespace {

TEST(Auc, OverAllPairsAndWithinGroups) {
  EXPECT_DOUBLE_EQ(roc_auc({0.9, 0.8}, {0.1, 0.2, 0.3}), 1.0);
  EXPECT_DOUBLE_EQ(roc_auc({0.1}, {0.9, 0.8}), 0.0);
  EXPECT_DOUBLE_EQ(roc_auc({0.5, 0.5}, {0.5}), 0.5);  // ties count one half
  // 0.6 beats 0.4 and ties 0.6; 0.2 beats neither: (1 + 0.5 + 0) / 4.
  EXPECT_DOUBLE_EQ(roc_auc({0.6, 0.2}, {0.4, 0.6}), 0.375);
  EXPECT_TRUE(std::isnan(roc_auc({}, {0.5})));
  EXPECT_TRUE(std::isnan(roc_auc({0.5}, {})));
  // Within groups: group 0's scores are all above group 1's, so across groups the positives win,
  // but within each group they lose.
  const std::vector<std::vector<double>> pos = {{0.8}, {0.1, 0.2}}, neg = {{0.9}, {0.3}};
  EXPECT_DOUBLE_EQ(roc_auc({0.8, 0.1, 0.2}, {0.9, 0.3}), 1.0 / 6.0);
  EXPECT_DOUBLE_EQ(roc_auc_within(pos, neg), 0.0);
  EXPECT_DOUBLE_EQ(roc_auc_within({{0.8}, {0.4, 0.2}}, {{0.9}, {0.3}}), 1.0 / 3.0);  // 1 of 3 pairs
  EXPECT_TRUE(std::isnan(roc_auc_within({{0.5}, {}}, {{}, {0.5}})));  // no pair within a group
  EXPECT_THROW(roc_auc_within({{0.5}}, {}), std::invalid_argument);
}

TEST(Auc, PairwiseWinsCountTiesAsHalf) {
  EXPECT_DOUBLE_EQ(pairwise_wins({0.9, 0.5}, {0.5, 0.1}), 3.5);  // 0.9 beats both, 0.5 ties one and beats one
  EXPECT_DOUBLE_EQ(pairwise_wins({0.2}, {0.8, 0.3}), 0.0);
  EXPECT_DOUBLE_EQ(pairwise_wins({}, {0.5}), 0.0);
}

}  // namespace
}  // namespace ponder
