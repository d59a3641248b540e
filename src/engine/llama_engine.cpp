#include "engine/llama_engine.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <fstream>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>

#include "engine/model_cache.h"
#include "engine/sampler.h"
#include "engine/stop.h"
#include "engine/timing.h"
#include "llama.h"

#ifndef PONDER_LLAMA_VERSION
#define PONDER_LLAMA_VERSION "unknown"
#endif

namespace ponder {

const char* llama_cpp_version() { return PONDER_LLAMA_VERSION; }

const char* to_string(KvLayout layout) {
  return layout == KvLayout::kUnified ? "unified" : "split";
}

namespace {

// llama.cpp logs through a global callback. We keep quiet unless asked, but keep the error lines
// so that a failed load can say why.
struct LogState {
  std::mutex mu;
  bool verbose = false;
  std::vector<std::string> errors;
};
LogState& log_state() {
  static LogState state;
  return state;
}

void llama_log(ggml_log_level level, const char* text, void* /*user*/) {
  auto& st = log_state();
  std::lock_guard lock(st.mu);
  if (level == GGML_LOG_LEVEL_ERROR) {
    std::string line(text);
    while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) line.pop_back();
    if (!line.empty() && st.errors.size() < 32) st.errors.push_back(line);
  }
  if (st.verbose) std::fputs(text, stderr);
}

void init_backend_once(bool verbose) {
  static std::once_flag once;
  {
    std::lock_guard lock(log_state().mu);
    log_state().verbose = verbose;
    log_state().errors.clear();
  }
  std::call_once(once, [] {
    llama_log_set(llama_log, nullptr);
    llama_backend_init();
  });
}

// The most telling of llama.cpp's error lines: the loader's own reason when it gives one
// ("tensor ... data is not within the file bounds"), else the first error, without the
// "function_name: " prefix.
std::string last_llama_error() {
  std::lock_guard lock(log_state().mu);
  const auto& errors = log_state().errors;
  static const std::string kLoading = "error loading model: ";
  for (const auto& e : errors) {
    const size_t at = e.find(kLoading);
    if (at != std::string::npos && e.find("failed to load model from", at) == std::string::npos) {
      return e.substr(at + kLoading.size());
    }
  }
  if (errors.empty()) return {};
  const std::string& first = errors.front();
  const size_t colon = first.find(": ");
  return colon != std::string::npos && first.find(' ') > colon ? first.substr(colon + 2) : first;
}

// Checks what llama.cpp would otherwise report only in its log (or not at all).
void check_model_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (path.empty()) throw EngineError("no model path given");
  if (!fs::exists(path, ec)) throw EngineError("model file not found: " + path);
  if (fs::is_directory(path, ec)) throw EngineError("model path is a directory: " + path);
  std::ifstream in(path, std::ios::binary);
  if (!in) throw EngineError("cannot read model file: " + path);
  char magic[4] = {};
  in.read(magic, 4);
  if (in.gcount() < 4 || std::memcmp(magic, "GGUF", 4) != 0) {
    throw EngineError("not a GGUF model file: " + path);
  }
}

struct BranchState {
  bool live = false;
  llama_seq_id seq = -1;  // llama.cpp's sequence (with split streams: its stream) holding its cells
  std::vector<Token> tokens;
  size_t n_decoded = 0;  // tokens[0..n_decoded) are in the KV cache of the branch's sequence
  // Next-token logits after the last token, valid when n_decoded == tokens.size(). Shared
  // between a parent and its forks, which start from the same place.
  std::shared_ptr<const std::vector<float>> logits;
};

// Where a decoded token's logits are wanted.
struct Probe {
  BranchId branch;
  size_t position;  // index into the branch's tokens
  size_t request;   // which evaluate request / probe slot it answers
  size_t slot;
};

