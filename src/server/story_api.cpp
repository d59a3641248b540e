#include "server/story_api.h"

#include <atomic>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <type_traits>

#include "search/search.h"

namespace ponder::server {

using nlohmann::json;

namespace {

template <typename T>
T number(const json& body, const char* key, T fallback, T lo, T hi) {
  if (!body.contains(key) || body[key].is_null()) return fallback;
  const json& v = body[key];
  const bool ok = std::is_integral_v<T> ? v.is_number_integer() : v.is_number();
  if (!ok) throw ApiError(400, std::string("'") + key + "' must be a number", "invalid_request_error", key);
  const double d = v.get<double>();
  if (!(d >= static_cast<double>(lo) && d <= static_cast<double>(hi))) {
    throw ApiError(400, std::string("'") + key + "' must be between " + json(lo).dump() + " and " + json(hi).dump(),
                   "invalid_request_error", key);
  }
  return v.get<T>();
}

std::string text(const json& body, const char* key, const std::string& fallback) {
  if (!body.contains(key) || body[key].is_null()) return fallback;
  if (!body[key].is_string()) {
    throw ApiError(400, std::string("'") + key + "' must be a string", "invalid_request_error", key);
  }
  return body[key].get<std::string>();
}

struct Parsed {
  story::StoryRequest request;
  bool stream = false;
};

Parsed parse(const json& body, const StoryLimits& limits, const story::GuardOptions& guard) {
  Parsed p;
  story::StoryRequest& r = p.request;
  r.guard = guard;
  if (!body.contains("opening")) throw ApiError(400, "'opening' is required", "invalid_request_error", "opening");
  r.opening = text(body, "opening", "");
  r.genre = text(body, "genre", "adventure");
  r.stories = number<int32_t>(body, "stories", 3, 1, limits.max_stories);
  const std::string strategy = text(body, "strategy", "dvts");
  const std::optional<Strategy> s = parse_strategy(strategy);
  if (!s || (*s != Strategy::kDvts && *s != Strategy::kBeam && *s != Strategy::kBestOfN)) {
    throw ApiError(400, "'strategy' must be dvts, beam or best-of-n", "invalid_request_error", "strategy");
  }
  r.strategy = *s;
  r.beam_width = number<int32_t>(body, "beam_width", std::min(4, limits.max_beam_width), 1, limits.max_beam_width);
  r.steps = number<int32_t>(body, "steps", std::min(8, limits.max_steps), 1, limits.max_steps);
  r.step_tokens = number<int32_t>(body, "step_tokens", 0, 0, limits.max_tokens);
  r.temperature = number<float>(body, "temperature", 0.8f, 0.0f, 2.0f);
  r.top_k = number<int32_t>(body, "top_k", 0, 0, 1 << 20);
  r.top_p = number<float>(body, "top_p", 1.0f, 0.0f, 1.0f);
  r.max_tokens = number<int32_t>(body, "max_tokens", std::min(128, limits.max_tokens), 1, limits.max_tokens);
  r.seed = body.contains("seed") && !body["seed"].is_null()
               ? number<uint64_t>(body, "seed", 0, 0, std::numeric_limits<uint64_t>::max())
               : std::random_device{}();
  if (body.contains("weights") && !body["weights"].is_null()) {
    const json& w = body["weights"];
    if (!w.is_object()) throw ApiError(400, "'weights' must be an object", "invalid_request_error", "weights");
    r.weights.coherence = number<double>(w, "coherence", r.weights.coherence, 0.0, 1e6);
    r.weights.fluency = number<double>(w, "fluency", r.weights.fluency, 0.0, 1e6);
    r.weights.genre = number<double>(w, "genre", r.weights.genre, 0.0, 1e6);
  }
  if (body.contains("stream") && !body["stream"].is_null()) {
    if (!body["stream"].is_boolean()) throw ApiError(400, "'stream' must be true or false", "invalid_request_error", "stream");
    p.stream = body["stream"].get<bool>();
  }
  // The guard and the remaining checks; a refusal's message is for the user, as it is.
  try {
    story::check_story_request(r);
  } catch (const story::StoryRefused& e) {
    throw ApiError(400, e.what(), "invalid_request_error", "opening", "prompt_refused");
  } catch (const EngineError& e) {
    throw ApiError(400, e.what());
  }
  return p;
}

json progress_json(const SearchProgress& p, int32_t steps) {
  return {{"rounds", p.rounds},          {"steps", steps},
          {"finished", p.finished},      {"target", p.target},
          {"completion_tokens", p.completion_tokens}, {"seconds", p.seconds}};
}

// One story at a time, with a bounded line of waiting ones.
class StoryDesk {
 public:
  explicit StoryDesk(StorySettings settings) : settings_(std::move(settings)) {}

