// Story fluency from a scorer model's token probabilities, one forward pass per text.
//
// Layout of one call: a base branch holds the context tokens the texts share, all but the last
// one. Each text goes to a fork of it (the last text to the base itself) and is evaluated as
// [last shared context token] + its tokens but the final one: the probe at the re-fed context token
// reads P(first text token | context), the probe at text token k reads P(token k+1 | ...). The
// context token is re-fed because evaluate() reads probabilities only at positions it appends,
// and the branch's own last logits are not exposed; it costs one token per text.
#include "verify/story/fluency.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <unordered_map>

namespace ponder {
namespace {

// A candidate's probability can underflow float to 0; its log-probability is floored here
// (about -87 nats) so that one impossible token drags the mean down without making it -inf.
constexpr double kMinProbability = std::numeric_limits<float>::min();

size_t common_prefix(const std::vector<Token>& a, const std::vector<Token>& b) {
  const size_t n = std::min(a.size(), b.size());
  size_t i = 0;
  while (i < n && a[i] == b[i]) ++i;
  return i;
}

// A text as the model reads it after the context.
struct Reading {
  std::vector<Token> tokens;  // context + text, tokenized together
  size_t first_scored = 0;    // tokens[first_scored..] are scored; each needs a token before it
};

// Frees the branches it holds when the call ends, normally or by an exception.
class BranchGuard {
 public:
  explicit BranchGuard(Engine& engine) : engine_(engine) {}
  ~BranchGuard() {
    for (BranchId b : branches_) engine_.free_branch(b);
  }
  BranchGuard(const BranchGuard&) = delete;
  BranchGuard& operator=(const BranchGuard&) = delete;
  BranchId hold(BranchId branch) {
    branches_.push_back(branch);
    return branch;
  }
  // The branches are someone else's now: not freed.
  void release_all() { branches_.clear(); }