class LlamaCppEngine final : public LlamaEngine {
 public:
  explicit LlamaCppEngine(const LlamaEngineOptions& options) : options_(options) {
    init_backend_once(options.verbose);
    check_model_file(options.model_path);
    if (options.max_branches < 1 || options.max_branches > kMaxBranches) {
      throw EngineError("max branches must be between 1 and " + std::to_string(kMaxBranches));
    }
    if (options.n_ctx < 1) throw EngineError("context size must be positive");
    // One generation step decodes a token of every live branch in a single call.
    if (options.n_batch < options.max_branches) throw EngineError("n_batch must be at least max_branches");

    model_holder_ = load_shared_model(options.model_path, options.n_gpu_layers, options.vocab_only);
    model_ = model_holder_.get();
    if (!model_) {
      std::string why = last_llama_error();
      throw EngineError("cannot load model " + options.model_path +
                        (why.empty() ? std::string() : ": " + why));
    }
    vocab_ = llama_model_get_vocab(model_);
    n_vocab_ = llama_vocab_n_tokens(vocab_);
    if (options.vocab_only) return;

    llama_context_params cparams = llama_context_default_params();
    const bool split = options.kv_layout == KvLayout::kSplit;
    // llama.cpp gives each stream at least 256 cells and sizes its decode calls (n_batch) from
    // n_ctx; below 256 cells it asserts when many branches decode together. So: at least 256
    // cells per stream, and split streams divide n_ctx evenly.
    constexpr uint32_t kMinCells = 256;
    uint32_t n_ctx = std::max<uint32_t>(options.n_ctx, kMinCells);
    // Split streams get one stream more than max_branches (where llama.cpp allows), so that
    // pack_rows() always has a free one to move branches through.
    const int32_t n_seq = split ? std::min(options.max_branches + 1, kMaxBranches) : options.max_branches;
    if (split) {
      const uint32_t per_stream = std::max<uint32_t>((n_ctx + options.max_branches - 1) / options.max_branches, kMinCells);
      n_ctx = per_stream * n_seq;
    }
    cparams.n_ctx = n_ctx;
    cparams.n_batch = options.n_batch;
    cparams.n_ubatch = std::min(options.n_ubatch, options.n_batch);
    cparams.n_seq_max = n_seq;
    cparams.kv_unified = !split;
    const int threads = options.n_threads > 0 ? options.n_threads
                                              : std::max(1u, std::thread::hardware_concurrency());
    cparams.n_threads = threads;
    cparams.n_threads_batch = threads;
    cparams.no_perf = true;
    if (options.reproducible) {
      // Flash attention's kernels and F16 K/V round differently depending on how many queries
      // share a batch (~1e-4 in log-probabilities): enough to flip a sampled token now and then.
      // The plain attention path over F32 K/V agrees to ~1e-7 whatever the batch holds.
      cparams.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
      cparams.type_k = GGML_TYPE_F32;
      cparams.type_v = GGML_TYPE_F32;
    }
    ctx_ = llama_init_from_model(model_, cparams);
    if (!ctx_) {
      std::string why = last_llama_error();
      throw EngineError("cannot create llama.cpp context" + (why.empty() ? std::string() : ": " + why));
    }
    mem_ = llama_get_memory(ctx_);
    // llama.cpp caps a decode call at the context size (at least 256 >= max_branches, so one
    // generation step always fits one call); larger work is split by what it allows.
    n_batch_ = static_cast<int32_t>(llama_n_batch(ctx_));
    batch_ = llama_batch_init(n_batch_, 0, 1);
    branches_.resize(options.max_branches);
    branch_of_seq_.assign(n_seq, -1);
    split_ = split;
  }

  ~LlamaCppEngine() override {
    if (ctx_) {
      llama_batch_free(batch_);
      llama_free(ctx_);
    }
  }

  // --- text ---------------------------------------------------------------------------------

  std::vector<Token> tokenize(std::string_view text, bool add_special, bool parse_special) const override {
    if (text.size() > static_cast<size_t>(INT32_MAX / 2)) throw EngineError("text too long to tokenize");
    std::vector<Token> out(text.size() + 8);
    int32_t n = llama_tokenize(vocab_, text.data(), static_cast<int32_t>(text.size()), out.data(),
                               static_cast<int32_t>(out.size()), add_special, parse_special);
    if (n < 0) {
      out.resize(-n);
      n = llama_tokenize(vocab_, text.data(), static_cast<int32_t>(text.size()), out.data(),
                         static_cast<int32_t>(out.size()), add_special, parse_special);
    }
    if (n < 0) throw EngineError("tokenization failed");
    out.resize(n);
    return out;
  }

