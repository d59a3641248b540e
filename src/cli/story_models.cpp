#include "cli/story_models.h"

#include <algorithm>

namespace ponder::cli {

story::StoryModels OpenStoryModels::view() const {
  story::StoryModels m;
  m.generator = generator_.get();
  m.fluency = fluency_.get();
  LlamaEmbedder* embedder = embedder_.get();
  m.embed = [embedder](const std::vector<std::string>& texts) { return embedder->embed(texts); };
  m.genre = genre_.get();
  return m;
}

std::unique_ptr<OpenStoryModels> open_story_models(const StoryModelFlags& flags, const std::string& opening,
                                                   const std::string& genre, int32_t branches, int32_t max_tokens) {
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
    out->genre_ = std::make_unique<GenreScorer>(*out->judge_engine_);
  }
  return out;
}

}  // namespace ponder::cli
