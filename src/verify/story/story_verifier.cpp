#include "verify/story/story_verifier.h"

#include <stdexcept>
#include <unordered_set>

#include "engine/timing.h"

namespace ponder {

StoryStepVerifier::StoryStepVerifier(StoryScorer& scorer, std::string genre)
    : scorer_(scorer), genre_(std::move(genre)) {}

StoryStepVerifier::~StoryStepVerifier() {
  states_.for_each([this](State& s) { scorer_.fluency().release(s.fluency); });
}

VerifierState StoryStepVerifier::root(const std::string& opening) {
  return states_.add(State{opening, {}, scorer_.fluency().begin(opening)});
}

std::vector<StoryScores> StoryStepVerifier::score_and_remember(const std::string& opening,
                                                               const std::vector<std::string>& continuations,
                                                               const std::vector<double>* fluency) {
  const auto t0 = Clock::now();
  std::vector<StoryScores> scores = fluency ? scorer_.score(opening, genre_, continuations, *fluency)
                                            : scorer_.score(opening, genre_, continuations);
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
  const auto t0 = Clock::now();
  FluencyScorer& fluency = scorer_.fluency();

  // Fluency first, incrementally: each extension's new prefixes read on its parent's prefix, in
  // one call per opening. The new prefixes are released again if anything below throws.
  std::map<std::string, std::vector<size_t>> by_opening;
  for (size_t i = 0; i < extensions.size(); ++i) by_opening[states_.get(extensions[i].parent).opening].push_back(i);
  std::vector<FluencyScorer::Extended> read(extensions.size());
  struct Release {
    FluencyScorer& fluency;
    std::vector<FluencyScorer::Extended>& read;
    bool armed = true;
    ~Release() {
      if (!armed) return;
      for (auto& r : read) fluency.release(r.prefix);
    }
  } release_on_error{fluency, read};
  for (const auto& [opening, indices] : by_opening) {
    std::vector<FluencyScorer::Extension> asks;
    for (size_t i : indices) {
      const State& parent = states_.get(extensions[i].parent);
      FluencyScorer::Extension a{&parent.fluency, {}};
      std::string continuation = parent.continuation;
      for (const auto& step : extensions[i].steps) a.texts.push_back(continuation += step);
      asks.push_back(std::move(a));
    }
    std::vector<FluencyScorer::Extended> got = fluency.extend(opening, asks);
    for (size_t k = 0; k < indices.size(); ++k) read[indices[k]] = std::move(got[k]);
  }

  // Then the other metrics, for every new prefix not scored before (by this call or an earlier
  // one: two branches may write the same sentence), once each.
  struct Pending {
    std::vector<std::string> continuations;
    std::vector<double> fluency;
    std::unordered_set<std::string> queued;
  };
  std::map<std::string, Pending> to_score;  // by opening
  for (size_t i = 0; i < extensions.size(); ++i) {
    const State& parent = states_.get(extensions[i].parent);
    std::string continuation = parent.continuation;
    for (size_t k = 0; k < extensions[i].steps.size(); ++k) {
      continuation += extensions[i].steps[k];
      if (scored_.contains({parent.opening, continuation})) continue;
      Pending& p = to_score[parent.opening];
      if (p.queued.insert(continuation).second) {
        p.continuations.push_back(continuation);
        p.fluency.push_back(read[i].scores.at(k));
      }
    }
  }
  stats_.seconds += seconds_since(t0);
  for (const auto& [opening, p] : to_score) score_and_remember(opening, p.continuations, &p.fluency);

  std::vector<Scored> out(extensions.size());
  const std::vector<VerifierState> ids = states_.extend(extensions, [&](size_t i, State& state) {
    // A consumed parent's state arrives here: its prefix is done with.
    if (extensions[i].consume_parent) fluency.release(state.fluency);
    state.fluency = std::move(read[i].prefix);
    read[i].prefix.branch = -1;
    for (const auto& step : extensions[i].steps) {
      state.continuation += step;
      out[i].step_scores.push_back(scored_.at({state.opening, state.continuation}).total);
    }
  });
  release_on_error.armed = false;
  for (size_t i = 0; i < out.size(); ++i) out[i].state = ids[i];
  return out;
}

void StoryStepVerifier::release(VerifierState state) {
  scorer_.fluency().release(states_.get(state).fluency);
  states_.release(state);
}

}  // namespace ponder
