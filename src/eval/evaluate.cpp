#include "eval/evaluate.h"

#include <algorithm>
#include <chrono>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "tasks/math/answer.h"
#include "tasks/math/grade.h"
#include "util/fnv1a.h"

namespace ponder {
namespace {

bool is_sampled(Strategy s) {
  return s == Strategy::kMajority || s == Strategy::kBestOfN || s == Strategy::kWeightedBestOfN;
}

// The search a strategy's results come from (the `search` column).
const char* search_kind(Strategy s) { return is_sampled(s) ? "sample" : to_string(s); }

// The selection each strategy reports as its answer (as SearchResult::chosen does).
const char* own_selection(Strategy s) {
  switch (s) {
    case Strategy::kMajority: return "majority";
    case Strategy::kBestOfN: return "naive";
    default: return "weighted";
  }
}

// Grades answers against one problem's gold answer, each distinct answer once.
class Grader {
 public:
  explicit Grader(const std::string& gold) : gold_(gold) {}
  bool operator()(const std::optional<std::string>& answer) {
    if (!answer) return false;
    auto it = cache_.find(*answer);
    if (it == cache_.end()) it = cache_.emplace(*answer, grade_answer(gold_, *answer).equivalent).first;
    return it->second;
  }

 private:
  const std::string& gold_;
  std::map<std::string, bool> cache_;
};

SearchRecord record_search(const SearchResult& r, const std::string& problem_id, const char* kind, int64_t budget,
                           int64_t seed, const ExtractOptions& extract, Grader& grade) {
  SearchRecord s;
  s.problem_id = problem_id;
  s.search = kind;
  s.budget = budget;
  s.seed = seed;
  s.prompt_tokens = r.usage.prompt_tokens;
  s.completion_tokens = r.usage.completion_tokens;
  s.verifier_tokens = r.usage.verifier_tokens;
  s.rounds = r.usage.rounds;
  s.seconds = r.usage.seconds;
  s.verifier_seconds = r.usage.verifier_seconds;
  for (const Solution& sol : r.solutions) {
    CompletionRecord c;
    c.text = sol.text;
    c.answer = extract_answer(sol.text, extract);
    c.correct = grade(c.answer);
    c.score = sol.score;
    c.step_scores = sol.step_scores;
    c.tokens = sol.tokens;
    c.finish = to_string(sol.finish);
    s.completions.push_back(std::move(c));
  }
  return s;
}

// What `strategy` at `budget` answered, from a stored search: a sample search's first `budget`
// samples, or a beam/DVTS search's solutions. Votes group answers by normalize_answer (as the
// search does); a selection reports its representative solution's answer and correctness.
ResultRecord result_from(const SearchRecord& s, Strategy strategy, int64_t budget) {
  const bool sampled = is_sampled(strategy);
  const size_t n = sampled ? std::min(static_cast<size_t>(budget), s.completions.size()) : s.completions.size();
  std::vector<Ballot> ballots;
  int64_t tokens = 0;
  for (size_t i = 0; i < n; ++i) {
    const CompletionRecord& c = s.completions[i];
    Ballot ballot;
    if (c.answer) ballot.answer = normalize_answer(*c.answer);
    ballot.score = c.score;
    ballots.push_back(std::move(ballot));
    tokens += c.tokens;
  }
  auto pick = [&](const Selection& sel) {
    SelectionRecord out;
    if (sel.solution >= 0) {
      out.answer = s.completions[static_cast<size_t>(sel.solution)].answer;
      out.correct = s.completions[static_cast<size_t>(sel.solution)].correct;
    }
    return out;
  };
  ResultRecord r;
  r.problem_id = s.problem_id;
  r.strategy = to_string(strategy);
  r.budget = budget;
  r.seed = s.seed;
  r.naive = pick(select_naive(ballots));
  r.weighted = pick(select_weighted(ballots));
  r.majority = pick(select_majority(ballots));
  r.chosen = own_selection(strategy);
  r.prompt_tokens = s.prompt_tokens;
  // A sub-sampled budget pays for its own samples; its share of the verifier's work and of the
  // time is pro rata (the samples were scored and decoded together).
  const double share = sampled && s.budget > 0 ? static_cast<double>(n) / static_cast<double>(s.budget) : 1.0;
  r.completion_tokens = sampled ? tokens : s.completion_tokens;
  r.verifier_tokens = static_cast<int64_t>(static_cast<double>(s.verifier_tokens) * share + 0.5);
  r.seconds = s.seconds * share;
  return r;
}

// The search's seed: the eval's seed mixed with the problem's id (FNV-1a), so that problems
// sample independently. With the seed alone, every problem's k-th sample would draw the same
// random numbers, and a draw that misleads one problem would tend to mislead them all.
uint64_t search_seed(int64_t seed, const std::string& problem_id) {
  return fnv1a(problem_id) ^ static_cast<uint64_t>(seed);
}

// One unit of work for a problem and seed: the sample search with the results it feeds, or one
// beam/DVTS search at one budget.
struct Unit {
  Strategy strategy;            // for "sample": the first sampled strategy
  int32_t budget;               // the search's N
  bool needs_search;            // false: derived from a sample search already stored
  std::vector<std::pair<Strategy, int32_t>> results;
};

std::vector<Unit> units_for(Store& store, int64_t run, const std::string& problem_id, int64_t seed,
                            const EvalOptions& o) {
  std::vector<Unit> units;
  const int32_t largest = o.budgets.back();
  Unit sample{Strategy::kMajority, largest, true, {}};
  for (Strategy s : o.strategies) {
    if (!is_sampled(s)) continue;
    for (int32_t b : o.budgets) {
      if (!store.has_result(run, problem_id, to_string(s), b, seed)) sample.results.emplace_back(s, b);
    }
  }
  if (!sample.results.empty()) {
    int32_t need = 0;
    for (const auto& [s, b] : sample.results) need = std::max(need, b);
    sample.needs_search = !store.find_search(run, problem_id, "sample", seed, need);
    units.push_back(std::move(sample));
  }
  for (Strategy s : o.strategies) {
    if (is_sampled(s)) continue;
    for (int32_t b : o.budgets) {
      if (runs_at(s, b, o.search) && !store.has_result(run, problem_id, to_string(s), b, seed)) {
        units.push_back({s, b, true, {{s, b}}});
      }
    }
  }
  return units;
}

}  // namespace

bool runs_at(Strategy strategy, int32_t budget, const SearchOptions& search) {
  return strategy != Strategy::kDvts || budget >= search.beam_width;
}

int32_t eval_branches_needed(const EvalOptions& options) {
  int32_t most = 0;
  for (Strategy s : options.strategies) {
    for (int32_t b : options.budgets) {
      if (!runs_at(s, b, options.search)) continue;
      SearchOptions o = options.search;
      o.strategy = s;
      o.n = b;
      if (!is_step_wise(s)) o.lookahead = 0;
      most = std::max(most, branches_wanted(o));
    }
  }
  return most;
}

namespace {

// One search to run (or a sample search's results to derive) for a problem and seed.
struct Job {
  size_t problem;
  int64_t seed;
  Unit unit;
};

}  // namespace

EvalSummary run_eval(Engine& generator, const Verifiers& verifiers, Store& store, int64_t run,
                     const std::vector<DatasetProblem>& problems, const PromptFn& prompt_of,
                     const EvalOptions& options, const EvalHooks& hooks) {
  return run_eval(std::vector<EvalWorker>{{&generator, verifiers}}, store, run, problems, prompt_of, options, hooks);
}

EvalSummary run_eval(const std::vector<EvalWorker>& workers, Store& store, int64_t run,
                     const std::vector<DatasetProblem>& problems, const PromptFn& prompt_of,
                     const EvalOptions& options, const EvalHooks& hooks) {
  if (workers.empty()) throw EngineError("no engine to evaluate with");
  if (options.strategies.empty()) throw EngineError("no strategies to evaluate");
  if (options.budgets.empty()) throw EngineError("no budgets to evaluate");
  if (!std::is_sorted(options.budgets.begin(), options.budgets.end()) ||
      std::adjacent_find(options.budgets.begin(), options.budgets.end()) != options.budgets.end() ||
      options.budgets.front() < 1) {
    throw EngineError("budgets must be positive, ascending and distinct");
  }
  if (options.seeds < 1) throw EngineError("seeds must be at least 1");

  // What is missing, in dataset order; the prompts of the problems it concerns.
  std::vector<Job> jobs;
  std::vector<std::optional<SearchProblem>> prompts(problems.size());
  EvalProgress progress;
  for (size_t i = 0; i < problems.size(); ++i) {
    for (int32_t k = 0; k < options.seeds; ++k) {
      const int64_t seed = static_cast<int64_t>(options.base_seed) + k;
      for (Unit& u : units_for(store, run, problems[i].id, seed, options)) {
        if (u.needs_search) {
          ++progress.total;
          if (!prompts[i]) prompts[i] = SearchProblem{problems[i].problem, prompt_of(problems[i])};
        }
        jobs.push_back({i, seed, std::move(u)});
      }
    }
  }

  // Workers take jobs in order; searches run in parallel, the store and the hooks are used by
  // one worker at a time.
  const auto start = std::chrono::steady_clock::now();
  std::mutex lock;
  size_t next = 0;
  bool stopping = false;
  std::exception_ptr failure;
  EvalSummary summary;
  auto work = [&](const EvalWorker& worker) {
    while (true) {
      std::unique_lock<std::mutex> held(lock);
      if (stopping || next == jobs.size()) return;
      const Job& job = jobs[next];
      if (job.unit.needs_search && hooks.stop_requested && hooks.stop_requested()) {
        stopping = true;
        summary.stopped = true;
        return;
      }
      ++next;
      const DatasetProblem& p = problems[job.problem];
      const Unit& u = job.unit;
      const char* kind = search_kind(u.strategy);
      Grader grade(p.answer);
      std::optional<SearchRecord> record;
      try {
        if (u.needs_search) {
          held.unlock();
          SearchOptions o = options.search;
          o.strategy = is_sampled(u.strategy) ? Strategy::kMajority : u.strategy;
          if (!is_step_wise(o.strategy)) o.lookahead = 0;
          o.n = u.budget;
          o.seed = search_seed(job.seed, p.id);
          const SearchResult r = run_search(*worker.generator, worker.verifiers, *prompts[job.problem], o,
                                            [&](const std::string& text) {
                                              return voting_answer(text, options.extract);
                                            });
          record = record_search(r, p.id, kind, u.budget, job.seed, options.extract, grade);
          held.lock();
          ++summary.searches_run;
        } else {
          int32_t need = 0;
          for (const auto& [s, b] : u.results) need = std::max(need, b);
          record = store.find_search(run, p.id, kind, job.seed, need);
        }
        std::vector<ResultRecord> results;
        for (const auto& [s, b] : u.results) results.push_back(result_from(*record, s, b));
        store.write(run, u.needs_search ? &*record : nullptr, results);
        summary.results_written += static_cast<int64_t>(results.size());
        if (u.needs_search) {
          ++progress.done;
          progress.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
          progress.last = p.id + " " + kind + " n=" + std::to_string(u.budget) + " seed " + std::to_string(job.seed);
          if (hooks.on_progress) hooks.on_progress(progress);
        }
      } catch (...) {
        if (!held.owns_lock()) held.lock();
        if (!failure) failure = std::current_exception();
        stopping = true;
        return;
      }
    }
  };
  std::vector<std::thread> threads;
  for (size_t w = 1; w < workers.size(); ++w) threads.emplace_back(work, std::cref(workers[w]));
  work(workers[0]);
  for (std::thread& t : threads) t.join();
  if (failure) std::rethrow_exception(failure);
  return summary;
}

}  // namespace ponder
