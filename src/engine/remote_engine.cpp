#include "engine/remote_engine.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <exception>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include <nlohmann/json.hpp>

#include "engine/stop.h"
#include "engine/timing.h"

namespace ponder {

using nlohmann::json;

std::vector<std::string> split_endpoints(const std::vector<std::string>& flags) {
  std::vector<std::string> out;
  for (const std::string& flag : flags) {
    size_t start = 0;
    while (start <= flag.size()) {
      size_t end = flag.find(',', start);
      if (end == std::string::npos) end = flag.size();
      std::string url = flag.substr(start, end - start);
      url.erase(0, url.find_first_not_of(" \t"));
      url.erase(url.find_last_not_of(" \t") + 1);
      if (!url.empty()) out.push_back(url);
      start = end + 1;
    }
  }
  return out;
}

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

// The request could not finish because its call was stopped (a cancel flag, or another
// request's error): not an error of its own.
struct Stopped {};

// A request the server refused because the prompt does not fit its context.
class ContextExceeded : public EngineError {
 public:
  using EngineError::EngineError;
};

// One worker's view of the call it works for: stopping it aborts its HTTP request at once.
class CallContext {
 public:
  explicit CallContext(const std::atomic<bool>* cancel = nullptr) : cancel_(cancel) {}
  bool stopped() const {
    return stopped_.load() || (cancel_ && cancel_->load(std::memory_order_relaxed));
  }
  bool cancelled() const { return cancel_ && cancel_->load(std::memory_order_relaxed); }
  void stop() {
    stopped_ = true;
    std::lock_guard lock(mu_);
    if (active_) active_->stop();
  }
  // The client of the request in flight (nullptr: none). After stop(), no new one starts.
  bool set_active(httplib::Client* client) {
    std::lock_guard lock(mu_);
    if (client && stopped()) return false;
    active_ = client;
    return true;
  }
  int preferred_endpoint = -1;  // where this work's prefix was last sent (its cache is there)

 private:
  const std::atomic<bool>* cancel_;
  std::atomic<bool> stopped_{false};
  std::mutex mu_;
  httplib::Client* active_ = nullptr;
};

struct Endpoint {
  std::string url;     // as given, for messages
  std::string origin;  // scheme://host:port
  std::string prefix;  // path before the API's own ("" or "/some/base")
  int32_t outstanding = 0;
  int64_t requests = 0;
  int64_t failures = 0;
  std::vector<std::unique_ptr<httplib::Client>> idle;  // keep-alive connections
};

struct RemoteBranch {
  bool live = false;
  std::vector<Token> tokens;
};

// Runs jobs on up to `threads` threads; the caller collects them as they finish.
class JobPool {
 public:
  explicit JobPool(size_t threads) : max_threads_(std::max<size_t>(threads, 1)) {}
  ~JobPool() {
    {
      std::lock_guard lock(mu_);
      closing_ = true;
    }
    work_cv_.notify_all();
    for (auto& t : threads_) t.join();
  }

  void submit(size_t id, std::function<void()> job) {
    {
      std::lock_guard lock(mu_);
      queue_.emplace_back(id, std::move(job));
      ++pending_;
      if (threads_.size() < max_threads_ && queue_.size() > idle_) threads_.emplace_back([this] { work(); });
    }
    work_cv_.notify_one();
  }

  // Waits up to `wait` for a job to finish: its id and what it threw (nullptr: nothing), or
  // nullopt on timeout.
  std::optional<std::pair<size_t, std::exception_ptr>> next(std::chrono::milliseconds wait) {
    std::unique_lock lock(mu_);
    if (!done_cv_.wait_for(lock, wait, [&] { return !done_.empty(); })) return std::nullopt;
    auto r = done_.front();
    done_.pop_front();
    --pending_;
    return r;
  }
  size_t pending() const {
    std::lock_guard lock(mu_);
    return pending_;
  }
  // Jobs not started yet are dropped.
  void drop_queued() {
    std::lock_guard lock(mu_);
    pending_ -= queue_.size();
    queue_.clear();
  }

