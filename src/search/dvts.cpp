// Diverse verifier tree search: N/M independent subtrees. Each round every live subtree samples
// M candidate steps from its current node and keeps only the best (by the step verifier); the
// subtree ends when that best step finishes its solution. Subtrees never share nodes after the
// root, which keeps the solutions diverse where one beam search would collapse onto one prefix.
//
// Subtrees do not wait for each other: as soon as a subtree's M candidates are sampled it is
// scored and its next M candidates join the engine's batch while other subtrees still decode
// (continuous batching), so one long step holds up only its own subtree. With lookahead the
// rollouts need the engine between rounds, so all subtrees then advance round by round.
//
// A subtree's solutions are the candidates of its final round that finished: the chosen one,
// and its siblings that happened to finish too (as in the reference implementation, which
// returns all M candidates of the final round).
#include <algorithm>

#include "search/search_run.h"

namespace ponder::detail {

namespace {

struct Subtree {
  Slot current;
  int32_t round = 0;
  std::vector<Slot> candidates;  // this round's, by position
  int32_t waiting = 0;           // candidates still being sampled
};

// Judges a subtree's round: keeps the best candidate (ties: the first) or ends the subtree.
// Returns whether it goes on.
bool judge(SearchRun& run, Subtree& t, bool last) {
  run.score(t.candidates);
  run.lookahead(t.candidates);
  const auto best = std::max_element(t.candidates.begin(), t.candidates.end(), [&](const Slot& a, const Slot& b) {
    return run.selection_score(a) < run.selection_score(b);
  });
  if (run.finished(*best) || last) {
    for (const Slot& c : t.candidates) run.finish(c);
    return false;
  }
  for (auto c = t.candidates.begin(); c != t.candidates.end(); ++c) {
    if (c != best) run.prune(*c);
  }
  run.tree().node(best->node).status = NodeStatus::kKept;
  t.current = *best;
  return true;
}

SearchResult round_by_round(SearchRun& run, std::vector<Subtree> subtrees) {
  const SearchOptions& o = run.options();
  int32_t round = 0;
  while (!subtrees.empty()) {
    const bool last = round == o.max_rounds - 1;
    std::vector<Slot> parents;
    for (const Subtree& t : subtrees) parents.push_back(t.current);
    const std::vector<Slot> candidates =
        run.sample(run.spread(parents, std::vector<int32_t>(parents.size(), o.beam_width)), last, round);
    ++round;
    std::vector<Subtree> next;
    for (size_t s = 0; s < subtrees.size(); ++s) {
      // spread() keeps each parent's slots together, in order.
      subtrees[s].candidates.assign(candidates.begin() + static_cast<std::ptrdiff_t>(s * o.beam_width),
                                    candidates.begin() + static_cast<std::ptrdiff_t>((s + 1) * o.beam_width));
      if (judge(run, subtrees[s], last)) next.push_back(subtrees[s]);
    }
    run.report_progress(round, static_cast<int32_t>(run.solutions()));
    subtrees = std::move(next);
  }
  return run.result(round);
}

SearchResult continuous(SearchRun& run, std::vector<Subtree> subtrees) {
  const SearchOptions& o = run.options();
  std::vector<std::pair<size_t, size_t>> owner;  // per engine request: subtree, candidate
  int32_t rounds = 0;
  // Requests for subtree s's next round (spread over its current branch).
  auto next_round = [&](size_t s) {
    Subtree& t = subtrees[s];
    const bool last = t.round == o.max_rounds - 1;
    t.candidates = run.spread({t.current}, {o.beam_width});
    t.waiting = o.beam_width;
    std::vector<GenerateRequest> requests;
    for (size_t k = 0; k < t.candidates.size(); ++k) {
      // Keyed by subtree, round and candidate: a subtree's samples do not depend on when the
      // engine finished the other subtrees' steps.
      const uint64_t key = (static_cast<uint64_t>(t.round) * subtrees.size() + s) * o.beam_width + k;
      requests.push_back(run.request_for(t.candidates[k], last, key));
      owner.emplace_back(s, k);
    }
    return requests;
  };
  std::vector<GenerateRequest> first;
  for (size_t s = 0; s < subtrees.size(); ++s) {
    for (GenerateRequest& r : next_round(s)) first.push_back(std::move(r));
  }
  run.generator().generate(first, [&](size_t index, const Completion& c) -> std::vector<GenerateRequest> {
    // Once cancelled, the running requests end at once; nothing more is scored or started.
    if (c.finish_reason == FinishReason::kCancelled) return {};
    const auto [s, k] = owner.at(index);
    Subtree& t = subtrees[s];
    t.candidates[k] = run.add_result(t.candidates[k], c, t.round);
    if (--t.waiting > 0) return {};
    const bool last = t.round == o.max_rounds - 1;
    ++t.round;
    rounds = std::max(rounds, t.round);
    const bool goes_on = judge(run, t, last);
    run.report_progress(rounds, static_cast<int32_t>(run.solutions()));
    if (!goes_on) return {};
    return next_round(s);
  });
  run.check_cancelled();
  return run.result(rounds);
}

}  // namespace

SearchResult dvts(SearchRun& run) {
  const SearchOptions& o = run.options();
  const int32_t n_subtrees = std::max(1, o.n / o.beam_width);
  std::vector<Subtree> subtrees;
  for (const Slot& s : run.spread({run.root()}, {n_subtrees})) {
    Subtree t;
    t.current = s;
    t.current.subtree = static_cast<int32_t>(subtrees.size());
    subtrees.push_back(std::move(t));
  }
  return o.lookahead > 0 ? round_by_round(run, std::move(subtrees)) : continuous(run, std::move(subtrees));
}

}  // namespace ponder::detail
