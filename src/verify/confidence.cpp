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

// exp(mean log-probability): the geometric-mean token probability; 0 without a token.
double mean_probability(double logprob_sum, int64_t tokens) {
  return tokens > 0 ? std::exp(logprob_sum / static_cast<double>(tokens)) : 0.0;
}

}  // namespace

std::vector<double> MeanLogprobConfidence::score(const std::vector<Candidate>& candidates) {
  const auto t0 = Clock::now();
  std::vector<double> out;
  out.reserve(candidates.size());
  for (const auto& c : candidates) {
    double sum = 0.0;
    for (float lp : c.token_logprobs) sum += lp;
    out.push_back(mean_probability(sum, static_cast<int64_t>(c.token_logprobs.size())));
  }
  ++stats_.calls;
  stats_.seconds += seconds_since(t0);
  return out;
}

VerifierState MeanLogprobStepConfidence::root(const std::string&) {
  states_[next_] = {};
  return next_++;
}

std::vector<StepVerifier::Scored> MeanLogprobStepConfidence::extend(const std::vector<Extension>& extensions) {
  const auto t0 = Clock::now();
  // Checked first, so that a bad extension leaves every state as it was.
  for (size_t i = 0; i < extensions.size(); ++i) {
    const Extension& e = extensions[i];
    const auto where = [&] { return "step confidence: extension " + std::to_string(i) + ": "; };
    if (!states_.count(e.parent)) throw std::invalid_argument(where() + "unknown state " + std::to_string(e.parent));
    if (e.step_logprobs.size() != e.steps.size()) {
      throw std::invalid_argument(where() + "needs the generator's log-probabilities of each step");
    }
    for (size_t k = 0; k < e.steps.size(); ++k) {
      if (!e.steps[k].empty() && e.step_logprobs[k].empty()) {
        throw std::invalid_argument(where() + "step " + std::to_string(k) + " has text but no log-probabilities");
      }
    }
  }
  std::vector<Scored> out;
  out.reserve(extensions.size());
  for (const Extension& e : extensions) {
    Prefix p = states_.at(e.parent);
    Scored s;
    for (const auto& step : e.step_logprobs) {
      for (float lp : step) p.logprob_sum += lp;
      p.tokens += static_cast<int64_t>(step.size());
      s.step_scores.push_back(mean_probability(p.logprob_sum, p.tokens));
    }
    if (e.consume_parent) states_.erase(e.parent);
    s.state = next_++;
    states_[s.state] = p;
    out.push_back(std::move(s));
  }
  ++stats_.calls;
  stats_.seconds += seconds_since(t0);
  return out;
}

void MeanLogprobStepConfidence::release(VerifierState state) { states_.erase(state); }

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
