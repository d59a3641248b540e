#include "tasks/toy/attempts.h"

#include <algorithm>
#include <map>
#include <stdexcept>

#include "tasks/math/prompt.h"

namespace ponder::toy {

std::vector<Attempt> attempt_problems(Engine& engine, const std::vector<Problem>& problems, int samples,
                                      const SamplingParams& sampling) {
  if (samples < 1) throw std::invalid_argument("at least one attempt per problem");
  std::vector<Attempt> out;
  out.reserve(problems.size() * static_cast<size_t>(samples));
  for (size_t i = 0; i < problems.size(); ++i) {
    for (int j = 0; j < samples; ++j) out.push_back({i, {}, {}});
  }
  const size_t batch = static_cast<size_t>(std::max(1, engine.free_slots()));
  for (size_t first = 0; first < out.size(); first += batch) {
    const size_t last = std::min(out.size(), first + batch);
    std::vector<GenerateRequest> requests;
    for (size_t k = first; k < last; ++k) {
      const Problem& p = problems[out[k].problem];
      GenerateRequest r;
      r.branch = engine.new_branch(math_prompt(engine, p.text(), ""));
      r.sampling = sampling;
      r.sampling.seed = sampling.seed + k;  // k = i * samples + j
      r.stop.max_tokens = solution_token_budget(p.level);
      requests.push_back(std::move(r));
    }
    std::vector<Completion> done;
    try {
      done = engine.generate(requests);
    } catch (...) {
      for (const auto& r : requests) engine.free_branch(r.branch);
      throw;
    }
    for (size_t k = first; k < last; ++k) {
      engine.free_branch(requests[k - first].branch);
      out[k].text = std::move(done[k - first].text);
      out[k].check = check_solution(problems[out[k].problem], out[k].text);
    }
  }
  return out;
}

std::vector<LevelAccuracy> accuracy_by_level(const std::vector<Problem>& problems, const std::vector<Attempt>& attempts) {
  std::map<int, LevelAccuracy> by_level;
  for (const auto& a : attempts) {
    LevelAccuracy& l = by_level[problems.at(a.problem).level];
    l.level = problems[a.problem].level;
    ++l.attempts;
    l.correct += a.check.correct ? 1 : 0;
  }
  std::vector<LevelAccuracy> out;
  for (const auto& [level, acc] : by_level) out.push_back(acc);
  return out;
}

int32_t solution_token_budget(int level) {
  // The leading newline; a step with its delimiter is at most 16 ("900 + 99 = 999\n\n"); the
  // answer step "Answer: \boxed{999}" (19). Twice that leaves room for wrong, longer steps.
  return 1 + 2 * (16 * level_spec(level).operations + 19);
}

}  // namespace ponder::toy
