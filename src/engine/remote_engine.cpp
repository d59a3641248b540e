#include "engine/remote_engine.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <optional>
#include <utility>

#include "engine/remote_common.h"

namespace ponder::remote {

namespace {

// llama.cpp's CHATML_TEMPLATE_SRC (common/chat.cpp): what llama-server reports as its template
// when the model has none of its own.
constexpr const char* kServerFallbackTemplate =
    "{%- for message in messages -%}\n"
    "  {{- '<|im_start|>' + message.role + '\n' + message.content + '<|im_end|>\n' -}}\n"
    "{%- endfor -%}\n"
    "{%- if add_generation_prompt -%}\n"
    "  {{- '<|im_start|>assistant\n' -}}\n"
    "{%- endif -%}";

// Large enough that the biased token wins a greedy pick over any real logit.
constexpr double kForceBias = 1e9;

// llama-server's validate_utf8 (tools/server/server-common.cpp), as it is: the length of the
// text without a multi-byte character cut off at its end, judged by the lead bytes among the last
// four. The server holds back the tokens after which this is short of the text, with their
// probability entries.
size_t utf8_complete_prefix(const std::string& s) {
  const size_t len = s.size();
  for (size_t i = 1; i <= 4 && i <= len; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[len - i]);
    if (((c & 0xE0) == 0xC0 && i < 2) || ((c & 0xF0) == 0xE0 && i < 3) || ((c & 0xF8) == 0xF0 && i < 4)) {
      return len - i;
    }
  }
  return len;
}

class LlamaServerEngine final : public RemoteBase {
 public:
  explicit LlamaServerEngine(const RemoteOptions& options) : RemoteBase(options) {
    // Every endpoint must answer and serve the same vocabulary; the first one tells the rest.
    for (size_t i = 0; i < http_.size(); ++i) {
      const json models = http_.request_at(i, "GET", "/v1/models", json(), nullptr);
      int32_t n_vocab = -1;
      try {
        const json& meta = models.at("data").at(0).at("meta");
        n_vocab = meta.at("n_vocab").get<int32_t>();
        if (i == 0) {
          context_size_ = meta.value("n_ctx", 0);
          model_info_ = {models.at("data").at(0).value("id", ""), meta.value("n_params", int64_t{0}),
                         meta.value("size", int64_t{0})};
        }
      } catch (const json::exception&) {
        throw EngineError(http_.url(i) + " is not a llama-server (its /v1/models has no vocabulary size)");
      }
      if (i == 0) n_vocab_ = n_vocab;
      if (n_vocab != n_vocab_) {
        throw EngineError("the remote endpoints serve different models: " + http_.url(0) + " has " +
                          std::to_string(n_vocab_) + " tokens, " + http_.url(i) + " has " +
                          std::to_string(n_vocab));
      }
      if (i == 0) {
        const json props = http_.request_at(i, "GET", "/props", json(), nullptr);
        const std::string tmpl = props.value("chat_template", "");
        has_template_ = !tmpl.empty() && tmpl != kServerFallbackTemplate;
        const std::string eos = props.value("eos_token", "");
        if (!eos.empty()) {
          const std::vector<Token> ids = tokenize(eos, false, true);
          if (ids.size() == 1) eos_ = ids[0];
        }
      }
    }
    if (n_vocab_ <= 0) throw EngineError(http_.url(0) + " reports an empty vocabulary");
    read_vocabulary();
  }

  // --- text ---------------------------------------------------------------------------------

  std::vector<Token> tokenize(std::string_view text, bool add_special, bool parse_special) const override {
    const json r = http_.text_post(
        "/tokenize", {{"content", std::string(text)}, {"add_special", add_special}, {"parse_special", parse_special}});
    return r.at("tokens").get<std::vector<Token>>();
  }

  std::string token_to_piece(Token token) const override {
    if (token < 0 || token >= n_vocab_) throw EngineError("token id out of range: " + std::to_string(token));
    {
      std::lock_guard lock(pieces_mu_);
      if (piece_known_[token]) return pieces_[token];
    }
    // Not in the vocabulary read at opening (the server renders control tokens as empty there,
    // unless started with --special): its own text, as the in-process engine gives. Fetched
    // without the lock: a worker that streams may be asking at the same time.
    const json r = http_.text_post("/detokenize", {{"tokens", json::array({token})}});
    std::lock_guard lock(pieces_mu_);
    pieces_[token] = r.at("content").get<std::string>();
    piece_known_[token] = true;
    return pieces_[token];
  }

  bool has_chat_template() const override { return has_template_; }

