// ponder generate: N completions of one prompt, decoded together from one shared prefix.
#include <chrono>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/engine_setup.h"
#include "cli/remote_setup.h"

namespace ponder::cli {
namespace {

struct GenerateOptions {
  std::string model;
  std::string prompt;
  std::string system;
  bool chat = false;
  int n = 1;
  SamplingParams sampling;
  std::optional<uint64_t> seed;
  int max_tokens = 128;
  std::vector<std::string> stop;
  bool ignore_eos = false;
  bool json = false;
  EngineFlags engine;
  RemoteFlags remote;
};

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

int run_generate(const GenerateOptions& o) {
  const auto t_start = Clock::now();
  // The prompt first, with only the vocabulary loaded: its exact length sizes the cache.
  require_model_or_remote(o.model, o.remote);
  // Remote: one engine does both (its text calls go to the server).
  std::unique_ptr<Engine> vocab = o.model.empty() ? std::unique_ptr<Engine>(open_remote(o.remote.generator, o.remote))
                                                  : open_vocab(o.model, o.engine);
  std::string text = o.prompt;
  if (o.chat) {
    std::vector<ChatMessage> messages;
    if (!o.system.empty()) messages.push_back({"system", o.system});
    messages.push_back({"user", o.prompt});
    text = vocab->apply_chat_template(messages, /*add_generation_prompt=*/true);
  }
  const std::vector<Token> prompt = vocab->tokenize(text, /*add_special=*/true, /*parse_special=*/true);
  if (prompt.empty()) throw EngineError("the prompt is empty after tokenization");

  std::optional<KvLayout> layout;  // in-process only
  std::unique_ptr<Engine> engine;
  if (o.model.empty()) {
    engine = std::move(vocab);
  } else {
    vocab.reset();
    KvLayout chosen;
    engine = open_sized(o.model, o.engine, static_cast<int64_t>(prompt.size()), o.n, o.max_tokens, &chosen);
    layout = chosen;
  }
  const double load_ms = ms_since(t_start);

  const auto t_gen = Clock::now();
  const uint64_t seed = o.seed ? *o.seed : std::random_device{}();
  std::vector<GenerateRequest> requests;
  const BranchId root = engine->new_branch(prompt);
  for (int i = 0; i < o.n; ++i) {
    GenerateRequest r;
    r.branch = i == 0 ? root : engine->fork(root);
    r.sampling = o.sampling;
    r.sampling.seed = seed + i;
    r.stop.max_tokens = o.max_tokens;
    r.stop.stop = o.stop;
    r.stop.stop_at_eos = !o.ignore_eos;
    requests.push_back(std::move(r));
  }
  std::vector<Completion> completions = engine->generate(requests);
  const double gen_ms = ms_since(t_gen);
  const EngineStats stats = engine->stats();

  int64_t completion_tokens = 0;
  for (const auto& c : completions) completion_tokens += static_cast<int64_t>(c.tokens.size());

  if (!o.json) {
    for (size_t i = 0; i < completions.size(); ++i) {
      if (completions.size() > 1) {
        fmt::print("--- completion {} ({} tokens, {}) ---\n", i, completions[i].tokens.size(),
                   to_string(completions[i].finish_reason));
      }
      fmt::print("{}\n", completions[i].text);
    }
    std::fflush(stdout);
    return 0;
  }

  using nlohmann::json;
  json out;
  out["model"] = o.model.empty() ? endpoints_label(o.remote.generator) : o.model;
  out["seed"] = seed;
  out["kv_layout"] = layout ? json(to_string(*layout)) : json(nullptr);
  out["completions"] = json::array();
  const bool detailed = o.sampling.top_logprobs > 0 || o.sampling.entropy;
  for (size_t i = 0; i < completions.size(); ++i) {
    const auto& c = completions[i];
    json jc = {{"index", i},
               {"text", c.text},
               {"tokens", c.tokens},
               {"logprob", c.logprob},
               {"finish_reason", to_string(c.finish_reason)}};
    if (detailed) {
      json steps = json::array();
      for (const auto& s : c.steps) {
        json js = {{"token", s.token}, {"piece", engine->token_to_piece(s.token)}, {"logprob", s.logprob}};
        if (o.sampling.entropy) js["entropy"] = s.entropy;
        if (o.sampling.top_logprobs > 0) {
          json top = json::array();
          for (const auto& t : s.top) top.push_back({{"token", t.token}, {"logprob", t.logprob}});
          js["top_logprobs"] = top;
        }
        steps.push_back(std::move(js));
      }
      jc["steps"] = std::move(steps);
    }
    out["completions"].push_back(std::move(jc));
  }
  out["usage"] = {{"prompt_tokens", prompt.size()}, {"completion_tokens", completion_tokens}};
  out["timing"] = {{"load_ms", load_ms},
                   {"generate_ms", gen_ms},
                   {"decode_ms", stats.decode_seconds * 1000.0},
                   {"sample_ms", stats.sample_seconds * 1000.0},
                   {"decode_calls", stats.decode_calls},
                   {"tokens_per_second", gen_ms > 0 ? completion_tokens / (gen_ms / 1000.0) : 0.0}};
  // Model text may hold invalid UTF-8 (a multi-byte character cut by max tokens): replace it.
  fmt::print("{}\n", out.dump(-1, ' ', false, json::error_handler_t::replace));
  std::fflush(stdout);
  return 0;
}

}  // namespace

Command add_generate_command(CLI::App& app) {
  auto o = std::make_shared<GenerateOptions>();
  CLI::App* cmd = app.add_subcommand("generate", "N completions of one prompt, decoded together");
  CLI::Option* model = cmd->add_option("--model,-m", o->model, "GGUF model file (or --remote)");
  add_remote_flags(cmd, o->remote, model);
  cmd->add_option("--prompt,-p", o->prompt, "prompt text")->required();
  cmd->add_flag("--chat", o->chat, "wrap the prompt as a user message in the model's chat template");
  cmd->add_option("--system", o->system, "system message (with --chat)");
  cmd->add_option("-n", o->n, "number of completions (1-256)")->check(CLI::Range(1, kMaxBranches));
  cmd->add_option("--temperature,-t", o->sampling.temperature, "sampling temperature; 0 = greedy")
      ->check(CLI::Range(0.0f, 100.0f))
      ->capture_default_str();
  cmd->add_option("--top-p", o->sampling.top_p, "nucleus sampling threshold (0,1]")
      ->check(CLI::Range(0.0f, 1.0f))
      ->capture_default_str();
  cmd->add_option("--top-k", o->sampling.top_k, "keep the k most likely tokens; 0 = off")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--min-p", o->sampling.min_p, "drop tokens below min-p times the top probability")
      ->check(CLI::Range(0.0f, 1.0f));
  cmd->add_option("--seed,-s", o->seed, "random seed; completion i uses seed + i (default: random)");
  cmd->add_option("--max-tokens", o->max_tokens, "new tokens per completion")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--stop", o->stop, "stop string (repeatable); not included in the text");
  cmd->add_flag("--ignore-eos", o->ignore_eos, "keep generating past end-of-generation tokens");
  cmd->add_option("--top-logprobs", o->sampling.top_logprobs, "report the k most likely tokens per step (--json)")
      ->check(CLI::Range(0, 100));
  cmd->add_flag("--entropy", o->sampling.entropy, "report each step's entropy (--json)");
  cmd->add_flag("--json", o->json, "print one JSON object");
  add_engine_flags(cmd, o->engine);
  return {cmd, [o] {
    if (o->sampling.top_p <= 0.0f) throw EngineError("--top-p must be greater than 0");
    return run_generate(*o);
  }};
}

}  // namespace ponder::cli
