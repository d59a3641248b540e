#include "server/openai_api.h"

#include <chrono>
#include <ctime>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "search/search_json.h"
#include "search/selection.h"
#include "tasks/math/prompt.h"

namespace ponder::server {
namespace {

using nlohmann::json;
using std::chrono::milliseconds;

// How often a waiting handler looks whether its client is still there.
constexpr milliseconds kPoll{100};

enum class Api { kChat, kCompletion };

// --- reading a request ---------------------------------------------------------------------

ApiError bad(const std::string& param, const std::string& message, const std::string& code = "") {
  return ApiError(400, message, "invalid_request_error", param, code);
}

// A field's value, nullopt when absent or null.
const json* field(const json& body, const char* name) {
  const auto it = body.find(name);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

std::optional<int64_t> get_int(const json& body, const char* name, int64_t lo, int64_t hi) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_number_integer()) throw bad(name, std::string(name) + " must be an integer");
  // nlohmann keeps non-negative integers unsigned: compare those as such (2^64 - 1 must not wrap).
  bool in_range;
  if (v->is_number_unsigned()) {
    const auto u = v->get<uint64_t>();
    in_range = u <= static_cast<uint64_t>(hi) && (lo <= 0 || u >= static_cast<uint64_t>(lo));
  } else {
    in_range = v->get<int64_t>() >= lo && v->get<int64_t>() <= hi;
  }
  if (!in_range) {
    throw bad(name, std::string(name) + " must be from " + std::to_string(lo) + " to " + std::to_string(hi));
  }
  return v->get<int64_t>();
}

std::optional<double> get_number(const json& body, const char* name, double lo, double hi) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_number()) throw bad(name, std::string(name) + " must be a number");
  const double x = v->get<double>();
  if (!(x >= lo && x <= hi)) {
    throw bad(name, std::string(name) + " must be from " + json(lo).dump() + " to " + json(hi).dump());
  }
  return x;
}

std::optional<std::string> get_string(const json& body, const char* name) {
  const json* v = field(body, name);
  if (!v) return std::nullopt;
  if (!v->is_string()) throw bad(name, std::string(name) + " must be a string");
  return v->get<std::string>();
}

bool get_bool(const json& body, const char* name) {
  const json* v = field(body, name);
  if (!v) return false;
  if (!v->is_boolean()) throw bad(name, std::string(name) + " must be true or false");
  return v->get<bool>();
}

struct ParsedRequest {
  SearchJob job;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
  bool details = false;        // search_details
};

SearchOptions search_options(const json& body, const OpenAiSettings& s) {
  SearchOptions o = s.defaults;
  if (const auto name = get_string(body, "strategy")) {
    const auto strategy = parse_strategy(*name);
    if (!strategy) {
      throw bad("strategy", "unknown strategy: " + *name + " (majority, best-of-n, weighted-best-of-n, beam, dvts)",
                "unknown_strategy");
    }
    o.strategy = *strategy;
  }
  if (auto v = get_int(body, "n", 1, s.max_n)) o.n = static_cast<int32_t>(*v);
  if (auto v = get_int(body, "beam_width", 1, s.max_n)) o.beam_width = static_cast<int32_t>(*v);
  if (auto v = get_int(body, "lookahead", 0, 64)) o.lookahead = static_cast<int32_t>(*v);
  // The verifier's cache is sized for the server's rounds (steps) per solution.
  if (auto v = get_int(body, "max_rounds", 1, s.defaults.max_rounds)) o.max_rounds = static_cast<int32_t>(*v);
  if (const auto name = get_string(body, "aggregation")) {
    const auto aggregation = parse_aggregation(*name);
    if (!aggregation) throw bad("aggregation", "unknown aggregation: " + *name + " (last, min, prod, mean)");
    o.aggregation = *aggregation;
  }
  if (const auto delimiter = get_string(body, "step_delimiter")) {
    if (delimiter->empty() || delimiter->size() > 64) {
      throw bad("step_delimiter", "step_delimiter must be 1 to 64 bytes");
    }
    o.step_delimiter = *delimiter;
  }
  if (auto v = get_number(body, "temperature", 0.0, 100.0)) o.temperature = static_cast<float>(*v);
  if (auto v = get_number(body, "top_p", 0.0, 1.0)) {
    if (*v <= 0.0) throw bad("top_p", "top_p must be greater than 0");
    o.top_p = static_cast<float>(*v);
  }
  if (auto v = get_int(body, "top_k", 0, 1 << 20)) o.top_k = static_cast<int32_t>(*v);
  // max_completion_tokens is the newer name of max_tokens.
  for (const char* name : {"max_tokens", "max_completion_tokens"}) {
    if (auto v = get_int(body, name, 1, s.max_tokens)) o.max_tokens = static_cast<int32_t>(*v);
  }
  if (const json* seed = field(body, "seed")) {
    if (!seed->is_number_integer()) throw bad("seed", "seed must be an integer");
    o.seed = seed->is_number_unsigned() ? seed->get<uint64_t>() : static_cast<uint64_t>(seed->get<int64_t>());
  } else {
    o.seed = std::random_device{}();
  }
  if (field(body, "stop")) {
    throw bad("stop", "stop is not supported: a search's steps end at step_delimiter, its solutions at the end "
                      "of generation or max_tokens");
  }

  const std::string name = to_string(o.strategy);
  if (is_step_wise(o.strategy) && !s.step_verifier) {
    throw bad("strategy", name + " needs a step verifier; this server has none (start it with --prm, or with "
                                 "--confidence mean to search by the generator's confidence)");
  }
  if ((o.strategy == Strategy::kBestOfN || o.strategy == Strategy::kWeightedBestOfN) && !s.step_verifier &&
      !s.outcome_verifier) {
    throw bad("strategy", name + " needs a verifier; this server has none (--prm, --judge or --confidence)");
  }
  if (o.lookahead > 0 && !is_step_wise(o.strategy)) {
    throw bad("lookahead", "lookahead applies to beam search and DVTS only");
  }
  if (branches_needed(o) > s.max_branches) {
    throw bad("n", "this search needs " + std::to_string(branches_needed(o)) + " live branches; the server allows " +
                       std::to_string(s.max_branches));
  }
  // Searches share the engine, each within max_branches: speculation only where it fits.
  if (branches_wanted(o) > s.max_branches) o.speculation = Speculation::kOff;
  return o;
}