  std::string token_to_piece(Token token) const override {
    char buf[256];
    int32_t n = llama_token_to_piece(vocab_, token, buf, sizeof(buf), 0, true);
    if (n >= 0) return std::string(buf, n);
    std::string big(-n, '\0');
    n = llama_token_to_piece(vocab_, token, big.data(), static_cast<int32_t>(big.size()), 0, true);
    big.resize(std::max(n, 0));
    return big;
  }

  bool has_chat_template() const override { return llama_model_chat_template(model_, nullptr) != nullptr; }

  std::string apply_chat_template(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                  bool continue_final) const override {
    const char* tmpl = llama_model_chat_template(model_, nullptr);
    if (!tmpl) throw EngineError("the model has no chat template");
    if (continue_final && (messages.empty() || messages.back().role != "assistant")) {
      throw EngineError("continuing a message needs a final assistant message");
    }
    // To leave the final message open, render it with a marker at its end and cut there: this
    // drops whatever end-of-turn text the template adds, for any template.
    static const std::string kMarker = "\x1f<ponder-open-end>\x1f";
    std::vector<ChatMessage> msgs = messages;
    if (continue_final) msgs.back().content += kMarker;
    std::vector<llama_chat_message> chat;
    size_t total = 0;
    for (const auto& m : msgs) {
      chat.push_back({m.role.c_str(), m.content.c_str()});
      total += m.role.size() + m.content.size();
    }
    const bool add_ass = add_generation_prompt && !continue_final;
    std::string out(2 * total + 1024, '\0');
    int32_t n = llama_chat_apply_template(tmpl, chat.data(), chat.size(), add_ass, out.data(),
                                          static_cast<int32_t>(out.size()));
    if (n > static_cast<int32_t>(out.size())) {
      out.resize(n);
      n = llama_chat_apply_template(tmpl, chat.data(), chat.size(), add_ass, out.data(), n);
    }
    if (n < 0) throw EngineError("the model's chat template is not one llama.cpp can render");
    out.resize(n);
    if (continue_final) {
      const size_t at = out.rfind(kMarker);
      if (at == std::string::npos) throw EngineError("chat template dropped the assistant message");
      out.resize(at);
    }
    return out;
  }

  Token eos_token() const override { return llama_vocab_eos(vocab_); }
  bool is_end_of_generation(Token token) const override { return llama_vocab_is_eog(vocab_, token); }
  int32_t vocab_size() const override { return n_vocab_; }

  // --- branches -----------------------------------------------------------------------------

  BranchId new_branch(const std::vector<Token>& tokens) override {
    check_tokens(tokens);
    const BranchId id = take_slot();
    branches_[id].tokens = tokens;
    return id;
  }

  BranchId fork(BranchId parent) override {
    BranchState& p = get(parent);
    // Compute what the parent holds first (together with every other branch's pending work),
    // so that the shared part is computed once.
    if (p.n_decoded < p.tokens.size()) flush({});
    const BranchId child = take_slot();
    BranchState& c = branches_[child];
    const BranchState& src = branches_[parent];
    if (src.n_decoded > 0) llama_memory_seq_cp(mem_, src.seq, c.seq, -1, -1);
    c.tokens = src.tokens;
    c.n_decoded = src.n_decoded;
    c.logits = src.logits;
    return child;
  }

  void append(BranchId branch, const std::vector<Token>& tokens) override {
    check_tokens(tokens);
    BranchState& b = get(branch);
    b.tokens.insert(b.tokens.end(), tokens.begin(), tokens.end());
    if (!tokens.empty()) b.logits.reset();
  }

  void free_branch(BranchId branch) override {
    BranchState& b = get(branch);
    llama_memory_seq_rm(mem_, b.seq, -1, -1);
    branch_of_seq_[b.seq] = -1;
    b = BranchState{};
    free_slots_.push_back(branch);
  }

  const std::vector<Token>& branch_tokens(BranchId branch) const override {
    return get(branch).tokens;
  }

  int32_t free_slots() const override {
    if (!ctx_) return 0;
    return static_cast<int32_t>(options_.max_branches - next_slot_ + free_slots_.size());
  }

  // --- work ---------------------------------------------------------------------------------

  using Engine::generate;
  std::vector<Completion> generate(const std::vector<GenerateRequest>& initial, const OnFinish& on_finish) override {
    FinishFn finish;
    if (on_finish) finish = [&](size_t i, Completion& c) { return on_finish(i, c); };
    return run_generation(initial, finish, /*keep=*/true, {}, {});
  }

