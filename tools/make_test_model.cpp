// ponder-make-test-model: writes a small GGUF model with random weights that llama.cpp loads and
// runs, so tests can use model shapes other than the one real tiny model.
//
// The tokenizer (every tokenizer.* key) is copied from one of llama.cpp's vocabulary files
// (third_party/llama.cpp/models/ggml-vocab-*.gguf, which hold tokenizer metadata only). The
// weights are random but fully determined by --seed: a std::mt19937_64 stream (whose output the
// C++ standard fixes) feeds our own Box-Muller transform (std::normal_distribution is
// implementation-defined), and tensors draw from it in a fixed order.
//
// The weights are scaled, not plain std 0.02 noise, so that greedy decoding does not lock onto one
// token: see model_tensors() for the scales and why.

#include "ggml.h"
#include "gguf.h"
#include "util/normal_stream.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <memory>
#include <new>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace {

constexpr int kExitError = 2;

// Any failure: reported as one line on stderr by main(), exit code 2.
struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

void print_usage(FILE * out) {
    std::fputs(
        "usage: ponder-make-test-model --arch llama|qwen2 --vocab PATH --out PATH [options]\n"
        "\n"
        "Writes a small GGUF model with random weights (deterministic for a given seed) and the\n"
        "tokenizer of a llama.cpp vocabulary file (e.g. third_party/llama.cpp/models/\n"
        "ggml-vocab-llama-bpe.gguf). The file is written to PATH.tmp.*, then renamed to PATH.\n"
        "\n"
        "options:\n"
        "  --arch A               llama or qwen2 (qwen2 adds Q/K/V biases)\n"
        "  --vocab PATH           GGUF file to copy the tokenizer.* keys from\n"
        "  --out PATH             output GGUF file\n"
        "  --shape S              preset: tiny (default) or smollm2-135m\n"
        "                           tiny:         n_embd 64, n_layer 2, n_head 4, n_head_kv 2,\n"
        "                                         n_ff 128, n_ctx 2048, rope base 1e4, f32, untied\n"
        "                           smollm2-135m: n_embd 576, n_layer 30, n_head 9, n_head_kv 3,\n"
        "                                         n_ff 1536, n_ctx 8192, rope base 1e5, f16, tied\n"
        "  --n-embd N             embedding width (a multiple of n_head, with an even head size)\n"
        "  --n-layer N            number of blocks\n"
        "  --n-head N             attention heads\n"
        "  --n-head-kv N          key/value heads (divides n_head)\n"
        "  --n-ff N               feed-forward width\n"
        "  --n-ctx N              training context length\n"
        "  --tied | --untied      reuse token_embd as the output matrix, or write output.weight\n"
        "  --type T               f32 or f16 for the weight matrices (norms and biases stay f32)\n"
        "  --seed S               random seed (default 0)\n"
        "  --chat-template TEXT   set tokenizer.chat_template; \"none\" removes it\n"
        "  --eos-logit-scale F    multiply the end-of-sequence token's output row by F (untied\n"
        "                         output only): with F around 2 samples end after a few dozen\n"
        "                         tokens, so tests can see end-of-generation handling\n"
        "  --token-logit-scale ID:F  the same for token ID (repeatable; untied output only), e.g.\n"
        "                         to make a random model end sentences (steps) now and then\n"
        "  -h, --help             show this message\n",
        out);
}

// --- options -----------------------------------------------------------------------------------

enum class Arch { llama, qwen2 };

struct Shape {
    int64_t   n_embd;
    int64_t   n_layer;
    int64_t   n_head;
    int64_t   n_head_kv;
    int64_t   n_ff;
    int64_t   n_ctx;
    float     rope_base;
    bool      tied;   // no output.weight: llama.cpp then uses token_embd for the output
    ggml_type type;   // type of the 2-D weight matrices
};

constexpr Shape kShapeTiny    = {64, 2, 4, 2, 128, 2048, 10000.0f, false, GGML_TYPE_F32};
// The shape of SmolLM2-135M (a llama): GQA 9/3, head size 64, tied embeddings.
constexpr Shape kShapeSmolLM2 = {576, 30, 9, 3, 1536, 8192, 100000.0f, true, GGML_TYPE_F16};

