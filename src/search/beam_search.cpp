// Step-level beam search guided by a step verifier.
//
// Each round every live beam samples one step; the new steps are scored; finished solutions
// leave the pool; the best N/M of the rest are kept and each is expanded M ways, so that N beams
// sample again. The search stops once N solutions have finished, when no beam is left, or after
// max_rounds (the last round generates every beam to its end).
//
// A round cannot be judged before its slowest step ends, and meanwhile the rows of the batch
// whose steps ended would idle. With SearchOptions::speculation they sample ahead instead: a
// candidate whose step is done starts its children for the next round (each with the seed it
// would get anyway), best scored candidates first. Speculation::kAll does so for any candidate
// (scored as soon as there is a choice); when the round is judged, the children of kept beams
// carry on as the next round's steps, and the others are withdrawn (they never become nodes of
// the tree). Speculation::kSure waits until fewer candidates are still sampling than the round
// keeps, and then samples ahead only for candidates that none of those could push out of the
// best N/M: nothing is withdrawn. Either way the search gives the same result.
#include <algorithm>
#include <memory>
#include <optional>

#include "search/search_run.h"

namespace ponder::detail {

namespace {

// The sample key of child k of the candidate at `position` of the round before `round` (the
// root for round 0), with at most n candidates a round and n children a candidate.
uint64_t child_key(int32_t round, size_t position, int32_t k, int32_t n) {
  return (static_cast<uint64_t>(round) * static_cast<uint64_t>(n) + position) * static_cast<uint64_t>(n) +
         static_cast<uint64_t>(k);
}

// How many children each kept beam gets: kept beam i serves slots i, i + kept, i + 2 kept, ...
std::vector<int32_t> children_per_beam(size_t kept, int32_t n) {
  std::vector<int32_t> counts(kept, 0);
  for (int32_t j = 0; j < n; ++j) counts[static_cast<size_t>(j) % kept]++;
  return counts;
}

// Positions of the open candidates the round keeps, best first (ties: the earlier candidate);
// prunes the others.
std::vector<size_t> keep_best(SearchRun& run, const std::vector<Slot>& candidates, std::vector<size_t> open,
                              int32_t keep) {
  std::stable_sort(open.begin(), open.end(), [&](size_t a, size_t b) {
    return run.selection_score(candidates[a]) > run.selection_score(candidates[b]);
  });
  const size_t kept = std::min(open.size(), static_cast<size_t>(keep));
  for (size_t i = kept; i < open.size(); ++i) run.prune(candidates[open[i]]);
  open.resize(kept);
  for (size_t p : open) run.tree().node(candidates[p].node).status = NodeStatus::kKept;
  return open;
}

int32_t beams_kept(const SearchOptions& o) { return std::max(1, o.n / o.beam_width); }

// Judges a round of scored candidates: finished ones become solutions; then either the search
// ends (N solutions, the last round, or no open candidate left: the open ones are pruned and
// nothing is returned) or the positions of the kept candidates are, best first.
std::optional<std::vector<size_t>> judge(SearchRun& run, const std::vector<Slot>& candidates, int32_t rounds,
                                         bool last) {
  const SearchOptions& o = run.options();
  std::vector<size_t> open;
  for (size_t p = 0; p < candidates.size(); ++p) {
    if (run.finished(candidates[p])) {
      run.finish(candidates[p]);
    } else {
      open.push_back(p);
    }
  }
  run.report_progress(rounds, static_cast<int32_t>(run.solutions()));
  if (static_cast<int32_t>(run.solutions()) >= o.n || last || open.empty()) {
    for (size_t p : open) run.prune(candidates[p]);
    return std::nullopt;
  }
  return keep_best(run, candidates, open, beams_kept(o));
}

// Round by round: each round's steps are sampled in one generate() call.
SearchResult synchronous(SearchRun& run) {
  const SearchOptions& o = run.options();
  std::vector<Slot> beams = run.spread({run.root()}, {o.n});
  std::vector<uint64_t> keys;
  for (int32_t k = 0; k < o.n; ++k) keys.push_back(child_key(0, 0, k, o.n));
  int32_t round = 0;
  while (!beams.empty()) {
    const bool last = round == o.max_rounds - 1;
    std::vector<Slot> children = run.sample(beams, /*to_end=*/last, round, keys);
    ++round;
    run.score(children);
    run.lookahead(children);

    const std::optional<std::vector<size_t>> judged = judge(run, children, round, last);
    if (!judged) break;
    const std::vector<size_t>& kept = *judged;
    const std::vector<int32_t> counts = children_per_beam(kept.size(), o.n);
    std::vector<Slot> parents;
    keys.clear();
    for (size_t i = 0; i < kept.size(); ++i) {
      parents.push_back(children[kept[i]]);
      for (int32_t k = 0; k < counts[i]; ++k) keys.push_back(child_key(round, kept[i], k, o.n));
    }
    // spread() gives each parent's children in order: key k goes with its k-th slot.
    beams = run.spread(parents, counts);
  }
  return run.result(round);
}

// All rounds in one generate() call, idle rows sampling ahead (see the top of the file).
class Speculative {
 public:
  explicit Speculative(SearchRun& run)
      : run_(run), o_(run.options()), keep_(beams_kept(o_)), ahead_per_candidate_(o_.n / keep_) {}

