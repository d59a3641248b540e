// Internal to search/: the machinery the strategies share. A SearchRun owns one search's tree,
// its generator branches and verifier states, and does the batched work of a round.
#pragma once

#include <chrono>
#include <map>
#include <optional>
#include <vector>

#include "search/search.h"

namespace ponder::detail {

// A live generator branch positioned after `node`: sampling on it grows a child of `node`.
struct Slot {
  NodeId node;
  BranchId branch;
  int32_t subtree = 0;
};

class SearchRun {
 public:
  SearchRun(Engine& generator, const Verifiers& verifiers, const SearchProblem& problem,
            const SearchOptions& options, const AnswerFn& answer_of);
  ~SearchRun();  // frees every branch and verifier state still held
  SearchRun(const SearchRun&) = delete;
  SearchRun& operator=(const SearchRun&) = delete;

  const SearchOptions& options() const { return options_; }
  SearchTree& tree() { return tree_; }
  bool has_step_verifier() const { return verifiers_.step != nullptr; }

  // The root node (the prompt) and its branch.
  Slot root();

  // Slots for `counts[i]` children of each of `parents`, in order: a parent's own branch is
  // used by its last slot, forks serve the others. A parent with count 0 is dropped.
  std::vector<Slot> spread(const std::vector<Slot>& parents, const std::vector<int32_t>& counts);

  // A slot for one more child of `parent` on a fork of its branch (the parent's own branch
  // stays as it is).
  Slot fork_child(const Slot& parent);

  // Samples one step on every slot (to the end of the solution when `to_end`), all in one
  // generate() call. Returns the new nodes: slots[i] becomes the slot of result[i]. With
  // `to_end`, a solution's steps become a chain of nodes and result[i] is its last node.
  // `keys`, when given, are the samples' keys (see request_for).
  std::vector<Slot> sample(const std::vector<Slot>& slots, bool to_end, int32_t round,
                           const std::vector<uint64_t>& keys = {});

  // The two halves of sample(), for strategies that hand requests to the engine themselves
  // (continuous batching): the request that samples a step on `slot`, and the node its
  // completion becomes (the returned slot holds the same branch).
  // `sample_key`, when given, numbers the sample's seed in place of the order of asking: for
  // strategies whose order of asking depends on timing (DVTS's subtrees advance as their
  // candidates finish), so that the same search gives the same samples however it was batched.
  GenerateRequest request_for(const Slot& slot, bool to_end, std::optional<uint64_t> sample_key = {});
  Slot add_result(const Slot& slot, const Completion& completion, int32_t round);

  Engine& generator() { return gen_; }

  // Scores the steps that `slots` added to their parents with the step verifier, all in one
  // call; each node then holds a verifier state for its prefix, and its selection score is the
  // aggregate of its path's scores. Parents' states are consumed (no parent of these slots may
  // be extended again). No-op without a step verifier.
  void score(const std::vector<Slot>& slots);

  // Ranks unfinished `slots` by a greedy rollout of options().lookahead more steps: each
  // node's selection score becomes the aggregate of its path's and the rollout's step scores.
  void lookahead(const std::vector<Slot>& slots);

  // Throws Cancelled once options().cancel is set.
  void check_cancelled() const;
  // Tells options().on_progress (if any) how far the search is after `rounds` rounds.
  void report_progress(int32_t rounds, int32_t finished);

  bool finished(const Slot& slot) const { return tree_.node(slot.node).finish.has_value(); }
  double selection_score(const Slot& slot) const;

  // Ends a slot: its node becomes a solution (when it finished) or is pruned; frees its
  // branch and verifier state.
  void finish(const Slot& slot);
  void prune(const Slot& slot);
  // Speculative work the search no longer wants: a child slot (of fork_child) whose sample
  // never becomes a node. Frees its branch; the `tokens` sampled for it count as discarded.
  void withdraw(const Slot& unsampled, int64_t tokens);
  // Frees a branch the search holds but no slot needs (a kept node's, once its children all
  // run on forks); the node and its verifier state stay.
  void free_branch(BranchId branch);
  size_t solutions() const { return finished_.size(); }

  // Scores the solutions, selects, and accounts: the search's result.
  SearchResult result(int32_t rounds);

 private:
  uint64_t seed_for(uint64_t sample, bool keyed) const;
  // Makes a request stop where a step ends: at step_end, else at the delimiter.
  void stop_at_step_end(StopParams& stop) const;
  // Splits a completion into steps: a chain of nodes under `parent`; returns the last (open).
  NodeId add_steps(NodeId parent, const Completion& completion, int32_t round, int32_t subtree);
  void release_state(NodeId node);
  // A key of a node's whole text (its path's steps), equal for equal texts.
  uint64_t path_key(NodeId node);
  // The first node scored with the same text as `node` (`node` itself when there is none yet).
  // A verifier's scores for equal texts may differ in the last digits (what else shared its
  // batch), which would break ties between duplicate samples by noise; a duplicate takes the
  // first one's scores instead, and a tie goes to the earlier candidate.
  NodeId first_with_text(NodeId node);

  Engine& gen_;
  Verifiers verifiers_;
  SearchProblem problem_;
  SearchOptions options_;
  AnswerFn answer_of_;
  SearchTree tree_;
  std::vector<NodeId> finished_;
  std::vector<BranchId> branches_;  // every branch this run holds
  std::map<NodeId, VerifierState> states_;
  uint64_t samples_ = 0;  // steps requested so far (numbers their seeds)
  int64_t discarded_tokens_ = 0;
  std::map<NodeId, int32_t> unsampled_;  // per node: children spread but not yet sampled
  std::map<NodeId, uint64_t> path_keys_;
  std::map<uint64_t, NodeId> first_with_key_;
  EngineStats gen_start_;
  VerifierStats step_start_, outcome_start_;
  std::chrono::steady_clock::time_point t0_;
};

// The strategies, each over a fresh run.
SearchResult sample_n(SearchRun& run);      // majority, best-of-N, weighted best-of-N
SearchResult beam_search(SearchRun& run);
SearchResult dvts(SearchRun& run);

}  // namespace ponder::detail
