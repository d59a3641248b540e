#include "cli/story_models.h"

#include <algorithm>

namespace ponder::cli {

story::StoryModels OpenStoryModels::view() const {
  story::StoryModels m;
  m.generator = generator_.get();
  m.fluency = fluency_.get();
  LlamaEmbedder* embedder = embedder_.get();
  m.embed = [embedder](const std::vector<std::string>& texts) { return embedder->embed(texts); };
  m.judge = judge_.get();
  m.genre_by_embedding = genre_by_embedding_;
  m.genre_description = genre_description_;
  return m;
}

void check_genre_flags(const StoryModelFlags& flags) {
  const std::string& by = flags.genre_by;
  if (!by.empty() && by != "judge" && by != "embedding" && by != "none") {
    throw EngineError("genre by: judge, embedding or none, not " + by);
  }
  if (by == "judge" && flags.judge_model.empty()) throw EngineError("genre by judge needs a judge model");
  if (by != "judge" && !by.empty() && !flags.judge_model.empty()) {
    throw EngineError("a judge model is named but genre is scored by " + by);
  }
  if (by == "embedding" && flags.genre_description.find("{genre}") == std::string::npos) {
    throw EngineError("the genre description has no {genre}");
  }
}

std::unique_ptr<OpenStoryModels> open_story_models(const StoryModelFlags& flags, const std::string& opening,
                                                   const std::string& genre, int32_t branches, int32_t max_tokens) {
  check_genre_flags(flags);
  EngineFlags engine = flags.engine;
  if (engine.kv == "auto") engine.kv = "unified";
  auto out = std::make_unique<OpenStoryModels>();

  auto vocab = open_vocab(flags.model, engine);
  const int64_t prompt_tokens = static_cast<int64_t>(story::story_prompt(*vocab, opening, genre).size());
  const int64_t opening_tokens = static_cast<int64_t>(vocab->tokenize(opening, true, false).size());
  vocab.reset();
  out->generator_ = open_sized(flags.model, engine, prompt_tokens, branches, max_tokens);

  // Fluency is read incrementally: a branch per live verifier state (at most one per generator
  // branch, their parents and the root), and a new one per candidate while a round is scored
  // (re-tokenized text may run a little longer than the generator's tokens).
  out->fluency_engine_ = open_sized(flags.model, engine, opening_tokens, 2 * branches + 2, max_tokens + 32);
  out->fluency_ = std::make_unique<FluencyScorer>(*out->fluency_engine_);

  LlamaEmbedderOptions eo;
  eo.model_path = flags.embed_model.empty() ? flags.model : flags.embed_model;
  eo.n_threads = engine.threads;
  eo.verbose = engine.verbose;
  eo.max_tokens_per_text = static_cast<int32_t>(std::max<int64_t>(512, opening_tokens + max_tokens + 64));
  eo.n_batch = std::max(eo.n_batch, eo.max_tokens_per_text);
  out->embedder_ = std::make_unique<LlamaEmbedder>(eo);

  // The judge reads one sentence per branch (groups of them when there are more sentences).
  if (!flags.judge_model.empty()) {
    out->judge_engine_ = open_sized(flags.judge_model, engine, 128, branches + 1, opening_tokens + max_tokens + 64);
    out->judge_ = std::make_unique<GenreScorer>(*out->judge_engine_);
  }
  out->genre_by_embedding_ = flags.genre_by == "embedding";
  out->genre_description_ = flags.genre_description;
  return out;
}

}  // namespace ponder::cli
