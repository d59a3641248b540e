// Story genre alignment by an LLM judge, sentence by sentence; see genre.h.
#include "verify/story/genre.h"

#include <numeric>

#include "tasks/story/segment.h"
#include "verify/placeholders.h"

namespace ponder {
namespace {

constexpr std::string_view kGenre = "{genre}";
constexpr std::string_view kSentence = "{sentence}";

std::string_view trimmed(std::string_view s) {
  constexpr std::string_view kSpace = " \t\n\r\f\v";
  const size_t begin = s.find_first_not_of(kSpace);
  if (begin == std::string_view::npos) return {};
  return s.substr(begin, s.find_last_not_of(kSpace) + 1 - begin);
}

}  // namespace

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
    for (const std::string& piece : story::split_sentences(stories[s])) {
      const std::string_view sentence = trimmed(piece);
      if (sentence.empty()) continue;
      out[s].sentences.emplace_back(sentence);
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
