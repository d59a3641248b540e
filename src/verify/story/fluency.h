// Story fluency: how natural a text reads to a scorer language model, as the geometric-mean
// probability of its tokens. One forward pass per text: every text of a call is appended to a
// fork of one branch holding the shared context, and all are read in a single evaluate().
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace ponder {

struct FluencyStats {
  int64_t calls = 0;             // score() calls
  int64_t texts = 0;             // texts scored
  int64_t evaluate_calls = 0;    // Engine::evaluate() calls: one per score() call when the texts fit
  int64_t context_tokens = 0;    // tokens of the shared context branches (computed once per call)
  int64_t evaluated_tokens = 0;  // tokens the evaluate() calls appended (about one per text token)
  int64_t scored_tokens = 0;     // tokens whose probability entered a mean
};

// A text read so far by the fluency model, for incremental scoring (FluencyScorer::begin and
// extend): extending it reads only the tokens added since, on a fork of its branch, which holds
// the context and the text's tokens but the last (the next read starts by re-feeding that one).
struct FluencyPrefix {
  BranchId branch = -1;        // on the scorer's engine; -1: none (released, or nothing read)
  std::vector<Token> tokens;   // context + text, tokenized together
  double logprob_sum = 0.0;    // of the text's tokens
  int64_t scored = 0;          // how many
  // exp(mean log-probability), as FluencyScorer::score gives for the same text; 0 with none.
  double score() const;
};

class FluencyScorer {
 public:
  // `engine` is the scorer model; it must outlive the scorer.
  explicit FluencyScorer(Engine& engine) : engine_(engine) {}

  // For each text: exp(mean over its tokens of log P(token | context + the text before it)),
  // in [0, 1]. The geometric mean of the token probabilities does not shrink with length, so
  // stories of different lengths, and scores from different rounds, compare directly.
  //
  // `context` is what the text continues (the prompt, the story so far); empty: the text is read
  // from the start of a document (after BOS when the model has one). The text's tokens are those
  // of context + text tokenized together, past the context's own tokens: what the model would see
  // reading the whole story. Where the tokenizer merges across the boundary, the merged tokens
  // count as the text's. A text with no token to score (empty) scores 0.
  //
  // One evaluate() call for all texts, as long as they fit in the engine's free branches (more
  // texts take one call per group that fits). Every branch it makes is freed, also on errors.
  // Throws EngineError from the engine (e.g. the context window is too small).
  std::vector<double> score(const std::string& context, const std::vector<std::string>& texts);

  // Incremental scoring, for searches that grow texts a step at a time: what score() gives,
  // with each token read once over a search rather than once per call.
  //
  // begin(): the context alone (its branch holds it). extend(): for each request, the texts
  // `texts` (each a longer version of the previous, all continuing the parent's text) scored
  // as score(context, {text}) would score them, and the prefix of the last one. A request reads
  // only the tokens past its parent's, on a fork of the parent's branch; where the tokenizer
  // merged across the old end (the parent's tokens are not a prefix of the new text's), it reads
  // the text from the start of the context instead. All requests are read in one evaluate()
  // call. A prefix holds one of the engine's branches until release(); extend() needs a free
  // branch per request. Throws EngineError from the engine; on a throw no prefix has changed
  // and every branch made by the call is freed.
  struct Extension {
    const FluencyPrefix* parent;     // from begin() or extend(), of the same context
    std::vector<std::string> texts;  // whole texts after the context, each extending the last
  };
  struct Extended {
    std::vector<double> scores;  // one per text
    FluencyPrefix prefix;        // of the last text
  };
  FluencyPrefix begin(const std::string& context);
  std::vector<Extended> extend(const std::string& context, const std::vector<Extension>& extensions);
  void release(FluencyPrefix& prefix);

  FluencyStats stats() const { return stats_; }

 private:
  Engine& engine_;
  FluencyStats stats_;
};

}  // namespace ponder
