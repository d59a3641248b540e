#include "tasks/story/writer.h"

#include <algorithm>
#include <unordered_set>

#include "engine/llama_engine.h"
#include "tasks/story/segment.h"
#include "verify/story/guard.h"
#include "verify/story/story_verifier.h"

namespace ponder::story {

using nlohmann::json;

namespace {

bool blank(const std::string& s) { return s.find_first_not_of(" \t\r\n") == std::string::npos; }

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

}  // namespace

void check_story_request(const StoryRequest& r) {
  // The guard comes first: a refused prompt is refused whatever else is wrong.
  if (!(r.guard.threshold > 0.0 && r.guard.threshold <= 1.0)) {
    throw EngineError("the guard threshold must be in (0, 1]");
  }
  const GuardVerdict verdict = check_story_prompt(r.opening, r.guard);
  if (!verdict.allowed) throw StoryRefused("the story prompt was refused: " + verdict.reason);
  if (blank(r.genre)) throw EngineError("the genre is empty");
  if (r.strategy != Strategy::kDvts && r.strategy != Strategy::kBeam && r.strategy != Strategy::kBestOfN) {
    throw EngineError(std::string("a story search is dvts, beam or best-of-n, not ") + to_string(r.strategy));
  }
  if (r.stories < 1 || r.stories > 64) throw EngineError("stories must be between 1 and 64");
  if (r.beam_width < 1 || r.beam_width > 64) throw EngineError("beam width must be between 1 and 64");
  // The fluency scorer holds a branch per live state and per new candidate: twice the search's.
  if (2 * r.stories * r.beam_width + 2 > kMaxBranches) {
    throw EngineError("stories x beam width must be at most " + std::to_string((kMaxBranches - 2) / 2));
  }
  if (r.steps < 1 || r.steps > 1000) throw EngineError("steps must be between 1 and 1000");
  if (r.step_tokens < 0 || r.step_tokens > r.max_tokens) throw EngineError("step tokens must be between 0 and max tokens");
  if (!(r.temperature >= 0.0f && r.temperature <= 10.0f)) throw EngineError("temperature must be between 0 and 10");
  if (r.top_k < 0) throw EngineError("top_k must not be negative");
  if (!(r.top_p >= 0.0f && r.top_p <= 1.0f)) throw EngineError("top_p must be between 0 and 1");
  if (r.max_tokens < 1) throw EngineError("max tokens must be at least 1");
  const StoryWeights& w = r.weights;
  if (!(w.coherence >= 0 && w.fluency >= 0 && w.genre >= 0)) throw EngineError("weights must not be negative");
}

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

StoryResult write_stories(const StoryModels& models, const StoryRequest& request, const std::atomic<bool>* cancel,
                          std::function<void(const SearchProgress&)> on_progress) {
  check_story_request(request);
  SearchOptions search;
  search.strategy = request.strategy;
  search.n = request.stories * request.beam_width;
  search.beam_width = request.beam_width;
  search.max_rounds = request.steps;
  search.max_tokens = request.max_tokens;
  search.temperature = request.temperature;
  search.top_k = request.top_k;
  search.top_p = request.top_p;
  search.seed = request.seed;
  search.cancel = cancel;
  search.on_progress = std::move(on_progress);
  search.step_delimiter.clear();
  if (request.step_tokens > 0) {
    search.step_tokens = request.step_tokens;
  } else {
    search.step_end = [](std::string_view text) -> std::optional<size_t> {
      const size_t end = first_sentence_end(text);
      if (end == std::string_view::npos) return std::nullopt;
      return end;
    };
  }

  const FluencyStats fluency_before = models.fluency->stats();
  const int64_t judge_before = models.judge ? models.judge->model_tokens() : 0;
  // Every round scores whole stories: their earlier sentences are embedded once per request.
  const EmbedFunction embed = memoized(models.embed);
  std::optional<EmbeddingGenreScorer> by_embedding;
  GenreMetric* genre = models.judge;
  if (!genre && models.genre_by_embedding) genre = &by_embedding.emplace(embed, models.genre_description);
  StoryScorer scorer(*models.fluency, embed, genre, request.weights);
  StoryStepVerifier verifier(scorer, request.genre);
  const std::vector<Token> prompt = story_prompt(*models.generator, request.opening, request.genre);
  const SearchResult r =
      run_search(*models.generator, {&verifier, nullptr}, {request.opening, prompt}, search, nullptr);

  StoryResult out;
  const std::vector<const Solution*> chosen = best_distinct(r, request.stories);
  std::vector<std::string> continuations;
  for (const Solution* s : chosen) continuations.push_back(s->text);
  const std::vector<StoryScores> scores = verifier.score_stories(request.opening, continuations);
  for (size_t i = 0; i < chosen.size(); ++i) {
    out.stories.push_back({continuations[i], scores[i], chosen[i]->tokens, chosen[i]->finish});
  }
  // Diversity of what the stories add: the shared opening would only make them look alike.
  out.diversity = diversity(continuations, embed);
  out.usage = r.usage;
  const FluencyStats fluency_after = models.fluency->stats();
  out.fluency_tokens = (fluency_after.context_tokens + fluency_after.evaluated_tokens) -
                       (fluency_before.context_tokens + fluency_before.evaluated_tokens);
  out.fluency_texts = fluency_after.texts - fluency_before.texts;
  out.fluency_passes = fluency_after.evaluate_calls - fluency_before.evaluate_calls;
  out.scorer_calls = verifier.stats().calls;
  if (models.judge) out.genre_tokens = models.judge->model_tokens() - judge_before;
  out.genre_metric = models.judge ? "judge" : models.genre_by_embedding ? "embedding" : "none";
  return out;
}

json story_json(const StoryRequest& request, const StoryResult& result) {
  json stories = json::array();
  for (const WrittenStory& s : result.stories) {
    stories.push_back({{"text", request.opening + s.continuation},
                       {"continuation", s.continuation},
                       {"scores", scores_json(s.scores)},
                       {"tokens", s.tokens},
                       {"finish_reason", to_string(s.finish)}});
  }
  json usage = {{"prompt_tokens", result.usage.prompt_tokens},
                {"completion_tokens", result.usage.completion_tokens},
                {"fluency_tokens", result.fluency_tokens},
                {"fluency_texts", result.fluency_texts},
                {"fluency_passes", result.fluency_passes},
                {"scorer_calls", result.scorer_calls},
                {"rounds", result.usage.rounds},
                {"seconds", result.usage.seconds},
                {"scorer_seconds", result.usage.verifier_seconds}};
  usage["genre_tokens"] = result.genre_tokens ? json(*result.genre_tokens) : json(nullptr);
  json out;
  out["genre"] = request.genre;
  out["genre_metric"] = result.genre_metric;
  out["strategy"] = to_string(request.strategy);
  out["step"] = request.step_tokens > 0 ? json(request.step_tokens) : json("sentence");
  out["seed"] = request.seed;
  out["weights"] = {{"coherence", request.weights.coherence},
                    {"fluency", request.weights.fluency},
                    {"genre", request.weights.genre}};
  out["stories"] = std::move(stories);
  out["diversity"] = {{"distinct_1", result.diversity.distinct_1},
                      {"distinct_2", result.diversity.distinct_2},
                      {"mean_pairwise_distance", result.diversity.mean_pairwise_distance}};
  out["usage"] = std::move(usage);
  return out;
}

}  // namespace ponder::story
