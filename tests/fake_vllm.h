// A stand-in for vLLM's OpenAI-compatible server (`vllm serve`), for the remote engine's vLLM
// flavor: the subset of the API it uses, answered with real results of the in-process engine on
// a GGUF model. Request fields and answer shapes follow vLLM v0.10-v0.11's serving code
// (vllm/entrypoints/openai/protocol.py, serving_completion.py, serving_tokenization.py,
// serving_models.py; vllm/v1/engine/input_processor.py for prompt checks):
// - GET /v1/models: {"object": "list", "data": [{"id", "object": "model", "owned_by": "vllm",
//   "root", "max_model_len", ...}]}
// - POST /tokenize: {"model", "prompt", "add_special_tokens" (default true)} or {"model",
//   "messages", "add_generation_prompt", "continue_final_message", "add_special_tokens" (default
//   false)} -> {"count", "max_model_len", "tokens", "token_strs": null}; a model without a chat
//   template refuses messages (HTTP 400). Special tokens' text always becomes them, as with a
//   Hugging Face tokenizer.
// - POST /detokenize: {"model", "tokens"} -> {"prompt"}, as a Hugging Face decode: special tokens
//   as text, bytes that are no UTF-8 as U+FFFD, and (SentencePiece) one leading space stripped.
// - POST /v1/completions with `prompt` as token ids: max_tokens, temperature, top_p, top_k (-1
//   off), min_p, seed, stop, include_stop_str_in_output, ignore_eos, logprobs (the sampled token
//   first, then the top k, each clamped to -9999), return_tokens_as_token_ids ("token_id:N"),
//   prompt_logprobs (per prompt position {"id": {"logprob", "rank", "decoded_token"}}, the first
//   null; ranks are null where only the actual token was asked for), stream with stream_options
//   (include_usage, continuous_usage_stats): "data: {chunk}" events, a chunk of one or two
//   tokens, the finish reason on the last token's, a usage chunk with no choices, "data: [DONE]".
//   Refusals as vLLM's: ids out of vocabulary, empty or too long prompts (HTTP 400, {"error":
//   {"message", "type", "param", "code"}}); max_tokens is clamped to the room left.
// Sampling is the in-process engine's (its order, its random streams), as the real server's
// differs anyway. One request computes at a time.
#pragma once

#include <httplib.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/llama_engine.h"
#include "llama_server.h"

namespace ponder::testing {

// Bytes that are no UTF-8 become U+FFFD, one each (as a Hugging Face decode).
inline std::string hf_utf8(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size();) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    const size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    bool ok = n > 0 && i + n <= s.size();
    for (size_t k = 1; ok && k < n; ++k) ok = (static_cast<unsigned char>(s[i + k]) & 0xC0) == 0x80;
    if (ok) {
      out.append(s, i, n);
      i += n;
    } else {
      out += "\xEF\xBF\xBD";
      ++i;
    }
  }
  return out;
}

