// Reading yes/no answers off next-token probabilities; see yes_no.h.
#include "verify/yes_no.h"

#include <algorithm>

namespace ponder {
namespace {

std::string capitalised(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

std::vector<Token> answer_tokens(const Engine& engine, const std::string& answer, const std::string& side,
                                 const std::string& who) {
  if (answer.empty()) throw EngineError(who + "'s " + side + " answer is empty");
  const std::string cap = capitalised(answer);
  std::vector<Token> out;
  for (const std::string& s : {answer, cap, std::string(" ").append(answer), std::string(" ").append(cap)}) {
    const auto t = engine.tokenize(s, /*add_special=*/false, /*parse_special=*/false);
    if (t.size() == 1 && std::find(out.begin(), out.end(), t[0]) == out.end()) out.push_back(t[0]);
  }
  if (out.empty()) {
    throw EngineError("no variant of " + who + "'s " + side + " answer \"" + answer +
                      "\" is a single token of this model");
  }
  return out;
}

// Frees the branches of one round however it ends.
struct BranchGuard {
  Engine& engine;
  std::vector<BranchId> ids;
  ~BranchGuard() {
    for (BranchId id : ids) engine.free_branch(id);
  }
};

}  // namespace

YesNoTokens yes_no_tokens(const Engine& engine, const std::string& yes, const std::string& no,
                          const std::string& who) {
  YesNoTokens out{answer_tokens(engine, yes, "yes", who), answer_tokens(engine, no, "no", who)};
  for (Token t : out.yes) {
    if (std::find(out.no.begin(), out.no.end(), t) != out.no.end()) {
      throw EngineError(who + "'s yes and no answers share the token \"" + engine.token_to_piece(t) + "\"");
    }
  }
  return out;
}

size_t YesNoBatch::add(std::vector<Token> tokens, const std::string& group) {
  if (tokens.empty()) throw EngineError("a yes/no prompt is empty");
  const auto [it, added] = index_.try_emplace(std::move(tokens), prompts_.size());
  if (!added) return it->second;
  prompts_.push_back(&it->first);
  const auto [g, new_group] = group_of_.try_emplace(group, groups_.size());
  if (new_group) groups_.emplace_back();
  groups_[g->second].push_back(it->second);
  return it->second;
}

std::vector<double> YesNoBatch::read(Engine& engine, const YesNoTokens& answer_tokens, YesNoReadStats& stats) const {
  std::vector<Token> answers = answer_tokens.yes;
  answers.insert(answers.end(), answer_tokens.no.begin(), answer_tokens.no.end());
  std::vector<double> scores(prompts_.size());

  // A unit is a set of prompts scored on forks of one shared branch (one branch when alone).
  using Unit = std::vector<size_t>;
  auto run_round = [&](const std::vector<Unit>& units) {
    BranchGuard guard{engine, {}};
    // All shared branches exist before the first fork, which computes them together.
    std::vector<BranchId> shared(units.size(), -1);
    std::vector<size_t> common(units.size(), 0);
    for (size_t u = 0; u < units.size(); ++u) {
      if (units[u].size() < 2) continue;
      const auto& first = *prompts_[units[u][0]];
      size_t n = first.size() - 1;  // each fork keeps at least the token the answer follows
      for (size_t p : units[u]) {
        const auto& other = *prompts_[p];
        n = std::min(n, other.size() - 1);
        n = static_cast<size_t>(std::mismatch(first.begin(), first.begin() + n, other.begin()).first - first.begin());
      }
      if (n == 0) continue;
      common[u] = n;
      shared[u] = engine.new_branch({first.begin(), first.begin() + n});
      guard.ids.push_back(shared[u]);
      stats.tokens_evaluated += static_cast<int64_t>(n);
    }
    std::vector<EvaluateRequest> requests;
    std::vector<size_t> owner;
    for (size_t u = 0; u < units.size(); ++u) {
      for (size_t p : units[u]) {
        const BranchId b = shared[u] >= 0 ? engine.fork(shared[u]) : engine.new_branch({});
        guard.ids.push_back(b);
        const auto& tokens = *prompts_[p];
        std::vector<Token> rest(tokens.begin() + common[u], tokens.end());
        const auto last = static_cast<int32_t>(rest.size() - 1);
        stats.tokens_evaluated += static_cast<int64_t>(rest.size());
        requests.push_back({b, std::move(rest), {last}, answers});
        owner.push_back(p);
      }
    }
    const auto results = engine.evaluate(requests);
    ++stats.calls;
    for (size_t r = 0; r < results.size(); ++r) {
      const auto& probs = results[r].probs[0];
      double yes = 0.0, no = 0.0;
      for (size_t j = 0; j < probs.size(); ++j) (j < answer_tokens.yes.size() ? yes : no) += probs[j];
      scores[owner[r]] = yes + no > 0.0 ? yes / (yes + no) : 0.5;
    }
  };

  if (prompts_.empty()) return scores;
  const int32_t slots = engine.free_slots();
  if (slots < 1) throw EngineError("the yes/no reader's engine has no free branch");
  // A unit of k > 1 prompts takes k forks and its shared branch.
  const size_t max_unit = slots >= 3 ? static_cast<size_t>(slots - 1) : 1;
  std::vector<Unit> round;
  int32_t used = 0;
  for (const auto& group : groups_) {
    for (size_t start = 0; start < group.size(); start += max_unit) {
      Unit unit(group.begin() + start, group.begin() + std::min(group.size(), start + max_unit));
      const auto need = static_cast<int32_t>(unit.size() == 1 ? 1 : unit.size() + 1);
      if (used + need > slots) {
        run_round(round);
        round.clear();
        used = 0;
      }
      round.push_back(std::move(unit));
      used += need;
    }
  }
  run_round(round);
  return scores;
}

}  // namespace ponder
