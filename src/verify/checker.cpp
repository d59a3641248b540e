#include "verify/checker.h"

#include <chrono>
#include <stdexcept>
#include <unordered_set>

namespace ponder {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

}  // namespace

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

const CheckerStepVerifier::State& CheckerStepVerifier::get(VerifierState id) const {
  const auto it = states_.find(id);
  if (it == states_.end()) throw std::invalid_argument("unknown verifier state " + std::to_string(id));
  return it->second;
}

VerifierState CheckerStepVerifier::root(const std::string& problem) {
  const VerifierState id = next_id_++;
  states_.emplace(id, State{problem, {}});
  return id;
}

std::vector<StepVerifier::Scored> CheckerStepVerifier::extend(const std::vector<Extension>& extensions) {
  const auto t0 = Clock::now();
  std::unordered_set<VerifierState> consumed;
  for (const auto& e : extensions) {
    get(e.parent);
    if (e.consume_parent && !consumed.insert(e.parent).second) {
      throw std::invalid_argument("verifier state " + std::to_string(e.parent) + " consumed twice in one call");
    }
  }
  // Copies first, then the consuming extensions, which may take their parent's steps.
  std::vector<Scored> out(extensions.size());
  for (bool consuming : {false, true}) {
    for (size_t i = 0; i < extensions.size(); ++i) {
      const auto& e = extensions[i];
      if (e.consume_parent != consuming) continue;
      State state;
      if (consuming) {
        state = std::move(states_.at(e.parent));
        states_.erase(e.parent);
      } else {
        state = get(e.parent);
      }
      for (const auto& step : e.steps) {
        state.steps.push_back(step);
        out[i].step_scores.push_back(check_(state.problem, state.steps));
      }
      out[i].state = next_id_++;
      states_.emplace(out[i].state, std::move(state));
    }
  }
  ++stats_.calls;
  stats_.seconds += seconds_since(t0);
  return out;
}

void CheckerStepVerifier::release(VerifierState state) {
  get(state);
  states_.erase(state);
}

}  // namespace ponder
