#include "tasks/toy/train.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <set>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

#include <gtest/gtest.h>

#include "engine/llama_engine.h"
#include "tasks/toy/arithmetic.h"
#include "tasks/toy/attempts.h"
#include "test_paths.h"
#include "tasks/toy/prm_data.h"
#include "verify/prm.h"

namespace ponder::toy {
namespace {

class ToyTrain : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("ponder_toy_train_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

  // A model small enough to train in a second or two.
  static TrainOptions tiny() {
    TrainOptions o;
    o.shape = {32, 2, 2, 64, 160};
    o.lr = 3e-3f;
    o.lr_min = 1e-3f;
    o.warmup_steps = 5;
    o.log_points = 4;
    o.n_threads = 1;  // many small ops, each a thread barrier: with another process on the other core, 2 threads took minutes
    return o;
  }

  std::filesystem::path dir_;
};

std::unique_ptr<LlamaEngine> open(const std::string& path) {
  LlamaEngineOptions eo;
  eo.model_path = path;
  eo.n_ctx = 1024;
  eo.max_branches = 4;
  eo.n_threads = 1;
  return open_llama_engine(eo);
}

Problem one_problem() {
  Problem p;
  p.start = 7;
  p.ops = {{Op::kAdd, 5}};
  return p;
}

TEST(ToyVocabulary, OneTokenPerCharacter) {
  const auto v = toy_vocabulary();
  EXPECT_EQ(v.size(), 356u);
  EXPECT_EQ(std::set<std::string>(v.begin(), v.end()).size(), v.size()) << "duplicate tokens";
}

TEST_F(ToyTrain, LossFallsAndTheModelLearnsItsText) {
  // One document, repeated: the model must learn to continue its problem with its solution.
  const Problem p = one_problem();
  const std::string doc = p.text() + "\n" + p.solution();
  const std::vector<Document> docs(150, doc);
  TrainOptions o = tiny();
  o.epochs = 4;
  const TrainResult r = train_language_model(docs, {doc}, o, path("m.gguf"));
  ASSERT_EQ(r.curve.size(), 16u);
  EXPECT_GT(r.parameters, 0);
  EXPECT_GT(r.tokens_per_second, 0.0);
  // From near-uniform over 356 tokens (ln 356 = 5.9) to little.
  EXPECT_GT(r.curve.front().train_loss, 3.0);
  EXPECT_LT(r.curve.back().train_loss, 0.3);
  EXPECT_LT(r.curve.back().val_loss, 0.3);
  EXPECT_EQ(r.curve.back().epoch, 4);
  EXPECT_GT(r.curve.back().step, r.curve.front().step);

  const auto engine = open(path("m.gguf"));
  EXPECT_FALSE(engine->has_chat_template());
  // Character-level: digits, operators and the newline are one token each, with BOS first.
  EXPECT_EQ(engine->tokenize("7 + 5 = 12\n", true, false).size(), 12u);

  // llama.cpp computes the function that was trained: its loss on the validation document is
  // the trainer's own.
  std::vector<Token> tokens = engine->tokenize(doc, true, true);
  tokens.push_back(engine->eos_token());
  std::vector<Token> vocab(static_cast<size_t>(engine->vocab_size()));
  for (size_t i = 0; i < vocab.size(); ++i) vocab[i] = static_cast<Token>(i);
  std::vector<int32_t> positions;
  for (size_t i = 0; i + 1 < tokens.size(); ++i) positions.push_back(static_cast<int32_t>(i));
  const BranchId branch = engine->new_branch({});
  const auto probs = engine->evaluate({{branch, tokens, positions, vocab}})[0].probs;
  engine->free_branch(branch);
  double nll = 0.0;
  for (size_t i = 0; i + 1 < tokens.size(); ++i) nll -= std::log(probs[i][static_cast<size_t>(tokens[i + 1])]);
  EXPECT_NEAR(nll / static_cast<double>(positions.size()), r.curve.back().val_loss, 1e-3);

  SamplingParams greedy;
  greedy.temperature = 0.0f;
  const auto attempts = attempt_problems(*engine, {p}, 1, greedy);
  ASSERT_EQ(attempts.size(), 1u);
  EXPECT_EQ(attempts[0].text, "\n" + p.solution());
  EXPECT_TRUE(attempts[0].check.correct);
  const auto acc = accuracy_by_level({p}, attempts);
  ASSERT_EQ(acc.size(), 1u);
  EXPECT_EQ(acc[0].correct, 1);

  // Training goes on from the saved model: its loss starts about where the first run ended, and
  // the new file carries the chat template it was given.
  TrainOptions more = tiny();
  more.init_from = path("m.gguf");
  more.lr = 1e-4f;
  more.lr_min = 1e-5f;
  const TrainResult again =
      train_language_model(docs, {}, more, path("m2.gguf"), {{"tokenizer.chat_template", kToyChatTemplate}});
  EXPECT_LT(again.curve.front().train_loss, 0.3);
  EXPECT_TRUE(std::isnan(again.curve.front().val_loss));
  const auto prm_engine = open(path("m2.gguf"));
  ASSERT_TRUE(prm_engine->has_chat_template());
  EXPECT_EQ(prm_engine->tokenize("<|im_start|>", false, true).size(), 1u);

  // The PRM's training conversations are exactly what ponder's PRM verifier holds for the same
  // steps (every answer "+" there), right or wrong, and their targets differ only in the labels.
  ProcessRewardModel prm(*prm_engine, PrmFormat::rlhflow());
  for (const std::string& solution : {p.solution(), std::string("7 + 5 = 13\n\nAnswer: \\boxed{13}")}) {
    const SolutionCheck check = check_solution(p, solution);
    const auto scored = prm.extend({{prm.root(p.text()), check.steps, true}});
    ASSERT_EQ(scored.size(), 1u);
    EXPECT_EQ(scored[0].step_scores.size(), check.steps.size());
    const Document doc = prm_document(p, check);
    EXPECT_EQ(prm.tokens(scored[0].state), prm_engine->tokenize(doc.text, true, true)) << solution;
    EXPECT_EQ(prm_engine->tokenize(doc.targets, true, true).size(), prm.tokens(scored[0].state).size());
    prm.release(scored[0].state);
  }
}

TEST(ToyPrmData, Conversations) {
  const Problem p = one_problem();
  const Document right = prm_document(p, check_solution(p, p.solution()));
  EXPECT_EQ(right.text,
            "<|im_start|>user\nStart with 7, add 5. What is the result? 7 + 5 = 12<|im_end|>\n"
            "<|im_start|>assistant\n+<|im_end|>\n<|im_start|>user\nAnswer: \\boxed{12}<|im_end|>\n"
            "<|im_start|>assistant\n+<|im_end|>\n");
  EXPECT_EQ(right.targets, right.text);
  // A wrong step: the text shows "+" everywhere, as the verifier does; the targets say "-".
  const Document wrong = prm_document(p, check_solution(p, "7 + 5 = 13\n\nAnswer: \\boxed{13}"));
  EXPECT_EQ(wrong.text,
            "<|im_start|>user\nStart with 7, add 5. What is the result? 7 + 5 = 13<|im_end|>\n"
            "<|im_start|>assistant\n+<|im_end|>\n<|im_start|>user\nAnswer: \\boxed{13}<|im_end|>\n"
            "<|im_start|>assistant\n+<|im_end|>\n");
  EXPECT_EQ(wrong.targets,
            "<|im_start|>user\nStart with 7, add 5. What is the result? 7 + 5 = 13<|im_end|>\n"
            "<|im_start|>assistant\n-<|im_end|>\n<|im_start|>user\nAnswer: \\boxed{13}<|im_end|>\n"
            "<|im_start|>assistant\n-<|im_end|>\n");
  EXPECT_EQ(prm_document(p, check_solution(p, "")).text, "");
}

TEST(ToyPrmData, SlippedSolutions) {
  Rng rng(7);
  std::set<std::string> seen;
  for (int level = 1; level <= kLevels; ++level) {
    for (int i = 0; i < 40; ++i) {
      const Problem p = random_problem(level, rng);
      const auto text = slipped_solution(p, rng);
      ASSERT_TRUE(text.has_value()) << p.text();
      seen.insert(*text);
      const SolutionCheck c = check_solution(p, *text);
      // As many steps as the reference, on track until one of them.
      ASSERT_EQ(c.steps.size(), p.ops.size() + 1) << *text;
      ASSERT_FALSE(c.correct) << *text;
      const auto first_bad = std::find(c.step_ok.begin(), c.step_ok.end(), false) - c.step_ok.begin();
      ASSERT_LT(first_bad, static_cast<ptrdiff_t>(p.ops.size())) << *text;
      EXPECT_EQ(std::count(c.labels.begin(), c.labels.end(), true), first_bad) << *text;
      // The problem's operations throughout, each step's arithmetic right after the slipped one,
      // and each step going on from the value before it.
      long long prev = p.start;
      for (size_t k = 0; k < p.ops.size(); ++k) {
        long long a = 0, b = 0, result = 0;
        char op = 0;
        ASSERT_EQ(std::sscanf(c.steps[k].c_str(), "%lld %c %lld = %lld", &a, &op, &b, &result), 4) << *text;
        EXPECT_EQ(a, prev) << *text;
        EXPECT_EQ(op, static_cast<char>(p.ops[k].op)) << *text;
        EXPECT_EQ(b, p.ops[k].operand) << *text;
        if (k != static_cast<size_t>(first_bad)) EXPECT_EQ(result, apply(p.ops[k].op, a, b)) << *text;
        prev = result;
      }
      // The slip is one digit of that step's result.
      const std::string want = std::to_string(p.values()[static_cast<size_t>(first_bad) + 1]);
      const std::string got = c.steps[static_cast<size_t>(first_bad)].substr(c.steps[static_cast<size_t>(first_bad)].rfind(' ') + 1);
      ASSERT_EQ(got.size(), want.size()) << *text;
      int differ = 0;
      for (size_t k = 0; k < got.size(); ++k) differ += got[k] != want[k];
      EXPECT_EQ(differ, 1) << *text;
      // The answer follows the slipped chain.
      EXPECT_EQ(c.answer, std::stoll(c.steps[p.ops.size() - 1].substr(c.steps[p.ops.size() - 1].rfind(' ') + 1)));
    }
  }
  EXPECT_GT(seen.size(), 150u);  // different slips, not one
  // Same seed, same slips.
  Rng a(3), b(3);
  const Problem p = random_problem(4, a);
  (void)random_problem(4, b);
  EXPECT_EQ(slipped_solution(p, a), slipped_solution(p, b));
  EXPECT_FALSE(slipped_solution(Problem{}, a).has_value());  // no steps to slip
}

TEST_F(ToyTrain, LossAfterTrainsOnlyTheLabels) {
  // PRM conversations: the loss counts only the "+"/"-" after each assistant header, two a
  // document (a window each, batch 1: none dropped).
  const Problem p = one_problem();
  std::vector<Document> docs;
  for (int i = 0; i < 20; ++i) {
    docs.push_back(prm_document(p, check_solution(p, p.solution())));
    docs.push_back(prm_document(p, check_solution(p, "7 + 5 = 13\n\nAnswer: \\boxed{13}")));
  }
  TrainOptions o = tiny();
  o.shape.n_ctx = 128;
  o.batch = 1;
  o.epochs = 20;
  o.loss_after = "<|im_start|>assistant\n";
  const TrainResult r =
      train_language_model(docs, {}, o, path("prm.gguf"), {{"tokenizer.chat_template", kToyChatTemplate}});
  EXPECT_EQ(r.scored_tokens, 2 * 40);
  EXPECT_GT(r.curve.front().train_loss, 2.0);  // near-uniform over the vocabulary at first
  EXPECT_LT(r.curve.back().train_loss, 1.0);   // then about "+" or "-"

  // The PRM learned its targets, not the "+" its text shows: read by the verifier, which shows
  // it the same text, it says "-" to both steps of the wrong solution and "+" to the right one's.
  {
    const auto engine = open(path("prm.gguf"));
    ProcessRewardModel prm(*engine, PrmFormat::rlhflow());
    for (const std::string& solution : {p.solution(), std::string("7 + 5 = 13\n\nAnswer: \\boxed{13}")}) {
      const SolutionCheck check = check_solution(p, solution);
      const auto scored = prm.extend({{prm.root(p.text()), check.steps, true}});
      ASSERT_EQ(scored[0].step_scores.size(), 2u);
      for (double score : scored[0].step_scores) EXPECT_EQ(score > 0.5, check.correct) << solution << ": " << score;
      prm.release(scored[0].state);
    }
  }

  o.loss_after.clear();
  const TrainResult all = train_language_model(docs, {}, o, path("lm.gguf"));
  EXPECT_GT(all.scored_tokens, 40 * 50);  // every position of every conversation
}

TEST_F(ToyTrain, SameSeedSameModel) {
  const std::vector<Document> docs(60, one_problem().text() + "\n" + one_problem().solution());
  TrainOptions o = tiny();
  o.log_points = 1;
  const TrainResult a = train_language_model(docs, {}, o, path("a.gguf"));
  const TrainResult b = train_language_model(docs, {}, o, path("b.gguf"));
  o.seed = 1;
  const TrainResult c = train_language_model(docs, {}, o, path("c.gguf"));
  EXPECT_EQ(a.curve.back().train_loss, b.curve.back().train_loss);
  EXPECT_NE(a.curve.back().train_loss, c.curve.back().train_loss);
}

TEST_F(ToyTrain, BadInputIsAnError) {
  const std::vector<Document> docs(60, "some text to learn");
  TrainOptions o = tiny();
  EXPECT_THROW(train_language_model({"too short"}, {}, o, path("x.gguf")), std::runtime_error);
  // Targets must be as many tokens as their text.
  std::vector<Document> uneven(60, Document("some text to learn", "some text to learn!"));
  EXPECT_THROW(train_language_model(uneven, {}, o, path("x.gguf")), std::runtime_error);
  o.shape.n_ctx = 0;
  EXPECT_THROW(train_language_model(docs, {}, o, path("x.gguf")), std::runtime_error);
  o = tiny();
  o.shape.n_head = 3;
  EXPECT_THROW(train_language_model(docs, {}, o, path("x.gguf")), std::runtime_error);
  o = tiny();
  o.lr_min = 1.0f;
  EXPECT_THROW(train_language_model(docs, {}, o, path("x.gguf")), std::runtime_error);
  o = tiny();
  o.batch = 0;
  EXPECT_THROW(train_language_model(docs, {}, o, path("x.gguf")), std::runtime_error);
  o = tiny();
  o.init_from = path("missing.gguf");
  EXPECT_THROW(train_language_model(docs, {}, o, path("x.gguf")), std::runtime_error);
  o.init_from = ponder::testing::stories_model();  // a llama, but not a toy model
  if (ponder::testing::exists(o.init_from)) {
    EXPECT_THROW(train_language_model(docs, {}, o, path("x.gguf")), std::runtime_error);
  }
  o = tiny();
  EXPECT_THROW(train_language_model(docs, {}, o, path("no/such/dir/x.gguf")), std::runtime_error);
  EXPECT_FALSE(std::filesystem::exists(path("x.gguf")));
}

}  // namespace
}  // namespace ponder::toy
