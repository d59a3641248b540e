// Prompt-injection guard for story prompts: normalisation, weighted rules, quote handling; see
// guard.h for the scoring.
#include "verify/story/guard.h"

#include <algorithm>
#include <cctype>
#include <regex>
#include <vector>

namespace ponder::story {
namespace {

// --- normalisation ------------------------------------------------------------------------

// Decodes one UTF-8 code point at s[i], advancing i; a bad byte reads as U+FFFD.
char32_t next_code_point(std::string_view s, size_t& i) {
  const auto b = static_cast<unsigned char>(s[i]);
  int len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
  if (len == 0 || i + len > s.size()) {
    ++i;
    return 0xFFFD;
  }
  char32_t cp = len == 1 ? b : b & (0xFF >> (len + 1));
  for (int k = 1; k < len; ++k) {
    const auto c = static_cast<unsigned char>(s[i + k]);
    if ((c >> 6) != 0x2) {
      ++i;
      return 0xFFFD;
    }
    cp = (cp << 6) | (c & 0x3F);
  }
  i += len;
  return cp;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

bool is_invisible(char32_t cp) {
  // Combining marks too: strike-through or accent overlays ("D̶i̶s̶r̶e̶g̶a̶r̶d̶") hide a word from
  // the patterns without hiding it from the model.
  if ((cp >= 0x0300 && cp <= 0x036F) || (cp >= 0x20D0 && cp <= 0x20FF) || (cp >= 0xFE20 && cp <= 0xFE2F)) return true;
  return cp == 0x00AD || cp == 0x180E || (cp >= 0x200B && cp <= 0x200F) || (cp >= 0x202A && cp <= 0x202E) ||
         (cp >= 0x2060 && cp <= 0x2069) || cp == 0xFEFF;
}

bool is_space(char32_t cp) {
  return cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' || cp == '\f' || cp == '\v' || cp == 0x00A0 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

// The ASCII character a look-alike stands for, or 0 when it is none.
char ascii_look_alike(char32_t cp) {
  if (cp >= 0xFF01 && cp <= 0xFF5E) return static_cast<char>(cp - 0xFEE0);  // fullwidth ASCII
  switch (cp) {
    case 0x201C: case 0x201D: case 0x201E: case 0x201F: case 0x00AB: case 0x00BB:
    case 0x300C: case 0x300D: case 0x300E: case 0x300F: case 0x2033:
      return '"';
    case 0x2018: case 0x2019: case 0x201A: case 0x201B: case 0x2032:
      return '\'';
    // Cyrillic
    case 0x0430: case 0x0410: return 'a';
    case 0x0412: case 0x0432: return 'b';
    case 0x0441: case 0x0421: return 'c';
    case 0x0501: return 'd';
    case 0x0435: case 0x0415: case 0x0451: return 'e';
    case 0x04BB: case 0x041D: case 0x043D: return 'h';
    case 0x0456: case 0x0406: case 0x04CF: return 'i';
    case 0x0458: case 0x0408: return 'j';
    case 0x041A: case 0x043A: return 'k';
    case 0x041C: case 0x043C: return 'm';
    case 0x043E: case 0x041E: return 'o';
    case 0x0440: case 0x0420: return 'p';
    case 0x0455: case 0x0405: return 's';
    case 0x0422: case 0x0442: return 't';
    case 0x0443: case 0x04AF: return 'y';
    case 0x0445: case 0x0425: return 'x';
    // Greek
    case 0x03B1: case 0x0391: return 'a';
    case 0x0392: case 0x03B2: return 'b';
    case 0x03B5: case 0x0395: return 'e';
    case 0x0397: return 'h';
    case 0x03B9: case 0x0399: return 'i';
    case 0x03BA: case 0x039A: return 'k';
    case 0x039C: return 'm';
    case 0x039D: case 0x03B7: return 'n';
    case 0x03BF: case 0x039F: return 'o';
    case 0x03C1: case 0x03A1: return 'p';
    case 0x03C4: case 0x03A4: return 't';
    case 0x03C5: return 'u';
    case 0x03BD: return 'v';
    case 0x03C7: case 0x03A7: return 'x';
    case 0x03A5: case 0x03B3: return 'y';
    case 0x0396: return 'z';
    // Latin look-alikes
    case 0x0261: return 'g';
    case 0x0131: return 'i';
    default: return 0;
  }
}

// Digits and symbols that stand in for letters inside a word ("1gn0re", "p@ssw0rd").
char leet_letter(char c) {
  switch (c) {
    case '0': return 'o';
    case '1': return 'i';
    case '3': return 'e';
    case '4': return 'a';
    case '5': return 's';
    case '7': return 't';
    case '@': return 'a';
    case '$': return 's';
    default: return 0;
  }
}

// Reads leetspeak inside words that also hold letters: "1990" and "$5" stay as they are.
std::string unleet_word(const std::string& word) {
  const bool has_letter = std::any_of(word.begin(), word.end(), [](char c) { return c >= 'a' && c <= 'z'; });
  if (!has_letter) return word;
  std::string out = word;
  for (char& c : out) {
    if (const char l = leet_letter(c)) c = l;
  }
  return out;
}

bool is_single_letter(const std::string& w) { return w.size() == 1 && w[0] >= 'a' && w[0] <= 'z'; }

}  // namespace

std::string normalise_prompt(std::string_view prompt) {
  // Code points to ASCII where they have a look-alike; invisible ones dropped, spaces unified.
  std::string mapped;
  for (size_t i = 0; i < prompt.size();) {
    const char32_t cp = next_code_point(prompt, i);
    if (is_invisible(cp)) continue;
    if (is_space(cp)) {
      mapped += ' ';
    } else if (cp < 0x80) {
      mapped += static_cast<char>(std::tolower(static_cast<unsigned char>(cp)));
    } else if (const char c = ascii_look_alike(cp)) {
      mapped += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    } else {
      append_utf8(mapped, cp);
    }
  }
  // Words: leetspeak read, letter-by-letter spelling ("i g n o r e", 4+ letters) joined.
  std::vector<std::string> words;
  for (size_t i = 0; i < mapped.size();) {
    if (mapped[i] == ' ') {
      ++i;
      continue;
    }
    const size_t end = std::min(mapped.find(' ', i), mapped.size());
    words.push_back(unleet_word(mapped.substr(i, end - i)));
    i = end;
  }
  std::string out;
  for (size_t i = 0; i < words.size();) {
    size_t run = i;
    while (run < words.size() && is_single_letter(words[run])) ++run;
    if (!out.empty()) out += ' ';
    if (run - i >= 4) {
      for (size_t k = i; k < run; ++k) out += words[k];
      i = run;
    } else {
      out += words[i++];
    }
  }
  return out;
}

namespace {

// --- rules --------------------------------------------------------------------------------

enum class Scope {
  kAnywhere,   // narration at full weight, dialogue at quoted_weight
  kNarration,  // narration only: imperatives and requests inside dialogue are the story's own
};

struct Rule {
  const char* reason;
  double weight;
  Scope scope;
  std::regex pattern;
};

// Where a clause starts: the start of the text, after a sentence or clause mark or a quoted span
// (the '|' that stands in for it), after a few filler words ("ok now, please ...").
const std::string kClauseStart =
    R"((?:^|[.!?;:|]\s*)(?:(?:hey|hi|ok|okay|now|so|and|then|first|also|next|please|pls|plz|just|assistant|ai|bot|model|chatbot)\b[ ,]*)*)";

std::vector<Rule> make_rules() {
  const auto icase = std::regex::ECMAScript | std::regex::optimize;
  auto rule = [&](const char* reason, double weight, Scope scope, const std::string& pattern) {
    return Rule{reason, weight, scope, std::regex(pattern, icase)};
  };
  const std::string secret_nouns =
      R"((?:passwords?|passcodes?|secrets?|api ?keys?|keys?|tokens?|credentials|system prompt|instructions|prompt))";
  return {
      // Injection proper: override what came before.
      rule("asks to ignore previous instructions", 0.95, Scope::kAnywhere,
           R"(\b(?:ignore|disregard|forget|override|bypass|skip|drop|abandon)\b[^.!?|]{0,40}\b(?:instructions?|prompts?|directives?|directions|guidelines|programming|system messages?|guardrails|safety rules|content polic(?:y|ies)|restrictions|filters?)\b)"),
      rule("asks to disregard the text above", 0.85, Scope::kAnywhere,
           R"(\b(?:ignore|disregard|forget|skip)\b (?:all |everything |anything |what (?:was|is) (?:said|written) )?(?:of )?(?:the |your |my )?(?:above|previous|prior|preceding|earlier|before)(?: (?:text|messages?|content|rules|context|conversation|ones|input|lines?))?\s*(?:$|[,.;:!?|]|and\b|then\b|now\b))"),
      rule("refers to earlier instructions or messages", 0.8, Scope::kAnywhere,
           R"(\b(?:previous|prior|earlier|above|preceding) (?:rules|directions|messages|context|conversation)\b|\bwhat (?:were|was) you (?:told|given|instructed)\b|\b(?:before|above) this (?:message|prompt|line)\b)"),
      rule("announces new instructions", 0.6, Scope::kAnywhere,
           R"(\b(?:new|updated|real|actual|true|hidden|revised) (?:instructions|directives|rules for you|task for you|system rules)\b)"),
      // The system behind the model.
      rule("mentions the system prompt", 0.9, Scope::kAnywhere,
           R"(\b(?:system|initial|original|hidden|secret|developer|pre)[ -]?prompts?\b|\bsystem (?:message|instructions?)\b)"),
      rule("addresses the model's instructions", 0.8, Scope::kAnywhere,
           R"(\byour (?:instructions|programming|guidelines|prompt|configuration|config|settings|training|system|creators?|developers?)\b)"),
      rule("addresses the model's rules", 0.5, Scope::kAnywhere, R"(\byour (?:rules|restrictions|filters?)\b)"),
      rule("fake chat roles or delimiters", 0.9, Scope::kAnywhere,
           R"((?:^|[|.!?] ?)(?:system|assistant|user|developer|admin|human|ai) ?: |\[/?(?:inst|system|sys)\]|<\|?/?(?:im_start|im_end|system|endoftext|eot_id)\|?>|#{2,} ?(?:instructions?|system|response)|<<sys>>)"),
      // Role-play that changes who the model is.
      rule("asks the model to become someone else", 0.75, Scope::kAnywhere,
           R"(\byou are now\b(?! (?:standing|in|at|on|inside|outside|walking|entering|alone|lost|ready|free to|the (?:hero|heroine|captain|king|queen)\b))|\bfrom now on\b[^.!?|]{0,20}\byou (?:are|will|must|shall)\b)"),
      rule("asks the model to act as an unrestricted persona", 0.85, Scope::kAnywhere,
           R"(\b(?:act|behave|respond|answer|reply|pretend) (?:as|like|to be) (?:if you were |though you were )?(?:an? |my |the )?(?:unrestricted|unfiltered|uncensored|evil|jailbroken|ai|assistant|chatbot|dan|linux|terminal|developer|hacker|gpt|different model|new model)\b)"),
      rule("role-play directed at the model", 0.6, Scope::kNarration,
           kClauseStart + R"((?:act as|pretend (?:to be|you are|you're|that you)|roleplay as|role-play as|role play as|imagine you are|you will be)\b)"),
      rule("tells the model what it must do", 0.6, Scope::kNarration,
           R"(\b(?:i want you to|i need you to|i'd like you to|i would like you to)\b|\byou (?:must|will|shall|have to) (?:now )?(?:answer|respond|reply|obey|comply|output|follow|do whatever|say|always)\b)"),
      rule("jailbreak", 0.9, Scope::kAnywhere,
           R"(\b(?:jailbreak|jailbroken|developer mode|dev mode|god mode|do anything now|dan mode|stan mode|unfiltered mode|uncensored mode|no (?:restrictions|filters|limits) mode)\b|\b(?:you are|you're|act as|become|be) dan\b|\bdan\b[^.!?|]{0,20}\b(?:stands for|can do anything|has no (?:rules|limits|restrictions))\b)"),
      rule("asks to drop restrictions", 0.6, Scope::kAnywhere,
           R"(\b(?:without|with no|free of|free from) (?:any )?(?:restrictions|filters|censorship|limitations|rules or limits|content policy)\b)"),
      // Secrets.
      rule("asks for technical secrets", 0.75, Scope::kAnywhere,
           R"(\b(?:api[ _-]?keys?|access tokens?|auth tokens?|bearer tokens?|secret keys?|private keys?|ssh keys?|environment variables?|env vars?|credentials file|/etc/passwd|/etc/shadow)\b|\.env\b)"),
      rule("mentions a password or secret", 0.25, Scope::kAnywhere, R"(\b(?:passwords?|passcodes?|pin codes?)\b)"),
      rule("asks for the model's secrets", 0.45, Scope::kAnywhere,
           R"(\byour (?:passwords?|secrets?|api ?keys?|credentials|passcodes?|tokens?)\b)"),
      rule("demands a secret", 0.8, Scope::kNarration,
           kClauseStart + R"((?:reveal|tell|give|show|print|share|leak|output|send|display|dump|expose|disclose|what is|what's|what are)\b(?: me| us)?[^.!?|]{0,25}\b)" + secret_nouns + R"(\b)"),
      // Code and shell.
      rule("contains shell or code", 0.8, Scope::kAnywhere,
           R"((?:\bsudo |\brm -rf|\bchmod |\bwget |\bcurl |\bpowershell\b|cmd\.exe|\bbash -c|/bin/(?:ba)?sh|os\.system|\bsubprocess\b|\bexec\(|\beval\(|\bimport os\b|\bdrop table\b|\bselect \* from\b|<script|\$\(|\bprintenv\b|```|&&|\b(?:ls|cat|cd|echo|grep|rm|chmod|curl) [-/~.]))"),
      rule("asks for code", 0.85, Scope::kAnywhere,
           R"(\b(?:write|give|generate|create|show|produce|output|code)\b(?: me| us)?[^.!?|]{0,25}\b(?:code|script|program|function|exploit|malware|virus|keylogger|ransomware|sql query|regex|html|javascript|python|c\+\+)\b)"),
      rule("asks to run commands", 0.7, Scope::kAnywhere,
           R"(\b(?:run|execute|eval)\b[^.!?|]{0,20}\b(?:commands?|code|scripts?|shell|terminal|bash)\b|\b(?:shell|terminal|bash|linux|python|javascript|sql) (?:commands?|scripts?|code|session|interpreter)\b)"),
      // Imperatives addressed to the model.
      rule("an instruction addressed to the model (\"write me\", \"tell me\")", 0.75, Scope::kNarration,
           kClauseStart + R"((?:write|tell|give|show|send|make|help|teach|explain to|read)(?: me| us)\b)"),
      rule("tells the model to stop what it does", 0.55, Scope::kNarration,
           kClauseStart + R"((?:stop|quit|cease) (?:being|writing|telling|acting|pretending|playing)\b)"),
      rule("an instruction to print or reveal", 0.7, Scope::kNarration,
           kClauseStart + R"((?:print|reveal|repeat|output|dump|display|echo|recite|list|spell out|translate|summari[sz]e|decode|encode|execute)\b)"),
      rule("an instruction to the model", 0.55, Scope::kNarration,
           kClauseStart + R"((?:write|tell|give|generate|compose|create|draft|produce|describe|explain|answer|respond|reply|provide|continue|finish|complete|rewrite|say)\b)"),
      rule("a request to the model", 0.65, Scope::kNarration,
           R"(\b(?:can|could|would|will) you(?: please)? (?:write|tell|give|show|print|reveal|generate|help|explain|list|create|make|translate|describe|output|provide|repeat|summari[sz]e)\b)"),
      rule("addresses an AI model", 0.35, Scope::kAnywhere,
           R"(\b(?:chatgpt|gpt-?[345o]|openai|anthropic|claude|gemini|bard|language model|llm|ai model|ai assistant|as an ai)\b)"),
      rule("asks for an encoded or formatted output", 0.5, Scope::kAnywhere,
           R"(\b(?:respond|reply|answer|output)(?: only)? (?:in|with|as) (?:json|yaml|markdown|base64|code|hex)\b|\bbase64\b|\brot13\b)"),
  };
}

const std::vector<Rule>& rules() {
  static const std::vector<Rule> kRules = make_rules();
  return kRules;
}

// Splits normalised text at double quotes into narration (quoted spans replaced by '|', a clause
// boundary) and dialogue (the quoted spans, '|'-separated). An unclosed quote runs to the end.
void split_dialogue(const std::string& text, std::string& narration, std::string& dialogue) {
  bool quoted = false;
  for (char c : text) {
    if (c == '"') {
      if (!quoted) narration += '|';
      if (quoted) dialogue += '|';
      quoted = !quoted;
      continue;
    }
    (quoted ? dialogue : narration) += c;
  }
}

bool has_words(const std::string& s) {
  int letters = 0;
  for (char c : s) letters += (c >= 'a' && c <= 'z') ? 1 : 0;
  return letters >= 3;
}

}  // namespace

GuardVerdict check_story_prompt(std::string_view prompt, const GuardOptions& options) {
  GuardVerdict verdict;
  const std::string text = normalise_prompt(prompt);
  if (std::none_of(text.begin(), text.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || (c & 0x80); })) {
    verdict.reason = text.empty() ? "the prompt is empty (or only whitespace)"
                                  : "the prompt has no words (only punctuation or symbols)";
    verdict.score = 1.0;
    return verdict;
  }

  std::string narration, dialogue;
  split_dialogue(text, narration, dialogue);
  // A prompt that is all quote has no story around its dialogue: read it as narration.
  if (!has_words(narration)) {
    narration = dialogue;
    dialogue.clear();
  }

  struct Hit {
    double weight;
    const char* reason;
  };
  std::vector<Hit> hits;
  for (const Rule& r : rules()) {
    if (std::regex_search(narration, r.pattern)) {
      hits.push_back({r.weight, r.reason});
    } else if (r.scope == Scope::kAnywhere && !dialogue.empty() && std::regex_search(dialogue, r.pattern)) {
      hits.push_back({r.weight * options.quoted_weight, r.reason});
    }
  }
  double clear = 1.0;  // probability that no rule is right, under noisy-OR
  for (const Hit& h : hits) clear *= 1.0 - h.weight;
  if (options.classifier) {
    const double p = std::clamp(options.classifier(prompt), 0.0, 1.0);
    const double w = std::clamp(options.classifier_weight, 0.0, 1.0);
    clear *= 1.0 - w * p;
    if (w * p > 0.0) hits.push_back({w * p, "the classifier judges it an injection"});
  }
  verdict.score = 1.0 - clear;
  verdict.allowed = verdict.score < options.threshold;
  if (!verdict.allowed) {
    std::stable_sort(hits.begin(), hits.end(), [](const Hit& a, const Hit& b) { return a.weight > b.weight; });
    verdict.reason = "looks like instructions to the model, not a story opening: ";
    for (size_t i = 0; i < hits.size() && i < 2; ++i) verdict.reason += (i ? "; " : "") + std::string(hits[i].reason);
  }
  return verdict;
}

}  // namespace ponder::story