// A message's text: a string, or an array of text parts.
std::string content_text(const json& content, const std::string& param) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) throw bad(param, param + " must be a string or an array of text parts");
  std::string text;
  for (const json& part : content) {
    if (!part.is_object() || part.value("type", json()) != "text" || !part.contains("text") ||
        !part["text"].is_string()) {
      throw bad(param, param + ": only text parts ({\"type\": \"text\", \"text\": ...}) are supported");
    }
    text += part["text"].get<std::string>();
  }
  return text;
}

SearchProblem chat_problem(const json& body, const OpenAiSettings& s, const Engine& vocab) {
  const json* messages = field(body, "messages");
  if (!messages) throw bad("messages", "messages is required");
  if (!messages->is_array() || messages->empty()) throw bad("messages", "messages must be a non-empty array");
  std::vector<ChatMessage> chat;
  bool has_system = false;
  std::string last_user;
  for (size_t i = 0; i < messages->size(); ++i) {
    const json& m = (*messages)[i];
    const std::string param = "messages[" + std::to_string(i) + "]";
    if (!m.is_object()) throw bad(param, param + " must be an object");
    const json* role = field(m, "role");
    if (!role || !role->is_string()) throw bad(param + ".role", param + ".role must be a string");
    std::string r = role->get<std::string>();
    if (r == "developer") r = "system";  // OpenAI's newer name for it
    if (r != "system" && r != "user" && r != "assistant") {
      throw bad(param + ".role", param + ".role must be system, developer, user or assistant");
    }
    const json* content = field(m, "content");
    if (!content) throw bad(param + ".content", param + ".content is required");
    ChatMessage message{r, content_text(*content, param + ".content")};
    has_system = has_system || r == "system";
    if (r == "user") last_user = message.content;
    chat.push_back(std::move(message));
  }
  SearchProblem p;
  if (vocab.has_chat_template()) {
    if (!has_system && !s.system.empty()) chat.insert(chat.begin(), {"system", s.system});
    try {
      p.prompt = chat_prompt(vocab, chat);
    } catch (const EngineError& e) {
      throw bad("messages", std::string("the chat template cannot render these messages: ") + e.what());
    }
  } else {
    std::string text;
    for (const ChatMessage& m : chat) text += (text.empty() ? "" : "\n\n") + m.content;
    p.prompt = vocab.tokenize(text, /*add_special=*/true, /*parse_special=*/false);
    if (last_user.empty()) last_user = text;
  }
  p.problem = last_user;
  return p;
}

