// Reading a yes/no answer off a language model's next-token probabilities (no sampling): the part
// that every LLM-as-judge scorer shares (LlmJudge for solutions, GenreScorer for story sentences).
// It picks the answer tokens, and scores a batch of prompts with shared token prefixes computed
// once, in as few evaluate() calls as the engine's free branches allow.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace ponder {

// The tokens read for each side of a yes/no answer. Each side reads its answer's capitalised and
// leading-space variants too ("yes", "Yes", " yes", " Yes"), so the answer counts whether the
// model would start it with a space or a capital; only variants that are one token (tokenized
// alone) count.
struct YesNoTokens {
  std::vector<Token> yes;
  std::vector<Token> no;
};

// Throws EngineError when an answer is empty, has no single-token variant, or a token is on both
// sides. `who` names the scorer in the messages ("the judge").
YesNoTokens yes_no_tokens(const Engine& engine, const std::string& yes, const std::string& no,
                          const std::string& who);

struct YesNoReadStats {
  int64_t tokens_evaluated = 0;  // tokens handed to the engine
  int64_t calls = 0;             // evaluate() calls
};

// A batch of prompts (token sequences, tokenized whole) to read P(yes) / (P(yes) + P(no)) from at
// the position after their last token. Identical prompts are stored, and scored, once. Prompts
// added under the same group key share their longest common token prefix: it is computed once on
// one branch and each prompt's remaining tokens on a fork of it (prompts of different groups
// share nothing, so a group should hold prompts that really start alike).
class YesNoBatch {
 public:
  // Returns the prompt's index into read()'s result. Throws EngineError on an empty prompt.
  size_t add(std::vector<Token> tokens, const std::string& group);
  size_t size() const { return prompts_.size(); }

  // score = P(yes) / (P(yes) + P(no)) per prompt, in [0, 1] (0.5 if both sides underflow to 0),
  // P(side) being the sum of its tokens' probabilities. All prompts go to the engine in one
  // evaluate() call, or in several when they need more branches than the engine has free; every
  // branch is freed before read() returns, also on errors. The engine's context must hold the
  // tokens of one such call.
  std::vector<double> read(Engine& engine, const YesNoTokens& answers, YesNoReadStats& stats) const;

 private:
  std::map<std::vector<Token>, size_t> index_;    // map keys stay put: prompts_ points at them
  std::vector<const std::vector<Token>*> prompts_;
  std::map<std::string, size_t> group_of_;
  std::vector<std::vector<size_t>> groups_;       // prompt indices, by group
};

}  // namespace ponder
