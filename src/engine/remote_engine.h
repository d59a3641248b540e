// The remote engine: the Engine interface over llama.cpp's HTTP server (llama-server) or vLLM's
// OpenAI-compatible server, so that a search runs against models served elsewhere, on one
// machine or several. What follows is the llama-server flavor's contract; the vLLM flavor keeps
// it except where its section below says.
//
// Branches are token lists held here; a fork is a copy. Nothing of a branch lives on the server
// between calls: every request sends its whole prefix as token ids, and the server's prompt
// cache (llama-server: `cache_prompt`, on by default; a request goes to the slot whose cached
// prompt shares the longest prefix) keeps a shared prefix from being computed again.
//
// What is exact, and how (llama-server's /completion):
// - generated tokens: streamed, one id per chunk, with its log-probability entry; the prompt is
//   sent as ids, never as text. A completion ends at the token where this engine's rules say
//   (below), and the request is dropped there. llama-server does not stream a token after which
//   the text ends inside a UTF-8 character (its id is lost); its chunk count shows the gap, and
//   that round is done again unstreamed from the last exact token, with `return_tokens`.
// - log-probabilities: `n_probs`, pre-sampling: the softmax of the raw logits over the whole
//   vocabulary. Where the server gives no entry (unstreamed: tokens that end inside a UTF-8
//   character, and a matched stop string's), a probe reads it.
// - evaluate(): a probe per position (in order, so that each prefix extends the last in the
//   server's cache): a one-token completion of the prefix that a logit bias forces to sample the
//   first candidate (the server reports the raw probability of the token it samples) and lists
//   `probe_top_k` entries, where the other candidates usually are; one outside them is forced in
//   a completion of its own. A candidate that ends inside a UTF-8 character cannot be forced
//   (the server reports nothing for it): it is read from a listing 1024 entries wide, else one of
//   the whole vocabulary. Exact for any candidate.
// - stop strings: applied here with the in-process engine's rules (the text is cut at the stop
//   string, the tokens keep the whole last token); also sent to the server, which then stops at
//   the same place in an unstreamed round.
// - stop_when: runs here on each streamed token (one call at a time, from the engine's threads);
//   where it fires the completion ends and the request is dropped, so the branch holds exactly
//   the tokens up to there (at most a few more were generated on the server).
// - stop_at_eos = false: the server stops at end-of-generation tokens; generation resumes after
//   them with a new request (the server's `ignore_eos` would instead forbid them).
// - StopParams::cancel: checked as chunks arrive and every 20 ms; a set flag drops the request,
//   and the completion finishes with kCancelled holding the tokens received so far.
// Not available: SamplingParams::entropy (it needs the whole distribution at every step),
// rejected with an EngineError.
//
// Sampling runs on the server (temperature, then top-k, top-p, min-p: the in-process order), with
// the server's own random streams: greedy decoding gives the in-process engine's tokens, sampled
// text is equally distributed but not the same draw.
//
// Chat templates are rendered by the server (its Jinja engine, which can differ in small ways
// from the in-process engine's built-in templates); llama-server leaves a final assistant message
// open even without continue_final unless started with --no-prefill-assistant.
//
// Threading: as any Engine, one thread drives it; it issues its HTTP requests from threads of
// its own (at most max_inflight_per_endpoint per endpoint). The text calls are safe from other
// threads.
//
// vLLM (RemoteApi::kVllm; `vllm serve`, V1 engine), where it differs:
// - generation: streamed /v1/completions with the prompt as ids, `logprobs` and
//   `return_tokens_as_token_ids` (each token comes as "token_id:N" with its log-probability, one
//   or more a chunk; none is held back, so no unstreamed rounds); the request is dropped where
//   our rules end the completion, as above. Log-probabilities are raw only under vLLM's default
//   `--logprobs-mode raw_logprobs`; vLLM floors them at -9999 (read as probability 0). Top
//   entries: at most the server's --max-logprobs (default 20).
// - evaluate(): one request per evaluated branch: the prefix up to the last probe (and one token
//   after it) with `prompt_logprobs: probe_top_k`, which lists at every position the actual
//   token and the most likely ones; a candidate outside them is read as the last token of a
//   prompt of its own (`prompt_logprobs: 0`). Exact for any candidate. vLLM computes prompt
//   log-probabilities without its prefix cache: each request computes its whole prompt.
// - vocab_size(): vLLM reports none; opening finds the largest id that /v1/completions accepts
//   (vLLM refuses others: "Token id N is out of vocabulary"), about 2 log2(n) one-token requests.
//   It can exceed the tokenizer's ids (a model's padded embedding); those decode to "".
// - token_to_piece(): /detokenize of [a plain token, the token] less the plain token's text (a
//   token decoded alone would lose a SentencePiece leading space), fetched once per token. A
//   token that is part of a UTF-8 character comes back as U+FFFD, so texts built of such tokens
//   (and stop strings over them) differ from the in-process engine's; token ids do not.
// - tokenize(): /tokenize; special tokens' text always becomes them (parse_special = false is not
//   available).
// - end-of-generation: vLLM tells no such tokens. The server stops at them itself (its EOS and
//   its generation config's eos_token_id); a token it stops at for no stop string of ours is
//   learned as one, so is_end_of_generation() knows the tokens seen ending a completion and
//   eos_token() is the first of them (-1 before any). stop_at_eos = false sends `ignore_eos`,
//   with which vLLM samples through them (it does not forbid them, as llama-server does).
// - sampling: temperature, top-k, top-p, min-p as asked, penalties off explicitly (a model's
//   generation config can set defaults); vLLM applies min-p before top-k and top-p, so with
//   min-p and a top-k/top-p together the distribution differs slightly from in-process.
// - context: max_model_len from /v1/models; a round asks at most the room left.
// - chat templates: /tokenize of the messages (`continue_final_message` for continue_final),
//   then /detokenize of the tokens; a model without a template makes vLLM refuse (HTTP 400).
// - model_info(): the served model name; parameters and bytes are 0 (not reported).
// - stats: prompt_tokens are the usage's prompt tokens less cached ones where vLLM reports them
//   (--enable-prompt-tokens-details), else all of them.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace ponder {

