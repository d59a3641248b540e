// Test-time compute strategies: spend a budget of samples and search steps on one problem and
// pick the best answer (the strategies of Snell et al. 2024 and of Hugging Face's "Scaling
// test-time compute with open models").
//
// A step ends at the step delimiter ("\n\n" by default), or where SearchOptions::step_end says:
// precisely, at the first token whose text completes the delimiter (makes step_end answer), so a
// step's text is exactly its tokens' text and the steps of a solution concatenate to its text. All live branches of a search decode together in one
// generate() call of the engine; the verifier scores each new step once, incrementally.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/engine.h"
#include "search/selection.h"
#include "search/tree.h"
#include "verify/verifier.h"

namespace ponder {

enum class Strategy {
  kMajority,          // N independent samples; the most frequent answer
  kBestOfN,           // N samples scored by a verifier; the best one's answer
  kWeightedBestOfN,   // N samples; the answer with the largest summed score
  kBeam,              // step-level beam search guided by a step verifier (PRM)
  kDvts,              // diverse verifier tree search: N/M independent beams of width M
};
const char* to_string(Strategy strategy);
std::optional<Strategy> parse_strategy(const std::string& name);

// What beam search (without lookahead) does with the rows of the batch that would idle while a
// round waits for its slowest candidates: sample the children of candidates that are done (as
// many as a kept beam would get, with the seeds they would get), so that the next round's steps
// are under way when the round is judged. The result is the same in every mode.
enum class Speculation {
  kOff,   // round by round: idle rows wait
  kSure,  // only children of candidates sure to be kept: those that the candidates still
          // sampling could not push out of the best N/M, in a round that cannot end the search.
          // Nothing sampled ahead is discarded.
  kAll,   // children of any candidate that is done, best scored first; those of beams the round
          // does not keep are discarded (SearchUsage::discarded_tokens)
};
const char* to_string(Speculation speculation);
std::optional<Speculation> parse_speculation(const std::string& name);

// How far a running search is, for progress displays (SearchOptions::on_progress).
struct SearchProgress {
  int32_t rounds = 0;              // step rounds begun (1 for sampled strategies)
  int32_t finished = 0;            // solutions finished so far (sampled: completions done)
  int32_t target = 0;              // solutions the search aims for (N)
  int64_t completion_tokens = 0;   // generator tokens sampled so far (steps sampled ahead too)
  double seconds = 0.0;            // since the search began
};

// Defaults are those of the Hugging Face study.
struct SearchOptions {
  Strategy strategy = Strategy::kBeam;
  int32_t n = 4;              // budget: samples, or beams kept live per round
  int32_t beam_width = 4;     // M: beam search keeps N/M beams and expands each M ways;
                              // DVTS runs N/M subtrees of M candidates each (N/M at least 1)
  int32_t lookahead = 0;      // rank a candidate step by a greedy rollout this many steps on
  // Beam search without lookahead: sampling ahead on idle rows (see Speculation). Any mode
  // but kOff holds up to twice the live branches (engine memory). kAll also pays for the
  // discarded children, which costs more than it saves where a decode step's cost grows with
  // its rows, as on the CPUs measured (BENCHMARKS.md, "Search").
  Speculation speculation = Speculation::kOff;
  int32_t max_rounds = 40;    // step rounds; the last one generates to the end
  Aggregation aggregation = Aggregation::kLast;
  std::string step_delimiter = "\n\n";
  // When set, decides where a step ends in place of step_delimiter (which may then be empty),
  // for steps no fixed string delimits, such as sentences (ponder::story::first_sentence_end).
  // Called with the step's text so far after each token; a value ends the step with that token
  // (the offset itself is not used: the step keeps the whole token, and what it holds past the
  // offset stays in this step). The same contract as StopParams::stop_when: it must not throw
  // and may be called from the engine's thread.
  std::function<std::optional<size_t>(std::string_view step_text)> step_end;
  // When positive, a step is this many tokens (fixed-size chunks), in place of the delimiter
  // and step_end; the last step of a solution may be shorter.
  int32_t step_tokens = 0;
  int32_t max_tokens = 2048;  // per solution
  float temperature = 0.8f;
  float top_p = 1.0f;
  int32_t top_k = 0;
  // Ask the generator for this many top log-probabilities per token (for confidence
  // verifiers such as DeepConf's lowest group confidence); 0: none.
  int32_t top_logprobs = 0;
  uint64_t seed = 0;
  // When set and it becomes true (another thread sets it: the client that asked went away),
  // the search stops within a token of every running branch, frees its branches and verifier
  // states, and run_search throws Cancelled.
  const std::atomic<bool>* cancel = nullptr;
  // Called on the search's thread after each round (beam search, DVTS: after each subtree's
  // round) and as sampled solutions finish; not once cancelled. Must not throw.
  std::function<void(const SearchProgress&)> on_progress;
};

struct Solution {
  NodeId node = -1;                    // the finished node in SearchResult::tree
  std::string text;
  std::vector<std::string> steps;
  std::vector<double> step_scores;     // step verifier scores (empty without one)
  double score = 0.0;                  // outcome score, else aggregated step scores, else 0
  std::optional<std::string> answer;   // the voting key (see AnswerFn)
  FinishReason finish = FinishReason::kEos;
  int32_t tokens = 0;
};

struct SearchUsage {
  int64_t prompt_tokens = 0;      // the generator's prompt (computed once, shared by all branches)
  int64_t completion_tokens = 0;  // generator tokens of the search's steps, lookahead rollouts included
  int64_t verifier_tokens = 0;    // tokens the verifiers' models computed
  int64_t verifier_tokens_if_rescored = 0;  // ... had each request re-scored its whole text
  int64_t discarded_tokens = 0;   // sampled ahead and dropped (SearchOptions::speculation); not in
                                  // completion_tokens, nor in the tree
  int32_t rounds = 0;
  double seconds = 0.0;           // wall time of the whole search
  double verifier_seconds = 0.0;  // ... of it spent in the verifiers
};

struct SearchResult {
  std::vector<Solution> solutions;  // every finished solution, in the order they finished
  Selection naive, majority, weighted;
  // The strategy's own choice: majority for kMajority, naive for kBestOfN, weighted for the
  // others (beam search and DVTS with a PRM, as the study reports them).
  Selection chosen;
  SearchUsage usage;
  SearchTree tree;
};

// The verifiers a search may use. Beam search, DVTS and lookahead need `step`; best-of-N needs
// one of the two (with both, `outcome` decides a solution's score); majority needs none but
// scores its solutions when given one, so that all three selections can be reported.
struct Verifiers {
  StepVerifier* step = nullptr;
  OutcomeVerifier* outcome = nullptr;
};

// Extracts a solution's answer for voting, already normalised: solutions vote together when
// their answers compare equal. nullopt: no answer.
using AnswerFn = std::function<std::optional<std::string>(const std::string& solution)>;

struct SearchProblem {
  std::string problem;         // what verifiers see
  std::vector<Token> prompt;   // what the generator continues (templated, with BOS)
};

// Whether the strategy grows solutions step by step (and so needs a step verifier).
bool is_step_wise(Strategy strategy);
// Whether a search with these options samples speculative children (SearchOptions::speculation).
bool speculates(const SearchOptions& options);
// Live generator branches a search with these options needs (beam search: N; DVTS: N/M
// subtrees of M; twice that with lookahead).
int32_t branches_needed(const SearchOptions& options);
// ... and holds at its peak when the engine has them: twice N for beam search that speculates.
// On an engine with fewer free, beam search runs without speculation (same result, slower).
// Searches that share one engine (BatchingEngine clients) see each other's free slots: size
// it for branches_wanted of each, or turn speculation off where a search has only its need.
int32_t branches_wanted(const SearchOptions& options);

// Runs one search. Throws Cancelled when options.cancel was set; EngineError when the strategy lacks the verifier it needs, when the
// options are out of range, or when the engine cannot hold the branches the search needs
// (branches_needed()).
SearchResult run_search(Engine& generator, const Verifiers& verifiers, const SearchProblem& problem,
                        const SearchOptions& options, const AnswerFn& answer_of);

}  // namespace ponder
