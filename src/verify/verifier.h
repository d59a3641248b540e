// Verifiers: what a search asks to tell good (partial) solutions from bad ones.
//
// Two kinds, because search needs two things:
//   StepVerifier    scores each step of a partial solution as the search grows it (a process
//                   reward model). Incremental: a state holds a scored prefix, extending it
//                   scores only the new steps, so no prefix is ever scored twice.
//   OutcomeVerifier scores finished solutions as a whole (LLM-as-judge, log-prob confidence,
//                   a programmatic checker).
// Scores: higher is better, comparable across calls of one verifier; model-based verifiers
// (PRMs, judges) give probabilities in [0, 1].
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ponder {

// What a verifier may look at: the problem and a (partial) solution split into steps (the
// solution's text is the concatenation of its steps). Log-probabilities are those of the
// generator's own distribution at each of the solution's tokens, for confidence scores: the
// sampled token's, and the k most likely tokens' (k as the generator was asked); empty when
// unknown.
struct Candidate {
  std::string problem;
  std::vector<std::string> steps;
  std::vector<float> token_logprobs;
  std::vector<std::vector<float>> top_logprobs;
};

struct VerifierStats {
  int64_t tokens_evaluated = 0;  // tokens the verifier's model computed
  // Tokens a verifier that re-scores each request's whole text from scratch would have
  // computed for the same requests (what incremental scoring saves against).
  int64_t tokens_if_rescored = 0;
  int64_t calls = 0;             // batched calls into the verifier's model
  double seconds = 0.0;
};

// Handle of a scored prefix held by a StepVerifier. Valid until released or consumed.
using VerifierState = int64_t;

class StepVerifier {
 public:
  virtual ~StepVerifier() = default;

  // A state holding just the problem (no steps yet).
  virtual VerifierState root(const std::string& problem) = 0;

  struct Extension {
    VerifierState parent;
    std::vector<std::string> steps;  // one or more steps appended to the parent's prefix
    // The caller has no further use for `parent` after this call: the verifier may hand its
    // resources to this extension instead of copying them (at most one extension per parent
    // may set this, and the parent is invalid afterwards).
    bool consume_parent = false;
    // Per appended step, the generator's log-probabilities of its tokens (for verifiers that
    // read the generator's confidence; a PRM reads the text alone). Empty when unknown.
    std::vector<std::vector<float>> step_logprobs = {};
  };
  struct Scored {
    std::vector<double> step_scores;  // one per appended step
    VerifierState state;              // the parent's prefix plus the appended steps
  };
  // Scores all extensions together (one batched pass where the model allows).
  virtual std::vector<Scored> extend(const std::vector<Extension>& extensions) = 0;

  virtual void release(VerifierState state) = 0;

  virtual VerifierStats stats() const = 0;
};

class OutcomeVerifier {
 public:
  virtual ~OutcomeVerifier() = default;
  // One score per candidate, for finished solutions.
  virtual std::vector<double> score(const std::vector<Candidate>& candidates) = 0;
  virtual VerifierStats stats() const = 0;
};

}  // namespace ponder