struct Options {
    Arch                       arch = Arch::llama;
    std::string                arch_name;
    std::string                vocab;
    std::string                out;
    std::string                shape_name = "tiny";
    Shape                      shape      = kShapeTiny;
    uint64_t                   seed       = 0;
    std::optional<std::string> chat_template;
    float                      eos_logit_scale = 1.0f;
    std::vector<std::pair<int64_t, float>> token_logit_scales;
};

// Whole-string integer in [lo, hi]; anything else is an error naming the flag.
template <typename T>
T parse_number(std::string_view flag, std::string_view text, T lo, T hi) {
    T value{};
    const char * end = text.data() + text.size();
    auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (text.empty() || ec != std::errc() || ptr != end || value < lo || value > hi) {
        throw Error("bad value for " + std::string(flag) + ": '" + std::string(text) + "' (expected an integer in [" +
                    std::to_string(lo) + ", " + std::to_string(hi) + "])");
    }
    return value;
}

// Returns nullopt when --help was given.
std::optional<Options> parse_args(int argc, char ** argv) {
    Options opt;
    bool    have_arch = false;

    // Flag overrides, applied on top of the preset once the preset is known.
    std::optional<int64_t>   n_embd, n_layer, n_head, n_head_kv, n_ff, n_ctx;
    std::optional<bool>      tied;
    std::optional<ggml_type> type;

    for (int i = 1; i < argc; ++i) {
        std::string flag = argv[i];
        std::optional<std::string> inline_value;  // --flag=value form
        if (const auto eq = flag.find('='); flag.starts_with("--") && eq != std::string::npos) {
            inline_value = flag.substr(eq + 1);
            flag.resize(eq);
        }
        auto value = [&]() -> std::string {
            if (inline_value) {
                return *inline_value;
            }
            if (i + 1 >= argc) {
                throw Error("missing value for " + flag);
            }
            return argv[++i];
        };
        auto count = [&](int64_t hi) { return parse_number<int64_t>(flag, value(), 1, hi); };

        if (flag == "-h" || flag == "--help") {
            return std::nullopt;
        } else if (flag == "--arch") {
            opt.arch_name = value();
            if (opt.arch_name == "llama") {
                opt.arch = Arch::llama;
            } else if (opt.arch_name == "qwen2") {
                opt.arch = Arch::qwen2;
            } else {
                throw Error("unknown arch '" + opt.arch_name + "' (expected llama or qwen2)");
            }
            have_arch = true;
        } else if (flag == "--vocab") {
            opt.vocab = value();
        } else if (flag == "--out") {
            opt.out = value();
        } else if (flag == "--shape") {
            opt.shape_name = value();
            if (opt.shape_name == "tiny") {
                opt.shape = kShapeTiny;
            } else if (opt.shape_name == "smollm2-135m") {
                opt.shape = kShapeSmolLM2;
            } else {
                throw Error("unknown shape '" + opt.shape_name + "' (expected tiny or smollm2-135m)");
            }
        } else if (flag == "--n-embd") {
            n_embd = count(1 << 16);
        } else if (flag == "--n-layer") {
            n_layer = count(512);  // LLAMA_MAX_LAYERS
        } else if (flag == "--n-head") {
            n_head = count(1 << 12);
        } else if (flag == "--n-head-kv") {
            n_head_kv = count(1 << 12);
        } else if (flag == "--n-ff") {
            n_ff = count(1 << 20);
        } else if (flag == "--n-ctx") {
            n_ctx = count(1 << 24);
        } else if (flag == "--tied" || flag == "--untied") {
            if (inline_value) {
                throw Error(flag + " takes no value");
            }
            tied = flag == "--tied";
        } else if (flag == "--type") {
            const std::string t = value();
            if (t == "f32") {
                type = GGML_TYPE_F32;
            } else if (t == "f16") {
                type = GGML_TYPE_F16;
            } else {
                throw Error("unknown type '" + t + "' (expected f32 or f16)");
            }
        } else if (flag == "--seed") {
            opt.seed = parse_number<uint64_t>(flag, value(), 0, UINT64_MAX);
        } else if (flag == "--eos-logit-scale") {
            const std::string v = value();
            char * end = nullptr;
            opt.eos_logit_scale = std::strtof(v.c_str(), &end);
            if (v.empty() || *end != '\0' || !(opt.eos_logit_scale > 0.0f)) {
                throw Error("--eos-logit-scale needs a positive number, got '" + v + "'");
            }
        } else if (flag == "--token-logit-scale") {
            const std::string v = value();
            const size_t colon = v.find(':');
            char * end = nullptr;
            const float scale = colon == std::string::npos ? 0.0f : std::strtof(v.c_str() + colon + 1, &end);
            if (colon == std::string::npos || *end != '\0' || !(scale > 0.0f)) {
                throw Error("--token-logit-scale needs ID:F with a positive F, got '" + v + "'");
            }
            opt.token_logit_scales.emplace_back(parse_number<int64_t>(flag, v.substr(0, colon), 0, INT32_MAX), scale);
        } else if (flag == "--chat-template") {
            opt.chat_template = value();
        } else {
            throw Error("unknown argument '" + std::string(argv[i]) + "' (see --help)");
        }
    }

    if (!have_arch) {
        throw Error("missing --arch (see --help)");
    }
    if (opt.vocab.empty()) {
        throw Error("missing --vocab (see --help)");
    }
    if (opt.out.empty()) {
        throw Error("missing --out (see --help)");
    }

    Shape & s = opt.shape;
    s.n_embd    = n_embd.value_or(s.n_embd);
    s.n_layer   = n_layer.value_or(s.n_layer);
    s.n_head    = n_head.value_or(s.n_head);
    // --n-head below the preset's n_head_kv (and no --n-head-kv) means plain multi-head attention.
    s.n_head_kv = n_head_kv.value_or(n_head && !n_head_kv ? std::min(s.n_head_kv, s.n_head) : s.n_head_kv);
    s.n_ff      = n_ff.value_or(s.n_ff);
    s.n_ctx     = n_ctx.value_or(s.n_ctx);
    s.tied      = tied.value_or(s.tied);
    s.type      = type.value_or(s.type);

    // What llama.cpp asserts on (or computes garbage for), caught here with a readable message.
    if (s.n_embd % s.n_head != 0) {
        throw Error("n_embd (" + std::to_string(s.n_embd) + ") must be a multiple of n_head (" +
                    std::to_string(s.n_head) + ")");
    }
    if ((s.n_embd / s.n_head) % 2 != 0) {
        throw Error("head size n_embd/n_head (" + std::to_string(s.n_embd / s.n_head) + ") must be even (RoPE)");
    }
    if (s.n_head_kv > s.n_head || s.n_head % s.n_head_kv != 0) {
        throw Error("n_head_kv (" + std::to_string(s.n_head_kv) + ") must divide n_head (" +
                    std::to_string(s.n_head) + ")");
    }
    return opt;
}

