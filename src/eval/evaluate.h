// The evaluation loop of `ponder eval`: every problem of a dataset under every strategy and
// budget (and seed), each search written to the results database as soon as it finishes.
//
// Majority voting, best-of-N and weighted best-of-N share one "sample" search per problem and
// seed at the largest budget: a smaller budget n takes its first n samples (in sampling order,
// so each budget is an honest n-sample run) and selects among them. Beam search and DVTS run
// once per budget. Work already in the database is never redone, so an interrupted evaluation
// run again with the same settings continues where it stopped.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "eval/dataset.h"
#include "eval/store.h"
#include "search/search.h"
#include "tasks/math/answer.h"

namespace ponder {

struct EvalOptions {
  std::vector<Strategy> strategies;
  std::vector<int32_t> budgets;  // N values, ascending and distinct
  int32_t seeds = 1;             // repetitions: search seeds base_seed, base_seed + 1, ...
  uint64_t base_seed = 0;
  // Everything but strategy, n and seed, which the loop sets for each search.
  SearchOptions search;
  ExtractOptions extract;  // how a solution's final answer is found (for voting and grading)
};

// The (strategy, budget) pairs the loop runs: DVTS needs at least one subtree of beam_width
// candidates, so it skips budgets below beam_width.
bool runs_at(Strategy strategy, int32_t budget, const SearchOptions& search);

// Live generator branches the evaluation uses at its peak (branches_wanted of its searches).
int32_t eval_branches_needed(const EvalOptions& options);

struct EvalProgress {
  int64_t done = 0;     // searches finished in this call
  int64_t total = 0;    // searches this call has to run (work already stored is not counted)
  double seconds = 0;   // since the loop started
  std::string last;     // what finished last, e.g. "test/algebra/1.json beam n=16 seed 0"
};

struct EvalHooks {
  std::function<void(const EvalProgress&)> on_progress;
  // Asked between searches; true stops the loop (what finished is stored).
  std::function<bool()> stop_requested;
};

struct EvalSummary {
  int64_t searches_run = 0;
  int64_t results_written = 0;
  bool stopped = false;  // stop_requested said so before the work was done
};

// The generator's prompt for a problem.
using PromptFn = std::function<std::vector<Token>(const DatasetProblem&)>;

// Runs the evaluation into `store` under run `run` (Store::run_id of the settings the caller
// determined). Throws what the search throws (EngineError) and StoreError; what finished before
// is stored.
EvalSummary run_eval(Engine& generator, const Verifiers& verifiers, Store& store, int64_t run,
                     const std::vector<DatasetProblem>& problems, const PromptFn& prompt_of,
                     const EvalOptions& options, const EvalHooks& hooks = {});

// What one concurrent search uses: engines and verifiers no other worker uses at the same time
// (for one model, clients of a BatchingEngine: their searches then share its decode steps).
struct EvalWorker {
  Engine* generator = nullptr;
  Verifiers verifiers;
};

// The same with a search running on each worker at once (on threads; the first worker on the
// calling thread). Searches are taken in dataset order and each is stored as it finishes;
// `prompt_of` runs on the calling thread, the hooks under a lock. With the engine in
// reproducible mode the results equal those of one worker (up to that mode's rare draw at a
// token boundary, see LlamaEngineOptions::reproducible).
EvalSummary run_eval(const std::vector<EvalWorker>& workers, Store& store, int64_t run,
                     const std::vector<DatasetProblem>& problems, const PromptFn& prompt_of,
                     const EvalOptions& options, const EvalHooks& hooks = {});

}  // namespace ponder
