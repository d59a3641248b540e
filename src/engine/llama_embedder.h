// Text embeddings from a GGUF model, for the story scorers of issue 5 (coherence of adjacent
// sentences, diversity of returned stories). A LlamaEmbedder holds its own llama.cpp context with
// embeddings on, apart from any generating engine: pooled embeddings need every token of a text
// output in one pass, which a generation context does not do.
//
// Any GGUF model works. An embedding model (its GGUF names a pooling type, e.g. CLS or MEAN for
// BERT-like models) is pooled its own way; a plain generator is mean-pooled over its last hidden
// states, the fallback when no embedding model is given.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/engine.h"

namespace ponder {

struct LlamaEmbedderOptions {
  std::string model_path;
  int32_t n_threads = 0;         // 0: every hardware thread
  int32_t n_gpu_layers = -1;     // -1: all layers on the GPU when llama.cpp was built with one
  // Longest text, in tokens (BOS/CLS and the like included); a longer text throws EngineError.
  // At most n_batch, since a text is pooled within one decode call.
  int32_t max_tokens_per_text = 512;
  // Tokens per llama_decode call (also the KV cells and the physical batch: a sequence must not
  // be split across compute steps to be pooled whole). llama.cpp keeps an n_vocab x n_batch
  // float buffer of logits beside the embeddings, so a large-vocabulary model pays for a large
  // n_batch in host memory.
  int32_t n_batch = 1024;
  bool verbose = false;          // pass llama.cpp's own log through to stderr
};

class LlamaEmbedder {
 public:
  // Opens the model. Throws EngineError with a one-line reason for a missing, unreadable or
  // non-GGUF file, bad options, a reranking model (its pooled output is a score, not a vector),
  // or when llama.cpp cannot create the context.
  explicit LlamaEmbedder(const LlamaEmbedderOptions& options);
  ~LlamaEmbedder();
  LlamaEmbedder(const LlamaEmbedder&) = delete;
  LlamaEmbedder& operator=(const LlamaEmbedder&) = delete;

  // One L2-normalised vector (of dimension()) per text, in order. Texts are tokenized with the
  // model's special tokens (BOS, CLS/SEP) and packed, one sequence id each, into as few
  // llama_decode calls as n_batch tokens and llama.cpp's 256 sequences per call allow; each text
  // is embedded on its own (no attention across texts), so a text's vector does not depend on
  // what shares its call beyond float rounding. Throws EngineError for a text longer than
  // max_tokens_per_text, one with no tokens at all, or a failed decode.
  std::vector<std::vector<float>> embed(const std::vector<std::string>& texts);

  int32_t dimension() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace ponder
