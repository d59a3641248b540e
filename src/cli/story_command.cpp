// ponder story: continue a story opening several ways with a sentence-per-step search guided by
// the story scores (coherence, fluency, genre alignment), and print the best distinct stories
// with their scores and how diverse they are (issue 5).
//
// Budget: K stories (--stories) and beam width M give N = K x M live generator branches. DVTS
// (the default) runs K independent subtrees of M candidates, one per story wanted, so the
// stories grow apart; beam search keeps K beams and expands each M ways; best-of-n samples
// N whole continuations and scores each once. The K best distinct finished stories are shown,
// the best of each DVTS subtree first.
//
// Models: the generator (--model) writes; a second engine of the same model scores fluency (the
// search holds its branches on the generator); embeddings for coherence and diversity come from
// --embed, else from the generator's own file (mean-pooled); genre alignment needs a judge
// (--judge), without which the genre metric is left out and the other weights rescaled.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <unordered_set>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/engine_setup.h"
#include "engine/llama_embedder.h"
#include "search/search.h"
#include "tasks/story/segment.h"
#include "verify/story/diversity.h"
#include "verify/story/fluency.h"
#include "verify/story/genre.h"
#include "verify/story/guard.h"
#include "verify/story/story_score.h"
#include "verify/story/story_verifier.h"

