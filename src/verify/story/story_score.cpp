#include "verify/story/story_score.h"

#include <stdexcept>

#include "verify/story/coherence.h"

namespace ponder {

StoryScorer::StoryScorer(FluencyScorer& fluency, EmbedFunction embed, GenreMetric* genre, StoryWeights weights)
    : fluency_(fluency), embed_(std::move(embed)), genre_(genre), weights_(weights) {
  if (weights.coherence < 0 || weights.fluency < 0 || weights.genre < 0) {
    throw std::invalid_argument("story score weights must not be negative");
  }
  if (weights.coherence + weights.fluency + (genre ? weights.genre : 0.0) <= 0) {
    throw std::invalid_argument("the story score weights of the metrics in use sum to zero");
  }
  if (!embed_) throw std::invalid_argument("the story scorer needs an embedding function");
}

std::vector<StoryScores> StoryScorer::score(const std::string& prompt, const std::string& genre,
                                            const std::vector<std::string>& continuations) {
  return score(prompt, genre, continuations, fluency_.score(prompt, continuations));
}

std::vector<StoryScores> StoryScorer::score(const std::string& prompt, const std::string& genre,
                                            const std::vector<std::string>& continuations,
                                            const std::vector<double>& fluency) {
  if (fluency.size() != continuations.size()) {
    throw std::invalid_argument("story scorer: one fluency score per continuation");
  }
  std::vector<std::string> stories;
  for (const std::string& c : continuations) stories.push_back(prompt + c);
  const std::vector<double> coherence = coherence_scores(stories, embed_);
  std::vector<double> genre_scores;
  if (genre_) genre_scores = genre_->score(genre, stories);

  const double sum = weights_.coherence + weights_.fluency + (genre_ ? weights_.genre : 0.0);
  std::vector<StoryScores> out(continuations.size());
  for (size_t i = 0; i < out.size(); ++i) {
    StoryScores& s = out[i];
    s.coherence = coherence[i];
    s.fluency = fluency[i];
    double total = weights_.coherence * s.coherence + weights_.fluency * s.fluency;
    if (genre_) {
      s.genre = genre_scores[i];
      total += weights_.genre * *s.genre;
    }
    s.total = total / sum;
  }
  return out;
}

}  // namespace ponder
