// A deterministic Engine for testing search logic without a model.
//
// Tokens are bytes (one character each) plus an end-of-generation token. A "model" callback
// decides, when a generate() request starts, the whole text the branch would produce from here
// (given the branch's text, the request's seed and whether it is greedy, and the request's
// index within its wave); generate() then emits it one character at a time, with the real
// stop-string matcher, StopParams::stop_when, max_tokens, and an end-of-generation token after
// the text when the model says so. The engine records every call, so tests can check batching
// and branch use.
#pragma once

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "engine/stop.h"

namespace ponder::testing {

struct FakeContinuation {
  std::string text;
  bool eos = true;  // end with the end-of-generation token once `text` is out
};

struct FakeRequestInfo {
  std::string context;  // the branch's text when the request started
  uint64_t seed;
  bool greedy;
  size_t index;         // position of the request in its wave (see generate())
  std::vector<std::string> stop;
  bool stop_when = false;  // the request had a StopParams::stop_when
};

class FakeEngine final : public Engine {
 public:
  using Model = std::function<FakeContinuation(const FakeRequestInfo&)>;
  static constexpr Token kEos = 256;

  FakeEngine(Model model, int32_t max_branches = 256) : model_(std::move(model)), max_branches_(max_branches) {}

  std::vector<Token> tokenize(std::string_view text, bool, bool) const override {
    return std::vector<Token>(reinterpret_cast<const unsigned char*>(text.data()),
                              reinterpret_cast<const unsigned char*>(text.data()) + text.size());
  }
  std::string token_to_piece(Token t) const override { return t == kEos ? "" : std::string(1, static_cast<char>(t)); }
  std::string apply_chat_template(const std::vector<ChatMessage>&, bool, bool) const override {
    throw EngineError("the fake model has no chat template");
  }
  bool has_chat_template() const override { return false; }
  Token eos_token() const override { return kEos; }
  bool is_end_of_generation(Token t) const override { return t == kEos; }
  int32_t vocab_size() const override { return 257; }

  BranchId new_branch(const std::vector<Token>& tokens) override {
    const BranchId id = take();
    branches_[id] = tokens;
    stats_.prompt_tokens += static_cast<int64_t>(tokens.size());
    return id;
  }
  BranchId fork(BranchId parent) override {
    const std::vector<Token> copy = at(parent);
    const BranchId id = take();
    branches_[id] = copy;
    ++forks;
    return id;
  }
  void append(BranchId b, const std::vector<Token>& tokens) override {
    at(b).insert(at(b).end(), tokens.begin(), tokens.end());
    stats_.prompt_tokens += static_cast<int64_t>(tokens.size());
  }
  void free_branch(BranchId b) override {
    at(b);
    branches_.erase(b);
    free_ids_.push_back(b);
  }
  const std::vector<Token>& branch_tokens(BranchId b) const override {
    auto it = branches_.find(b);
    if (it == branches_.end()) throw EngineError("unknown branch");
    return it->second;
  }
  int32_t free_slots() const override { return max_branches_ - static_cast<int32_t>(branches_.size()); }
  int32_t live_branches() const { return static_cast<int32_t>(branches_.size()); }

  using Engine::generate;
  // Runs requests in waves: the call's requests one after another, then on_finish for each in
  // order, then the requests those returned as the next wave, and so on. With `lockstep`, as a
  // real batch does: every running request emits one token a step; those that finish at a step
  // are reported in order of branch ids, and what on_finish returns joins at the next step
  // (FakeRequestInfo::index is then the position among the requests that joined together).
  std::vector<Completion> generate(const std::vector<GenerateRequest>& initial, const OnFinish& on_finish) override {
    if (lockstep) return generate_in_lockstep(initial, on_finish);
    std::vector<GenerateRequest> requests = initial;
    std::vector<Completion> out;
    size_t wave_start = 0;
    while (wave_start < requests.size()) {
      const size_t wave_end = requests.size();
      generate_calls.push_back(wave_end - wave_start);
      max_live = std::max(max_live, live_branches());
      out.resize(wave_end);
      for (size_t i = wave_start; i < wave_end; ++i) out[i] = run_one(requests[i], i - wave_start);
      if (on_finish) {
        for (size_t i = wave_start; i < wave_end; ++i) {
          for (GenerateRequest& r : on_finish(i, out[i])) requests.push_back(std::move(r));
        }
      }
      wave_start = wave_end;
    }
    return out;
  }

  std::vector<EvaluateResult> evaluate(const std::vector<EvaluateRequest>&) override {
    throw EngineError("the fake engine does not evaluate");
  }
  EngineStats stats() const override { return stats_; }

