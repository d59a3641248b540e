// LlamaEmbedder: pooled, L2-normalised text embeddings from llama.cpp (see llama_embedder.h).
// Follows llama.cpp's examples/embedding: all tokens output, one sequence id per text, the KV
// cache cleared before each call, the pooled vector read with llama_get_embeddings_seq.
#include "engine/llama_embedder.h"

#include <llama.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <thread>

#include "engine/llama_engine.h"
#include "engine/model_cache.h"

namespace ponder {
namespace {

// llama.cpp's LLAMA_MAX_SEQ: sequence ids in one decode call.
constexpr int32_t kMaxSequencesPerCall = 256;

// The pooling type the GGUF names ("<arch>.pooling_type"), or -1 when it names none: then the
// model is a plain generator, for which llama.cpp would pool nothing.
int model_pooling_type(const llama_model* model) {
  char arch[128] = {};
  if (llama_model_meta_val_str(model, "general.architecture", arch, sizeof(arch)) < 0) return -1;
  char value[32] = {};
  const std::string key = std::string(arch) + ".pooling_type";
  if (llama_model_meta_val_str(model, key.c_str(), value, sizeof(value)) < 0) return -1;
  return std::atoi(value);
}

void normalise(std::vector<float>& v) {
  double sum = 0.0;
  for (float x : v) sum += static_cast<double>(x) * x;
  if (sum <= 0.0) return;  // an all-zero vector has no direction; left as it is
  const float scale = static_cast<float>(1.0 / std::sqrt(sum));
  for (float& x : v) x *= scale;
}

}  // namespace

struct LlamaEmbedder::Impl {
  LlamaEmbedderOptions options;
  // A vocabulary-only engine: it checks the file with the engine's clear errors, sets up
  // llama.cpp's backend and log routing once for the process (shared with any LlamaEngine), and
  // tokenizes.
  std::unique_ptr<LlamaEngine> tokenizer;
  std::shared_ptr<llama_model> model_holder;  // shared with engines of the same file
  llama_model* model = nullptr;
  llama_context* ctx = nullptr;
  llama_batch batch{};
  int32_t n_batch = 0;
  int32_t max_sequences = 0;  // texts per decode call
  int32_t dimension = 0;

  ~Impl() {
    if (ctx) {
      llama_batch_free(batch);
      llama_free(ctx);
    }
  }
};

LlamaEmbedder::LlamaEmbedder(const LlamaEmbedderOptions& options) : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.options = options;
  if (options.n_batch < 1) throw EngineError("embedder n_batch must be positive");
  if (options.max_tokens_per_text < 1 || options.max_tokens_per_text > options.n_batch) {
    throw EngineError("embedder max tokens per text must be between 1 and n_batch (" +
                      std::to_string(options.n_batch) + ")");
  }

  LlamaEngineOptions vocab_options;
  vocab_options.model_path = options.model_path;
  vocab_options.vocab_only = true;
  vocab_options.verbose = options.verbose;
  s.tokenizer = open_llama_engine(vocab_options);

  s.model_holder = load_shared_model(options.model_path, options.n_gpu_layers, /*vocab_only=*/false);
  s.model = s.model_holder.get();
  if (!s.model) throw EngineError("cannot load model " + options.model_path);

  const int pooling = model_pooling_type(s.model);
  if (pooling == LLAMA_POOLING_TYPE_RANK) {
    throw EngineError("model " + options.model_path + " is a reranker: it scores pairs, it does not embed");
  }

