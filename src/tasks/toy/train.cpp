#include "tasks/toy/train.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <random>
#include <stdexcept>
#include <string_view>

#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml-cpu.h"
#include "ggml-opt.h"
#include "ggml.h"
#include "gguf.h"
#include "llama.h"
#include "util/fnv1a.h"
#include "util/normal_stream.h"

namespace ponder::toy {

const char* const kToyChatTemplate =
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

namespace {

// llama.cpp's token types (llama_token_type in llama.h).
constexpr int32_t kNormal = 1, kUnknown = 2, kControl = 3, kByte = 6;
constexpr const char* kSpecials[] = {"<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"};
constexpr int32_t kUnkId = 0, kBosId = 1, kEosId = 2;
// The hyperparameters llama.cpp reads; fixed for every toy model.
constexpr float kRmsEps = 1e-5f;
constexpr float kRopeBase = 10000.0f;

std::vector<int32_t> vocabulary_types() {
  std::vector<int32_t> t = {kUnknown, kControl, kControl, kControl, kControl};
  t.insert(t.end(), 256, kByte);
  t.insert(t.end(), toy_vocabulary().size() - t.size(), kNormal);
  return t;
}

// --- logging ---------------------------------------------------------------------------------

// Keeps llama.cpp and ggml quiet for the length of a training run (unless verbose) but remembers
// the last error line for our messages; the previous logger comes back afterwards.
class QuietLog {
 public:
  explicit QuietLog(bool verbose) {
    llama_log_get(&prev_, &prev_ud_);
    llama_log_set(verbose ? prev_ : &QuietLog::log, verbose ? prev_ud_ : nullptr);
  }
  ~QuietLog() { llama_log_set(prev_, prev_ud_); }
  QuietLog(const QuietLog&) = delete;
  QuietLog& operator=(const QuietLog&) = delete;

  static std::string last_error() { return last_error_; }

