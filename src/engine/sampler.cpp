#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace ponder {

BranchSampler::BranchSampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}

float exp_shifted(const float* logits, int32_t n, float shift, float scale, float* out) {
  float sum = 0.0f;
  for (int32_t i = 0; i < n; ++i) {
    out[i] = std::exp((logits[i] - shift) * scale);
    sum += out[i];
  }
  return sum;
}

double BranchSampler::uniform() {
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

StepInfo BranchSampler::sample(const float* logits, int32_t n_vocab) {
  // Raw distribution: log-sum-exp, and entropy H = lse - sum(p * logit). The exponentials are
  // kept: at temperature 1 without truncation they are also the sampling weights.
  int32_t argmax = 0;
  float max_logit = logits[0];
  for (int32_t i = 1; i < n_vocab; ++i) {
    if (logits[i] > max_logit) {
      max_logit = logits[i];
      argmax = i;
    }
  }
  exps_.resize(n_vocab);
  const float sum = exp_shifted(logits, n_vocab, max_logit, 1.0f, exps_.data());
  double weighted = 0.0;
  if (params_.entropy) {
    for (int32_t i = 0; i < n_vocab; ++i) weighted += static_cast<double>(exps_[i]) * logits[i];
  }
  const double lse = max_logit + std::log(static_cast<double>(sum));

  Token token = argmax;
  if (params_.temperature > 0.0f) {
    const double inv_t = 1.0 / params_.temperature;
    const bool truncate = params_.top_p < 1.0f || params_.top_k > 0 || params_.min_p > 0.0f;
    if (!truncate) {
      // Fast path: the weights (the exponentials above at temperature 1), then one scan to find
      // where the draw lands.
      float total = sum;
      if (params_.temperature != 1.0f) {
        total = exp_shifted(logits, n_vocab, max_logit, static_cast<float>(inv_t), exps_.data());
      }
      double r = uniform() * total;
      token = argmax;  // where rounding leaves r >= 0 after the last token
      for (int32_t i = 0; i < n_vocab; ++i) {
        r -= exps_[i];
        if (r < 0.0) {
          token = i;
          break;
        }
      }
    } else {
      order_.resize(n_vocab);
      std::iota(order_.begin(), order_.end(), 0);
      auto by_logit = [logits](int32_t a, int32_t b) {
        return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
      };
      size_t keep = n_vocab;
      if (params_.top_k > 0 && params_.top_k < n_vocab) {
        keep = params_.top_k;
        std::nth_element(order_.begin(), order_.begin() + keep, order_.end(), by_logit);
      }
      std::sort(order_.begin(), order_.begin() + keep, by_logit);
      weights_.resize(keep);
      double total = 0.0;
      for (size_t i = 0; i < keep; ++i) {
        weights_[i] = std::exp((static_cast<double>(logits[order_[i]]) - max_logit) * inv_t);
        total += weights_[i];
      }
      if (params_.min_p > 0.0f) {
        // weights_[0] is the largest: keep those with p >= min_p * p_max.
        const double floor = params_.min_p * weights_[0];
        size_t n = 1;
        while (n < keep && weights_[n] >= floor) ++n;
        keep = n;
      }
      if (params_.top_p < 1.0f) {
        double kept_total = 0.0;
        for (size_t i = 0; i < keep; ++i) kept_total += weights_[i];
        double cumulative = 0.0;
        size_t n = 0;
        while (n < keep) {
          cumulative += weights_[n++];
          if (cumulative >= params_.top_p * kept_total) break;
        }
        keep = n;
      }
      total = 0.0;
      for (size_t i = 0; i < keep; ++i) total += weights_[i];
      double r = uniform() * total;
      token = order_[keep - 1];
      for (size_t i = 0; i < keep; ++i) {
        r -= weights_[i];
        if (r < 0.0) {
          token = order_[i];
          break;
        }
      }
    }
  }

  StepInfo step;
  step.token = token;
  step.logprob = static_cast<float>(logits[token] - lse);
  if (params_.entropy) step.entropy = static_cast<float>(lse - weighted / sum);
  if (params_.top_logprobs > 0) {
    const int32_t k = std::min(params_.top_logprobs, n_vocab);
    order_.resize(n_vocab);
    std::iota(order_.begin(), order_.end(), 0);
    std::partial_sort(order_.begin(), order_.begin() + k, order_.end(), [logits](int32_t a, int32_t b) {
      return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    });
    step.top.reserve(k);
    for (int32_t i = 0; i < k; ++i) {
      step.top.push_back({order_[i], static_cast<float>(logits[order_[i]] - lse)});
    }
  }
  return step;
}

}  // namespace ponder
