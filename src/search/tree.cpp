#include "search/tree.h"

#include <algorithm>

namespace ponder {

const char* to_string(NodeStatus status) {
  switch (status) {
    case NodeStatus::kOpen: return "open";
    case NodeStatus::kKept: return "kept";
    case NodeStatus::kPruned: return "pruned";
    case NodeStatus::kFinished: return "finished";
  }
  return "unknown";
}

NodeId SearchTree::add_root() {
  nodes_.clear();
  nodes_.push_back(SearchNode{});
  nodes_.back().status = NodeStatus::kKept;
  return 0;
}

NodeId SearchTree::add_child(NodeId parent) {
  const SearchNode& p = node(parent);
  SearchNode child;
  child.id = static_cast<NodeId>(nodes_.size());
  child.parent = parent;
  child.depth = p.depth + 1;
  child.subtree = p.subtree;
  child.total_tokens = p.total_tokens;
  nodes_.push_back(std::move(child));
  return nodes_.back().id;
}

std::vector<NodeId> SearchTree::path(NodeId id) const {
  std::vector<NodeId> out;
  for (NodeId at = id; at >= 0 && node(at).parent >= 0; at = node(at).parent) out.push_back(at);
  std::reverse(out.begin(), out.end());
  return out;
}

std::vector<std::string> SearchTree::steps(NodeId id) const {
  std::vector<std::string> out;
  for (NodeId at : path(id)) out.push_back(node(at).step);
  return out;
}

std::vector<double> SearchTree::scores(NodeId id) const {
  std::vector<double> out;
  for (NodeId at : path(id)) {
    if (node(at).score) out.push_back(*node(at).score);
  }
  return out;
}

std::string SearchTree::text(NodeId id) const {
  std::string out;
  for (NodeId at : path(id)) out += node(at).step;
  return out;
}

}  // namespace ponder
