// LLM-as-judge: an outcome verifier that asks a language model whether a solution is correct and
// reads the answer off its next-token probabilities (no sampling).
#pragma once

#include <string>
#include <vector>

#include "engine/engine.h"
#include "verify/verifier.h"

namespace ponder {

struct LlmJudgeOptions {
  // The question put to the model. "{problem}" and "{solution}" are replaced by the candidate's
  // problem and solution text (the concatenation of its steps), in one pass, so braces inside
  // the problem or solution are left alone. "{solution}" must occur; "{problem}" may.
  std::string prompt_template =
      "Problem:\n{problem}\n\nProposed solution:\n{solution}\n\n"
      "Is the proposed solution correct? Answer yes or no.\nAnswer:";
  // The answers read at the next-token position after the prompt. Each side also reads its
  // capitalised and leading-space variants ("yes", "Yes", " yes", " Yes"), so that the answer
  // counts whether the model would start it with a space or a capital. Only variants that are
  // one token (tokenized alone) count; the rest are skipped.
  std::string yes = "yes";
  std::string no = "no";
  // Wrap the prompt as a user turn in the model's own chat template, followed by the generation
  // prompt, when the model has a template; raw text otherwise (and always when false).
  bool use_chat_template = true;
};

// score = P(yes) / (P(yes) + P(no)), in [0, 1], where P(yes) is the sum of the probabilities of
// the yes tokens at the next-token position after the prompt (0.5 if both sides underflow to 0).
//
// Each prompt is tokenized whole (add_special and parse_special, as `ponder generate` does), so
// the model reads the same tokens as in a from-scratch evaluation of the prompt. The prefix is
// shared on the token level instead: for the candidates of one problem, their longest common
// token prefix (the text before the solution, less a token or so where the tokenizer merges
// across that boundary, plus any start the solutions share) is computed once on one branch and
// each candidate's remaining tokens on a fork of it. (Tokenizing the text before the solution
// separately would change the tokens at the boundary: SentencePiece vocabularies with a space
// prefix, for one, put a space before every separately tokenized piece.) Candidates with identical prompts are scored
// once. All candidates go to the engine in one evaluate() call, or in several when they need
// more branches than the engine has free; every branch is freed before score() returns. The
// engine's context must hold the tokens of one such call.
//
// The engine is used, not owned; it must outlive the judge. Not thread-safe (nor is the engine).
class LlmJudge final : public OutcomeVerifier {
 public:
  // Throws EngineError when the options are unusable: no "{solution}" in the template, an empty
  // answer string, no single-token variant of the yes (or the no) answer, or a token that is on
  // both sides.
  explicit LlmJudge(Engine& engine, LlmJudgeOptions options = {});

  std::vector<double> score(const std::vector<Candidate>& candidates) override;

  // tokens_evaluated: tokens handed to the engine; tokens_if_rescored: the candidates' whole
  // prompts, one by one; calls: evaluate() calls; seconds: wall time in score().
  VerifierStats stats() const override { return stats_; }

  // The prompt as the model sees it (after the chat template, before tokenizing).
  std::string render(const Candidate& candidate) const;
  // The answer tokens read for each side, distinct.
  const std::vector<Token>& yes_tokens() const { return yes_tokens_; }
  const std::vector<Token>& no_tokens() const { return no_tokens_; }

 private:
  Engine& engine_;
  LlmJudgeOptions options_;
  bool chat_;
  std::vector<Token> yes_tokens_;
  std::vector<Token> no_tokens_;
  VerifierStats stats_;
};

}  // namespace ponder
