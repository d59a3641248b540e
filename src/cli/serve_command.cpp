// ponder serve: an OpenAI-compatible HTTP server whose completions are test-time searches.
#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>

#include "cli/commands.h"
#include "cli/engine_setup.h"
#include "cli/remote_setup.h"
#include "cli/search_flags.h"
#include "cli/story_models.h"
#include "cli/verifier_setup.h"
#include "server/http_server.h"
#include "server/openai_api.h"
#include "server/search_service.h"
#include "server/story_api.h"

namespace ponder::cli {
namespace {

struct ServeOptions {
  std::string model;
  VerifierFlags verifiers;
  std::string strategy;  // empty: chosen from the verifiers
  SearchFlags flags;     // flags.search: the defaults of a request's search
  server::HttpOptions http;
  int32_t parallel = 1;
  int32_t queue = 8;
  int32_t max_n = 16;
  int32_t max_tokens_limit = 0;  // 0: --max-tokens
  int32_t max_prompt_tokens = 1024;
  EngineFlags engine;
  std::string embed_model;  // the story page's coherence and diversity (empty: the generator)
  std::string judge_model;  // the story page's genre metric (empty: none)
  double story_guard_threshold = 0.5;
  RemoteFlags remote;  // --remote: generate on llama-server endpoints instead of --model
  std::string genre_by;  // the story page's genre metric (see StoryModelFlags::genre_by)
};

// The strategy a request gets when it names none: the strongest one the verifiers allow.
std::string default_strategy(const VerifierFlags& v) {
  if (!v.prm.empty()) return "beam";
  if (!v.judge.empty() || !v.confidence.empty()) return "best-of-n";
  return "majority";
}

int run_serve(ServeOptions o) {
  require_model_or_remote(o.model, o.remote);
  {
    StoryModelFlags story_flags;
    story_flags.judge_model = o.judge_model;
    story_flags.genre_by = o.genre_by;
    check_genre_flags(story_flags);  // before anything loads
  }
  if (o.strategy.empty()) o.strategy = default_strategy(o.verifiers);
  const std::optional<Strategy> strategy = parse_strategy(o.strategy);
  if (!strategy) throw EngineError("unknown strategy: " + o.strategy);
  const ExtractOptions extract = resolve_search_flags(o.flags);
  SearchOptions& defaults = o.flags.search;
  defaults.strategy = *strategy;
  check_verifier_flags(o.verifiers, {*strategy});
  if (o.max_tokens_limit == 0) o.max_tokens_limit = defaults.max_tokens;
  if (defaults.max_tokens > o.max_tokens_limit) throw EngineError("--max-tokens is above --max-tokens-limit");
  if (defaults.n > o.max_n) throw EngineError("--n is above --max-n");
  if (branches_needed(defaults) > o.max_n) {
    throw EngineError("the default search needs " + std::to_string(branches_needed(defaults)) +
                      " live branches, more than --max-n");
  }
  if (int64_t{o.max_n} * o.parallel > kMaxBranches) {
    throw EngineError(fmt::format("--parallel {} x --max-n {} is more than the {} branches an engine holds", o.parallel,
                                  o.max_n, kMaxBranches));
  }

  // Signals are taken by a thread of ours (below), so every thread started from here on,
  // llama.cpp's included, has them blocked.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  // A client that hangs up makes a write fail; that must not end the server.
  signal(SIGPIPE, SIG_IGN);

  // As in solve: the unified cache measured faster for searches (BENCHMARKS.md, "Search").
  if (o.engine.kv == "auto") o.engine.kv = "unified";
  // The generator: in-process, or on llama-server endpoints (a remote engine per worker: the
  // servers batch the workers' requests together).
  std::unique_ptr<Engine> vocab;
  std::unique_ptr<SharedModel> local;
  std::vector<std::unique_ptr<RemoteEngine>> remote;
  if (o.model.empty()) {
    for (int32_t w = 0; w < o.parallel; ++w) remote.push_back(open_remote(o.remote.generator, o.remote));
  } else {
    vocab = open_vocab(o.model, o.engine);
    // Each of the --parallel searches may hold --max-n branches of a prompt and max tokens each.
    local = std::make_unique<SharedModel>(open_sized(o.model, o.engine, int64_t{o.max_prompt_tokens} * o.parallel,
                                                     o.max_n * o.parallel, o.max_tokens_limit),
                                          o.parallel);
  }
  const Engine& text = vocab ? *vocab : *remote.front();  // its text calls are safe on any thread
  SearchOptions sizing = defaults;
  sizing.max_tokens = o.max_tokens_limit;
  // The verifiers see a problem that is part of the prompt; another vocabulary may cut it into
  // more tokens, so allow twice the prompt limit.
  const OpenVerifiers verifiers = open_verifiers(o.verifiers, o.engine, 2 * int64_t{o.max_prompt_tokens}, o.max_n,
                                                 gives_step_verifier(o.verifiers), sizing, o.parallel);
  defaults.top_logprobs = sizing.top_logprobs;  // what a confidence verifier needs

  std::vector<server::SearchWorker> workers;
  for (int32_t w = 0; w < o.parallel; ++w) {
    Engine* generator = local ? &local->for_worker(w) : remote[static_cast<size_t>(w)].get();
    workers.push_back({generator, verifiers.view(w)});
  }
  server::SearchService searches(std::move(workers), o.queue);

  server::OpenAiSettings settings;
  settings.model_id =
      o.model.empty() ? endpoints_label(o.remote.generator) : std::filesystem::path(o.model).stem().string();
  settings.defaults = defaults;
  settings.system = o.flags.system;
  settings.extract = extract;
  settings.step_verifier = !verifiers.step.empty();
  settings.outcome_verifier = !verifiers.outcome.empty();
  settings.max_n = o.max_n;
  settings.max_tokens = o.max_tokens_limit;
  settings.max_prompt_tokens = o.max_prompt_tokens;
  settings.max_branches = o.max_n;

  std::atomic<bool> signalled{false};
  // The story page's models are the generator's file (and --embed, --judge), opened on the
  // first story request, for the largest story the limits allow.
  server::StorySettings story;
  story.stopping = &signalled;
  story.guard.threshold = o.story_guard_threshold;
  auto story_models = std::make_shared<std::unique_ptr<OpenStoryModels>>();
  story.open_models = [&o, story_models, limits = story.limits] {
    if (o.model.empty()) {
      throw server::ApiError(400, "the story page runs in-process: start ponder serve with --model");
    }
    StoryModelFlags flags;
    flags.model = o.model;
    flags.embed_model = o.embed_model;
    flags.judge_model = o.judge_model;
    flags.genre_by = o.genre_by;
    flags.engine = o.engine;
    // An opening of the longest allowed length, in any tokenizer: one token per character.
    *story_models = open_story_models(flags, std::string(static_cast<size_t>(limits.max_opening_tokens), 'a'),
                                      "adventure", limits.max_stories * limits.max_beam_width, limits.max_tokens);
    return (*story_models)->view();
  };

  // Every running and queued request holds a thread; a few more answer the rest (health, 429s).
  o.http.threads = o.parallel + o.queue + 1 + story.limits.queue + 8;
  server::HttpServer http(o.http);
  server::add_openai_routes(http, searches, text, settings);
  server::add_story_routes(http, story);
  const int port = http.bind();

  std::thread waiter([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    signalled = true;
    // Searches first: the server's stop waits for the requests in flight, which end with them.
    searches.close();
    http.stop();
  });
  fmt::print("ponder serve: listening on http://{}:{} (model {}, parallel {}, queue {})\n", o.http.host, port,
             settings.model_id, o.parallel, o.queue);
  std::fflush(stdout);
  http.run();
  if (!signalled) pthread_kill(waiter.native_handle(), SIGTERM);  // run() ended by itself: end the waiter
  waiter.join();
  searches.close();
  fmt::print(stderr, "ponder serve: stopped\n");
  return 0;
}

}  // namespace

Command add_serve_command(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* cmd = app.add_subcommand(
      "serve", "OpenAI-compatible HTTP server (/v1/chat/completions, /v1/completions) whose answers are searches");
  CLI::Option* model = cmd->add_option("--model,-m", o->model, "generator GGUF model (or --remote)");
  add_remote_flags(cmd, o->remote, model, nullptr, "--remote-api-key");
  cmd->add_option("--story-embed", o->embed_model,
                  "story page: embedding GGUF for coherence and diversity (default: the generator, mean-pooled)");
  cmd->add_option("--story-judge", o->judge_model, "story page: judge GGUF for the genre metric (default: none)");
  cmd->add_option("--story-genre-by", o->genre_by,
                  "story page: genre metric: judge (needs --story-judge), embedding or none "
                  "(default: judge with --story-judge, else none)")
      ->check(CLI::IsMember({"judge", "embedding", "none"}));
  cmd->add_option("--story-guard-threshold", o->story_guard_threshold,
                  "story page: refuse openings whose injection score is at least this (lower: stricter)")
      ->check(CLI::Range(0.01, 1.0))
      ->capture_default_str();
  add_verifier_flags(cmd, o->verifiers);
  cmd->add_option("--strategy", o->strategy,
                  "default strategy: majority, best-of-n, weighted-best-of-n, beam or dvts (default: beam with "
                  "--prm, best-of-n with --judge or --confidence, else majority)")
      ->check(CLI::IsMember({"majority", "best-of-n", "weighted-best-of-n", "beam", "dvts"}));
  cmd->add_option("--n,-n", o->flags.search.n, "default budget: samples, or beams per round")
      ->check(CLI::Range(1, kMaxBranches))
      ->capture_default_str();
  add_search_flags(cmd, o->flags);
  cmd->add_option("--host", o->http.host, "address to listen on")->capture_default_str();
  cmd->add_option("--port", o->http.port, "port to listen on (0: any free port; the URL is printed)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--api-key", o->http.api_key, "require \"Authorization: Bearer KEY\" (/health excepted)")
      ->envname("PONDER_API_KEY");
  cmd->add_option("--parallel", o->parallel,
                  "searches run at once, sharing one model and KV cache (their steps decode together)")
      ->check(CLI::Range(1, kMaxBranches))
      ->capture_default_str();
  cmd->add_option("--queue", o->queue, "requests that may wait for a search beyond those; more get 429")
      ->check(CLI::Range(0, 4096))
      ->capture_default_str();
  cmd->add_option("--max-body", o->http.max_body, "largest request body in bytes (larger: 413)")
      ->check(CLI::Range(size_t{1}, size_t{1} << 30))
      ->capture_default_str();
  cmd->add_option("--max-n", o->max_n,
                  "most live branches one search may hold: n, and for lookahead twice n (the KV cache is sized "
                  "for it)")
      ->check(CLI::Range(1, kMaxBranches))
      ->capture_default_str();
  cmd->add_option("--max-tokens-limit", o->max_tokens_limit,
                  "largest max_tokens a request may ask for (default: --max-tokens)")
      ->check(CLI::Range(1, 1 << 20));
  cmd->add_option("--max-prompt-tokens", o->max_prompt_tokens, "longest prompt, in tokens")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  add_engine_flags(cmd, o->engine);
  return {cmd, [o] { return run_serve(*o); }};
}

}  // namespace ponder::cli
