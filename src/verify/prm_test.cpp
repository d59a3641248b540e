// The process reward model on random-weight GGUF fixtures: prm-llama3-tiny (Llama 3 vocabulary and
// chat template, RLHFlow's shape), qwen2-tiny (ChatML), llama-eos (SentencePiece vocabulary).
// Every incremental score is checked against a from-scratch evaluation of the whole text, tokenized
// at once, written here independently of prm.cpp.
#include "verify/prm.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>

#include <gtest/gtest.h>

#include "engine/llama_engine.h"
#include "forwarding_engine.h"
#include "test_paths.h"

namespace ponder {
namespace {

using ponder::testing::test_model;
using Extension = StepVerifier::Extension;

std::unique_ptr<Engine> open(const std::string& path, int branches = 48, int n_ctx = 8192) {
  LlamaEngineOptions o;
  o.model_path = path;
  o.max_branches = branches;
  o.n_ctx = n_ctx;
  o.n_threads = 1;
  o.reproducible = true;  // incremental and from-scratch evaluations then agree to float rounding
  return open_llama_engine(o);
}

void expect_error(const std::function<void()>& f, const std::string& substring) {
  try {
    f();
    ADD_FAILURE() << "no error; expected one containing \"" << substring << "\"";
  } catch (const EngineError& e) {
    EXPECT_NE(std::string(e.what()).find(substring), std::string::npos) << e.what();
  }
}

const std::string kProblem = "What is $x$ if $2x + 3 = 11$? Keep {braces} as they are.";
// As a search produces them: delimiter included, some with inner newlines, braces, non-ASCII.
const std::vector<std::string> kSteps = {
    "Step 1: Subtract 3 from both sides: $2x = 8$.\n\n",
    "Divide by 2, so x = 4.\n\n",
    " The answer is \\boxed{4}.\n\n",
    "Check: 2 * 4 + 3 = 11, fine.\n\n",
    "Let {problem} and {step} stay literal.\n\n",
    "Ответ: 4\n\n",
    "x^2 - 5x + 6 = 0\n=> (x-2)(x-3) = 0\n\n",
    "Hence 12345678 / 2 = 6172839.\n\n",
};

std::string strip(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\n\r");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\n\r") - b + 1);
}

struct Scratch {
  std::vector<Token> tokens;    // the whole text tokenized at once
  std::vector<int32_t> probes;  // where each step is read
  std::vector<double> scores;
};

// What a scorer that re-reads the whole text does: render it, tokenize it at once, evaluate it on
// a fresh branch and read every step.
Scratch from_scratch(Engine& e, const PrmFormat& f, const std::string& problem,
                     const std::vector<std::string>& steps) {
  Scratch s;
  std::string full;
  std::vector<ChatMessage> msgs;
  for (size_t k = 0; k < steps.size(); ++k) {
    const std::string step = strip(steps[k]);
    std::string read_after;  // the text up to the read position
    if (f.layout == PrmFormat::Layout::kChat) {
      std::string turn = step;
      if (k == 0) {
        turn = f.first_turn;
        turn.replace(turn.find("{problem}"), 9, problem);  // kProblem holds no "{step}"
        turn.replace(turn.find("{step}"), 6, step);
      }
      msgs.push_back({"user", turn});
      read_after = e.apply_chat_template(msgs, true);
      msgs.push_back({"assistant", f.good});
      full = e.apply_chat_template(msgs, false);
    } else {
      if (k == 0) full = problem;
      full += (k == 0 ? f.problem_joiner : f.step_separator) + step + f.step_tag;
      read_after = full;
    }
    s.probes.push_back(static_cast<int32_t>(e.tokenize(read_after, true, true).size()) - 1);
  }
  s.tokens = e.tokenize(full, true, true);
  const Token good = e.tokenize(f.good, false, true).at(0);
  const Token bad = e.tokenize(f.bad, false, true).at(0);
  const BranchId b = e.new_branch({});
  const auto out = e.evaluate({{b, s.tokens, s.probes, {good, bad}}});
  e.free_branch(b);
  for (const auto& p : out[0].probs) s.scores.push_back(p[0] / (static_cast<double>(p[0]) + p[1]));
  return s;
}

