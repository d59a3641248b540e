#include "engine/batching_engine.h"

#include <algorithm>
#include <iterator>
#include <map>
#include <optional>
#include <string>
#include <utility>

namespace ponder {

// One generate() call of a client, on that client's stack. The worker reports to it under mu_;
// it refers to the call only while some of the call's requests are unsettled, and the client
// returns only once all are settled.
struct BatchingEngine::Call {
  std::condition_variable cv;                      // the client waits here
  std::deque<std::pair<size_t, Completion>> done;  // finished, by index in the call
  std::vector<size_t> dropped;                     // ended without a completion (see error)
  std::exception_ptr error;                        // the first reason something was dropped
};

class BatchingEngine::Client final : public Engine {
 public:
  explicit Client(BatchingEngine& owner) : owner_(owner), engine_(*owner.engine_) {}

  ~Client() override {
    if (mine_.empty()) return;
    // Best effort: a search that forgot a branch must not take its slot from the others.
    try {
      owner_.run_op([branches = mine_](LlamaEngine& e) {
        for (BranchId b : branches) {
          try {
            e.free_branch(b);
          } catch (const EngineError&) {
          }
        }
      });
    } catch (...) {
    }
  }

  // --- text: straight to the engine (read-only, see batching_engine.h) ---------------------

  std::vector<Token> tokenize(std::string_view text, bool add_special, bool parse_special) const override {
    return engine_.tokenize(text, add_special, parse_special);
  }
  std::string token_to_piece(Token token) const override { return engine_.token_to_piece(token); }
  std::string apply_chat_template(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                  bool continue_final) const override {
    return engine_.apply_chat_template(messages, add_generation_prompt, continue_final);
  }
  bool has_chat_template() const override { return engine_.has_chat_template(); }
  Token eos_token() const override { return engine_.eos_token(); }
  bool is_end_of_generation(Token token) const override { return engine_.is_end_of_generation(token); }
  int32_t vocab_size() const override { return engine_.vocab_size(); }

  // --- branches: on the worker ----------------------------------------------------------------

  BranchId new_branch(const std::vector<Token>& tokens) override {
    BranchId id = -1;
    owner_.run_op([&](LlamaEngine& e) { id = e.new_branch(tokens); });
    mine_.insert(id);
    own_.prompt_tokens += static_cast<int64_t>(tokens.size());
    return id;
  }

  BranchId fork(BranchId parent) override {
    check_idle(parent);
    BranchId id = -1;
    owner_.run_op([&](LlamaEngine& e) { id = e.fork(parent); });
    mine_.insert(id);
    return id;
  }

  void append(BranchId branch, const std::vector<Token>& tokens) override {
    check_idle(branch);
    owner_.run_op([&](LlamaEngine& e) { e.append(branch, tokens); });
    own_.prompt_tokens += static_cast<int64_t>(tokens.size());
  }

  void free_branch(BranchId branch) override {
    check_idle(branch);
    owner_.run_op([&](LlamaEngine& e) { e.free_branch(branch); });
    mine_.erase(branch);
  }

  const std::vector<Token>& branch_tokens(BranchId branch) const override {
    check_idle(branch);
    return engine_.branch_tokens(branch);
  }

  int32_t free_slots() const override { return owner_.free_slots_.load(); }

  // --- work -----------------------------------------------------------------------------------

