#include "engine/remote_common.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <exception>
#include <optional>
#include <thread>
#include <utility>

namespace ponder {

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

const char* to_string(RemoteApi api) {
  switch (api) {
    case RemoteApi::kAuto: return "auto";
    case RemoteApi::kLlamaServer: return "llama-server";
    case RemoteApi::kVllm: return "vllm";
  }
  return "?";
}

std::unique_ptr<RemoteEngine> open_remote_engine(const RemoteOptions& options) {
  RemoteApi api = options.api;
  if (api == RemoteApi::kAuto) {
    // The first endpoint's /v1/models tells: llama-server's entries carry meta.n_vocab, vLLM's
    // owned_by "vllm" and max_model_len.
    const remote::Http http(options);
    const remote::json models = http.request_at(0, "GET", "/v1/models", remote::json(), nullptr);
    const remote::json* first = nullptr;
    if (models.contains("data") && models["data"].is_array() && !models["data"].empty()) first = &models["data"][0];
    if (first && first->contains("meta") && (*first)["meta"].contains("n_vocab")) {
      api = RemoteApi::kLlamaServer;
    } else if (first && (first->value("owned_by", "") == "vllm" || first->contains("max_model_len"))) {
      api = RemoteApi::kVllm;
    } else {
      throw EngineError(http.url(0) + " is neither a llama-server nor a vLLM server (by its /v1/models); "
                        "name the API with --remote-api");
    }
  }
  return api == RemoteApi::kVllm ? remote::open_vllm_engine(options) : remote::open_llama_server_engine(options);
}

namespace remote {

namespace {

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

// Either server's answer to a prompt longer than its context: llama-server's error type, vLLM's
// messages ("This model's maximum context length is ...", "... longer than the maximum model
// length of ...").
bool says_context_exceeded(const std::string& body) {
  return body.find("exceed_context_size_error") != std::string::npos ||
         body.find("maximum context length") != std::string::npos ||
         body.find("maximum model length") != std::string::npos;
}

}  // namespace

std::string error_message(const std::string& body) {
  try {
    const json j = json::parse(body);
    if (j.contains("error")) {
      const json& e = j.at("error");
      if (e.is_object() && e.contains("message")) return e.at("message").get<std::string>();
      if (e.is_string()) return e.get<std::string>();
    }
    if (j.contains("message") && j["message"].is_string()) return j["message"].get<std::string>();
  } catch (const json::exception&) {
  }
  return body.substr(0, 200);
}

// --- Http ---------------------------------------------------------------------------------------

Http::Http(const RemoteOptions& options) : options_(options) {
  if (options.endpoints.empty()) throw EngineError("no remote endpoint given");
  if (options.max_inflight_per_endpoint < 1) throw EngineError("max in-flight requests per endpoint must be positive");
  if (options.retries < 0) throw EngineError("retries must not be negative");
  for (const std::string& url : options.endpoints) endpoints_.push_back(parse_endpoint(url));
}

Http::Endpoint Http::parse_endpoint(std::string url) {
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

size_t Http::capacity() const { return endpoints_.size() * static_cast<size_t>(options_.max_inflight_per_endpoint); }

// The endpoint with the fewest requests in flight (the work's previous one on a tie, since its
// cache holds the prefix; else the one least used), once one has room. Held until release().
size_t Http::acquire(CallContext* ctx) const {
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
      if (ctx) ctx->preferred_endpoint = static_cast<int>(*best);
      return *best;
    }
    slot_cv_.wait_for(lock, std::chrono::milliseconds(20));
    if (ctx && ctx->stopped()) throw Stopped{};
  }
}

void Http::release(size_t endpoint) const {
  {
    std::lock_guard lock(mu_);
    endpoints_[endpoint].outstanding--;
  }
  slot_cv_.notify_one();
}

json Http::post(const std::string& path, const json& body, CallContext* ctx) const {
  const Held held{this, acquire(ctx)};
  return request_at(held.e, "POST", path, body, ctx);
}

json Http::text_post(const std::string& path, const json& body) const {
  size_t e = 0;
  {
    std::lock_guard lock(mu_);
    for (size_t i = 1; i < endpoints_.size(); ++i) {
      if (endpoints_[i].outstanding < endpoints_[e].outstanding) e = i;
    }
  }
  return request_at(e, "POST", path, body, nullptr);
}

std::unique_ptr<httplib::Client> Http::take_client(size_t e) const {
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
void Http::back_off(int32_t attempt, CallContext* ctx) const {
  const auto until = Clock::now() + std::chrono::duration<double>(options_.retry_backoff_s * (1 << (attempt - 1)));
  while (Clock::now() < until) {
    if (ctx && ctx->stopped()) throw Stopped{};
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void Http::refuse(size_t e, const std::string& path, int status, const std::string& body) const {
  const std::string what = endpoints_[e].url + path + " answered HTTP " + std::to_string(status) + ": " + error_message(body);
  if (says_context_exceeded(body)) throw ContextExceeded(what);
  throw EngineError(what);
}

json Http::request_at(size_t e, const std::string& method, const std::string& path, const json& body,
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
    if (res->status != 200) refuse(e, path, res->status, res->body);
    try {
      return json::parse(res->body);
    } catch (const json::exception&) {
      throw EngineError(url + path + " answered with something other than JSON");
    }
  }
  throw EngineError("remote endpoint " + url + " failed: " + failure + " (" + path + ", " +
                    std::to_string(options_.retries + 1) + (options_.retries == 0 ? " try)" : " tries)"));
}

size_t Http::stream(const std::string& path, const json& body, CallContext& ctx,
                    const std::function<Event(const std::string& data)>& on_data) const {
  const Held held{this, acquire(&ctx)};
  const size_t e = held.e;
  const Endpoint& ep = endpoints_[e];
  const std::string payload = body.dump(-1, ' ', false, json::error_handler_t::replace);
  std::string failure;
  for (int32_t attempt = 0; attempt <= options_.retries; ++attempt) {
    if (attempt > 0) back_off(attempt, &ctx);
    int status = 0;
    std::string buffer;      // stream bytes not yet split into lines
    std::string error_body;  // the answer, when it is not a stream
    bool read = false;       // an event reached on_data
    bool cut = false;        // the reader has what it needs; the request is dropped
    bool last = false;       // the server's last event came
    httplib::Request req;
    req.method = "POST";
    req.path = ep.prefix + path;
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
      if (cut || last) return !cut;
      buffer.append(data, n);
      size_t start = 0;
      for (size_t nl; !cut && !last && (nl = buffer.find('\n', start)) != std::string::npos; start = nl + 1) {
        std::string line = buffer.substr(start, nl - start);
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (line.rfind("data:", 0) != 0) continue;  // comments (pings), blank lines
        const size_t from = line.size() > 5 && line[5] == ' ' ? 6 : 5;
        read = true;
        const Event ev = on_data(line.substr(from));
        cut = ev == Event::kCut;
        last = ev == Event::kLast;
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
      if (!cut && !last && (!res || status >= 500)) endpoints_[e].failures++;
      if (last && res) endpoints_[e].idle.push_back(std::move(client));  // cut: dropped with it
    }
    if (cut || last) return e;
    if (res && status == 200) throw EngineError(ep.url + path + " ended its stream without a last event");
    if (res && status < 500) refuse(e, path, status, error_body);
    failure = res ? "HTTP " + std::to_string(status) + ": " + error_message(error_body) : httplib::to_string(res.error());
    // What was read stands (the reader goes on from it); a retry could only repeat it, so a
    // failure after some is final.
    if (read) break;
  }
  throw EngineError("remote endpoint " + ep.url + " failed: " + failure + " (" + path + ")");
}

std::vector<EndpointStats> Http::endpoint_stats() const {
  std::lock_guard lock(mu_);
  std::vector<EndpointStats> out;
  for (const auto& e : endpoints_) out.push_back({e.url, e.requests, e.failures});
  return out;
}

// --- RemoteBase ---------------------------------------------------------------------------------

RemoteBase::RemoteBase(const RemoteOptions& options) : options_(options), http_(options) {
  if (options.max_branches < 1) throw EngineError("max branches must be positive");
  if (options.probe_top_k < 1) throw EngineError("probe top-k must be positive");
  branches_.resize(static_cast<size_t>(options.max_branches));
}

BranchId RemoteBase::new_branch(const std::vector<Token>& tokens) {
  check_tokens(tokens);
  const BranchId id = take_slot();
  branches_[id].tokens = tokens;
  return id;
}

BranchId RemoteBase::fork(BranchId parent) {
  get(parent);
  const BranchId child = take_slot();
  branches_[child].tokens = branches_[parent].tokens;
  return child;
}

void RemoteBase::append(BranchId branch, const std::vector<Token>& tokens) {
  check_tokens(tokens);
  auto& b = get(branch);
  b.tokens.insert(b.tokens.end(), tokens.begin(), tokens.end());
}

void RemoteBase::free_branch(BranchId branch) {
  get(branch) = Branch{};
  free_ids_.push_back(branch);
}

int32_t RemoteBase::free_slots() const {
  return static_cast<int32_t>(options_.max_branches - next_id_ + free_ids_.size());
}

std::vector<Completion> RemoteBase::generate(const std::vector<GenerateRequest>& initial, const OnFinish& on_finish) {
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
    Job(GenerateRequest r, std::vector<Token> p) : request(std::move(r)), prompt(std::move(p)), ctx(request.stop) {}
  };
  std::vector<std::shared_ptr<Job>> jobs;
  JobPool pool(http_.capacity());
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

std::vector<EvaluateResult> RemoteBase::evaluate(const std::vector<EvaluateRequest>& requests) {
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
    JobPool pool(http_.capacity());
    contexts.reserve(requests.size());
    for (size_t r = 0; r < requests.size(); ++r) {
      contexts.push_back(std::make_unique<CallContext>());
      CallContext* ctx = contexts.back().get();
      pool.submit(r, [this, r, ctx, &requests, &out] {
        out[r] = evaluate_one(get(requests[r].branch).tokens, requests[r], *ctx);
      });
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

EngineStats RemoteBase::stats() const {
  std::lock_guard lock(stats_mu_);
  return stats_;
}

bool RemoteBase::finishes(Completion& c, Token tok, const StopParams& stop, const StopMatcher& stops) const {
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

void RemoteBase::check_tokens(const std::vector<Token>& tokens) const {
  for (Token t : tokens) {
    if (t < 0 || t >= n_vocab_) throw EngineError("token id out of range: " + std::to_string(t));
  }
}

void RemoteBase::check_chat_call(const std::vector<ChatMessage>& messages, bool continue_final) const {
  if (!has_chat_template()) throw EngineError("the model has no chat template");
  if (continue_final && (messages.empty() || messages.back().role != "assistant")) {
    throw EngineError("continuing a message needs a final assistant message");
  }
}

json RemoteBase::server_stops(const StopParams& stop) {
  json out = json::array();
  for (const auto& s : stop.stop) {
    if (!s.empty()) out.push_back(s);
  }
  return out;
}

bool RemoteBase::run_round(Completion& c, CallContext& ctx, const std::function<void()>& round) {
  try {
    round();
    return true;
  } catch (const Stopped&) {
    if (!ctx.cancelled()) throw;
    c.finish_reason = FinishReason::kCancelled;
  } catch (const ContextExceeded&) {
    c.finish_reason = FinishReason::kContextFull;
  }
  return false;
}

void RemoteBase::sum_logprobs(Completion& c) {
  c.logprob = 0.0;
  for (const auto& s : c.steps) c.logprob += s.logprob;
}

void RemoteBase::add_stats(int64_t calls, int64_t prompt_tokens, int64_t generated_tokens) const {
  std::lock_guard lock(stats_mu_);
  stats_.decode_calls += calls;
  stats_.prompt_tokens += prompt_tokens;
  stats_.generated_tokens += generated_tokens;
}

const RemoteBase::Branch& RemoteBase::get(BranchId id) const {
  if (id < 0 || id >= static_cast<BranchId>(branches_.size()) || !branches_[id].live) {
    throw EngineError("unknown branch id " + std::to_string(id));
  }
  return branches_[id];
}

BranchId RemoteBase::take_slot() {
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
  branches_[id] = Branch{};
  branches_[id].live = true;
  return id;
}

// requests[first..]: live, non-empty branches not generating now, each once; what the remote
// engine cannot do (entropy) is refused here, before anything is sent.
void RemoteBase::check_new_requests(const std::vector<GenerateRequest>& requests, size_t first,
                                    std::vector<bool>& busy) const {
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

void RemoteBase::add_seconds(Clock::time_point t0) {
  std::lock_guard lock(stats_mu_);
  stats_.decode_seconds += seconds_since(t0);
}

}  // namespace remote
}  // namespace ponder