struct Node {
  VerifierState state;
  std::vector<std::string> steps;
  std::vector<double> scores;
  size_t n_tokens;  // PRM tokens held
  bool live = true;
};

// A tree of depth 3 (3 children at the root, 2 below; some extensions add two steps; the last
// child of each inner node consumes its parent), one extend() call per level. Checks every
// state's tokens and every score against from-scratch scoring, and the counts on the way.
void check_incremental_equals_scratch(const std::string& model, const PrmFormat& format) {
  PONDER_REQUIRE_FILE(model);
  auto engine = open(model);
  ProcessRewardModel prm(*engine, format);

  const EngineStats e0 = engine->stats();
  std::vector<Node> nodes = {{prm.root(kProblem), {}, {}, 0}};
  nodes[0].n_tokens = prm.tokens(nodes[0].state).size();
  EXPECT_EQ(prm.stats().tokens_evaluated, static_cast<int64_t>(nodes[0].n_tokens));

  std::vector<size_t> level = {0};
  size_t next_step = 0;
  for (int depth = 0; depth < 3; ++depth) {
    std::vector<Extension> exts;
    std::vector<size_t> parents;
    for (size_t n : level) {
      const int k = depth == 0 ? 3 : 2;
      for (int j = 0; j < k; ++j) {
        Extension x;
        x.parent = nodes[n].state;
        const int n_steps = exts.size() % 3 == 1 ? 2 : 1;
        for (int s = 0; s < n_steps; ++s) x.steps.push_back(kSteps[next_step++ % kSteps.size()]);
        x.consume_parent = depth > 0 && j == k - 1;
        exts.push_back(x);
        parents.push_back(n);
      }
    }
    const VerifierStats v0 = prm.stats();
    const EngineStats before = engine->stats();
    const auto scored = prm.extend(exts);
    ASSERT_EQ(scored.size(), exts.size());
    const VerifierStats v1 = prm.stats();
    EXPECT_EQ(v1.calls, v0.calls + 1) << "one evaluate() call per extend()";

    int64_t new_tokens = 0, whole = 0;
    level.clear();
    for (size_t i = 0; i < exts.size(); ++i) {
      const Node& parent = nodes[parents[i]];
      ASSERT_EQ(scored[i].step_scores.size(), exts[i].steps.size());
      Node child{scored[i].state, parent.steps, parent.scores, prm.tokens(scored[i].state).size()};
      child.steps.insert(child.steps.end(), exts[i].steps.begin(), exts[i].steps.end());
      child.scores.insert(child.scores.end(), scored[i].step_scores.begin(), scored[i].step_scores.end());
      new_tokens += static_cast<int64_t>(child.n_tokens - parent.n_tokens);
      whole += static_cast<int64_t>(child.n_tokens);
      level.push_back(nodes.size());
      nodes.push_back(child);
    }
    for (size_t i = 0; i < exts.size(); ++i) {
      if (exts[i].consume_parent) nodes[parents[i]].live = false;
    }
    // Only the new tokens are computed (the root's once, with the first level).
    EXPECT_EQ(v1.tokens_evaluated - v0.tokens_evaluated, new_tokens);
    EXPECT_EQ(v1.tokens_if_rescored - v0.tokens_if_rescored, whole);
    EXPECT_GT(whole, new_tokens);
    const int64_t root_tokens = depth == 0 ? static_cast<int64_t>(nodes[0].n_tokens) : 0;
    EXPECT_EQ(engine->stats().prompt_tokens - before.prompt_tokens, new_tokens + root_tokens);
  }
  EXPECT_EQ(engine->stats().prompt_tokens - e0.prompt_tokens, prm.stats().tokens_evaluated);

  const Token bos = engine->tokenize("", true, true).empty() ? -1 : engine->tokenize("", true, true)[0];
  for (const Node& node : nodes) {
    if (node.steps.empty()) continue;
    SCOPED_TRACE("steps: " + std::to_string(node.steps.size()) + ", first: " + node.steps[0]);
    const Scratch s = from_scratch(*engine, format, kProblem, node.steps);
    ASSERT_EQ(node.scores.size(), s.scores.size());
    for (size_t k = 0; k < s.scores.size(); ++k) {
      EXPECT_NEAR(node.scores[k], s.scores[k], 1e-4) << "step " << k;
      EXPECT_GE(node.scores[k], 0.0);
      EXPECT_LE(node.scores[k], 1.0);
    }
    if (!node.live) continue;
    // The incremental pieces are the tokens of the whole text tokenized at once.
    EXPECT_EQ(prm.tokens(node.state), s.tokens);
    if (bos >= 0) EXPECT_EQ(std::count(s.tokens.begin(), s.tokens.end(), bos), 1) << "one BOS";
  }
  for (const Node& node : nodes) {
    if (node.live) prm.release(node.state);
  }
  EXPECT_EQ(engine->free_slots(), 48);
}

