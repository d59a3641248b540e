// The remote engine: the Engine interface over llama.cpp's HTTP server (llama-server), so that a
// search runs against models served elsewhere, on one machine or several.
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
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace ponder {

struct RemoteOptions {
  // Base URLs of llama-server instances serving the same model ("http://host:8080"; a trailing
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
  // on the server, and spill prefixes out of its slot caches.
  int32_t max_inflight_per_endpoint = 8;
  int32_t max_branches = 4096;        // live branches (held here: only memory)
  // Entries listed per evaluate() probe; a candidate outside them costs one more request.
  int32_t probe_top_k = 20;
};

// How much work one endpoint took, for load reports and tests.
// The served model as llama-server's /v1/models describes it.
struct RemoteModelInfo {
  std::string id;          // the model's name there: its file path, or the server's --alias
  int64_t parameters = 0;  // meta.n_params
  int64_t bytes = 0;       // meta.size: the weights' bytes
};

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
  // The server's context per slot (llama-server -c / -np): the longest branch it can take.
  virtual int32_t context_size() const = 0;
  // The first endpoint's model (every endpoint serves the same vocabulary; the rest is trusted).
  virtual RemoteModelInfo model_info() const = 0;
};

// Connects to every endpoint and reads the model's vocabulary (one request with the whole
// distribution), end-of-generation tokens and chat template. Throws EngineError naming the
// endpoint when one cannot be reached or answers as no llama-server would, and when the
// endpoints serve different vocabularies.
std::unique_ptr<RemoteEngine> open_remote_engine(const RemoteOptions& options);

// "http://a:1,http://b:2" and repeated flags: the list of endpoints, trimmed, empties dropped.
std::vector<std::string> split_endpoints(const std::vector<std::string>& flags);

}  // namespace ponder
