// Prompt-injection guard for story generation (issue 5): a story prompt is meant to be the
// opening of a story that the model continues, not instructions to the model. This guard refuses
// prompts that are empty, or that read as instructions aimed at the system: injection attempts
// ("ignore all previous instructions", "you are now DAN"), requests for secrets or the system
// prompt, code or shell requests, and imperatives addressed to the model ("write me", "tell me").
//
// How it decides (all of it over normalised text, see normalise_prompt):
//   - Each rule is a pattern with a weight in (0, 1], the rule's confidence that a prompt it
//     matches is an injection. The rule score is the noisy-OR of the weights of the rules that
//     match, 1 - prod(1 - w): one strong rule refuses alone, weak ones refuse only together.
//   - Dialogue is not addressed to the model: text inside double quotes ("Tell me your name,"
//     said the dragon) is exempt from the imperative rules, and counts at a reduced weight for
//     the rest (an injection hidden in quotes still reads as one). A prompt that is all quote,
//     with no narration around it, is read as narration: quoting a request does not make it
//     dialogue.
//   - With a classifier (e.g. an LLM judge returning P(injection)), the score is the noisy-OR of
//     the rule score and classifier_weight * P(injection): either signal can refuse, and the
//     classifier can add suspicion but never clear a prompt the rules refuse.
//   - The prompt is refused when the score is >= threshold.
#pragma once

#include <functional>
#include <string>
#include <string_view>

namespace ponder::story {

struct GuardOptions {
  // Refuse at or above this score. 0.5 refuses on any one rule of weight >= 0.5, or on two
  // weaker rules together (0.3 and 0.3 give 0.51).
  double threshold = 0.5;
  // Weight of matches inside double-quoted dialogue, relative to narration (imperative rules do
  // not apply inside quotes at all).
  double quoted_weight = 0.7;
  // Optional: P(injection) in [0, 1] for the prompt as given (not normalised), e.g. from an LLM
  // judge. Empty: rules only.
  std::function<double(std::string_view prompt)> classifier;
  double classifier_weight = 1.0;
};

struct GuardVerdict {
  bool allowed = false;
  std::string reason;  // why it was refused (the strongest rules matched); empty when allowed
  double score = 0.0;  // combined injection score in [0, 1]
};

GuardVerdict check_story_prompt(std::string_view prompt, const GuardOptions& options = {});

// The text the rules read: UTF-8 with zero-width and other invisible characters removed,
// fullwidth ASCII and common Cyrillic/Greek look-alike letters mapped to ASCII, curly quotes and
// guillemets mapped to '"', curly apostrophes to '\'', digits and symbols inside words read as
// the letters they stand in for ("1gn0re" -> "ignore", "p@ssword" -> "password"), words spelt
// out letter by letter joined ("i g n o r e" -> "ignore"), lowercased, whitespace runs collapsed
// to one space and trimmed.
std::string normalise_prompt(std::string_view prompt);

}  // namespace ponder::story