// --- random numbers ----------------------------------------------------------------------------

using ponder::NormalStream;

// --- tensors -----------------------------------------------------------------------------------

struct TensorSpec {
    std::string name;
    int64_t     ne0;       // row length (input width for a weight matrix)
    int64_t     ne1;       // rows; 1 for vectors
    ggml_type   type;
    float       std;       // 0: all ones (norm weights)
};

// The tensors llama.cpp's load_arch_tensors() expects for LLM_ARCH_LLAMA / LLM_ARCH_QWEN2, in
// convert_hf_to_gguf.py's order. ggml's ne0 is the input width: a matrix W is {n_in, n_out}.
std::vector<TensorSpec> model_tensors(const Options & opt, int64_t n_vocab) {
    const Shape &   s         = opt.shape;
    const int64_t   head_dim  = s.n_embd / s.n_head;
    const int64_t   n_embd_kv = head_dim * s.n_head_kv;
    const ggml_type w         = s.type;

    // Scales, found by measuring greedy continuations of random prompts (with plain 1/sqrt(fan_in)
    // scales and tied output, most of them repeat one token within a few steps):
    //  - projections: std 1/sqrt(fan_in), so every block sees and produces unit-scale activations
    //    (RMS norm in front of each block undoes the growth of the residual stream);
    //  - ffn_down: 4x that, so the blocks' outputs swamp the token embedding in the residual
    //    stream. With tied output, a residual stream still close to the current token's embedding
    //    gives that token a logit bonus and the model echoes it forever;
    //  - embedding / output rows of norm ~4: logits of std ~4 after the final RMS norm, about
    //    5 nats of entropy over a 128k vocabulary (top token ~20%): peaked enough for greedy and
    //    top-k/top-p to mean something, flat enough that sampled text varies.
    // With these, greedy continuations rarely repeat and the argmax changes with the context
    // before the last token.
    constexpr float kLogitStd = 4.0f;
    constexpr float kFfnGain  = 4.0f;
    const float     in_std    = 1.0f / std::sqrt(static_cast<float>(s.n_embd));
    const float     ff_std    = kFfnGain / std::sqrt(static_cast<float>(s.n_ff));
    const float     embd_std  = kLogitStd / std::sqrt(static_cast<float>(s.n_embd));
    const float     bias_std  = 0.1f;

    std::vector<TensorSpec> t;
    t.push_back({"token_embd.weight", s.n_embd, n_vocab, w, embd_std});
    for (int64_t il = 0; il < s.n_layer; ++il) {
        const std::string b = "blk." + std::to_string(il) + ".";
        t.push_back({b + "attn_norm.weight", s.n_embd, 1, GGML_TYPE_F32, 0.0f});
        t.push_back({b + "attn_q.weight", s.n_embd, s.n_embd, w, in_std});
        t.push_back({b + "attn_k.weight", s.n_embd, n_embd_kv, w, in_std});
        t.push_back({b + "attn_v.weight", s.n_embd, n_embd_kv, w, in_std});
        if (opt.arch == Arch::qwen2) {
            // Qwen2's distinguishing feature; llama.cpp treats them as optional, but real Qwen2
            // checkpoints have them, so the bias-add path gets exercised.
            t.push_back({b + "attn_q.bias", s.n_embd, 1, GGML_TYPE_F32, bias_std});
            t.push_back({b + "attn_k.bias", n_embd_kv, 1, GGML_TYPE_F32, bias_std});
            t.push_back({b + "attn_v.bias", n_embd_kv, 1, GGML_TYPE_F32, bias_std});
        }
        t.push_back({b + "attn_output.weight", s.n_embd, s.n_embd, w, in_std});
        t.push_back({b + "ffn_norm.weight", s.n_embd, 1, GGML_TYPE_F32, 0.0f});
        t.push_back({b + "ffn_gate.weight", s.n_embd, s.n_ff, w, in_std});
        t.push_back({b + "ffn_up.weight", s.n_embd, s.n_ff, w, in_std});
        t.push_back({b + "ffn_down.weight", s.n_ff, s.n_embd, w, ff_std});
    }
    t.push_back({"output_norm.weight", s.n_embd, 1, GGML_TYPE_F32, 0.0f});
    if (!s.tied) {
        t.push_back({"output.weight", s.n_embd, n_vocab, w, embd_std});
    }
    return t;
}