  using Engine::generate;
  std::vector<Completion> generate(const std::vector<GenerateRequest>& requests, const OnFinish& on_finish) override {
    std::vector<Completion> out(requests.size());
    if (requests.empty()) return out;
    check_requests(requests);

    Call call;
    std::vector<BranchId> branch_of;  // by index in this call
    size_t settled = 0;               // requests finished or dropped
    std::exception_ptr error;         // once set, on_finish is not called again
    auto post = [&](std::vector<GenerateRequest> batch) {
      const size_t first = branch_of.size();
      for (const auto& r : batch) {
        branch_of.push_back(r.branch);
        generating_.insert(r.branch);
      }
      try {
        owner_.admit(call, std::move(batch), first);
      } catch (...) {
        for (size_t i = first; i < branch_of.size(); ++i) generating_.erase(branch_of[i]);
        branch_of.resize(first);
        throw;
      }
      out.resize(branch_of.size());
    };
    post(requests);

    while (settled < branch_of.size()) {
      std::optional<std::pair<size_t, Completion>> item;
      std::vector<size_t> dropped;
      {
        std::unique_lock lock(owner_.mu_);
        call.cv.wait(lock, [&] { return !call.done.empty() || !call.dropped.empty(); });
        dropped.swap(call.dropped);
        if (call.error && !error) error = call.error;
        if (!call.done.empty()) {
          item = std::move(call.done.front());
          call.done.pop_front();
        }
      }
      for (size_t i : dropped) {
        generating_.erase(branch_of[i]);
        ++settled;
      }
      if (!item) continue;
      const size_t index = item->first;
      generating_.erase(branch_of[index]);
      ++settled;
      own_.generated_tokens += static_cast<int64_t>(item->second.tokens.size());
      out[index] = std::move(item->second);
      if (error || !on_finish) continue;
      // On this thread, while the others' decode steps go on.
      try {
        std::vector<GenerateRequest> more = on_finish(index, out[index]);
        if (!more.empty()) {
          check_requests(more);
          post(std::move(more));
        }
      } catch (...) {
        error = std::current_exception();
      }
    }
    if (error) std::rethrow_exception(error);
    return out;
  }

  std::vector<EvaluateResult> evaluate(const std::vector<EvaluateRequest>& requests) override {
    check_requests(requests);
    std::vector<EvaluateResult> out;
    owner_.run_evaluate(requests, out);
    for (const auto& r : requests) own_.prompt_tokens += static_cast<int64_t>(r.tokens.size());
    return out;
  }

  EngineStats stats() const override {
    EngineStats s = owner_.stats();
    s.prompt_tokens = own_.prompt_tokens;
    s.generated_tokens = own_.generated_tokens;
    return s;
  }

 private:
  // A branch this client may act on: its own, and not generating in its running generate().
  void check_idle(BranchId branch) const {
    if (!mine_.count(branch)) throw EngineError("unknown branch id " + std::to_string(branch));
    if (generating_.count(branch)) {
      throw EngineError("branch " + std::to_string(branch) + " is generating in a running generate call");
    }
  }

  template <typename Request>
  void check_requests(const std::vector<Request>& requests) const {
    std::unordered_set<BranchId> seen;
    for (const auto& r : requests) {
      check_idle(r.branch);
      if (!seen.insert(r.branch).second) throw EngineError("a branch appears twice in one call");
    }
  }

  BatchingEngine& owner_;
  const LlamaEngine& engine_;  // text calls and branch_tokens only: the rest goes to the worker
  std::unordered_set<BranchId> mine_;
  std::unordered_set<BranchId> generating_;  // in this client's running generate() call
  EngineStats own_;                          // prompt_tokens and generated_tokens only
};

// --- BatchingEngine: the client side --------------------------------------------------------------

BatchingEngine::BatchingEngine(std::unique_ptr<LlamaEngine> engine, BatchingOptions options)
    : engine_(std::move(engine)), options_(options) {
  if (!engine_) throw EngineError("a batching engine needs an engine");
  stats_ = engine_->stats();
  free_slots_ = engine_->free_slots();
  worker_ = std::thread([this] { work(); });
}

BatchingEngine::~BatchingEngine() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_one();
  worker_.join();
}

std::unique_ptr<Engine> BatchingEngine::client() { return std::make_unique<Client>(*this); }

EngineStats BatchingEngine::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void BatchingEngine::wait(Waiter& waiter) {
  std::exception_ptr error;
  {
    std::unique_lock lock(mu_);
    waiter.cv.wait(lock, [&] { return waiter.done; });
    error = std::move(waiter.error);
  }
  if (error) std::rethrow_exception(error);
}

void BatchingEngine::run_op(std::function<void(LlamaEngine&)> op) {
  Waiter waiter;
  {
    std::lock_guard lock(mu_);
    if (stop_) throw EngineError("the batching engine has stopped");
    ops_.push_back({std::move(op), &waiter});
  }
  work_cv_.notify_one();
  wait(waiter);
}

void BatchingEngine::run_evaluate(const std::vector<EvaluateRequest>& requests, std::vector<EvaluateResult>& results) {
  Waiter waiter;
  {
    std::lock_guard lock(mu_);
    if (stop_) throw EngineError("the batching engine has stopped");
    evals_.push_back({&requests, &results, &waiter});
  }
  work_cv_.notify_one();
  wait(waiter);
}

