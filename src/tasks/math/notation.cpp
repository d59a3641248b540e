// Answer notation before parsing (notation.h): plain string work on the LaTeX of an answer.
#include "tasks/math/notation.h"

#include <algorithm>
#include <cctype>
#include <functional>
#include <set>
#include <utility>

namespace ponder::notation {

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool command_at(std::string_view s, size_t i, std::string_view name) {
  return s.compare(i, name.size(), name) == 0 && (i + name.size() == s.size() || !is_letter(s[i + name.size()]));
}

size_t group_end(std::string_view s, size_t open) {
  int depth = 0;
  for (size_t j = open; j < s.size(); ++j) {
    if (s[j] == '\\') {
      ++j;
    } else if (s[j] == '{') {
      ++depth;
    } else if (s[j] == '}' && --depth == 0) {
      return j + 1;
    }
  }
  return std::string::npos;
}

namespace {

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Replaces each occurrence of the control word `name` (with its backslash).
void replace_command(std::string& s, std::string_view name, std::string_view with) {
  for (size_t i = s.find(name); i != std::string::npos; i = s.find(name, i)) {
    if (command_at(s, i, name)) {
      s.replace(i, name.size(), with);
      i += with.size();
    } else {
      i += name.size();
    }
  }
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  for (size_t i = s.find(from); i != std::string::npos; i = s.find(from, i + to.size())) s.replace(i, from.size(), to);
}

constexpr std::string_view kTextCommands[] = {"\\text",   "\\textbf", "\\textit", "\\textrm",      "\\textnormal",
                                              "\\textup", "\\textsf", "\\mbox",   "\\hbox",        "\\mathrm",
                                              "\\mathbf", "\\mathit", "\\mathsf", "\\operatorname"};

// Unit words dropped after a value ("12 inches", "5 \text{ cm}^2"); \text{} after a value is
// dropped whatever it says.
const std::set<std::string, std::less<>> kUnitWords = {
    "cm",     "mm",      "km",     "inch",    "inches",    "ft",    "feet",   "foot",    "yd",     "yard",
    "yards",  "mile",    "miles",  "meter",   "meters",    "metre", "metres", "unit",    "units",  "square",
    "sq",     "cubic",   "degree", "degrees", "cent",      "cents", "dollar", "dollars", "hour",   "hours",
    "minute", "minutes", "second", "seconds", "day",       "days",  "week",   "weeks",   "year",   "years",
    "mph",    "pound",   "pounds", "gram",    "grams",     "kg",    "liter",  "liters",  "people", "students",
    "ways",   "points",  "times",  "percent", "kilometers"};

// One text command: [start, end) in the string, with its content.
struct TextSpan {
  size_t start, end;
  std::string content;
};

std::optional<TextSpan> find_text_command(std::string_view s, size_t from) {
  for (size_t i = s.find('\\', from); i != std::string_view::npos; i = s.find('\\', i + 1)) {
    for (std::string_view name : kTextCommands) {
      if (!command_at(s, i, name)) continue;
      size_t open = i + name.size();
      while (open < s.size() && is_space(s[open])) ++open;
      if (open >= s.size() || s[open] != '{') continue;
      const size_t end = group_end(s, open);
      if (end == std::string::npos) return std::nullopt;
      return TextSpan{i, end, std::string(s.substr(open + 1, end - open - 2))};
    }
  }
  return std::nullopt;
}

bool is_wordy(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return is_letter(c) || is_space(c) || c == '.' || c == '-'; });
}

// Drops a superscript 2 or 3 ("\text{ cm}^2") at i; returns the index after it.
size_t skip_unit_power(std::string_view s, size_t i) {
  for (std::string_view power : {"^2", "^3", "^{2}", "^{3}"}) {
    if (s.compare(i, power.size(), power) == 0) return i + power.size();
  }
  return i;
}

