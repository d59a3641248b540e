// ponder train-toy as a user runs it, on a model small enough to train in seconds: the generator
// stage, its continuation, the PRM stage, what lands in --out-dir, that the same command makes
// the same model, and bad input.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "run_command.h"
#include "test_paths.h"

namespace {

namespace fs = std::filesystem;
using ponder::testing::build_file;
using ponder::testing::run_command;
using ponder::testing::shell_quote;

class TrainToyCli : public ::testing::Test {
 protected:
  void SetUp() override {
    PONDER_REQUIRE_FILE(build_file("ponder"));
    dir_ = fs::temp_directory_path() / ("ponder-train-toy-cli-" + std::to_string(::getpid()) + "-" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A tiny generator on a few problems per level.
  std::string train(const fs::path& out, const std::string& extra = "") const {
    return shell_quote(build_file("ponder")) + " train-toy --out-dir " + shell_quote(out.string()) +
           " --train-per-level 40 --validation-per-level 4 --test-per-level 2 --prm-problems-per-level 3"
           " --prm-samples 2 --n-embd 16 --n-layer 1 --n-head 2 --n-ff 32 --log-points 2 --threads 1" + extra;
  }

  fs::path dir_;
};

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

nlohmann::json summary(const fs::path& dir) { return nlohmann::json::parse(read_file(dir / "train-toy.json")); }

TEST_F(TrainToyCli, GeneratorContinuationAndPrmLandInOutDir) {
  const fs::path out = dir_ / "toy";
  const auto first = run_command(train(out, " --stages generator"));
  ASSERT_EQ(first.code, 0) << first.err;
  for (const char* f : {"toy-generator.gguf", "generator-curve.csv", "toy-test.jsonl", "generator-validation-greedy.txt"}) {
    EXPECT_TRUE(fs::exists(out / f)) << f;
  }
  nlohmann::json s = summary(out);
  EXPECT_EQ(s["generator"]["greedy_validation"].size(), 5u);  // every level measured
  EXPECT_EQ(s["generator"]["curve"], "generator-curve.csv");
  EXPECT_NE(s["generator"]["command"].get<std::string>().find("--n-embd 16"), std::string::npos);
  EXPECT_FALSE(s.contains("prm"));
  const nlohmann::json first_command = s["generator"]["command"];
  // The test split as eval reads it: two problems per level.
  const std::string jsonl = read_file(out / "toy-test.jsonl");
  EXPECT_EQ(std::count(jsonl.begin(), jsonl.end(), '\n'), 10);

  // Continued: a second curve, and the summary keeps the first run inside the second.
  const auto more = run_command(train(out, " --stages generator --seed 1 --init-from " +
                                                 shell_quote((out / "toy-generator.gguf").string())));
  ASSERT_EQ(more.code, 0) << more.err;
  s = summary(out);
  EXPECT_EQ(s["generator"]["curve"], "generator-curve-2.csv");
  EXPECT_TRUE(fs::exists(out / "generator-curve-2.csv"));
  EXPECT_EQ(s["generator"]["init_from"], "toy-generator.gguf");
  EXPECT_EQ(s["generator"]["continued_from"]["command"], first_command);
  EXPECT_EQ(s["generator"]["continued_from"]["curve"], "generator-curve.csv");

  const auto prm = run_command(train(out, " --stages prm"));
  ASSERT_EQ(prm.code, 0) << prm.err;
  EXPECT_TRUE(fs::exists(out / "toy-prm.gguf"));
  EXPECT_TRUE(fs::exists(out / "prm-curve.csv"));
  s = summary(out);
  ASSERT_TRUE(s.contains("prm"));
  EXPECT_TRUE(s.contains("generator"));  // kept from the earlier runs
  EXPECT_EQ(s["prm"]["data"]["solutions"], 5 * 3 * 2);
  // One slipped reference solution per problem by default (a slip can fail only when every try
  // takes a later value below 0).
  EXPECT_GT(s["prm"]["data"]["slipped_solutions"].get<int>(), 5 * 3 - 3);
  EXPECT_LE(s["prm"]["data"]["slipped_solutions"].get<int>(), 5 * 3);
  EXPECT_EQ(s["prm"]["slips_per_problem"], 1);
  EXPECT_EQ(s["prm"]["validation_data"]["slipped_solutions"], 0);  // validation: sampled only
  EXPECT_EQ(s["prm"]["data"]["reference_solutions"], 0);           // not asked for
  // The validation loss reads one sample per problem; the held-out scores read all four.
  EXPECT_EQ(s["prm"]["validation_data"]["solutions"], 5 * 4);
  EXPECT_GT(s["prm"]["validation_scores"]["steps"].get<int>(),
            s["prm"]["validation_data"]["steps_good"].get<int>() + s["prm"]["validation_data"]["steps_bad"].get<int>());
  EXPECT_TRUE(s["prm"]["validation_scores"].contains("last_score_auc_within_problem"));
  EXPECT_GT(s["prm"]["data"]["steps_good"].get<int>() + s["prm"]["data"]["steps_bad"].get<int>(), 0);
  // The ranking measures are reported (null when the held-out samples hold no correct one).
  ASSERT_TRUE(s["prm"].contains("validation_scores"));
  EXPECT_TRUE(s["prm"]["validation_scores"].contains("last_score_auc"));
  EXPECT_TRUE(s["prm"]["validation_scores"].contains("last_score_auc_within_level"));
  EXPECT_TRUE(s["prm"]["validation_scores"].contains("step_auc_within_level"));
  ASSERT_TRUE(s["prm"]["validation_scores"].contains("step_auc"));
  EXPECT_TRUE(s["prm"]["validation_scores"]["step_auc"].is_null() ||
              (s["prm"]["validation_scores"]["step_auc"] >= 0.0 && s["prm"]["validation_scores"]["step_auc"] <= 1.0));

  const auto before = s["prm"]["data"];
  const auto no_slips = run_command(train(out, " --stages prm --prm-slips 0 --prm-references"));
  ASSERT_EQ(no_slips.code, 0) << no_slips.err;
  s = summary(out);
  EXPECT_EQ(s["prm"]["data"]["slipped_solutions"], 0);
  // Every reference solution is right, every one of its steps "+".
  EXPECT_EQ(s["prm"]["data"]["reference_solutions"], 5 * 3);
  EXPECT_EQ(s["prm"]["data"]["correct_solutions"].get<int>(), before["correct_solutions"].get<int>() + 5 * 3);
  EXPECT_TRUE(s["prm"]["references"].get<bool>());
}

TEST_F(TrainToyCli, SameCommandSameModel) {
  const auto a = run_command(train(dir_ / "a", " --stages generator --skip-eval"));
  const auto b = run_command(train(dir_ / "b", " --stages generator --skip-eval"));
  ASSERT_EQ(a.code, 0) << a.err;
  ASSERT_EQ(b.code, 0) << b.err;
  const std::string ma = read_file(dir_ / "a" / "toy-generator.gguf");
  const std::string mb = read_file(dir_ / "b" / "toy-generator.gguf");
  ASSERT_GT(ma.size(), 40000u);
  ASSERT_GT(mb.size(), 40000u);
  // The description records the command, whose --out-dir differs: compare the weights, which
  // follow the metadata (the last tensors' bytes).
  EXPECT_EQ(ma.substr(ma.size() - 30000), mb.substr(mb.size() - 30000));
}

TEST_F(TrainToyCli, BadInputIsAnError) {
  const auto no_generator = run_command(train(dir_ / "empty", " --stages prm"));
  EXPECT_NE(no_generator.code, 0);
  EXPECT_NE(no_generator.err.find("run the generator stage first"), std::string::npos) << no_generator.err;
  const auto bad_stage = run_command(train(dir_ / "x", " --stages tokenizer"));
  EXPECT_NE(bad_stage.code, 0);
  EXPECT_NE(bad_stage.err.find("unknown stage 'tokenizer'"), std::string::npos) << bad_stage.err;
  const auto missing = run_command(train(dir_ / "y", " --stages generator --init-from /nonexistent.gguf"));
  EXPECT_NE(missing.code, 0);
}

}  // namespace
