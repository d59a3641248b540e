// Majority voting, best-of-N and weighted best-of-N: N independent solutions, sampled together.
// They differ only in how the answer is selected (SearchRun::result).
#include "search/search_run.h"

namespace ponder::detail {

SearchResult sample_n(SearchRun& run) {
  const Slot root = run.root();
  std::vector<Slot> solutions = run.sample(run.spread({root}, {run.options().n}), /*to_end=*/true, 0);
  run.score(solutions);
  for (const Slot& s : solutions) run.finish(s);
  return run.result(1);
}

}  // namespace ponder::detail
