// The JSON shape of a search's outcome, shared by `ponder solve --json` and `ponder serve`'s
// search details, so that a script reads both the same way.
#pragma once

#include <vector>

#include <nlohmann/json.hpp>

#include "search/search.h"

namespace ponder {

// {"solution": index into the solutions or -1, "value", "answer": text or null}
nlohmann::json selection_json(const Selection& selection);

// {"chosen", "naive", "majority", "weighted"}: each a selection_json.
nlohmann::json selections_json(const SearchResult& result, const Selection& chosen);

// Every finished solution, in the order they finished: node, text, steps (each {"text",
// "score" when a step verifier scored it}), score, tokens, finish_reason, answer (or null).
nlohmann::json solutions_json(const std::vector<Solution>& solutions);

// prompt_tokens, completion_tokens, verifier_tokens, verifier_tokens_if_rescored, rounds,
// seconds, verifier_seconds.
nlohmann::json usage_json(const SearchUsage& usage);

}  // namespace ponder
