// Training the toy task's models from scratch: a small llama-architecture model with a
// character-level vocabulary, trained as a language model on whole documents (the generator:
// problem and solution; the PRM: its conversations), saved as a GGUF file that llama.cpp, and so
// ponder's engine, runs.
//
// The training runs on llama.cpp's own training machinery (ggml-opt: AdamW, cross-entropy, the
// backward graph) but not through llama_opt_epoch: that builds llama.cpp's inference graph, whose
// attention reads keys and values back from the KV cache, and gradients do not flow through the
// cache write, so attn_k and attn_v never change (nor does token_embd, excluded by a FIXME in
// llama_opt_init); a one-document test could not be memorised that way (loss stuck near 1.2
// nats). The forward pass here is llama.cpp's llama graph written out without a cache (RoPE
// NORM, RMS norm, SwiGLU, untied output), every weight trained; that llama.cpp computes the same
// function is tested by generating with the saved model.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace ponder::toy {

// The vocabulary: SentencePiece-style ("llama" tokenizer) with one token per printable ASCII
// character ("▁" for the space), byte fallback (<0x00>..<0xFF>, so any text tokenizes; "\n" is
// <0x0A>), BOS/EOS/UNK and ChatML's <|im_start|>/<|im_end|> (the PRM's chat template). No
// merges: every character is one token, so numbers are read digit by digit and a text's tokens
// never depend on what precedes it (the PRM scores steps incrementally). 356 tokens.
std::vector<std::string> toy_vocabulary();

// ChatML, the PRM's chat template (llama.cpp renders it natively).
extern const char* const kToyChatTemplate;

struct ModelShape {
  int32_t n_embd = 128;
  int32_t n_layer = 4;
  int32_t n_head = 4;
  int32_t n_ff = 384;
  // Tokens per training window, and the context length the model declares. Positions carry no
  // weights (RoPE), so a model can be trained on with a longer window later.
  int32_t n_ctx = 256;
};

struct TrainOptions {
  ModelShape shape;             // for a new model; with init_from only n_ctx is used
  std::string init_from;        // continue training this toy GGUF instead of starting from scratch
  int32_t batch = 2;            // windows per optimizer step
  uint64_t seed = 0;            // initial weights and the order of documents in each epoch
  int32_t epochs = 1;
  float lr = 1e-3f;             // AdamW peak learning rate, after a linear warmup
  float lr_min = 1e-4f;         // reached at the last step by cosine decay
  int32_t warmup_steps = 50;
  float weight_decay = 0.0f;
  int32_t log_points = 10;      // curve points per epoch (each also measures validation loss)
  int32_t n_threads = 0;        // 0: every hardware thread
  // When set, the loss counts only the positions whose text so far ends with this one (special
  // tokens parsed): the PRM learns its "+"/"-" answers after the assistant header, not the text
  // of its conversations. The curve's losses then count those positions only.
  std::string loss_after;
  std::string description;      // general.description of the saved model
  bool verbose = false;         // pass llama.cpp's log through
};

// A training document: its text, and the text whose tokens are its targets when they are not the
// text's own next tokens. The PRM's conversations need that: ponder's verifier shows the PRM every
// earlier answer as "+", so the PRM trains on that text while its targets are the true labels
// (trained on its own labels as context, it learned to repeat an earlier "-" instead of reading
// the steps). `targets` must tokenize to as many tokens as `text`; empty means `text` itself.
struct Document {
  std::string text;
  std::string targets;
  Document(std::string text_) : text(std::move(text_)) {}  // NOLINT: a plain text is a document
  Document(const char* text_) : text(text_) {}             // NOLINT
  Document(std::string text_, std::string targets_) : text(std::move(text_)), targets(std::move(targets_)) {}
};

struct CurvePoint {
  int32_t epoch = 0;            // from 1
  int64_t step = 0;             // optimizer steps so far
  int64_t tokens = 0;           // window positions trained on so far (padding included)
  // Mean cross-entropy (nats per predicted token, padding not counted) over the steps since the
  // last point, and over all validation documents (NaN without any).
  double train_loss = 0.0;
  double val_loss = 0.0;
  double lr = 0.0;              // at the last step
  double seconds = 0.0;         // since the start of training
};

struct TrainResult {
  std::vector<CurvePoint> curve;
  // Weights saved, less the frozen token embedding (including the attention and feed-forward
  // biases llama.cpp creates for a model made from metadata, trained with the rest).
  int64_t parameters = 0;
  int64_t train_tokens = 0;     // window positions per epoch (steps x batch x n_ctx)
  int64_t scored_tokens = 0;    // of those, the documents' positions the loss counted
  double train_seconds = 0.0;   // in training steps (validation not counted)
  double tokens_per_second = 0.0;
};

// Trains on `train_docs` (each tokenized by llama.cpp as BOS + text + EOS, special tokens parsed,
// and its targets likewise;
// whole documents packed into n_ctx windows, each document attending only to itself from position
// 0 as at inference; reshuffled every epoch; the last partial batch of an epoch dropped) and saves the model to `out_path` (written to a temporary name, then renamed).
// `val_docs` give the validation loss at each curve point. `extra_metadata` are string keys added
// to the saved GGUF (e.g. tokenizer.chat_template). on_point sees each curve point as it is made.
// Deterministic for a seed and thread count. Throws std::runtime_error for bad options, too little
// training text for one step, a document longer than n_ctx, targets of another length than their
// text, an init_from that is not a toy model, and files that cannot be written.
TrainResult train_language_model(const std::vector<Document>& train_docs, const std::vector<Document>& val_docs,
                                 const TrainOptions& options, const std::string& out_path,
                                 const std::vector<std::pair<std::string, std::string>>& extra_metadata = {},
                                 const std::function<void(const CurvePoint&)>& on_point = {});

// Writes the curve as CSV (epoch,step,tokens,train_loss,val_loss,lr,seconds). Throws
// std::runtime_error when the file cannot be written.
void write_curve_csv(const std::string& path, const std::vector<CurvePoint>& curve);

}  // namespace ponder::toy