SearchProblem completion_problem(const json& body, const Engine& vocab) {
  const json* prompt = field(body, "prompt");
  if (!prompt) throw bad("prompt", "prompt is required");
  // A list of one prompt is the same request (clients send that shape too).
  if (prompt->is_array() && prompt->size() == 1) prompt = &(*prompt)[0];
  if (!prompt->is_string()) throw bad("prompt", "prompt must be a string (or a list of one string)");
  SearchProblem p;
  p.problem = prompt->get<std::string>();
  p.prompt = vocab.tokenize(p.problem, /*add_special=*/true, /*parse_special=*/false);
  return p;
}

ParsedRequest parse_request(Api api, const json& body, const OpenAiSettings& s, const Engine& vocab) {
  if (const json* model = field(body, "model")) {
    if (!model->is_string()) throw bad("model", "model must be a string");
    if (model->get<std::string>() != s.model_id) {
      throw bad("model", "unknown model " + model->get<std::string>() + "; this server has " + s.model_id,
                "model_not_found");
    }
  }
  ParsedRequest r;
  r.stream = get_bool(body, "stream");
  if (const json* options = field(body, "stream_options")) {
    if (!options->is_object()) throw bad("stream_options", "stream_options must be an object");
    r.include_usage = get_bool(*options, "include_usage");
  }
  r.details = get_bool(body, "search_details");
  r.job.options = search_options(body, s);
  r.job.problem = api == Api::kChat ? chat_problem(body, s, vocab) : completion_problem(body, vocab);
  const auto tokens = static_cast<int64_t>(r.job.problem.prompt.size());
  if (tokens == 0) throw bad(api == Api::kChat ? "messages" : "prompt", "the prompt is empty");
  if (tokens > s.max_prompt_tokens) {
    throw bad(api == Api::kChat ? "messages" : "prompt",
              "the prompt has " + std::to_string(tokens) + " tokens; the server allows " +
                  std::to_string(s.max_prompt_tokens),
              "context_length_exceeded");
  }
  const ExtractOptions extract = s.extract;
  r.job.answer_of = [extract](const std::string& text) { return voting_answer(text, extract); };
  return r;
}

// --- writing a reply ---------------------------------------------------------------------

std::string new_id(Api api) {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  static const char* const kHex = "0123456789abcdef";
  std::string id = api == Api::kChat ? "chatcmpl-" : "cmpl-";
  for (int i = 0; i < 24; ++i) id += kHex[rng() % 16];
  return id;
}

const char* finish_reason(FinishReason r) {
  return r == FinishReason::kLength || r == FinishReason::kContextFull ? "length" : "stop";
}

// The solution a reply gives: the strategy's choice; votes choose none when no solution has an
// answer (as `ponder solve` does, the best-scored one then).
Selection chosen_of(const SearchResult& r) { return r.chosen.solution >= 0 ? r.chosen : r.naive; }

// Every token the search spent: steps sampled ahead and dropped count as completion tokens.
json usage_of(const SearchUsage& u) {
  const int64_t completion = u.completion_tokens + u.discarded_tokens;
  return {{"prompt_tokens", u.prompt_tokens},
          {"completion_tokens", completion},
          {"verifier_tokens", u.verifier_tokens},
          {"total_tokens", u.prompt_tokens + completion + u.verifier_tokens}};
}

json details_of(const SearchResult& r, const SearchOptions& o) {
  const Selection chosen = chosen_of(r);
  json d = {{"strategy", to_string(o.strategy)}, {"n", o.n}, {"seed", o.seed}};
  d["answer"] = chosen.answer ? json(*chosen.answer) : json(nullptr);
  d["selections"] = selections_json(r, chosen);
  d["solutions"] = solutions_json(r.solutions);
  d["usage"] = usage_json(r.usage);
  return d;
}

// The length of `text` without a UTF-8 sequence cut short at its end.
size_t utf8_whole_prefix(const std::string& text) {
  size_t start = text.size();
  // The last sequence starts at most 3 bytes back, after its continuation bytes (10xxxxxx).
  while (start > 0 && text.size() - start < 3 && (static_cast<unsigned char>(text[start - 1]) & 0xC0) == 0x80) --start;
  if (start == 0) return text.size();
  const auto lead = static_cast<unsigned char>(text[start - 1]);
  const size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
  return text.size() - (start - 1) < need ? start - 1 : text.size();
}

