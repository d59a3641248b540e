// The LLM judge on real GGUF models: stories260K (no chat template: raw text) and the
// random-weight qwen2 fixture (ChatML template). Each score is checked against P(yes)/(P(yes) +
// P(no)) read from a from-scratch evaluation of the whole prompt on a separate engine.
#include "verify/judge.h"

#include <algorithm>
#include <cctype>
#include <set>

#include <gtest/gtest.h>

#include "engine/llama_engine.h"
#include "test_paths.h"

namespace ponder {
namespace {

using ponder::testing::stories_model;
using ponder::testing::test_model;

std::unique_ptr<Engine> open(const std::string& path, int branches = 16) {
  LlamaEngineOptions o;
  o.model_path = path;
  o.max_branches = branches;
  o.n_ctx = 4096;
  o.n_threads = 1;
  o.reproducible = true;  // forked and from-scratch evaluations then agree to float rounding
  return open_llama_engine(o);
}

Candidate candidate(const std::string& problem, std::vector<std::string> steps) {
  return {problem, std::move(steps), {}, {}};
}

// The tokens of "w", "W", " w", " W" that are single tokens.
std::vector<Token> single_tokens(const Engine& e, const std::string& w) {
  std::string cap = w;
  cap[0] = static_cast<char>(std::toupper(cap[0]));
  std::vector<Token> out;
  for (const std::string& s : {w, cap, " " + w, " " + cap}) {
    const auto t = e.tokenize(s, false, false);
    if (t.size() == 1 && std::find(out.begin(), out.end(), t[0]) == out.end()) out.push_back(t[0]);
  }
  return out;
}

struct Reference {
  double score;
  std::vector<Token> tokens;
};

// From scratch on a fresh engine: the whole prompt on one branch, read after its last token.
Reference reference(const std::string& model, const std::string& prompt, const std::string& yes,
                    const std::string& no) {
  auto e = open(model, 1);
  const auto yes_tokens = single_tokens(*e, yes);
  const auto no_tokens = single_tokens(*e, no);
  std::vector<Token> answers = yes_tokens;
  answers.insert(answers.end(), no_tokens.begin(), no_tokens.end());
  const auto tokens = e->tokenize(prompt, true, true);
  const auto probs = e->evaluate({{e->new_branch({}), tokens, {static_cast<int32_t>(tokens.size() - 1)}, answers}});
  double p_yes = 0, p_no = 0;
  for (size_t j = 0; j < answers.size(); ++j) (j < yes_tokens.size() ? p_yes : p_no) += probs[0].probs[0][j];
  return {p_yes / (p_yes + p_no), tokens};
}

size_t common_prefix(const std::vector<std::vector<Token>>& seqs) {
  size_t n = seqs[0].size() - 1;
  for (const auto& s : seqs) {
    n = std::min(n, s.size() - 1);
    n = std::mismatch(seqs[0].begin(), seqs[0].begin() + n, s.begin()).first - seqs[0].begin();
  }
  return n;
}

LlmJudgeOptions stories_options() {
  LlmJudgeOptions o;
  // stories260K's 512-token vocabulary has no "yes"; "▁big" and "▁little" are tokens.
  o.prompt_template = "Once upon a time, {problem} One day {solution} The end. Was it big or little? It was";
  o.yes = "big";
  o.no = "little";
  return o;
}

std::string stories_prompt(const std::string& problem, const std::string& solution) {
  return "Once upon a time, " + problem + " One day " + solution + " The end. Was it big or little? It was";
}

TEST(LlmJudge, RawTextScoresMatchFromScratchAndShareThePrefix) {
  PONDER_REQUIRE_FILE(stories_model());
  auto engine = open(stories_model());
  LlmJudge judge(*engine, stories_options());
  EXPECT_EQ(judge.yes_tokens(), single_tokens(*engine, "big"));
  EXPECT_EQ(judge.no_tokens(), single_tokens(*engine, "little"));

  const std::string problem = "there was a little girl named Lily who had a big red ball.";
  const std::vector<std::string> solutions = {
      "she saw a big dog.", "Lily went to the park with her mom and played.", "the ball was lost.",
      "she saw a big dog."};  // a duplicate of the first
  std::vector<Candidate> cands;
  for (const auto& s : solutions) {
    // Steps are concatenated: split one solution in two to check that.
    if (s.size() > 20) {
      cands.push_back(candidate(problem, {s.substr(0, 10), s.substr(10)}));
    } else {
      cands.push_back(candidate(problem, {s}));
    }
  }
  EXPECT_EQ(judge.render(cands[1]), stories_prompt(problem, solutions[1]));

  const int64_t before = engine->stats().prompt_tokens;
  const int32_t slots = engine->free_slots();
  const auto scores = judge.score(cands);
  ASSERT_EQ(scores.size(), cands.size());

  std::vector<std::vector<Token>> distinct;
  int64_t rescored = 0;
  for (size_t i = 0; i < cands.size(); ++i) {
    const auto ref = reference(stories_model(), stories_prompt(problem, solutions[i]), "big", "little");
    EXPECT_NEAR(scores[i], ref.score, 1e-4) << "candidate " << i;
    EXPECT_GT(scores[i], 0.0);
    EXPECT_LT(scores[i], 1.0);
    rescored += static_cast<int64_t>(ref.tokens.size());
    if (i < 3) distinct.push_back(ref.tokens);
  }
  EXPECT_EQ(scores[3], scores[0]) << "identical prompts, identical scores";
  EXPECT_EQ(std::set<double>(scores.begin(), scores.end()).size(), 3u) << "different solutions, different scores";

  // The common prefix is computed once, each solution's own tokens once, the duplicate not at all.
  const size_t common = common_prefix(distinct);
  int64_t expected = static_cast<int64_t>(common);
  for (const auto& t : distinct) expected += static_cast<int64_t>(t.size() - common);
  const auto stats = judge.stats();
  EXPECT_EQ(engine->stats().prompt_tokens - before, expected);
  EXPECT_EQ(stats.tokens_evaluated, expected);
  EXPECT_EQ(stats.tokens_if_rescored, rescored);
  EXPECT_EQ(stats.calls, 1);
  EXPECT_GT(stats.seconds, 0.0);
  // The shared part covers the text before the solution, but for a token at the boundary.
  const size_t before_solution = engine->tokenize("Once upon a time, " + problem + " One day", true, true).size();
  EXPECT_GE(common + 2, before_solution);
  EXPECT_EQ(engine->free_slots(), slots) << "every branch is freed";
}

TEST(LlmJudge, ChatTemplateScoresMatchFromScratch) {
  const std::string model = test_model("qwen2-tiny.gguf");
  PONDER_REQUIRE_FILE(model);
  auto engine = open(model);
  ASSERT_TRUE(engine->has_chat_template());
  LlmJudgeOptions o;
  o.prompt_template = "Problem: {problem}\nSolution: {solution}\nIs the solution correct?";
  LlmJudge judge(*engine, o);  // default answers: "yes" and "no"
  EXPECT_EQ(judge.yes_tokens(), single_tokens(*engine, "yes"));
  EXPECT_EQ(judge.no_tokens(), single_tokens(*engine, "no"));
  EXPECT_EQ(judge.yes_tokens().size(), 4u) << "the qwen2 vocabulary has all four variants";

  // Two problems with two solutions each: each problem's prefix is shared by its own solutions.
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"What is 2+3?", "2+3 = 5. The answer is 5."},
      {"What is 2+3?", "2+3 = 6. The answer is 6."},
      {"Solve x^2 = 9 for x > 0.", "x = 3, since 3^2 = 9."},
      {"Solve x^2 = 9 for x > 0.", "x = -3."}};
  std::vector<Candidate> cands;
  for (const auto& [p, s] : cases) cands.push_back(candidate(p, {s}));
  auto chat = [](const std::string& p, const std::string& s) {
    return "<|im_start|>user\nProblem: " + p + "\nSolution: " + s +
           "\nIs the solution correct?<|im_end|>\n<|im_start|>assistant\n";
  };
  EXPECT_EQ(judge.render(cands[0]), chat(cases[0].first, cases[0].second));

