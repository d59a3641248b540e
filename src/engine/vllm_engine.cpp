// The remote engine over vLLM's OpenAI-compatible API (remote_engine.h says what differs from
// the llama-server flavor). Requests and answers follow vLLM's serving code
// (vllm/entrypoints/openai/serving_completion.py, serving_tokenization.py, protocol.py) as of
// v0.10-v0.11.
#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <optional>
#include <utility>

#include "engine/remote_common.h"

namespace ponder::remote {

namespace {

// vLLM writes log-probabilities below the OpenAI API's floor as the floor.
constexpr double kLogprobFloor = -9999.0;

float logprob_value(const json& v) {
  if (!v.is_number() || v.get<double>() <= kLogprobFloor) return -std::numeric_limits<float>::infinity();
  return v.get<float>();
}

class VllmEngine final : public RemoteBase {
 public:
  explicit VllmEngine(const RemoteOptions& options) : RemoteBase(options) {
    // Every endpoint must answer and serve the same model (by name and vocabulary size).
    for (size_t i = 0; i < http_.size(); ++i) {
      const json models = http_.request_at(i, "GET", "/v1/models", json(), nullptr);
      std::string id;
      int32_t max_len = 0;
      try {
        const json& m = models.at("data").at(0);
        id = m.at("id").get<std::string>();
        max_len = m.at("max_model_len").get<int32_t>();
      } catch (const json::exception&) {
        throw EngineError(http_.url(i) + " is not a vLLM server (its /v1/models has no max_model_len)");
      }
      if (i == 0) {
        model_ = id;
        context_size_ = max_len;
        model_info_ = {id, 0, 0};
      } else if (id != model_) {
        throw EngineError("the remote endpoints serve different models: " + http_.url(0) + " serves " + model_ + ", " +
                          http_.url(i) + " serves " + id);
      }
    }
    n_vocab_ = find_vocab_size();
    for (size_t i = 1; i < http_.size(); ++i) {
      if (!accepts(i, n_vocab_ - 1) || accepts(i, n_vocab_)) {
        throw EngineError("the remote endpoints serve different vocabularies: " + http_.url(0) + " has " +
                          std::to_string(n_vocab_) + " tokens, " + http_.url(i) + " another number");
      }
    }
    pieces_.assign(static_cast<size_t>(n_vocab_), std::nullopt);
    eog_.assign(static_cast<size_t>(n_vocab_), false);
    const std::vector<Token> a = tokenize("a", false, false);
    if (a.empty()) throw EngineError(http_.url(0) + " tokenizes \"a\" to nothing");
    anchor_ = a[0];
    anchor_text_ = decode({anchor_});
    // vLLM refuses a chat request (HTTP 400) for a model without a template.
    try {
      http_.request_at(0, "POST", "/tokenize",
                       {{"model", model_}, {"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"add_generation_prompt", true}},
                       nullptr);
      has_template_ = true;
    } catch (const EngineError& e) {
      if (std::string(e.what()).find(" answered HTTP 4") == std::string::npos) throw;
    }
  }

  // --- text ---------------------------------------------------------------------------------

  // vLLM's tokenizer always turns special tokens' text into them: parse_special is not heard.
  std::vector<Token> tokenize(std::string_view text, bool add_special, bool /*parse_special*/) const override {
    const json r = http_.text_post("/tokenize", {{"model", model_}, {"prompt", std::string(text)}, {"add_special_tokens", add_special}});
    return r.at("tokens").get<std::vector<Token>>();
  }

  // The server's text of [anchor, token] less the anchor's: a token decoded alone loses the
  // leading space that SentencePiece decoders strip from a text's start.
  std::string token_to_piece(Token token) const override {
    if (token < 0 || token >= n_vocab_) throw EngineError("token id out of range: " + std::to_string(token));
    {
      std::lock_guard lock(pieces_mu_);
      if (pieces_[token]) return *pieces_[token];
    }
    // Fetched without the lock: a worker that streams may be asking at the same time.
    std::string both = decode({anchor_, token});
    std::string piece = both.compare(0, anchor_text_.size(), anchor_text_) == 0 ? both.substr(anchor_text_.size())
                                                                                : decode({token});
    std::lock_guard lock(pieces_mu_);
    pieces_[token] = piece;
    return piece;
  }

  bool has_chat_template() const override { return has_template_; }

  // Rendered by the server: the template's tokens (vLLM's /tokenize of messages), as text.
  std::string apply_chat_template(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                  bool continue_final) const override {
    check_chat_call(messages, continue_final);
    json msgs = json::array();
    for (const auto& m : messages) msgs.push_back({{"role", m.role}, {"content", m.content}});
    const json r = http_.text_post("/tokenize", {{"model", model_},
                                                 {"messages", msgs},
                                                 {"add_generation_prompt", add_generation_prompt && !continue_final},
                                                 {"continue_final_message", continue_final},
                                                 {"add_special_tokens", false}});
    return decode(r.at("tokens").get<std::vector<Token>>());
  }

  // The first end-of-generation token the server stopped at (-1 before any).
  Token eos_token() const override {
    std::lock_guard lock(eog_mu_);
    return eos_;
  }
  bool is_end_of_generation(Token token) const override {
    std::lock_guard lock(eog_mu_);
    return token >= 0 && token < n_vocab_ && eog_[static_cast<size_t>(token)];
  }

 private:
  std::string decode(const std::vector<Token>& tokens) const {
    return http_.text_post("/detokenize", {{"model", model_}, {"tokens", tokens}}).at("prompt").get<std::string>();
  }

  // The server stopped at `token` for no stop string of ours: it ends generation (the model's
  // EOS or one of its generation config's eos_token_id).
  void learn_end_of_generation(Token token) const {
    std::lock_guard lock(eog_mu_);
    if (token < 0 || token >= n_vocab_) return;
    eog_[static_cast<size_t>(token)] = true;
    if (eos_ < 0) eos_ = token;
  }

  // --- vocabulary ---------------------------------------------------------------------------

  // Whether endpoint e takes `id` in a prompt: vLLM refuses ids beyond its tokenizer's and
  // model's vocabularies ("Token id N is out of vocabulary", HTTP 400).
  bool accepts(size_t e, Token id) const {
    try {
      http_.request_at(e, "POST", "/v1/completions",
                       {{"model", model_}, {"prompt", json::array({id})}, {"max_tokens", 1}, {"temperature", 0}}, nullptr);
      return true;
    } catch (const EngineError& err) {
      if (std::string(err.what()).find("out of vocabulary") != std::string::npos) return false;
      throw;
    }
  }

  // The number of ids the first endpoint accepts: doubling, then bisection (about 2 log2(n)
  // one-token requests).
  int32_t find_vocab_size() const {
    if (!accepts(0, 0)) throw EngineError(http_.url(0) + " refuses token id 0");
    int64_t lo = 0, hi = 1;  // lo accepted; hi not known yet, then refused
    while (accepts(0, static_cast<Token>(hi))) {
      lo = hi;
      hi *= 2;
      if (hi > (int64_t{1} << 26)) throw EngineError(http_.url(0) + " accepts any token id: cannot tell its vocabulary size");
    }
    while (hi - lo > 1) {
      const int64_t mid = (lo + hi) / 2;
      (accepts(0, static_cast<Token>(mid)) ? lo : hi) = mid;
    }
    return static_cast<int32_t>(hi);
  }

  // prompt_tokens: those the server computed (less cached ones where it reports them, with
  // --enable-prompt-tokens-details).
  void count(const json& usage, int64_t generated) const {
    int64_t prompt = usage.value("prompt_tokens", int64_t{0});
    if (usage.contains("prompt_tokens_details") && usage["prompt_tokens_details"].is_object()) {
      prompt -= usage["prompt_tokens_details"].value("cached_tokens", int64_t{0});
    }
    add_stats(1, prompt, generated);
  }

  // --- completions --------------------------------------------------------------------------

  using TakeToken = std::function<bool(StepInfo step)>;

  // One request's completion: rounds of /v1/completions, streamed, until it finishes by our
  // rules; the request is dropped at the token where they say. A round the server stops where
  // our rules do not (a stop string in its own rendering) is followed by another.
  Completion complete(const std::vector<Token>& prompt, const GenerateRequest& req, CallContext& ctx) override {
    Completion c;
    if (req.stop.max_tokens <= 0) return c;  // kLength, nothing generated
    const StopMatcher stops(req.stop.stop);
    const json stop_strings = server_stops(req.stop);
    std::vector<Token> context = prompt;
    bool finished = false;
    auto take = [&](StepInfo step) {
      const Token tok = step.token;
      c.tokens.push_back(tok);
      c.steps.push_back(std::move(step));
      context.push_back(tok);
      finished = finishes(c, tok, req.stop, stops);
      return finished;
    };
    for (uint64_t round = 0; !finished; ++round) {
      // vLLM refuses a prompt that leaves no room, and (before it learned to clamp) max_tokens
      // beyond max_model_len.
      const int32_t room = context_size_ - static_cast<int32_t>(context.size());
      if (room <= 0) {
        c.finish_reason = FinishReason::kContextFull;
        break;
      }
      json body = {{"model", model_},
                   {"prompt", context},
                   {"max_tokens", std::min(req.stop.max_tokens - static_cast<int32_t>(c.tokens.size()), room)},
                   {"stream", true},
                   {"stream_options", {{"include_usage", true}, {"continuous_usage_stats", true}}},
                   {"logprobs", std::max(1, req.sampling.top_logprobs)},
                   {"return_tokens_as_token_ids", true},
                   {"skip_special_tokens", false},
                   {"ignore_eos", !req.stop.stop_at_eos}};
      add_sampling(body, req.sampling, round);
      if (!stop_strings.empty()) body["stop"] = stop_strings;
      const size_t before = c.tokens.size();
      std::string finish;
      if (!run_round(c, ctx, [&] { finish = streamed_round(body, ctx, req.sampling.top_logprobs, take); })) break;
      if (finished) break;
      if (finish == "length") {
        // Fewer tokens than asked for our max_tokens: the context is full.
        c.finish_reason = FinishReason::kContextFull;
        break;
      }
      if (c.tokens.size() == before) {
        throw EngineError("remote endpoint stopped a completion without a token (finish reason " +
                          (finish.empty() ? std::string("none") : finish) + ")");
      }
    }
    sum_logprobs(c);
    return c;
  }

  // One streamed round: each chunk's tokens (ids from return_tokens_as_token_ids, one or more
  // a chunk) go to `take` with their entries until it says the completion ends. Returns the
  // server's finish reason ("" when we ended it).
  std::string streamed_round(const json& body, CallContext& ctx, int32_t top_n, const TakeToken& take) const {
    std::string finish;
    json server_error;
    json usage = json::object();  // the latest chunk's (continuous_usage_stats)
    size_t received = 0;
    const size_t e = http_.stream("/v1/completions", body, ctx, [&](const std::string& data) {
      if (data == "[DONE]") return Http::Event::kLast;
      json chunk;
      try {
        chunk = json::parse(data);
      } catch (const json::exception&) {
        return Http::Event::kMore;
      }
      if (chunk.contains("error")) {
        server_error = chunk["error"];
        return Http::Event::kCut;
      }
      if (chunk.contains("usage") && chunk["usage"].is_object()) usage = chunk["usage"];
      if (!chunk.contains("choices") || !chunk["choices"].is_array() || chunk["choices"].empty()) return Http::Event::kMore;
      const json& choice = chunk["choices"][0];
      const json& lp = choice.contains("logprobs") ? choice["logprobs"] : json();
      const json& fr = choice.contains("finish_reason") ? choice["finish_reason"] : json();
      const json& sr = choice.contains("stop_reason") ? choice["stop_reason"] : json();
      // Stopped at an end-of-generation token: the model's EOS (no stop reason) or a token of
      // its generation config (its id); ours are strings.
      const bool eog = fr.is_string() && fr == "stop" && (sr.is_null() || sr.is_number());
      if (lp.is_object() && lp.contains("tokens")) {
        const json& tokens = lp["tokens"];
        for (size_t k = 0; k < tokens.size(); ++k) {
          const std::string s = tokens[k].get<std::string>();
          if (s.rfind("token_id:", 0) != 0) {
            server_error = {{"message", "no token ids (return_tokens_as_token_ids) in " + s}};
            return Http::Event::kCut;
          }
          StepInfo step{static_cast<Token>(std::stol(s.substr(9))), 0.0f, 0.0f, {}};
          step.logprob = logprob_value(lp.at("token_logprobs").at(k));
          if (top_n > 0) step.top = top_entries(lp.at("top_logprobs").at(k), top_n);
          if (eog && k + 1 == tokens.size()) learn_end_of_generation(step.token);
          ++received;
          if (take(std::move(step))) return Http::Event::kCut;
        }
      }
      if (fr.is_string()) finish = fr.get<std::string>();
      return Http::Event::kMore;
    });
    count(usage, usage.value("completion_tokens", static_cast<int64_t>(received)));
    if (!server_error.is_null()) {
      throw EngineError(http_.url(e) + "/v1/completions failed mid-stream: " +
                        (server_error.is_object() ? server_error.value("message", server_error.dump()) : server_error.dump()));
    }
    return finish;
  }

  // A step's {"token_id:N": logprob} entries (the sampled token's among them, maybe beyond the
  // top n): the n most likely, most likely first.
  static std::vector<TokenLogprob> top_entries(const json& top, int32_t n) {
    std::vector<TokenLogprob> out;
    if (!top.is_object()) return out;
    for (const auto& [key, value] : top.items()) {
      if (key.rfind("token_id:", 0) == 0) out.push_back({static_cast<Token>(std::stol(key.substr(9))), logprob_value(value)});
    }
    std::sort(out.begin(), out.end(), [](const TokenLogprob& a, const TokenLogprob& b) {
      return a.logprob != b.logprob ? a.logprob > b.logprob : a.token < b.token;
    });
    if (static_cast<int32_t>(out.size()) > n) out.resize(static_cast<size_t>(n));
    return out;
  }

  // Temperature, top-k, top-p and min-p as asked (vLLM applies min-p before top-k and top-p);
  // the penalties off, since a model's generation config may turn them on by default. Seeds are
  // 64-bit signed.
  static void add_sampling(json& body, const SamplingParams& s, uint64_t round) {
    body["temperature"] = s.temperature > 0.0f ? s.temperature : 0.0f;
    body["top_k"] = s.top_k > 0 ? s.top_k : -1;
    body["top_p"] = s.top_p;
    body["min_p"] = s.min_p;
    body["repetition_penalty"] = 1.0;
    body["presence_penalty"] = 0.0;
    body["frequency_penalty"] = 0.0;
    body["seed"] = static_cast<int64_t>((s.seed + round * 0x9E3779B97F4A7C15ull) >> 1);
  }

  // --- probes -------------------------------------------------------------------------------

  // The prompt's log-probabilities (prompt_logprobs: k): per position, the actual token's and
  // the k most likely, keyed by id; the first position's is null.
  json prompt_logprobs(const std::vector<Token>& prompt, int32_t k, CallContext& ctx) const {
    if (static_cast<int32_t>(prompt.size()) >= context_size_) {
      throw EngineError("the evaluated tokens do not fit the server's context (" + std::to_string(prompt.size()) +
                        " tokens, max_model_len " + std::to_string(context_size_) + ")");
    }
    const json r = http_.post("/v1/completions",
                              {{"model", model_},
                               {"prompt", prompt},
                               {"max_tokens", 1},
                               {"temperature", 0},
                               {"prompt_logprobs", k}},
                              &ctx);
    const json usage = r.value("usage", json::object());
    count(usage, usage.value("completion_tokens", int64_t{0}));
    try {
      const json& pl = r.at("choices").at(0).at("prompt_logprobs");
      if (pl.is_array() && pl.size() == prompt.size()) return pl;
    } catch (const json::exception&) {
    }
    throw EngineError("remote endpoint gave no prompt log-probabilities (prompt_logprobs) for a prefix");
  }

  static std::optional<float> find_entry(const json& entry, Token t) {
    if (!entry.is_object()) return std::nullopt;
    const auto it = entry.find(std::to_string(t));
    if (it == entry.end()) return std::nullopt;
    return logprob_value(it->is_object() ? it->value("logprob", json()) : *it);
  }

  // One request gives every position: the prompt up to the last probe (and a first candidate
  // after it), with the probe_top_k most likely tokens at each position, where the candidates
  // usually are. A candidate outside them is read as the last token of a prompt of its own.
  EvaluateResult evaluate_one(const std::vector<Token>& base, const EvaluateRequest& req,
                              CallContext& ctx) const override {
    EvaluateResult res;
    res.probs.assign(req.positions.size(), std::vector<float>(req.candidates.size(), 0.0f));
    if (req.positions.empty() || req.candidates.empty()) return res;
    const int32_t last = *std::max_element(req.positions.begin(), req.positions.end());
    std::vector<Token> prompt = base;
    prompt.insert(prompt.end(), req.tokens.begin(), req.tokens.begin() + last + 1);
    if (static_cast<size_t>(last) + 1 < req.tokens.size()) {
      prompt.push_back(req.tokens[static_cast<size_t>(last) + 1]);
    } else {
      prompt.push_back(req.candidates[0]);
    }
    const json entries = prompt_logprobs(prompt, options_.probe_top_k, ctx);
    for (size_t i = 0; i < req.positions.size(); ++i) {
      const size_t at = base.size() + static_cast<size_t>(req.positions[i]) + 1;
      for (size_t j = 0; j < req.candidates.size(); ++j) {
        std::optional<float> found = find_entry(entries[at], req.candidates[j]);
        if (!found) {
          std::vector<Token> own(prompt.begin(), prompt.begin() + static_cast<std::ptrdiff_t>(at));
          own.push_back(req.candidates[j]);
          found = find_entry(prompt_logprobs(own, 0, ctx).back(), req.candidates[j]);
        }
        if (!found) throw EngineError("remote endpoint gave no log-probability for a prompt's own token");
        res.probs[i][j] = std::exp(*found);
      }
    }
    return res;
  }

  std::string model_;  // the served model's name, sent with every request
  bool has_template_ = false;
  Token anchor_ = 0;         // a token of plain text that token_to_piece decodes others after
  std::string anchor_text_;  // its text, decoded alone
  mutable std::mutex eog_mu_;
  mutable std::vector<bool> eog_;
  mutable Token eos_ = -1;
  mutable std::mutex pieces_mu_;
  mutable std::vector<std::optional<std::string>> pieces_;
};

}  // namespace

std::unique_ptr<RemoteEngine> open_vllm_engine(const RemoteOptions& options) {
  return std::make_unique<VllmEngine>(options);
}

}  // namespace ponder::remote
