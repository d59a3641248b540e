// Per-branch token sampling over a model's logits.
//
// Temperature is applied first, then top-k, top-p and min-p (the order of Hugging Face and
// vLLM, which the published test-time-compute results used). Reported log-probabilities are
// always those of the raw distribution (softmax of the logits), whatever the sampling settings.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "engine/engine.h"

namespace ponder {

class BranchSampler {
 public:
  explicit BranchSampler(const SamplingParams& params);

  // Picks the next token from logits[0..n_vocab) and advances this sampler's random stream.
  StepInfo sample(const float* logits, int32_t n_vocab);

 private:
  double uniform();  // in [0, 1), identical on every platform for a given seed

  SamplingParams params_;
  std::mt19937_64 rng_;
  std::vector<int32_t> order_;   // scratch: candidate ids
  std::vector<double> weights_;  // scratch: unnormalised probabilities of the candidates
  std::vector<float> exps_;      // scratch: sampling weights for the whole vocabulary
};

}  // namespace ponder