  bool lockstep = false;                     // see generate()
  std::function<float(Token)> logprob_of;    // each sampled token's log-probability (unset: -0.5)
  int64_t lockstep_steps = 0;                // steps run in lockstep, over all calls
  std::vector<size_t> generate_calls;        // requests per wave (see generate())
  std::vector<FakeRequestInfo> requests_seen;
  int32_t max_live = 0;                      // most live branches seen at the start of a wave
  int32_t forks = 0;

 private:
  // A request on its way: what the model will say, and how far it got.
  struct Running {
    const GenerateRequest* request;
    FakeContinuation next;
    size_t pos = 0;
    Completion c;
    bool done = false;
  };

  Running begin(const GenerateRequest& r, size_t index) {
    FakeRequestInfo info{detokenize(at(r.branch)), r.sampling.seed, r.sampling.temperature <= 0.0f, index,
                          r.stop.stop, static_cast<bool>(r.stop.stop_when)};
    requests_seen.push_back(info);
    Running run{&r, {}, 0, {}, false};
    if (!r.stop.cancelled()) run.next = model_(info);
    return run;
  }

  // One token of a request, or its end.
  void step(Running& run) {
    const GenerateRequest& r = *run.request;
    Completion& c = run.c;
    auto finish = [&](FinishReason why) {
      c.finish_reason = why;
      run.done = true;
    };
    if (r.stop.cancelled()) return finish(FinishReason::kCancelled);
    if (static_cast<int32_t>(c.tokens.size()) >= r.stop.max_tokens) return finish(FinishReason::kLength);
    std::vector<Token>& tokens = at(r.branch);
    if (run.pos == run.next.text.size()) {
      if (!run.next.eos) throw std::logic_error("fake model ran out of text");
      emit(tokens, c, kEos);
      return finish(FinishReason::kEos);
    }
    const Token t = static_cast<unsigned char>(run.next.text[run.pos++]);
    emit(tokens, c, t);
    const size_t checked = c.text.size();
    c.text += static_cast<char>(t);
    if (auto found = StopMatcher(r.stop.stop).find(c.text, checked)) {
      c.text.resize(*found);
      return finish(FinishReason::kStop);
    }
    if (r.stop.stop_when) {
      if (auto end = r.stop.stop_when(c.text)) {
        c.text.resize(std::min(*end, c.text.size()));
        return finish(FinishReason::kStop);
      }
    }
  }

  Completion run_one(const GenerateRequest& r, size_t index) {
    Running run = begin(r, index);
    while (!run.done) step(run);
    return run.c;
  }

  std::vector<Completion> generate_in_lockstep(const std::vector<GenerateRequest>& initial, const OnFinish& on_finish) {
    std::deque<GenerateRequest> requests(initial.begin(), initial.end());  // stable addresses
    std::vector<Completion> out(requests.size());
    std::vector<std::pair<size_t, Running>> running;  // request index, state
    for (size_t i = 0; i < requests.size(); ++i) running.emplace_back(i, begin(requests[i], i));
    generate_calls.push_back(requests.size());
    while (!running.empty()) {
      ++lockstep_steps;
      max_live = std::max(max_live, live_branches());
      std::sort(running.begin(), running.end(),
                [](const auto& a, const auto& b) { return a.second.request->branch < b.second.request->branch; });
      std::vector<size_t> finished;
      for (auto& [i, run] : running) {
        step(run);
        if (run.done) {
          out[i] = std::move(run.c);
          finished.push_back(i);
        }
      }
      std::erase_if(running, [](const auto& r) { return r.second.done; });
      size_t joined = 0;
      for (size_t i : finished) {
        if (!on_finish) continue;
        for (GenerateRequest& r : on_finish(i, out[i])) {
          requests.push_back(std::move(r));
          out.emplace_back();
          running.emplace_back(requests.size() - 1, begin(requests.back(), joined++));
        }
      }
    }
    return out;
  }
  void emit(std::vector<Token>& tokens, Completion& c, Token t) {
    tokens.push_back(t);
    c.tokens.push_back(t);
    const float logprob = logprob_of ? logprob_of(t) : -0.5f;
    c.steps.push_back({t, logprob, 0.0f, {}});
    c.logprob += logprob;
    ++stats_.generated_tokens;
  }
  std::vector<Token>& at(BranchId b) {
    auto it = branches_.find(b);
    if (it == branches_.end()) throw EngineError("unknown branch " + std::to_string(b));
    return it->second;
  }
  BranchId take() {
    if (free_slots() <= 0) throw EngineError("too many live branches");
    if (!free_ids_.empty()) {
      const BranchId id = free_ids_.back();
      free_ids_.pop_back();
      return id;
    }
    return next_id_++;
  }

  Model model_;
  int32_t max_branches_;
  std::map<BranchId, std::vector<Token>> branches_;
  std::vector<BranchId> free_ids_;
  BranchId next_id_ = 0;
  EngineStats stats_;
};

}  // namespace ponder::testing
