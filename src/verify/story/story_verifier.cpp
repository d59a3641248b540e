#include "verify/story/story_verifier.h"

#include <stdexcept>
#include <unordered_set>

#include "engine/timing.h"

namespace ponder {

StoryStepVerifier::StoryStepVerifier(StoryScorer& scorer, std::string genre)
    : scorer_(scorer), genre_(std::move(genre)) {}

VerifierState StoryStepVerifier::root(const std::string& opening) {
  return states_.add(State{opening, {}});
}

std::vector<StoryScores> StoryStepVerifier::score_and_remember(const std::string& opening,
                                                               const std::vector<std::string>& continuations) {
  const auto t0 = Clock::now();
  std::vector<StoryScores> scores = scorer_.score(opening, genre_, continuations);
  ++stats_.calls;
  stats_.seconds += seconds_since(t0);
  for (size_t i = 0; i < continuations.size(); ++i) scored_[{opening, continuations[i]}] = scores[i];
  return scores;
}

std::vector<StoryScores> StoryStepVerifier::score_stories(const std::string& opening,
                                                          const std::vector<std::string>& continuations) {
  std::vector<std::string> missing;
  std::unordered_set<std::string> seen;
  for (const std::string& c : continuations) {
    if (!scored_.contains({opening, c}) && seen.insert(c).second) missing.push_back(c);
  }
  if (!missing.empty()) score_and_remember(opening, missing);
  std::vector<StoryScores> out;
  out.reserve(continuations.size());
  for (const std::string& c : continuations) out.push_back(scored_.at({opening, c}));
  return out;
}

std::vector<StepVerifier::Scored> StoryStepVerifier::extend(const std::vector<Extension>& extensions) {
  states_.check(extensions);

  // Every new prefix, per opening, scored before any state changes (a scorer that throws leaves
  // the states as they were). Prefixes scored before (by this call or an earlier one: two
  // branches may write the same sentence) are scored once.
  std::map<std::string, std::vector<std::string>> to_score;  // opening -> continuations
  std::map<std::string, std::unordered_set<std::string>> queued;
  for (const auto& e : extensions) {
    const State& parent = states_.get(e.parent);
    std::string continuation = parent.continuation;
    for (const auto& step : e.steps) {
      continuation += step;
      if (scored_.contains({parent.opening, continuation})) continue;
      if (queued[parent.opening].insert(continuation).second) to_score[parent.opening].push_back(continuation);
    }
  }
  for (const auto& [opening, continuations] : to_score) score_and_remember(opening, continuations);

  std::vector<Scored> out(extensions.size());
  const std::vector<VerifierState> ids = states_.extend(extensions, [&](size_t i, State& state) {
    for (const auto& step : extensions[i].steps) {
      state.continuation += step;
      out[i].step_scores.push_back(scored_.at({state.opening, state.continuation}).total);
    }
  });
  for (size_t i = 0; i < out.size(); ++i) out[i].state = ids[i];
  return out;
}

void StoryStepVerifier::release(VerifierState state) { states_.release(state); }

}  // namespace ponder
