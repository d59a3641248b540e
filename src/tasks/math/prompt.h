// How a math problem is put to the generator.
#pragma once

#include <string>
#include <vector>

#include "engine/engine.h"

namespace ponder {

// The system prompt of the Hugging Face test-time compute study (for Llama 3.2 Instruct): steps
// as "## Step k:" paragraphs separated by blank lines (the "\n\n" step delimiter), ending in
// "Therefore, the final answer is: $\boxed{answer}$".
extern const char* const kMathSystemPrompt;

// The generator's prompt tokens for `problem`: a user turn (after `system` when not empty)
// through the model's chat template with the assistant's turn opened; a model without a chat
// template continues the problem's raw text (then `system` is not used).
std::vector<Token> math_prompt(const Engine& vocab, const std::string& problem, const std::string& system);

// The tokens of `messages` through the model's chat template, with BOS exactly once: the
// assistant's turn opened after them, or, when the last message is the assistant's, that message
// left open so that generation continues it. Throws EngineError when the model has no template.
std::vector<Token> chat_prompt(const Engine& vocab, const std::vector<ChatMessage>& messages);

}  // namespace ponder