  const int64_t before = engine->stats().prompt_tokens;
  const auto scores = judge.score(cands);
  std::vector<std::vector<Token>> tokens;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto ref = reference(model, chat(cases[i].first, cases[i].second), "yes", "no");
    EXPECT_NEAR(scores[i], ref.score, 1e-4) << "candidate " << i;
    tokens.push_back(ref.tokens);
  }
  EXPECT_NE(scores[0], scores[1]);
  EXPECT_NE(scores[2], scores[3]);
  int64_t expected = 0;
  for (size_t g = 0; g < 4; g += 2) {
    const size_t common = common_prefix({tokens[g], tokens[g + 1]});
    expected += static_cast<int64_t>(tokens[g].size() + tokens[g + 1].size() - common);
  }
  EXPECT_EQ(engine->stats().prompt_tokens - before, expected);
  EXPECT_EQ(judge.stats().tokens_evaluated, expected);
  EXPECT_EQ(judge.stats().calls, 1);

  // Without the chat template: the filled template as raw text.
  o.use_chat_template = false;
  LlmJudge raw(*engine, o);
  EXPECT_EQ(raw.render(cands[0]), "Problem: What is 2+3?\nSolution: 2+3 = 5. The answer is 5.\nIs the solution correct?");
  EXPECT_NEAR(raw.score({cands[0]})[0],
              reference(model, raw.render(cands[0]), "yes", "no").score, 1e-4);
}

