// A small results database with known contents, for the tests of ponder report (library and CLI).
//
// Problems p1, p2 (level 1) and p3, p4 (level 3); seeds 0 and 1: a complete cell has 8
// (problem, seed) pairs. Correct answers, by strategy and budget:
//   majority (own selection: majority), budgets 1, 2, 4; budget 4 lacks p4 seed 1 (7 pairs):
//     N=1  majority p1/0 p1/1 p2/0            naive p1/0        weighted none
//     N=2  majority p1/* p2/* p3/0            naive p1/*        weighted p1/* p2/*
//     N=4  majority p1/* p2/* p3/*            naive p1/* p2/0   weighted p1/* p2/* p3/0
//   beam (own selection: naive), budgets 2 and 4 only:
//     N=2  naive p1/* p3/0                    majority p1/*     weighted p1/* p2/*
//     N=4  naive p1/* p2/* p3/* p4/0          majority all      weighted p1/* p2/* p3/*
// Cost of a pair: completion tokens 100 N + 10 seed, verifier tokens 50 N (beam only),
// seconds N + 0.5 seed.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "eval/store.h"

namespace ponder::testing {

// As `ponder eval` writes them: models by file name and size; null or "": not in use.
inline constexpr const char* kKnownSettings =
    R"({"confidence":"","dataset":"math500.jsonl","delimiter":"\n\n","judge":null,"max_tokens":512,)"
    R"("model":{"bytes":494000000,"file":"qwen-0.5b.gguf"},"prm":{"bytes":1544000000,"file":"prm-1.5b.gguf"},)"
    R"("search":{"beam_width":4},"temperature":0.800000011920929})";

// Writes `strategy` at `budget` for each "problem/seed" in `pairs`; a selection is correct for the
// pairs listed for it ("p1/*": both seeds of p1; "*": every pair).
inline void add_cell(Store& store, int64_t run, const std::string& strategy, const std::string& chosen, int64_t budget,
                     const std::vector<std::string>& pairs, const std::set<std::string>& naive,
                     const std::set<std::string>& weighted, const std::set<std::string>& majority) {
  auto in = [](const std::set<std::string>& correct, const std::string& pair) {
    const std::string any_seed = pair.substr(0, pair.find('/')) + "/*";
    return correct.count(pair) > 0 || correct.count(any_seed) > 0 || correct.count("*") > 0;
  };
  std::vector<ResultRecord> results;
  for (const std::string& pair : pairs) {
    ResultRecord r;
    r.problem_id = pair.substr(0, pair.find('/'));
    r.seed = std::stoll(pair.substr(pair.find('/') + 1));
    r.strategy = strategy;
    r.budget = budget;
    r.chosen = chosen;
    r.naive = {std::string("1"), in(naive, pair)};
    r.weighted = {std::string("1"), in(weighted, pair)};
    r.majority = {std::string("1"), in(majority, pair)};
    r.prompt_tokens = 40;
    r.completion_tokens = 100 * budget + 10 * r.seed;
    r.verifier_tokens = strategy == "beam" ? 50 * budget : 0;
    r.seconds = static_cast<double>(budget) + 0.5 * static_cast<double>(r.seed);
    results.push_back(r);
  }
  store.write(run, nullptr, results);
}

// Adds the run described above to the database at `path`; returns its id.
inline int64_t write_known_results(const std::string& path, const std::string& settings = kKnownSettings) {
  Store store(path);
  const int64_t run = store.run_id(settings);
  store.add_problems(run, {{"p1", 0, 1, "Algebra", "1"},
                           {"p2", 1, 1, "Algebra", "2"},
                           {"p3", 2, 3, "Geometry", "3"},
                           {"p4", 3, 3, "Geometry", "4"}});
  const std::vector<std::string> all = {"p1/0", "p1/1", "p2/0", "p2/1", "p3/0", "p3/1", "p4/0", "p4/1"};
  const std::vector<std::string> all_but_p4_1(all.begin(), all.end() - 1);
  add_cell(store, run, "majority", "majority", 1, all, {"p1/0"}, {}, {"p1/0", "p1/1", "p2/0"});
  add_cell(store, run, "majority", "majority", 2, all, {"p1/*"}, {"p1/*", "p2/*"}, {"p1/*", "p2/*", "p3/0"});
  add_cell(store, run, "majority", "majority", 4, all_but_p4_1, {"p1/*", "p2/0"}, {"p1/*", "p2/*", "p3/0"},
           {"p1/*", "p2/*", "p3/*"});
  add_cell(store, run, "beam", "naive", 2, all, {"p1/*", "p3/0"}, {"p1/*", "p2/*"}, {"p1/*"});
  add_cell(store, run, "beam", "naive", 4, all, {"p1/*", "p2/*", "p3/*", "p4/0"}, {"p1/*", "p2/*", "p3/*"}, {"*"});
  return run;
}

}  // namespace ponder::testing
