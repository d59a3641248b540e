#include "tasks/math/prompt.h"

namespace ponder {

const char* const kMathSystemPrompt =
    "Solve the following math problem efficiently and clearly:\n\n"
    "- For simple problems (2 steps or fewer):\n"
    "Provide a concise solution with minimal explanation.\n\n"
    "- For complex problems (3 steps or more):\n"
    "Use this step-by-step format:\n\n"
    "## Step 1: [Concise description]\n"
    "[Brief explanation and calculations]\n\n"
    "## Step 2: [Concise description]\n"
    "[Brief explanation and calculations]\n\n"
    "...\n\n"
    "Regardless of the approach, always conclude with:\n\n"
    "Therefore, the final answer is: $\\boxed{answer}$. I hope it is correct.\n\n"
    "Where [answer] is just the final number or expression that solves the problem.";

std::vector<Token> math_prompt(const Engine& vocab, const std::string& problem, const std::string& system) {
  if (!vocab.has_chat_template()) return vocab.tokenize(problem, /*add_special=*/true, /*parse_special=*/false);
  std::vector<ChatMessage> messages;
  if (!system.empty()) messages.push_back({"system", system});
  messages.push_back({"user", problem});
  return chat_prompt(vocab, messages);
}

std::vector<Token> chat_prompt(const Engine& vocab, const std::vector<ChatMessage>& messages) {
  const bool continue_final = !messages.empty() && messages.back().role == "assistant";
  const std::string text =
      vocab.apply_chat_template(messages, /*add_generation_prompt=*/!continue_final, continue_final);
  // The template writes its own BOS when the model wants one; don't add a second.
  const std::vector<Token> with_bos = vocab.tokenize(text, /*add_special=*/true, /*parse_special=*/true);
  const std::vector<Token> without = vocab.tokenize(text, /*add_special=*/false, /*parse_special=*/true);
  if (with_bos.size() > without.size() && without.size() >= 1 && with_bos[0] == without[0]) return without;
  return with_bos;
}

}  // namespace ponder