class FakeVllm {
 public:
  FakeVllm(const std::string& model_path, std::string served_name, int max_model_len)
      : name_(std::move(served_name)), max_len_(max_model_len), port_(free_port()) {
    LlamaEngineOptions o;
    o.model_path = model_path;
    o.max_branches = 2;
    o.n_ctx = 2 * max_model_len;
    o.n_threads = 1;
    o.reproducible = true;
    engine_ = open_llama_engine(o);
    const std::vector<Token> a = engine_->tokenize("a", false, false);
    spm_ = !a.empty() && !engine_->token_to_piece(a[0]).empty() && engine_->token_to_piece(a[0])[0] == ' ';
    routes();
    if (!server_.bind_to_port("127.0.0.1", port_)) throw std::runtime_error("cannot listen on " + url());
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~FakeVllm() { stop(); }
  FakeVllm(const FakeVllm&) = delete;
  FakeVllm& operator=(const FakeVllm&) = delete;

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  const std::string& name() const { return name_; }
  // Completion requests answered (any outcome).
  int completions() const { return completions_.load(); }

  // Stops listening and drops its connections, as a crash.
  void stop() {
    server_.stop();
    if (thread_.joinable()) thread_.join();
  }

 private:
  using json = nlohmann::json;

  static void refuse(httplib::Response& res, int status, const std::string& message, const char* type) {
    res.status = status;
    res.set_content(json{{"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", status}}}}.dump(),
                    "application/json");
  }
  bool wrong_model(const json& body, httplib::Response& res) const {
    if (body.value("model", name_) == name_) return false;
    refuse(res, 404, "The model `" + body.value("model", "") + "` does not exist.", "NotFoundError");
    return true;
  }
  static void reply(httplib::Response& res, const json& j) {
    res.set_content(j.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
  }

  std::string decode(const std::vector<Token>& tokens) const {
    std::string text;
    for (Token t : tokens) {
      if (t >= 0 && t < engine_->vocab_size()) text += engine_->token_to_piece(t);
    }
    if (spm_ && !text.empty() && text[0] == ' ') text.erase(0, 1);
    return hf_utf8(text);
  }
  std::string token_key(Token t, bool as_id) const { return as_id ? "token_id:" + std::to_string(t) : decode({t}); }

  void routes() {
    server_.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
      reply(res, {{"object", "list"},
                  {"data", {{{"id", name_}, {"object", "model"}, {"created", 0}, {"owned_by", "vllm"}, {"root", name_},
                             {"parent", nullptr}, {"max_model_len", max_len_}, {"permission", json::array()}}}}});
    });
    server_.Post("/tokenize", [this](const httplib::Request& req, httplib::Response& res) {
      const json body = json::parse(req.body);
      if (wrong_model(body, res)) return;
      std::lock_guard lock(mu_);
      std::vector<Token> tokens;
      if (body.contains("messages")) {
        if (!engine_->has_chat_template()) {
          return refuse(res, 400,
                        "As of transformers v4.44, default chat template is no longer allowed, so you must provide "
                        "a chat template if the tokenizer does not define one.",
                        "BadRequestError");
        }
        std::vector<ChatMessage> msgs;
        for (const json& m : body["messages"]) msgs.push_back({m.at("role"), m.at("content")});
        const std::string text = engine_->apply_chat_template(msgs, body.value("add_generation_prompt", true),
                                                              body.value("continue_final_message", false));
        tokens = engine_->tokenize(text, body.value("add_special_tokens", false), true);
      } else {
        tokens = engine_->tokenize(body.at("prompt").get<std::string>(), body.value("add_special_tokens", true), true);
      }
      reply(res, {{"count", tokens.size()}, {"max_model_len", max_len_}, {"tokens", tokens}, {"token_strs", nullptr}});
    });
    server_.Post("/detokenize", [this](const httplib::Request& req, httplib::Response& res) {
      const json body = json::parse(req.body);
      if (wrong_model(body, res)) return;
      reply(res, {{"prompt", decode(body.at("tokens").get<std::vector<Token>>())}});
    });
    server_.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
      ++completions_;
      complete(json::parse(req.body), res);
    });
  }

  // prompt_logprobs: k for `prompt` (k = 0: the actual tokens only).
  json prompt_logprobs(const std::vector<Token>& prompt, int k, bool as_id) {
    json out = json::array({nullptr});
    if (prompt.size() < 2) return out;
    std::vector<Token> candidates;
    if (k > 0) {
      for (Token t = 0; t < engine_->vocab_size(); ++t) candidates.push_back(t);
    } else {
      const std::set<Token> actual(prompt.begin() + 1, prompt.end());
      candidates.assign(actual.begin(), actual.end());
    }
    // Position i's distribution is the one after prompt[0..i]: it gives prompt[i + 1].
    EvaluateRequest ev{engine_->new_branch({}), prompt, {}, candidates};
    for (size_t i = 0; i + 1 < prompt.size(); ++i) ev.positions.push_back(static_cast<int32_t>(i));
    const auto probs = engine_->evaluate({ev}).at(0).probs;
    engine_->free_branch(ev.branch);
    for (size_t i = 0; i < probs.size(); ++i) {
      const Token actual = prompt[i + 1];
      const auto& p = probs[i];
      const size_t at = std::lower_bound(candidates.begin(), candidates.end(), actual) - candidates.begin();
      auto entry = [&](size_t c, json rank) {
        return json{{"logprob", std::log(static_cast<double>(p[c]))}, {"rank", rank}, {"decoded_token", token_key(candidates[c], as_id)}};
      };
      json pos = json::object();
      if (k > 0) {
        std::vector<size_t> order(p.size());
        for (size_t c = 0; c < order.size(); ++c) order[c] = c;
        std::partial_sort(order.begin(), order.begin() + k, order.end(),
                          [&](size_t a, size_t b) { return p[a] != p[b] ? p[a] > p[b] : a < b; });
        const int64_t rank = 1 + std::count_if(p.begin(), p.end(), [&](float x) { return x > p[at]; });
        pos[std::to_string(actual)] = entry(at, rank);
        for (int r = 0; r < k; ++r) pos[std::to_string(candidates[order[r]])] = entry(order[r], r + 1);
      } else {
        pos[std::to_string(actual)] = entry(at, nullptr);
      }
      out.push_back(pos);
    }
    return out;
  }

  void complete(const json& body, httplib::Response& res) {
    if (wrong_model(body, res)) return;
    if (!body.contains("prompt") || !body["prompt"].is_array()) return refuse(res, 400, "prompt: token ids only here", "BadRequestError");
    const std::vector<Token> prompt = body["prompt"].get<std::vector<Token>>();
    if (prompt.empty()) return refuse(res, 400, "The decoder prompt cannot be empty", "BadRequestError");
    for (Token t : prompt) {
      if (t < 0 || t >= engine_->vocab_size()) {
        return refuse(res, 400, "Token id " + std::to_string(t) + " is out of vocabulary", "BadRequestError");
      }
    }
    const int len = static_cast<int>(prompt.size());
    if (len >= max_len_) {
      return refuse(res, 400,
                    "The decoder prompt (length " + std::to_string(len) + ") plus the number of requested output tokens "
                    "(at least 1) is longer than the maximum model length of " + std::to_string(max_len_) + ".",
                    "BadRequestError");
    }
    const int max_tokens = std::min(body.value("max_tokens", 16), max_len_ - len);
    if (max_tokens < 1) return refuse(res, 400, "max_tokens must be at least 1, got " + std::to_string(max_tokens), "BadRequestError");
    const int logprobs = body.contains("logprobs") && !body["logprobs"].is_null() ? body["logprobs"].get<int>() : -1;
    const int prompt_k = body.contains("prompt_logprobs") && !body["prompt_logprobs"].is_null() ? body["prompt_logprobs"].get<int>() : -1;
    if (logprobs > 20 || prompt_k > 20) {
      return refuse(res, 400, "Requested sample logprobs of " + std::to_string(std::max(logprobs, prompt_k)) +
                                  ", which is greater than max allowed: 20", "BadRequestError");
    }
    const bool as_id = body.value("return_tokens_as_token_ids", false);
    GenerateRequest g;
    g.sampling.temperature = body.value("temperature", 1.0f);
    g.sampling.top_p = body.value("top_p", 1.0f);
    g.sampling.top_k = std::max(0, body.value("top_k", -1));
    g.sampling.min_p = body.value("min_p", 0.0f);
    g.sampling.seed = static_cast<uint64_t>(body.value("seed", int64_t{0}));
    g.sampling.top_logprobs = std::max(0, logprobs);
    g.stop.max_tokens = max_tokens;
    if (body.contains("stop")) {
      for (const json& s : body["stop"].is_array() ? body["stop"] : json::array({body["stop"]})) g.stop.stop.push_back(s);
    }
    g.stop.include_stop_in_text = body.value("include_stop_str_in_output", false);
    g.stop.stop_at_eos = !body.value("ignore_eos", false);

    Completion c;
    json prompt_lp = nullptr;
    {
      std::lock_guard lock(mu_);
      if (prompt_k >= 0) prompt_lp = prompt_logprobs(prompt, prompt_k, as_id);
      g.branch = engine_->new_branch(prompt);
      c = engine_->generate({g}).at(0);
      engine_->free_branch(g.branch);
    }
    json finish = c.finish_reason == FinishReason::kStop || c.finish_reason == FinishReason::kEos ? "stop" : "length";
    json stop_reason = nullptr;
    if (c.finish_reason == FinishReason::kStop) {
      std::string whole;
      for (Token t : c.tokens) whole += engine_->token_to_piece(t);
      size_t best = std::string::npos;
      for (const auto& s : g.stop.stop) {
        const size_t at = whole.find(s);
        if (at < best) best = at, stop_reason = s;
      }
    }
    // One step's logprobs entries: the sampled token first, then the top k.
    auto step_logprobs = [&](size_t i) {
      json top = json::object();
      top[token_key(c.tokens[i], as_id)] = std::max(-9999.0, static_cast<double>(c.steps[i].logprob));
      for (const auto& t : c.steps[i].top) top[token_key(t.token, as_id)] = std::max(-9999.0, static_cast<double>(t.logprob));
      return top;
    };
    auto logprobs_of = [&](size_t from, size_t to, size_t offset) -> json {
      if (logprobs < 0) return nullptr;
      json lp = {{"text_offset", json::array()}, {"token_logprobs", json::array()}, {"tokens", json::array()}, {"top_logprobs", json::array()}};
      for (size_t i = from; i < to; ++i) {
        lp["text_offset"].push_back(offset);
        offset += decode({c.tokens[i]}).size();
        lp["token_logprobs"].push_back(std::max(-9999.0, static_cast<double>(c.steps[i].logprob)));
        lp["tokens"].push_back(token_key(c.tokens[i], as_id));
        lp["top_logprobs"].push_back(step_logprobs(i));
      }
      return lp;
    };
    const size_t n = c.tokens.size();
    auto usage = [&](size_t generated) {
      return json{{"prompt_tokens", len}, {"total_tokens", len + generated}, {"completion_tokens", generated},
                  {"prompt_tokens_details", nullptr}};
    };
    const json head = {{"id", "cmpl-" + std::to_string(completions_.load())}, {"object", "text_completion"}, {"created", 0}, {"model", name_}};
    if (!body.value("stream", false)) {
      json r = head;
      r["choices"] = {{{"index", 0}, {"text", c.text}, {"logprobs", logprobs_of(0, n, 0)}, {"finish_reason", finish},
                       {"stop_reason", stop_reason}, {"prompt_logprobs", prompt_lp}, {"prompt_token_ids", nullptr},
                       {"token_ids", nullptr}}};
      r["usage"] = usage(n);
      return reply(res, r);
    }
    const json options = body.value("stream_options", json::object());
    std::vector<std::string> events;
    size_t offset = 0;
    for (size_t from = 0, size = 1; from < n; from += size, size = 3 - size) {
      const size_t to = std::min(n, from + size);
      std::string text;
      for (size_t i = from; i < to; ++i) text += decode({c.tokens[i]});
      json chunk = head;
      chunk["choices"] = {{{"index", 0}, {"text", text}, {"logprobs", logprobs_of(from, to, offset)},
                           {"finish_reason", to == n ? finish : json()}, {"stop_reason", to == n ? stop_reason : json()}}};
      offset += text.size();
      chunk["usage"] = options.value("continuous_usage_stats", false) ? usage(to) : json();
      events.push_back(chunk.dump(-1, ' ', false, json::error_handler_t::replace));
    }
    if (options.value("include_usage", false)) {
      json last = head;
      last["choices"] = json::array();
      last["usage"] = usage(n);
      events.push_back(last.dump());
    }
    events.push_back("[DONE]");
    res.set_chunked_content_provider("text/event-stream", [events](size_t, httplib::DataSink& sink) {
      for (const auto& e : events) {
        const std::string line = "data: " + e + "\n\n";
        if (!sink.write(line.data(), line.size())) return false;
      }
      sink.done();
      return true;
    });
  }

  std::string name_;
  int max_len_;
  int port_;
  bool spm_ = false;  // SentencePiece: a decode strips one leading space
  std::mutex mu_;     // the engine: one request at a time
  std::unique_ptr<LlamaEngine> engine_;
  std::atomic<int> completions_{0};
  httplib::Server server_;
  std::thread thread_;
};

}  // namespace ponder::testing
