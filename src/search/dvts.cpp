// Diverse verifier tree search: N/M independent subtrees. Each round every live subtree samples
// M candidate steps from its current node and keeps only the best (by the step verifier); the
// subtree ends when that best step finishes its solution. Subtrees never share nodes after the
// root, which keeps the solutions diverse where one beam search would collapse onto one prefix.
//
// A subtree's solutions are the candidates of its final round that finished: the chosen one,
// and its siblings that happened to finish too (as in the reference implementation, which
// returns all M candidates of the final round).
#include <algorithm>

#include "search/search_run.h"

namespace ponder::detail {

SearchResult dvts(SearchRun& run) {
  const SearchOptions& o = run.options();
  const int32_t m = o.beam_width;
  const int32_t n_subtrees = std::max(1, o.n / m);
  std::vector<Slot> subtrees = run.spread({run.root()}, {n_subtrees});
  for (size_t i = 0; i < subtrees.size(); ++i) subtrees[i].subtree = static_cast<int32_t>(i);
  int32_t round = 0;
  while (!subtrees.empty()) {
    const bool last = round == o.max_rounds - 1;
    std::vector<Slot> candidates =
        run.sample(run.spread(subtrees, std::vector<int32_t>(subtrees.size(), m)), /*to_end=*/last, round);
    ++round;
    run.score(candidates);
    run.lookahead(candidates);

    std::vector<Slot> next;
    for (size_t s = 0; s < subtrees.size(); ++s) {
      // spread() keeps each parent's slots together, in order.
      const auto first = candidates.begin() + static_cast<std::ptrdiff_t>(s * m);
      const auto end = first + m;
      const auto best = std::max_element(first, end, [&](const Slot& a, const Slot& b) {
        return run.selection_score(a) < run.selection_score(b);
      });
      if (run.finished(*best) || last) {
        for (auto c = first; c != end; ++c) run.finish(*c);
      } else {
        for (auto c = first; c != end; ++c) {
          if (c != best) run.prune(*c);
        }
        run.tree().node(best->node).status = NodeStatus::kKept;
        next.push_back(*best);
      }
    }
    subtrees = std::move(next);
  }
  return run.result(round);
}

}  // namespace ponder::detail