// Fills a tensor from the stream: F32 directly, F16 through a bounded scratch buffer (the
// token embedding of a 150k vocabulary would otherwise need a large f32 copy).
void fill_tensor(ggml_tensor * t, const TensorSpec & spec, NormalStream & rng) {
    const int64_t n = ggml_nelements(t);
    if (spec.std == 0.0f) {
        std::vector<float> ones(static_cast<size_t>(n), 1.0f);
        std::memcpy(t->data, ones.data(), ones.size() * sizeof(float));  // norms are always F32
        return;
    }
    if (t->type == GGML_TYPE_F32) {
        auto * dst = static_cast<float *>(t->data);
        for (int64_t i = 0; i < n; ++i) {
            dst[i] = static_cast<float>(rng.next() * spec.std);
        }
        return;
    }
    auto *             dst   = static_cast<ggml_fp16_t *>(t->data);
    constexpr int64_t  chunk = 1 << 16;
    std::vector<float> buf(chunk);
    for (int64_t i0 = 0; i0 < n; i0 += chunk) {
        const int64_t m = std::min(chunk, n - i0);
        for (int64_t i = 0; i < m; ++i) {
            buf[static_cast<size_t>(i)] = static_cast<float>(rng.next() * spec.std);
        }
        ggml_fp32_to_fp16_row(buf.data(), dst + i0, m);
    }
}