void BatchingEngine::admit(Call& call, std::vector<GenerateRequest> requests, size_t first_index) {
  {
    std::lock_guard lock(mu_);
    if (stop_) throw EngineError("the batching engine has stopped");
    admissions_.push_back({&call, std::move(requests), first_index});
  }
  work_cv_.notify_one();
}

// --- BatchingEngine: the worker -------------------------------------------------------------------

bool BatchingEngine::has_work() const { return !ops_.empty() || !evals_.empty() || !admissions_.empty(); }

void BatchingEngine::work() {
  std::unique_lock lock(mu_);
  while (true) {
    work_cv_.wait(lock, [&] { return stop_ || has_work(); });
    if (!has_work()) return;  // stopped, and nothing posted before that is left
    lock.unlock();
    std::vector<GenerateRequest> start = run_posted();
    if (!start.empty()) generate(std::move(start));
    lock.lock();
  }
}

// Runs everything posted, between two decode steps or while nothing generates: branch ops in the
// order posted, then all evaluations together, then admissions (a client posts at most one op or
// evaluation at a time, so among one client's work only its admissions can be pending beside
// them, and those concern other branches). Returns the admitted requests, to start.
std::vector<GenerateRequest> BatchingEngine::run_posted() {
  std::vector<GenerateRequest> start;
  auto publish = [this] {
    const EngineStats now = engine_->stats();
    free_slots_ = engine_->free_slots();
    std::lock_guard lock(mu_);
    stats_ = now;
  };
  std::unique_lock lock(mu_);
  while (has_work()) {
    std::deque<Op> ops;
    std::vector<Eval> evals;
    std::vector<Admission> admissions;
    ops.swap(ops_);
    evals.swap(evals_);
    admissions.swap(admissions_);
    lock.unlock();
    for (Op& op : ops) {
      std::exception_ptr error;
      try {
        op.run(*engine_);
      } catch (...) {
        error = std::current_exception();
      }
      publish();  // before the caller goes on: its free_slots() must see what it did
      answer(*op.waiter, std::move(error));
    }
    run_evaluations(evals);
    for (Admission& a : admissions) check_admission(a, start);
    lock.lock();
    // The callers just answered are likely to call again at once (a search's runs of forks):
    // give them a moment, so that a run costs one decode step's wait rather than one each.
    if ((!ops.empty() || !evals.empty()) && options_.linger.count() > 0) {
      work_cv_.wait_for(lock, options_.linger, [&] { return stop_ || has_work(); });
    }
  }
  return start;
}

void BatchingEngine::run_evaluations(std::vector<Eval>& evals) {
  auto publish = [this] {
    const EngineStats now = engine_->stats();
    std::lock_guard lock(mu_);
    stats_ = now;
  };
  auto run_alone = [&](Eval& ev) {
    std::exception_ptr error;
    try {
      *ev.results = engine_->evaluate(*ev.requests);
    } catch (...) {
      error = std::current_exception();
    }
    publish();
    answer(*ev.waiter, std::move(error));
  };
  if (evals.size() <= 1) {
    for (Eval& ev : evals) run_alone(ev);
    return;
  }

  // One call for all: their tokens are decoded together. Clients name only their own branches,
  // so the requests never share a branch.
  std::vector<EvaluateRequest> merged;
  for (const Eval& ev : evals) merged.insert(merged.end(), ev.requests->begin(), ev.requests->end());
  auto lengths = [&] {
    std::vector<size_t> n;
    for (const auto& r : merged) n.push_back(engine_->branch_tokens(r.branch).size());
    return n;
  };
  std::vector<size_t> before;
  std::exception_ptr error;
  try {
    before = lengths();
    std::vector<EvaluateResult> results = engine_->evaluate(merged);
    publish();
    size_t at = 0;
    for (Eval& ev : evals) {
      const auto first = results.begin() + static_cast<std::ptrdiff_t>(at);
      const auto last = first + static_cast<std::ptrdiff_t>(ev.requests->size());
      ev.results->assign(std::make_move_iterator(first), std::make_move_iterator(last));
      at += ev.requests->size();
      answer(*ev.waiter, nullptr);
    }
    return;
  } catch (...) {
    error = std::current_exception();
  }
  // The LlamaEngine checks every request before it changes a branch: when no branch grew, the
  // merged call was refused for someone's bad request, and calling each alone tells whose.
  // Otherwise the decoding itself failed (the KV cache is full), and that is everyone's error.
  bool refused = false;
  try {
    refused = before.empty() || lengths() == before;
  } catch (...) {
  }
  publish();
  for (size_t i = 0; i < evals.size(); ++i) {
    if (refused) {
      run_alone(evals[i]);
    } else {
      // The last caller takes the worker's reference: the callers then hold them all.
      answer(*evals[i].waiter, i + 1 < evals.size() ? error : std::move(error));
    }
  }
}

