// ponder eval: every problem of a dataset under every strategy and budget, into SQLite.
#include <cmath>
#include <csignal>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/engine_setup.h"
#include "cli/progress.h"
#include "cli/remote_setup.h"
#include "cli/search_flags.h"
#include "cli/verifier_setup.h"
#include "eval/dataset.h"
#include "eval/evaluate.h"
#include "eval/store.h"
#include "util/fnv1a.h"

namespace ponder::cli {
namespace {

struct EvalCommandOptions {
  std::string dataset;
  std::string model;
  std::string db;
  VerifierFlags verifiers;
  std::string strategies = "majority,best-of-n,weighted-best-of-n,beam,dvts";
  std::string budgets = "1,2,4,8,16";
  int32_t seeds = 1;
  uint64_t seed = 0;
  int64_t limit = 0;
  int32_t parallel = 1;
  SearchFlags flags;  // flags.search: the search options (strategy, n and seed set per search)
  EngineFlags engine;
};

std::vector<std::string> split_list(const std::string& list) {
  std::vector<std::string> out;
  std::stringstream in(list);
  for (std::string item; std::getline(in, item, ',');) {
    const size_t b = item.find_first_not_of(' ');
    if (b == std::string::npos) throw EngineError("empty item in list: " + list);
    out.push_back(item.substr(b, item.find_last_not_of(' ') - b + 1));
  }
  if (out.empty()) throw EngineError("empty list");
  return out;
}

std::vector<int32_t> parse_budgets(const std::string& list) {
  std::vector<int32_t> out;
  for (const std::string& item : split_list(list)) {
    size_t used = 0;
    int value = 0;
    try {
      value = std::stoi(item, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (used != item.size() || value < 1 || value > kMaxBranches) {
      throw EngineError("--budgets: " + item + " is not a whole number from 1 to " + std::to_string(kMaxBranches));
    }
    out.push_back(value);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// FNV-1a (64-bit) of a file's first and last kFingerprintBytes (all of it when it is no longer
// than both): a retrained model of the same shape has the same name and size, but other weights,
// and GGUF keeps its tensor data at the end.
constexpr std::uintmax_t kFingerprintBytes = 1 << 20;
std::string file_fingerprint(const std::string& path, std::uintmax_t size) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw EngineError("cannot read " + path);
  uint64_t h = kFnv1aBasis;
  std::vector<char> buf;
  auto hash = [&](std::uintmax_t from, std::uintmax_t count) {
    buf.resize(static_cast<size_t>(count));
    in.seekg(static_cast<std::streamoff>(from));
    if (!in.read(buf.data(), static_cast<std::streamsize>(count))) throw EngineError("cannot read " + path);
    h = fnv1a(std::string_view(buf.data(), buf.size()), h);
  };
  if (size <= 2 * kFingerprintBytes) {
    hash(0, size);
  } else {
    hash(0, kFingerprintBytes);
    hash(size - kFingerprintBytes, kFingerprintBytes);
  }
  return fmt::format("{:016x}", h);
}

// A model file as the settings know it: its name, size and fingerprint, so that the same file
// moved elsewhere still finds its results, and a different file of the same name does not (nor
// one retrained to the same size: results are never reused for other weights).
nlohmann::json model_identity(const std::string& path) {
  std::error_code ec;
  const auto size = std::filesystem::file_size(path, ec);
  if (ec) throw EngineError("cannot read " + path);
  return {{"file", std::filesystem::path(path).filename().string()}, {"bytes", size},
          {"fnv1a64", file_fingerprint(path, size)}};
}

// A served model as the settings know it: its name and size on the server (endpoints' URLs change
// from run to run; the model behind them is what the results depend on).
nlohmann::json remote_identity(const RemoteEngine& engine) {
  const RemoteModelInfo m = engine.model_info();
  return {{"remote", std::filesystem::path(m.id).filename().string()}, {"parameters", m.parameters}, {"bytes", m.bytes}};
}

// A float flag as the user wrote it (0.8, not 0.800000011920929).
double decimal(float x) { return std::round(static_cast<double>(x) * 1e6) / 1e6; }

// What changes a search's outcome: the settings a run is found by (strategies, budgets, seeds
// and --limit only say which work to do, and are not part of it). Verifiers not used are left
// out. The models' identities come from model_identity or remote_identity.
std::string settings_of(const EvalCommandOptions& o, const nlohmann::json& generator, const nlohmann::json& prm) {
  const SearchOptions& s = o.flags.search;
  nlohmann::json j = {
      {"dataset", std::filesystem::path(o.dataset).filename().string()},
      {"model", generator},
      {"system", o.flags.system},
      {"temperature", decimal(s.temperature)},
      {"top_p", decimal(s.top_p)},
      {"top_k", s.top_k},
      {"max_tokens", s.max_tokens},
      {"beam_width", s.beam_width},
      {"lookahead", s.lookahead},
      {"max_rounds", s.max_rounds},
      {"delimiter", s.step_delimiter},
      {"aggregation", to_string(s.aggregation)},
      {"answer_rules", o.flags.answer_rules},
      {"reproducible", o.engine.reproducible},
  };
  if (!prm.is_null()) {
    j["prm"] = prm;
    j["prm_format"] = o.verifiers.prm_format;
  }
  if (!o.verifiers.judge.empty()) j["judge"] = model_identity(o.verifiers.judge);
  if (!o.verifiers.confidence.empty()) j["confidence"] = o.verifiers.confidence;
  return j.dump();  // keys sorted: one text per settings
}

volatile std::sig_atomic_t g_stop = 0;

// The first Ctrl-C (or SIGTERM) asks the loop to stop after the search in progress; a second
// one ends the process at once (what finished is stored either way).
void on_signal(int sig) {
  g_stop = 1;
  std::signal(sig, SIG_DFL);
}

int run_eval_command(EvalCommandOptions o) {
  std::vector<Strategy> strategies;
  for (const std::string& name : split_list(o.strategies)) {
    const auto s = parse_strategy(name);
    if (!s) throw EngineError("unknown strategy: " + name);
    if (std::find(strategies.begin(), strategies.end(), *s) == strategies.end()) strategies.push_back(*s);
  }
  const ExtractOptions extract = resolve_search_flags(o.flags);
  check_verifier_flags(o.verifiers, strategies);
  bool step_wise = false;
  for (Strategy s : strategies) step_wise = step_wise || is_step_wise(s);

  EvalOptions eval;
  eval.strategies = strategies;
  eval.budgets = parse_budgets(o.budgets);
  eval.seeds = o.seeds;
  eval.base_seed = o.seed;
  eval.search = o.flags.search;
  eval.extract = extract;

  std::vector<DatasetProblem> problems = load_dataset(o.dataset);
  if (o.limit > 0 && static_cast<size_t>(o.limit) < problems.size()) problems.resize(static_cast<size_t>(o.limit));

  // As in solve: the unified cache measured faster for searches (BENCHMARKS.md, "Search").
  if (o.engine.kv == "auto") o.engine.kv = "unified";
  require_model_or_remote(o.model, o.verifiers.remote);
  const int32_t workers = o.parallel;
  // Beam search samples ahead with up to twice the branches where the shared cache can hold
  // them for every search (searches on one BatchingEngine see each other's free slots, so it is
  // on for all of them or for none).
  if (!o.model.empty() && int64_t{eval_branches_needed(eval)} * workers > kMaxBranches) {
    eval.search.speculation = Speculation::kOff;
  }
  const int32_t branches = eval_branches_needed(eval);
  EvalOptions round_by_round = eval;
  round_by_round.search.speculation = Speculation::kOff;
  const int32_t verifier_branches = eval_branches_needed(round_by_round);  // children sampled ahead hold no state
  std::vector<std::string> texts;
  for (const DatasetProblem& p : problems) texts.push_back(p.problem);

  // The generator: in-process, --parallel searches share one model (and one KV cache) sized for
  // all of them; remote, each search drives an engine of its own.
  std::unique_ptr<SharedModel> shared_generator;
  std::vector<std::unique_ptr<RemoteEngine>> remote_generators;
  nlohmann::json generator_id;
  if (o.model.empty()) {
    for (int32_t w = 0; w < workers; ++w) remote_generators.push_back(open_remote(o.verifiers.remote.generator, o.verifiers.remote));
    generator_id = remote_identity(*remote_generators[0]);
  } else {
    generator_id = model_identity(o.model);
    if (static_cast<int64_t>(branches) * workers > kMaxBranches) {
      throw EngineError(fmt::format("--parallel {} x {} branches per search is more than the {} an engine holds",
                                    workers, branches, kMaxBranches));
    }
    int64_t longest_prompt = 0;
    {
      auto vocab = open_vocab(o.model, o.engine);
      for (const std::string& text : texts) {
        longest_prompt = std::max(longest_prompt, static_cast<int64_t>(math_prompt(*vocab, text, o.flags.system).size()));
      }
    }
    shared_generator = std::make_unique<SharedModel>(
        open_sized(o.model, o.engine, longest_prompt * workers, branches * workers, o.flags.search.max_tokens), workers);
  }
  auto generator_for = [&](int32_t w) -> Engine& {
    return shared_generator ? shared_generator->for_worker(w) : *remote_generators.at(static_cast<size_t>(w));
  };
  const OpenVerifiers verifiers =
      open_verifiers(o.verifiers, o.engine, texts, verifier_branches, step_wise, eval.search, workers);
  nlohmann::json prm_id;
  if (!o.verifiers.prm.empty()) prm_id = model_identity(o.verifiers.prm);
  if (!verifiers.remote.empty()) prm_id = remote_identity(*verifiers.remote[0]);

  Store store(o.db);
  const int64_t run = store.run_id(settings_of(o, generator_id, prm_id));
  std::vector<ProblemRecord> records;
  for (size_t i = 0; i < problems.size(); ++i) {
    records.push_back({problems[i].id, static_cast<int64_t>(i), problems[i].level, problems[i].subject,
                       problems[i].answer});
  }
  store.add_problems(run, records);

  std::vector<EvalWorker> eval_workers;
  for (int32_t w = 0; w < workers; ++w) eval_workers.push_back({&generator_for(w), verifiers.view(w)});

  ProgressDisplay display("eval");
  EvalHooks hooks;
  hooks.on_progress = [&](const EvalProgress& p) { display.update(p.done, p.total, p.seconds, p.last); };
  hooks.stop_requested = [] { return g_stop != 0; };
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  const EvalSummary summary =
      run_eval(eval_workers, store, run, problems, [&](const DatasetProblem& p) {
        return math_prompt(generator_for(0), p.problem, o.flags.system);
      }, eval, hooks);
  std::signal(SIGINT, SIG_DFL);
  std::signal(SIGTERM, SIG_DFL);
  display.finish();

  if (summary.stopped) {
    fmt::print(stderr, "eval: interrupted; {} searches stored in {} (run {}). Run the same command again to continue.\n",
               summary.searches_run, o.db, run);
    return 130;
  }
  fmt::print(stderr, "eval: {} searches run, {} results written; {} holds {} results for run {}. See: ponder report --db {}\n",
             summary.searches_run, summary.results_written, o.db, store.count_results(run), run, o.db);
  return 0;
}

}  // namespace

Command add_eval_command(CLI::App& app) {
  auto o = std::make_shared<EvalCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "eval", "run every problem of a dataset under strategies and budgets; results into SQLite (resumable)");
  cmd->add_option("--dataset", o->dataset, "JSONL dataset: MATH-500, full MATH, GSM8K, or problem/answer lines")
      ->required();
  CLI::Option* model = cmd->add_option("--model,-m", o->model, "generator GGUF model (or --remote)");
  cmd->add_option("--db", o->db, "SQLite results database (created if missing; a second run continues it)")
      ->required();
  add_verifier_flags(cmd, o->verifiers);
  add_remote_flags(cmd, o->verifiers.remote, model, &o->verifiers.prm_remote);
  cmd->add_option("--strategies", o->strategies,
                  "comma list of majority, best-of-n, weighted-best-of-n, beam, dvts")
      ->capture_default_str();
  cmd->add_option("--budgets", o->budgets,
                  "comma list of N (samples, or beams per round); sampled strategies sample once at the "
                  "largest N and take the first n samples for each smaller budget")
      ->capture_default_str();
  cmd->add_option("--seeds", o->seeds, "repetitions of every search, with seeds --seed, --seed + 1, ...")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("--seed,-s", o->seed, "first seed")->capture_default_str();
  cmd->add_option("--limit", o->limit, "only the first N problems")->check(CLI::PositiveNumber);
  cmd->add_option("--parallel", o->parallel,
                  "searches run at once, sharing one model and KV cache (their steps decode together); "
                  "each takes its own branches")
      ->check(CLI::Range(1, kMaxBranches))
      ->capture_default_str();
  add_search_flags(cmd, o->flags);
  add_engine_flags(cmd, o->engine);
  return {cmd, [o] { return run_eval_command(*o); }};
}

}  // namespace ponder::cli
