#include "search/search_run.h"

#include <algorithm>
#include <cctype>
#include <memory>
#include <set>

#include "engine/stop.h"
#include "util/fnv1a.h"

namespace ponder::detail {

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

bool is_blank(const std::string& s) {
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isspace(c); });
}

}  // namespace

SearchRun::SearchRun(Engine& generator, const Verifiers& verifiers, const SearchProblem& problem,
                     const SearchOptions& options, const AnswerFn& answer_of)
    : gen_(generator), verifiers_(verifiers), problem_(problem), options_(options), answer_of_(answer_of) {
  gen_start_ = gen_.stats();
  if (verifiers_.step) step_start_ = verifiers_.step->stats();
  if (verifiers_.outcome) outcome_start_ = verifiers_.outcome->stats();
  t0_ = std::chrono::steady_clock::now();
}

SearchRun::~SearchRun() {
  // Best effort: a search that threw must still give its branches back to the engine.
  try {
    for (BranchId b : branches_) gen_.free_branch(b);
    for (const auto& [node, state] : states_) verifiers_.step->release(state);
  } catch (...) {
  }
}

uint64_t SearchRun::seed_for(uint64_t sample, bool keyed) const {
  // Keys and the order of asking number different samples.
  const uint64_t domain = keyed ? 0x9e3779b97f4a7c15ULL : 0;
  return splitmix64(options_.seed ^ splitmix64((sample + 1) ^ domain));
}

Slot SearchRun::root() {
  const NodeId root = tree_.add_root();
  const BranchId branch = gen_.new_branch(problem_.prompt);
  branches_.push_back(branch);
  if (verifiers_.step) states_[root] = verifiers_.step->root(problem_.problem);
  return {root, branch, 0};
}

std::vector<Slot> SearchRun::spread(const std::vector<Slot>& parents, const std::vector<int32_t>& counts) {
  std::vector<Slot> out;
  for (size_t i = 0; i < parents.size(); ++i) {
    if (counts[i] <= 0) {
      prune(parents[i]);
      continue;
    }
    for (int32_t c = 0; c + 1 < counts[i]; ++c) out.push_back(fork_child(parents[i]));
    ++unsampled_[parents[i].node];  // the last child grows on the parent's own branch
    out.push_back(parents[i]);
  }
  return out;
}

Slot SearchRun::fork_child(const Slot& parent) {
  const BranchId b = gen_.fork(parent.branch);
  branches_.push_back(b);
  ++unsampled_[parent.node];
  return {parent.node, b, parent.subtree};
}

GenerateRequest SearchRun::request_for(const Slot& slot, bool to_end, std::optional<uint64_t> sample_key) {
  GenerateRequest r;
  r.branch = slot.branch;
  r.sampling.temperature = options_.temperature;
  r.sampling.top_p = options_.top_p;
  r.sampling.top_k = options_.top_k;
  r.sampling.top_logprobs = options_.top_logprobs;
  // Samples are numbered by their key, else in the order the search asks for them, so a search
  // is reproducible from options().seed.
  r.sampling.seed = sample_key ? seed_for(*sample_key, true) : seed_for(samples_++, false);
  r.stop.max_tokens = std::max(0, options_.max_tokens - tree_.node(slot.node).total_tokens);
  r.stop.cancel = options_.cancel;
  if (!to_end) stop_at_step_end(r.stop);
  return r;
}

void SearchRun::check_cancelled() const {
  if (options_.cancel && options_.cancel->load(std::memory_order_relaxed)) throw Cancelled("search cancelled");
}

void SearchRun::report_progress(int32_t rounds, int32_t finished) {
  if (!options_.on_progress) return;
  if (options_.cancel && options_.cancel->load(std::memory_order_relaxed)) return;
  SearchProgress p;
  p.rounds = rounds;
  p.finished = finished;
  p.target = options_.n;
  p.completion_tokens = gen_.stats().generated_tokens - gen_start_.generated_tokens;
  p.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  options_.on_progress(p);
}

void SearchRun::stop_at_step_end(StopParams& stop) const {
  if (options_.step_tokens > 0) {
    // Called once per new token (not after an end-of-generation token, which ends the step
    // anyway): a count of its own for each request.
    stop.stop_when = [count = std::make_shared<int32_t>(0), n = options_.step_tokens](
                         std::string_view text) -> std::optional<size_t> {
      if (++*count >= n) return text.size();
      return std::nullopt;
    };
  } else if (options_.step_end) {
    stop.stop_when = options_.step_end;
  } else {
    stop.stop = {options_.step_delimiter};
  }
}

