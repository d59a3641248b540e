#include "verify/judge.h"

#include <chrono>
#include <string_view>

#include "verify/placeholders.h"
#include "verify/yes_no.h"

namespace ponder {
namespace {

constexpr std::string_view kProblem = "{problem}";
constexpr std::string_view kSolution = "{solution}";

}  // namespace

LlmJudge::LlmJudge(Engine& engine, LlmJudgeOptions options)
    : engine_(engine), options_(std::move(options)) {
  if (options_.prompt_template.find(kSolution) == std::string::npos) {
    throw EngineError("the judge's prompt template has no {solution}");
  }
  chat_ = options_.use_chat_template && engine_.has_chat_template();
  auto answers = yes_no_tokens(engine_, options_.yes, options_.no, "the judge");
  yes_tokens_ = std::move(answers.yes);
  no_tokens_ = std::move(answers.no);
}

std::string LlmJudge::render(const Candidate& candidate) const {
  std::string solution;
  for (const auto& step : candidate.steps) solution += step;
  std::string text = fill_placeholders(options_.prompt_template, {{kProblem, candidate.problem}, {kSolution, solution}});
  if (!chat_) return text;
  return engine_.apply_chat_template({{"user", text}}, /*add_generation_prompt=*/true);
}

std::vector<double> LlmJudge::score(const std::vector<Candidate>& candidates) {
  const auto t0 = std::chrono::steady_clock::now();

  // Distinct prompts, grouped by problem: the candidates of one problem share the text before
  // their solutions.
  YesNoBatch batch;
  std::vector<size_t> prompt_of(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) {
    auto tokens = engine_.tokenize(render(candidates[i]), /*add_special=*/true, /*parse_special=*/true);
    if (tokens.empty()) throw EngineError("the judge's prompt for a candidate is empty");
    stats_.tokens_if_rescored += static_cast<int64_t>(tokens.size());
    prompt_of[i] = batch.add(std::move(tokens), candidates[i].problem);
  }
  YesNoReadStats read_stats;
  const auto prompt_scores = batch.read(engine_, {yes_tokens_, no_tokens_}, read_stats);
  stats_.tokens_evaluated += read_stats.tokens_evaluated;
  stats_.calls += read_stats.calls;

  std::vector<double> out(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) out[i] = prompt_scores[prompt_of[i]];
  stats_.seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return out;
}

}  // namespace ponder
