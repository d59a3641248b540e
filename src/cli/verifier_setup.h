// The verifier flags `ponder solve` and `ponder eval` share (--prm, --prm-format, --judge,
// --confidence), and opening what they name.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "cli/engine_setup.h"
#include "cli/remote_setup.h"
#include "search/search.h"

namespace ponder::cli {

struct VerifierFlags {
  std::string prm;
  // --prm-remote: a PRM on llama-server endpoints instead (commands that offer it register it,
  // with add_remote_flags, which binds `remote`).
  std::vector<std::string> prm_remote;
  RemoteFlags remote;
  std::string prm_format = "rlhflow";
  std::string judge;
  std::string confidence;  // "", mean, lowest-group
  // The PRM's or judge's KV layout (--verifier-kv; --kv is the generator's). Unified by default:
  // a verifier appends whole steps to many branches at once, which split streams compute
  // stream by stream (measured 2-3x slower, BENCHMARKS.md, "Split streams ...").
  std::string kv = "unified";
};

void add_verifier_flags(CLI::App* cmd, VerifierFlags& flags);

// Whether the flags give a step verifier, which beam search and DVTS need: a PRM (local or
// remote), or without one the mean confidence.
bool gives_step_verifier(const VerifierFlags& flags);

// Throws EngineError when the flags contradict each other or a strategy lacks the verifier it
// needs (before anything heavy is loaded).
void check_verifier_flags(const VerifierFlags& flags, const std::vector<Strategy>& strategies);

// What the flags name, opened: a PRM or judge on its own engine (sized for `branches` live
// branches of each of `workers` concurrent searches, over the longest of `problems`), or a
// confidence score; a verifier for each worker.
struct OpenVerifiers {
  std::unique_ptr<SharedModel> model;  // the PRM's or judge's, if any
  std::vector<std::unique_ptr<RemoteEngine>> remote;  // a remote PRM's engines, one per worker
  std::vector<std::unique_ptr<StepVerifier>> step;        // per worker, or empty
  std::vector<std::unique_ptr<OutcomeVerifier>> outcome;  // per worker, or empty
  Verifiers view(int32_t worker = 0) const {
    const auto w = static_cast<size_t>(worker);
    return {step.empty() ? nullptr : step.at(w).get(), outcome.empty() ? nullptr : outcome.at(w).get()};
  }
};

// `search` sizes the caches (max_tokens, max_rounds) and gets top_logprobs set when the
// lowest-group confidence needs them. `step_wise`: whether any search grows step by step; without
// a PRM, `--confidence mean` then also gives each worker a step verifier (the step confidence).
OpenVerifiers open_verifiers(const VerifierFlags& flags, const EngineFlags& engine_flags,
                             const std::vector<std::string>& problems, int32_t branches, bool step_wise,
                             SearchOptions& search, int32_t workers = 1);
// The same for problems not known yet (a server's): each at most `problem_tokens` tokens in the
// verifier model's own vocabulary.
OpenVerifiers open_verifiers(const VerifierFlags& flags, const EngineFlags& engine_flags, int64_t problem_tokens,
                             int32_t branches, bool step_wise, SearchOptions& search, int32_t workers);

}  // namespace ponder::cli