// --- gguf helpers ------------------------------------------------------------------------------

struct GgufDeleter {
    void operator()(gguf_context * c) const { gguf_free(c); }
};
struct GgmlDeleter {
    void operator()(ggml_context * c) const { ggml_free(c); }
};
using GgufPtr = std::unique_ptr<gguf_context, GgufDeleter>;
using GgmlPtr = std::unique_ptr<ggml_context, GgmlDeleter>;

// ggml/gguf report problems through the ggml logger, in several pieces. We keep the last error
// (to append to our own one-line message) and print nothing else.
std::string g_last_ggml_error;

void ggml_log_to_string(ggml_log_level level, const char * text, void *) {
    static bool in_error = false;
    if (level == GGML_LOG_LEVEL_ERROR) {
        g_last_ggml_error = text;
        in_error          = true;
    } else if (level == GGML_LOG_LEVEL_CONT && in_error) {
        g_last_ggml_error += text;
    } else {
        in_error = false;
    }
}

std::string ggml_error_suffix() {
    std::string s = g_last_ggml_error;
    for (char & c : s) {
        if (c == '\n' || c == '\r') {
            c = ' ';
        }
    }
    while (!s.empty() && s.back() == ' ') {
        s.pop_back();
    }
    return s.empty() ? "" : " (" + s + ")";
}

// The vocabulary file's tokenizer.* keys, nothing else (its general.* keys describe another model).
GgufPtr read_tokenizer(const std::string & path, int64_t & n_vocab) {
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) {
        throw Error("vocab file '" + path + "' not found");
    }
    if (!std::filesystem::is_regular_file(path, ec)) {
        throw Error("vocab file '" + path + "' is not a regular file");
    }
    gguf_init_params params = {/*no_alloc =*/ true, /*ctx =*/ nullptr};
    GgufPtr          vocab(gguf_init_from_file(path.c_str(), params));
    if (!vocab) {
        throw Error("cannot read vocab file '" + path + "' as GGUF" + ggml_error_suffix());
    }

    const int64_t tokens = gguf_find_key(vocab.get(), "tokenizer.ggml.tokens");
    if (tokens < 0 || gguf_get_kv_type(vocab.get(), tokens) != GGUF_TYPE_ARRAY ||
        gguf_get_arr_type(vocab.get(), tokens) != GGUF_TYPE_STRING || gguf_get_arr_n(vocab.get(), tokens) == 0) {
        throw Error("vocab file '" + path + "' has no tokenizer.ggml.tokens string array");
    }
    n_vocab = static_cast<int64_t>(gguf_get_arr_n(vocab.get(), tokens));

    // gguf_set_kv copies every key (with the right types, arrays included); then drop the rest.
    GgufPtr tok(gguf_init_empty());
    gguf_set_kv(tok.get(), vocab.get());
    std::vector<std::string> drop;
    for (int64_t i = 0; i < gguf_get_n_kv(tok.get()); ++i) {
        const std::string key = gguf_get_key(tok.get(), i);
        if (!key.starts_with("tokenizer.")) {
            drop.push_back(key);
        }
    }
    for (const std::string & key : drop) {
        gguf_remove_key(tok.get(), key.c_str());
    }
    return tok;
}

// Scales one token's row of the output matrix: its logit grows by that factor, so in some
// contexts it beats every other token.
void scale_row(ggml_tensor * output, int64_t row, float scale, const char * flag) {
    if (row < 0 || row >= output->ne[1]) {
        throw Error(std::string(flag) + ": token id out of range");
    }
    for (int64_t i = 0; i < output->ne[0]; ++i) {
        if (output->type == GGML_TYPE_F32) {
            static_cast<float *>(output->data)[row * output->ne[0] + i] *= scale;
        } else {
            auto * r = static_cast<ggml_fp16_t *>(output->data) + row * output->ne[0];
            r[i]     = ggml_fp32_to_fp16(ggml_fp16_to_fp32(r[i]) * scale);
        }
    }
}

