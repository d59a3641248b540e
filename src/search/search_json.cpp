#include "search/search_json.h"

namespace ponder {

using nlohmann::json;

json selection_json(const Selection& s) {
  json j = {{"solution", s.solution}, {"value", s.value}};
  j["answer"] = s.answer ? json(*s.answer) : json(nullptr);
  return j;
}

json selections_json(const SearchResult& r, const Selection& chosen) {
  return {{"chosen", selection_json(chosen)},
          {"naive", selection_json(r.naive)},
          {"majority", selection_json(r.majority)},
          {"weighted", selection_json(r.weighted)}};
}

json solutions_json(const std::vector<Solution>& solutions) {
  json out = json::array();
  for (const Solution& s : solutions) {
    json steps = json::array();
    for (size_t i = 0; i < s.steps.size(); ++i) {
      json step = {{"text", s.steps[i]}};
      if (i < s.step_scores.size()) step["score"] = s.step_scores[i];
      steps.push_back(std::move(step));
    }
    json js = {{"node", s.node},   {"text", s.text},     {"steps", steps},
               {"score", s.score}, {"tokens", s.tokens}, {"finish_reason", to_string(s.finish)}};
    js["answer"] = s.answer ? json(*s.answer) : json(nullptr);
    out.push_back(std::move(js));
  }
  return out;
}

json usage_json(const SearchUsage& u) {
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", u.completion_tokens},
          {"discarded_tokens", u.discarded_tokens},
          {"verifier_tokens", u.verifier_tokens},
          {"verifier_tokens_if_rescored", u.verifier_tokens_if_rescored},
          {"rounds", u.rounds},
          {"seconds", u.seconds},
          {"verifier_seconds", u.verifier_seconds}};
}

}  // namespace ponder
