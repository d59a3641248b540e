// ponder engine interface: a model that decodes many branches of one search together.
//
// A Branch is a token sequence the engine holds state for (for llama.cpp: KV cells). Branches
// fork cheaply: the child shares its parent's prefix, which is never computed again. Callers
// (search strategies, the CLI, the server) see only this interface, so an in-process llama.cpp
// engine and a remote OpenAI-compatible backend are interchangeable.
//
// Threading: an Engine is not thread-safe; one caller drives it (the search loop batches the
// work of all its branches into one generate()/evaluate() call). For several threads on one model
// (concurrent searches), BatchingEngine (batching_engine.h) hands each thread an Engine of its
// own and merges their work into the same decode steps.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace ponder {

using Token = int32_t;

// Handle of a branch. Valid until free_branch(); ids of freed branches may be reused.
using BranchId = int32_t;

// Thrown for errors a user can act on (bad model file, context too small, bad arguments).
class EngineError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown by work that stopped because its cancel flag was set (StopParams::cancel,
// SearchOptions::cancel): nothing failed, the caller no longer wanted the result.
class Cancelled : public EngineError {
 public:
  using EngineError::EngineError;
};

struct SamplingParams {
  float temperature = 1.0f;  // <= 0: greedy (argmax, lowest token id on ties)
  float top_p = 1.0f;        // nucleus: smallest set with cumulative probability >= top_p
  int32_t top_k = 0;         // keep the k most likely tokens; 0 = off
  float min_p = 0.0f;        // drop tokens with p < min_p * p_max; 0 = off
  uint64_t seed = 0;         // each request has its own random stream, seeded by this
  int32_t top_logprobs = 0;  // report this many most likely alternatives per step (0 = none)
  bool entropy = false;      // report the entropy of each step's distribution
};

struct StopParams {
  int32_t max_tokens = 256;            // finish with "length" after this many new tokens
  std::vector<std::string> stop;       // finish with "stop" when the text contains one of these
  bool include_stop_in_text = false;   // keep the matched stop string at the end of the text
  bool stop_at_eos = true;             // finish with "eos" on an end-of-generation token
  // Where a fixed string cannot say where to stop (a sentence end decided by ICU, say): called
  // after each new token (that is not end-of-generation) with the completion's text so far.
  // When it returns an offset (<= text.size()), the completion finishes with "stop" and `text`
  // is cut there; `tokens` keep the whole last token, exactly as with stop strings. Checked
  // after the stop strings, so a stop string found by the same token wins. It must not throw,
  // and may run on another thread than generate()'s caller (BatchingEngine's worker, while the
  // caller runs its on_finish), so it must be safe to call concurrently with the caller's work.
  std::function<std::optional<size_t>(std::string_view text)> stop_when;
  // When set and it reads true (another thread sets it: a client went away), the completion
  // finishes with kCancelled before its next token; nothing is sampled after that.
  const std::atomic<bool>* cancel = nullptr;
  // The same, for this request alone: a search withdraws speculative work it no longer needs
  // (possibly from generate()'s on_finish) while `cancel` stays the whole search's flag.
  const std::atomic<bool>* withdraw = nullptr;

  // Whether either flag is set: what engines check before each token.
  bool cancelled() const {
    return (cancel && cancel->load(std::memory_order_relaxed)) ||
           (withdraw && withdraw->load(std::memory_order_relaxed));
  }
};

enum class FinishReason { kStop, kLength, kEos, kContextFull, kCancelled };
const char* to_string(FinishReason reason);

// Log-probabilities are those of the model's own distribution (softmax of the raw logits,
// before temperature and truncation): what verifiers and confidence measures need.
struct TokenLogprob {
  Token token;
  float logprob;
};

struct StepInfo {
  Token token;
  float logprob;
  float entropy = 0.0f;              // nats; only when SamplingParams::entropy
  std::vector<TokenLogprob> top;     // only when SamplingParams::top_logprobs > 0
};

struct GenerateRequest {
  BranchId branch;
  SamplingParams sampling;
  StopParams stop;
};

// The branch has advanced by `tokens`. When a stop string ended inside a token, `text` is cut
// at the stop string but `tokens` (and the branch) keep the whole last token.
struct Completion {
  std::string text;
  std::vector<Token> tokens;
  std::vector<StepInfo> steps;  // one per token
  double logprob = 0.0;         // sum of steps[i].logprob
  FinishReason finish_reason = FinishReason::kLength;
};

// Append `tokens` to a branch and read the model's next-token probabilities at chosen positions:
// probe i gives, for each id in `candidates`, P(candidate | branch + tokens[0..positions[i]]).
struct EvaluateRequest {
  BranchId branch;
  std::vector<Token> tokens;
  std::vector<int32_t> positions;  // indices into tokens
  std::vector<Token> candidates;
};

struct EvaluateResult {
  // probs[i][j]: probability of candidates[j] at positions[i]
  std::vector<std::vector<float>> probs;
};

struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

struct EngineStats {
  int64_t prompt_tokens = 0;      // tokens decoded that were given (prompts, appended text)
  int64_t generated_tokens = 0;   // tokens sampled
  int64_t decode_calls = 0;
  double decode_seconds = 0.0;
  double sample_seconds = 0.0;
  // Branches moved to another KV stream so that a decode step's rows are consecutive (llama.cpp
  // engine with split streams).
  int64_t stream_moves = 0;
};

class Engine {
 public:
  virtual ~Engine() = default;

  // --- text -----------------------------------------------------------------------------
  // add_special: add BOS etc. as the model's metadata asks; parse_special: "<|im_start|>" in
  // the text becomes its special token.
  virtual std::vector<Token> tokenize(std::string_view text, bool add_special,
                                      bool parse_special) const = 0;
  virtual std::string token_to_piece(Token token) const = 0;
  std::string detokenize(const std::vector<Token>& tokens) const;

  // Renders messages with the model's own chat template. With continue_final, the last
  // message (an assistant message) is left open so that generation continues it, which search
  // uses to append steps to a partial answer. Throws EngineError when the model has no template.
  virtual std::string apply_chat_template(const std::vector<ChatMessage>& messages,
                                          bool add_generation_prompt,
                                          bool continue_final = false) const = 0;
  virtual bool has_chat_template() const = 0;

  virtual Token eos_token() const = 0;
  virtual bool is_end_of_generation(Token token) const = 0;
  virtual int32_t vocab_size() const = 0;

  // --- branches -------------------------------------------------------------------------
  // A new branch holding `tokens` (computed lazily, together with other work).
  virtual BranchId new_branch(const std::vector<Token>& tokens) = 0;
  // A child that shares everything the parent holds now; both can then diverge.
  virtual BranchId fork(BranchId parent) = 0;
  // Append tokens to a branch (computed lazily).
  virtual void append(BranchId branch, const std::vector<Token>& tokens) = 0;
  // Releases the branch's state; its id may be reused.
  virtual void free_branch(BranchId branch) = 0;
  virtual const std::vector<Token>& branch_tokens(BranchId branch) const = 0;
  // How many more branches can be live at once.
  virtual int32_t free_slots() const = 0;

  // --- work -----------------------------------------------------------------------------
  // Continues every requested branch until it finishes; all of them are decoded together.
  // A branch may appear at most once.
  std::vector<Completion> generate(const std::vector<GenerateRequest>& requests) { return generate(requests, {}); }

  // Continuous batching: as each request finishes, on_finish(index, completion) may return
  // requests to start at once; they join the batch at the next step, with indices following the
  // ones given so far (the result holds every request's completion, by index). The callback may
  // create, fork, append to and free branches, except those still generating in this call, and
  // may use other engines, but not generate() or evaluate() on this one. A new request may
  // continue a branch that finished earlier in the call. Requests that finish at the same step
  // are reported in order of their branch ids.
  using OnFinish = std::function<std::vector<GenerateRequest>(size_t index, const Completion& completion)>;
  virtual std::vector<Completion> generate(const std::vector<GenerateRequest>& requests,
                                           const OnFinish& on_finish) = 0;
  virtual std::vector<EvaluateResult> evaluate(const std::vector<EvaluateRequest>& requests) = 0;

  virtual EngineStats stats() const = 0;
};

}  // namespace ponder
