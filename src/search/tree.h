// The search tree: every partial solution a search made, with how it fared.
//
// A node is a partial solution: its parent's text plus one step. Strategies add nodes as they
// sample steps and mark what became of each (kept for the next round, pruned, finished), so a
// finished search can be inspected node by node (`ponder solve --trace`).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace ponder {

using NodeId = int32_t;

enum class NodeStatus {
  kOpen,      // sampled, not yet judged (only while a round runs)
  kKept,      // chosen to grow in the next round
  kPruned,    // dropped by the search
  kFinished,  // a whole solution: ended at EOS, length, or the final round
};
const char* to_string(NodeStatus status);

struct SearchNode {
  NodeId id = 0;
  NodeId parent = -1;     // -1 for the root (the prompt)
  int32_t depth = 0;      // steps from the root
  int32_t round = -1;     // round that sampled it (-1 for the root)
  int32_t subtree = 0;    // DVTS subtree; 0 elsewhere
  std::string step;       // this node's step text (the whole solution for one-shot strategies)
  int32_t step_tokens = 0;
  int32_t total_tokens = 0;  // solution tokens from the root through this node
  std::optional<double> score;            // verifier score of this node's step
  std::optional<double> selection_score;  // what the search ranked it by (aggregate, lookahead)
  std::vector<std::string> lookahead;     // greedy rollout steps that informed selection_score
  std::optional<FinishReason> finish;     // set when the solution ended here
  NodeStatus status = NodeStatus::kOpen;
  // The generator's log-probabilities of this step's tokens (and top-k alternatives when asked).
  std::vector<float> token_logprobs;
  std::vector<std::vector<float>> top_logprobs;
};

class SearchTree {
 public:
  NodeId add_root();
  NodeId add_child(NodeId parent);

  SearchNode& node(NodeId id) { return nodes_.at(static_cast<size_t>(id)); }
  const SearchNode& node(NodeId id) const { return nodes_.at(static_cast<size_t>(id)); }
  const std::vector<SearchNode>& nodes() const { return nodes_; }
  size_t size() const { return nodes_.size(); }

  // Nodes from the root's first child down to `id`.
  std::vector<NodeId> path(NodeId id) const;
  std::vector<std::string> steps(NodeId id) const;
  // Step scores along the path; a step without a score is skipped.
  std::vector<double> scores(NodeId id) const;
  std::string text(NodeId id) const;

 private:
  std::vector<SearchNode> nodes_;
};

}  // namespace ponder