namespace ponder::cli {
namespace {

using nlohmann::json;

struct StoryOptions {
  std::string model;
  std::string embed_model;  // empty: the generator's file
  std::string judge_model;  // empty: no genre metric
  std::string genre;
  std::string opening;
  int32_t stories = 4;
  std::string strategy = "dvts";
  int32_t beam_width = 4;
  int32_t steps = 8;
  float temperature = 0.8f;
  int32_t top_k = 0;
  float top_p = 1.0f;
  int32_t max_tokens = 256;
  std::optional<uint64_t> seed;
  std::string weights = "0.4,0.3,0.3";
  bool json = false;
  EngineFlags engine;
};

// "c,f,g": three non-negative numbers.
StoryWeights parse_weights(const std::string& text) {
  std::vector<double> values;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    try {
      size_t used = 0;
      values.push_back(std::stod(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw EngineError("--weights: not a number: '" + item + "'");
    }
  }
  if (values.size() != 3) throw EngineError("--weights takes three numbers: coherence,fluency,genre");
  for (double v : values) {
    if (v < 0) throw EngineError("--weights must not be negative");
  }
  return {values[0], values[1], values[2]};
}

// The generator's prompt: the opening as raw text (BOS first), or, for a chat model, a user
// turn asking for a continuation with the assistant's turn opened.
std::vector<Token> story_prompt(const Engine& vocab, const std::string& opening, const std::string& genre) {
  if (!vocab.has_chat_template()) return vocab.tokenize(opening, /*add_special=*/true, /*parse_special=*/false);
  const std::string text = vocab.apply_chat_template(
      {{"user", "Continue this " + genre + " story:\n\n" + opening}}, /*add_generation_prompt=*/true);
  // The template writes its own BOS when the model wants one; don't add a second.
  const std::vector<Token> with_bos = vocab.tokenize(text, /*add_special=*/true, /*parse_special=*/true);
  const std::vector<Token> without = vocab.tokenize(text, /*add_special=*/false, /*parse_special=*/true);
  if (with_bos.size() > without.size() && !without.empty() && with_bos[0] == without[0]) return without;
  return with_bos;
}

// The `count` stories to show: the best finished solutions with distinct texts, best first
// (ties: the earlier one). The best of each DVTS subtree comes before any second of a subtree,
// so that the independent subtrees each give a story (beam search and best-of-n have one).
std::vector<const Solution*> best_distinct(const SearchResult& r, int32_t count) {
  std::vector<const Solution*> order;
  for (const Solution& s : r.solutions) order.push_back(&s);
  std::stable_sort(order.begin(), order.end(), [](const Solution* a, const Solution* b) { return a->score > b->score; });
  std::vector<const Solution*> out;
  std::unordered_set<std::string> texts;
  std::unordered_set<int32_t> subtrees;
  for (bool one_per_subtree : {true, false}) {
    for (const Solution* s : order) {
      if (static_cast<int32_t>(out.size()) == count) break;
      if (texts.contains(s->text)) continue;
      if (one_per_subtree && !subtrees.insert(r.tree.node(s->node).subtree).second) continue;
      texts.insert(s->text);
      out.push_back(s);
    }
  }
  std::stable_sort(out.begin(), out.end(), [](const Solution* a, const Solution* b) { return a->score > b->score; });
  return out;
}

json scores_json(const StoryScores& s) {
  return {{"coherence", s.coherence},
          {"fluency", s.fluency},
          {"genre", s.genre ? json(*s.genre) : json(nullptr)},
          {"total", s.total}};
}

int run_story(StoryOptions o) {
  // The guard comes first: a refused prompt loads nothing.
  const story::GuardVerdict verdict = story::check_story_prompt(o.opening);
  if (!verdict.allowed) throw EngineError("the story prompt was refused: " + verdict.reason);
  if (o.genre.find_first_not_of(" \t\r\n") == std::string::npos) throw EngineError("--genre is empty");
  const std::optional<Strategy> strategy = parse_strategy(o.strategy);
  if (!strategy) throw EngineError("unknown strategy: " + o.strategy);
  const StoryWeights weights = parse_weights(o.weights);

  SearchOptions search;
  search.strategy = *strategy;
  search.n = o.stories * o.beam_width;
  search.beam_width = o.beam_width;
  search.max_rounds = o.steps;
  search.max_tokens = o.max_tokens;
  search.temperature = o.temperature;
  search.top_k = o.top_k;
  search.top_p = o.top_p;
  search.seed = o.seed ? *o.seed : std::random_device{}();
  search.step_delimiter.clear();
  search.step_end = [](std::string_view text) -> std::optional<size_t> {
    const size_t end = story::first_sentence_end(text);
    if (end == std::string_view::npos) return std::nullopt;
    return end;
  };
  const int32_t branches = branches_needed(search);
  // Unified KV caches unless --kv says otherwise: the search forks and prunes every round, and
  // the scorers fork one context branch many ways; both share prefix cells in a unified cache.
  if (o.engine.kv == "auto") o.engine.kv = "unified";

  auto vocab = open_vocab(o.model, o.engine);
  const std::vector<Token> prompt = story_prompt(*vocab, o.opening, o.genre);
  const int64_t opening_tokens = static_cast<int64_t>(vocab->tokenize(o.opening, true, false).size());
  vocab.reset();
  auto generator = open_sized(o.model, o.engine, static_cast<int64_t>(prompt.size()), branches, o.max_tokens);

  // Scorers. Fluency reads every new prefix of a round at once: a context branch and a fork per
  // text (re-tokenized text may run a little longer than the generator's tokens).
  auto fluency_engine = open_sized(o.model, o.engine, opening_tokens, branches + 1, o.max_tokens + 32);
  FluencyScorer fluency(*fluency_engine);

  LlamaEmbedderOptions eo;
  eo.model_path = o.embed_model.empty() ? o.model : o.embed_model;
  eo.n_threads = o.engine.threads;
  eo.verbose = o.engine.verbose;
  eo.max_tokens_per_text = static_cast<int32_t>(std::max<int64_t>(512, opening_tokens + o.max_tokens + 64));
  eo.n_batch = std::max(eo.n_batch, eo.max_tokens_per_text);
  LlamaEmbedder embedder(eo);
  const EmbedFunction embed = [&embedder](const std::vector<std::string>& texts) { return embedder.embed(texts); };

  // The judge reads one sentence per branch (groups of them when there are more sentences).
  std::unique_ptr<LlamaEngine> judge_engine;
  std::unique_ptr<GenreScorer> genre;
  if (!o.judge_model.empty()) {
    judge_engine = open_sized(o.judge_model, o.engine, 128, branches + 1, opening_tokens + o.max_tokens + 64);
    genre = std::make_unique<GenreScorer>(*judge_engine);
  }

  StoryScorer scorer(fluency, embed, genre.get(), weights);
  StoryStepVerifier verifier(scorer, o.genre);
  const SearchResult r = run_search(*generator, {&verifier, nullptr}, {o.opening, prompt}, search, nullptr);

  const std::vector<const Solution*> chosen = best_distinct(r, o.stories);
  std::vector<std::string> continuations;
  for (const Solution* s : chosen) continuations.push_back(s->text);
  const std::vector<StoryScores> scores = verifier.score_stories(o.opening, continuations);
  // Diversity of what the stories add: the shared opening would only make them look alike.
  const DiversityStats diversity_stats = diversity(continuations, embed);

  if (!o.json) {
    if (chosen.empty()) fmt::print("(no story finished)\n\n");
    for (size_t i = 0; i < chosen.size(); ++i) {
      const StoryScores& s = scores[i];
      fmt::print("--- story {} ---\n{}{}\n\n", i + 1, o.opening, continuations[i]);
      fmt::print("coherence {:.3f}  fluency {:.3f}  genre {}  total {:.3f}\n\n", s.coherence, s.fluency,
                 s.genre ? fmt::format("{:.3f}", *s.genre) : std::string("n/a (no --judge)"), s.total);
    }
    fmt::print("diversity: distinct-1 {:.3f}  distinct-2 {:.3f}  mean pairwise distance {:.3f}\n",
               diversity_stats.distinct_1, diversity_stats.distinct_2, diversity_stats.mean_pairwise_distance);
    std::fflush(stdout);
    return 0;
  }

  json stories = json::array();
  for (size_t i = 0; i < chosen.size(); ++i) {
    stories.push_back({{"text", o.opening + continuations[i]},
                       {"continuation", continuations[i]},
                       {"scores", scores_json(scores[i])},
                       {"tokens", chosen[i]->tokens},
                       {"finish_reason", to_string(chosen[i]->finish)}});
  }
  const FluencyStats fs = fluency.stats();
  json usage = {{"prompt_tokens", r.usage.prompt_tokens},
                {"completion_tokens", r.usage.completion_tokens},
                {"fluency_tokens", fs.context_tokens + fs.evaluated_tokens},
                {"scorer_calls", verifier.stats().calls},
                {"rounds", r.usage.rounds},
                {"seconds", r.usage.seconds},
                {"scorer_seconds", r.usage.verifier_seconds}};
  usage["genre_tokens"] = genre ? json(genre->stats().tokens_evaluated) : json(nullptr);
  json out;
  out["model"] = o.model;
  out["genre"] = o.genre;
  out["genre_metric"] = genre != nullptr;
  out["strategy"] = to_string(*strategy);
  out["seed"] = search.seed;
  out["weights"] = {{"coherence", weights.coherence}, {"fluency", weights.fluency}, {"genre", weights.genre}};
  out["stories"] = std::move(stories);
  out["diversity"] = {{"distinct_1", diversity_stats.distinct_1},
                      {"distinct_2", diversity_stats.distinct_2},
                      {"mean_pairwise_distance", diversity_stats.mean_pairwise_distance}};
  out["usage"] = std::move(usage);
  fmt::print("{}\n", out.dump(-1, ' ', false, json::error_handler_t::replace));
  std::fflush(stdout);
  return 0;
}

}  // namespace

Command add_story_command(CLI::App& app) {
  auto o = std::make_shared<StoryOptions>();
  CLI::App* cmd = app.add_subcommand("story", "continue a story opening several ways, guided by story scores");
  cmd->add_option("opening", o->opening, "the story's opening, which the model continues")->required();
  cmd->add_option("--model,-m", o->model, "generator GGUF model (also scores fluency)")->required();
  cmd->add_option("--embed", o->embed_model,
                  "embedding GGUF model for coherence and diversity (default: the generator, mean-pooled)");
  cmd->add_option("--judge", o->judge_model, "judge GGUF model for genre alignment (default: no genre metric)");
  cmd->add_option("--genre", o->genre, "the story's genre, e.g. adventure")->required();
  cmd->add_option("--stories", o->stories, "K: stories to return")->check(CLI::Range(1, 64))->capture_default_str();
  cmd->add_option("--strategy", o->strategy,
                  "dvts (K independent subtrees: diverse), beam (K beams) or best-of-n (K x M samples)")
      ->check(CLI::IsMember({"dvts", "beam", "best-of-n"}))
      ->capture_default_str();
  cmd->add_option("--beam-width", o->beam_width, "M: candidates per beam or subtree each round")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_option("--steps", o->steps, "most sentence rounds; the last one writes to the end")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  cmd->add_option("--temperature,-t", o->temperature, "sampling temperature")
      ->check(CLI::Range(0.0f, 10.0f))
      ->capture_default_str();
  cmd->add_option("--top-k", o->top_k, "sample among the k most likely tokens (0: all)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--top-p", o->top_p, "nucleus sampling mass")->check(CLI::Range(0.0f, 1.0f))->capture_default_str();
  cmd->add_option("--max-tokens", o->max_tokens, "most tokens per continuation")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
  cmd->add_option("--seed,-s", o->seed, "random seed (default: random; printed with --json)");
  cmd->add_option("--weights", o->weights, "weights of coherence,fluency,genre in the total")->capture_default_str();
  cmd->add_flag("--json", o->json, "print one JSON object: stories with scores, diversity, usage");
  add_engine_flags(cmd, o->engine);
  return {cmd, [o] {
            if (o->stories * o->beam_width > kMaxBranches) {
              throw EngineError("--stories x --beam-width must be at most " + std::to_string(kMaxBranches));
            }
            return run_story(*o);
          }};
}

}  // namespace ponder::cli