  // Rendered by the server: see remote_engine.h.
  std::string apply_chat_template(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                  bool continue_final) const override {
    check_chat_call(messages, continue_final);
    // As in-process: the final message gets a marker at its end, and the render is cut there.
    static const std::string kMarker = "\x1f<ponder-open-end>\x1f";
    json msgs = json::array();
    for (size_t i = 0; i < messages.size(); ++i) {
      std::string content = messages[i].content;
      if (continue_final && i + 1 == messages.size()) content += kMarker;
      msgs.push_back({{"role", messages[i].role}, {"content", content}});
    }
    const json r =
        http_.text_post("/apply-template", {{"messages", msgs}, {"add_generation_prompt", add_generation_prompt && !continue_final}});
    std::string out = r.at("prompt").get<std::string>();
    if (continue_final) {
      const size_t at = out.rfind(kMarker);
      if (at == std::string::npos) throw EngineError("chat template dropped the assistant message");
      out.resize(at);
    }
    return out;
  }

  Token eos_token() const override { return eos_; }
  bool is_end_of_generation(Token token) const override {
    return token >= 0 && token < n_vocab_ && eog_[static_cast<size_t>(token)];
  }
  int32_t vocab_size() const override { return n_vocab_; }

 private:
  // --- vocabulary ---------------------------------------------------------------------------

  // One completion with the whole distribution gives every token's text (the server's rendering,
  // in bytes); the end-of-generation set is the logit bias the server adds for ignore_eos. It
  // samples the token of "a" (forced), since for a token that ends inside a UTF-8 character the
  // server would list nothing.
  void read_vocabulary() {
    const std::vector<Token> a = tokenize("a", false, false);
    if (a.empty()) throw EngineError(http_.url(0) + " tokenizes \"a\" to nothing");
    const json r = http_.post("/completion",
                        {{"prompt", json::array({a[0]})},
                         {"n_predict", 1},
                         {"n_probs", n_vocab_},
                         {"temperature", 0},
                         {"logit_bias", json::array({json::array({a[0], kForceBias})})},
                         {"ignore_eos", true},
                         {"cache_prompt", false},
                         {"response_fields", json::array({"completion_probabilities", "generation_settings"})}},
                        nullptr);
    pieces_.assign(static_cast<size_t>(n_vocab_), std::string());
    piece_known_.assign(static_cast<size_t>(n_vocab_), false);
    eog_.assign(static_cast<size_t>(n_vocab_), false);
    try {
      for (const json& t : r.at("completion_probabilities").at(0).at("top_logprobs")) {
        const Token id = t.at("id").get<Token>();
        if (id < 0 || id >= n_vocab_) continue;
        std::string piece;
        for (const json& byte : t.at("bytes")) piece.push_back(static_cast<char>(byte.get<int>()));
        pieces_[id] = std::move(piece);
        piece_known_[id] = !pieces_[id].empty();
      }
      for (const json& bias : r.at("generation_settings").at("logit_bias")) {
        // ignore_eos's are -inf, which JSON writes as null; ours for "a" is positive.
        const json& b = bias.at("bias");
        const Token id = bias.at("token").get<Token>();
        if ((b.is_null() || b.get<double>() < 0.0) && id >= 0 && id < n_vocab_) eog_[id] = true;
      }
    } catch (const json::exception& e) {
      throw EngineError(http_.url(0) + " answered a completion in an unexpected shape: " + e.what());
    }
    if (eos_ >= 0 && eos_ < n_vocab_) eog_[eos_] = true;
    const auto plain = std::find_if(pieces_.begin(), pieces_.end(), [](const std::string& p) {
      return !p.empty() && std::all_of(p.begin(), p.end(), [](char ch) { return ch > 0x20 && ch < 0x7F; });
    });
    if (plain == pieces_.end()) throw EngineError(http_.url(0) + " serves a vocabulary without a plain text token");
    plain_token_ = static_cast<Token>(plain - pieces_.begin());
  }

  void count(const json& r) const {
    const json t = r.value("timings", json::object());
    add_stats(1, t.value("prompt_n", 0), t.value("predicted_n", 0));
  }

  // --- completions --------------------------------------------------------------------------

  // How one /completion round ended.
  struct Round {
    std::string stop_type;  // the server's: "eos", "word", "limit"; "" when it did not say
    bool gap = false;       // streamed: the server held back a token (it ended inside a UTF-8
                            // character), so the stream lacks its id; the round stopped there
  };