  void generate_streaming(const std::vector<GenerateRequest>& initial, const StepHooks& hooks) override {
    if (!hooks.on_finish || (hooks.pending && !hooks.between_steps)) {
      throw EngineError("generate_streaming needs on_finish, and between_steps with pending");
    }
    run_generation(initial, [&](size_t i, Completion& c) { return hooks.on_finish(i, std::move(c)); },
                   /*keep=*/false, hooks.pending, hooks.between_steps);
  }

 private:
  using FinishFn = std::function<std::vector<GenerateRequest>(size_t index, Completion& completion)>;

  // The generation loop of generate() and generate_streaming(). on_finish may take a completion
  // only when !keep (what is returned is then of no use). pending/between_steps: StepHooks'.
  std::vector<Completion> run_generation(const std::vector<GenerateRequest>& initial, const FinishFn& on_finish,
                                         bool keep, const std::function<bool()>& pending,
                                         const std::function<std::vector<GenerateRequest>()>& between_steps) {
    require_context();
    std::vector<GenerateRequest> requests = initial;
    std::vector<Completion> out(requests.size());
    if (requests.empty()) return out;
    check_distinct_branches(requests, "generate");
    for (const auto& r : requests) {
      if (get(r.branch).tokens.empty()) throw EngineError("cannot generate from an empty branch");
    }
    flush({});

    struct Active {
      size_t request;
      BranchSampler sampler;
      StopMatcher stops;
      int32_t batch_index = -1;  // row of the last decode's logits; -1: use the branch's own
      bool done = false;
    };
    std::vector<Active> active;
    std::vector<size_t> finished;  // requests that finished since on_finish was last called
    auto start = [&](size_t i) {
      active.push_back({i, BranchSampler(requests[i].sampling), StopMatcher(requests[i].stop.stop)});
      if (requests[i].stop.max_tokens <= 0) {
        active.back().done = true;
        out[i].finish_reason = FinishReason::kLength;
        finished.push_back(i);
      }
    };
    // Batch rows go in increasing sequence id: with split streams llama.cpp can put only
    // consecutive sequence ids into one compute step (split_equal, sequential), so any other
    // order splits a decode call into several (pack_rows() closes the gaps).
    auto seq_of = [&](const Active& a) { return branches_[requests[a.request].branch].seq; };
    auto by_seq = [&] {
      std::erase_if(active, [](const Active& a) { return a.done; });
      std::sort(active.begin(), active.end(), [&](const Active& x, const Active& y) { return seq_of(x) < seq_of(y); });
    };
    for (size_t i = 0; i < requests.size(); ++i) start(i);
    by_seq();

    while (true) {
      const auto t_sample = Clock::now();
      batch_.n_tokens = 0;
      std::vector<size_t> in_batch;
      for (auto& a : active) {
        if (a.done) continue;
        const GenerateRequest& req = requests[a.request];
        BranchState& b = branches_[req.branch];
        Completion& c = out[a.request];
        if (req.stop.cancelled()) {
          a.done = true;
          c.finish_reason = FinishReason::kCancelled;
          finished.push_back(a.request);
          continue;
        }
        const float* logits = a.batch_index >= 0 ? llama_get_logits_ith(ctx_, a.batch_index)
                                                 : b.logits->data();
        StepInfo step = a.sampler.sample(logits, n_vocab_);
        const Token tok = step.token;
        b.tokens.push_back(tok);
        b.logits.reset();
        c.tokens.push_back(tok);
        c.logprob += step.logprob;
        c.steps.push_back(std::move(step));
        ++stats_.generated_tokens;

        if (req.stop.stop_at_eos && llama_vocab_is_eog(vocab_, tok)) {
          a.done = true;
          c.finish_reason = FinishReason::kEos;
          finished.push_back(a.request);
          continue;
        }
        const size_t checked = c.text.size();
        c.text += token_to_piece(tok);
        if (auto at = a.stops.find(c.text, checked)) {
          size_t end = *at;
          if (req.stop.include_stop_in_text) {
            for (const auto& s : req.stop.stop) {
              if (!s.empty() && c.text.compare(*at, s.size(), s) == 0) {
                end = *at + s.size();
                break;
              }
            }
          }
          c.text.resize(end);
          a.done = true;
          c.finish_reason = FinishReason::kStop;
          finished.push_back(a.request);
          continue;
        }
        if (req.stop.stop_when) {
          if (auto at = req.stop.stop_when(c.text)) {
            c.text.resize(std::min(*at, c.text.size()));
            a.done = true;
            c.finish_reason = FinishReason::kStop;
            finished.push_back(a.request);
            continue;
          }
        }
        if (static_cast<int32_t>(c.tokens.size()) >= req.stop.max_tokens) {
          a.done = true;
          c.finish_reason = FinishReason::kLength;
          finished.push_back(a.request);
          continue;
        }
        in_batch.push_back(&a - active.data());
      }
      stats_.sample_seconds += seconds_since(t_sample);
      if (split_) {
        std::vector<BranchId> rows;
        for (size_t i : in_batch) rows.push_back(requests[active[i].request].branch);
        pack_rows(rows);
        std::sort(in_batch.begin(), in_batch.end(),
                  [&](size_t x, size_t y) { return seq_of(active[x]) < seq_of(active[y]); });
      }
      // At most max_branches <= n_batch_ rows (checked when opening): one decode call a step.
      for (size_t i : in_batch) {
        const BranchState& b = branches_[requests[active[i].request].branch];
        add_to_batch(b.tokens.back(), static_cast<llama_pos>(b.tokens.size() - 1), b.seq, true);
        active[i].batch_index = batch_.n_tokens - 1;
      }

      if (!in_batch.empty()) {
        if (decode() == 1) {
          // No KV cells left: the sampled tokens stay pending and these branches end here.
          for (size_t i : in_batch) {
            active[i].done = true;
            out[active[i].request].finish_reason = FinishReason::kContextFull;
            finished.push_back(active[i].request);
          }
        } else {
          for (size_t i : in_batch) branches_[requests[active[i].request].branch].n_decoded++;
        }
      }

      const bool report = on_finish && !finished.empty();
      // Outside work only when there is some: setting the logits aside below costs a copy of
      // every live row's logits.
      const bool outside = pending && pending();
      if (report || outside) {
        // The callbacks may fork, which decodes pending tokens and so overwrites the logits of
        // this decode: the branches still generating keep theirs first.
        for (auto& a : active) {
          if (a.done || a.batch_index < 0) continue;
          const float* logits = llama_get_logits_ith(ctx_, a.batch_index);
          branches_[requests[a.request].branch].logits =
              std::make_shared<const std::vector<float>>(logits, logits + n_vocab_);
          a.batch_index = -1;
        }
        std::vector<size_t> done_now;
        done_now.swap(finished);
        const size_t first_new = requests.size();
        for (size_t i : done_now) {
          if (!on_finish) break;
          for (GenerateRequest& r : on_finish(i, out[i])) requests.push_back(std::move(r));
          if (!keep) out[i] = Completion{};  // handed over: release what on_finish left
        }
        if (outside) {
          for (GenerateRequest& r : between_steps()) requests.push_back(std::move(r));
        }
        out.resize(requests.size());
        // New requests: live, non-empty branches that are not generating in this call.
        std::vector<bool> busy(branches_.size(), false);
        for (const auto& a : active) {
          if (!a.done) busy[requests[a.request].branch] = true;
        }
        for (size_t i = first_new; i < requests.size(); ++i) {
          const BranchId id = requests[i].branch;
          if (get(id).tokens.empty()) throw EngineError("cannot generate from an empty branch");
          if (busy[id]) throw EngineError("a branch appears twice in one generate call");
          busy[id] = true;
        }
        if (requests.size() > first_new) {
          flush({});
          for (size_t i = first_new; i < requests.size(); ++i) start(i);
        }
        by_seq();
      } else if (!finished.empty()) {
        finished.clear();
      }
      // A request started above with max_tokens <= 0 is finished without a step: one more
      // turn reports it.
      if (std::none_of(active.begin(), active.end(), [](const Active& a) { return !a.done; }) &&
          (finished.empty() || !on_finish)) {
        break;
      }
    }
    return out;
  }

