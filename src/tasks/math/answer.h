// The final answer of a math solution, as text, and a light normal form for comparing answers
// (majority voting). Not symbolic equivalence: "1/2" and "0.5" stay different here (grade.h
// compares answers as mathematics).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ponder {

// The rules that find a solution's final answer, tried in a configurable order:
//   kBoxed: the content of the last \boxed{...} or \fbox{...} (braces matched, nested braces
//     and \{ \} inside allowed); "\boxed 5" without braces takes the text up to whitespace or
//     '$'. An unclosed or empty box is skipped in favour of an earlier one;
//   kFinalAnswerIs, kTheAnswerIs: the text after the last "final answer is" (or "the answer
//     is"), case-insensitive, an optional ':' after it, up to the end of the line or of the
//     sentence (". "), with surrounding '$' and a trailing period removed;
//   kLastNumber: the last number: optional '-' (unless it follows a letter, a digit or ')',
//     where it is subtraction), digits with optional thousands separators ("1,000", groups of
//     exactly three digits), an optional decimal part (".5" alone too), and an optional
//     "/denominator" (3/4); returned as written.
enum class AnswerRule { kBoxed, kFinalAnswerIs, kTheAnswerIs, kLastNumber };

struct ExtractOptions {
  std::vector<AnswerRule> order = {AnswerRule::kBoxed, AnswerRule::kFinalAnswerIs, AnswerRule::kTheAnswerIs,
                                   AnswerRule::kLastNumber};
};

// The names of the rules on the command line: "boxed", "final-answer", "the-answer",
// "last-number".
std::string to_string(AnswerRule rule);

// A comma list of rule names, e.g. "final-answer,boxed" (spaces around names allowed, each rule
// at most once). Throws std::invalid_argument naming the bad entry.
std::vector<AnswerRule> parse_answer_rules(std::string_view list);

// The solution's final answer, trimmed, by the first rule of `options.order` that finds one;
// nullopt when none does.
std::optional<std::string> extract_answer(std::string_view solution, const ExtractOptions& options = {});

// For voting: trims whitespace, strips surrounding $...$ (repeatedly) and a trailing period,
// turns \dfrac and \tfrac into \frac, removes \left and \right (not \leftarrow etc.), the
// spacing commands \! \, \: \; and "\ ", and then all whitespace.
std::string normalize_answer(std::string_view answer);

// A solution's answer as searches vote with it: extracted, then normalised.
std::optional<std::string> voting_answer(std::string_view solution, const ExtractOptions& options);

}  // namespace ponder
