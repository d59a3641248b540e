// The toy PRM's training data: sampled solutions, each step labelled by exact checking, laid out
// as the conversations ponder's PRM verifier reads (verify/prm.h, the RLHFlow format): the first
// user turn is "{problem} {step 1}", every later step a user turn of its own, and after each step
// the assistant answers "+" (on track) or "-".
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tasks/toy/arithmetic.h"
#include "tasks/toy/train.h"

namespace ponder::toy {

// The conversation for `check`'s steps, rendered with kToyChatTemplate (ChatML), as a training
// document: its text is exactly what the PRM verifier holds when it scores these steps (every
// answer "+", the verifier's stand-in for the answers it has not read), its targets the same
// conversation with each answer the step's label. So the PRM learns to judge a step from the
// steps before it, as it must at test time, not from an earlier "-" it will never be shown.
// Empty when the solution has no steps. Throws std::runtime_error when llama.cpp cannot render
// the template.
Document prm_document(const Problem& problem, const SolutionCheck& check);

// A hard negative for the PRM: the reference solution with a slip of one digit in the result of
// one step, chosen by `rng`, and the later steps computed right from the wrong value, as the
// generator's own slips go on. Its labels are check_solution's ("-" from the slip on). Nothing
// when no slip keeps every value a non-negative number of at most four digits (a few tries).
std::optional<std::string> slipped_solution(const Problem& problem, Rng& rng);

}  // namespace ponder::toy