  // One request's completion: rounds of /completion until it finishes by our rules. Rounds are
  // streamed, so that the completion ends (and the request is dropped) at the token where our
  // rules say; a round that lost a token to a gap is done again without streaming, where the
  // server returns every id.
  Completion complete(const std::vector<Token>& prompt, const GenerateRequest& req, CallContext& ctx) override {
    Completion c;
    if (req.stop.max_tokens <= 0) return c;  // kLength, nothing generated
    const StopMatcher stops(req.stop.stop);
    const json stop_strings = server_stops(req.stop);
    std::vector<bool> has_logprob;  // per token of c: whether its step came from the server
    std::vector<Token> context = prompt;
    bool finished = false;
    // Takes the next token and the server's entry for it (nullptr: none); true when it ends
    // the completion.
    auto take = [&](Token tok, const json* entry) {
      StepInfo step{tok, 0.0f, 0.0f, {}};
      if (entry) read_entry(*entry, req.sampling.top_logprobs, step);
      c.tokens.push_back(tok);
      c.steps.push_back(std::move(step));
      has_logprob.push_back(entry != nullptr);
      context.push_back(tok);
      finished = finishes(c, tok, req.stop, stops);
      return finished;
    };
    bool stream = true;
    for (uint64_t round = 0; !finished; ++round) {
      const int32_t remaining = req.stop.max_tokens - static_cast<int32_t>(c.tokens.size());
      json body = {{"prompt", context},
                   {"n_predict", remaining},
                   {"return_tokens", true},
                   {"n_probs", std::max(1, req.sampling.top_logprobs)},
                   {"post_sampling_probs", false},
                   {"cache_prompt", true},
                   {"stream", stream},
                   {"timings_per_token", stream}};
      if (!stream) {
        body["response_fields"] = json::array({"tokens", "completion_probabilities", "stop_type", "timings"});
      }
      add_sampling(body, req.sampling, round);
      if (!stop_strings.empty()) body["stop"] = stop_strings;
      const size_t before = c.tokens.size();
      Round r;
      if (!run_round(c, ctx, [&] { r = stream ? streamed_round(body, ctx, take) : plain_round(body, ctx, take); })) break;
      if (finished) break;
      if (r.gap) {
        // The ids before the gap are exact: go on from there, this time unstreamed.
        stream = false;
        continue;
      }
      stream = true;
      if (r.stop_type == "limit") {
        // Fewer tokens than asked: the server's context is full.
        if (static_cast<int32_t>(c.tokens.size()) < req.stop.max_tokens) c.finish_reason = FinishReason::kContextFull;
        break;
      }
      // The server stopped where our rules do not (an end-of-generation token with stop_at_eos
      // off; a stop string in the server's rendering of special tokens): go on from there.
      if (c.tokens.size() == before) {
        throw EngineError("remote endpoint stopped a completion without a token (stop type " +
                          (r.stop_type.empty() ? std::string("none") : r.stop_type) + ")");
      }
    }
    // Steps the server left without an entry (unstreamed: tokens inside a UTF-8 character, and
    // those of a matched stop string): a probe of each.
    for (size_t i = 0; i < c.tokens.size(); ++i) {
      if (has_logprob[i]) continue;
      std::vector<Token> prefix = prompt;
      prefix.insert(prefix.end(), c.tokens.begin(), c.tokens.begin() + static_cast<std::ptrdiff_t>(i));
      try {
        const Probe p = probe(prefix, {c.tokens[i]}, req.sampling.top_logprobs, ctx);
        c.steps[i].logprob = p.logprobs[0];
        c.steps[i].top = p.top;
      } catch (const Stopped&) {
        if (!ctx.cancelled()) throw;
        // Cancelled: the steps keep what the server gave (0 for the missing ones).
        c.finish_reason = FinishReason::kCancelled;
        break;
      }
    }
    sum_logprobs(c);
    return c;
  }

  using TakeToken = std::function<bool(Token, const json*)>;

  // An unstreamed round: every id comes back; entries exist for tokens after which the text is
  // whole UTF-8, in order, up to a matched stop string's tokens (left out): matched up by id.
  Round plain_round(const json& body, CallContext& ctx, const TakeToken& take) const {
    const json r = http_.post("/completion", body, &ctx);
    count(r);
    const std::vector<Token> tokens = r.value("tokens", std::vector<Token>());
    const json probs = r.value("completion_probabilities", json::array());
    size_t entry = 0;
    std::string whole;
    for (Token tok : tokens) {
      whole += token_to_piece(tok);
      const json* e = nullptr;
      if (utf8_complete_prefix(whole) == whole.size() && entry < probs.size() && probs[entry].value("id", -1) == tok) {
        e = &probs[entry++];
      }
      if (take(tok, e)) break;
    }
    return {r.value("stop_type", ""), false};
  }