 public:
  std::vector<EvaluateResult> evaluate(const std::vector<EvaluateRequest>& requests) override {
    require_context();
    std::vector<EvaluateResult> out(requests.size());
    // Everything is checked before any branch changes, so a bad request leaves all as they were.
    check_distinct_branches(requests, "evaluate");
    std::vector<Probe> probes;
    for (size_t r = 0; r < requests.size(); ++r) {
      const auto& req = requests[r];
      check_tokens(req.tokens);
      for (Token t : req.candidates) {
        if (t < 0 || t >= n_vocab_) throw EngineError("candidate token id out of range");
      }
      BranchState& b = get(req.branch);
      const size_t base = b.tokens.size();
      for (size_t i = 0; i < req.positions.size(); ++i) {
        const int32_t p = req.positions[i];
        if (p < 0 || static_cast<size_t>(p) >= req.tokens.size()) {
          throw EngineError("probe position outside the evaluated tokens");
        }
        probes.push_back({req.branch, base + p, r, i});
      }
      out[r].probs.assign(req.positions.size(), std::vector<float>(req.candidates.size(), 0.0f));
    }
    for (const auto& req : requests) append(req.branch, req.tokens);
    flush(probes, [&](const Probe& probe, const float* logits) {
      const auto& req = requests[probe.request];
      float max_logit = logits[0];
      for (int32_t i = 1; i < n_vocab_; ++i) max_logit = std::max(max_logit, logits[i]);
      double sum = 0.0;
      for (int32_t i = 0; i < n_vocab_; ++i) sum += std::exp(static_cast<double>(logits[i]) - max_logit);
      auto& row = out[probe.request].probs[probe.slot];
      for (size_t j = 0; j < req.candidates.size(); ++j) {
        row[j] = static_cast<float>(std::exp(static_cast<double>(logits[req.candidates[j]]) - max_logit) / sum);
      }
    });
    return out;
  }

