// The verifier flags `ponder solve` and `ponder eval` share (--prm, --prm-format, --judge,
// --confidence), and opening what they name.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/engine_setup.h"
#include "search/search.h"

namespace ponder::cli {

struct VerifierFlags {
  std::string prm;
  std::string prm_format = "rlhflow";
  std::string judge;
  std::string confidence;  // "", mean, lowest-group
};

void add_verifier_flags(CLI::App* cmd, VerifierFlags& flags);

// Throws EngineError when the flags contradict each other or a strategy lacks the verifier it
// needs (before anything heavy is loaded).
void check_verifier_flags(const VerifierFlags& flags, const std::vector<Strategy>& strategies);

// What the flags name, opened: a PRM or judge on its own engine (sized for `branches` live
// branches over the longest of `problems`), or a confidence score.
struct OpenVerifiers {
  std::unique_ptr<Engine> engine;
  std::unique_ptr<StepVerifier> step;
  std::unique_ptr<OutcomeVerifier> outcome;
  Verifiers view() const { return {step.get(), outcome.get()}; }
};

// `search` sizes the caches (max_tokens, max_rounds) and gets top_logprobs set when the
// lowest-group confidence needs them. `step_wise`: whether any search grows step by step.
OpenVerifiers open_verifiers(const VerifierFlags& flags, const EngineFlags& engine_flags,
                             const std::vector<std::string>& problems, int32_t branches, bool step_wise,
                             SearchOptions& search);

}  // namespace ponder::cli
