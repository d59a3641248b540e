// Step-level beam search guided by a step verifier.
//
// Each round every live beam samples one step; the new steps are scored; finished solutions
// leave the pool; the best N/M of the rest are kept and each is expanded M ways, so that N beams
// sample again. The search stops once N solutions have finished, when no beam is left, or after
// max_rounds (the last round generates every beam to its end).
#include <algorithm>
#include <numeric>

#include "search/search_run.h"

namespace ponder::detail {

SearchResult beam_search(SearchRun& run) {
  const SearchOptions& o = run.options();
  const int32_t keep = std::max(1, o.n / o.beam_width);
  std::vector<Slot> beams = run.spread({run.root()}, {o.n});
  int32_t round = 0;
  while (!beams.empty()) {
    const bool last = round == o.max_rounds - 1;
    std::vector<Slot> children = run.sample(beams, /*to_end=*/last, round);
    ++round;
    run.score(children);
    run.lookahead(children);

    std::vector<Slot> open;
    for (const Slot& c : children) {
      if (run.finished(c)) {
        run.finish(c);
      } else {
        open.push_back(c);
      }
    }
    run.report_progress(round, static_cast<int32_t>(run.solutions()));
    if (static_cast<int32_t>(run.solutions()) >= o.n || last || open.empty()) {
      for (const Slot& c : open) run.prune(c);
      break;
    }
    // The best `keep` by score; ties go to the earlier beam.
    std::stable_sort(open.begin(), open.end(), [&](const Slot& a, const Slot& b) {
      return run.selection_score(a) > run.selection_score(b);
    });
    const size_t kept = std::min(open.size(), static_cast<size_t>(keep));
    for (size_t i = kept; i < open.size(); ++i) run.prune(open[i]);
    open.resize(kept);
    for (const Slot& k : open) run.tree().node(k.node).status = NodeStatus::kKept;
    // N beams again: kept beam i serves slots i, i + kept, i + 2 kept, ...
    std::vector<int32_t> counts(kept, 0);
    for (int32_t j = 0; j < o.n; ++j) counts[j % kept]++;
    beams = run.spread(open, counts);
  }
  return run.result(round);
}

}  // namespace ponder::detail
