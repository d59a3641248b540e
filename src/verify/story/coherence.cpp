// Story coherence from adjacent sentences' embeddings (see coherence.h).
#include "verify/story/coherence.h"

#include "tasks/story/segment.h"

namespace ponder {

std::vector<double> coherence_scores(const std::vector<std::string>& stories, const EmbedFunction& embed) {
  // Sentences repeated within or across stories (candidates of one search often share a prefix)
  // are embedded once.
  const story::StorySentences sentences = story::story_sentences(stories);
  const std::vector<std::vector<float>> vectors = embed_checked(embed, sentences.distinct);
  std::vector<double> scores(stories.size(), 0.0);
  for (size_t i = 0; i < stories.size(); ++i) {
    const std::vector<size_t>& s = sentences.of_story[i];
    if (s.empty()) continue;
    if (s.size() == 1) {
      scores[i] = 1.0;
      continue;
    }
    double sum = 0.0;
    for (size_t k = 1; k < s.size(); ++k) sum += cosine_similarity(vectors[s[k - 1]], vectors[s[k]]);
    scores[i] = (1.0 + sum / static_cast<double>(s.size() - 1)) / 2.0;
  }
  return scores;
}

}  // namespace ponder
