// OpenAI-compatible routes over test-time search: a chat or text completion runs one search
// (the request's strategy and budget, the server's defaults for what it leaves out) and replies
// with the selected solution.
//
//  POST /v1/chat/completions, POST /v1/completions: OpenAI's bodies, plus the search parameters
//    strategy, n (the budget: samples, or beams per round; one choice is returned), beam_width,
//    lookahead, max_rounds (up to the default's: the verifier's cache is sized for it),
//    aggregation, step_delimiter, top_k, and search_details (true: the
//    reply carries "ponder": every solution with its step scores, the selections, the search's
//    usage, rounds and seconds). `stop` is refused (steps end at step_delimiter); other fields
//    (logprobs, tools, penalties, ...) are ignored.
//    usage: prompt_tokens (the prompt, computed once for all branches), completion_tokens (every
//    token the generator sampled, pruned branches and lookahead rollouts included),
//    verifier_tokens (tokens the verifier models computed; 0 for confidence), total_tokens (all
//    three).
//    "stream": true answers with server-sent events in OpenAI's chunk format: a role chunk, a
//    progress chunk after each search round (an empty delta and "ponder": {"progress": ...},
//    a shape every OpenAI client passes through), the selected solution a step per chunk, a
//    finish chunk, a usage chunk when stream_options.include_usage, then "data: [DONE]". An error
//    after the stream began is a chunk {"error": {...}}, as OpenAI sends it.
//  GET /v1/models, GET /v1/models/{id}: the one model served.
//  GET /health (no API key): {"status": "ok", "model", "searches": the service's counts}.
//
// Chat messages go through the model's chat template (a final assistant message is continued);
// when the conversation has no system message, the server's system prompt (when set) comes
// first. A model without a template continues the messages' contents joined by blank lines. The
// verifiers see the last user message as the problem (a completion: the prompt).
//
// Errors: 400 for malformed JSON, a field of the wrong type or out of range, an unknown
// strategy, aggregation or model, a strategy the server has no verifier for, or a prompt longer
// than max_prompt_tokens; 429 when every worker is busy and the queue is full; 401 without the
// API key (HttpServer); 413 for a body over the limit (HttpServer); 503 when the search was
// cancelled (the server is stopping); 500 when it failed (an engine error: a verifier cache too
// small for a solution cut into very short steps, say). A client that disconnects cancels its
// search.
#pragma once

#include <cstdint>
#include <string>

#include "engine/engine.h"
#include "search/search.h"
#include "server/http_server.h"
#include "server/search_service.h"
#include "tasks/math/answer.h"

namespace ponder::server {

struct OpenAiSettings {
  std::string model_id;      // what /v1/models lists and a request's "model" must name
  SearchOptions defaults;    // for what a request leaves out (cancel, on_progress unused)
  std::string system;        // chat: put first when the conversation has no system message
  ExtractOptions extract;    // how solutions' answers are found for voting
  bool step_verifier = false;     // a PRM or the step confidence: beam search, DVTS and best-of-N can run
  bool outcome_verifier = false;  // a judge or confidence: best-of-N can run
  // Limits on a request (the caches are sized for them).
  int32_t max_n = 16;
  int32_t max_tokens = 2048;
  int32_t max_prompt_tokens = 2048;
  int32_t max_branches = 16;  // live generator branches of one search (branches_needed)
};

// Adds the routes above. `vocab` builds prompts on the handlers' threads (only its text calls,
// which are safe on any thread); it and `searches` must outlive the server's run().
void add_openai_routes(HttpServer& http, SearchService& searches, const Engine& vocab, OpenAiSettings settings);

}  // namespace ponder::server
