#include "tasks/math/answer.h"

#include <algorithm>
#include <stdexcept>
#include <utility>
#include <vector>

namespace ponder {
namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_letter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

// Occurrences of a control word: the name not followed by a letter (so "\fbox" is not found
// inside "\fboxsep").
std::vector<size_t> find_command(std::string_view s, std::string_view name) {
  std::vector<size_t> out;
  for (size_t at = s.find(name); at != std::string_view::npos; at = s.find(name, at + 1)) {
    const size_t end = at + name.size();
    if (end == s.size() || !is_letter(s[end])) out.push_back(at);
  }
  return out;
}

// The argument of a box command whose name ends at `pos`; empty when there is none.
std::string_view box_content(std::string_view s, size_t pos) {
  while (pos < s.size() && is_space(s[pos])) ++pos;
  if (pos < s.size() && s[pos] == '{') {
    int depth = 0;
    for (size_t j = pos; j < s.size(); ++j) {
      if (s[j] == '\\') {
        ++j;  // \{ and \} are literal braces, not grouping
      } else if (s[j] == '{') {
        ++depth;
      } else if (s[j] == '}' && --depth == 0) {
        return trim(s.substr(pos + 1, j - pos - 1));
      }
    }
    return {};  // unclosed
  }
  size_t end = pos;
  while (end < s.size() && !is_space(s[end]) && s[end] != '$') ++end;
  return s.substr(pos, end - pos);
}

std::optional<std::string> last_box(std::string_view s) {
  std::vector<std::pair<size_t, size_t>> boxes;  // (start, end of name)
  for (std::string_view name : {std::string_view("\\boxed"), std::string_view("\\fbox")}) {
    for (size_t at : find_command(s, name)) boxes.emplace_back(at, at + name.size());
  }
  std::sort(boxes.rbegin(), boxes.rend());
  for (const auto& [start, name_end] : boxes) {
    const std::string_view content = box_content(s, name_end);
    if (!content.empty()) return std::string(content);
  }
  return std::nullopt;
}

std::optional<std::string> after_answer_phrase(std::string_view s, std::string_view phrase) {
  std::string lower(s);
  std::transform(lower.begin(), lower.end(), lower.begin(),
                 [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; });
  const size_t at = lower.rfind(phrase);
  if (at == std::string::npos) return std::nullopt;
  std::string_view rest = trim(s.substr(at + phrase.size()));
  if (rest.starts_with(':')) rest = trim(rest.substr(1));
  rest = rest.substr(0, rest.find('\n'));
  for (size_t dot = rest.find('.'); dot != std::string_view::npos; dot = rest.find('.', dot + 1)) {
    if (dot + 1 < rest.size() && is_space(rest[dot + 1])) {
      rest = rest.substr(0, dot);
      break;
    }
  }
  rest = trim(rest);
  if (rest.ends_with('.')) rest = trim(rest.substr(0, rest.size() - 1));
  while (rest.starts_with('$')) rest.remove_prefix(1);
  while (rest.ends_with('$')) rest.remove_suffix(1);
  rest = trim(rest);
  if (rest.empty()) return std::nullopt;
  return std::string(rest);
}

size_t skip_digits(std::string_view s, size_t i) {
  while (i < s.size() && is_digit(s[i])) ++i;
  return i;
}

// End of the unsigned number at i (a digit, or '.' before a digit).
size_t scan_unsigned(std::string_view s, size_t i) {
  if (s[i] == '.') return skip_digits(s, i + 1);
  i = skip_digits(s, i);
  // Thousands groups: ",ddd" not followed by a further digit.
  while (i + 3 < s.size() && s[i] == ',' && is_digit(s[i + 1]) && is_digit(s[i + 2]) && is_digit(s[i + 3]) &&
         (i + 4 == s.size() || !is_digit(s[i + 4]))) {
    i += 4;
  }
  if (i + 1 < s.size() && s[i] == '.' && is_digit(s[i + 1])) i = skip_digits(s, i + 1);
  return i;
}

std::optional<std::string> last_number(std::string_view s) {
  std::optional<std::string> last;
  size_t i = 0;
  while (i < s.size()) {
    const bool starts = is_digit(s[i]) || (s[i] == '.' && i + 1 < s.size() && is_digit(s[i + 1]));
    if (!starts) {
      ++i;
      continue;
    }
    size_t start = i;
    size_t end = scan_unsigned(s, i);
    if (end + 1 < s.size() && s[end] == '/' && is_digit(s[end + 1])) {
      end = scan_unsigned(s, end + 1);
    }
    // A '-' after a letter, digit or ')' is subtraction, not a sign.
    if (start > 0 && s[start - 1] == '-' &&
        (start == 1 || !(is_letter(s[start - 2]) || is_digit(s[start - 2]) || s[start - 2] == ')'))) {
      --start;
    }
    last = std::string(s.substr(start, end - start));
    i = end;
  }
  return last;
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
}

constexpr std::pair<AnswerRule, std::string_view> kRuleNames[] = {
    {AnswerRule::kBoxed, "boxed"},
    {AnswerRule::kFinalAnswerIs, "final-answer"},
    {AnswerRule::kTheAnswerIs, "the-answer"},
    {AnswerRule::kLastNumber, "last-number"},
};

}  // namespace

