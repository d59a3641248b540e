// Confidence from the generator's own log-probabilities: outcome scores without a verifier model.
#pragma once

#include <cstdint>
#include <unordered_map>
#include <vector>

#include "verify/verifier.h"

namespace ponder {

// score = exp(mean of Candidate::token_logprobs): the geometric mean of the sampled tokens'
// probabilities, in [0, 1]; 0 for a candidate without tokens.
class MeanLogprobConfidence final : public OutcomeVerifier {
 public:
  std::vector<double> score(const std::vector<Candidate>& candidates) override;
  // Only calls (score() calls) and seconds: no model is run.
  VerifierStats stats() const override { return stats_; }

 private:
  VerifierStats stats_;
};

// The same confidence step by step, so that beam search and DVTS can be guided by the generator
// alone: a step's score is exp(mean log-probability of every token from the solution's start
// through that step), the geometric-mean token probability of the partial solution. So a
// finished solution's last step scores what MeanLogprobConfidence gives it, and aggregation
// `last` ranks partial solutions as best-of-N ranks whole ones. A state holds its prefix's sum
// and count of log-probabilities; no model is run.
class MeanLogprobStepConfidence final : public StepVerifier {
 public:
  VerifierState root(const std::string& problem) override;
  // Throws std::invalid_argument for an unknown parent state, or for an extension whose
  // step_logprobs do not give one row per step (the search passes the generator's), or leave a
  // step that has text without any log-probability. A score with no token yet is 0.
  std::vector<Scored> extend(const std::vector<Extension>& extensions) override;
  void release(VerifierState state) override;
  // Only calls (extend() calls) and seconds: no model is run.
  VerifierStats stats() const override { return stats_; }

 private:
  struct Prefix {
    double logprob_sum = 0.0;
    int64_t tokens = 0;
  };
  std::unordered_map<VerifierState, Prefix> states_;
  VerifierState next_ = 0;
  VerifierStats stats_;
};

struct LowestGroupConfidenceOptions {
  // Tokens per group, as in the paper. A solution with fewer tokens is one group.
  int32_t window = 2048;
};

// DeepConf's lowest group confidence (Fu et al. 2025, "Deep Think with Confidence").
// Token confidence C_i = -(1/k) * sum of the k log-probabilities in Candidate::top_logprobs[i]
// (k = that row's size, as the generator was asked). It is high where the distribution is
// peaked, whose alternatives then have very low log-probabilities; spread evenly over k tokens
// it is about log k. Group confidence = mean of C_i over `window` consecutive tokens, for every
// window position (sliding by one token); score = the lowest group confidence, so that one
// stretch of confusion marks the whole solution.
//
// Higher = more confident. Not a probability: the score is >= 0 but unbounded above, and depends
// on k, so compare only scores computed with the same k.
class LowestGroupConfidence final : public OutcomeVerifier {
 public:
  // Throws std::invalid_argument for window < 1.
  explicit LowestGroupConfidence(LowestGroupConfidenceOptions options = {});
  // Throws std::invalid_argument for a candidate without top_logprobs (generate with
  // SamplingParams::top_logprobs > 0), with an empty row, or whose token_logprobs (when given)
  // count a different number of tokens.
  std::vector<double> score(const std::vector<Candidate>& candidates) override;
  // Only calls (score() calls) and seconds: no model is run.
  VerifierStats stats() const override { return stats_; }

 private:
  LowestGroupConfidenceOptions options_;
  VerifierStats stats_;
};

}  // namespace ponder