  EngineStats stats() const override { return stats_; }

 private:
  using ProbeFn = std::function<void(const Probe&, const float*)>;

  const BranchState& get(BranchId id) const {
    if (id < 0 || id >= static_cast<BranchId>(branches_.size()) || !branches_[id].live) {
      throw EngineError("unknown branch id " + std::to_string(id));
    }
    return branches_[id];
  }
  BranchState& get(BranchId id) { return const_cast<BranchState&>(std::as_const(*this).get(id)); }

  // Each request of one call names a different branch: a branch's work in a call is one unit.
  template <typename Request>
  void check_distinct_branches(const std::vector<Request>& requests, const char* call) const {
    std::vector<bool> seen(branches_.size(), false);
    for (const auto& r : requests) {
      get(r.branch);
      if (seen[r.branch]) throw EngineError(std::string("a branch appears twice in one ") + call + " call");
      seen[r.branch] = true;
    }
  }

  void check_tokens(const std::vector<Token>& tokens) const {
    for (Token t : tokens) {
      if (t < 0 || t >= n_vocab_) throw EngineError("token id out of range: " + std::to_string(t));
    }
  }

  BranchId take_slot() {
    require_context();
    BranchId id;
    if (!free_slots_.empty()) {
      const auto lowest = std::min_element(free_slots_.begin(), free_slots_.end());
      id = *lowest;
      free_slots_.erase(lowest);
    } else if (next_slot_ < options_.max_branches) {
      id = next_slot_++;
    } else {
      throw EngineError("too many live branches (at most " + std::to_string(options_.max_branches) + ")");
    }
    branches_[id] = BranchState{};
    branches_[id].live = true;
    // The lowest free sequence: live branches stay packed at the low ids (see pack_rows()).
    const auto seq = std::find(branch_of_seq_.begin(), branch_of_seq_.end(), -1);
    branches_[id].seq = static_cast<llama_seq_id>(seq - branch_of_seq_.begin());
    *seq = id;
    return id;
  }

