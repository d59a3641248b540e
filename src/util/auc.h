// Ranking quality of a score between positives and negatives (right and wrong solutions, "+" and
// "-" steps): the area under the ROC curve, over all pairs or within groups (e.g. the solutions
// of one problem), ties counting one half. Used by train-toy's PRM check and by ponder report.
#pragma once

#include <algorithm>
#include <cstddef>
#include <limits>
#include <stdexcept>
#include <utility>
#include <vector>

namespace ponder {

// Pairs (positive, negative) in which the positive scores higher, ties one half, by Mann-Whitney U:
// the ranks of the positives among all scores, ties sharing their mean rank.
inline double pairwise_wins(const std::vector<double>& positive, const std::vector<double>& negative) {
  std::vector<std::pair<double, bool>> all;
  for (double s : positive) all.emplace_back(s, true);
  for (double s : negative) all.emplace_back(s, false);
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  double rank_sum = 0.0;
  for (size_t i = 0; i < all.size();) {
    size_t j = i;
    while (j < all.size() && all[j].first == all[i].first) ++j;
    const double mean_rank = 0.5 * static_cast<double>(i + 1 + j);  // ranks i+1..j
    for (size_t k = i; k < j; ++k) rank_sum += all[k].second ? mean_rank : 0.0;
    i = j;
  }
  const double np = static_cast<double>(positive.size());
  return rank_sum - np * (np + 1.0) / 2.0;
}

// The AUC over pairs of the same group only: positives and negatives by group index, the groups'
// pairs pooled. A score that only tells the groups apart (say, easy problems from hard ones)
// ranks well across groups and gets no credit here. NaN without any pair. Throws
// std::invalid_argument when the sides have different numbers of groups.
inline double roc_auc_within(const std::vector<std::vector<double>>& positive,
                             const std::vector<std::vector<double>>& negative) {
  if (positive.size() != negative.size()) throw std::invalid_argument("roc_auc_within: as many groups on each side");
  double won = 0.0, pairs = 0.0;
  for (size_t g = 0; g < positive.size(); ++g) {
    won += pairwise_wins(positive[g], negative[g]);
    pairs += static_cast<double>(positive[g].size()) * static_cast<double>(negative[g].size());
  }
  return pairs > 0.0 ? won / pairs : std::numeric_limits<double>::quiet_NaN();
}

// The AUC: the chance that a random positive scores above a random negative, ties counting one
// half. NaN when either side is empty.
inline double roc_auc(const std::vector<double>& positive, const std::vector<double>& negative) {
  return roc_auc_within({positive}, {negative});
}

}  // namespace ponder
