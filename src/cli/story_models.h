// Opening the models a story search uses (`ponder story`, and the story page of `ponder serve`):
// the generator, a second engine of the same model for fluency (the search holds its branches on
// the generator), an embedder for coherence and diversity, and a genre judge when one is named.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/engine_setup.h"
#include "engine/llama_embedder.h"
#include "tasks/story/writer.h"
#include "verify/story/fluency.h"
#include "verify/story/genre.h"

namespace ponder::cli {

struct StoryModelFlags {
  std::string model;        // generator GGUF (also scores fluency)
  std::string embed_model;  // empty: the generator's file, mean-pooled
  std::string judge_model;  // empty: no judge
  // How genre is scored: "judge" (needs judge_model), "embedding", "none"; empty: "judge" when
  // a judge is named, else "none".
  std::string genre_by;
  std::string genre_description = "A {genre} story.";  // for "embedding"
  EngineFlags engine;
};

class OpenStoryModels {
 public:
  story::StoryModels view() const;

 private:
  friend std::unique_ptr<OpenStoryModels> open_story_models(const StoryModelFlags&, const std::string&,
                                                            const std::string&, int32_t, int32_t);
  std::unique_ptr<LlamaEngine> generator_, fluency_engine_, judge_engine_;
  std::unique_ptr<FluencyScorer> fluency_;
  std::unique_ptr<LlamaEmbedder> embedder_;
  std::unique_ptr<GenreScorer> judge_;
  bool genre_by_embedding_ = false;
  std::string genre_description_;
};

// Checks flags.genre_by against the judge: throws EngineError.
void check_genre_flags(const StoryModelFlags& flags);

// Opens the models for stories continuing `opening` (or any opening of its length in tokens, and
// no longer) in `genre`, with up to `branches` generator branches and `max_tokens` per
// continuation. Unified KV caches unless flags.engine.kv names a layout: the search forks and
// prunes every round, and the scorers fork one context branch many ways.
std::unique_ptr<OpenStoryModels> open_story_models(const StoryModelFlags& flags, const std::string& opening,
                                                   const std::string& genre, int32_t branches, int32_t max_tokens);

}  // namespace ponder::cli
