#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <optional>

namespace ponder {

BranchSampler::BranchSampler(const SamplingParams& params) : params_(params), rng_(params.seed) {}

namespace {

// The hot loops of sampling, over the whole vocabulary for every branch at every step: written
// to compile to vector code (see src/CMakeLists.txt).

float max_of(const float* x, int32_t n) {
  float m = x[0];
  for (int32_t i = 1; i < n; ++i) m = std::max(m, x[i]);
  return m;
}

// The lowest id whose logit is the largest.
Token argmax_of(const float* logits, int32_t n) {
  return static_cast<Token>(std::find(logits, logits + n, max_of(logits, n)) - logits);
}

// out[i] = exp((logits[i] - max) * scale); returns their sum.
float weights_of(const float* logits, int32_t n, float max_logit, float scale, float* out) {
  float sum = 0.0f;
  for (int32_t i = 0; i < n; ++i) {
    out[i] = std::exp((logits[i] - max_logit) * scale);
    sum += out[i];
  }
  return sum;
}

struct RawSums {
  float sum = 0.0f;       // the softmax's normaliser
  float weighted = 0.0f;  // sum of out[i] * logits[i], for the entropy
};

// out[i] = exp(logits[i] - max), the weights at temperature 1, and their sums (`weighted` only
// when asked).
RawSums raw_exps(const float* logits, int32_t n, float max_logit, bool weighted, float* out) {
  RawSums s;
  s.sum = weights_of(logits, n, max_logit, 1.0f, out);
  if (weighted) {
    for (int32_t i = 0; i < n; ++i) s.weighted += out[i] * logits[i];
  }
  return s;
}

// Where a draw r in [0, sum of w) lands: the first i with w[0] + ... + w[i] > r. Skips whole
// blocks by their (vectorised) sums; nullopt where rounding leaves r past the end.
std::optional<int32_t> draw_index(const float* w, int32_t n, double r) {
  constexpr int32_t kBlock = 256;
  for (int32_t start = 0; start < n; start += kBlock) {
    const int32_t end = std::min(n, start + kBlock);
    float block = 0.0f;
    for (int32_t i = start; i < end; ++i) block += w[i];
    if (r >= block) {
      r -= block;
      continue;
    }
    for (int32_t i = start; i < end; ++i) {
      r -= w[i];
      if (r < 0.0) return i;
    }
  }
  return std::nullopt;
}

}  // namespace

double BranchSampler::uniform() {
  return static_cast<double>(rng_() >> 11) * 0x1.0p-53;
}

StepInfo BranchSampler::sample(const float* logits, int32_t n_vocab) {
  // Raw distribution: log-sum-exp, and entropy H = lse - sum(p * logit).
  const float max_logit = max_of(logits, n_vocab);
  exps_.resize(n_vocab);
  const RawSums raw = raw_exps(logits, n_vocab, max_logit, params_.entropy, exps_.data());
  const double lse = max_logit + std::log(static_cast<double>(raw.sum));

  Token token = 0;
  if (params_.temperature <= 0.0f) {
    token = argmax_of(logits, n_vocab);
  } else {
    const double inv_t = 1.0 / params_.temperature;
    const bool truncate = params_.top_p < 1.0f || params_.top_k > 0 || params_.min_p > 0.0f;
    if (!truncate) {
      // Fast path: the weights (at temperature 1, the exponentials above), then where the draw
      // lands among them.
      const float total = params_.temperature == 1.0f
                              ? raw.sum
                              : weights_of(logits, n_vocab, max_logit, static_cast<float>(inv_t), exps_.data());
      const std::optional<int32_t> drawn = draw_index(exps_.data(), n_vocab, uniform() * total);
      token = drawn ? *drawn : argmax_of(logits, n_vocab);
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
  if (params_.entropy) step.entropy = static_cast<float>(lse - raw.weighted / raw.sum);
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
