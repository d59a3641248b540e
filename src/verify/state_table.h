// The verifier states of verifiers that hold each state's data in memory (checkers, story
// scorers): ids handed out in order, and the rules of StepVerifier::extend for parents (an
// unknown id, or a parent consumed twice in one call, is std::invalid_argument, checked before
// anything changes; a consumed parent hands its data over without a copy).
#pragma once

#include <stdexcept>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "verify/verifier.h"

namespace ponder {

template <class State>
class StateTable {
 public:
  VerifierState add(State state) {
    const VerifierState id = next_id_++;
    states_.emplace(id, std::move(state));
    return id;
  }

  const State& get(VerifierState id) const {
    const auto it = states_.find(id);
    if (it == states_.end()) throw std::invalid_argument("unknown verifier state " + std::to_string(id));
    return it->second;
  }

  State& get(VerifierState id) { return const_cast<State&>(static_cast<const StateTable&>(*this).get(id)); }

  void release(VerifierState id) {
    get(id);
    states_.erase(id);
  }

  // Throws for an unknown parent or one consumed twice, before anything changes.
  void check(const std::vector<StepVerifier::Extension>& extensions) const {
    std::unordered_set<VerifierState> consumed;
    for (const auto& e : extensions) {
      get(e.parent);
      if (e.consume_parent && !consumed.insert(e.parent).second) {
        throw std::invalid_argument("verifier state " + std::to_string(e.parent) + " consumed twice in one call");
      }
    }
  }

  // Calls grow(i, parent's state) for each extension, copies first and then the consuming ones
  // (which take their parent's state), and adds each grown state; returns the new ids by index.
  template <class Grow>
  std::vector<VerifierState> extend(const std::vector<StepVerifier::Extension>& extensions, Grow grow) {
    std::vector<VerifierState> ids(extensions.size());
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
        grow(i, state);
        ids[i] = add(std::move(state));
      }
    }
    return ids;
  }

  size_t size() const { return states_.size(); }

  template <class F>
  void for_each(F f) {
    for (auto& [id, state] : states_) f(state);
  }

 private:
  std::unordered_map<VerifierState, State> states_;
  VerifierState next_id_ = 0;
};

}  // namespace ponder