  // A streamed round: each token as the server samples it, with its entry; the request is
  // dropped as soon as `take` says the completion ends.
  Round streamed_round(const json& body, CallContext& ctx, const TakeToken& take) const {
    Round round;
    json server_error;
    json timings;          // the latest chunk's (timings_per_token)
    size_t received = 0;   // tokens taken
    bool final = false;    // the server's last chunk came
    const size_t e = http_.stream("/completion", body, ctx, [&](const std::string& data) {
      json chunk;
      try {
        chunk = json::parse(data);
      } catch (const json::exception&) {
        return Http::Event::kMore;  // "[DONE]" and the like
      }
      if (chunk.contains("error")) {
        server_error = chunk["error"];
        return Http::Event::kCut;
      }
      if (chunk.contains("timings")) timings = chunk["timings"];
      if (chunk.value("stop", false)) {
        round.stop_type = chunk.value("stop_type", "");
        final = true;
        return Http::Event::kLast;
      }
      const std::vector<Token> tokens = chunk.value("tokens", std::vector<Token>());
      if (tokens.empty()) return Http::Event::kMore;
      // Ids come one per chunk; a count that jumps means one was held back.
      if (tokens.size() != 1 || chunk.value("tokens_predicted", -1) != static_cast<int64_t>(received) + 1) {
        round.gap = true;
        return Http::Event::kCut;
      }
      const json* entry = nullptr;
      if (chunk.contains("completion_probabilities") && !chunk["completion_probabilities"].empty() &&
          chunk["completion_probabilities"][0].value("id", -1) == tokens[0]) {
        entry = &chunk["completion_probabilities"][0];
      }
      ++received;
      return take(tokens[0], entry) ? Http::Event::kCut : Http::Event::kMore;
    });
    add_stats(1, timings.value("prompt_n", 0), final ? timings.value("predicted_n", 0) : static_cast<int>(received));
    if (!server_error.is_null()) {
      throw EngineError(http_.url(e) + "/completion failed mid-stream: " +
                        (server_error.is_object() ? server_error.value("message", server_error.dump()) : server_error.dump()));
    }
    return round;
  }

  // Temperature first, then top-k, top-p, min-p, as in-process; every other sampler of the
  // server off. llama-server's seeds are 32-bit, and 0xFFFFFFFF means "random".
  static void add_sampling(json& body, const SamplingParams& s, uint64_t round) {
    body["temperature"] = s.temperature > 0.0f ? s.temperature : 0.0f;
    body["top_k"] = s.top_k;
    body["top_p"] = s.top_p;
    body["min_p"] = s.min_p;
    body["typical_p"] = 1.0;
    body["repeat_penalty"] = 1.0;
    body["presence_penalty"] = 0.0;
    body["frequency_penalty"] = 0.0;
    body["dry_multiplier"] = 0.0;
    body["xtc_probability"] = 0.0;
    body["top_n_sigma"] = -1.0;
    body["mirostat"] = 0;
    body["samplers"] = json::array({"temperature", "top_k", "top_p", "min_p"});
    body["seed"] = static_cast<uint32_t>((s.seed + round * 0x9E3779B97F4A7C15ull) % 0xFFFFFFFFull);
  }

  static float entry_logprob(const json& e) {
    const json& v = e.at("logprob");
    // The server writes the lowest float for probability 0.
    return v.is_number() ? v.get<float>() : -std::numeric_limits<float>::infinity();
  }

  static void read_entry(const json& e, int32_t top_n, StepInfo& step) {
    step.logprob = entry_logprob(e);
    if (top_n <= 0) return;
    for (const json& t : e.at("top_logprobs")) {
      if (static_cast<int32_t>(step.top.size()) >= top_n) break;
      step.top.push_back({t.at("id").get<Token>(), entry_logprob(t)});
    }
  }

  // --- probes -------------------------------------------------------------------------------

  struct Probe {
    std::vector<float> logprobs;    // per candidate
    std::vector<TokenLogprob> top;  // the top_n most likely, when asked
  };

