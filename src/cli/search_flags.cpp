#include "cli/search_flags.h"

#include <stdexcept>

#include "engine/llama_engine.h"

namespace ponder::cli {

void add_search_flags(CLI::App* cmd, SearchFlags& f) {
  cmd->add_option("--beam-width", f.search.beam_width,
                  "M: beam search keeps N/M beams and expands each M ways; DVTS runs N/M subtrees of M "
                  "candidates")
      ->check(CLI::Range(1, kMaxBranches))
      ->capture_default_str();
  cmd->add_option("--lookahead", f.search.lookahead, "beam search and DVTS: rank each step by a greedy rollout "
                  "this many steps on")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();
  cmd->add_option("--speculate", f.speculation,
                  "beam search: what idle batch rows do while a round waits for its slowest step: off (wait), "
                  "sure (sample the next steps of candidates sure to be kept) or all (of any candidate that is "
                  "done, discarding those of beams not kept); same result, up to twice the branches")
      ->check(CLI::IsMember({"off", "sure", "all"}))
      ->capture_default_str();
  cmd->add_option("--max-rounds", f.search.max_rounds, "step rounds of beam search and DVTS")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--aggregation", f.aggregation, "step scores to a solution score: last, min, prod or mean")
      ->check(CLI::IsMember({"last", "min", "prod", "mean"}))
      ->capture_default_str();
  cmd->add_option("--answer-rules", f.answer_rules,
                  "how a solution's final answer is found: rules tried in this order (boxed, final-answer, "
                  "the-answer, last-number)")
      ->capture_default_str();
  cmd->add_option("--delimiter", f.search.step_delimiter, "text that ends a step (default: a blank line, \"\\n\\n\")");
  cmd->add_option("--temperature,-t", f.search.temperature, "sampling temperature; 0 = greedy")
      ->check(CLI::Range(0.0f, 100.0f))
      ->capture_default_str();
  cmd->add_option("--top-p", f.search.top_p, "nucleus sampling threshold (0,1]")
      ->check(CLI::Range(0.0f, 1.0f))
      ->capture_default_str();
  cmd->add_option("--top-k", f.search.top_k, "keep the k most likely tokens; 0 = off")->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-tokens", f.search.max_tokens, "tokens per solution")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--system", f.system, "system prompt (models with a chat template; default: step-by-step "
                  "math with a boxed answer)");
}

ExtractOptions resolve_search_flags(SearchFlags& f) {
  if (f.search.top_p <= 0.0f) throw EngineError("--top-p must be greater than 0");
  const std::optional<Aggregation> aggregation = parse_aggregation(f.aggregation);
  if (!aggregation) throw EngineError("unknown aggregation: " + f.aggregation);
  f.search.aggregation = *aggregation;
  const std::optional<Speculation> speculation = parse_speculation(f.speculation);
  if (!speculation) throw EngineError("unknown --speculate mode: " + f.speculation);
  f.search.speculation = *speculation;
  ExtractOptions extract;
  try {
    extract.order = parse_answer_rules(f.answer_rules);
  } catch (const std::invalid_argument& e) {
    throw EngineError(std::string("--answer-rules: ") + e.what());
  }
  f.answer_rules.clear();
  for (AnswerRule r : extract.order) f.answer_rules += (f.answer_rules.empty() ? "" : ",") + to_string(r);
  return extract;
}

}  // namespace ponder::cli
