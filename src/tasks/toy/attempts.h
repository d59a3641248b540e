// Solving toy problems with a generator on ponder's engine, every attempt checked exactly: the
// generator's greedy accuracy per level, and the sampled solutions a PRM is trained on.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "tasks/toy/arithmetic.h"

namespace ponder::toy {

struct Attempt {
  size_t problem = 0;  // index into the problems given
  std::string text;    // the generator's solution, as generated (starts after the problem)
  SolutionCheck check;
};

// `samples` solutions to each problem, prompted as `ponder eval` prompts a model without a chat
// template (math_prompt: the problem's raw text after BOS), generated in batches of as many
// branches as the engine has free. Attempt j of problem i samples with seed
// sampling.seed + i * samples + j (greedy when sampling.temperature <= 0), for at most
// solution_token_budget(level) tokens. Results are ordered by problem, then attempt. Throws
// EngineError from the engine, and std::invalid_argument for samples < 1.
std::vector<Attempt> attempt_problems(Engine& engine, const std::vector<Problem>& problems, int samples,
                                      const SamplingParams& sampling);

struct LevelAccuracy {
  int level = 0;
  int64_t attempts = 0;
  int64_t correct = 0;
};
// Per level present in `attempts`, lowest first.
std::vector<LevelAccuracy> accuracy_by_level(const std::vector<Problem>& problems, const std::vector<Attempt>& attempts);

// Tokens a solution to a problem of `level` needs (one per character), with room for a longer
// wrong one.
int32_t solution_token_budget(int level);

}  // namespace ponder::toy
