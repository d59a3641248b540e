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
#include "cli/remote_setup.h"
#include "cli/search_flags.h"
#include "cli/verifier_setup.h"
#include "search/search.h"
#include "search/search_json.h"
#include "tasks/math/answer.h"
#include "tasks/math/prompt.h"

namespace ponder::cli {
namespace {

using nlohmann::json;

struct SolveOptions {
  std::string model;
  std::string problem;
  VerifierFlags verifiers;
  std::string strategy = "beam";
  std::string select;
  SearchFlags flags;  // flags.search: the search options
  std::optional<uint64_t> seed;
  bool json = false;
  std::string trace;
  EngineFlags engine;
};

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
  const ExtractOptions extract = resolve_search_flags(o.flags);
  o.flags.search.strategy = *strategy;
  o.flags.search.seed = o.seed ? *o.seed : std::random_device{}();
  if (o.problem == "-") {
    o.problem.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  }
  if (o.problem.find_first_not_of(" \t\r\n") == std::string::npos) throw EngineError("the problem is empty");
  check_verifier_flags(o.verifiers, {*strategy});
  const bool step_wise = is_step_wise(*strategy);

  // Beam search samples ahead with up to twice the branches, where an engine can hold them.
  if (branches_wanted(o.flags.search) > kMaxBranches) o.flags.search.speculation = Speculation::kOff;
  const int32_t branches = branches_wanted(o.flags.search);

  // A search forks and prunes every round, and a fork into a split stream copies it: for the
  // generator the two layouts measured within a few percent of each other (split ahead only where
  // branches grow to hundreds of tokens; BENCHMARKS.md, "Split streams ..."), so auto stays with
  // the unified cache, which holds a shared prefix once. The verifiers have --verifier-kv.
  if (o.engine.kv == "auto") o.engine.kv = "unified";

  require_model_or_remote(o.model, o.verifiers.remote);
  std::unique_ptr<Engine> generator;
  std::vector<Token> prompt;
  std::optional<KvLayout> layout;  // in-process only
  if (o.model.empty()) {
    generator = open_remote(o.verifiers.remote.generator, o.verifiers.remote);
    prompt = math_prompt(*generator, o.problem, o.flags.system);
  } else {
    auto vocab = open_vocab(o.model, o.engine);
    prompt = math_prompt(*vocab, o.problem, o.flags.system);
    vocab.reset();
    KvLayout chosen_layout;
    generator = open_sized(o.model, o.engine, static_cast<int64_t>(prompt.size()), branches,
                           o.flags.search.max_tokens, &chosen_layout);
    layout = chosen_layout;
  }

  const OpenVerifiers verifiers =
      open_verifiers(o.verifiers, o.engine, {o.problem}, branches_needed(o.flags.search), step_wise, o.flags.search);

  const SearchResult r = run_search(*generator, verifiers.view(), {o.problem, prompt}, o.flags.search,
                                    [&](const std::string& text) { return voting_answer(text, extract); });
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
  out["model"] = o.model.empty() ? endpoints_label(o.verifiers.remote.generator) : o.model;
  out["strategy"] = to_string(*strategy);
  out["seed"] = o.flags.search.seed;
  out["kv_layout"] = layout ? json(to_string(*layout)) : json(nullptr);
  out["answer"] = chosen.answer ? json(*chosen.answer) : json(nullptr);
  out["solution"] = chosen.solution >= 0 ? json(r.solutions[chosen.solution].text) : json(nullptr);
  out["selections"] = selections_json(r, chosen);
  out["solutions"] = solutions_json(r.solutions);
  out["usage"] = usage_json(r.usage);
  // The generator engine's own counters (prompt included): decode steps and how full they ran.
  const EngineStats e = generator->stats();
  out["engine"] = {{"prompt_tokens", e.prompt_tokens}, {"generated_tokens", e.generated_tokens},
                   {"decode_calls", e.decode_calls}, {"decode_seconds", e.decode_seconds},
                   {"sample_seconds", e.sample_seconds}, {"stream_moves", e.stream_moves}};
  fmt::print("{}\n", out.dump(-1, ' ', false, json::error_handler_t::replace));
  std::fflush(stdout);
  return 0;
}

}  // namespace

Command add_solve_command(CLI::App& app) {
  auto o = std::make_shared<SolveOptions>();
  CLI::App* cmd = app.add_subcommand("solve", "solve one problem with a test-time compute strategy");
  cmd->add_option("problem", o->problem, "the problem text ('-': read it from standard input)")->required();
  CLI::Option* model = cmd->add_option("--model,-m", o->model, "generator GGUF model (or --remote)");
  add_remote_flags(cmd, o->verifiers.remote, model, &o->verifiers.prm_remote);
  add_verifier_flags(cmd, o->verifiers);
  cmd->add_option("--strategy", o->strategy, "majority, best-of-n, weighted-best-of-n, beam or dvts")
      ->check(CLI::IsMember({"majority", "best-of-n", "weighted-best-of-n", "beam", "dvts"}))
      ->capture_default_str();
  cmd->add_option("--n,-n", o->flags.search.n, "budget: samples, or beams per round")
      ->check(CLI::Range(1, kMaxBranches))
      ->capture_default_str();
  add_search_flags(cmd, o->flags);
  cmd->add_option("--select", o->select,
                  "how the answer is chosen: naive (best score), majority or weighted (default: the strategy's own)")
      ->check(CLI::IsMember({"naive", "majority", "weighted"}));
  cmd->add_option("--seed,-s", o->seed, "random seed (default: random; printed with --json)");
  cmd->add_flag("--json", o->json,
                "print one JSON object: every finished solution with step scores, the selections, usage");
  cmd->add_option("--trace", o->trace, "write the whole search tree as JSON to this file");
  add_engine_flags(cmd, o->engine);
  return {cmd, [o] { return run_solve(*o); }};
}

}  // namespace ponder::cli
