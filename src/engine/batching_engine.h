// One model, one KV cache, many callers: a worker thread drives a LlamaEngine and merges the work
// of several searches (each on its own thread) into the same decode steps.
//
// A single search leaves batch rows idle (a beam-search round waits for its longest step, DVTS
// has tails, and between rounds the verifier runs), while on CPU and GPU alike a decode step
// with 8 rows costs nearly what one with 16 costs. K searches on K threads, each with a client
// of one BatchingEngine, fill those rows: a generate() call of one client joins the generation
// that is already running for the others, at its next decode step (continuous batching across
// clients, as in CTranslate2's or vLLM's schedulers).
//
// Cost: in the unified KV layout every row attends over every used cell, so merging K searches
// also makes each row's attention K times longer. Merging pays where the weights dominate a step
// (a 135M-parameter shape on 2 CPU threads, 4 beam searches: ~1.3-1.8x less wall time, a third of
// the decode calls), not on a toy like stories260K, whose steps are mostly attention.
//
// Threads. The worker thread alone calls the LlamaEngine's branch and work functions. A client
// posts its work to the worker and waits; the worker runs posted work between two decode steps
// of the running generation (LlamaEngine::generate_streaming's between_steps hook), or at once
// when nothing is generating.
//
// Contract of a client (an Engine; see engine.h for what each call does):
//  - Each client is used by one thread at a time; different clients may be used concurrently.
//  - Text calls (tokenize, token_to_piece, detokenize, apply_chat_template, has_chat_template,
//    eos_token, is_end_of_generation, vocab_size) go straight to the LlamaEngine: they only read
//    the const model and vocabulary (llama_tokenize and llama_token_to_piece on a const
//    llama_vocab keep their scratch state per call), so they are safe on any thread.
//  - Branches belong to the client that made them (new_branch, fork). Naming another client's
//    branch, or a branch of one's own that is generating in a running generate() call, is an
//    EngineError of that call, checked before anything is posted.
//  - new_branch, fork, append, free_branch and evaluate run on the worker between decode steps;
//    the caller waits. evaluate() calls of several clients that are waiting together are merged
//    into one call of the LlamaEngine (one decode for all their tokens). branch_tokens reads the
//    client's own branch directly (LlamaEngine allows that from another thread).
//  - generate(requests, on_finish): the requests join the running generation at the next decode
//    step. Each finished completion is handed back to the calling thread, which runs on_finish
//    there, so on_finish may take its time and use other engines (a PRM's BatchingEngine client)
//    without holding up the decode steps of the others; the requests it returns join the running
//    generation at the first step after it returns. Returns when all of this call's requests
//    (those added by on_finish included) are done; completions by index, and as Engine::generate
//    promises. With LlamaEngineOptions::reproducible, each request gives the tokens it would give
//    on a LlamaEngine of its own (up to that mode's rare draw at a token boundary): merging
//    changes only which rows share a decode step. What can
//    differ is timing: a request added by on_finish starts some steps later than on a plain
//    engine (there: at the very next step), so requests of one call may finish in another order.
//    A caller whose next requests depend on that order (DVTS numbers its sample seeds in the
//    order it asks for them) may then sample differently; beam search and sampling do not.
//    As with any Engine, on_finish must not call generate() or evaluate() on the same client.
//  - Errors: an EngineError of the LlamaEngine reaches the callers whose work failed (a bad
//    evaluate request: that caller only; a failed decode in the running generation: every caller
//    with requests in it), never the worker. When a generate() call fails (a bad request added by
//    on_finish, an exception from on_finish, a failed decode), on_finish is not called again and
//    the call throws once none of its requests is still generating (those already running go on
//    to their own end first: the LlamaEngine cannot cancel a request).
//  - free_slots() is the shared engine's: size LlamaEngineOptions::max_branches (and n_ctx) for
//    all clients' branches together, K x one search's peak for K concurrent searches
//    (branches_needed() in search/search.h), else a search can find too few and fail.
//  - stats(): generated_tokens and prompt_tokens are the client's own (what its completions hold,
//    what it gave to new_branch, append and evaluate), so a search's usage stays its own;
//    decode_calls and the seconds are the shared engine's (a decode step serves every client).
//  - A client frees the branches it still holds when it is destroyed.
//  - All clients must be destroyed before their BatchingEngine, whose destructor stops the
//    worker (it waits for work already posted; calls posted after that throw EngineError).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "engine/engine.h"
#include "engine/llama_engine.h"