 private:
  static void log(ggml_log_level level, const char* text, void*) {
    if (level != GGML_LOG_LEVEL_ERROR) return;
    std::string line(text);
    while (!line.empty() && (line.back() == '\n' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) last_error_ = line;
  }
  static inline std::string last_error_;
  ggml_log_callback prev_ = nullptr;
  void* prev_ud_ = nullptr;
};

std::runtime_error llama_failure(const std::string& what) {
  const std::string why = QuietLog::last_error();
  return std::runtime_error(what + (why.empty() ? "" : " (" + why + ")"));
}

// --- owners ------------------------------------------------------------------------------------

struct GgufDeleter {
  void operator()(gguf_context* c) const { gguf_free(c); }
};
struct GgmlDeleter {
  void operator()(ggml_context* c) const { ggml_free(c); }
};
struct BackendDeleter {
  void operator()(ggml_backend* b) const { ggml_backend_free(b); }
};
struct BufferDeleter {
  void operator()(ggml_backend_buffer* b) const { ggml_backend_buffer_free(b); }
};
struct SchedDeleter {
  void operator()(ggml_backend_sched* s) const { ggml_backend_sched_free(s); }
};
struct OptDeleter {
  void operator()(ggml_opt_context* o) const { ggml_opt_free(o); }
};
struct ResultDeleter {
  void operator()(ggml_opt_result* r) const { ggml_opt_result_free(r); }
};
struct ModelDeleter {
  void operator()(llama_model* m) const { llama_model_free(m); }
};
using GgufPtr = std::unique_ptr<gguf_context, GgufDeleter>;
using GgmlPtr = std::unique_ptr<ggml_context, GgmlDeleter>;

// --- metadata ------------------------------------------------------------------------------------

void set_string_array(gguf_context* g, const char* key, const std::vector<std::string>& values) {
  std::vector<const char*> ptrs;
  for (const auto& v : values) ptrs.push_back(v.c_str());
  gguf_set_arr_str(g, key, ptrs.data(), ptrs.size());
}

// Everything llama.cpp needs to run a toy model, less its tensors.
GgufPtr model_metadata(const ModelShape& s) {
  GgufPtr g(gguf_init_empty());
  gguf_context* c = g.get();
  const std::vector<std::string> vocab = toy_vocabulary();
  gguf_set_val_str(c, "general.architecture", "llama");
  gguf_set_val_str(c, "general.name", "ponder-toy");
  gguf_set_val_u32(c, "general.file_type", 0);  // all F32
  gguf_set_val_u32(c, "llama.vocab_size", static_cast<uint32_t>(vocab.size()));
  gguf_set_val_u32(c, "llama.context_length", static_cast<uint32_t>(s.n_ctx));
  gguf_set_val_u32(c, "llama.embedding_length", static_cast<uint32_t>(s.n_embd));
  gguf_set_val_u32(c, "llama.block_count", static_cast<uint32_t>(s.n_layer));
  gguf_set_val_u32(c, "llama.feed_forward_length", static_cast<uint32_t>(s.n_ff));
  gguf_set_val_u32(c, "llama.attention.head_count", static_cast<uint32_t>(s.n_head));
  gguf_set_val_u32(c, "llama.attention.head_count_kv", static_cast<uint32_t>(s.n_head));
  gguf_set_val_f32(c, "llama.attention.layer_norm_rms_epsilon", kRmsEps);
  gguf_set_val_f32(c, "llama.rope.freq_base", kRopeBase);
  gguf_set_val_u32(c, "llama.rope.dimension_count", static_cast<uint32_t>(s.n_embd / s.n_head));

  gguf_set_val_str(c, "tokenizer.ggml.model", "llama");
  set_string_array(c, "tokenizer.ggml.tokens", vocab);
  const std::vector<float> scores(vocab.size(), 0.0f);
  gguf_set_arr_data(c, "tokenizer.ggml.scores", GGUF_TYPE_FLOAT32, scores.data(), scores.size());
  const std::vector<int32_t> types = vocabulary_types();
  gguf_set_arr_data(c, "tokenizer.ggml.token_type", GGUF_TYPE_INT32, types.data(), types.size());
  gguf_set_val_u32(c, "tokenizer.ggml.unknown_token_id", kUnkId);
  gguf_set_val_u32(c, "tokenizer.ggml.bos_token_id", kBosId);
  gguf_set_val_u32(c, "tokenizer.ggml.eos_token_id", kEosId);
  gguf_set_val_bool(c, "tokenizer.ggml.add_bos_token", true);
  gguf_set_val_bool(c, "tokenizer.ggml.add_eos_token", false);
  // No space before the text: "Start" is not " Start", and incremental tokenization is exact.
  gguf_set_val_bool(c, "tokenizer.ggml.add_space_prefix", false);
  return g;
}

void check_shape(const ModelShape& s) {
  auto positive = [](int32_t v, const char* what) {
    if (v <= 0) throw std::runtime_error(std::string(what) + " must be positive");
  };
  positive(s.n_embd, "n_embd");
  positive(s.n_layer, "n_layer");
  positive(s.n_head, "n_head");
  positive(s.n_ff, "n_ff");
  positive(s.n_ctx, "n_ctx");
  if (s.n_embd % s.n_head != 0 || (s.n_embd / s.n_head) % 2 != 0) {
    throw std::runtime_error("n_embd must be n_head times an even head size");
  }
}

uint32_t get_u32(const gguf_context* g, const char* key, const std::string& path) {
  const int64_t id = gguf_find_key(g, key);
  if (id < 0 || gguf_get_kv_type(g, id) != GGUF_TYPE_UINT32) {
    throw std::runtime_error(path + " is not a toy model: no " + key);
  }
  return gguf_get_val_u32(g, id);
}

// --- the model as ggml tensors -------------------------------------------------------------------

struct Layer {
  ggml_tensor *attn_norm, *wq, *wk, *wv, *wo, *ffn_norm, *w_gate, *w_up, *w_down;
};
struct Weights {
  ggml_tensor* tok_embd;
  std::vector<Layer> layers;
  ggml_tensor *output_norm, *output;
  std::vector<ggml_tensor*> all;  // in the order they are written
};

// The tensors of llama.cpp's LLM_ARCH_LLAMA (no biases, untied output), named as it names them.
Weights make_weights(ggml_context* ctx, const ModelShape& s, int64_t n_vocab) {
  Weights w;
  auto add = [&](const std::string& name, int64_t ne0, int64_t ne1) {
    ggml_tensor* t = ne1 == 1 ? ggml_new_tensor_1d(ctx, GGML_TYPE_F32, ne0) : ggml_new_tensor_2d(ctx, GGML_TYPE_F32, ne0, ne1);
    ggml_set_name(t, name.c_str());
    w.all.push_back(t);
    return t;
  };
  w.tok_embd = add("token_embd.weight", s.n_embd, n_vocab);
  for (int32_t il = 0; il < s.n_layer; ++il) {
    const std::string b = "blk." + std::to_string(il) + ".";
    Layer l;
    l.attn_norm = add(b + "attn_norm.weight", s.n_embd, 1);
    l.wq = add(b + "attn_q.weight", s.n_embd, s.n_embd);
    l.wk = add(b + "attn_k.weight", s.n_embd, s.n_embd);
    l.wv = add(b + "attn_v.weight", s.n_embd, s.n_embd);
    l.wo = add(b + "attn_output.weight", s.n_embd, s.n_embd);
    l.ffn_norm = add(b + "ffn_norm.weight", s.n_embd, 1);
    l.w_gate = add(b + "ffn_gate.weight", s.n_embd, s.n_ff);
    l.w_up = add(b + "ffn_up.weight", s.n_embd, s.n_ff);
    l.w_down = add(b + "ffn_down.weight", s.n_ff, s.n_embd);
    w.layers.push_back(l);
  }
  w.output_norm = add("output_norm.weight", s.n_embd, 1);
  w.output = add("output.weight", s.n_embd, n_vocab);
  return w;
}

// Initial weights, each tensor from its own stream (seed and name). Matrices: std 1/sqrt(fan_in),
// the blocks' output projections a further 1/sqrt(2 n_layer) (GPT-2), so that the residual stream
// does not grow with depth; the token embedding: unit variance, as RMS-normed activations; the
// output matrix: small, so training starts from near-uniform predictions. Norms: ones.
void init_weights(const Weights& w, uint64_t seed, int32_t n_layer) {
  for (ggml_tensor* t : w.all) {
    const std::string name = ggml_get_name(t);
    std::vector<float> data(static_cast<size_t>(ggml_nelements(t)), 1.0f);
    if (name.find("norm") == std::string::npos) {
      double std = 1.0 / std::sqrt(static_cast<double>(t->ne[0]));
      if (t == w.tok_embd) {
        std = 1.0;
      } else if (t == w.output) {
        std *= 0.1;
      } else if (name.ends_with("attn_output.weight") || name.ends_with("ffn_down.weight")) {
        std /= std::sqrt(2.0 * n_layer);
      }
      NormalStream rng(seed ^ fnv1a(name));
      for (auto& x : data) x = static_cast<float>(rng.next() * std);
    }
    ggml_backend_tensor_set(t, data.data(), 0, ggml_nbytes(t));
  }
}

// Weights of a saved toy model, by name; the shapes must be those of `w` (same ModelShape).
void load_weights(const Weights& w, const std::string& path) {
  ggml_context* data = nullptr;
  GgufPtr g(gguf_init_from_file(path.c_str(), {/*no_alloc=*/false, &data}));
  if (!g) throw llama_failure("cannot read " + path);
  GgmlPtr data_owner(data);
  for (ggml_tensor* t : w.all) {
    const ggml_tensor* src = ggml_get_tensor(data, ggml_get_name(t));
    if (!src || src->type != GGML_TYPE_F32 || !ggml_are_same_shape(src, t)) {
      throw std::runtime_error(path + " is not a toy model: tensor " + ggml_get_name(t) + " is missing or differs");
    }
    ggml_backend_tensor_set(t, src->data, 0, ggml_nbytes(t));
  }
}

// The forward pass of llama.cpp's llama graph (llm_build_llama without a KV cache) for B windows
// of T tokens: logits [n_vocab, T * B]. `pos` holds each token's position in its document and
// `mask` [T, T, 1, B] lets a token see the tokens of its own document up to itself, so that each
// document is computed as llama.cpp computes it alone. Written out here because llama.cpp's own
// training graph attends through its KV cache, which gradients do not cross (see train.h).
ggml_tensor* forward(ggml_context* ctx, const Weights& w, const ModelShape& s, ggml_tensor* tokens, ggml_tensor* pos,
                     ggml_tensor* mask, int64_t T, int64_t B) {
  const int64_t d = s.n_embd, H = s.n_head, hd = d / H;
  const float kq_scale = 1.0f / std::sqrt(static_cast<float>(hd));
  ggml_tensor* x = ggml_get_rows(ctx, w.tok_embd, ggml_reshape_1d(ctx, tokens, T * B));  // [d, T*B]
  auto rope = [&](ggml_tensor* t) {
    // LLAMA_ROPE_TYPE_NORM, as llama.cpp runs LLM_ARCH_LLAMA; no scaling.
    return ggml_rope_ext(ctx, t, pos, nullptr, static_cast<int>(hd), 0, s.n_ctx, kRopeBase, 1.0f, 0.0f, 1.0f, 32.0f,
                         1.0f);
  };
  for (const Layer& l : w.layers) {
    ggml_tensor* h = ggml_mul(ctx, ggml_rms_norm(ctx, x, kRmsEps), l.attn_norm);
    ggml_tensor* q = ggml_reshape_4d(ctx, rope(ggml_reshape_3d(ctx, ggml_mul_mat(ctx, l.wq, h), hd, H, T * B)), hd, H, T, B);
    ggml_tensor* k = ggml_reshape_4d(ctx, rope(ggml_reshape_3d(ctx, ggml_mul_mat(ctx, l.wk, h), hd, H, T * B)), hd, H, T, B);
    ggml_tensor* v = ggml_reshape_4d(ctx, ggml_mul_mat(ctx, l.wv, h), hd, H, T, B);
    q = ggml_cont(ctx, ggml_permute(ctx, q, 0, 2, 1, 3));                  // [hd, T, H, B]
    k = ggml_cont(ctx, ggml_permute(ctx, k, 0, 2, 1, 3));                  // [hd, T, H, B]
    ggml_tensor* vt = ggml_cont(ctx, ggml_permute(ctx, v, 1, 2, 0, 3));    // [T, hd, H, B]
    ggml_tensor* kq = ggml_soft_max_ext(ctx, ggml_mul_mat(ctx, k, q), mask, kq_scale, 0.0f);  // [Tk, Tq, H, B]
    ggml_tensor* kqv = ggml_mul_mat(ctx, vt, kq);                          // [hd, Tq, H, B]
    ggml_tensor* attn = ggml_cont(ctx, ggml_permute(ctx, kqv, 0, 2, 1, 3));  // [hd, H, T, B]
    x = ggml_add(ctx, x, ggml_mul_mat(ctx, l.wo, ggml_reshape_2d(ctx, attn, d, T * B)));

    h = ggml_mul(ctx, ggml_rms_norm(ctx, x, kRmsEps), l.ffn_norm);
    ggml_tensor* gate = ggml_silu(ctx, ggml_mul_mat(ctx, l.w_gate, h));
    x = ggml_add(ctx, x, ggml_mul_mat(ctx, l.w_down, ggml_mul(ctx, gate, ggml_mul_mat(ctx, l.w_up, h))));
  }
  x = ggml_mul(ctx, ggml_rms_norm(ctx, x, kRmsEps), w.output_norm);
  return ggml_mul_mat(ctx, w.output, x);
}

// --- training ------------------------------------------------------------------------------------

struct Schedule {
  float lr, lr_min, weight_decay;
  int64_t warmup, total;
  int64_t step = 0;
  float last_lr = 0.0f;
};

// Called by ggml-opt once per optimizer step: linear warmup, then cosine decay to lr_min.
ggml_opt_optimizer_params schedule_params(void* userdata) {
  auto& s = *static_cast<Schedule*>(userdata);
  ++s.step;
  float lr;
  if (s.step <= s.warmup) {
    lr = s.lr * static_cast<float>(s.step) / static_cast<float>(s.warmup);
  } else {
    const double t = std::min(1.0, static_cast<double>(s.step - s.warmup) / std::max<int64_t>(1, s.total - s.warmup));
    lr = static_cast<float>(s.lr_min + 0.5 * (s.lr - s.lr_min) * (1.0 + std::cos(M_PI * t)));
  }
  s.last_lr = lr;
  ggml_opt_optimizer_params p = ggml_opt_get_default_optimizer_params(nullptr);
  p.adamw.alpha = lr;
  p.adamw.wd = s.weight_decay;
  return p;
}

std::vector<llama_token> tokenize_doc(const llama_vocab* vocab, const std::string& text) {
  std::vector<llama_token> out(text.size() + 2);
  int32_t n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), out.data(),
                             static_cast<int32_t>(out.size()), /*add_special=*/true, /*parse_special=*/true);
  if (n < 0) {
    out.resize(static_cast<size_t>(-n));
    n = llama_tokenize(vocab, text.data(), static_cast<int32_t>(text.size()), out.data(),
                       static_cast<int32_t>(out.size()), true, true);
  }
  if (n < 0) throw std::runtime_error("cannot tokenize a training document");
  out.resize(static_cast<size_t>(n));
  out.push_back(llama_vocab_eos(vocab));
  return out;
}

// A document's tokens, and its targets' when they differ (the target of position i is
// target[i + 1]).
struct Tokenized {
  std::vector<llama_token> input, target;
  size_t size() const { return input.size(); }
  llama_token next(size_t i) const { return target.empty() ? input[i + 1] : target[i + 1]; }
};

Tokenized tokenize(const llama_vocab* vocab, const Document& d) {
  Tokenized t{tokenize_doc(vocab, d.text), {}};
  if (!d.targets.empty()) {
    t.target = tokenize_doc(vocab, d.targets);
    if (t.target.size() != t.input.size()) {
      throw std::runtime_error("a training document's targets are " + std::to_string(t.target.size()) +
                               " tokens and its text " + std::to_string(t.input.size()) + ": they must be as many");
    }
  }
  return t;
}

// A window of T positions holding whole documents, each from its own position 0 (so it is seen
// as at inference, from BOS), then padding. A document of L tokens fills L - 1 positions: each
// token but the last, labelled with the next.
struct Window {
  std::vector<int32_t> input, label, pos, doc;  // doc: which document of the window, -1 padding
  std::vector<char> scored;                     // whether the loss counts the position
  int64_t real = 0;                             // positions before the padding
};

// Whether position i of `doc` (predicting token i + 1) is trained: every one, or with `after`
// given, those whose tokens so far end with it.
bool scored_position(const std::vector<llama_token>& doc, size_t i, const std::vector<llama_token>& after) {
  if (after.empty()) return true;
  if (i + 1 < after.size()) return false;
  return std::equal(after.begin(), after.end(), doc.begin() + static_cast<std::ptrdiff_t>(i + 1 - after.size()));
}

// Whole documents in `order`, packed into windows: each window takes, among the next kLookahead
// documents, the longest that still fits, until none does (nearly full windows, in about the
// given order). Throws when a document does not fit a window at all.
std::vector<Window> pack(const std::vector<Tokenized>& docs, const std::vector<size_t>& order,
                         int64_t T, const std::vector<llama_token>& loss_after) {
  constexpr size_t kLookahead = 64;
  std::vector<Window> out;
  std::vector<size_t> pool;
  size_t next = 0;
  while (next < order.size() || !pool.empty()) {
    while (pool.size() < kLookahead && next < order.size()) pool.push_back(order[next++]);
    Window w;
    w.input.assign(static_cast<size_t>(T), kEosId);
    w.label.assign(static_cast<size_t>(T), kEosId);
    w.pos.assign(static_cast<size_t>(T), 0);
    w.doc.assign(static_cast<size_t>(T), -1);
    w.scored.assign(static_cast<size_t>(T), 0);
    for (int32_t n_docs = 0;; ++n_docs) {
      auto best = pool.end();
      for (auto it = pool.begin(); it != pool.end(); ++it) {
        const int64_t need = static_cast<int64_t>(docs[*it].size()) - 1;
        if (need <= T - w.real && (best == pool.end() || need > static_cast<int64_t>(docs[*best].size()) - 1)) best = it;
      }
      if (best == pool.end()) break;
      const auto& d = docs[*best];
      for (size_t i = 0; i + 1 < d.size(); ++i, ++w.real) {
        const auto at = static_cast<size_t>(w.real);
        w.input[at] = d.input[i];
        w.label[at] = d.next(i);
        w.pos[at] = static_cast<int32_t>(i);
        w.doc[at] = n_docs;
        w.scored[at] = scored_position(d.input, i, loss_after);
      }
      pool.erase(best);
    }
    if (w.real == 0) {
      throw std::runtime_error("a document of " + std::to_string(docs[pool.front()].size()) +
                               " tokens does not fit a window of " + std::to_string(T) + " (raise n_ctx)");
    }
    out.push_back(std::move(w));
  }
  return out;
}

// Saves the weights with the metadata of `shape` and `extra` string keys, atomically.
void save(const Weights& w, const ModelShape& shape, const std::string& out_path,
          const std::vector<std::pair<std::string, std::string>>& extra) {
  GgufPtr g = model_metadata(shape);
  for (const auto& [key, value] : extra) gguf_set_val_str(g.get(), key.c_str(), value.c_str());
  size_t bytes = 0;
  for (const ggml_tensor* t : w.all) bytes += GGML_PAD(ggml_nbytes(t), GGML_MEM_ALIGN) + ggml_tensor_overhead();
  GgmlPtr host(ggml_init({bytes, nullptr, false}));
  for (const ggml_tensor* t : w.all) {
    ggml_tensor* copy = ggml_dup_tensor(host.get(), t);
    ggml_set_name(copy, ggml_get_name(t));
    ggml_backend_tensor_get(t, copy->data, 0, ggml_nbytes(t));
    gguf_add_tensor(g.get(), copy);
  }
  const std::string tmp = out_path + ".tmp." + std::to_string(std::random_device{}() & 0xffffffu);
  if (!gguf_write_to_file(g.get(), tmp.c_str(), false)) {
    std::error_code ec;
    std::filesystem::remove(tmp, ec);
    throw llama_failure("cannot write " + tmp);
  }
  std::error_code ec;
  std::filesystem::rename(tmp, out_path, ec);
  if (ec) {
    const std::string why = ec.message();
    std::filesystem::remove(tmp, ec);
    throw std::runtime_error("cannot rename " + tmp + " to " + out_path + ": " + why);
  }
}

}  // namespace