TEST(Prm, IncrementalEqualsScratchRlhflowLlama3) {
  check_incremental_equals_scratch(test_model("prm-llama3-tiny.gguf"), PrmFormat::rlhflow());
}
TEST(Prm, IncrementalEqualsScratchMathShepherdLlama3) {
  check_incremental_equals_scratch(test_model("prm-llama3-tiny.gguf"), PrmFormat::math_shepherd());
}
TEST(Prm, IncrementalEqualsScratchRlhflowChatml) {
  check_incremental_equals_scratch(test_model("qwen2-tiny.gguf"), PrmFormat::rlhflow());
}
// SentencePiece puts a space before every separately tokenized text, so pieces must be tokenized
// after their context to match the whole.
TEST(Prm, IncrementalEqualsScratchMathShepherdSentencePiece) {
  check_incremental_equals_scratch(test_model("llama-eos.gguf"), PrmFormat::math_shepherd());
}

TEST(Prm, RlhflowLayoutOnLlama3) {
  const std::string model = test_model("prm-llama3-tiny.gguf");
  PONDER_REQUIRE_FILE(model);
  auto engine = open(model, 4);
  ASSERT_TRUE(engine->has_chat_template());
  ProcessRewardModel prm(*engine, PrmFormat::rlhflow());
  const VerifierState root = prm.root("What is 1+1?");
  // The root holds the first user turn up to the step, less the space before it.
  EXPECT_EQ(engine->detokenize(prm.tokens(root)),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 1+1?");
  const auto scored = prm.extend({{root, {"1+1 = 2.\n\n", "  The answer is 2.\n\n"}, true}});
  EXPECT_EQ(engine->detokenize(prm.tokens(scored[0].state)),
            "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nWhat is 1+1? 1+1 = 2.<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n+<|eot_id|>"
            "<|start_header_id|>user<|end_header_id|>\n\nThe answer is 2.<|eot_id|>"
            "<|start_header_id|>assistant<|end_header_id|>\n\n+<|eot_id|>");
  prm.release(scored[0].state);
}

// The engine, except that its chat template writes the BOS token's text itself, as many
// templates do ("{{ bos_token }}...").
class BosInTemplate final : public testing::ForwardingEngine {
 public:
  using ForwardingEngine::ForwardingEngine;
  std::string apply_chat_template(const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                  bool continue_final) const override {
    return "<|begin_of_text|>" + inner_.apply_chat_template(messages, add_generation_prompt, continue_final);
  }
  bool has_chat_template() const override { return true; }
};

// A template that writes BOS gets no second one: the tokens are those of the template without it.
TEST(Prm, TemplateThatWritesBosGetsOneBos) {
  const std::string model = test_model("prm-llama3-tiny.gguf");
  PONDER_REQUIRE_FILE(model);
  auto engine = open(model, 4);
  BosInTemplate with_bos(*engine);
  ProcessRewardModel prm(*engine, PrmFormat::rlhflow());
  ProcessRewardModel prm_bos(with_bos, PrmFormat::rlhflow());
  const auto a = prm.extend({{prm.root(kProblem), {kSteps[0], kSteps[1]}, true}});
  const auto b = prm_bos.extend({{prm_bos.root(kProblem), {kSteps[0], kSteps[1]}, true}});
  const Token bos = engine->tokenize("", true, true).at(0);
  const auto& tokens = prm_bos.tokens(b[0].state);
  EXPECT_EQ(std::count(tokens.begin(), tokens.end(), bos), 1);
  EXPECT_EQ(tokens, prm.tokens(a[0].state));
  for (size_t k = 0; k < 2; ++k) EXPECT_NEAR(a[0].step_scores[k], b[0].step_scores[k], 1e-5);
}

// Each score is P(good) / (P(good) + P(bad)) at the token before the assistant's answer (chat) or
// at the step tag's last token, as a separate evaluate() of the same tokens reads it.
void check_score_is_ratio(const std::string& model, const PrmFormat& format) {
  PONDER_REQUIRE_FILE(model);
  auto engine = open(model, 4);
  ProcessRewardModel prm(*engine, format);
  const Token good = engine->tokenize(format.good, false, true).at(0);
  const Token bad = engine->tokenize(format.bad, false, true).at(0);
  const auto scored = prm.extend({{prm.root(kProblem), {kSteps[0]}, true}});
  ASSERT_EQ(scored[0].step_scores.size(), 1u);
  const double score = scored[0].step_scores[0];
  EXPECT_GE(score, 0.0);
  EXPECT_LE(score, 1.0);

  const std::vector<Token> tokens = prm.tokens(scored[0].state);
  int32_t read_at = static_cast<int32_t>(tokens.size()) - 1;
  if (format.layout == PrmFormat::Layout::kChat) {
    // ... "<|end_header_id|>\n\n" "+" "<|eot_id|>": read before the answer.
    read_at = static_cast<int32_t>(tokens.size()) - 3;
    EXPECT_EQ(tokens[read_at + 1], good);
  } else {
    const auto tag = engine->tokenize(format.step_tag, false, true);
    EXPECT_EQ(tokens.back(), tag.back());
  }
  const BranchId b = engine->new_branch({});
  const auto out = engine->evaluate({{b, tokens, {read_at}, {good, bad}}});
  const double p_good = out[0].probs[0][0], p_bad = out[0].probs[0][1];
  EXPECT_GT(p_good, 0.0);
  EXPECT_GT(p_bad, 0.0);
  EXPECT_NEAR(score, p_good / (p_good + p_bad), 1e-5);
}

TEST(Prm, ScoreIsGoodOverGoodPlusBadChat) {
  check_score_is_ratio(test_model("prm-llama3-tiny.gguf"), PrmFormat::rlhflow());
}
TEST(Prm, ScoreIsGoodOverGoodPlusBadStepTag) {
  check_score_is_ratio(test_model("prm-llama3-tiny.gguf"), PrmFormat::math_shepherd());
}

// The parent's prefix is computed once: extending a state computes only the new steps' tokens.
TEST(Prm, PrefixIsNotEvaluatedAgain) {
  const std::string model = test_model("prm-llama3-tiny.gguf");
  PONDER_REQUIRE_FILE(model);
  auto engine = open(model, 8);
  ProcessRewardModel prm(*engine, PrmFormat::rlhflow());
  std::string long_problem;
  for (int i = 0; i < 20; ++i) long_problem += "A long problem statement, sentence " + std::to_string(i) + ". ";
  const VerifierState root = prm.root(long_problem);
  const size_t root_tokens = prm.tokens(root).size();
  EXPECT_GT(root_tokens, 150u);

  EngineStats e0 = engine->stats();
  auto first = prm.extend({{root, {kSteps[0]}, false}, {root, {kSteps[1]}, false}, {root, {kSteps[2]}, true}});
  size_t added = 0;
  for (const auto& s : first) added += prm.tokens(s.state).size() - root_tokens;
  EXPECT_EQ(engine->stats().prompt_tokens - e0.prompt_tokens, static_cast<int64_t>(root_tokens + added))
      << "the root's tokens once, then each child's own";

  e0 = engine->stats();
  const VerifierStats v0 = prm.stats();
  std::vector<Extension> exts;
  size_t parents_tokens = 0;
  for (const auto& s : first) {
    exts.push_back({s.state, {kSteps[3]}, true});
    parents_tokens += prm.tokens(s.state).size();
  }
  const auto second = prm.extend(exts);
  size_t total = 0;
  for (const auto& s : second) total += prm.tokens(s.state).size();
  const int64_t computed = engine->stats().prompt_tokens - e0.prompt_tokens;
  EXPECT_EQ(computed, static_cast<int64_t>(total - parents_tokens));
  EXPECT_EQ(prm.stats().tokens_evaluated - v0.tokens_evaluated, computed);
  EXPECT_EQ(prm.stats().tokens_if_rescored - v0.tokens_if_rescored, static_cast<int64_t>(total));
  EXPECT_LT(computed * 5, static_cast<int64_t>(total)) << "only the new step, not the long prefix";
  for (const auto& s : second) prm.release(s.state);
}

TEST(Prm, ConsumeParentHandsOverItsBranch) {
  const std::string model = test_model("prm-llama3-tiny.gguf");
  PONDER_REQUIRE_FILE(model);
  auto engine = open(model, 4);
  ProcessRewardModel prm(*engine, PrmFormat::rlhflow());
  const VerifierState root = prm.root(kProblem);
  const VerifierState a = prm.extend({{root, {kSteps[0]}, false}})[0].state;
  const int32_t free_before = engine->free_slots();

  // Two extensions may not consume one parent; the failed call changes nothing.
  expect_error([&] { prm.extend({{a, {kSteps[1]}, true}, {a, {kSteps[2]}, true}}); }, "consume");
  EXPECT_EQ(engine->free_slots(), free_before);

  // A sibling forks the parent before the consuming child takes its branch.
  const auto scored = prm.extend({{a, {kSteps[1]}, true}, {a, {kSteps[2]}, false}});
  EXPECT_EQ(engine->free_slots(), free_before - 1) << "the consuming child reuses the parent's branch";
  expect_error([&] { prm.release(a); }, "unknown PRM state");
  expect_error([&] { prm.extend({{a, {kSteps[3]}, false}}); }, "unknown PRM state");
  expect_error([&] { prm.tokens(a); }, "unknown PRM state");

  // Both children work and score as from scratch.
  const auto next = prm.extend({{scored[0].state, {kSteps[3]}, true}, {scored[1].state, {kSteps[4]}, true}});
  const PrmFormat f = PrmFormat::rlhflow();
  const auto s0 = from_scratch(*engine, f, kProblem, {kSteps[0], kSteps[1], kSteps[3]});
  const auto s1 = from_scratch(*engine, f, kProblem, {kSteps[0], kSteps[2], kSteps[4]});
  EXPECT_NEAR(scored[0].step_scores[0], s0.scores[1], 1e-4);
  EXPECT_NEAR(scored[1].step_scores[0], s1.scores[1], 1e-4);
  EXPECT_NEAR(next[0].step_scores[0], s0.scores[2], 1e-4);
  EXPECT_NEAR(next[1].step_scores[0], s1.scores[2], 1e-4);
  EXPECT_EQ(prm.tokens(next[0].state), s0.tokens);
  EXPECT_EQ(prm.tokens(next[1].state), s1.tokens);

  // The root is still valid and can be consumed too.
  const auto last = prm.extend({{root, {kSteps[5]}, true}});
  expect_error([&] { prm.release(root); }, "unknown PRM state");
  for (VerifierState s : {next[0].state, next[1].state, last[0].state}) prm.release(s);
  EXPECT_EQ(engine->free_slots(), 4);
}

TEST(Prm, MisuseIsAnErrorNotACrash) {
  const std::string model = test_model("prm-llama3-tiny.gguf");
  PONDER_REQUIRE_FILE(model);
  auto engine = open(model, 3);
  ProcessRewardModel prm(*engine, PrmFormat::math_shepherd());
  const VerifierState root = prm.root(kProblem);
  expect_error([&] { prm.extend({{root, {}, false}}); }, "at least one step");
  expect_error([&] { prm.extend({{12345, {"x"}, false}}); }, "unknown PRM state");
  // Three forks with two free branches: refused before any branch is made.
  expect_error([&] { prm.extend({{root, {"a"}, false}, {root, {"b"}, false}, {root, {"c"}, false}}); },
               "release states");
  EXPECT_EQ(engine->free_slots(), 2);
  const auto ok = prm.extend({{root, {"a"}, false}, {root, {"b"}, false}, {root, {"c"}, true}});
  EXPECT_EQ(ok.size(), 3u);
  EXPECT_EQ(engine->free_slots(), 0);
}

// Text whose tokens would run across a step boundary cannot be scored exactly: an error, and
// nothing changes.
TEST(Prm, TokensAcrossABoundaryAreAnError) {
  const std::string model = test_model("prm-llama3-tiny.gguf");
  PONDER_REQUIRE_FILE(model);
  auto engine = open(model, 2);
  PrmFormat f = PrmFormat::math_shepherd();
  f.problem_joiner = "";
  ProcessRewardModel prm(*engine, f);
  const VerifierState root = prm.root("Say hel");
  expect_error([&] { prm.extend({{root, {"lo"}, false}}); }, "run across the boundary");
  EXPECT_EQ(engine->free_slots(), 1);
  EXPECT_EQ(prm.extend({{root, {"."}, true}})[0].step_scores.size(), 1u);
}

// When the engine fails (here: its KV cache is full), the call's new branches are freed and its
// consumed parents released; the other states stay usable.
TEST(Prm, EngineFailureReleasesTheCallsBranches) {
  const std::string model = test_model("prm-llama3-tiny.gguf");
  PONDER_REQUIRE_FILE(model);
  auto engine = open(model, 4, 256);
  ProcessRewardModel prm(*engine, PrmFormat::math_shepherd());
  const VerifierState root = prm.root(kProblem);
  const VerifierState a = prm.extend({{root, {kSteps[0]}, false}})[0].state;
  std::string long_step;
  for (int i = 0; i < 40; ++i) long_step += "and then " + std::to_string(i) + ", ";
  expect_error([&] { prm.extend({{a, {long_step}, true}, {root, {long_step}, false}}); }, "KV cache is full");
  expect_error([&] { prm.release(a); }, "unknown PRM state");
  EXPECT_EQ(engine->free_slots(), 3) << "only the root's branch is left";
  const auto b = prm.extend({{root, {kSteps[1]}, true}});
  EXPECT_NEAR(b[0].step_scores[0], from_scratch(*engine, prm.format(), kProblem, {kSteps[1]}).scores[0], 1e-4);
}

// --- format configuration -------------------------------------------------------------------------

TEST(PrmFormat, Presets) {
  const PrmFormat r = PrmFormat::rlhflow();
  EXPECT_EQ(r.layout, PrmFormat::Layout::kChat);
  EXPECT_EQ(r.first_turn, "{problem} {step}");
  EXPECT_EQ(r.good, "+");
  EXPECT_EQ(r.bad, "-");
  const PrmFormat m = PrmFormat::math_shepherd();
  EXPECT_EQ(m.layout, PrmFormat::Layout::kStepTag);
  EXPECT_EQ(m.step_tag, " ки");
  EXPECT_EQ(m.step_separator, "\n");
  EXPECT_EQ(m.problem_joiner, " ");
  EXPECT_EQ(m.good, "+");
  EXPECT_EQ(m.bad, "-");
  EXPECT_EQ(PrmFormat::named("rlhflow").layout, PrmFormat::Layout::kChat);
  EXPECT_EQ(PrmFormat::named("math-shepherd").layout, PrmFormat::Layout::kStepTag);
}

TEST(PrmFormat, FromJson) {
  const PrmFormat f = PrmFormat::from_json(
      R"({"layout": "step_tag", "step_tag": " <step>", "good": "Yes", "bad": "No",
          "step_separator": "\n\n", "problem_joiner": "\nAnswer: "})");
  EXPECT_EQ(f.layout, PrmFormat::Layout::kStepTag);
  EXPECT_EQ(f.step_tag, " <step>");
  EXPECT_EQ(f.good, "Yes");
  EXPECT_EQ(f.bad, "No");
  EXPECT_EQ(f.step_separator, "\n\n");
  EXPECT_EQ(f.problem_joiner, "\nAnswer: ");
  EXPECT_EQ(PrmFormat::from_json(R"({"layout": "step_tag"})").step_tag, " ки") << "defaults kept";
  EXPECT_EQ(PrmFormat::from_json(R"({"first_turn": "Q: {problem}\nA: {step}"})").first_turn,
            "Q: {problem}\nA: {step}");
  EXPECT_EQ(PrmFormat::from_json("{}").layout, PrmFormat::Layout::kChat);

  const auto path = std::filesystem::temp_directory_path() / "ponder-prm-format-test.json";
  std::ofstream(path) << R"({"layout": "chat", "good": "good", "bad": "bad"})";
  const PrmFormat g = PrmFormat::named(path.string());
  EXPECT_EQ(g.good, "good");
  std::ofstream(path) << R"({"god": "+"})";
  expect_error([&] { PrmFormat::named(path.string()); }, "unknown key \"god\"");
  std::filesystem::remove(path);
}

