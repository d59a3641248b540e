// ponder solve: one problem, a test-time compute strategy, a verifier; the chosen answer.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <iterator>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/engine_setup.h"
#include "search/search.h"
#include "tasks/math/answer.h"
#include "tasks/math/prompt.h"
#include "verify/confidence.h"
#include "verify/judge.h"
#include "verify/prm.h"

namespace ponder::cli {
namespace {

using nlohmann::json;

struct SolveOptions {
  std::string model;
  std::string problem;
  std::string prm;
  std::string prm_format = "rlhflow";
  std::string judge;
  std::string confidence;
  std::string strategy = "beam";
  std::string aggregation = "last";
  std::string select;
  std::string system = kMathSystemPrompt;
  SearchOptions search;
  std::optional<uint64_t> seed;
  bool json = false;
  std::string trace;
  EngineFlags engine;
};

// The PRM's cache, per branch: the problem and a whole solution in the PRM's own vocabulary
// (allow twice the generator's tokens), plus the format's tokens around each step (a chat
// template's turn headers run to about a dozen tokens; allow 32). Step-wise searches take at
// most max_rounds steps; a sampled solution is split afterwards, into at most one step per few
// tokens.
int64_t prm_tokens_per_branch(int64_t problem_tokens, const SearchOptions& s, bool step_wise) {
  const int64_t steps = step_wise ? s.max_rounds : std::max<int64_t>(1, s.max_tokens / 4);
  return problem_tokens + 2 * int64_t{s.max_tokens} + 32 * steps + 64;
}

json selection_json(const Selection& s) {
  json j = {{"solution", s.solution}, {"value", s.value}};
  j["answer"] = s.answer ? json(*s.answer) : json(nullptr);
  return j;
}

json tree_json(const SearchTree& tree) {
  json nodes = json::array();
  for (const SearchNode& n : tree.nodes()) {
    json j = {{"id", n.id},          {"parent", n.parent},          {"depth", n.depth},
              {"round", n.round},    {"subtree", n.subtree},        {"step", n.step},
              {"tokens", n.step_tokens}, {"status", to_string(n.status)}};
    j["score"] = n.score ? json(*n.score) : json(nullptr);
    j["selection_score"] = n.selection_score ? json(*n.selection_score) : json(nullptr);
    j["finish_reason"] = n.finish ? json(to_string(*n.finish)) : json(nullptr);
    if (!n.lookahead.empty()) j["lookahead"] = n.lookahead;
    nodes.push_back(std::move(j));
  }
  return {{"nodes", nodes}};
}

void write_json_file(const std::string& path, const json& j) {
  std::ofstream out(path);
  if (!out) throw EngineError("cannot write " + path);
  out << j.dump(1, ' ', false, json::error_handler_t::replace) << "\n";
  if (!out) throw EngineError("cannot write " + path);
}

int run_solve(SolveOptions o) {
  const std::optional<Strategy> strategy = parse_strategy(o.strategy);
  if (!strategy) throw EngineError("unknown strategy: " + o.strategy);
  const std::optional<Aggregation> aggregation = parse_aggregation(o.aggregation);
  if (!aggregation) throw EngineError("unknown aggregation: " + o.aggregation);
  o.search.strategy = *strategy;
  o.search.aggregation = *aggregation;
  o.search.seed = o.seed ? *o.seed : std::random_device{}();
  if (o.problem == "-") {
    o.problem.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  if (o.problem.find_first_not_of(" \t\r\n") == std::string::npos) throw EngineError("the problem is empty");
  if (!o.prm.empty() && !o.judge.empty()) throw EngineError("give --prm or --judge, not both");
  if (!o.judge.empty() && !o.confidence.empty()) throw EngineError("give --judge or --confidence, not both");
  // Check the strategy's needs before loading anything heavy.
  const bool step_wise = is_step_wise(*strategy);
  if (step_wise && o.prm.empty()) throw EngineError(o.strategy + " needs a PRM (--prm)");
  if ((*strategy == Strategy::kBestOfN || *strategy == Strategy::kWeightedBestOfN) && o.prm.empty() &&
      o.judge.empty() && o.confidence.empty()) {
    throw EngineError(o.strategy + " needs a verifier (--prm, --judge or --confidence)");
  }
  const PrmFormat prm_format = o.prm.empty() ? PrmFormat{} : PrmFormat::named(o.prm_format);

  const int32_t branches = branches_needed(o.search);

  // A search forks and prunes every round, and its branches finish their steps at different
  // times: with split streams llama.cpp then cuts each decode call into many small compute steps
  // (only consecutive sequence ids share one), and a fork copies a whole stream. The unified
  // cache measured faster for both the generator and the PRM (BENCHMARKS.md, "Search").
  if (o.engine.kv == "auto") o.engine.kv = "unified";

  auto vocab = open_vocab(o.model, o.engine);
  const std::vector<Token> prompt = math_prompt(*vocab, o.problem, o.system);
  vocab.reset();
  KvLayout layout;
  auto generator = open_sized(o.model, o.engine, static_cast<int64_t>(prompt.size()), branches,
                              o.search.max_tokens, &layout);

  std::unique_ptr<Engine> verifier_engine;
  std::unique_ptr<StepVerifier> prm;
  std::unique_ptr<OutcomeVerifier> outcome;
  if (!o.prm.empty()) {
    auto prm_vocab = open_vocab(o.prm, o.engine);
    const int64_t problem_tokens = static_cast<int64_t>(prm_vocab->tokenize(o.problem, true, true).size());
    prm_vocab.reset();
    verifier_engine = open_sized(o.prm, o.engine, 0, std::min(branches + 1, kMaxBranches),
                                 prm_tokens_per_branch(problem_tokens, o.search, step_wise));
    prm = std::make_unique<ProcessRewardModel>(*verifier_engine, prm_format);
  } else if (!o.judge.empty()) {
    auto judge_vocab = open_vocab(o.judge, o.engine);
    const int64_t problem_tokens = static_cast<int64_t>(judge_vocab->tokenize(o.problem, true, true).size());
    judge_vocab.reset();
    verifier_engine = open_sized(o.judge, o.engine, problem_tokens + 128, std::min(o.search.n, kMaxBranches),
                                 o.search.max_tokens + 64);
    outcome = std::make_unique<LlmJudge>(*verifier_engine);
  }
  if (o.confidence == "mean") {
    outcome = std::make_unique<MeanLogprobConfidence>();
  } else if (o.confidence == "lowest-group") {
    if (o.search.top_logprobs == 0) o.search.top_logprobs = 5;
    outcome = std::make_unique<LowestGroupConfidence>();
  }

  const SearchResult r = run_search(*generator, {prm.get(), outcome.get()}, {o.problem, prompt}, o.search,
                                    [](const std::string& text) -> std::optional<std::string> {
                                      const auto a = extract_answer(text);
                                      if (!a) return std::nullopt;
                                      return normalize_answer(*a);
                                    });
  Selection chosen = r.chosen;
  if (o.select == "naive") chosen = r.naive;
  if (o.select == "majority") chosen = r.majority;
  if (o.select == "weighted") chosen = r.weighted;
  // Votes select nothing when no solution has an answer: show the best-scored (or first) one.
  if (chosen.solution < 0) chosen = r.naive;

  if (!o.trace.empty()) write_json_file(o.trace, tree_json(r.tree));

  if (!o.json) {
    if (chosen.solution < 0) {
      fmt::print("(no solution finished)\n");
    } else {
      fmt::print("{}\n\nanswer: {}\n", r.solutions[chosen.solution].text,
                 chosen.answer ? *chosen.answer : std::string("(none)"));
    }
    std::fflush(stdout);
    return 0;
  }

  json out;
  out["model"] = o.model;
  out["strategy"] = to_string(*strategy);
  out["seed"] = o.search.seed;
  out["kv_layout"] = to_string(layout);
  out["answer"] = chosen.answer ? json(*chosen.answer) : json(nullptr);
  out["solution"] = chosen.solution >= 0 ? json(r.solutions[chosen.solution].text) : json(nullptr);
  out["selections"] = {{"chosen", selection_json(chosen)},
                       {"naive", selection_json(r.naive)},
                       {"majority", selection_json(r.majority)},
                       {"weighted", selection_json(r.weighted)}};
  json solutions = json::array();
  for (const Solution& s : r.solutions) {
    json steps = json::array();
    for (size_t i = 0; i < s.steps.size(); ++i) {
      json step = {{"text", s.steps[i]}};
      if (i < s.step_scores.size()) step["score"] = s.step_scores[i];
      steps.push_back(std::move(step));
    }
    json js = {{"node", s.node},   {"text", s.text},     {"steps", steps},
               {"score", s.score}, {"tokens", s.tokens}, {"finish_reason", to_string(s.finish)}};
    js["answer"] = s.answer ? json(*s.answer) : json(nullptr);
    solutions.push_back(std::move(js));
  }
  out["solutions"] = std::move(solutions);
  out["usage"] = {{"prompt_tokens", r.usage.prompt_tokens},
                  {"completion_tokens", r.usage.completion_tokens},
                  {"verifier_tokens", r.usage.verifier_tokens},
                  {"verifier_tokens_if_rescored", r.usage.verifier_tokens_if_rescored},
                  {"rounds", r.usage.rounds},
                  {"seconds", r.usage.seconds},
                  {"verifier_seconds", r.usage.verifier_seconds}};
  fmt::print("{}\n", out.dump(-1, ' ', false, json::error_handler_t::replace));
  std::fflush(stdout);
  return 0;
}

}  // namespace

Command add_solve_command(CLI::App& app) {
  auto o = std::make_shared<SolveOptions>();
  CLI::App* cmd = app.add_subcommand("solve", "solve one problem with a test-time compute strategy");
  cmd->add_option("problem", o->problem, "the problem text ('-': read it from standard input)")->required();
  cmd->add_option("--model,-m", o->model, "generator GGUF model")->required();
  cmd->add_option("--prm", o->prm, "process reward model GGUF (scores each step)");
  cmd->add_option("--prm-format", o->prm_format,
                  "PRM input format: rlhflow, math-shepherd, or a JSON file of PrmFormat fields")
      ->capture_default_str();
  cmd->add_option("--judge", o->judge, "LLM-as-judge GGUF (scores finished solutions by P(yes))");
  cmd->add_option("--confidence", o->confidence,
                  "score finished solutions by the generator's own confidence: mean (geometric-mean "
                  "token probability) or lowest-group (DeepConf)")
      ->check(CLI::IsMember({"mean", "lowest-group"}));
  cmd->add_option("--strategy", o->strategy, "majority, best-of-n, weighted-best-of-n, beam or dvts")
      ->check(CLI::IsMember({"majority", "best-of-n", "weighted-best-of-n", "beam", "dvts"}))
      ->capture_default_str();
  cmd->add_option("--n,-n", o->search.n, "budget: samples, or beams per round")
      ->check(CLI::Range(1, kMaxBranches))
      ->capture_default_str();
  cmd->add_option("--beam-width", o->search.beam_width, "M: beam search keeps N/M beams and expands each M ways; "
                  "DVTS runs N/M subtrees of M candidates")
      ->check(CLI::Range(1, kMaxBranches))
      ->capture_default_str();
  cmd->add_option("--lookahead", o->search.lookahead, "rank each step by a greedy rollout this many steps on")
      ->check(CLI::Range(0, 64))
      ->capture_default_str();
  cmd->add_option("--max-rounds", o->search.max_rounds, "step rounds of beam search and DVTS")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--aggregation", o->aggregation, "step scores to a solution score: last, min, prod or mean")
      ->check(CLI::IsMember({"last", "min", "prod", "mean"}))
      ->capture_default_str();
  cmd->add_option("--select", o->select,
                  "how the answer is chosen: naive (best score), majority or weighted (default: the strategy's own)")
      ->check(CLI::IsMember({"naive", "majority", "weighted"}));
  cmd->add_option("--delimiter", o->search.step_delimiter, "text that ends a step")->capture_default_str();
  cmd->add_option("--temperature,-t", o->search.temperature, "sampling temperature; 0 = greedy")
      ->check(CLI::Range(0.0f, 100.0f))
      ->capture_default_str();
  cmd->add_option("--top-p", o->search.top_p, "nucleus sampling threshold (0,1]")
      ->check(CLI::Range(0.0f, 1.0f))
      ->capture_default_str();
  cmd->add_option("--top-k", o->search.top_k, "keep the k most likely tokens; 0 = off")->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-tokens", o->search.max_tokens, "tokens per solution")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--seed,-s", o->seed, "random seed (default: random; printed with --json)");
  cmd->add_option("--system", o->system, "system prompt (models with a chat template; default: step-by-step "
                  "math with a boxed answer)");
  cmd->add_flag("--json", o->json,
                "print one JSON object: every finished solution with step scores, the selections, usage");
  cmd->add_option("--trace", o->trace, "write the whole search tree as JSON to this file");
  add_engine_flags(cmd, o->engine);
  return {cmd, [o] {
    if (o->search.top_p <= 0.0f) throw EngineError("--top-p must be greater than 0");
    return run_solve(*o);
  }};
}

}  // namespace ponder::cli
