// ponder story: continue a story opening several ways with a sentence-per-step search guided by
// the story scores, and print the best distinct stories with their scores and how diverse they
// are (issue 5). The work itself is tasks/story/writer.h's; this opens the models and prints.
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/story_models.h"
#include "tasks/story/writer.h"

namespace ponder::cli {
namespace {

using nlohmann::json;

struct StoryOptions {
  StoryModelFlags models;
  std::string opening;
  std::string genre;
  int32_t stories = 4;
  std::string strategy = "dvts";
  int32_t beam_width = 4;
  int32_t steps = 8;
  int32_t step_tokens = 0;
  float temperature = 0.8f;
  int32_t top_k = 0;
  float top_p = 1.0f;
  int32_t max_tokens = 256;
  std::optional<uint64_t> seed;
  std::string weights = "0.4,0.3,0.3";
  double guard_threshold = 0.5;
  bool json = false;
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

int run_story(const StoryOptions& o) {
  story::StoryRequest request;
  request.opening = o.opening;
  request.genre = o.genre;
  request.stories = o.stories;
  const std::optional<Strategy> strategy = parse_strategy(o.strategy);
  if (!strategy) throw EngineError("unknown strategy: " + o.strategy);
  request.strategy = *strategy;
  request.beam_width = o.beam_width;
  request.steps = o.steps;
  request.step_tokens = o.step_tokens;
  request.temperature = o.temperature;
  request.top_k = o.top_k;
  request.top_p = o.top_p;
  request.max_tokens = o.max_tokens;
  request.seed = o.seed ? *o.seed : std::random_device{}();
  request.weights = parse_weights(o.weights);
  request.guard.threshold = o.guard_threshold;
  // Checked (the guard first) before any model loads.
  story::check_story_request(request);
  check_genre_flags(o.models);

  const std::unique_ptr<OpenStoryModels> models =
      open_story_models(o.models, request.opening, request.genre, request.stories * request.beam_width,
                        request.max_tokens);
  const story::StoryResult r = story::write_stories(models->view(), request);

  if (!o.json) {
    if (r.stories.empty()) fmt::print("(no story finished)\n\n");
    for (size_t i = 0; i < r.stories.size(); ++i) {
      const StoryScores& s = r.stories[i].scores;
      fmt::print("--- story {} ---\n{}{}\n\n", i + 1, o.opening, r.stories[i].continuation);
      fmt::print("coherence {:.3f}  fluency {:.3f}  genre {}  total {:.3f}\n\n", s.coherence, s.fluency,
                 s.genre ? fmt::format("{:.3f}", *s.genre) : std::string("n/a (no --judge or --genre-by)"), s.total);
    }
    fmt::print("diversity: distinct-1 {:.3f}  distinct-2 {:.3f}  mean pairwise distance {:.3f}\n",
               r.diversity.distinct_1, r.diversity.distinct_2, r.diversity.mean_pairwise_distance);
    std::fflush(stdout);
    return 0;
  }
  json out = story::story_json(request, r);
  out["model"] = o.models.model;
  fmt::print("{}\n", out.dump(-1, ' ', false, json::error_handler_t::replace));
  std::fflush(stdout);
  return 0;
}

}  // namespace

Command add_story_command(CLI::App& app) {
  auto o = std::make_shared<StoryOptions>();
  CLI::App* cmd = app.add_subcommand("story", "continue a story opening several ways, guided by story scores");
  cmd->add_option("opening", o->opening, "the story's opening, which the model continues")->required();
  cmd->add_option("--model,-m", o->models.model, "generator GGUF model (also scores fluency)")->required();
  cmd->add_option("--embed", o->models.embed_model,
                  "embedding GGUF model for coherence and diversity (default: the generator, mean-pooled)");
  cmd->add_option("--judge", o->models.judge_model, "judge GGUF model for genre alignment (default: no genre metric)");
  cmd->add_option("--genre", o->genre, "the story's genre, e.g. adventure")->required();
  cmd->add_option("--genre-by", o->models.genre_by,
                  "genre metric: judge (the --judge model's yes/no per sentence), embedding (each sentence's "
                  "similarity to --genre-description) or none (default: judge with --judge, else none)")
      ->check(CLI::IsMember({"judge", "embedding", "none"}));
  cmd->add_option("--genre-description", o->models.genre_description,
                  "for --genre-by embedding: what a story of the genre is; {genre} is replaced")
      ->capture_default_str();
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
  cmd->add_option("--step-tokens", o->step_tokens, "steps of this many tokens instead of sentences (0: sentences)")
      ->check(CLI::NonNegativeNumber)
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
  cmd->add_option("--guard-threshold", o->guard_threshold,
                  "refuse openings whose injection score is at least this (lower: stricter)")
      ->check(CLI::Range(0.01, 1.0))
      ->capture_default_str();
  cmd->add_flag("--json", o->json, "print one JSON object: stories with scores, diversity, usage");
  add_engine_flags(cmd, o->models.engine);
  return {cmd, [o] { return run_story(*o); }};
}

}  // namespace ponder::cli
