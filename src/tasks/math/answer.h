// The final answer of a math solution, as text, and a light normal form for comparing answers
// (majority voting). Not symbolic equivalence: "1/2" and "0.5" stay different.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace ponder {

// The solution's final answer, trimmed, by the first rule that finds one:
//   1. the content of the last \boxed{...} or \fbox{...} (braces matched, nested braces and
//      \{ \} inside allowed); "\boxed 5" without braces takes the text up to whitespace or '$'.
//      An unclosed or empty box is skipped in favour of an earlier one;
//   2. the text after the last "final answer is" or "the answer is" (case-insensitive, an
//      optional ':' after it), up to the end of the line or of the sentence (". "), with
//      surrounding '$' and a trailing period removed;
//   3. the last number: optional '-' (unless it follows a letter, a digit or ')', where it is
//      subtraction), digits with optional thousands separators ("1,000", groups of exactly
//      three digits), an optional decimal part (".5" alone too), and an optional "/denominator"
//      (3/4); returned as written.
// nullopt when there is none.
std::optional<std::string> extract_answer(std::string_view solution);

// For voting: trims whitespace, strips surrounding $...$ (repeatedly) and a trailing period,
// turns \dfrac and \tfrac into \frac, removes \left and \right (not \leftarrow etc.), the
// spacing commands \! \, \: \; and "\ ", and then all whitespace.
std::string normalize_answer(std::string_view answer);

}  // namespace ponder