std::string to_string(AnswerRule rule) {
  for (const auto& [r, name] : kRuleNames) {
    if (r == rule) return std::string(name);
  }
  return "unknown";
}

std::vector<AnswerRule> parse_answer_rules(std::string_view list) {
  std::vector<AnswerRule> rules;
  while (true) {
    const size_t comma = list.find(',');
    const std::string_view name = trim(list.substr(0, comma));
    const auto* known = std::find_if(std::begin(kRuleNames), std::end(kRuleNames),
                                     [&](const auto& entry) { return entry.second == name; });
    if (known == std::end(kRuleNames)) {
      throw std::invalid_argument("unknown answer rule '" + std::string(name) +
                                  "' (rules: boxed, final-answer, the-answer, last-number)");
    }
    if (std::find(rules.begin(), rules.end(), known->first) != rules.end()) {
      throw std::invalid_argument("answer rule '" + std::string(name) + "' given twice");
    }
    rules.push_back(known->first);
    if (comma == std::string_view::npos) return rules;
    list.remove_prefix(comma + 1);
  }
}

std::optional<std::string> extract_answer(std::string_view solution, const ExtractOptions& options) {
  for (const AnswerRule rule : options.order) {
    std::optional<std::string> found;
    switch (rule) {
      case AnswerRule::kBoxed: found = last_box(solution); break;
      case AnswerRule::kFinalAnswerIs: found = after_answer_phrase(solution, "final answer is"); break;
      case AnswerRule::kTheAnswerIs: found = after_answer_phrase(solution, "the answer is"); break;
      case AnswerRule::kLastNumber: found = last_number(solution); break;
    }
    if (found) return found;
  }
  return std::nullopt;
}

std::string normalize_answer(std::string_view answer) {
  std::string s(trim(answer));
  // "$5$." and "$$5$$": peel periods and dollar pairs from the outside in.
  for (;;) {
    if (s.ends_with('.')) {
      s.pop_back();
    } else if (s.size() >= 2 && s.front() == '$' && s.back() == '$') {
      s = s.substr(1, s.size() - 2);
    } else {
      break;
    }
    s = std::string(trim(s));
  }
  replace_all(s, "\\dfrac", "\\frac");
  replace_all(s, "\\tfrac", "\\frac");
  for (std::string_view name : {std::string_view("\\left"), std::string_view("\\right")}) {
    const auto at = find_command(s, name);
    for (auto it = at.rbegin(); it != at.rend(); ++it) s.erase(*it, name.size());
  }
  for (std::string_view spacing : {"\\!", "\\,", "\\:", "\\;", "\\ "}) replace_all(s, spacing, "");
  std::erase_if(s, is_space);
  return s;
}

std::optional<std::string> voting_answer(std::string_view solution, const ExtractOptions& options) {
  const std::optional<std::string> a = extract_answer(solution, options);
  if (!a) return std::nullopt;
  return normalize_answer(*a);
}

}  // namespace ponder