  // log P(candidate | prefix) for each candidate, from one-token completions of the prefix. The
  // server reports the raw probability of the token it samples, and lists the most likely ones:
  // the first completion forces (by a logit bias) the first candidate and lists the top entries,
  // where the others usually are; one outside them gets a forced completion of its own. A token
  // that ends inside a UTF-8 character cannot be forced (llama-server reports nothing for such a
  // token): it is read from a listing, 1024 entries wide, then the whole vocabulary, while a
  // token of plain text is sampled.
  Probe probe(const std::vector<Token>& prefix, const std::vector<Token>& candidates, int32_t top_n,
              CallContext& ctx) const {
    // The sampler chain is cut to a greedy pick (it runs over the whole vocabulary otherwise).
    const json body = {{"prompt", prefix},
                       {"n_predict", 1},
                       {"n_probs", std::max(top_n, options_.probe_top_k)},
                       {"post_sampling_probs", false},
                       {"temperature", 0},
                       {"samplers", json::array({"top_k"})},
                       {"top_k", 1},
                       {"cache_prompt", true},
                       {"response_fields", json::array({"completion_probabilities", "timings"})}};
    auto completion = [&](Token forced, int32_t n_probs) {
      json b = body;
      b["n_probs"] = n_probs;
      b["logit_bias"] = json::array({json::array({forced, kForceBias})});
      const json r = http_.post("/completion", b, &ctx);
      count(r);
      json e = first_entry(r);
      if (e.at("id").get<Token>() != forced) {
        throw EngineError("remote endpoint did not honour a logit bias (needed to read a token's probability)");
      }
      return e;
    };
    auto find = [](const json& entry, Token t) -> std::optional<float> {
      if (entry.at("id").get<Token>() == t) return entry_logprob(entry);
      for (const json& x : entry.at("top_logprobs")) {
        if (x.at("id").get<Token>() == t) return entry_logprob(x);
      }
      return std::nullopt;
    };
    const int32_t listed = body["n_probs"].get<int32_t>();
    Token first = plain_token_;
    for (Token t : candidates) {
      if (forceable(t)) {
        first = t;
        break;
      }
    }
    const json entry = completion(first, listed);
    Probe p;
    StepInfo step{};
    read_entry(entry, top_n, step);
    p.top = std::move(step.top);
    p.logprobs.assign(candidates.size(), 0.0f);
    for (size_t j = 0; j < candidates.size(); ++j) {
      std::optional<float> found = find(entry, candidates[j]);
      if (!found && forceable(candidates[j])) found = entry_logprob(completion(candidates[j], 1));
      for (int32_t wide : {std::min(1024, n_vocab_), n_vocab_}) {
        if (!found && wide > listed) found = find(completion(plain_token_, wide), candidates[j]);
      }
      if (!found) throw EngineError("remote endpoint listed the whole vocabulary without token " + std::to_string(candidates[j]));
      p.logprobs[j] = *found;
    }
    return p;
  }

  // Whether llama-server reports the probability of `t` when it samples it: not when its text
  // ends inside a UTF-8 character (it holds such tokens back, entries and all).
  bool forceable(Token t) const {
    const std::string piece = token_to_piece(t);
    return utf8_complete_prefix(piece) == piece.size();
  }

  static json first_entry(const json& r) {
    const json* probs = r.contains("completion_probabilities") ? &r.at("completion_probabilities") : nullptr;
    if (!probs || probs->empty()) {
      throw EngineError("remote endpoint gave no probabilities for a prefix (does it fit the server's context?)");
    }
    return probs->at(0);
  }

  EvaluateResult evaluate_one(const std::vector<Token>& base, const EvaluateRequest& req, CallContext& ctx) const override {
    EvaluateResult res;
    res.probs.assign(req.positions.size(), std::vector<float>(req.candidates.size(), 0.0f));
    // In order of position: each prefix extends the last, which the server's cache then holds.
    std::vector<size_t> order(req.positions.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return req.positions[a] < req.positions[b]; });
    for (size_t i : order) {
      std::vector<Token> prefix = base;
      prefix.insert(prefix.end(), req.tokens.begin(), req.tokens.begin() + req.positions[i] + 1);
      try {
        const Probe p = probe(prefix, req.candidates, 0, ctx);
        for (size_t j = 0; j < req.candidates.size(); ++j) res.probs[i][j] = std::exp(p.logprobs[j]);
      } catch (const ContextExceeded& e) {
        throw EngineError(std::string("the evaluated tokens do not fit the server's context: ") + e.what());
      }
    }
    return res;
  }

  bool has_template_ = false;
  Token eos_ = -1;
  Token plain_token_ = 0;  // a token of plain ASCII text: forced where any token will do
  std::vector<bool> eog_;
  mutable std::mutex pieces_mu_;
  mutable std::vector<std::string> pieces_;
  mutable std::vector<bool> piece_known_;
};

}  // namespace

std::unique_ptr<RemoteEngine> open_llama_server_engine(const RemoteOptions& options) {
  return std::make_unique<LlamaServerEngine>(options);
}

}  // namespace ponder::remote
