// The total quality of story continuations: coherence, fluency and genre alignment, each in
// [0,1], combined by configurable weights (issue 5; default 0.4, 0.3, 0.3). What a story search
// ranks candidates by, and what `ponder story` reports per story.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "verify/story/embedding.h"
#include "verify/story/fluency.h"
#include "verify/story/genre.h"

namespace ponder {

struct StoryWeights {
  double coherence = 0.4;
  double fluency = 0.3;
  double genre = 0.3;
};

struct StoryScores {
  double coherence = 0.0;
  double fluency = 0.0;
  std::optional<double> genre;  // none without a genre judge
  // Weighted mean of the metrics present: without a genre judge the other two weights are
  // scaled to sum to one, so totals stay in [0,1] and comparable within a run.
  double total = 0.0;
};

class StoryScorer {
 public:
  // `genre` may be null (no genre metric). Throws std::invalid_argument for a negative weight or
  // weights of the metrics present summing to zero.
  StoryScorer(FluencyScorer& fluency, EmbedFunction embed, GenreMetric* genre, StoryWeights weights = {});

  // Scores each continuation of `prompt` (the story so far): fluency of the continuation given
  // the prompt; coherence and genre alignment of the whole story, prompt included, so that the
  // continuation is judged by how it follows on. Each scorer runs once for all continuations.
  std::vector<StoryScores> score(const std::string& prompt, const std::string& genre,
                                 const std::vector<std::string>& continuations);
  // The same with the continuations' fluency already known (read incrementally by the caller
  // on fluency(): FluencyScorer::extend), one per continuation.
  std::vector<StoryScores> score(const std::string& prompt, const std::string& genre,
                                 const std::vector<std::string>& continuations, const std::vector<double>& fluency);

  FluencyScorer& fluency() { return fluency_; }

 private:
  FluencyScorer& fluency_;
  EmbedFunction embed_;
  GenreMetric* genre_;
  StoryWeights weights_;
};

}  // namespace ponder