 private:
  Engine& engine_;
  std::vector<BranchId> branches_;
};

}  // namespace

std::vector<double> FluencyScorer::score(const std::string& context, const std::vector<std::string>& texts) {
  ++stats_.calls;
  stats_.texts += static_cast<int64_t>(texts.size());
  std::vector<double> scores(texts.size(), 0.0);

  const std::vector<Token> context_tokens = engine_.tokenize(context, /*add_special=*/true, /*parse_special=*/false);
  std::vector<Reading> readings(texts.size());
  std::vector<size_t> to_score;  // texts with at least one token to score
  size_t shared = std::numeric_limits<size_t>::max();  // context tokens the base branch holds
  for (size_t i = 0; i < texts.size(); ++i) {
    Reading& r = readings[i];
    r.tokens = engine_.tokenize(context + texts[i], /*add_special=*/true, /*parse_special=*/false);
    // Without BOS and context, the very first token has nothing to be read at: it goes unscored.
    r.first_scored = std::max<size_t>(common_prefix(r.tokens, context_tokens), 1);
    if (r.first_scored >= r.tokens.size()) continue;
    to_score.push_back(i);
    shared = std::min(shared, r.first_scored - 1);
  }
  if (to_score.empty()) return scores;

  BranchGuard guard(engine_);
  const BranchId base = guard.hold(engine_.new_branch(
      std::vector<Token>(context_tokens.begin(), context_tokens.begin() + static_cast<ptrdiff_t>(shared))));
  stats_.context_tokens += static_cast<int64_t>(shared);

  // Normally one group; more texts than free branches are evaluated a group at a time.
  for (size_t done = 0; done < to_score.size();) {
    const size_t forks_free = static_cast<size_t>(std::max(engine_.free_slots(), 0));
    const size_t remaining = to_score.size() - done;
    const bool last_group = remaining <= forks_free + 1;  // the base branch takes the last text
    if (!last_group && forks_free == 0) throw EngineError("fluency: no free branch to fork");
    const size_t group = last_group ? remaining : forks_free;

    BranchGuard forks(engine_);
    std::vector<EvaluateRequest> requests(group);
    for (size_t g = 0; g < group; ++g) {
      const Reading& r = readings[to_score[done + g]];
      EvaluateRequest& req = requests[g];
      req.branch = (last_group && g + 1 == group) ? base : forks.hold(engine_.fork(base));
      // The final token is never read at: nothing follows it.
      req.tokens.assign(r.tokens.begin() + static_cast<ptrdiff_t>(shared), r.tokens.end() - 1);
      for (size_t t = r.first_scored; t < r.tokens.size(); ++t) {
        req.positions.push_back(static_cast<int32_t>(t - 1 - shared));
      }
      // evaluate() reads a shared candidate list at every probe; the text's distinct tokens
      // cover every probe's actual next token. The softmax over the vocabulary is paid per probe
      // anyway; the extra output is probes x distinct floats, small beside it.
      req.candidates.assign(r.tokens.begin() + static_cast<ptrdiff_t>(r.first_scored), r.tokens.end());
      std::sort(req.candidates.begin(), req.candidates.end());
      req.candidates.erase(std::unique(req.candidates.begin(), req.candidates.end()), req.candidates.end());
      stats_.evaluated_tokens += static_cast<int64_t>(req.tokens.size());
    }

    const std::vector<EvaluateResult> results = engine_.evaluate(requests);
    ++stats_.evaluate_calls;

    for (size_t g = 0; g < group; ++g) {
      const size_t text = to_score[done + g];
      const Reading& r = readings[text];
      const EvaluateRequest& req = requests[g];
      std::unordered_map<Token, size_t> column;
      for (size_t j = 0; j < req.candidates.size(); ++j) column[req.candidates[j]] = j;
      double sum = 0.0;
      for (size_t p = 0; p < req.positions.size(); ++p) {
        const Token actual = r.tokens[r.first_scored + p];
        sum += std::log(std::max<double>(results[g].probs[p][column.at(actual)], kMinProbability));
      }
      const size_t n = req.positions.size();
      scores[text] = std::exp(sum / static_cast<double>(n));
      stats_.scored_tokens += static_cast<int64_t>(n);
    }
    done += group;
  }
  return scores;
}

double FluencyPrefix::score() const { return scored > 0 ? std::exp(logprob_sum / static_cast<double>(scored)) : 0.0; }

FluencyPrefix FluencyScorer::begin(const std::string& context) {
  FluencyPrefix p;
  p.tokens = engine_.tokenize(context, /*add_special=*/true, /*parse_special=*/false);
  if (p.tokens.size() > 1) {
    p.branch = engine_.new_branch(std::vector<Token>(p.tokens.begin(), p.tokens.end() - 1));
    stats_.context_tokens += static_cast<int64_t>(p.tokens.size() - 1);
  }
  return p;
}

void FluencyScorer::release(FluencyPrefix& prefix) {
  if (prefix.branch >= 0) engine_.free_branch(prefix.branch);
  prefix.branch = -1;
}

std::vector<FluencyScorer::Extended> FluencyScorer::extend(const std::string& context,
                                                           const std::vector<Extension>& extensions) {
  ++stats_.calls;
  std::vector<Extended> out(extensions.size());
  const std::vector<Token> context_tokens = engine_.tokenize(context, /*add_special=*/true, /*parse_special=*/false);

  // Per extension: where its reading starts (a fork of the parent, or the start of the text
  // when the parent's tokens are not a prefix of the new ones), and what it appends.
  struct Plan {
    std::vector<std::vector<Token>> readings;  // per text: context + text
    size_t first_scored = 0;                   // of the last reading
    size_t start = 0;      // the reading's tokens[0..start) are held by the branch it continues
    double sum = 0.0;      // carried over from the parent
    int64_t scored = 0;
    bool fork = false;     // continue a fork of the parent's branch (else a new branch)
    std::vector<double> logprobs;  // of tokens[start..], once read
  };
  std::vector<Plan> plans(extensions.size());
  for (size_t i = 0; i < extensions.size(); ++i) {
    const Extension& e = extensions[i];
    if (e.texts.empty()) throw EngineError("fluency: an extension without texts");
    Plan& plan = plans[i];
    for (const std::string& text : e.texts) {
      plan.readings.push_back(engine_.tokenize(context + text, /*add_special=*/true, /*parse_special=*/false));
      stats_.texts += 1;
    }
    const std::vector<Token>& last = plan.readings.back();
    plan.first_scored = std::max<size_t>(common_prefix(last, context_tokens), 1);
    const std::vector<Token>& held = e.parent->tokens;
    const bool continues = e.parent->branch >= 0 && !held.empty() && held.size() <= last.size() &&
                           held.size() >= plan.first_scored && common_prefix(held, last) == held.size();
    if (continues) {
      plan.fork = true;
      plan.start = held.size();
      plan.sum = e.parent->logprob_sum;
      plan.scored = e.parent->scored;
    } else {
      plan.start = std::min(plan.first_scored, last.size());
    }
  }

  // One branch per extension, then one evaluate() for every new token.
  BranchGuard made(engine_);
  std::vector<EvaluateRequest> requests;
  std::vector<size_t> requested;  // extension of each request
  for (size_t i = 0; i < extensions.size(); ++i) {
    Plan& plan = plans[i];
    const std::vector<Token>& last = plan.readings.back();
    if (plan.fork) {
      out[i].prefix.branch = made.hold(engine_.fork(extensions[i].parent->branch));
    } else if (plan.start >= 1) {
      out[i].prefix.branch =
          made.hold(engine_.new_branch(std::vector<Token>(last.begin(), last.begin() + static_cast<ptrdiff_t>(plan.start - 1))));
      stats_.context_tokens += static_cast<int64_t>(plan.start - 1);
    }
    if (last.size() <= plan.start) continue;  // nothing new to read
    EvaluateRequest req;
    req.branch = out[i].prefix.branch;
    // Re-feed the last held token (its probe reads the first new token), then every new token
    // but the last; the branch ends holding all but the last, ready for the next extension.
    req.tokens.assign(last.begin() + static_cast<ptrdiff_t>(plan.start - 1), last.end() - 1);
    for (size_t t = plan.start; t < last.size(); ++t) req.positions.push_back(static_cast<int32_t>(t - plan.start));
    req.candidates.assign(last.begin() + static_cast<ptrdiff_t>(plan.start), last.end());
    std::sort(req.candidates.begin(), req.candidates.end());
    req.candidates.erase(std::unique(req.candidates.begin(), req.candidates.end()), req.candidates.end());
    stats_.evaluated_tokens += static_cast<int64_t>(req.tokens.size());
    requests.push_back(std::move(req));
    requested.push_back(i);
  }
  if (!requests.empty()) {
    const std::vector<EvaluateResult> results = engine_.evaluate(requests);
    ++stats_.evaluate_calls;
    for (size_t r = 0; r < requests.size(); ++r) {
      Plan& plan = plans[requested[r]];
      const std::vector<Token>& last = plan.readings.back();
      std::unordered_map<Token, size_t> column;
      for (size_t j = 0; j < requests[r].candidates.size(); ++j) column[requests[r].candidates[j]] = j;
      for (size_t p = 0; p < requests[r].positions.size(); ++p) {
        const Token actual = last[plan.start + p];
        plan.logprobs.push_back(std::log(std::max<double>(results[r].probs[p][column.at(actual)], kMinProbability)));
      }
    }
  }

  // Scores: each text's mean over its own tokens. An earlier text whose tokens are not a prefix
  // of the last one's (a merge across its end) is scored on its own, as score() would.
  for (size_t i = 0; i < extensions.size(); ++i) {
    Plan& plan = plans[i];
    const std::vector<Token>& last = plan.readings.back();
    for (size_t k = 0; k < plan.readings.size(); ++k) {
      const std::vector<Token>& reading = plan.readings[k];
      const size_t end = reading.size();
      if (end <= plan.first_scored) {
        out[i].scores.push_back(0.0);
        continue;
      }
      if (end < plan.start || common_prefix(reading, last) != end) {
        out[i].scores.push_back(score(context, {extensions[i].texts[k]}).at(0));
        continue;
      }
      double sum = plan.sum;
      int64_t n = plan.scored;
      for (size_t t = plan.start; t < end; ++t) {
        sum += plan.logprobs[t - plan.start];
        ++n;
      }
      out[i].scores.push_back(n > 0 ? std::exp(sum / static_cast<double>(n)) : 0.0);
    }
    FluencyPrefix& prefix = out[i].prefix;
    prefix.tokens = last;
    prefix.logprob_sum = plan.sum;
    prefix.scored = plan.scored;
    for (double lp : plan.logprobs) prefix.logprob_sum += lp;
    prefix.scored += static_cast<int64_t>(plan.logprobs.size());
    stats_.scored_tokens += static_cast<int64_t>(plan.logprobs.size());
  }
  made.release_all();  // handed to the prefixes
  return out;
}

}  // namespace ponder
