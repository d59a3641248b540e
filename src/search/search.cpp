#include "search/search.h"

#include <algorithm>

#include "search/search_run.h"

namespace ponder {

const char* to_string(Strategy strategy) {
  switch (strategy) {
    case Strategy::kMajority: return "majority";
    case Strategy::kBestOfN: return "best-of-n";
    case Strategy::kWeightedBestOfN: return "weighted-best-of-n";
    case Strategy::kBeam: return "beam";
    case Strategy::kDvts: return "dvts";
  }
  return "unknown";
}

std::optional<Strategy> parse_strategy(const std::string& name) {
  for (Strategy s : {Strategy::kMajority, Strategy::kBestOfN, Strategy::kWeightedBestOfN, Strategy::kBeam,
                     Strategy::kDvts}) {
    if (name == to_string(s)) return s;
  }
  return std::nullopt;
}

const char* to_string(Speculation s) {
  switch (s) {
    case Speculation::kOff: return "off";
    case Speculation::kSure: return "sure";
    case Speculation::kAll: return "all";
  }
  return "?";
}

std::optional<Speculation> parse_speculation(const std::string& name) {
  for (Speculation s : {Speculation::kOff, Speculation::kSure, Speculation::kAll}) {
    if (name == to_string(s)) return s;
  }
  return std::nullopt;
}

bool is_step_wise(Strategy s) { return s == Strategy::kBeam || s == Strategy::kDvts; }

bool speculates(const SearchOptions& o) {
  return o.strategy == Strategy::kBeam && o.speculation != Speculation::kOff && o.lookahead == 0;
}

int32_t branches_needed(const SearchOptions& o) {
  const int32_t live = o.strategy == Strategy::kDvts ? std::max(1, o.n / o.beam_width) * o.beam_width : o.n;
  return o.lookahead > 0 ? 2 * live : live;  // the rollouts fork every candidate
}

int32_t branches_wanted(const SearchOptions& o) {
  // Children sampled ahead hold at most N more branches (see SearchOptions::speculation).
  return speculates(o) ? 2 * branches_needed(o) : branches_needed(o);
}

namespace {

void check(const Verifiers& verifiers, const SearchProblem& problem, const SearchOptions& o) {
  const std::string name = to_string(o.strategy);
  if (o.n < 1) throw EngineError("n must be at least 1");
  if (o.beam_width < 1) throw EngineError("beam width must be at least 1");
  if (o.lookahead < 0) throw EngineError("lookahead must not be negative");
  if (o.max_rounds < 1) throw EngineError("max rounds must be at least 1");
  if (o.max_tokens < 1) throw EngineError("max tokens must be at least 1");
  if (o.step_tokens < 0) throw EngineError("step tokens must not be negative");
  if (o.step_delimiter.empty() && !o.step_end && o.step_tokens == 0) {
    throw EngineError("the step delimiter must not be empty");
  }
  if (problem.prompt.empty()) throw EngineError("the prompt is empty");
  if (is_step_wise(o.strategy) && !verifiers.step) {
    throw EngineError(name + " needs a step verifier (a PRM)");
  }
  if (o.lookahead > 0 && !is_step_wise(o.strategy)) {
    throw EngineError("lookahead applies to beam search and DVTS only");
  }
  if ((o.strategy == Strategy::kBestOfN || o.strategy == Strategy::kWeightedBestOfN) && !verifiers.step &&
      !verifiers.outcome) {
    throw EngineError(name + " needs a verifier");
  }
}

}  // namespace

SearchResult run_search(Engine& generator, const Verifiers& verifiers, const SearchProblem& problem,
                        const SearchOptions& options, const AnswerFn& answer_of) {
  check(verifiers, problem, options);
  const int32_t needed = branches_needed(options);
  if (needed > generator.free_slots()) {
    throw EngineError("this search needs " + std::to_string(needed) + " live branches, the engine has " +
                      std::to_string(generator.free_slots()) + " free");
  }
  SearchOptions o = options;
  if (speculates(o) && branches_wanted(o) > generator.free_slots()) o.speculation = Speculation::kOff;
  detail::SearchRun run(generator, verifiers, problem, o, answer_of);
  switch (options.strategy) {
    case Strategy::kBeam: return detail::beam_search(run);
    case Strategy::kDvts: return detail::dvts(run);
    default: return detail::sample_n(run);
  }
}

}  // namespace ponder