// Whatever the LlamaEngine would refuse in the middle of the generation (it would then throw for
// every caller's requests) is refused here, for this call alone. A refused batch is dropped whole.
void BatchingEngine::check_admission(Admission& a, std::vector<GenerateRequest>& start) {
  std::unordered_set<BranchId> seen;
  std::exception_ptr refused;
  try {
    for (const GenerateRequest& r : a.requests) {
      if (engine_->branch_tokens(r.branch).empty()) throw EngineError("cannot generate from an empty branch");
      if (generating_.count(r.branch) || !seen.insert(r.branch).second) {
        throw EngineError("a branch appears twice in one generate call");
      }
    }
  } catch (...) {
    refused = std::current_exception();
  }
  if (refused) {
    std::vector<size_t> indices(a.requests.size());
    for (size_t k = 0; k < indices.size(); ++k) indices[k] = a.first_index + k;
    std::lock_guard lock(mu_);
    drop(*a.call, indices, std::move(refused));
    return;
  }
  for (size_t k = 0; k < a.requests.size(); ++k) {
    generating_.insert(a.requests[k].branch);
    targets_[next_index_++] = {a.call, a.first_index + k, a.requests[k].branch};
    start.push_back(std::move(a.requests[k]));
  }
}

// One generation, running for as long as any client keeps it busy: what is posted meanwhile is
// run between its decode steps, and admitted requests join it.
void BatchingEngine::generate(std::vector<GenerateRequest> start) {
  LlamaEngine::StepHooks hooks;
  hooks.on_finish = [this](size_t index, Completion&& c) {
    deliver(index, std::move(c));
    return std::vector<GenerateRequest>{};  // the client's on_finish answers later, by admit()
  };
  hooks.pending = [this] {
    const EngineStats now = engine_->stats();
    std::lock_guard lock(mu_);
    stats_ = now;
    return has_work();
  };
  hooks.between_steps = [this] { return run_posted(); };
  std::exception_ptr error;
  try {
    engine_->generate_streaming(start, hooks);
  } catch (...) {
    error = std::current_exception();
  }
  if (error) {
    // A failed decode ends the generation for every request in it: each caller hears why.
    std::map<Call*, std::vector<size_t>> lost;
    for (const auto& [i, t] : targets_) lost[t.call].push_back(t.index);
    std::lock_guard lock(mu_);
    for (const auto& [call, indices] : lost) drop(*call, indices, error);
    error = nullptr;  // the callers hold the references now
  }
  targets_.clear();
  generating_.clear();
  next_index_ = 0;
  const EngineStats now = engine_->stats();
  std::lock_guard lock(mu_);
  stats_ = now;
}

void BatchingEngine::deliver(size_t index, Completion&& completion) {
  const auto it = targets_.find(index);
  if (it == targets_.end()) return;
  const Target t = it->second;
  targets_.erase(it);
  generating_.erase(t.branch);
  std::lock_guard lock(mu_);
  t.call->done.emplace_back(t.index, std::move(completion));
  // Under the lock: once the client has seen its last result it may return and destroy `call`.
  t.call->cv.notify_one();
}

void BatchingEngine::answer(Waiter& waiter, std::exception_ptr error) {
  std::lock_guard lock(mu_);
  waiter.error = std::move(error);
  waiter.done = true;
  // Under the lock: once woken, the caller returns and destroys `waiter`.
  waiter.cv.notify_one();
}

void BatchingEngine::drop(Call& call, const std::vector<size_t>& indices, std::exception_ptr error) {
  call.dropped.insert(call.dropped.end(), indices.begin(), indices.end());
  if (!call.error) call.error = std::move(error);
  call.cv.notify_one();
}

}  // namespace ponder
