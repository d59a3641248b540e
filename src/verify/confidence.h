// Confidence from the generator's own log-probabilities: outcome scores without a verifier model.
#pragma once

#include <cstdint>
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
