#include "search/selection.h"

#include <algorithm>
#include <map>
#include <numeric>

namespace ponder {

const char* to_string(Aggregation aggregation) {
  switch (aggregation) {
    case Aggregation::kLast: return "last";
    case Aggregation::kMin: return "min";
    case Aggregation::kProd: return "prod";
    case Aggregation::kMean: return "mean";
  }
  return "unknown";
}

std::optional<Aggregation> parse_aggregation(const std::string& name) {
  for (Aggregation a : {Aggregation::kLast, Aggregation::kMin, Aggregation::kProd, Aggregation::kMean}) {
    if (name == to_string(a)) return a;
  }
  return std::nullopt;
}

double aggregate(const std::vector<double>& scores, Aggregation aggregation) {
  if (scores.empty()) return 0.0;
  switch (aggregation) {
    case Aggregation::kLast: return scores.back();
    case Aggregation::kMin: return *std::min_element(scores.begin(), scores.end());
    case Aggregation::kProd: return std::accumulate(scores.begin(), scores.end(), 1.0, std::multiplies<>());
    case Aggregation::kMean: return std::accumulate(scores.begin(), scores.end(), 0.0) / scores.size();
  }
  return 0.0;
}

Selection select_naive(const std::vector<Ballot>& ballots) {
  Selection best;
  for (size_t i = 0; i < ballots.size(); ++i) {
    if (best.solution < 0 || ballots[i].score > best.value) {
      best = {ballots[i].answer, static_cast<int32_t>(i), ballots[i].score};
    }
  }
  return best;
}

namespace {

// Per answer, in order of first appearance: a tally and the best-scored solution giving it.
struct Tally {
  std::string answer;
  double value = 0.0;
  int32_t best = -1;
};

template <typename Weight>
Selection select_by_tally(const std::vector<Ballot>& ballots, Weight weight) {
  std::vector<Tally> tallies;
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < ballots.size(); ++i) {
    if (!ballots[i].answer) continue;
    auto [it, fresh] = index.try_emplace(*ballots[i].answer, tallies.size());
    if (fresh) tallies.push_back({*ballots[i].answer});
    Tally& t = tallies[it->second];
    t.value += weight(ballots[i]);
    if (t.best < 0 || ballots[i].score > ballots[t.best].score) t.best = static_cast<int32_t>(i);
  }
  Selection out;
  const Tally* win = nullptr;
  for (const Tally& t : tallies) {
    if (!win || t.value > win->value) win = &t;
  }
  if (win) out = {win->answer, win->best, win->value};
  return out;
}

}  // namespace

Selection select_majority(const std::vector<Ballot>& ballots) {
  return select_by_tally(ballots, [](const Ballot&) { return 1.0; });
}

Selection select_weighted(const std::vector<Ballot>& ballots) {
  return select_by_tally(ballots, [](const Ballot& b) { return b.score; });
}

}  // namespace ponder
