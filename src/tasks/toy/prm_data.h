// The toy PRM's training data: sampled solutions, each step labelled by exact checking, laid out
// as the conversations ponder's PRM verifier reads (verify/prm.h, the RLHFlow format): the first
// user turn is "{problem} {step 1}", every later step a user turn of its own, and after each step
// the assistant answers "+" (on track) or "-".
#pragma once

#include <string>
#include <vector>

#include "tasks/toy/arithmetic.h"

namespace ponder::toy {

// The conversation for `check`'s steps with its labels, rendered with kToyChatTemplate (ChatML)
// exactly as the PRM verifier renders a scored conversation, except that each answer is the
// step's label rather than "+". Empty when the solution has no steps. Throws std::runtime_error
// when llama.cpp cannot render the template.
std::string prm_document(const Problem& problem, const SolutionCheck& check);

}  // namespace ponder::toy
