// What the remote engine's flavors (remote_engine.cpp: llama-server; vllm_engine.cpp: vLLM's
// OpenAI API) share: the HTTP plumbing (endpoints, keep-alive connections, retries, streams) and
// an engine base that holds the branches, runs generate() and evaluate() on worker threads and
// applies the in-process engine's stop rules. A flavor supplies the text calls, one request's
// completion and one request's probes. Internal to the engine library.
#pragma once

#include <httplib.h>

#include <atomic>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/remote_engine.h"
#include "engine/stop.h"
#include "engine/timing.h"

namespace ponder::remote {

using nlohmann::json;

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
  CallContext() = default;
  // Works for a request: cancelled once its StopParams say so (cancel or withdraw).
  explicit CallContext(const StopParams& stop) : cancel_(stop.cancel), withdraw_(stop.withdraw) {}
  bool stopped() const { return stopped_.load() || cancelled(); }
  bool cancelled() const {
    return (cancel_ && cancel_->load(std::memory_order_relaxed)) || (withdraw_ && withdraw_->load(std::memory_order_relaxed));
  }
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
  const std::atomic<bool>* cancel_ = nullptr;
  const std::atomic<bool>* withdraw_ = nullptr;
  std::atomic<bool> stopped_{false};
  std::mutex mu_;
  httplib::Client* active_ = nullptr;
};

// The endpoints of one engine: requests go to the one with the fewest in flight (at most
// max_inflight_per_endpoint each), over keep-alive connections, retried on connection errors
// and 5xx answers. Errors are EngineErrors that name the endpoint; a refusal for want of
// context (either server's wording) is ContextExceeded. Thread-safe.
class Http {
 public:
  explicit Http(const RemoteOptions& options);

  size_t size() const { return endpoints_.size(); }
  const std::string& url(size_t e) const { return endpoints_[e].url; }
  // Requests all endpoints can have in flight.
  size_t capacity() const;

  // One request to endpoint e (a null body: GET).
  json request_at(size_t e, const std::string& method, const std::string& path, const json& body,
                  CallContext* ctx) const;
  // A POST to the endpoint with the fewest in flight, once one has room.
  json post(const std::string& path, const json& body, CallContext* ctx) const;
  // A text call (tokenize, a token's text, a chat template): small, so it does not wait for
  // room (a worker that holds room may be the one asking).
  json text_post(const std::string& path, const json& body) const;

  // What a stream's reader says after each event: read on, drop the request (the reader has what
  // it needs), or the server's last event came.
  enum class Event { kMore, kCut, kLast };
  // A streamed POST (server-sent events): on_data gets each event's data (after "data: "), on a
  // worker thread, in order. Retried like request_at while nothing was read; a stream that ends
  // before kCut or kLast throws. Returns the endpoint it went to.
  size_t stream(const std::string& path, const json& body, CallContext& ctx,
                const std::function<Event(const std::string& data)>& on_data) const;

  std::vector<EndpointStats> endpoint_stats() const;

 private:
  struct Endpoint {
    std::string url;     // as given, for messages
    std::string origin;  // scheme://host:port
    std::string prefix;  // path before the API's own ("" or "/some/base")
    int32_t outstanding = 0;
    int64_t requests = 0;
    int64_t failures = 0;
    std::vector<std::unique_ptr<httplib::Client>> idle;  // keep-alive connections
  };
  static Endpoint parse_endpoint(std::string url);
  // Room on an endpoint, from acquire() until it goes.
  struct Held {
    const Http* http;
    size_t e;
    ~Held() { http->release(e); }
  };
  size_t acquire(CallContext* ctx) const;
  void release(size_t endpoint) const;
  std::unique_ptr<httplib::Client> take_client(size_t e) const;
  void back_off(int32_t attempt, CallContext* ctx) const;
  // The EngineError for a 4xx answer (ContextExceeded where it says the prompt is too long).
  [[noreturn]] void refuse(size_t e, const std::string& path, int status, const std::string& body) const;

  RemoteOptions options_;
  mutable std::vector<Endpoint> endpoints_;  // counters and idle connections change under mu_
  mutable std::mutex mu_;
  mutable std::condition_variable slot_cv_;
};