// The server's API: llama-server's own, or vLLM's OpenAI API with its extensions (see above);
// kAuto asks the first endpoint's /v1/models (llama-server's entries carry meta.n_vocab, vLLM's
// owned_by "vllm" and max_model_len).
enum class RemoteApi { kAuto, kLlamaServer, kVllm };
const char* to_string(RemoteApi api);

struct RemoteOptions {
  RemoteApi api = RemoteApi::kAuto;
  // Base URLs of servers of that API serving the same model ("http://host:8080"; a trailing
  // "/v1" or "/" is dropped). Requests go to the endpoint with the fewest outstanding.
  std::vector<std::string> endpoints;
  std::string api_key;                // sent as "Authorization: Bearer ..." (llama-server --api-key)
  double connect_timeout_s = 5.0;     // per connection attempt
  double request_timeout_s = 600.0;   // longest wait for one response (a long completion)
  // Further tries of a request after a connection error or a 5xx answer, waiting
  // retry_backoff_s, then twice that, and so on (every request sent is idempotent; a stream
  // that already delivered tokens is not retried: the endpoint is reported as failed).
  int32_t retries = 2;
  double retry_backoff_s = 0.2;
  // Requests in flight per endpoint; match llama-server's -np (parallel slots): more only queue
  // on the server, and spill prefixes out of its slot caches. (vLLM: its --max-num-seqs.)
  int32_t max_inflight_per_endpoint = 8;
  int32_t max_branches = 4096;        // live branches (held here: only memory)
  // Entries listed per evaluate() probe; a candidate outside them costs one more request.
  int32_t probe_top_k = 20;
};

// The served model as the server's /v1/models describes it.
struct RemoteModelInfo {
  std::string id;          // the model's name there: its file path or --alias (vLLM: the served name)
  int64_t parameters = 0;  // meta.n_params (vLLM: 0, not reported)
  int64_t bytes = 0;       // meta.size: the weights' bytes (vLLM: 0)
};

// How much work one endpoint took, for load reports and tests.
struct EndpointStats {
  std::string url;
  int64_t requests = 0;  // HTTP requests made (whatever came of them)
  int64_t failures = 0;  // connection errors and 5xx answers, retried or not
};

class RemoteEngine : public Engine {
 public:
  // EngineStats here: prompt_tokens = prompt tokens the servers computed (not found in their
  // caches); generated_tokens = tokens they sampled (a dropped stream: those received);
  // decode_calls = /completion requests (generation rounds and probes); decode_seconds = wall
  // time spent in generate() and evaluate(); sample_seconds = 0 (sampling is the server's work).
  virtual std::vector<EndpointStats> endpoint_stats() const = 0;
  // The server's context per slot (llama-server -c / -np; vLLM max_model_len): the longest
  // branch it can take.
  virtual int32_t context_size() const = 0;
  // The first endpoint's model (every endpoint serves the same vocabulary; the rest is trusted).
  virtual RemoteModelInfo model_info() const = 0;
};

// Connects to every endpoint and reads the model's vocabulary (llama-server: one request with
// the whole distribution; vLLM: its size, by a search for the largest id it accepts),
// end-of-generation tokens and chat template. Throws EngineError naming the endpoint when one
// cannot be reached or answers as no server of the API would, and when the endpoints serve
// different vocabularies.
std::unique_ptr<RemoteEngine> open_remote_engine(const RemoteOptions& options);

// "http://a:1,http://b:2" and repeated flags: the list of endpoints, trimmed, empties dropped.
std::vector<std::string> split_endpoints(const std::vector<std::string>& flags);

}  // namespace ponder
