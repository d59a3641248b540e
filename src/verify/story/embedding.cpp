// Helpers shared by the embedding-based story scorers (see embedding.h).
#include "verify/story/embedding.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <stdexcept>
#include <unordered_map>
#include <unordered_set>

namespace ponder {

double cosine_similarity(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) {
    throw std::invalid_argument("cosine of vectors of different dimensions (" + std::to_string(a.size()) +
                                " and " + std::to_string(b.size()) + ")");
  }
  double dot = 0.0, norm_a = 0.0, norm_b = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    dot += static_cast<double>(a[i]) * b[i];
    norm_a += static_cast<double>(a[i]) * a[i];
    norm_b += static_cast<double>(b[i]) * b[i];
  }
  if (norm_a <= 0.0 || norm_b <= 0.0) return 0.0;
  // Rounding can push |cos| of (nearly) parallel vectors just past 1.
  return std::clamp(dot / std::sqrt(norm_a * norm_b), -1.0, 1.0);
}

std::vector<std::vector<float>> embed_checked(const EmbedFunction& embed, const std::vector<std::string>& texts) {
  if (!embed) throw std::invalid_argument("no embedding function given");
  if (texts.empty()) return {};
  std::vector<std::vector<float>> vectors = embed(texts);
  if (vectors.size() != texts.size()) {
    throw std::invalid_argument("embedding function returned " + std::to_string(vectors.size()) +
                                " vectors for " + std::to_string(texts.size()) + " texts");
  }
  return vectors;
}

EmbedFunction memoized(EmbedFunction embed) {
  auto memo = std::make_shared<std::unordered_map<std::string, std::vector<float>>>();
  return [embed = std::move(embed), memo](const std::vector<std::string>& texts) {
    std::vector<std::string> missing;
    std::unordered_set<std::string> asked;
    for (const std::string& t : texts) {
      if (!memo->contains(t) && asked.insert(t).second) missing.push_back(t);
    }
    const std::vector<std::vector<float>> vectors = embed_checked(embed, missing);
    for (size_t i = 0; i < missing.size(); ++i) (*memo)[missing[i]] = vectors[i];
    std::vector<std::vector<float>> out;
    out.reserve(texts.size());
    for (const std::string& t : texts) out.push_back(memo->at(t));
    return out;
  };
}

}  // namespace ponder