  // With split streams, gathers the rows of a decode step (branches each decoding a token) into
  // consecutive sequence ids: llama.cpp computes each run of consecutive ids as a step of its
  // own, which reads all the weights again, while moving a branch to another stream costs a
  // copy of the stream. A search's branches end their steps at different times, and those that
  // wait sit among the rows. The rows go to the window of ids that needs the fewest moves: the
  // waiting branches in it move out to free ids, the rows outside move in. There is always a
  // free id (the split layout has a stream more than max_branches) to move through.
  void pack_rows(const std::vector<BranchId>& rows) {
    const auto n = static_cast<int32_t>(branch_of_seq_.size());
    const auto k = static_cast<int32_t>(rows.size());
    if (k < 2) return;
    std::vector<bool> is_row(n, false);
    for (BranchId id : rows) is_row[branches_[id].seq] = true;
    int32_t runs = 0;
    for (int32_t s = 0; s < n; ++s) runs += is_row[s] && (s == 0 || !is_row[s - 1]);
    if (runs < 2 || std::find(branch_of_seq_.begin(), branch_of_seq_.end(), -1) == branch_of_seq_.end()) return;
    // Moves for window [w, w + k): the rows outside it plus the waiting branches inside it.
    int32_t best = -1, best_moves = INT32_MAX, moves = 0;
    auto cost = [&](int32_t s) { return (is_row[s] ? -1 : 0) + (!is_row[s] && branch_of_seq_[s] >= 0 ? 1 : 0); };
    moves = k;
    for (int32_t s = 0; s < k; ++s) moves += cost(s);
    for (int32_t w = 0;; ++w) {
      if (moves < best_moves) best_moves = moves, best = w;
      if (w + k >= n) break;
      moves += cost(w + k) - cost(w);
    }
    const auto inside = [&](int32_t s) { return s >= best && s < best + k; };
    auto free_seq = [&](bool in_window) {
      for (int32_t s = 0; s < n; ++s) {
        if (branch_of_seq_[s] < 0 && inside(s) == in_window) return s;
      }
      return -1;
    };
    for (int32_t s = best; s < best + k; ++s) {
      if (is_row[s] || branch_of_seq_[s] < 0) continue;
      int32_t out = free_seq(false);
      if (out < 0) {
        // Every free id is in the window: bring a row in first, which frees its id outside.
        const BranchId row = *std::find_if(rows.begin(), rows.end(), [&](BranchId id) { return !inside(branches_[id].seq); });
        out = branches_[row].seq;
        const int32_t in = free_seq(true);
        move_branch(row, in);
        is_row[in] = true;
        is_row[out] = false;
      }
      move_branch(branch_of_seq_[s], out);
    }
    for (BranchId id : rows) {
      if (!inside(branches_[id].seq)) move_branch(id, free_seq(true));
    }
  }

  // Moves a branch's cells to the free sequence `to` (a copy of its stream with split streams).
  void move_branch(BranchId id, llama_seq_id to) {
    BranchState& b = branches_[id];
    if (b.n_decoded > 0) llama_memory_seq_cp(mem_, b.seq, to, -1, -1);
    llama_memory_seq_rm(mem_, b.seq, -1, -1);
    branch_of_seq_[b.seq] = -1;
    branch_of_seq_[to] = id;
    b.seq = to;
    ++stats_.stream_moves;
  }

  void require_context() const {
    if (!ctx_) throw EngineError("this engine holds only the model's vocabulary");
  }

  void add_to_batch(Token token, llama_pos pos, llama_seq_id seq, bool logits) {
    const int32_t i = batch_.n_tokens++;
    batch_.token[i] = token;
    batch_.pos[i] = pos;
    batch_.n_seq_id[i] = 1;
    batch_.seq_id[i][0] = seq;
    batch_.logits[i] = logits;
  }

  int decode() {
    const auto t0 = Clock::now();
    const int rc = llama_decode(ctx_, batch_);
    stats_.decode_seconds += seconds_since(t0);
    ++stats_.decode_calls;
    if (rc != 0 && rc != 1) throw EngineError("llama_decode failed (code " + std::to_string(rc) + ")");
    return rc;
  }

