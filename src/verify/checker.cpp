#include "verify/checker.h"

#include <stdexcept>

#include "engine/timing.h"

namespace ponder {

CheckerOutcomeVerifier::CheckerOutcomeVerifier(Check check) : check_(std::move(check)) {
  if (!check_) throw std::invalid_argument("checker verifier: no check function");
}

std::vector<double> CheckerOutcomeVerifier::score(const std::vector<Candidate>& candidates) {
  const auto t0 = Clock::now();
  std::vector<double> out;
  out.reserve(candidates.size());
  for (const auto& c : candidates) out.push_back(check_(c));
  ++stats_.calls;
  stats_.seconds += seconds_since(t0);
  return out;
}

CheckerStepVerifier::CheckerStepVerifier(Check check) : check_(std::move(check)) {
  if (!check_) throw std::invalid_argument("checker step verifier: no check function");
}

VerifierState CheckerStepVerifier::root(const std::string& problem) {
  return states_.add(State{problem, {}});
}

std::vector<StepVerifier::Scored> CheckerStepVerifier::extend(const std::vector<Extension>& extensions) {
  const auto t0 = Clock::now();
  states_.check(extensions);
  std::vector<Scored> out(extensions.size());
  const std::vector<VerifierState> ids = states_.extend(extensions, [&](size_t i, State& state) {
    for (const auto& step : extensions[i].steps) {
      state.steps.push_back(step);
      out[i].step_scores.push_back(check_(state.problem, state.steps));
    }
  });
  for (size_t i = 0; i < out.size(); ++i) out[i].state = ids[i];
  ++stats_.calls;
  stats_.seconds += seconds_since(t0);
  return out;
}

void CheckerStepVerifier::release(VerifierState state) { states_.release(state); }

}  // namespace ponder