// Removes text commands: "and"/"or" between values become a comma ("1, 2, \text{and} 3" one
// comma), text after a value is a unit, any other text stands for its content.
std::string drop_text_commands(std::string s) {
  size_t from = 0;
  while (auto span = find_text_command(s, from)) {
    const std::string word = lower(trim(span->content));
    const std::string_view before = trim(std::string_view(s).substr(0, span->start));
    const bool after_value = !before.empty() && (is_digit(before.back()) || is_letter(before.back()) ||
                                                 before.back() == '}' || before.back() == ')' || before.back() == ']');
    if (word == "and" || word == "or" || word == ",") {
      s.erase(span->start, span->end - span->start);
      if (!before.ends_with(',')) s.insert(span->start, 1, ',');
      from = span->start;
    } else if (after_value && is_wordy(span->content)) {
      s.erase(span->start, skip_unit_power(s, span->end) - span->start);
      from = span->start;
    } else {
      s.replace(span->start, span->end - span->start, span->content);
      from = span->start;
    }
  }
  return s;
}

// Trailing unit words after a value: "12 square inches", "5cm^2".
std::string drop_unit_words(std::string s) {
  for (;;) {
    std::string_view t = trim(s);
    size_t end = t.size();
    for (std::string_view power : {"^2", "^3", "^{2}", "^{3}"}) {
      if (t.ends_with(power)) end -= power.size();
    }
    size_t start = end;
    while (start > 0 && is_letter(t[start - 1])) --start;
    if (start == end || start == 0) return s;
    const char before = t[start - 1];
    if (!(is_space(before) || is_digit(before) || before == '}' || before == ')')) return s;
    if (!kUnitWords.contains(lower(t.substr(start, end - start)))) return s;
    if (trim(t.substr(0, start)).empty()) return s;
    s = std::string(trim(t.substr(0, start)));
  }
}

// Peels "$...$", "\(...\)", "\[...\]" and trailing periods from the outside in.
std::string strip_delimiters(std::string_view answer) {
  std::string s(trim(answer));
  for (;;) {
    if (s.ends_with('.')) {
      s.pop_back();
    } else if (s.size() >= 2 && s.front() == '$' && s.back() == '$') {
      s = s.substr(1, s.size() - 2);
    } else if (s.size() >= 4 &&
               ((s.starts_with("\\(") && s.ends_with("\\)")) || (s.starts_with("\\[") && s.ends_with("\\]")))) {
      s = s.substr(2, s.size() - 4);
    } else {
      break;
    }
    s = std::string(trim(s));
  }
  return s;
}

// Spacing commands (\! \, \: \; "\ " ~ \quad) vanish between digits ("10\,000") and are a
// space elsewhere. A row break "\\" is not "\ ".
void drop_spacing(std::string& s) {
  replace_command(s, "\\qquad", " ");
  replace_command(s, "\\quad", " ");
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    size_t length = 0;
    if (s[i] == '~') {
      length = 1;
    } else if (s[i] == '\\' && i + 1 < s.size()) {
      if (s[i + 1] == '\\') {
        out += "\\\\";
        ++i;
        continue;
      }
      if (std::string_view("!,:; ").find(s[i + 1]) != std::string_view::npos) length = 2;
    }
    if (length == 0) {
      out += s[i];
      continue;
    }
    const bool between_digits =
        !out.empty() && is_digit(out.back()) && i + length < s.size() && is_digit(s[i + length]);
    if (!between_digits) out += ' ';
    i += length - 1;
  }
  s = std::move(out);
}

// ",\!" and "{,}" between digit groups are thousands separators ("32,\!348"), never a list.
void drop_thousands_separators(std::string& s) {
  for (std::string_view separator : {",\\!", "{,}"}) {
    for (size_t i = s.find(separator); i != std::string::npos; i = s.find(separator, i)) {
      size_t next = i + separator.size();
      while (next < s.size() && is_space(s[next])) ++next;
      const bool digits_after =
          next + 3 <= s.size() && is_digit(s[next]) && is_digit(s[next + 1]) && is_digit(s[next + 2]);
      if (i > 0 && is_digit(s[i - 1]) && digits_after) {
        s.erase(i, next - i);
      } else {
        i += separator.size();
      }
    }
  }
}

}  // namespace