  // Decodes every live branch's pending tokens, in as few llama_decode calls as n_batch allows.
  // Keeps each branch's next-token logits, and hands the logits at `probes` to on_probe.
  void flush(const std::vector<Probe>& probes, const ProbeFn& on_probe = {}) {
    std::vector<std::vector<int32_t>> probes_at(branches_.size());
    for (size_t i = 0; i < probes.size(); ++i) probes_at[probes[i].branch].push_back(static_cast<int32_t>(i));

    // For each batch row that outputs logits: the probes it answers.
    std::vector<std::vector<int32_t>> row_probes;
    auto run = [&]() {
      if (batch_.n_tokens == 0) return;
      if (decode() == 1) {
        throw EngineError("the KV cache is full (" + std::to_string(llama_n_ctx(ctx_)) +
                          " cells): use a larger context");
      }
      stats_.prompt_tokens += batch_.n_tokens;
      for (int32_t i = 0, out_i = 0; i < batch_.n_tokens; ++i) {
        BranchState& b = branches_[branch_of_seq_[batch_.seq_id[i][0]]];
        b.n_decoded++;
        if (!batch_.logits[i]) continue;
        const float* logits = llama_get_logits_ith(ctx_, i);
        if (on_probe) {
          for (int32_t p : row_probes[out_i]) on_probe(probes[p], logits);
        }
        ++out_i;
        if (b.n_decoded == b.tokens.size()) {
          b.logits = std::make_shared<const std::vector<float>>(logits, logits + n_vocab_);
        }
      }
      batch_.n_tokens = 0;
      row_probes.clear();
    };

    batch_.n_tokens = 0;
    for (llama_seq_id seq = 0; seq < static_cast<llama_seq_id>(branch_of_seq_.size()); ++seq) {
      const BranchId id = branch_of_seq_[seq];
      if (id < 0) continue;
      BranchState& b = branches_[id];
      if (b.tokens.empty()) continue;
      if (b.n_decoded == b.tokens.size() && !b.logits) {
        // Logits were not kept (e.g. the last decode failed): compute the last token again.
        llama_memory_seq_rm(mem_, seq, static_cast<llama_pos>(b.n_decoded - 1), -1);
        b.n_decoded--;
      }
      auto& wanted = probes_at[id];
      std::sort(wanted.begin(), wanted.end(),
                [&](int32_t a, int32_t c) { return probes[a].position < probes[c].position; });
      size_t next_probe = 0;
      for (size_t pos = b.n_decoded; pos < b.tokens.size(); ++pos) {
        std::vector<int32_t> here;
        while (next_probe < wanted.size() && probes[wanted[next_probe]].position == pos) {
          here.push_back(wanted[next_probe++]);
        }
        const bool output = pos + 1 == b.tokens.size() || !here.empty();
        if (batch_.n_tokens == n_batch_) run();
        add_to_batch(b.tokens[pos], static_cast<llama_pos>(pos), seq, output);
        if (output) row_probes.push_back(std::move(here));
      }
    }
    run();
  }

  LlamaEngineOptions options_;
  std::shared_ptr<llama_model> model_holder_;  // shared with other engines of the same file
  llama_model* model_ = nullptr;
  const llama_vocab* vocab_ = nullptr;
  llama_context* ctx_ = nullptr;
  llama_memory_t mem_ = nullptr;
  llama_batch batch_{};
  int32_t n_vocab_ = 0;
  int32_t n_batch_ = 0;  // tokens per llama_decode call, as llama.cpp allows
  std::vector<BranchState> branches_;       // indexed by BranchId
  std::vector<BranchId> branch_of_seq_;     // by llama seq id: the branch there, or -1
  bool split_ = false;                      // KvLayout::kSplit: a stream per sequence
  std::vector<BranchId> free_slots_;
  int32_t next_slot_ = 0;
  EngineStats stats_;
};

}  // namespace

const char* to_string(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop: return "stop";
    case FinishReason::kLength: return "length";
    case FinishReason::kEos: return "eos";
    case FinishReason::kContextFull: return "context_full";
    case FinishReason::kCancelled: return "cancelled";
  }
  return "unknown";
}

std::string Engine::detokenize(const std::vector<Token>& tokens) const {
  std::string out;
  for (Token t : tokens) out += token_to_piece(t);
  return out;
}

KvLayout choose_kv_layout(int64_t prompt_tokens, int64_t n_branches, int64_t new_tokens) {
  if (n_branches <= 1) return KvLayout::kUnified;
  const int64_t split_cells = n_branches * (prompt_tokens + new_tokens);
  const int64_t unified_cells = prompt_tokens + n_branches * new_tokens;
  return split_cells <= 4 * unified_cells ? KvLayout::kSplit : KvLayout::kUnified;
}

std::unique_ptr<LlamaEngine> open_llama_engine(const LlamaEngineOptions& options) {
  return std::make_unique<LlamaCppEngine>(options);
}

}  // namespace ponder
