// The story page of `ponder serve` (issue 5): a web page that continues a story opening several
// ways, with live progress, and the API behind it.
//
//  GET / and GET /story (no API key): the page. It posts to /v1/story with the key the user
//    types in (when the server has one) and shows the progress and the stories with their scores;
//    a refused or bad prompt shows the server's message.
//  POST /v1/story: {"opening", "genre", "stories", "temperature", "max_tokens", and optionally
//    "strategy" (dvts, beam, best-of-n), "beam_width", "steps", "step_tokens" (steps of this many
//    tokens instead of sentences), "top_k", "top_p", "seed",
//    "weights": {"coherence", "fluency", "genre"}, "stream"}. Without "stream": the result as
//    `ponder story --json` prints it. With "stream": true, server-sent events, each
//    "data: {...}\n\n": {"progress": {rounds, steps, finished, target, completion_tokens,
//    seconds}} after each round, then {"result": {...}} or {"error": {...}}, then
//    "data: [DONE]".
//
// Stories are written one at a time on the requests' own threads (the story models are one
// set, opened on the first story request, so a server that never writes a story never loads
// them); up to `queue` more wait, and beyond that the reply is 429. Errors as the OpenAI routes
// answer them: 400 for a bad body, a value out of the limits, or a refused prompt (its message
// says why); 401 without the API key. A client that disconnects stops its story.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "server/http_server.h"
#include "tasks/story/writer.h"

namespace ponder::server {

struct StoryLimits {
  int32_t max_stories = 8;
  int32_t max_beam_width = 4;
  int32_t max_steps = 16;
  int32_t max_tokens = 256;          // per continuation
  int32_t max_opening_tokens = 128;  // the opening, in the generator's tokens
  int32_t queue = 2;                 // stories that may wait while one is written
};

struct StorySettings {
  StoryLimits limits;
  // Opens the story models, sized for the limits; called once, on the first story request.
  // The models it returns must stay valid for the server's life.
  std::function<story::StoryModels()> open_models;
  // The prompt guard, for every story request (requests cannot change it).
  story::GuardOptions guard;
  // When set and true (the server is stopping), stories being written stop after their round.
  const std::atomic<bool>* stopping = nullptr;
};

// Adds the routes above.
void add_story_routes(HttpServer& http, StorySettings settings);

// The page's HTML (for tests that read it without a server).
const std::string& story_page_html();

}  // namespace ponder::server
