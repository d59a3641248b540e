// Story genre alignment: how much a story reads like the asked-for genre, judged sentence by
// sentence by a language model (LLM-as-judge). Each sentence is put to the judge model as a
// yes/no question ("Is this sentence from a {genre} story?") and the answer read off its
// next-token probabilities; a story's score is the mean over its sentences, so one off-genre
// sentence costs in proportion to the story's length and scores of stories of different lengths
// compare directly.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "engine/engine.h"
#include "verify/story/embedding.h"
#include "verify/yes_no.h"

namespace ponder {

struct GenreScorerOptions {
  // The question put to the judge model. "{genre}" and "{sentence}" are replaced in one pass (so
  // braces inside the sentence stay as they are). "{sentence}" must occur; "{genre}" may. Keep
  // the sentence late in the template: the text before it is shared by every sentence of a call
  // and computed once.
  std::string question_template =
      "Is this sentence from a {genre} story? Answer yes or no.\n\nSentence: {sentence}\n\nAnswer:";
  // The answers read at the next-token position after the question, with their capitalised and
  // leading-space variants (see YesNoTokens).
  std::string yes = "yes";
  std::string no = "no";
  // Wrap the question as a user turn in the judge model's chat template, followed by the
  // generation prompt, when the model has a template; raw text otherwise (and always when false).
  bool use_chat_template = true;
};

struct GenreStats {
  int64_t calls = 0;             // score() calls
  int64_t stories = 0;           // stories scored
  int64_t sentences = 0;         // sentences scored (duplicates within a call count once)
  int64_t evaluate_calls = 0;    // Engine::evaluate() calls: one per score() call when all fit
  int64_t tokens_evaluated = 0;  // tokens handed to the engine (the shared prefix once)
};

// What a story score needs of a genre metric: for each story, how well it fits the genre, in
// [0, 1] (a story with no sentence: 0).
class GenreMetric {
 public:
  virtual ~GenreMetric() = default;
  virtual std::vector<double> score(std::string_view genre, const std::vector<std::string>& stories) = 0;
  // Tokens its model computed so far (0 where none is counted).
  virtual int64_t model_tokens() const = 0;
};

// Genre alignment by embeddings: the mean over a story's sentences of (1 + cos) / 2 between the
// sentence's embedding and a description of the genre ("A {genre} story." by default: "{genre}"
// is replaced). No judge model needed; as good as the embedding model's sense of genre.
class EmbeddingGenreScorer final : public GenreMetric {
 public:
  // Throws std::invalid_argument without an embedding function.
  explicit EmbeddingGenreScorer(EmbedFunction embed, std::string description = "A {genre} story.");
  // One embed() call for the description and every distinct sentence.
  std::vector<double> score(std::string_view genre, const std::vector<std::string>& stories) override;
  int64_t model_tokens() const override { return 0; }

 private:
  EmbedFunction embed_;
  std::string description_;
};

// The engine is the judge model; it is used, not owned, and must outlive the scorer. Not
// thread-safe (nor is the engine).
class GenreScorer final : public GenreMetric {
 public:
  // Throws EngineError when the options are unusable: no "{sentence}" in the template, an empty
  // answer, no single-token variant of an answer, or a token on both sides.
  explicit GenreScorer(Engine& engine, GenreScorerOptions options = {});

  // For each story: the mean over its sentences (ponder::story::split_sentences, surrounding
  // whitespace trimmed) of P(yes) / (P(yes) + P(no)), in [0, 1]. A story with no sentence (empty
  // or all whitespace) scores 0.
  //
  // Every sentence of every story goes to the engine in one evaluate() call (several when they
  // need more branches than the engine has free): the question's tokens before the sentence are
  // computed once on a branch, each distinct sentence's rest on a fork of it. Every branch is
  // freed before score() returns, also on errors. Throws EngineError from the engine.
  std::vector<double> score(std::string_view genre, const std::vector<std::string>& stories) override;
  int64_t model_tokens() const override { return stats_.tokens_evaluated; }

  // The per-sentence scores of one story (what score() averages), with its sentences.
  struct SentenceScores {
    std::vector<std::string> sentences;
    std::vector<double> scores;
  };
  SentenceScores score_sentences(std::string_view genre, const std::string& story);

  // The question for one sentence as the model sees it (after the chat template, before
  // tokenizing).
  std::string render(std::string_view genre, std::string_view sentence) const;

  const YesNoTokens& answer_tokens() const { return answers_; }
  GenreStats stats() const { return stats_; }

 private:
  // Per story, its sentences' scores.
  std::vector<SentenceScores> score_all(std::string_view genre, const std::vector<std::string>& stories);

  Engine& engine_;
  GenreScorerOptions options_;
  bool chat_;
  YesNoTokens answers_;
  GenreStats stats_;
};

}  // namespace ponder