Slot SearchRun::add_result(const Slot& slot, const Completion& c, int32_t round) {
  --unsampled_[slot.node];
  const NodeId node = add_steps(slot.node, c, round, slot.subtree);
  // Stopping at a step's end (delimiter or step_end) is the only way a step leaves the solution open; a step of
  // nothing but white space ends it too (the model has nothing more to say). A completion that
  // stopped at the delimiter is one step, so the last node's text is all of it.
  SearchNode& last = tree_.node(node);
  if (c.finish_reason != FinishReason::kStop || is_blank(last.step)) last.finish = c.finish_reason;
  return {node, slot.branch, slot.subtree};
}

std::vector<Slot> SearchRun::sample(const std::vector<Slot>& slots, bool to_end, int32_t round,
                                    const std::vector<uint64_t>& keys) {
  std::vector<GenerateRequest> requests;
  for (size_t i = 0; i < slots.size(); ++i) {
    requests.push_back(keys.empty() ? request_for(slots[i], to_end) : request_for(slots[i], to_end, keys.at(i)));
  }
  // Whole solutions finish one by one: report each (a step round is reported by its strategy).
  int32_t done_so_far = 0;
  Engine::OnFinish on_finish;
  if (to_end && options_.on_progress) {
    on_finish = [&](size_t, const Completion&) {
      report_progress(round + 1, static_cast<int32_t>(solutions()) + ++done_so_far);
      return std::vector<GenerateRequest>{};
    };
  }
  const std::vector<Completion> done = gen_.generate(requests, on_finish);
  check_cancelled();
  std::vector<Slot> out;
  for (size_t i = 0; i < slots.size(); ++i) out.push_back(add_result(slots[i], done[i], round));
  return out;
}

NodeId SearchRun::add_steps(NodeId parent, const Completion& c, int32_t round, int32_t subtree) {
  // An end-of-generation token is not part of the text.
  size_t n_text = c.tokens.size();
  if (c.finish_reason == FinishReason::kEos && n_text > 0) --n_text;
  StopMatcher delimiter({options_.step_delimiter});
  NodeId at = parent;
  size_t begin = 0;
  std::string step;
  auto close_step = [&](size_t end) {
    at = tree_.add_child(at);
    SearchNode& n = tree_.node(at);
    n.round = round;
    n.subtree = subtree;
    n.step = std::move(step);
    step.clear();
    n.step_tokens = static_cast<int32_t>(end - begin);
    n.total_tokens += n.step_tokens;
    for (size_t t = begin; t < end; ++t) {
      n.token_logprobs.push_back(c.steps[t].logprob);
      if (!c.steps[t].top.empty()) {
        std::vector<float> top;
        for (const auto& alt : c.steps[t].top) top.push_back(alt.logprob);
        n.top_logprobs.push_back(std::move(top));
      }
    }
    n.status = NodeStatus::kKept;
    begin = end;
  };
  for (size_t t = 0; t < c.tokens.size(); ++t) {
    const size_t checked = step.size();
    if (t < n_text) step += gen_.token_to_piece(c.tokens[t]);
    // A step ends with the token that completes the delimiter, or after which step_end answers,
    // as the engine would have stopped there (the last token's step ends with the completion,
    // whatever it holds).
    if (t + 1 >= c.tokens.size()) continue;
    const bool ends = options_.step_tokens > 0 ? static_cast<int32_t>(t + 1 - begin) >= options_.step_tokens
                      : options_.step_end    ? options_.step_end(step).has_value()
                                             : delimiter.find(step, checked).has_value();
    if (ends) close_step(t + 1);
  }
  close_step(c.tokens.size());
  tree_.node(at).status = NodeStatus::kOpen;
  return at;
}

void SearchRun::score(const std::vector<Slot>& slots) {
  check_cancelled();
  if (!verifiers_.step) return;
  std::vector<StepVerifier::Extension> extensions;
  std::vector<std::vector<NodeId>> scored;  // per extension: the nodes its steps belong to
  std::vector<NodeId> parents;
  for (const Slot& s : slots) {
    std::vector<NodeId> chain;
    NodeId at = s.node;
    while (!states_.count(at)) {
      chain.push_back(at);
      at = tree_.node(at).parent;
    }
    std::reverse(chain.begin(), chain.end());
    StepVerifier::Extension e;
    e.parent = states_.at(at);
    for (NodeId n : chain) {
      e.steps.push_back(tree_.node(n).step);
      e.step_logprobs.push_back(tree_.node(n).token_logprobs);
    }
    extensions.push_back(std::move(e));
    scored.push_back(std::move(chain));
    parents.push_back(at);
  }
  // The last extension of each parent takes over the parent's state, unless children of that
  // parent are still being sampled (DVTS's subtrees share the root and finish rounds apart).
  for (size_t i = 0; i < extensions.size(); ++i) {
    const bool last = std::find(parents.begin() + i + 1, parents.end(), parents[i]) == parents.end();
    extensions[i].consume_parent = last && unsampled_[parents[i]] == 0;
  }
  std::vector<StepVerifier::Scored> results = verifiers_.step->extend(extensions);
  for (size_t i = 0; i < extensions.size(); ++i) {
    if (extensions[i].consume_parent) states_.erase(parents[i]);
  }
  for (size_t i = 0; i < slots.size(); ++i) {
    for (size_t j = 0; j < scored[i].size(); ++j) {
      const NodeId first = first_with_text(scored[i][j]);
      tree_.node(scored[i][j]).score = first == scored[i][j] ? results[i].step_scores.at(j) : tree_.node(first).score;
    }
    states_[slots[i].node] = results[i].state;
    tree_.node(slots[i].node).selection_score = aggregate(tree_.scores(slots[i].node), options_.aggregation);
  }
}

