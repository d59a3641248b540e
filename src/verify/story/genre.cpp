// Story genre alignment sentence by sentence, by an LLM judge or by embeddings; see genre.h.
#include "verify/story/genre.h"

#include <numeric>
#include <stdexcept>

#include "tasks/story/segment.h"
#include "verify/placeholders.h"

namespace ponder {
namespace {

constexpr std::string_view kGenre = "{genre}";
constexpr std::string_view kSentence = "{sentence}";

}  // namespace

EmbeddingGenreScorer::EmbeddingGenreScorer(EmbedFunction embed, std::string description)
    : embed_(std::move(embed)), description_(std::move(description)) {
  if (!embed_) throw std::invalid_argument("the embedding genre scorer needs an embedding function");
}

std::vector<double> EmbeddingGenreScorer::score(std::string_view genre, const std::vector<std::string>& stories) {
  const std::string description = fill_placeholders(description_, {{kGenre, genre}});
  // The description first, then each distinct sentence once.
  const story::StorySentences sentences = story::story_sentences(stories);
  std::vector<std::string> texts = {description};
  texts.insert(texts.end(), sentences.distinct.begin(), sentences.distinct.end());
  const std::vector<std::vector<float>> vectors = embed_checked(embed_, texts);
  std::vector<double> out(stories.size(), 0.0);
  for (size_t i = 0; i < stories.size(); ++i) {
    const std::vector<size_t>& s = sentences.of_story[i];
    if (s.empty()) continue;
    double sum = 0.0;
    for (size_t k : s) sum += (1.0 + cosine_similarity(vectors[0], vectors[k + 1])) / 2.0;
    out[i] = sum / static_cast<double>(s.size());
  }
  return out;
}

GenreScorer::GenreScorer(Engine& engine, GenreScorerOptions options)
    : engine_(engine), options_(std::move(options)) {
  if (options_.question_template.find(kSentence) == std::string::npos) {
    throw EngineError("the genre scorer's question template has no {sentence}");
  }
  chat_ = options_.use_chat_template && engine_.has_chat_template();
  answers_ = yes_no_tokens(engine_, options_.yes, options_.no, "the genre scorer");
}

std::string GenreScorer::render(std::string_view genre, std::string_view sentence) const {
  std::string text = fill_placeholders(options_.question_template, {{kGenre, genre}, {kSentence, sentence}});
  if (!chat_) return text;
  return engine_.apply_chat_template({{"user", text}}, /*add_generation_prompt=*/true);
}

std::vector<GenreScorer::SentenceScores> GenreScorer::score_all(std::string_view genre,
                                                                const std::vector<std::string>& stories) {
  // One group: every question of a call starts with the same text, whatever the sentence.
  const std::string group = "genre";
  YesNoBatch batch;
  std::vector<SentenceScores> out(stories.size());
  std::vector<std::vector<size_t>> prompt_of(stories.size());
  for (size_t s = 0; s < stories.size(); ++s) {
    for (std::string& sentence : story::trimmed_sentences(stories[s])) {
      out[s].sentences.push_back(sentence);
      auto tokens = engine_.tokenize(render(genre, sentence), /*add_special=*/true, /*parse_special=*/true);
      prompt_of[s].push_back(batch.add(std::move(tokens), group));
    }
  }
  YesNoReadStats read_stats;
  const auto scores = batch.read(engine_, answers_, read_stats);
  stats_.evaluate_calls += read_stats.calls;
  stats_.tokens_evaluated += read_stats.tokens_evaluated;
  stats_.sentences += static_cast<int64_t>(batch.size());
  stats_.stories += static_cast<int64_t>(stories.size());
  ++stats_.calls;
  for (size_t s = 0; s < stories.size(); ++s) {
    for (size_t p : prompt_of[s]) out[s].scores.push_back(scores[p]);
  }
  return out;
}

std::vector<double> GenreScorer::score(std::string_view genre, const std::vector<std::string>& stories) {
  const auto per_story = score_all(genre, stories);
  std::vector<double> out(stories.size(), 0.0);
  for (size_t s = 0; s < stories.size(); ++s) {
    const auto& scores = per_story[s].scores;
    if (!scores.empty()) out[s] = std::accumulate(scores.begin(), scores.end(), 0.0) / static_cast<double>(scores.size());
  }
  return out;
}

GenreScorer::SentenceScores GenreScorer::score_sentences(std::string_view genre, const std::string& story) {
  return std::move(score_all(genre, {story})[0]);
}

}  // namespace ponder