TEST(PrmFormat, BadInputIsAOneLineError) {
  expect_error([] { PrmFormat::from_json(R"({"goood": "+"})"); }, "unknown key \"goood\"");
  expect_error([] { PrmFormat::from_json(R"({"good": 1})"); }, "\"good\" must be a string");
  expect_error([] { PrmFormat::from_json(R"({"layout": "tree"})"); }, "layout must be");
  expect_error([] { PrmFormat::from_json(R"({"good": "+",)"); }, "invalid JSON");
  expect_error([] { PrmFormat::from_json(R"(["+", "-"])"); }, "expected a JSON object");
  expect_error([] { PrmFormat::from_json(R"({"first_turn": "{problem}"})"); }, "first_turn");
  expect_error([] { PrmFormat::from_json(R"({"first_turn": "{step} {step} {problem}"})"); }, "first_turn");
  expect_error([] { PrmFormat::from_json(R"({"good": "+", "bad": "+"})"); }, "differ");
  expect_error([] { PrmFormat::from_json(R"({"layout": "step_tag", "step_tag": ""})"); }, "step_tag");
  expect_error([] { PrmFormat::named("no-such-prm"); }, "unknown PRM format \"no-such-prm\"");
  expect_error([] { PrmFormat::named("/"); }, "unknown PRM format");
}

TEST(PrmFormat, MustFitTheModel) {
  const std::string model = test_model("prm-llama3-tiny.gguf");
  PONDER_REQUIRE_FILE(model);
  auto engine = open(model, 2);
  PrmFormat f = PrmFormat::rlhflow();
  f.good = "a good step";
  expect_error([&] { ProcessRewardModel p(*engine, f); }, "good \"a good step\" is 3 tokens");
  f = PrmFormat::math_shepherd();
  f.bad = "";
  expect_error([&] { ProcessRewardModel p(*engine, f); }, "must not be empty");

  // The chat layout needs a template; the step-tag layout does not.
  const std::string plain = test_model("llama-bpe-tiny.gguf");
  PONDER_REQUIRE_FILE(plain);
  auto no_template = open(plain, 2);
  ASSERT_FALSE(no_template->has_chat_template());
  expect_error([&] { ProcessRewardModel p(*no_template, PrmFormat::rlhflow()); }, "needs a chat template");
  ProcessRewardModel ok(*no_template, PrmFormat::math_shepherd());
  EXPECT_EQ(ok.extend({{ok.root("1+1?"), {"2"}, true}})[0].step_scores.size(), 1u);
}

}  // namespace
}  // namespace ponder
