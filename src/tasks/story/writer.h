// Writing stories (issue 5): the work behind `ponder story` and the story web page of `ponder
// serve`. A story opening is continued several ways by a step-wise search (a step is a sentence,
// by ICU's rules, or a fixed number of tokens) guided by the
// story scores (coherence, fluency, genre alignment); the best distinct stories come back with
// their scores and how diverse they are.
//
// Budget: K stories and beam width M give N = K x M live generator branches. DVTS (the default)
// runs K independent subtrees of M candidates, one per story wanted, so the stories grow apart;
// beam search keeps K beams and expands each M ways; best-of-n samples N whole continuations and
// scores each once. The K best distinct finished stories are returned, the best of each DVTS
// subtree first.
//
// The models are opened once by the caller (StoryModels) and serve one request at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/engine.h"
#include "search/search.h"
#include "verify/story/diversity.h"
#include "verify/story/embedding.h"
#include "verify/story/fluency.h"
#include "verify/story/genre.h"
#include "verify/story/guard.h"
#include "verify/story/story_score.h"

namespace ponder::story {

struct StoryRequest {
  std::string opening;                   // what the model continues
  std::string genre;                     // e.g. "adventure"
  int32_t stories = 4;                   // K: stories returned
  Strategy strategy = Strategy::kDvts;   // kDvts, kBeam or kBestOfN
  int32_t beam_width = 4;                // M: candidates per beam or subtree each round
  int32_t steps = 8;                     // most step rounds; the last writes to the end
  int32_t step_tokens = 0;               // a step: this many tokens; 0: a sentence
  float temperature = 0.8f;
  int32_t top_k = 0;                     // 0: all tokens
  float top_p = 1.0f;
  int32_t max_tokens = 256;              // per continuation
  uint64_t seed = 0;
  StoryWeights weights;                  // coherence 0.4, fluency 0.3, genre 0.3
  // The prompt guard's settings (threshold 0.5). Set by whoever runs the writer, never by
  // the user the guard protects against (the server takes it from its own flags).
  GuardOptions guard;
};

// Thrown when the prompt guard refuses a story opening (empty, not a story, or instructions
// aimed at the system). The message says why, for the user.
class StoryRefused : public EngineError {
 public:
  using EngineError::EngineError;
};

// The engines a writer uses; the caller owns them and sizes them for its largest request.
struct StoryModels {
  Engine* generator = nullptr;     // writes; must hold stories x beam_width branches
  FluencyScorer* fluency = nullptr;
  EmbedFunction embed;             // coherence and diversity
  // The genre metric: a judge model, else (when genre_by_embedding) the embeddings' similarity
  // to genre_description, else none (the other weights are rescaled).
  GenreScorer* judge = nullptr;
  bool genre_by_embedding = false;
  std::string genre_description = "A {genre} story.";
};

struct WrittenStory {
  std::string continuation;  // the text after the opening
  StoryScores scores;
  int32_t tokens = 0;
  FinishReason finish = FinishReason::kEos;
};

struct StoryResult {
  std::vector<WrittenStory> stories;  // best first; fewer than asked when fewer finished
  DiversityStats diversity;           // of the continuations (the shared opening left out)
  SearchUsage usage;
  int64_t fluency_tokens = 0;         // tokens the fluency model computed for this request
  int64_t fluency_texts = 0;          // candidate texts it scored
  int64_t fluency_passes = 0;         // its evaluate() calls: forward passes over many texts each
  int64_t scorer_calls = 0;           // batched scoring calls of the search
  std::optional<int64_t> genre_tokens;  // tokens the judge computed (none without a judge)
  std::string genre_metric;           // "judge", "embedding" or "none"
};

// Checks a request's values (before anything runs): throws EngineError naming what is wrong.
// The prompt guard runs first: a refused opening throws StoryRefused.
void check_story_request(const StoryRequest& request);

// The generator's prompt: the opening as raw text (BOS first), or, for a chat model, a user turn
// asking for a continuation in the genre, with the assistant's turn opened.
std::vector<Token> story_prompt(const Engine& vocab, const std::string& opening, const std::string& genre);

// Writes the stories. Checks the request first (check_story_request). `cancel` and `on_progress`
// are passed to the search (SearchOptions); a cancelled request throws Cancelled. Throws
// EngineError when the engines cannot hold the work (too few branches or context).
StoryResult write_stories(const StoryModels& models, const StoryRequest& request,
                          const std::atomic<bool>* cancel = nullptr,
                          std::function<void(const SearchProgress&)> on_progress = {});

// The result as `ponder story --json` prints it (and the web page reads it): stories with
// their texts and scores, diversity, usage, and the request's settings.
nlohmann::json story_json(const StoryRequest& request, const StoryResult& result);

}  // namespace ponder::story