CleanAnswer clean(std::string_view answer) {
  std::string s = strip_delimiters(answer);
  // Unicode that models write for LaTeX.
  const std::pair<std::string_view, std::string_view> unicode[] = {
      {"\u2212", "-"},       {"\u00d7", "\\times "}, {"\u00b7", "\\cdot "}, {"\u03c0", "\\pi "},
      {"\u221a", "\\sqrt "}, {"\u221e", "\\infty "}, {"\u2264", "\\le "},   {"\u2265", "\\ge "},
      {"\u2260", "\\ne "},   {"\u00b0", "^\\circ "}, {"\u222a", "\\cup "}};
  for (const auto& [from, to] : unicode) replace_all(s, from, to);
  drop_thousands_separators(s);
  drop_spacing(s);
  replace_all(s, "\\left.", "");  // invisible delimiters
  replace_all(s, "\\right.", "");
  for (std::string_view name : {"\\displaystyle", "\\textstyle", "\\left", "\\right", "\\bigl", "\\bigr", "\\Bigl",
                                "\\Bigr", "\\big", "\\Big"}) {
    replace_command(s, name, "");
  }
  replace_command(s, "\\degree", "^\\circ");
  for (std::string_view bar : {"\\lvert", "\\rvert", "\\vert"}) replace_command(s, bar, "|");
  replace_all(s, "\\$", "");
  std::erase(s, '$');
  s = std::string(trim(s));

  CleanAnswer out;
  if (auto span = find_text_command(s, 0); span && span->start == 0 && span->end == s.size()) {
    out.whole_text = std::string(trim(span->content));
  }
  out.math = strip_delimiters(drop_unit_words(drop_text_commands(std::move(s))));
  return out;
}

bool looks_like_words(std::string_view s) {
  static const std::set<std::string, std::less<>> kFunctionWords = {"sin", "cos", "tan", "cot", "sec",
                                                                    "csc", "log", "ln",  "exp", "sqrt"};
  bool has_word = false;
  for (size_t i = 0; i < s.size();) {
    if (is_letter(s[i])) {
      size_t j = i;
      while (j < s.size() && is_letter(s[j])) ++j;
      if (j - i >= 3 && !kFunctionWords.contains(lower(s.substr(i, j - i)))) has_word = true;
      i = j;
    } else if (is_space(s[i]) || s[i] == ',' || s[i] == '.' || s[i] == '\'' || s[i] == '-' || s[i] == '(' ||
               s[i] == ')') {
      ++i;
    } else {
      return false;
    }
  }
  return has_word;
}

std::string text_key(std::string_view text) {
  std::string key;
  for (char c : trim(text)) {
    if (is_space(c)) {
      if (!key.empty() && key.back() != ' ') key += ' ';
    } else {
      key += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  while (!key.empty() && (key.back() == '.' || key.back() == ' ')) key.pop_back();
  return key;
}

namespace {

// "1,000" and "-12,345,678.5": one to three digits, then groups of exactly three after commas.
bool has_thousands_groups(std::string_view s) {
  if (s.starts_with('-')) s.remove_prefix(1);
  size_t i = 0;
  while (i < s.size() && is_digit(s[i])) ++i;
  if (i == 0 || i > 3) return false;
  size_t groups = 0;
  for (; i < s.size() && s[i] == ','; i += 4, ++groups) {
    if (i + 4 > s.size() || !is_digit(s[i + 1]) || !is_digit(s[i + 2]) || !is_digit(s[i + 3])) return false;
  }
  if (groups == 0) return false;
  if (i + 1 < s.size() && s[i] == '.') {
    for (++i; i < s.size() && is_digit(s[i]);) ++i;
  }
  return i == s.size();
}

}  // namespace

std::vector<Spelling> spellings(const std::string& math) {
  for (std::string_view percent : {"\\%", "%"}) {
    if (math.ends_with(percent)) {
      const std::string number(trim(std::string_view(math).substr(0, math.size() - percent.size())));
      return {{number, ""}, {"\\frac{" + number + "}{100}", "percent as a fraction"}};
    }
  }
  if (has_thousands_groups(math)) {
    std::string number = math;
    std::erase(number, ',');
    if (math.find('.') != std::string::npos) return {{number, ""}};
    return {{number, ""}, {math, "commas as a list"}};
  }
  return {{math, ""}};
}

}  // namespace ponder::notation