void scale_eos_row(ggml_tensor * output, const gguf_context * g, float scale) {
    const int64_t key = gguf_find_key(g, "tokenizer.ggml.eos_token_id");
    if (key < 0) {
        throw Error("--eos-logit-scale: the vocabulary has no tokenizer.ggml.eos_token_id");
    }
    scale_row(output, gguf_get_val_u32(g, key), scale, "--eos-logit-scale");
}

std::string human_size(uintmax_t bytes) {
    char buf[32];
    if (bytes >= (1u << 20)) {
        std::snprintf(buf, sizeof buf, "%.1f MiB", static_cast<double>(bytes) / (1 << 20));
    } else {
        std::snprintf(buf, sizeof buf, "%.1f KiB", static_cast<double>(bytes) / (1 << 10));
    }
    return buf;
}

int run(const Options & opt) {
    const Shape & s = opt.shape;
    const std::string arch = opt.arch_name;

    if (s.tied && (opt.eos_logit_scale != 1.0f || !opt.token_logit_scales.empty())) {
        throw Error("--eos-logit-scale and --token-logit-scale need an untied output (--untied)");
    }
    int64_t n_vocab = 0;
    GgufPtr tokenizer = read_tokenizer(opt.vocab, n_vocab);

    const std::vector<TensorSpec> specs = model_tensors(opt, n_vocab);

    // Everything lives in memory until gguf_write_to_file; refuse sizes that cannot be meant.
    size_t mem = 1 << 20;
    for (const TensorSpec & spec : specs) {
        mem += ggml_tensor_overhead() + GGML_PAD(ggml_row_size(spec.type, spec.ne0) * spec.ne1, GGML_MEM_ALIGN);
    }
    constexpr size_t kMaxBytes = size_t(8) << 30;
    if (mem > kMaxBytes) {
        throw Error("model would need " + human_size(mem) + " (limit " + human_size(kMaxBytes) + "); use smaller sizes");
    }

    GgufPtr ctx(gguf_init_empty());
    gguf_context * g = ctx.get();

    gguf_set_val_str(g, "general.architecture", arch.c_str());
    gguf_set_val_str(g, "general.name", ("ponder-test-" + arch + "-" + opt.shape_name).c_str());
    gguf_set_val_str(g, "general.description",
                     ("random weights, seed " + std::to_string(opt.seed) + ", made by ponder-make-test-model").c_str());
    // llama.cpp would guess the file type from the tensors; saying it keeps its log line exact.
    gguf_set_val_u32(g, "general.file_type", s.type == GGML_TYPE_F16 ? 1u /* MOSTLY_F16 */ : 0u /* ALL_F32 */);

    auto key = [&](const char * suffix) { return arch + "." + suffix; };
    gguf_set_val_u32(g, key("vocab_size").c_str(), static_cast<uint32_t>(n_vocab));
    gguf_set_val_u32(g, key("context_length").c_str(), static_cast<uint32_t>(s.n_ctx));
    gguf_set_val_u32(g, key("embedding_length").c_str(), static_cast<uint32_t>(s.n_embd));
    gguf_set_val_u32(g, key("block_count").c_str(), static_cast<uint32_t>(s.n_layer));
    gguf_set_val_u32(g, key("feed_forward_length").c_str(), static_cast<uint32_t>(s.n_ff));
    gguf_set_val_u32(g, key("attention.head_count").c_str(), static_cast<uint32_t>(s.n_head));
    gguf_set_val_u32(g, key("attention.head_count_kv").c_str(), static_cast<uint32_t>(s.n_head_kv));
    gguf_set_val_f32(g, key("attention.layer_norm_rms_epsilon").c_str(), opt.arch == Arch::qwen2 ? 1e-6f : 1e-5f);
    gguf_set_val_f32(g, key("rope.freq_base").c_str(), s.rope_base);
    gguf_set_val_u32(g, key("rope.dimension_count").c_str(), static_cast<uint32_t>(s.n_embd / s.n_head));

    gguf_set_kv(g, tokenizer.get());
    tokenizer.reset();
    if (opt.chat_template) {
        if (*opt.chat_template == "none") {
            gguf_remove_key(g, "tokenizer.chat_template");
        } else {
            gguf_set_val_str(g, "tokenizer.chat_template", opt.chat_template->c_str());
        }
    }

    // Our own buffer: ggml_init aborts when its malloc fails, operator new throws (caught in main).
    constexpr std::align_val_t kAlign{64};
    std::unique_ptr<void, void (*)(void *)> buffer(::operator new(mem, kAlign),
                                                   [](void * p) { ::operator delete(p, kAlign); });
    ggml_init_params params = {/*mem_size =*/ mem, /*mem_buffer =*/ buffer.get(), /*no_alloc =*/ false};
    GgmlPtr data(ggml_init(params));
    NormalStream rng(opt.seed);
    for (const TensorSpec & spec : specs) {
        ggml_tensor * t = spec.ne1 == 1 ? ggml_new_tensor_1d(data.get(), spec.type, spec.ne0)
                                        : ggml_new_tensor_2d(data.get(), spec.type, spec.ne0, spec.ne1);
        ggml_set_name(t, spec.name.c_str());
        fill_tensor(t, spec, rng);
        if (spec.name == "output.weight") {
            if (opt.eos_logit_scale != 1.0f) scale_eos_row(t, g, opt.eos_logit_scale);
            for (const auto & [token, scale] : opt.token_logit_scales) scale_row(t, token, scale, "--token-logit-scale");
        }
        gguf_add_tensor(g, t);  // keeps a pointer to t's data until the write
    }

    // Atomic: readers never see a half-written model under the final name. The random suffix
    // keeps concurrent runs writing the same OUT (parallel tests sharing a fixture) apart.
    const std::string tmp = opt.out + ".tmp." + std::to_string(std::random_device{}() & 0xffffffu);
    if (!gguf_write_to_file(g, tmp.c_str(), /*only_meta =*/ false)) {
        std::error_code ec;
        std::filesystem::remove(tmp, ec);
        throw Error("cannot write '" + tmp + "'" + ggml_error_suffix());
    }
    std::error_code ec;
    std::filesystem::rename(tmp, opt.out, ec);
    if (ec) {
        const std::string why = ec.message();
        std::filesystem::remove(tmp, ec);
        throw Error("cannot rename '" + tmp + "' to '" + opt.out + "': " + why);
    }

    const uintmax_t size = std::filesystem::file_size(opt.out, ec);
    std::printf("wrote %s: %s, n_vocab %lld, n_embd %lld, n_layer %lld, n_head %lld/%lld, n_ff %lld, n_ctx %lld, "
                "%s, %s output, seed %llu, %s\n",
                opt.out.c_str(), arch.c_str(), (long long) n_vocab, (long long) s.n_embd, (long long) s.n_layer,
                (long long) s.n_head, (long long) s.n_head_kv, (long long) s.n_ff, (long long) s.n_ctx,
                s.type == GGML_TYPE_F16 ? "f16" : "f32", s.tied ? "tied" : "untied",
                (unsigned long long) opt.seed, ec ? "?" : human_size(size).c_str());
    return 0;
}

}  // namespace

int main(int argc, char ** argv) {
    ggml_log_set(ggml_log_to_string, nullptr);
    try {
        if (argc <= 1) {
            print_usage(stderr);
            return kExitError;
        }
        const std::optional<Options> opt = parse_args(argc, argv);
        if (!opt) {
            print_usage(stdout);
            return 0;
        }
        return run(*opt);
    } catch (const std::exception & e) {
        std::fprintf(stderr, "ponder-make-test-model: error: %s\n", e.what());
    } catch (...) {
        std::fprintf(stderr, "ponder-make-test-model: error: unknown failure\n");
    }
    return kExitError;
}