  SearchResult search() {
    std::vector<GenerateRequest> first;
    const std::vector<Slot> slots = run_.spread({run_.root()}, {o_.n});
    for (int32_t k = 0; k < o_.n; ++k) {
      Job* job = new_job(slots[static_cast<size_t>(k)], 0);
      job->position = static_cast<size_t>(k);
      current_.push_back(job);
      first.push_back(start(job, child_key(0, 0, k, o_.n)));
    }
    waiting_ = o_.n;
    ahead_.assign(current_.size(), {});
    run_.generator().generate(first, [&](size_t index, const Completion& c) { return on_finish(index, c); });
    run_.check_cancelled();
    return run_.result(rounds_);
  }

 private:
  // One sample: a candidate of the current round, or a child of one sampled ahead.
  struct Job {
    Slot slot;               // where it samples; once done, its node
    int32_t round = 0;       // the round it is a step of
    size_t position = 0;     // its place among its round's candidates, once that round runs
    bool done = false;
    bool withdrawn = false;
    bool scored = false;     // a candidate of the current round, by the step verifier
    int64_t tokens = 0;      // sampled, once done
    Completion result;       // a child sampled ahead, done before its parent was judged
    std::atomic<bool> withdraw{false};
  };

  Job* new_job(const Slot& slot, int32_t round) {
    jobs_.push_back(std::make_unique<Job>());
    jobs_.back()->slot = slot;
    jobs_.back()->round = round;
    return jobs_.back().get();
  }

  GenerateRequest start(Job* job, uint64_t key) {
    GenerateRequest r = run_.request_for(job->slot, /*to_end=*/job->round == o_.max_rounds - 1, key);
    r.stop.withdraw = &job->withdraw;
    by_request_.push_back(job);
    ++in_flight_;
    return r;
  }

  std::vector<GenerateRequest> on_finish(size_t index, const Completion& c) {
    Job* job = by_request_.at(index);
    --in_flight_;
    job->tokens = static_cast<int64_t>(c.tokens.size());
    std::vector<GenerateRequest> out;
    if (c.finish_reason == FinishReason::kCancelled && !job->withdrawn) {
      stopped_ = true;  // the whole search was cancelled: every request ends now
      return out;
    }
    if (job->withdrawn) {  // while running, or done at the step of the call that withdrew it
      run_.withdraw(job->slot, job->tokens);
      --ahead_live_;
      fill(out);
      return out;
    }
    job->done = true;
    if (job->round != round_) {
      // A child sampled ahead: it becomes a node only if its parent is kept.
      job->result = c;
    } else {
      job->slot = run_.add_result(job->slot, c, job->round);
      --waiting_;
      const bool last = round_ == o_.max_rounds - 1;
      if (last) run_.report_progress(round_ + 1, static_cast<int32_t>(run_.solutions()) + ++finished_in_last_round_);
      if (!last && !run_.finished(job->slot)) wanting_.push_back(job->position);
      while (waiting_ == 0 && !stopped_) end_round(out);
    }
    fill(out);
    return out;
  }

