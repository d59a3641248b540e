#include "verify/judge.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <string_view>

#include "verify/placeholders.h"

namespace ponder {
namespace {

std::string capitalised(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

std::vector<Token> answer_tokens(const Engine& engine, const std::string& answer, const std::string& side) {
  if (answer.empty()) throw EngineError("the judge's " + side + " answer is empty");
  const std::string cap = capitalised(answer);
  std::vector<Token> out;
  for (const std::string& s : {answer, cap, std::string(" ").append(answer), std::string(" ").append(cap)}) {
    const auto t = engine.tokenize(s, /*add_special=*/false, /*parse_special=*/false);
    if (t.size() == 1 && std::find(out.begin(), out.end(), t[0]) == out.end()) out.push_back(t[0]);
  }
  if (out.empty()) {
    throw EngineError("no variant of the judge's " + side + " answer \"" + answer +
                      "\" is a single token of this model");
  }
  return out;
}

constexpr std::string_view kProblem = "{problem}";
constexpr std::string_view kSolution = "{solution}";

// Frees the branches of one round however it ends.
struct BranchGuard {
  Engine& engine;
  std::vector<BranchId> ids;
  ~BranchGuard() {
    for (BranchId id : ids) engine.free_branch(id);
  }
};

}  // namespace

LlmJudge::LlmJudge(Engine& engine, LlmJudgeOptions options)
    : engine_(engine), options_(std::move(options)) {
  if (options_.prompt_template.find(kSolution) == std::string::npos) {
    throw EngineError("the judge's prompt template has no {solution}");
  }
  chat_ = options_.use_chat_template && engine_.has_chat_template();
  yes_tokens_ = answer_tokens(engine_, options_.yes, "yes");
  no_tokens_ = answer_tokens(engine_, options_.no, "no");
  for (Token t : yes_tokens_) {
    if (std::find(no_tokens_.begin(), no_tokens_.end(), t) != no_tokens_.end()) {
      throw EngineError("the judge's yes and no answers share the token \"" + engine_.token_to_piece(t) + "\"");
    }
  }
}

std::string LlmJudge::render(const Candidate& candidate) const {
  std::string solution;
  for (const auto& step : candidate.steps) solution += step;
  std::string text = fill_placeholders(options_.prompt_template, {{kProblem, candidate.problem}, {kSolution, solution}});
  if (!chat_) return text;
  return engine_.apply_chat_template({{"user", text}}, /*add_generation_prompt=*/true);
}

std::vector<double> LlmJudge::score(const std::vector<Candidate>& candidates) {
  const auto t0 = std::chrono::steady_clock::now();

  // Distinct prompts (map keys, which stay put), grouped by problem.
  std::map<std::vector<Token>, size_t> index;
  std::vector<const std::vector<Token>*> prompts;
  std::vector<size_t> prompt_of(candidates.size());
  std::map<std::string, size_t> group_of;
  std::vector<std::vector<size_t>> groups;
  for (size_t i = 0; i < candidates.size(); ++i) {
    auto tokens = engine_.tokenize(render(candidates[i]), /*add_special=*/true, /*parse_special=*/true);
    if (tokens.empty()) throw EngineError("the judge's prompt for a candidate is empty");
    stats_.tokens_if_rescored += static_cast<int64_t>(tokens.size());
    const auto [it, added] = index.try_emplace(std::move(tokens), prompts.size());
    prompt_of[i] = it->second;
    if (!added) continue;
    prompts.push_back(&it->first);
    const auto [g, new_group] = group_of.try_emplace(candidates[i].problem, groups.size());
    if (new_group) groups.emplace_back();
    groups[g->second].push_back(it->second);
  }

  std::vector<Token> answers = yes_tokens_;
  answers.insert(answers.end(), no_tokens_.begin(), no_tokens_.end());
  std::vector<double> prompt_scores(prompts.size());

  // A unit is a set of prompts scored on forks of one shared branch (one branch when alone).
  using Unit = std::vector<size_t>;
  auto run_round = [&](const std::vector<Unit>& units) {
    BranchGuard guard{engine_, {}};
    // All shared branches exist before the first fork, which computes them together.
    std::vector<BranchId> shared(units.size(), -1);
    std::vector<size_t> common(units.size(), 0);
    for (size_t u = 0; u < units.size(); ++u) {
      if (units[u].size() < 2) continue;
      const auto& first = *prompts[units[u][0]];
      size_t n = first.size() - 1;  // each fork keeps at least the token the answer follows
      for (size_t p : units[u]) {
        const auto& other = *prompts[p];
        n = std::min(n, other.size() - 1);
        n = static_cast<size_t>(std::mismatch(first.begin(), first.begin() + n, other.begin()).first - first.begin());
      }
      if (n == 0) continue;
      common[u] = n;
      shared[u] = engine_.new_branch({first.begin(), first.begin() + n});
      guard.ids.push_back(shared[u]);
      stats_.tokens_evaluated += static_cast<int64_t>(n);
    }
    std::vector<EvaluateRequest> requests;
    std::vector<size_t> owner;
    for (size_t u = 0; u < units.size(); ++u) {
      for (size_t p : units[u]) {
        const BranchId b = shared[u] >= 0 ? engine_.fork(shared[u]) : engine_.new_branch({});
        guard.ids.push_back(b);
        const auto& tokens = *prompts[p];
        std::vector<Token> rest(tokens.begin() + common[u], tokens.end());
        const auto last = static_cast<int32_t>(rest.size() - 1);
        stats_.tokens_evaluated += static_cast<int64_t>(rest.size());
        requests.push_back({b, std::move(rest), {last}, answers});
        owner.push_back(p);
      }
    }
    const auto results = engine_.evaluate(requests);
    ++stats_.calls;
    for (size_t r = 0; r < results.size(); ++r) {
      const auto& probs = results[r].probs[0];
      double yes = 0.0, no = 0.0;
      for (size_t j = 0; j < probs.size(); ++j) (j < yes_tokens_.size() ? yes : no) += probs[j];
      prompt_scores[owner[r]] = yes + no > 0.0 ? yes / (yes + no) : 0.5;
    }
  };

  if (!prompts.empty()) {
    const int32_t slots = engine_.free_slots();
    if (slots < 1) throw EngineError("the judge's engine has no free branch");
    // A unit of k > 1 prompts takes k forks and its shared branch.
    const size_t max_unit = slots >= 3 ? static_cast<size_t>(slots - 1) : 1;
    std::vector<Unit> round;
    int32_t used = 0;
    for (const auto& group : groups) {
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
  }

  std::vector<double> out(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) out[i] = prompt_scores[prompt_of[i]];
  stats_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace ponder