// The message of a JSON error answer ({"error": {"message"}}, {"error": "..."}, or older vLLM's
// {"message"}), else the body's start.
std::string error_message(const std::string& body);

// The engine both flavors are: branches are token lists held here (a fork is a copy), generate()
// runs each request's complete() on a worker thread and evaluate() each request's probes.
class RemoteBase : public RemoteEngine {
 public:
  explicit RemoteBase(const RemoteOptions& options);

  int32_t vocab_size() const override { return n_vocab_; }

  BranchId new_branch(const std::vector<Token>& tokens) override;
  BranchId fork(BranchId parent) override;
  void append(BranchId branch, const std::vector<Token>& tokens) override;
  void free_branch(BranchId branch) override;
  const std::vector<Token>& branch_tokens(BranchId branch) const override { return get(branch).tokens; }
  int32_t free_slots() const override;

  using Engine::generate;
  std::vector<Completion> generate(const std::vector<GenerateRequest>& requests, const OnFinish& on_finish) override;
  std::vector<EvaluateResult> evaluate(const std::vector<EvaluateRequest>& requests) override;

  EngineStats stats() const override;
  std::vector<EndpointStats> endpoint_stats() const override { return http_.endpoint_stats(); }
  int32_t context_size() const override { return context_size_; }
  RemoteModelInfo model_info() const override { return model_info_; }

 protected:
  // One request's completion of `prompt` (the branch's tokens when it started), on a worker
  // thread. It finishes by finishes()'s rules; Stopped ends it when its call was stopped.
  virtual Completion complete(const std::vector<Token>& prompt, const GenerateRequest& req, CallContext& ctx) = 0;
  // One request's probes (positions and candidates checked), on a worker thread; `base` is the
  // branch's tokens before req.tokens.
  virtual EvaluateResult evaluate_one(const std::vector<Token>& base, const EvaluateRequest& req,
                                      CallContext& ctx) const = 0;

  // The in-process engine's rules, applied after token `tok` (already in c.tokens): sets the
  // finish reason and cuts the text when the completion ends here.
  bool finishes(Completion& c, Token tok, const StopParams& stop, const StopMatcher& stops) const;
  void check_tokens(const std::vector<Token>& tokens) const;
  // Throws EngineError for a chat template call the in-process engine refuses.
  void check_chat_call(const std::vector<ChatMessage>& messages, bool continue_final) const;
  // The stop strings to send (the server stops there too, or near: ours decide).
  static json server_stops(const StopParams& stop);
  // Runs one round of a completion; false, with c's finish reason set, when its call was
  // cancelled (kCancelled) or the server refused the prompt for its context (kContextFull).
  static bool run_round(Completion& c, CallContext& ctx, const std::function<void()>& round);
  // c.logprob: the sum of its steps'.
  static void sum_logprobs(Completion& c);
  void add_stats(int64_t calls, int64_t prompt_tokens, int64_t generated_tokens) const;

  RemoteOptions options_;
  Http http_;
  int32_t n_vocab_ = 0;
  int32_t context_size_ = 0;
  RemoteModelInfo model_info_;

 private:
  struct Branch {
    bool live = false;
    std::vector<Token> tokens;
  };
  const Branch& get(BranchId id) const;
  Branch& get(BranchId id) { return const_cast<Branch&>(std::as_const(*this).get(id)); }
  BranchId take_slot();
  void check_new_requests(const std::vector<GenerateRequest>& requests, size_t first, std::vector<bool>& busy) const;
  void add_seconds(Clock::time_point t0);

  mutable std::mutex stats_mu_;
  mutable EngineStats stats_;
  mutable std::mutex stop_when_mu_;
  std::vector<Branch> branches_;
  std::vector<BranchId> free_ids_;
  int32_t next_id_ = 0;
};

// The flavors, opened on options whose endpoints are checked to be of their kind.
std::unique_ptr<RemoteEngine> open_llama_server_engine(const RemoteOptions& options);
std::unique_ptr<RemoteEngine> open_vllm_engine(const RemoteOptions& options);

}  // namespace ponder::remote
