// The search flags `ponder solve` and `ponder eval` share: beam width, lookahead, rounds, score
// aggregation, answer extraction, step delimiter, sampling, tokens per solution, system prompt.
#pragma once

#include <string>

#include <CLI/CLI.hpp>

#include "search/search.h"
#include "tasks/math/answer.h"
#include "tasks/math/prompt.h"

namespace ponder::cli {

struct SearchFlags {
  SearchOptions search;
  std::string aggregation = "last";
  std::string speculation = "off";
  std::string answer_rules = "boxed,final-answer,the-answer,last-number";
  std::string system = kMathSystemPrompt;
};

void add_search_flags(CLI::App* cmd, SearchFlags& flags);

// Checks the flags and sets flags.search.aggregation and .speculation; returns the answer
// extraction they name (and rewrites answer_rules in its canonical spelling). Throws EngineError.
ExtractOptions resolve_search_flags(SearchFlags& flags);

}  // namespace ponder::cli