TEST(LlmJudge, MoreCandidatesThanFreeBranchesTakeSeveralCalls) {
  PONDER_REQUIRE_FILE(stories_model());
  auto small = open(stories_model(), 4);
  auto large = open(stories_model(), 16);
  LlmJudge judge_small(*small, stories_options());
  LlmJudge judge_large(*large, stories_options());
  std::vector<Candidate> cands;
  for (const char* s : {"a cat ran.", "a dog ran.", "the sun was hot.", "it rained.", "Tim was sad.",
                        "they played.", "Lily smiled."}) {
    cands.push_back(candidate(s[0] == 'a' ? "Ben had a toy." : "Sue had a hat.", {s}));
  }
  const auto a = judge_small.score(cands);
  const auto b = judge_large.score(cands);
  for (size_t i = 0; i < cands.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-4) << "candidate " << i;
  EXPECT_GT(judge_small.stats().calls, 1);
  EXPECT_EQ(judge_large.stats().calls, 1);
  EXPECT_EQ(small->free_slots(), 4);

  EXPECT_TRUE(judge_large.score({}).empty());
  EXPECT_EQ(judge_large.stats().calls, 1) << "nothing to score, no call";
}

TEST(LlmJudge, PlaceholdersAreFilledOnce) {
  PONDER_REQUIRE_FILE(stories_model());
  auto engine = open(stories_model(), 2);
  LlmJudgeOptions o = stories_options();
  o.prompt_template = "{problem}|{solution}|{problem}";
  LlmJudge judge(*engine, o);
  // A placeholder inside the inserted text is text, not a placeholder.
  EXPECT_EQ(judge.render(candidate("P {solution}", {"S {problem}"})), "P {solution}|S {problem}|P {solution}");
}

TEST(LlmJudge, BadOptionsAreErrors) {
  PONDER_REQUIRE_FILE(stories_model());
  auto engine = open(stories_model(), 2);
  // No variant of "yes"/"no" is a single token of stories260K's vocabulary.
  EXPECT_THROW(LlmJudge(*engine, LlmJudgeOptions{}), EngineError);
  auto with = [](auto change) {
    LlmJudgeOptions o = stories_options();
    change(o);
    return o;
  };
  EXPECT_THROW(LlmJudge(*engine, with([](auto& o) { o.prompt_template = "Is {problem} right?"; })), EngineError);
  EXPECT_THROW(LlmJudge(*engine, with([](auto& o) { o.yes = ""; })), EngineError);
  EXPECT_THROW(LlmJudge(*engine, with([](auto& o) { o.no = "big"; })), EngineError) << "a token on both sides";
  EXPECT_THROW(LlmJudge(*engine, with([](auto& o) { o.no = "xylophone"; })), EngineError);
  EXPECT_NO_THROW(LlmJudge(*engine, stories_options()));
}

}  // namespace
}  // namespace ponder
