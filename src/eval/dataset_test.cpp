// Reading the three benchmark layouts, from the shared copies, and clear errors for bad files.
#include "eval/dataset.h"

#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

#include "test_paths.h"

namespace ponder {
namespace {

std::string write_temp(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() / ("ponder-dataset-" + std::to_string(::getpid()) + name);
  std::ofstream(path) << text;
  return path.string();
}

TEST(Dataset, ReadsMath500) {
  const std::string path = testing::shared_file("data/math500.jsonl");
  PONDER_REQUIRE_FILE(path);
  const auto ps = load_dataset(path);
  ASSERT_EQ(ps.size(), 500u);
  EXPECT_EQ(ps[0].id, "test/precalculus/807.json");
  EXPECT_EQ(ps[0].answer, "\\left( 3, \\frac{\\pi}{2} \\right)");
  EXPECT_EQ(ps[0].level, 2);
  EXPECT_EQ(ps[0].subject, "Precalculus");
}

TEST(Dataset, ReadsFullMathWithTheLastBoxedAnswer) {
  const std::string path = testing::shared_file("data/math/test.jsonl");
  PONDER_REQUIRE_FILE(path);
  const auto ps = load_dataset(path);
  ASSERT_EQ(ps.size(), 5000u);
  EXPECT_EQ(ps[0].id, "0");
  EXPECT_EQ(ps[0].answer, "2");  // "...the graph has $\boxed{2}$ vertical asymptotes"
  EXPECT_EQ(ps[0].level, 3);
  EXPECT_EQ(ps[0].subject, "Algebra");
}

TEST(Dataset, ReadsGsm8kWithTheAnswerAfterHashes) {
  const std::string path = testing::shared_file("data/gsm8k/test.jsonl");
  PONDER_REQUIRE_FILE(path);
  const auto ps = load_dataset(path);
  ASSERT_EQ(ps.size(), 1319u);
  EXPECT_EQ(ps[0].id, "line 1");
  EXPECT_EQ(ps[0].answer, "18");
  EXPECT_FALSE(ps[0].level);
  EXPECT_EQ(ps[0].problem.rfind("Janet", 0), 0u);
}

TEST(Dataset, NamesTheLineOfABadEntry) {
  const std::string path = write_temp("bad.jsonl", "{\"problem\": \"1+1\", \"answer\": \"2\"}\n\nnot json\n");
  try {
    load_dataset(path);
    FAIL() << "no error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(":3: not a JSON object"), std::string::npos) << e.what();
  }
  const std::string no_answer = write_temp("noanswer.jsonl", "{\"problem\": \"1+1\"}\n");
  EXPECT_THROW(load_dataset(no_answer), std::runtime_error);
  const std::string dup = write_temp("dup.jsonl", "{\"problem\": \"a\", \"answer\": \"1\", \"unique_id\": \"x\"}\n"
                                                  "{\"problem\": \"b\", \"answer\": \"2\", \"unique_id\": \"x\"}\n");
  EXPECT_THROW(load_dataset(dup), std::runtime_error);
  EXPECT_THROW(load_dataset("/nonexistent/data.jsonl"), std::runtime_error);
  for (const auto& p : {path, no_answer, dup}) std::filesystem::remove(p);
}

}  // namespace
}  // namespace ponder