  // Holds a place in line (or throws 429) until destroyed.
  class Place {
   public:
    explicit Place(StoryDesk& desk) : desk_(desk) {}
    ~Place() { --desk_.admitted_; }

   private:
    StoryDesk& desk_;
  };
  std::unique_ptr<Place> admit() {
    if (++admitted_ > 1 + settings_.limits.queue) {
      --admitted_;
      throw ApiError(429, "the server is busy writing other stories; retry later", "rate_limit_error", "",
                     "server_busy");
    }
    return std::make_unique<Place>(*this);
  }

  // Writes a story, waiting for the one being written. `still_wanted` is asked after each round
  // (on this thread, with the progress); false stops the story (Cancelled).
  story::StoryResult write(const story::StoryRequest& request,
                           const std::function<bool(const SearchProgress&)>& still_wanted) {
    std::lock_guard<std::mutex> lock(run_mu_);
    if (!models_) models_ = settings_.open_models();
    const size_t opening_tokens = models_->generator->tokenize(request.opening, true, false).size();
    if (opening_tokens > static_cast<size_t>(settings_.limits.max_opening_tokens)) {
      throw ApiError(400,
                     "the opening is " + std::to_string(opening_tokens) + " tokens long; at most " +
                         std::to_string(settings_.limits.max_opening_tokens),
                     "invalid_request_error", "opening");
    }
    std::atomic<bool> cancel{false};
    return story::write_stories(*models_, request, &cancel, [&](const SearchProgress& p) {
      const bool stopping = settings_.stopping && settings_.stopping->load();
      if (stopping || !still_wanted(p)) cancel = true;
    });
  }

  const StoryLimits& limits() const { return settings_.limits; }
  const story::GuardOptions& guard() const { return settings_.guard; }

 private:
  StorySettings settings_;
  std::atomic<int32_t> admitted_{0};
  std::mutex run_mu_;
  std::optional<story::StoryModels> models_;  // under run_mu_
};

ApiError story_error(std::exception_ptr error) {
  try {
    std::rethrow_exception(error);
  } catch (const ApiError& e) {
    return e;
  } catch (const Cancelled&) {
    return ApiError(503, "the story was cancelled", "server_error");
  } catch (const std::exception& e) {
    return ApiError(500, e.what(), "server_error");
  }
}

}  // namespace

void add_story_routes(HttpServer& http, StorySettings settings) {
  auto desk = std::make_shared<StoryDesk>(std::move(settings));
  auto page = [](const httplib::Request&, httplib::Response& res) {
    res.set_content(story_page_html(), "text/html; charset=utf-8");
  };
  http.get("/", page, HttpServer::Access::kPublic);
  http.get("/story", page, HttpServer::Access::kPublic);

  http.post("/v1/story", [desk](const httplib::Request& req, httplib::Response& res) {
    Parsed parsed = parse(parse_json_object(req), desk->limits(), desk->guard());
    std::shared_ptr<StoryDesk::Place> place = desk->admit();
    const ConnectionWatch watch(req);
    if (!parsed.stream) {
        const story::StoryResult r = desk->write(parsed.request, [&](const SearchProgress&) { return !watch.closed(); });
      send_json(res, 200, story::story_json(parsed.request, r));
      return;
    }
    res.set_header("Cache-Control", "no-cache");
    // cpp-httplib calls the provider once the headers are out, on this request's thread; nothing
    // may escape it.
    auto provider = [desk, place, parsed, watch](size_t, httplib::DataSink& sink) {
      auto send = [&](const json& event) {
        const std::string line = "data: " + event.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
        return sink.write(line.data(), line.size());
      };
      try {
        const int32_t steps = parsed.request.steps;
        const story::StoryResult r = desk->write(
            parsed.request,
            [&](const SearchProgress& p) { return !watch.closed() && send({{"progress", progress_json(p, steps)}}); });
        if (!send({{"result", story::story_json(parsed.request, r)}})) return false;
      } catch (...) {
        if (!send(story_error(std::current_exception()).body())) return false;
      }
      static const std::string kDone = "data: [DONE]\n\n";
      if (!sink.write(kDone.data(), kDone.size())) return false;
      sink.done();
      return true;
    };
    res.set_chunked_content_provider("text/event-stream", std::move(provider));
  });
}

}  // namespace ponder::server