  llama_context_params cparams = llama_context_default_params();
  cparams.embeddings = true;
  // An embedding model pools its own way (UNSPECIFIED: llama.cpp takes the GGUF's); a generator
  // names none, and is mean-pooled.
  cparams.pooling_type = pooling > LLAMA_POOLING_TYPE_NONE ? LLAMA_POOLING_TYPE_UNSPECIFIED
                                                           : LLAMA_POOLING_TYPE_MEAN;
  // One call's texts fill at most n_batch cells, shared by all sequences (unified cache), and
  // run as one compute step so that no sequence is split before pooling (llama.cpp requires
  // this for non-causal models, as examples/embedding does).
  cparams.n_ctx = std::max<uint32_t>(options.n_batch, 256);  // llama.cpp's minimum cells
  cparams.n_batch = options.n_batch;
  cparams.n_ubatch = options.n_batch;
  // llama.cpp keeps an output row per sequence and at most n_batch rows; each text is at least
  // one token, so a call never holds more texts than n_batch anyway.
  s.max_sequences = std::min(kMaxSequencesPerCall, options.n_batch);
  cparams.n_seq_max = s.max_sequences;
  cparams.kv_unified = true;
  const int threads = options.n_threads > 0 ? options.n_threads
                                            : std::max(1u, std::thread::hardware_concurrency());
  cparams.n_threads = threads;
  cparams.n_threads_batch = threads;
  cparams.no_perf = true;
  s.ctx = llama_init_from_model(s.model, cparams);
  if (!s.ctx) throw EngineError("cannot create llama.cpp embedding context for " + options.model_path);
  s.n_batch = options.n_batch;
  s.batch = llama_batch_init(s.n_batch, 0, 1);
  s.dimension = llama_model_n_embd_out(s.model);
}

LlamaEmbedder::~LlamaEmbedder() = default;

int32_t LlamaEmbedder::dimension() const { return impl_->dimension; }

std::vector<std::vector<float>> LlamaEmbedder::embed(const std::vector<std::string>& texts) {
  Impl& s = *impl_;
  std::vector<std::vector<Token>> tokens(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    tokens[i] = s.tokenizer->tokenize(texts[i], /*add_special=*/true, /*parse_special=*/false);
    if (tokens[i].empty()) throw EngineError("cannot embed a text with no tokens (text " + std::to_string(i) + ")");
    if (static_cast<int64_t>(tokens[i].size()) > s.options.max_tokens_per_text) {
      throw EngineError("text " + std::to_string(i) + " has " + std::to_string(tokens[i].size()) +
                        " tokens, more than the embedder's limit of " +
                        std::to_string(s.options.max_tokens_per_text));
    }
  }

  std::vector<std::vector<float>> out(texts.size());
  size_t next = 0;
  while (next < texts.size()) {
    // Pack whole texts, in order, while they fit the call's tokens and sequence ids.
    const size_t first = next;
    s.batch.n_tokens = 0;
    while (next < texts.size() && next - first < static_cast<size_t>(s.max_sequences) &&
           s.batch.n_tokens + static_cast<int64_t>(tokens[next].size()) <= s.n_batch) {
      const llama_seq_id seq = static_cast<llama_seq_id>(next - first);
      for (size_t p = 0; p < tokens[next].size(); ++p) {
        const int32_t k = s.batch.n_tokens++;
        s.batch.token[k] = tokens[next][p];
        s.batch.pos[k] = static_cast<llama_pos>(p);
        s.batch.n_seq_id[k] = 1;
        s.batch.seq_id[k][0] = seq;
        s.batch.logits[k] = true;
      }
      ++next;
    }
    // Each call starts from an empty cache: texts never attend to earlier calls' texts.
    // (Encoder-only models have no memory to clear.)
    if (llama_memory_t mem = llama_get_memory(s.ctx)) llama_memory_clear(mem, true);
    const int32_t rc = llama_decode(s.ctx, s.batch);
    if (rc != 0) throw EngineError("llama_decode failed while embedding (code " + std::to_string(rc) + ")");
    for (size_t i = first; i < next; ++i) {
      const float* pooled = llama_get_embeddings_seq(s.ctx, static_cast<llama_seq_id>(i - first));
      if (!pooled) throw EngineError("llama.cpp returned no pooled embedding");
      out[i].assign(pooled, pooled + s.dimension);
      normalise(out[i]);
    }
  }
  return out;
}

}  // namespace ponder