json progress_json(const SearchProgress& p) {
  return {{"rounds", p.rounds},
          {"finished", p.finished},
          {"target", p.target},
          {"completion_tokens", p.completion_tokens},
          {"seconds", p.seconds}};
}

struct Reply {
  Api api;
  std::string id;
  int64_t created;
  std::string model;

  json head(bool chunk) const {
    const char* object = api == Api::kChat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion";
    return {{"id", id}, {"object", object}, {"created", created}, {"model", model}};
  }
  // A stream chunk of one choice: `text` as the delta (chat) or text (completions).
  json chunk(const std::optional<std::string>& text, const char* finish, bool role = false) const {
    json choice = {{"index", 0}, {"finish_reason", finish ? json(finish) : json(nullptr)}};
    if (api == Api::kChat) {
      json delta = json::object();
      if (role) delta["role"] = "assistant";
      if (text) delta["content"] = *text;
      choice["delta"] = delta;
    } else {
      choice["text"] = text.value_or("");
      choice["logprobs"] = nullptr;
    }
    json c = head(true);
    c["choices"] = json::array({choice});
    return c;
  }
  json whole(const SearchResult& r, const ParsedRequest& req) const {
    const Selection chosen = chosen_of(r);
    const Solution* s = chosen.solution >= 0 ? &r.solutions[static_cast<size_t>(chosen.solution)] : nullptr;
    const std::string text = s ? s->text : "";
    json choice = {{"index", 0}, {"finish_reason", s ? finish_reason(s->finish) : "stop"}, {"logprobs", nullptr}};
    if (api == Api::kChat) {
      choice["message"] = {{"role", "assistant"}, {"content", text}};
    } else {
      choice["text"] = text;
    }
    json j = head(false);
    j["choices"] = json::array({choice});
    j["usage"] = usage_of(r.usage);
    if (req.details) j["ponder"] = details_of(r, req.job.options);
    return j;
  }
};

// The error a finished ticket ended with, as the reply's status and body.
ApiError search_error(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const Cancelled&) {
    return ApiError(503, "the search was cancelled (the server is stopping)", "server_error", "", "cancelled");
  } catch (const std::exception& x) {
    return ApiError(500, std::string("the search failed: ") + x.what(), "server_error");
  }
}

class OpenAiRoutes {
 public:
  OpenAiRoutes(SearchService& searches, const Engine& vocab, OpenAiSettings settings)
      : searches_(searches), vocab_(vocab), s_(std::move(settings)), started_(std::time(nullptr)) {}

  json model_json() const {
    return {{"id", s_.model_id}, {"object", "model"}, {"created", started_}, {"owned_by", "ponder"}};
  }

  void model(const httplib::Request& req, httplib::Response& res) const {
    if (req.matches[1] != s_.model_id) {
      throw ApiError(404, "no model " + std::string(req.matches[1]), "invalid_request_error", "model",
                     "model_not_found");
    }
    send_json(res, 200, model_json());
  }

  void health(httplib::Response& res) const {
    const ServiceStats st = searches_.stats();
    send_json(res, 200,
              {{"status", "ok"},
               {"model", s_.model_id},
               {"searches",
                {{"workers", st.workers},
                 {"queue_capacity", st.queue_capacity},
                 {"running", st.running},
                 {"queued", st.queued},
                 {"completed", st.completed},
                 {"cancelled", st.cancelled},
                 {"failed", st.failed},
                 {"rejected", st.rejected}}}});
  }

  void complete(Api api, const httplib::Request& req, httplib::Response& res) {
    ParsedRequest parsed = parse_request(api, parse_json_object(req), s_, vocab_);
    std::shared_ptr<SearchTicket> ticket = searches_.submit(parsed.job);
    if (!ticket) {
      throw ApiError(429, "the server is busy: every worker is searching and the queue is full; retry later",
                     "rate_limit_error", "", "server_busy");
    }
    Reply reply{api, new_id(api), static_cast<int64_t>(std::time(nullptr)), s_.model_id};
    const ConnectionWatch watch(req);
    if (parsed.stream) {
      stream(std::move(parsed), std::move(ticket), std::move(reply), watch, res);
      return;
    }
    while (!ticket->wait(kPoll)) {
      if (watch.closed()) searches_.cancel(*ticket);  // nobody reads the reply: free the branches
    }
    const SearchResult* r = nullptr;
    try {
      r = &ticket->result();
    } catch (...) {
      throw search_error(std::current_exception());
    }
    send_json(res, 200, reply.whole(*r, parsed));
  }

