// Verifiers from plain callbacks: programmatic checkers for tests and toy tasks (a task with a
// known answer, a step rule that can be checked by code).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "verify/state_table.h"
#include "verify/verifier.h"

namespace ponder {

// score = check(candidate), for each candidate in order.
class CheckerOutcomeVerifier final : public OutcomeVerifier {
 public:
  using Check = std::function<double(const Candidate&)>;
  explicit CheckerOutcomeVerifier(Check check);  // std::invalid_argument for an empty function
  std::vector<double> score(const std::vector<Candidate>& candidates) override;
  // calls: score() calls; tokens 0 (no model).
  VerifierStats stats() const override { return stats_; }

 private:
  Check check_;
  VerifierStats stats_;
};

// Scores each appended step with check(problem, steps), where `steps` are the solution's steps
// up to and including the one scored: extending a prefix by two steps calls check twice, with
// the prefix plus the first new step, then plus both.
//
// A state is an id for a (problem, steps) pair held here. consume_parent hands the parent's
// steps to the extension (no copy) and the parent id becomes invalid. An unknown, released or
// consumed state, or a parent consumed twice in one extend() call, is std::invalid_argument
// (checked before anything changes).
class CheckerStepVerifier final : public StepVerifier {
 public:
  using Check = std::function<double(const std::string& problem, const std::vector<std::string>& steps)>;
  explicit CheckerStepVerifier(Check check);  // std::invalid_argument for an empty function

  VerifierState root(const std::string& problem) override;
  std::vector<Scored> extend(const std::vector<Extension>& extensions) override;
  void release(VerifierState state) override;
  // calls: extend() calls; tokens 0 (no model).
  VerifierStats stats() const override { return stats_; }

  // States currently held (for tests of callers that must release what they take).
  size_t live_states() const { return states_.size(); }

 private:
  struct State {
    std::string problem;
    std::vector<std::string> steps;
  };

  Check check_;
  StateTable<State> states_;
  VerifierStats stats_;
};

}  // namespace ponder