void SearchRun::lookahead(const std::vector<Slot>& slots) {
  if (options_.lookahead <= 0 || !verifiers_.step) return;
  struct Rollout {
    Slot slot;            // the candidate
    BranchId branch;      // its fork, which the rollout advances
    std::vector<std::string> steps;
    std::vector<std::vector<float>> logprobs;  // per rollout step, its tokens'
    int32_t tokens;
    bool done = false;
  };
  std::vector<Rollout> rollouts;
  // A candidate with the text of one rolled out before (or in this call) takes its rollout and
  // score: greedy from the same text, the rollout would be the same.
  std::vector<Slot> duplicates;
  std::set<NodeId> rolling;
  for (const Slot& s : slots) {
    if (finished(s)) continue;
    const NodeId first = first_with_text(s.node);
    if (first != s.node && (rolling.count(first) || !tree_.node(first).lookahead.empty())) {
      duplicates.push_back(s);
      continue;
    }
    rolling.insert(s.node);
    const BranchId b = gen_.fork(s.branch);
    branches_.push_back(b);
    rollouts.push_back({s, b, {}, {}, tree_.node(s.node).total_tokens});
  }
  for (int32_t k = 0; k < options_.lookahead; ++k) {
    std::vector<GenerateRequest> requests;
    std::vector<Rollout*> running;
    for (Rollout& r : rollouts) {
      if (r.done) continue;
      GenerateRequest g;
      g.branch = r.branch;
      g.sampling.temperature = 0.0f;  // greedy: the rollout estimates where the step leads
      g.stop.max_tokens = std::max(0, options_.max_tokens - r.tokens);
      g.stop.cancel = options_.cancel;
      stop_at_step_end(g.stop);
      requests.push_back(std::move(g));
      running.push_back(&r);
    }
    if (requests.empty()) break;
    std::vector<Completion> done = gen_.generate(requests);
    check_cancelled();
    for (size_t i = 0; i < running.size(); ++i) {
      Completion& c = done[i];
      // Every token's log-probability, the end of generation's too, as a node keeps them.
      std::vector<float> logprobs;
      for (const StepInfo& t : c.steps) logprobs.push_back(t.logprob);
      running[i]->logprobs.push_back(std::move(logprobs));
      if (c.finish_reason == FinishReason::kEos && !c.tokens.empty()) c.tokens.pop_back();
      const std::string text = gen_.detokenize(c.tokens);
      running[i]->steps.push_back(text);
      running[i]->tokens += static_cast<int32_t>(done[i].tokens.size());
      running[i]->done = done[i].finish_reason != FinishReason::kStop || is_blank(text);
    }
  }
  std::vector<StepVerifier::Extension> extensions;
  for (const Rollout& r : rollouts) extensions.push_back({states_.at(r.slot.node), r.steps, false, r.logprobs});
  std::vector<StepVerifier::Scored> results = verifiers_.step->extend(extensions);
  for (size_t i = 0; i < rollouts.size(); ++i) {
    verifiers_.step->release(results[i].state);
    free_branch(rollouts[i].branch);
    SearchNode& n = tree_.node(rollouts[i].slot.node);
    n.lookahead = rollouts[i].steps;
    std::vector<double> all = tree_.scores(n.id);
    all.insert(all.end(), results[i].step_scores.begin(), results[i].step_scores.end());
    n.selection_score = aggregate(all, options_.aggregation);
  }
  for (const Slot& s : duplicates) {
    SearchNode& n = tree_.node(s.node);
    const SearchNode& first = tree_.node(first_with_text(n.id));
    n.lookahead = first.lookahead;
    n.selection_score = first.selection_score;
  }
}