  // Judges the current round and starts the next one's steps that are not under way yet.
  void end_round(std::vector<GenerateRequest>& out) {
    score_done();
    std::vector<Slot> candidates;
    for (Job* j : current_) candidates.push_back(j->slot);
    rounds_ = round_ + 1;
    const std::optional<std::vector<size_t>> judged = judge(run_, candidates, rounds_, round_ == o_.max_rounds - 1);
    if (!judged) {
      for (auto& children : ahead_) drop(children);
      stopped_ = true;
      return;
    }
    const std::vector<size_t>& kept = *judged;
    for (size_t p = 0; p < candidates.size(); ++p) {
      if (std::find(kept.begin(), kept.end(), p) == kept.end()) drop(ahead_[p]);
    }
    // Pruned branches are free now; the next round may fork.
    const std::vector<int32_t> counts = children_per_beam(kept.size(), o_.n);
    std::vector<Job*> next;
    for (size_t i = 0; i < kept.size(); ++i) {
      const size_t p = kept[i];
      std::vector<Job*>& ahead = ahead_[p];  // children 0 .. ahead.size() - 1, already under way
      const int32_t from_ahead = std::min(counts[i], static_cast<int32_t>(ahead.size()));
      for (int32_t k = 0; k < from_ahead; ++k) {
        Job* child = ahead[static_cast<size_t>(k)];
        if (child->done) child->slot = run_.add_result(child->slot, child->result, child->round);
        next.push_back(child);
        --ahead_live_;
      }
      const int32_t more = counts[i] - from_ahead;
      if (more == 0) {
        run_.free_branch(candidates[p].branch);
        continue;
      }
      const std::vector<Slot> slots = run_.spread({candidates[p]}, {more});
      for (int32_t k = from_ahead; k < counts[i]; ++k) {
        Job* job = new_job(slots[static_cast<size_t>(k - from_ahead)], round_ + 1);
        next.push_back(job);
        out.push_back(start(job, child_key(round_ + 1, p, k, o_.n)));
      }
    }
    ++round_;
    current_ = std::move(next);
    ahead_.assign(current_.size(), {});
    wanting_.clear();
    waiting_ = 0;
    for (size_t p = 0; p < current_.size(); ++p) {
      Job* j = current_[p];
      j->position = p;
      if (!j->done) {
        ++waiting_;
      } else if (round_ != o_.max_rounds - 1 && !run_.finished(j->slot)) {
        wanting_.push_back(p);
      }
    }
  }

  // Scores the current round's done candidates not scored yet, in one call. All of them at
  // once: a candidate's scoring may consume its parent's verifier state once every sibling is
  // sampled, so no done sibling may be left for later.
  void score_done() {
    std::vector<Slot> slots;
    for (Job* j : current_) {
      if (j->done && !j->scored) {
        slots.push_back(j->slot);
        j->scored = true;
      }
    }
    if (!slots.empty()) run_.score(slots);
  }

  // Children sampled ahead for a candidate the round did not keep.
  void drop(std::vector<Job*>& children) {
    for (Job* j : children) {
      if (j->done) {
        run_.withdraw(j->slot, j->tokens);
        --ahead_live_;
      } else {
        j->withdrawn = true;  // its branch is freed when the engine reports it
        j->withdraw.store(true, std::memory_order_relaxed);
      }
    }
    children.clear();
  }

