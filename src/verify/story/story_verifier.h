// The story step verifier (issue 5): what guides a search that grows a story one sentence per
// step. A state holds a story opening (the search problem) and the continuation written after it
// so far; extending a state scores the story after each new step by its StoryScorer total
// (coherence, fluency and genre alignment, weighted), so beam search and DVTS keep the
// continuations that read best so far.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "verify/story/fluency.h"
#include "verify/story/story_score.h"
#include "verify/state_table.h"
#include "verify/verifier.h"

namespace ponder {

// Scores each appended step with StoryScorer::score(opening, genre, {continuation up to and
// including the step}).total. One extend() call makes one score() call for all its extensions'
// new prefixes (one per distinct opening, when states of different openings are extended
// together), so each scorer model runs once per search round. Fluency is read incrementally:
// each state holds its text's FluencyPrefix (a branch of the fluency scorer's engine), and
// extending it reads only the new step's tokens, so a search reads each token once for fluency
// instead of re-reading every continuation each round. Each live state holds one branch of the
// fluency engine, and an extend() call one more per extension until the parents are released.
//
// A state is an id for an (opening, continuation) pair held here. consume_parent hands the
// parent's text to the extension (no copy) and the parent id becomes invalid. An unknown,
// released or consumed state, or a parent consumed twice in one extend() call, is
// std::invalid_argument (checked before anything changes).
//
// Every prefix scored keeps its per-metric scores, so that the stories a search returns can be
// reported metric by metric (score_stories) without scoring them again. The memo grows with the
// prefixes scored: one search's worth, which a CLI run holds easily.
class StoryStepVerifier final : public StepVerifier {
 public:
  // `scorer` is used, not owned, and must outlive the verifier.
  StoryStepVerifier(StoryScorer& scorer, std::string genre);
  ~StoryStepVerifier() override;  // releases the fluency branches of states still held
  StoryStepVerifier(const StoryStepVerifier&) = delete;
  StoryStepVerifier& operator=(const StoryStepVerifier&) = delete;

  VerifierState root(const std::string& opening) override;
  std::vector<Scored> extend(const std::vector<Extension>& extensions) override;
  void release(VerifierState state) override;
  // calls: score() calls into the scorer; seconds: time in them. tokens: 0 (the scorers keep
  // their own counts: FluencyScorer::stats, GenreScorer::stats).
  VerifierStats stats() const override { return stats_; }

  // The per-metric scores of finished continuations of `opening`, in order: those this verifier
  // already scored come from its memo, the rest are scored in one score() call.
  std::vector<StoryScores> score_stories(const std::string& opening, const std::vector<std::string>& continuations);

  // States currently held (for tests of callers that must release what they take).
  size_t live_states() const { return states_.size(); }

 private:
  struct State {
    std::string opening;
    std::string continuation;  // the steps appended so far, concatenated
    FluencyPrefix fluency;     // opening + continuation, read by the fluency scorer
  };
  // Scores the continuations of one opening in one score() call and memoises the results
  // (with their fluency when known, else it is read too).
  std::vector<StoryScores> score_and_remember(const std::string& opening, const std::vector<std::string>& continuations,
                                              const std::vector<double>* fluency = nullptr);

  StoryScorer& scorer_;
  std::string genre_;
  StateTable<State> states_;
  std::map<std::pair<std::string, std::string>, StoryScores> scored_;  // (opening, continuation)
  VerifierStats stats_;
};

}  // namespace ponder
