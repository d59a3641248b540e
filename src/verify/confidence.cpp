#include "verify/confidence.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "engine/timing.h"

namespace ponder {
namespace {

double lowest_group_confidence(const Candidate& c, size_t index, size_t window) {
  const auto where = [&] { return "candidate " + std::to_string(index) + ": "; };
  const size_t n = c.top_logprobs.size();
  if (n == 0) {
    throw std::invalid_argument(where() + "no top log-probabilities (generate with top_logprobs > 0)");
  }
  if (!c.token_logprobs.empty() && c.token_logprobs.size() != n) {
    throw std::invalid_argument(where() + "top_logprobs and token_logprobs count different tokens");
  }
  // prefix[i]: sum of the token confidences of tokens [0, i).
  std::vector<double> prefix(n + 1, 0.0);
  for (size_t i = 0; i < n; ++i) {
    const auto& top = c.top_logprobs[i];
    if (top.empty()) throw std::invalid_argument(where() + "no top log-probabilities at token " + std::to_string(i));
    double sum = 0.0;
    for (float lp : top) sum += lp;
    prefix[i + 1] = prefix[i] - sum / static_cast<double>(top.size());
  }
  const size_t w = std::min(window, n);
  double lowest = std::numeric_limits<double>::infinity();
  for (size_t start = 0; start + w <= n; ++start) {
    lowest = std::min(lowest, (prefix[start + w] - prefix[start]) / static_cast<double>(w));
  }
  return lowest;
}

}  // namespace

std::vector<double> MeanLogprobConfidence::score(const std::vector<Candidate>& candidates) {
  const auto t0 = Clock::now();
  std::vector<double> out;
  out.reserve(candidates.size());
  for (const auto& c : candidates) {
    double sum = 0.0;
    for (float lp : c.token_logprobs) sum += lp;
    out.push_back(c.token_logprobs.empty() ? 0.0 : std::exp(sum / static_cast<double>(c.token_logprobs.size())));
  }
  ++stats_.calls;
  stats_.seconds += seconds_since(t0);
  return out;
}

LowestGroupConfidence::LowestGroupConfidence(LowestGroupConfidenceOptions options) : options_(options) {
  if (options_.window < 1) throw std::invalid_argument("lowest group confidence: window must be at least 1");
}

std::vector<double> LowestGroupConfidence::score(const std::vector<Candidate>& candidates) {
  const auto t0 = Clock::now();
  std::vector<double> out;
  out.reserve(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) {
    out.push_back(lowest_group_confidence(candidates[i], i, static_cast<size_t>(options_.window)));
  }
  ++stats_.calls;
  stats_.seconds += seconds_since(t0);
  return out;
}

}  // namespace ponder