 private:
  void work() {
    std::unique_lock lock(mu_);
    while (true) {
      ++idle_;
      work_cv_.wait(lock, [&] { return closing_ || !queue_.empty(); });
      --idle_;
      if (queue_.empty()) return;
      auto [id, job] = std::move(queue_.front());
      queue_.pop_front();
      lock.unlock();
      std::exception_ptr error;
      try {
        job();
      } catch (...) {
        error = std::current_exception();
      }
      lock.lock();
      done_.emplace_back(id, error);
      done_cv_.notify_one();
    }
  }

  const size_t max_threads_;
  mutable std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::deque<std::pair<size_t, std::function<void()>>> queue_;
  std::deque<std::pair<size_t, std::exception_ptr>> done_;
  std::vector<std::thread> threads_;
  size_t pending_ = 0;  // submitted and not yet collected by next()
  size_t idle_ = 0;
  bool closing_ = false;
};

class LlamaServerEngine final : public RemoteEngine {
 public:
  explicit LlamaServerEngine(const RemoteOptions& options) : options_(options) {
    if (options.endpoints.empty()) throw EngineError("no remote endpoint given");
    if (options.max_inflight_per_endpoint < 1) throw EngineError("max in-flight requests per endpoint must be positive");
    if (options.max_branches < 1) throw EngineError("max branches must be positive");
    if (options.retries < 0) throw EngineError("retries must not be negative");
    if (options.probe_top_k < 1) throw EngineError("probe top-k must be positive");
    for (const std::string& url : options.endpoints) endpoints_.push_back(parse_endpoint(url));
    branches_.resize(static_cast<size_t>(options.max_branches));

    // Every endpoint must answer and serve the same vocabulary; the first one tells the rest.
    for (size_t i = 0; i < endpoints_.size(); ++i) {
      const json models = request_at(i, "GET", "/v1/models", json(), nullptr);
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
        throw EngineError(endpoints_[i].url + " is not a llama-server (its /v1/models has no vocabulary size)");
      }
      if (i == 0) n_vocab_ = n_vocab;
      if (n_vocab != n_vocab_) {
        throw EngineError("the remote endpoints serve different models: " + endpoints_[0].url + " has " +
                          std::to_string(n_vocab_) + " tokens, " + endpoints_[i].url + " has " +
                          std::to_string(n_vocab));
      }
      if (i == 0) {
        const json props = request_at(i, "GET", "/props", json(), nullptr);
        const std::string tmpl = props.value("chat_template", "");
        has_template_ = !tmpl.empty() && tmpl != kServerFallbackTemplate;
        const std::string eos = props.value("eos_token", "");
        if (!eos.empty()) {
          const std::vector<Token> ids = tokenize(eos, false, true);
          if (ids.size() == 1) eos_ = ids[0];
        }
      }
    }
    if (n_vocab_ <= 0) throw EngineError(endpoints_[0].url + " reports an empty vocabulary");
    read_vocabulary();
  }

  // --- text ---------------------------------------------------------------------------------