namespace ponder {

struct BatchingOptions {
  // After answering a client's branch call or evaluate between two decode steps, the worker
  // waits up to this long for that client's next call before it decodes the next step. A search
  // makes such calls in runs (beam search forks its N beams one after another); without the
  // wait, each call of a run would cost the caller one decode step of the others' generation.
  // Only after answering such calls: admitting generate requests never waits.
  std::chrono::microseconds linger{200};
};

class BatchingEngine {
 public:
  // Takes the engine; its worker thread starts here.
  explicit BatchingEngine(std::unique_ptr<LlamaEngine> engine, BatchingOptions options = {});
  // Stops the worker. Every client must be gone (see the contract above).
  ~BatchingEngine();
  BatchingEngine(const BatchingEngine&) = delete;
  BatchingEngine& operator=(const BatchingEngine&) = delete;

  // A new handle onto the shared engine, for one thread at a time. It must not outlive this.
  std::unique_ptr<Engine> client();

  // The shared engine's statistics: every client's work together.
  EngineStats stats() const;

 private:
  class Client;
  struct Call;

  // An op or evaluation a client waits for, on the client's stack. The worker reports under mu_
  // and keeps no reference after (the caller holds its error alone).
  struct Waiter {
    std::condition_variable cv;
    bool done = false;
    std::exception_ptr error;
  };
  // Work posted to the worker.
  struct Op {
    std::function<void(LlamaEngine&)> run;
    Waiter* waiter;
  };
  struct Eval {
    const std::vector<EvaluateRequest>* requests;
    std::vector<EvaluateResult>* results;
    Waiter* waiter;
  };
  // Requests of a client's generate() call, to join the generation; the first takes the call's
  // index first_index.
  struct Admission {
    Call* call;
    std::vector<GenerateRequest> requests;
    size_t first_index;
  };
  // Where a request of the running generation goes back to.
  struct Target {
    Call* call;
    size_t index;  // in the call
    BranchId branch;
  };

  // Client side: posting and waiting.
  void wait(Waiter& waiter);  // rethrows the worker's error
  void run_op(std::function<void(LlamaEngine&)> op);
  void run_evaluate(const std::vector<EvaluateRequest>& requests, std::vector<EvaluateResult>& results);
  void admit(Call& call, std::vector<GenerateRequest> requests, size_t first_index);

  // Worker side.
  void work();
  bool has_work() const;  // with mu_ held
  std::vector<GenerateRequest> run_posted();
  void run_evaluations(std::vector<Eval>& evals);
  void check_admission(Admission& a, std::vector<GenerateRequest>& start);
  void generate(std::vector<GenerateRequest> start);
  void deliver(size_t index, Completion&& completion);
  void answer(Waiter& waiter, std::exception_ptr error);
  void drop(Call& call, const std::vector<size_t>& indices, std::exception_ptr error);  // with mu_ held

  std::unique_ptr<LlamaEngine> engine_;
  BatchingOptions options_;

  // Shared between the clients and the worker, under mu_.
  mutable std::mutex mu_;
  std::condition_variable work_cv_;  // the worker waits here for posted work
  std::deque<Op> ops_;
  std::vector<Eval> evals_;
  std::vector<Admission> admissions_;
  bool stop_ = false;
  EngineStats stats_;  // the engine's, as of the last decode step or posted work
  std::atomic<int32_t> free_slots_{0};

  // The worker's own: the running generation.
  std::unordered_map<size_t, Target> targets_;  // by index in the generation
  size_t next_index_ = 0;
  std::unordered_set<BranchId> generating_;

  std::thread worker_;  // last: starts after everything above exists
};

}  // namespace ponder
