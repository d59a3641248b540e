// Story coherence from adjacent sentences' embeddings (see coherence.h).
#include "verify/story/coherence.h"

#include <string_view>
#include <unordered_map>

#include "tasks/story/segment.h"

namespace ponder {
namespace {

std::string_view trim(std::string_view s) {
  const auto is_space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

std::vector<double> coherence_scores(const std::vector<std::string>& stories, const EmbedFunction& embed) {
  // Each story as indices into one list of distinct sentences, so that sentences repeated within
  // or across stories (candidates of one search often share a prefix) are embedded once.
  std::vector<std::string> distinct;
  std::unordered_map<std::string, size_t> index_of;
  std::vector<std::vector<size_t>> story_sentences(stories.size());
  for (size_t i = 0; i < stories.size(); ++i) {
    for (const std::string& piece : story::split_sentences(stories[i])) {
      const std::string sentence(trim(piece));
      if (sentence.empty()) continue;  // an all-whitespace story's single piece
      auto [it, inserted] = index_of.try_emplace(sentence, distinct.size());
      if (inserted) distinct.push_back(sentence);
      story_sentences[i].push_back(it->second);
    }
  }

  const std::vector<std::vector<float>> vectors = embed_checked(embed, distinct);
  std::vector<double> scores(stories.size(), 0.0);
  for (size_t i = 0; i < stories.size(); ++i) {
    const std::vector<size_t>& s = story_sentences[i];
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