uint64_t SearchRun::path_key(NodeId node) {
  if (node < 0) return kFnv1aBasis;
  if (auto it = path_keys_.find(node); it != path_keys_.end()) return it->second;
  // The parent's key continued with this step's bytes, then its length as a separator.
  const std::string& step = tree_.node(node).step;
  char length[8];
  for (int i = 0; i < 8; ++i) length[i] = static_cast<char>(step.size() >> (8 * i));
  const uint64_t h = fnv1a(std::string_view(length, 8), fnv1a(step, path_key(tree_.node(node).parent)));
  path_keys_[node] = h;
  return h;
}

NodeId SearchRun::first_with_text(NodeId node) {
  return first_with_key_.try_emplace(path_key(node), node).first->second;
}

double SearchRun::selection_score(const Slot& slot) const {
  return tree_.node(slot.node).selection_score.value_or(0.0);
}

void SearchRun::release_state(NodeId node) {
  auto it = states_.find(node);
  if (it == states_.end()) return;
  verifiers_.step->release(it->second);
  states_.erase(it);
}

void SearchRun::free_branch(BranchId branch) {
  auto it = std::find(branches_.begin(), branches_.end(), branch);
  if (it == branches_.end()) return;
  branches_.erase(it);
  gen_.free_branch(branch);
}

void SearchRun::finish(const Slot& slot) {
  SearchNode& n = tree_.node(slot.node);
  n.status = n.finish ? NodeStatus::kFinished : NodeStatus::kPruned;
  if (n.finish) finished_.push_back(slot.node);
  release_state(slot.node);
  free_branch(slot.branch);
}

void SearchRun::prune(const Slot& slot) {
  tree_.node(slot.node).status = NodeStatus::kPruned;
  release_state(slot.node);
  free_branch(slot.branch);
}

void SearchRun::withdraw(const Slot& unsampled, int64_t tokens) {
  --unsampled_[unsampled.node];
  free_branch(unsampled.branch);
  discarded_tokens_ += tokens;
}


SearchResult SearchRun::result(int32_t rounds) {
  SearchResult out;
  for (NodeId id : finished_) {
    const SearchNode& n = tree_.node(id);
    Solution s;
    s.node = id;
    s.steps = tree_.steps(id);
    s.text = tree_.text(id);
    s.step_scores = tree_.scores(id);
    s.score = verifiers_.step ? aggregate(s.step_scores, options_.aggregation) : 0.0;
    if (answer_of_) s.answer = answer_of_(s.text);
    s.finish = *n.finish;
    s.tokens = n.total_tokens;
    out.solutions.push_back(std::move(s));
  }
  if (verifiers_.outcome && !out.solutions.empty()) {
    std::vector<Candidate> candidates;
    for (const Solution& s : out.solutions) {
      Candidate c{problem_.problem, s.steps, {}, {}};
      for (NodeId at : tree_.path(s.node)) {
        const SearchNode& n = tree_.node(at);
        c.token_logprobs.insert(c.token_logprobs.end(), n.token_logprobs.begin(), n.token_logprobs.end());
        c.top_logprobs.insert(c.top_logprobs.end(), n.top_logprobs.begin(), n.top_logprobs.end());
      }
      candidates.push_back(std::move(c));
    }
    const std::vector<double> scores = verifiers_.outcome->score(candidates);
    for (size_t i = 0; i < scores.size(); ++i) out.solutions[i].score = scores[i];
  }

  std::vector<Ballot> ballots;
  for (const Solution& s : out.solutions) ballots.push_back({s.answer, s.score});
  out.naive = select_naive(ballots);
  out.majority = select_majority(ballots);
  out.weighted = select_weighted(ballots);
  switch (options_.strategy) {
    case Strategy::kMajority: out.chosen = out.majority; break;
    case Strategy::kBestOfN: out.chosen = out.naive; break;
    default: out.chosen = out.weighted; break;
  }

  const EngineStats g = gen_.stats();
  out.usage.prompt_tokens = static_cast<int64_t>(problem_.prompt.size());
  out.usage.completion_tokens = g.generated_tokens - gen_start_.generated_tokens - discarded_tokens_;
  out.usage.discarded_tokens = discarded_tokens_;
  auto add_verifier = [&](const VerifierStats& now, const VerifierStats& start) {
    out.usage.verifier_tokens += now.tokens_evaluated - start.tokens_evaluated;
    out.usage.verifier_tokens_if_rescored += now.tokens_if_rescored - start.tokens_if_rescored;
    out.usage.verifier_seconds += now.seconds - start.seconds;
  };
  if (verifiers_.step) add_verifier(verifiers_.step->stats(), step_start_);
  if (verifiers_.outcome) add_verifier(verifiers_.outcome->stats(), outcome_start_);
  out.usage.rounds = rounds;
  out.usage.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  out.tree = tree_;
  return out;
}

}  // namespace ponder::detail