  std::vector<Token> tokenize(std::string_view text, bool add_special, bool parse_special) const override {
    const json r = text_post(
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
    const json r = text_post("/detokenize", {{"tokens", json::array({token})}});
    std::lock_guard lock(pieces_mu_);
    pieces_[token] = r.at("content").get<std::string>();
    piece_known_[token] = true;
    return pieces_[token];
  }

  bool has_chat_template() const override { return has_template_; }

  // Rendered by the server: see remote_engine.h.
  std::string apply_chat_template(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                  bool continue_final) const override {
    if (!has_template_) throw EngineError("the model has no chat template");
    if (continue_final && (messages.empty() || messages.back().role != "assistant")) {
      throw EngineError("continuing a message needs a final assistant message");
    }
    // As in-process: the final message gets a marker at its end, and the render is cut there.
    static const std::string kMarker = "\x1f<ponder-open-end>\x1f";
    json msgs = json::array();
    for (size_t i = 0; i < messages.size(); ++i) {
      std::string content = messages[i].content;
      if (continue_final && i + 1 == messages.size()) content += kMarker;
      msgs.push_back({{"role", messages[i].role}, {"content", content}});
    }
    const json r =
        text_post("/apply-template", {{"messages", msgs}, {"add_generation_prompt", add_generation_prompt && !continue_final}});
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

  // --- branches -----------------------------------------------------------------------------

  BranchId new_branch(const std::vector<Token>& tokens) override {
    check_tokens(tokens);
    const BranchId id = take_slot();
    branches_[id].tokens = tokens;
    return id;
  }

  BranchId fork(BranchId parent) override {
    get(parent);
    const BranchId child = take_slot();
    branches_[child].tokens = branches_[parent].tokens;
    return child;
  }

  void append(BranchId branch, const std::vector<Token>& tokens) override {
    check_tokens(tokens);
    auto& b = get(branch);
    b.tokens.insert(b.tokens.end(), tokens.begin(), tokens.end());
  }

  void free_branch(BranchId branch) override {
    get(branch) = RemoteBranch{};
    free_ids_.push_back(branch);
  }

  const std::vector<Token>& branch_tokens(BranchId branch) const override { return get(branch).tokens; }

  int32_t free_slots() const override {
    return static_cast<int32_t>(options_.max_branches - next_id_ + free_ids_.size());
  }

  // --- work ---------------------------------------------------------------------------------

  using Engine::generate;
  std::vector<Completion> generate(const std::vector<GenerateRequest>& initial, const OnFinish& on_finish) override {
    const auto t0 = Clock::now();
    std::vector<GenerateRequest> requests = initial;
    std::vector<bool> busy(branches_.size(), false);
    check_new_requests(requests, 0, busy);

    // What a worker needs, owned by the job: the caller's vectors grow while jobs run.
    struct Job {
      GenerateRequest request;
      std::vector<Token> prompt;
      CallContext ctx;
      Completion result;
      Job(GenerateRequest r, std::vector<Token> p) : request(std::move(r)), prompt(std::move(p)), ctx(request.stop.cancel) {}
    };
    std::vector<std::shared_ptr<Job>> jobs;
    JobPool pool(capacity());
    auto start = [&](size_t i) {
      auto job = std::make_shared<Job>(requests[i], branches_[requests[i].branch].tokens);
      jobs.push_back(job);
      pool.submit(i, [this, job] { job->result = complete(job->prompt, job->request, job->ctx); });
    };
    for (size_t i = 0; i < requests.size(); ++i) start(i);

    std::vector<Completion> out(requests.size());
    try {
      while (pool.pending() > 0) {
        auto done = pool.next(std::chrono::milliseconds(20));
        if (!done) {
          for (auto& job : jobs) {
            if (job->ctx.cancelled()) job->ctx.stop();
          }
          continue;
        }
        const auto [i, error] = *done;
        if (error) std::rethrow_exception(error);
        out[i] = std::move(jobs[i]->result);
        auto& b = branches_[requests[i].branch];
        b.tokens.insert(b.tokens.end(), out[i].tokens.begin(), out[i].tokens.end());
        busy[requests[i].branch] = false;
        if (!on_finish) continue;
        std::vector<GenerateRequest> more = on_finish(i, out[i]);
        if (more.empty()) continue;
        const size_t first = requests.size();
        for (auto& r : more) requests.push_back(std::move(r));
        check_new_requests(requests, first, busy);
        out.resize(requests.size());
        for (size_t k = first; k < requests.size(); ++k) start(k);
      }
    } catch (...) {
      pool.drop_queued();
      for (auto& job : jobs) job->ctx.stop();
      add_seconds(t0);
      throw;  // the pool's destructor waits for the stopped requests
    }
    add_seconds(t0);
    return out;
  }

  std::vector<EvaluateResult> evaluate(const std::vector<EvaluateRequest>& requests) override {
    const auto t0 = Clock::now();
    std::vector<EvaluateResult> out(requests.size());
    std::vector<bool> seen(branches_.size(), false);
    for (const auto& req : requests) {
      get(req.branch);
      if (seen[req.branch]) throw EngineError("a branch appears twice in one evaluate call");
      seen[req.branch] = true;
      check_tokens(req.tokens);
      for (Token t : req.candidates) {
        if (t < 0 || t >= n_vocab_) throw EngineError("candidate token id out of range");
      }
      for (int32_t p : req.positions) {
        if (p < 0 || static_cast<size_t>(p) >= req.tokens.size()) {
          throw EngineError("probe position outside the evaluated tokens");
        }
      }
    }
    {
      std::vector<std::unique_ptr<CallContext>> contexts;  // outlives the pool's threads
      JobPool pool(capacity());
      contexts.reserve(requests.size());
      for (size_t r = 0; r < requests.size(); ++r) {
        contexts.push_back(std::make_unique<CallContext>());
        CallContext* ctx = contexts.back().get();
        pool.submit(r, [this, r, ctx, &requests, &out] { out[r] = evaluate_one(requests[r], *ctx); });
      }
      try {
        while (pool.pending() > 0) {
          auto done = pool.next(std::chrono::milliseconds(1000));
          if (done && done->second) std::rethrow_exception(done->second);
        }
      } catch (...) {
        pool.drop_queued();
        for (auto& ctx : contexts) ctx->stop();
        add_seconds(t0);
        throw;
      }
    }
    for (const auto& req : requests) append(req.branch, req.tokens);
    add_seconds(t0);
    return out;
  }

  EngineStats stats() const override {
    std::lock_guard lock(mu_);
    return stats_;
  }

  std::vector<EndpointStats> endpoint_stats() const override {
    std::lock_guard lock(mu_);
    std::vector<EndpointStats> out;
    for (const auto& e : endpoints_) out.push_back({e.url, e.requests, e.failures});
    return out;
  }

  int32_t context_size() const override { return context_size_; }
  RemoteModelInfo model_info() const override { return model_info_; }

 private:
  // --- HTTP ---------------------------------------------------------------------------------

  static Endpoint parse_endpoint(std::string url) {
    Endpoint e;
    e.url = url;
    const size_t scheme = url.find("://");
    if (scheme == std::string::npos) url = "http://" + url;
    const size_t host = url.find("://") + 3;
    const size_t path = url.find('/', host);
    e.origin = url.substr(0, path);
    if (path != std::string::npos) e.prefix = url.substr(path);
    while (!e.prefix.empty() && e.prefix.back() == '/') e.prefix.pop_back();
    if (e.prefix.size() >= 3 && e.prefix.compare(e.prefix.size() - 3, 3, "/v1") == 0) e.prefix.resize(e.prefix.size() - 3);
    if (e.origin.size() <= host) throw EngineError("not a URL: " + e.url);
    return e;
  }

  size_t capacity() const { return endpoints_.size() * static_cast<size_t>(options_.max_inflight_per_endpoint); }

  // The endpoint with the fewest requests in flight (the work's previous one on a tie, since its
  // cache holds the prefix; else the one least used), once one has room. Held until release().
  size_t acquire(CallContext* ctx) const {
    std::unique_lock lock(mu_);
    while (true) {
      std::optional<size_t> best;
      for (size_t i = 0; i < endpoints_.size(); ++i) {
        const auto& e = endpoints_[i];
        if (e.outstanding >= options_.max_inflight_per_endpoint) continue;
        if (!best) {
          best = i;
          continue;
        }
        const auto& b = endpoints_[*best];
        const bool preferred = ctx && ctx->preferred_endpoint == static_cast<int>(i);
        const bool best_preferred = ctx && ctx->preferred_endpoint == static_cast<int>(*best);
        if (e.outstanding < b.outstanding ||
            (e.outstanding == b.outstanding && !best_preferred && (preferred || e.requests < b.requests))) {
          best = i;
        }
      }
      if (best) {
        endpoints_[*best].outstanding++;
        return *best;
      }
      slot_cv_.wait_for(lock, std::chrono::milliseconds(20));
      if (ctx && ctx->stopped()) throw Stopped{};
    }
  }

  void release(size_t endpoint) const {
    {
      std::lock_guard lock(mu_);
      endpoints_[endpoint].outstanding--;
    }
    slot_cv_.notify_one();
  }

  json post(const std::string& path, const json& body, CallContext* ctx) const {
    const size_t e = acquire(ctx);
    struct Release {
      const LlamaServerEngine* self;
      size_t e;
      ~Release() { self->release(e); }
    } release_guard{this, e};
    if (ctx) ctx->preferred_endpoint = static_cast<int>(e);
    return request_at(e, "POST", path, body, ctx);
  }

  // A text call (tokenize, a token's text, a chat template): small, so it does not wait for
  // room under max_inflight_per_endpoint (a worker that holds room may be the one asking).
  json text_post(const std::string& path, const json& body) const {
    size_t e = 0;
    {
      std::lock_guard lock(mu_);
      for (size_t i = 1; i < endpoints_.size(); ++i) {
        if (endpoints_[i].outstanding < endpoints_[e].outstanding) e = i;
      }
    }
    return request_at(e, "POST", path, body, nullptr);
  }

  std::unique_ptr<httplib::Client> take_client(size_t e) const {
    {
      std::lock_guard lock(mu_);
      auto& idle = endpoints_[e].idle;
      if (!idle.empty()) {
        auto c = std::move(idle.back());
        idle.pop_back();
        return c;
      }
    }
    auto c = std::make_unique<httplib::Client>(endpoints_[e].origin);
    auto whole_and_micro = [](double s, auto&& set) {
      const auto sec = static_cast<time_t>(s);
      set(sec, static_cast<time_t>((s - static_cast<double>(sec)) * 1e6));
    };
    whole_and_micro(options_.connect_timeout_s, [&](time_t s, time_t us) { c->set_connection_timeout(s, us); });
    whole_and_micro(options_.request_timeout_s, [&](time_t s, time_t us) {
      c->set_read_timeout(s, us);
      c->set_write_timeout(s, us);
    });
    c->set_keep_alive(true);
    // Headers and body go out in separate writes: with Nagle's algorithm the body would wait
    // for the server's delayed ACK, 40 ms a request.
    c->set_tcp_nodelay(true);
    if (!options_.api_key.empty()) c->set_bearer_token_auth(options_.api_key);
    return c;
  }

  // Waits retry_backoff_s * 2^(attempt-1), in short sleeps so that a stopped call does not wait.
  void back_off(int32_t attempt, CallContext* ctx) const {
    const auto until = Clock::now() + std::chrono::duration<double>(options_.retry_backoff_s * (1 << (attempt - 1)));
    while (Clock::now() < until) {
      if (ctx && ctx->stopped()) throw Stopped{};
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
  }

  // One request to endpoint e, retried on connection errors and 5xx answers.
  json request_at(size_t e, const std::string& method, const std::string& path, const json& body,
                  CallContext* ctx) const {
    const std::string& url = endpoints_[e].url;
    const std::string target = endpoints_[e].prefix + path;
    const std::string payload = body.is_null() ? std::string() : body.dump(-1, ' ', false, json::error_handler_t::replace);
    std::string failure;
    for (int32_t attempt = 0; attempt <= options_.retries; ++attempt) {
      if (attempt > 0) back_off(attempt, ctx);
      auto client = take_client(e);
      if (ctx && !ctx->set_active(client.get())) throw Stopped{};
      httplib::Result res = method == "GET" ? client->Get(target.c_str())
                                            : client->Post(target.c_str(), payload, "application/json");
      if (ctx) ctx->set_active(nullptr);
      if (ctx && ctx->stopped()) throw Stopped{};
      {
        std::lock_guard lock(mu_);
        endpoints_[e].requests++;
        if (!res || res->status >= 500) endpoints_[e].failures++;
      }
      if (!res) {
        failure = httplib::to_string(res.error());
        continue;  // the connection is dropped with this client
      }
      {
        std::lock_guard lock(mu_);
        endpoints_[e].idle.push_back(std::move(client));
      }
      if (res->status >= 500) {
        failure = "HTTP " + std::to_string(res->status) + ": " + error_message(res->body);
        continue;
      }
      if (res->status != 200) {
        const std::string why = error_message(res->body);
        const std::string what = url + path + " answered HTTP " + std::to_string(res->status) + ": " + why;
        if (res->body.find("exceed_context_size_error") != std::string::npos) throw ContextExceeded(what);
        throw EngineError(what);
      }
      try {
        return json::parse(res->body);
      } catch (const json::exception&) {
        throw EngineError(url + path + " answered with something other than JSON");
      }
    }
    throw EngineError("remote endpoint " + url + " failed: " + failure + " (" + path + ", " +
                      std::to_string(options_.retries + 1) + (options_.retries == 0 ? " try)" : " tries)"));
  }

  static std::string error_message(const std::string& body) {
    try {
      const json j = json::parse(body);
      if (j.contains("error")) {
        const json& e = j.at("error");
        if (e.is_object() && e.contains("message")) return e.at("message").get<std::string>();
        if (e.is_string()) return e.get<std::string>();
      }
    } catch (const json::exception&) {
    }
    return body.substr(0, 200);
  }

  // --- vocabulary ---------------------------------------------------------------------------

  // One completion with the whole distribution gives every token's text (the server's rendering,
  // in bytes); the end-of-generation set is the logit bias the server adds for ignore_eos. It
  // samples the token of "a" (forced), since for a token that ends inside a UTF-8 character the
  // server would list nothing.
  void read_vocabulary() {
    const std::vector<Token> a = tokenize("a", false, false);
    if (a.empty()) throw EngineError(endpoints_[0].url + " tokenizes \"a\" to nothing");
    const json r = post("/completion",
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
      throw EngineError(endpoints_[0].url + " answered a completion in an unexpected shape: " + e.what());
    }
    if (eos_ >= 0 && eos_ < n_vocab_) eog_[eos_] = true;
    const auto plain = std::find_if(pieces_.begin(), pieces_.end(), [](const std::string& p) {
      return !p.empty() && std::all_of(p.begin(), p.end(), [](char ch) { return ch > 0x20 && ch < 0x7F; });
    });
    if (plain == pieces_.end()) throw EngineError(endpoints_[0].url + " serves a vocabulary without a plain text token");
    plain_token_ = static_cast<Token>(plain - pieces_.begin());
  }

  // --- branches -----------------------------------------------------------------------------

  const RemoteBranch& get(BranchId id) const {
    if (id < 0 || id >= static_cast<BranchId>(branches_.size()) || !branches_[id].live) {
      throw EngineError("unknown branch id " + std::to_string(id));
    }
    return branches_[id];
  }
  RemoteBranch& get(BranchId id) { return const_cast<RemoteBranch&>(std::as_const(*this).get(id)); }

  BranchId take_slot() {
    BranchId id;
    if (!free_ids_.empty()) {
      const auto lowest = std::min_element(free_ids_.begin(), free_ids_.end());
      id = *lowest;
      free_ids_.erase(lowest);
    } else if (next_id_ < options_.max_branches) {
      id = next_id_++;
    } else {
      throw EngineError("too many live branches (at most " + std::to_string(options_.max_branches) + ")");
    }
    branches_[id] = RemoteBranch{};
    branches_[id].live = true;
    return id;
  }

  void check_tokens(const std::vector<Token>& tokens) const {
    for (Token t : tokens) {
      if (t < 0 || t >= n_vocab_) throw EngineError("token id out of range: " + std::to_string(t));
    }
  }

  // requests[first..]: live, non-empty branches not generating now, each once; what the remote
  // engine cannot do (entropy) is refused here, before anything is sent.
  void check_new_requests(const std::vector<GenerateRequest>& requests, size_t first, std::vector<bool>& busy) const {
    for (size_t i = first; i < requests.size(); ++i) {
      const auto& r = requests[i];
      if (get(r.branch).tokens.empty()) throw EngineError("cannot generate from an empty branch");
      if (busy[r.branch]) throw EngineError("a branch appears twice in one generate call");
      if (r.sampling.entropy) {
        throw EngineError("entropy needs the whole distribution at every step, which the remote engine does not fetch");
      }
      busy[r.branch] = true;
    }
  }

  void add_seconds(Clock::time_point t0) {
    std::lock_guard lock(mu_);
    stats_.decode_seconds += seconds_since(t0);
  }

  void count(const json& r) const {
    std::lock_guard lock(mu_);
    stats_.decode_calls++;
    if (r.contains("timings")) {
      stats_.prompt_tokens += r["timings"].value("prompt_n", 0);
      stats_.generated_tokens += r["timings"].value("predicted_n", 0);
    }
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
  Completion complete(const std::vector<Token>& prompt, const GenerateRequest& req, CallContext& ctx) {
    Completion c;
    if (req.stop.max_tokens <= 0) return c;  // kLength, nothing generated
    const StopMatcher stops(req.stop.stop);
    json stop_strings = json::array();
    for (const auto& s : req.stop.stop) {
      if (!s.empty()) stop_strings.push_back(s);
    }
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
      try {
        r = stream ? streamed_round(body, ctx, take) : plain_round(body, ctx, take);
      } catch (const Stopped&) {
        if (!ctx.cancelled()) throw;
        c.finish_reason = FinishReason::kCancelled;
        break;
      } catch (const ContextExceeded&) {
        c.finish_reason = FinishReason::kContextFull;
        break;
      }
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
    c.logprob = 0.0;
    for (const auto& s : c.steps) c.logprob += s.logprob;
    return c;
  }

  using TakeToken = std::function<bool(Token, const json*)>;

  // An unstreamed round: every id comes back; entries exist for tokens after which the text is
  // whole UTF-8, in order, up to a matched stop string's tokens (left out): matched up by id.
  Round plain_round(const json& body, CallContext& ctx, const TakeToken& take) const {
    const json r = post("/completion", body, &ctx);
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
    const size_t e = acquire(&ctx);
    struct Release {
      const LlamaServerEngine* self;
      size_t e;
      ~Release() { self->release(e); }
    } release_guard{this, e};
    ctx.preferred_endpoint = static_cast<int>(e);
    const Endpoint& ep = endpoints_[e];
    const std::string payload = body.dump(-1, ' ', false, json::error_handler_t::replace);
    std::string failure;
    for (int32_t attempt = 0; attempt <= options_.retries; ++attempt) {
      if (attempt > 0) back_off(attempt, &ctx);
      Round round;
      int status = 0;
      std::string buffer;      // stream bytes not yet split into lines
      std::string error_body;  // the answer, when it is not a stream
      json server_error;
      json timings;            // the latest chunk's (timings_per_token)
      size_t received = 0;     // tokens taken in this attempt
      bool cut = false;        // we end it: our rules or a gap; the request is dropped
      bool final = false;      // the server's last chunk came
      auto on_line = [&](const std::string& line) {
        if (line.rfind("data: ", 0) != 0) return;  // comments (pings), blank lines
        json chunk;
        try {
          chunk = json::parse(line.substr(6));
        } catch (const json::exception&) {
          return;  // "[DONE]" and the like
        }
        if (chunk.contains("error")) {
          server_error = chunk["error"];
          cut = true;
          return;
        }
        if (chunk.contains("timings")) timings = chunk["timings"];
        if (chunk.value("stop", false)) {
          round.stop_type = chunk.value("stop_type", "");
          final = true;
          return;
        }
        const std::vector<Token> tokens = chunk.value("tokens", std::vector<Token>());
        if (tokens.empty()) return;
        // Ids come one per chunk; a count that jumps means one was held back.
        if (tokens.size() != 1 || chunk.value("tokens_predicted", -1) != static_cast<int64_t>(received) + 1) {
          round.gap = true;
          cut = true;
          return;
        }
        const json* entry = nullptr;
        if (chunk.contains("completion_probabilities") && !chunk["completion_probabilities"].empty() &&
            chunk["completion_probabilities"][0].value("id", -1) == tokens[0]) {
          entry = &chunk["completion_probabilities"][0];
        }
        ++received;
        cut = take(tokens[0], entry);
      };
      httplib::Request req;
      req.method = "POST";
      req.path = ep.prefix + "/completion";
      req.headers.emplace("Content-Type", "application/json");
      req.body = payload;
      req.response_handler = [&](const httplib::Response& r) {
        status = r.status;
        return true;
      };
      req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
        if (ctx.stopped()) return false;
        if (status != 200) {
          error_body.append(data, n);
          return true;
        }
        if (cut || final) return !cut;
        buffer.append(data, n);
        size_t start = 0;
        for (size_t nl; !cut && !final && (nl = buffer.find('\n', start)) != std::string::npos; start = nl + 1) {
          on_line(buffer.substr(start, nl - start));
        }
        buffer.erase(0, start);
        return !cut;
      };
      auto client = take_client(e);
      if (!ctx.set_active(client.get())) throw Stopped{};
      const httplib::Result res = client->send(req);
      ctx.set_active(nullptr);
      if (ctx.stopped()) throw Stopped{};
      {
        std::lock_guard lock(mu_);
        endpoints_[e].requests++;
        if (!cut && !final && (!res || status >= 500)) endpoints_[e].failures++;
        if (cut || final) {
          stats_.decode_calls++;
          stats_.prompt_tokens += timings.value("prompt_n", 0);
          stats_.generated_tokens += final ? timings.value("predicted_n", 0) : static_cast<int>(received);
        }
        if (final && res) endpoints_[e].idle.push_back(std::move(client));  // cut: dropped with it
      }
      if (!server_error.is_null()) {
        throw EngineError(ep.url + "/completion failed mid-stream: " +
                          (server_error.is_object() ? server_error.value("message", server_error.dump()) : server_error.dump()));
      }
      if (cut || final) return round;
      if (res && status == 200) throw EngineError(ep.url + "/completion ended its stream without a last chunk");
      if (res && status < 500) {
        const std::string what = ep.url + "/completion answered HTTP " + std::to_string(status) + ": " + error_message(error_body);
        if (error_body.find("exceed_context_size_error") != std::string::npos) throw ContextExceeded(what);
        throw EngineError(what);
      }
      failure = res ? "HTTP " + std::to_string(status) + ": " + error_message(error_body) : httplib::to_string(res.error());
      // Tokens taken stand (the caller's rounds go on from them); a retry could only repeat
      // them, so a failure after some is final.
      if (received > 0) break;
    }
    throw EngineError("remote endpoint " + ep.url + " failed: " + failure + " (/completion)");
  }

  // The in-process engine's rules, applied after token `tok` (already in c.tokens): sets the
  // finish reason and cuts the text when the completion ends here.
  bool finishes(Completion& c, Token tok, const StopParams& stop, const StopMatcher& stops) const {
    if (stop.stop_at_eos && is_end_of_generation(tok)) {
      c.finish_reason = FinishReason::kEos;
      return true;
    }
    const size_t checked = c.text.size();
    c.text += token_to_piece(tok);
    if (auto at = stops.find(c.text, checked)) {
      size_t end = *at;
      if (stop.include_stop_in_text) {
        for (const auto& s : stop.stop) {
          if (!s.empty() && c.text.compare(*at, s.size(), s) == 0) {
            end = *at + s.size();
            break;
          }
        }
      }
      c.text.resize(end);
      c.finish_reason = FinishReason::kStop;
      return true;
    }
    if (stop.stop_when) {
      // Requests run on threads of their own: one call at a time, as from one decode loop.
      std::unique_lock lock(stop_when_mu_);
      if (auto at = stop.stop_when(c.text)) {
        c.text.resize(std::min(*at, c.text.size()));
        c.finish_reason = FinishReason::kStop;
        return true;
      }
    }
    if (static_cast<int32_t>(c.tokens.size()) >= stop.max_tokens) {
      c.finish_reason = FinishReason::kLength;
      return true;
    }
    return false;
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
      const json r = post("/completion", b, &ctx);
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

  EvaluateResult evaluate_one(const EvaluateRequest& req, CallContext& ctx) const {
    EvaluateResult res;
    res.probs.assign(req.positions.size(), std::vector<float>(req.candidates.size(), 0.0f));
    // In order of position: each prefix extends the last, which the server's cache then holds.
    std::vector<size_t> order(req.positions.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return req.positions[a] < req.positions[b]; });
    const std::vector<Token>& base = get(req.branch).tokens;
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

  RemoteOptions options_;
  mutable std::vector<Endpoint> endpoints_;  // counters and idle connections change under mu_
  mutable std::mutex mu_;
  mutable std::condition_variable slot_cv_;
  mutable EngineStats stats_;

  int32_t n_vocab_ = 0;
  int32_t context_size_ = 0;
  RemoteModelInfo model_info_;
  bool has_template_ = false;
  Token eos_ = -1;
  Token plain_token_ = 0;  // a token of plain ASCII text: forced where any token will do
  std::vector<bool> eog_;
  mutable std::mutex pieces_mu_;
  mutable std::mutex stop_when_mu_;
  mutable std::vector<std::string> pieces_;
  mutable std::vector<bool> piece_known_;

  std::vector<RemoteBranch> branches_;
  std::vector<BranchId> free_ids_;
  int32_t next_id_ = 0;
};

}  // namespace

std::unique_ptr<RemoteEngine> open_remote_engine(const RemoteOptions& options) {
  return std::make_unique<LlamaServerEngine>(options);
}

}  // namespace ponder