std::vector<std::string> toy_vocabulary() {
  std::vector<std::string> v(std::begin(kSpecials), std::end(kSpecials));
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    v.push_back(buf);
  }
  v.push_back("\xE2\x96\x81");  // "▁": SentencePiece's space
  for (char c = '!'; c <= '~'; ++c) v.push_back(std::string(1, c));
  return v;
}

TrainResult train_language_model(const std::vector<Document>& train_docs, const std::vector<Document>& val_docs,
                                 const TrainOptions& o, const std::string& out_path,
                                 const std::vector<std::pair<std::string, std::string>>& extra_metadata,
                                 const std::function<void(const CurvePoint&)>& on_point) {
  if (o.epochs < 1) throw std::runtime_error("epochs must be at least 1");
  if (o.log_points < 1) throw std::runtime_error("log points must be at least 1");
  if (o.batch < 1) throw std::runtime_error("batch must be at least 1");
  if (!(o.lr > 0.0f) || !(o.lr_min > 0.0f) || o.lr_min > o.lr) {
    throw std::runtime_error("learning rates must be positive, lr_min <= lr");
  }
  if (o.warmup_steps < 0) throw std::runtime_error("warmup steps must not be negative");
  if (!(o.weight_decay >= 0.0f && o.weight_decay <= 1.0f)) throw std::runtime_error("weight decay must be in [0, 1]");
  const std::filesystem::path parent = std::filesystem::path(out_path).parent_path();
  if (!parent.empty() && !std::filesystem::is_directory(parent)) {
    throw std::runtime_error("cannot write " + out_path + ": no directory " + parent.string());
  }

  QuietLog quiet(o.verbose);
  llama_backend_init();

  // The shape, and llama.cpp's tokenizer for it (a vocabulary-only model).
  ModelShape shape = o.shape;
  llama_model_params mp = llama_model_default_params();
  mp.vocab_only = true;
  std::unique_ptr<llama_model, ModelDeleter> vocab_model;
  if (o.init_from.empty()) {
    check_shape(shape);
    GgufPtr meta = model_metadata(shape);
    vocab_model.reset(llama_model_init_from_user(meta.get(), [](ggml_tensor*, void*) {}, nullptr, mp));
    if (!vocab_model) throw llama_failure("cannot make the toy vocabulary");
  } else {
    GgufPtr meta(gguf_init_from_file(o.init_from.c_str(), {/*no_alloc=*/true, nullptr}));
    if (!meta) throw llama_failure("cannot read " + o.init_from);
    shape = {static_cast<int32_t>(get_u32(meta.get(), "llama.embedding_length", o.init_from)),
             static_cast<int32_t>(get_u32(meta.get(), "llama.block_count", o.init_from)),
             static_cast<int32_t>(get_u32(meta.get(), "llama.attention.head_count", o.init_from)),
             static_cast<int32_t>(get_u32(meta.get(), "llama.feed_forward_length", o.init_from)), o.shape.n_ctx};
    check_shape(shape);
    vocab_model.reset(llama_model_load_from_file(o.init_from.c_str(), mp));
    if (!vocab_model) throw llama_failure("cannot load " + o.init_from);
  }
  const llama_vocab* vocab = llama_model_get_vocab(vocab_model.get());
  const int64_t n_vocab = llama_vocab_n_tokens(vocab);
  if (n_vocab != static_cast<int64_t>(toy_vocabulary().size())) {
    throw std::runtime_error(o.init_from + " is not a toy model: its vocabulary has " + std::to_string(n_vocab) +
                             " tokens");
  }

  const int64_t T = shape.n_ctx, B = o.batch;
  std::vector<Tokenized> train, val;
  for (const auto& d : train_docs) train.push_back(tokenize(vocab, d));
  for (const auto& d : val_docs) val.push_back(tokenize(vocab, d));
  std::vector<llama_token> loss_after;
  if (!o.loss_after.empty()) {
    loss_after = tokenize_doc(vocab, o.loss_after);
    loss_after.erase(loss_after.begin());  // BOS
    loss_after.pop_back();                 // EOS
  }
  std::vector<size_t> order(train.size()), val_order(val.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  for (size_t i = 0; i < val_order.size(); ++i) val_order[i] = i;
  const std::vector<Window> val_windows = pack(val, val_order, T, loss_after);
  // Every epoch packs about as many windows; the schedule counts on the first order's.
  const int64_t steps_estimate = static_cast<int64_t>(pack(train, order, T, loss_after).size()) / B;
  if (steps_estimate == 0) {
    throw std::runtime_error("too little training text: fewer than " + std::to_string(B) + " windows of " +
                             std::to_string(T) + " tokens");
  }

  // The CPU backend (ggml-opt also runs on a GPU backend; this trainer keeps to the CPU).
  std::unique_ptr<ggml_backend, BackendDeleter> backend(ggml_backend_cpu_init());
  if (!backend) throw llama_failure("cannot start ggml's CPU backend");
  if (o.n_threads > 0) ggml_backend_cpu_set_n_threads(backend.get(), o.n_threads);
  ggml_backend_t backends[] = {backend.get()};
  std::unique_ptr<ggml_backend_sched, SchedDeleter> sched(
      ggml_backend_sched_new(backends, nullptr, 1, GGML_DEFAULT_GRAPH_SIZE, false, true));

  // Weights and inputs in one buffer of their own; the graph is built for every step (ggml-opt's
  // non-static mode, as llama.cpp uses it), which leaves the logits readable afterwards.
  GgmlPtr ctx_static(ggml_init({(4 + 9 * static_cast<size_t>(shape.n_layer) + 8) * ggml_tensor_overhead(), nullptr, true}));
  const Weights w = make_weights(ctx_static.get(), shape, n_vocab);
  ggml_tensor* tokens = ggml_new_tensor_2d(ctx_static.get(), GGML_TYPE_I32, T, B);
  ggml_tensor* pos = ggml_new_tensor_1d(ctx_static.get(), GGML_TYPE_I32, T * B);
  ggml_tensor* mask = ggml_new_tensor_4d(ctx_static.get(), GGML_TYPE_F32, T, T, 1, B);
  ggml_set_name(tokens, "tokens");
  std::unique_ptr<ggml_backend_buffer, BufferDeleter> buf(ggml_backend_alloc_ctx_tensors(ctx_static.get(), backend.get()));
  if (!buf) throw std::runtime_error("out of memory for the model's weights");
  if (o.init_from.empty()) {
    init_weights(w, o.seed, shape.n_layer);
  } else {
    load_weights(w, o.init_from);
  }
  for (ggml_tensor* t : w.all) ggml_set_param(t);
  // Forward, backward and optimizer nodes; ggml's default graph size with room for deep models.
  const size_t graph_size = std::max<size_t>(GGML_DEFAULT_GRAPH_SIZE, 256 * static_cast<size_t>(shape.n_layer));

  Schedule sched_lr{o.lr, o.lr_min, o.weight_decay, o.warmup_steps, steps_estimate * o.epochs};
  ggml_opt_params op = ggml_opt_default_params(sched.get(), GGML_OPT_LOSS_TYPE_CROSS_ENTROPY);
  op.opt_period = 1;
  op.get_opt_pars = schedule_params;
  op.get_opt_pars_ud = &sched_lr;
  op.optimizer = GGML_OPT_OPTIMIZER_TYPE_ADAMW;
  std::unique_ptr<ggml_opt_context, OptDeleter> opt(ggml_opt_init(op));

  // One step on windows[first, first + B) (fewer at the end of validation: the rest is padding),
  // trained on or only measured. Returns the summed loss over the documents' positions (not the
  // padding's) and their count: ggml's own loss averages over every position.
  std::vector<float> onehot(static_cast<size_t>(n_vocab * T * B));
  std::vector<int32_t> in(static_cast<size_t>(T * B)), positions(static_cast<size_t>(T * B));
  std::vector<float> masks(static_cast<size_t>(T * T * B)), out(static_cast<size_t>(n_vocab * T * B));
  std::unique_ptr<ggml_opt_result, ResultDeleter> ggml_result(ggml_opt_result_init());
  const Window padding{std::vector<int32_t>(static_cast<size_t>(T), kEosId), std::vector<int32_t>(static_cast<size_t>(T), kEosId),
                       std::vector<int32_t>(static_cast<size_t>(T), 0), std::vector<int32_t>(static_cast<size_t>(T), -1),
                       std::vector<char>(static_cast<size_t>(T), 0), 0};
  auto run_step = [&](const std::vector<Window>& windows, size_t first, bool train_step) -> std::pair<double, int64_t> {
    GgmlPtr ctx_compute(ggml_init({4 * graph_size * ggml_tensor_overhead() + 2 * ggml_graph_overhead_custom(graph_size, true),
                                   nullptr, true}));
    ggml_tensor* logits = forward(ctx_compute.get(), w, shape, tokens, pos, mask, T, B);
    ggml_cgraph* gf = ggml_new_graph_custom(ctx_compute.get(), graph_size, true);
    ggml_build_forward_expand(gf, logits);
    ggml_opt_prepare_alloc(opt.get(), ctx_compute.get(), gf, tokens, logits);
    ggml_opt_alloc(opt.get(), train_step);
    // ggml-opt accumulates gradients in this mode and clears them only between steps of an
    // opt_period > 1: clear them here, or every step would apply the sum of all gradients so far.
    if (train_step) ggml_opt_reset(opt.get(), /*optimizer=*/false);
    std::fill(onehot.begin(), onehot.end(), 0.0f);
    std::fill(masks.begin(), masks.end(), -INFINITY);
    for (int64_t b = 0; b < B; ++b) {
      const Window& w = first + b < windows.size() ? windows[first + b] : padding;
      for (int64_t t = 0; t < T; ++t) {
        const size_t at = static_cast<size_t>(b * T + t);
        in[at] = w.input[t];
        positions[at] = w.pos[t];
        // Without loss_after every position is trained, padding included (it learns EOS after
        // EOS, harmless); with it, an all-zero target row adds neither loss nor gradient.
        if (loss_after.empty() || w.scored[t]) onehot[at * n_vocab + w.label[t]] = 1.0f;
        // A query sees the keys of its own document up to itself; padding only itself.
        float* row = masks.data() + (b * T + t) * T;
        if (w.doc[t] < 0) {
          row[t] = 0.0f;
        } else {
          for (int64_t k = t; k >= 0 && w.doc[k] == w.doc[t]; --k) row[k] = 0.0f;
        }
      }
    }
    ggml_backend_tensor_set(tokens, in.data(), 0, ggml_nbytes(tokens));
    ggml_backend_tensor_set(pos, positions.data(), 0, ggml_nbytes(pos));
    ggml_backend_tensor_set(mask, masks.data(), 0, ggml_nbytes(mask));
    ggml_backend_tensor_set(ggml_opt_labels(opt.get()), onehot.data(), 0, onehot.size() * sizeof(float));
    ggml_opt_eval(opt.get(), ggml_result.get());
    ggml_opt_result_reset(ggml_result.get());
    ggml_backend_tensor_get(logits, out.data(), 0, out.size() * sizeof(float));
    double loss = 0.0;
    int64_t count = 0;
    for (int64_t b = 0; b < B && first + b < windows.size(); ++b) {
      const Window& w = windows[first + b];
      for (int64_t t = 0; t < w.real; ++t) {
        if (!w.scored[t]) continue;
        const float* row = out.data() + (b * T + t) * n_vocab;
        const float mx = *std::max_element(row, row + n_vocab);
        double sum = 0.0;
        for (int64_t v = 0; v < n_vocab; ++v) sum += std::exp(static_cast<double>(row[v] - mx));
        loss += std::log(sum) + mx - row[w.label[t]];
        ++count;
      }
    }
    return {loss, count};
  };

  TrainResult result;
  result.parameters = 0;
  for (const ggml_tensor* t : w.all) result.parameters += ggml_nelements(t);

  std::mt19937_64 shuffle_rng(o.seed);
  const auto t0 = std::chrono::steady_clock::now();
  double train_seconds = 0.0;
  int64_t tokens_seen = 0;
  for (int32_t epoch = 1; epoch <= o.epochs; ++epoch) {
    // Fisher-Yates with our own draws: std::shuffle's order differs between libraries.
    for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[shuffle_rng() % i]);
    const std::vector<Window> windows = pack(train, order, T, loss_after);
    const int64_t steps = static_cast<int64_t>(windows.size()) / B;
    if (epoch == 1) {
      result.train_tokens = steps * B * T;
      for (int64_t i = 0; i < steps * B; ++i) {
        const auto& sc = windows[static_cast<size_t>(i)].scored;
        result.scored_tokens += std::count(sc.begin(), sc.end(), 1);
      }
    }
    const int64_t points = std::min<int64_t>(o.log_points, steps);
    for (int64_t p = 0; p < points; ++p) {
      const auto tp = std::chrono::steady_clock::now();
      double train_loss = 0.0;
      int64_t train_count = 0;
      for (int64_t s = steps * p / points; s < steps * (p + 1) / points; ++s) {
        const auto [loss, count] = run_step(windows, static_cast<size_t>(s * B), true);
        train_loss += loss;
        train_count += count;
        tokens_seen += B * T;
      }
      train_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - tp).count();
      double val_loss = 0.0;
      int64_t val_count = 0;
      for (size_t v = 0; v < val_windows.size(); v += static_cast<size_t>(B)) {
        const auto [loss, count] = run_step(val_windows, v, false);
        val_loss += loss;
        val_count += count;
      }

      CurvePoint c;
      c.epoch = epoch;
      c.step = sched_lr.step;
      c.tokens = tokens_seen;
      c.train_loss = train_count > 0 ? train_loss / static_cast<double>(train_count) : 0.0;
      c.val_loss = val_count > 0 ? val_loss / static_cast<double>(val_count) : std::numeric_limits<double>::quiet_NaN();
      c.lr = sched_lr.last_lr;
      c.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      result.curve.push_back(c);
      if (on_point) on_point(c);
    }
  }
  result.train_seconds = train_seconds;
  result.tokens_per_second = train_seconds > 0 ? static_cast<double>(tokens_seen) / train_seconds : 0.0;

  std::vector<std::pair<std::string, std::string>> extra = extra_metadata;
  if (!o.description.empty()) extra.emplace_back("general.description", o.description);
  save(w, shape, out_path, extra);
  return result;
}

void write_curve_csv(const std::string& path, const std::vector<CurvePoint>& curve) {
  std::ofstream out(path, std::ios::binary);
  if (!out) throw std::runtime_error("cannot write " + path);
  out << "epoch,step,tokens,train_loss,val_loss,lr,seconds\n";
  for (const auto& c : curve) {
    char line[256];
    std::snprintf(line, sizeof line, "%d,%lld,%lld,%.5f,%.5f,%.3g,%.1f\n", c.epoch, static_cast<long long>(c.step),
                  static_cast<long long>(c.tokens), c.train_loss, c.val_loss, c.lr, c.seconds);
    out << line;
  }
  out.close();
  if (!out) throw std::runtime_error("cannot write " + path);
}

}  // namespace ponder::toy
