// What a final answer says before the parser (latex.h) reads it: the LaTeX that is not
// mathematics removed (surrounding $, \left/\right, spacing, \$, units, \text{}), the readings
// that notation leaves open ("1,000", "20\%"), and answers that are words. String work only.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace ponder::notation {

inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
inline bool is_digit(char c) { return c >= '0' && c <= '9'; }
inline bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

std::string_view trim(std::string_view s);

// "\name" at i, not followed by a letter (so that \left is not found in \leftarrow).
bool command_at(std::string_view s, size_t i, std::string_view name);

// The index just past the brace group that opens at `open` ('{'), or npos when unclosed.
size_t group_end(std::string_view s, size_t open);

struct CleanAnswer {
  std::string math;                       // what the parser reads
  std::optional<std::string> whole_text;  // the content when the whole answer is one \text{}
};

// Drops, from the outside in: "$...$", "\(...\)", "\[...\]" and trailing periods; then
// \left \right \big \displaystyle, spacing (\! \, \: \; "\ " ~ \quad: gone between digits, a space
// elsewhere), thousands separators ",\!" and "{,}", \$ and $; turns Unicode (\u2212 \u00d7 \u03c0 \u2264
// \u00b0 ...) into LaTeX; "\text{and}" between values into a comma; text after a value ("5 \text{ cm}^2")
// and trailing unit words ("12 square inches") away; other \text{...} into its content.
CleanAnswer clean(std::string_view answer);

// Words rather than mathematics: only letters and punctuation, with a word of three letters or
// more that is not a function name ("Monday", "east"; not "x", "AB" or "sin").
bool looks_like_words(std::string_view s);

// Text as it is compared: lower case, single spaces, no trailing period.
std::string text_key(std::string_view text);

// One way of reading an answer; `note` says which, empty for the usual one.
struct Spelling {
  std::string math;
  std::string note;
};

// The readings of a cleaned answer, the usual first: "20\%" is 20 or \frac{20}{100}; "1,000" is
// 1000 or the list 1, 000 ("70,110" may be either); otherwise the answer itself.
std::vector<Spelling> spellings(const std::string& math);

}  // namespace ponder::notation