 private:
  // Events as the search runs; cpp-httplib calls the provider once the headers are out, on
  // this request's thread.
  void stream(ParsedRequest parsed, std::shared_ptr<SearchTicket> ticket, Reply reply, ConnectionWatch watch,
              httplib::Response& res) {
    res.set_header("Cache-Control", "no-cache");
    auto events = [this, parsed = std::move(parsed), ticket, reply, watch](httplib::DataSink& sink) {
      auto send = [&](const json& event) {
        const std::string line = "data: " + event.dump(-1, ' ', false, json::error_handler_t::replace) + "\n\n";
        return sink.write(line.data(), line.size());
      };
      // A failed write means the client is gone: stop the search and drop the connection.
      auto give_up = [&] {
        searches_.cancel(*ticket);
        return false;
      };
      if (!send(reply.chunk(std::string(), nullptr, /*role=*/true))) return give_up();
      std::vector<SearchProgress> progress;
      while (true) {
        const bool done = ticket->wait(kPoll, &progress);
        for (const SearchProgress& p : progress) {
          json c = reply.chunk(std::nullopt, nullptr);
          c["ponder"] = {{"progress", progress_json(p)}};
          if (!send(c)) return give_up();
        }
        progress.clear();
        if (done) break;
        if (watch.closed()) return give_up();
      }
      const SearchResult* r = nullptr;
      try {
        r = &ticket->result();
      } catch (...) {
        if (!send(search_error(std::current_exception()).body())) return false;
      }
      if (r) {
        const Selection chosen = chosen_of(*r);
        const Solution* s = chosen.solution >= 0 ? &r->solutions[static_cast<size_t>(chosen.solution)] : nullptr;
        // A step per chunk, but a character a step boundary cuts (tokens are bytes, not
        // characters) goes whole into the next chunk, so the chunks join to the text.
        std::string pending;
        for (const std::string& step : s ? s->steps : std::vector<std::string>{}) {
          pending += step;
          const size_t whole = utf8_whole_prefix(pending);
          if (whole == 0) continue;
          if (!send(reply.chunk(pending.substr(0, whole), nullptr))) return false;
          pending.erase(0, whole);
        }
        if (!pending.empty() && !send(reply.chunk(pending, nullptr))) return false;
        json finish = reply.chunk(std::nullopt, s ? finish_reason(s->finish) : "stop");
        if (parsed.details) finish["ponder"] = details_of(*r, parsed.job.options);
        if (!send(finish)) return false;
        if (parsed.include_usage) {
          json u = reply.head(true);
          u["choices"] = json::array();
          u["usage"] = usage_of(r->usage);
          if (!send(u)) return false;
        }
      }
      static const std::string kDone = "data: [DONE]\n\n";
      if (!sink.write(kDone.data(), kDone.size())) return false;
      sink.done();
      return true;
    };
    // cpp-httplib runs the provider outside its handler's try block: nothing may escape it.
    auto provider = [this, events = std::move(events), ticket](size_t, httplib::DataSink& sink) {
      try {
        return events(sink);
      } catch (...) {
        searches_.cancel(*ticket);
        return false;
      }
    };
    // Also when the provider never ran (the connection failed first): the search must not go on.
    auto release = [this, ticket](bool) { searches_.cancel(*ticket); };
    res.set_chunked_content_provider("text/event-stream", std::move(provider), std::move(release));
  }

  SearchService& searches_;
  const Engine& vocab_;
  const OpenAiSettings s_;
  const int64_t started_;
};

}  // namespace

void add_openai_routes(HttpServer& http, SearchService& searches, const Engine& vocab, OpenAiSettings settings) {
  // The handlers share the routes' state and keep it alive.
  auto routes = std::make_shared<OpenAiRoutes>(searches, vocab, std::move(settings));
  http.post("/v1/chat/completions", [routes](const auto& req, auto& res) { routes->complete(Api::kChat, req, res); });
  http.post("/v1/completions", [routes](const auto& req, auto& res) { routes->complete(Api::kCompletion, req, res); });
  http.get("/v1/models", [routes](const auto&, auto& res) {
    send_json(res, 200, {{"object", "list"}, {"data", json::array({routes->model_json()})}});
  });
  http.get("/v1/models/(.+)", [routes](const httplib::Request& req, httplib::Response& res) { routes->model(req, res); });
  http.get("/health", [routes](const auto&, auto& res) { routes->health(res); }, HttpServer::Access::kPublic);
}

}  // namespace ponder::server
