// Diversity of a set of stories: distinct-n and mean pairwise embedding distance (see
// diversity.h).
#include "verify/story/diversity.h"

#include <set>
#include <stdexcept>
#include <unordered_map>

namespace ponder {
namespace {

std::vector<std::string> lowercase_words(const std::string& text) {
  std::vector<std::string> words;
  std::string word;
  for (char c : text) {
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
    } else {
      // ASCII only: UTF-8 bytes >= 0x80 pass through unchanged.
      word.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c);
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

}  // namespace

double distinct_n(const std::vector<std::string>& stories, int n) {
  if (n < 1) throw std::invalid_argument("distinct-n needs n >= 1");
  std::set<std::vector<std::string>> seen;
  size_t total = 0;
  for (const std::string& story : stories) {
    const std::vector<std::string> words = lowercase_words(story);
    for (size_t start = 0; start + n <= words.size(); ++start) {
      seen.emplace(words.begin() + start, words.begin() + start + n);
      ++total;
    }
  }
  return total == 0 ? 0.0 : static_cast<double>(seen.size()) / static_cast<double>(total);
}

DiversityStats diversity(const std::vector<std::string>& stories, const EmbedFunction& embed) {
  DiversityStats stats;
  stats.distinct_1 = distinct_n(stories, 1);
  stats.distinct_2 = distinct_n(stories, 2);
  if (stories.size() < 2) return stats;

  std::vector<std::string> distinct;
  std::unordered_map<std::string, size_t> index_of;
  std::vector<size_t> story_index(stories.size());
  for (size_t i = 0; i < stories.size(); ++i) {
    auto [it, inserted] = index_of.try_emplace(stories[i], distinct.size());
    if (inserted) distinct.push_back(stories[i]);
    story_index[i] = it->second;
  }
  const std::vector<std::vector<float>> vectors = embed_checked(embed, distinct);

  double sum = 0.0;
  size_t pairs = 0;
  for (size_t i = 0; i < stories.size(); ++i) {
    for (size_t j = i + 1; j < stories.size(); ++j, ++pairs) {
      // Identical stories: distance exactly 0, whatever the rounding of cos(v, v).
      if (story_index[i] == story_index[j]) continue;
      sum += 1.0 - cosine_similarity(vectors[story_index[i]], vectors[story_index[j]]);
    }
  }
  stats.mean_pairwise_distance = sum / static_cast<double>(pairs);
  return stats;
}

}  // namespace ponder