  // Whether the candidate at position a ranks before the one at b in keep_best's order (by
  // score, ties: the earlier candidate).
  bool ranks_before(size_t a, size_t b) {
    const double sa = run_.selection_score(current_[a]->slot), sb = run_.selection_score(current_[b]->slot);
    return sa != sb ? sa > sb : a < b;
  }

  // Speculation::kSure: whether the round will keep the done open candidate at position p,
  // whatever the candidates still sampling turn out to be. Each of them may finish (and so end
  // the search with N solutions) or stay open and rank before p.
  bool sure_kept(size_t p) {
    std::vector<size_t> others;  // done and open
    int32_t finished = 0;
    for (size_t q = 0; q < current_.size(); ++q) {
      const Job* j = current_[q];
      if (!j->done || q == p) continue;
      if (run_.finished(j->slot)) {
        ++finished;
      } else {
        others.push_back(q);
      }
    }
    if (!others.empty()) score_done();  // p against the others, all scored
    const auto before = std::count_if(others.begin(), others.end(), [&](size_t q) { return ranks_before(q, p); });
    const bool search_goes_on = static_cast<int32_t>(run_.solutions()) + finished + waiting_ < o_.n;
    return search_goes_on && static_cast<int32_t>(before) + waiting_ < keep_;
  }

  // Gives idle rows children of the current round's done candidates, best scored first (ties:
  // the earlier candidate), while fewer than N requests run and fewer than N children sampled
  // ahead hold branches; under Speculation::kSure only to candidates sure to be kept.
  void fill(std::vector<GenerateRequest>& out) {
    const bool sure_only = o_.speculation == Speculation::kSure;
    // Until fewer candidates sample than the round keeps, any of them could outrank any other.
    if (sure_only && waiting_ >= keep_) return;
    while (!stopped_ && !wanting_.empty() && in_flight_ < o_.n && ahead_live_ < o_.n) {
      // Scores decide only between candidates: one alone needs none yet (fewer PRM calls).
      if (wanting_.size() > 1) score_done();
      const auto best = std::min_element(wanting_.begin(), wanting_.end(),
                                         [&](size_t a, size_t b) { return ranks_before(a, b); });
      const size_t p = *best;
      std::vector<Job*>& ahead = ahead_[p];
      if (static_cast<int32_t>(ahead.size()) >= ahead_per_candidate_) {
        wanting_.erase(best);
        continue;
      }
      if (sure_only && !sure_kept(p)) return;  // the best is not sure: no other is
      Job* job = new_job(run_.fork_child(current_[p]->slot), round_ + 1);
      out.push_back(start(job, child_key(round_ + 1, p, static_cast<int32_t>(ahead.size()), o_.n)));
      ahead.push_back(job);
      ++ahead_live_;
    }
  }

  SearchRun& run_;
  const SearchOptions& o_;
  const int32_t keep_;  // beams a round keeps at most (N/M)
  // Children sampled ahead per candidate: the fewest a kept beam gets (N / (N/M)).
  const int32_t ahead_per_candidate_;
  std::vector<std::unique_ptr<Job>> jobs_;
  std::vector<Job*> by_request_;         // generate()'s request index -> its job
  int32_t round_ = 0;
  int32_t rounds_ = 0;                   // rounds judged
  std::vector<Job*> current_;            // the round's candidates, by position
  int32_t waiting_ = 0;                  // ... not done yet
  std::vector<std::vector<Job*>> ahead_; // per position: its children sampled ahead, by k
  std::vector<size_t> wanting_;          // positions of open candidates that are done
  int32_t in_flight_ = 0;
  int32_t ahead_live_ = 0;               // children sampled ahead that hold branches
  int32_t finished_in_last_round_ = 0;
  bool stopped_ = false;
};

}  // namespace

SearchResult beam_search(SearchRun& run) {
  if (speculates(run.options())) return Speculative(run).search();
  return synchronous(run);
}

}  // namespace ponder::detail
