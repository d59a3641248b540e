// The ponder CLI as a user runs it: output against llama.cpp's own llama-simple, JSON shape,
// and a one-line error with a non-zero exit for bad input.
#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "run_command.h"
#include "test_paths.h"

namespace {

using ponder::testing::build_file;
using ponder::testing::stories_model;
using ponder::testing::test_model;

using Result = ponder::testing::CommandResult;
const auto quote = ponder::testing::shell_quote;
const auto run = ponder::testing::run_command;

std::string ponder() { return quote(build_file("ponder")); }

// llama-simple prints the prompt's pieces (BOS as "<s>"), then the generated ones, then "\n".
void expect_same_as_llama_simple(const std::string& model, const std::string& prompt, int n) {
  PONDER_REQUIRE_FILE(model);
  PONDER_REQUIRE_FILE(build_file("bin/llama-simple"));
  Result simple = run(quote(build_file("bin/llama-simple")) + " -m " + quote(model) + " -n " + std::to_string(n) + " " + quote(prompt));
  ASSERT_EQ(simple.code, 0) << simple.err;
  const std::string args = " generate --threads 1 -t 0 --ignore-eos --max-tokens " + std::to_string(n) + " -m " +
                           quote(model) + " -p " + quote(prompt);
  Result ours = run(ponder() + args + " --json");
  ASSERT_EQ(ours.code, 0) << ours.err;
  ASSERT_EQ(nlohmann::json::parse(ours.out)["completions"][0]["tokens"].size(), static_cast<size_t>(n));
  // Plain output carries the exact bytes (JSON replaces a UTF-8 sequence cut at the end).
  Result plain = run(ponder() + args);
  ASSERT_EQ(plain.code, 0) << plain.err;
  ASSERT_TRUE(plain.out.ends_with("\n"));
  const std::string text = plain.out.substr(0, plain.out.size() - 1);
  ASSERT_GE(simple.out.size(), text.size() + 1);
  // llama-simple stops early only at end-of-generation; ours ran past it, so compare its length.
  const std::string generated = simple.out.substr(simple.out.size() - 1 - text.size(), text.size());
  EXPECT_EQ(generated, text) << "llama-simple: " << simple.out;
  EXPECT_NE(simple.out.find(prompt), std::string::npos);
}

TEST(Cli, GreedyMatchesLlamaSimpleOnStories) {
  expect_same_as_llama_simple(stories_model(), "Once upon a time", 64);
  expect_same_as_llama_simple(stories_model(), "The dog ran to the", 32);
}

TEST(Cli, GreedyMatchesLlamaSimpleOnRandomLlamaBpe) {
  expect_same_as_llama_simple(test_model("llama-bpe-tiny.gguf"), "Hello world, this is", 32);
}

TEST(Cli, GreedyMatchesLlamaSimpleOnRandomQwen2) {
  expect_same_as_llama_simple(test_model("qwen2-tiny.gguf"), "Solve 2+2.", 32);
}

TEST(Cli, VersionNamesPonderAndLlamaCpp) {
  Result r = run(ponder() + " --version");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("ponder "), std::string::npos);
  EXPECT_NE(r.out.find("llama.cpp "), std::string::npos);
}

TEST(Cli, JsonHasEveryCompletionUsageAndTiming) {
  PONDER_REQUIRE_FILE(stories_model());
  Result r = run(ponder() + " generate --threads 1 -m " + quote(stories_model()) +
                 " -p 'Once upon a time' -n 4 --seed 3 --max-tokens 20 --stop '.' --json");
  ASSERT_EQ(r.code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["completions"].size(), 4u);
  int64_t total = 0;
  for (const auto& c : j["completions"]) {
    EXPECT_TRUE(c["text"].is_string());
    EXPECT_TRUE(c["tokens"].is_array());
    EXPECT_LE(c["tokens"].size(), 20u);
    EXPECT_LE(c["logprob"].get<double>(), 0.0);
    const std::string reason = c["finish_reason"];
    EXPECT_TRUE(reason == "stop" || reason == "length" || reason == "eos") << reason;
    if (reason == "stop") EXPECT_EQ(c["text"].get<std::string>().find('.'), std::string::npos);
    total += c["tokens"].size();
  }
  EXPECT_EQ(j["usage"]["prompt_tokens"], 5);
  EXPECT_EQ(j["usage"]["completion_tokens"], total);
  EXPECT_GT(j["timing"]["tokens_per_second"].get<double>(), 0.0);

  // The same seed gives the same completions.
  Result again = run(ponder() + " generate --threads 1 -m " + quote(stories_model()) +
                     " -p 'Once upon a time' -n 4 --seed 3 --max-tokens 20 --stop '.' --json");
  auto j2 = nlohmann::json::parse(again.out);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(j2["completions"][i]["tokens"], j["completions"][i]["tokens"]);
}

TEST(Cli, TopLogprobsAndEntropyOnRequest) {
  PONDER_REQUIRE_FILE(stories_model());
  Result r = run(ponder() + " generate --threads 1 -m " + quote(stories_model()) +
                 " -p 'Once' --max-tokens 5 --top-logprobs 3 --entropy --json --seed 1");
  ASSERT_EQ(r.code, 0) << r.err;
  auto steps = nlohmann::json::parse(r.out)["completions"][0]["steps"];
  ASSERT_EQ(steps.size(), 5u);
  for (const auto& s : steps) {
    EXPECT_EQ(s["top_logprobs"].size(), 3u);
    EXPECT_GE(s["entropy"].get<double>(), 0.0);
    EXPECT_GE(s["top_logprobs"][0]["logprob"].get<double>(), s["logprob"].get<double>() - 1e-6);
  }
}

void expect_one_line_error(const std::string& args, const std::string& words = "") {
  Result r = run(ponder() + " " + args);
  EXPECT_NE(r.code, 0) << args;
  EXPECT_TRUE(r.out.empty()) << args << "\nstdout: " << r.out;
  EXPECT_EQ(r.err.rfind("ponder: error: ", 0), 0u) << args << "\nstderr: " << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << args << "\nstderr: " << r.err;
  if (!words.empty()) EXPECT_NE(r.err.find(words), std::string::npos) << args << "\nstderr: " << r.err;
}

TEST(Cli, BadModelFiles) {
  const auto dir = std::filesystem::temp_directory_path() / "ponder-cli-bad";
  std::filesystem::create_directories(dir);
  expect_one_line_error("generate -m /nonexistent/model.gguf -p hi", "not found");
  {
    std::ofstream f(dir / "notes.txt");
    f << "just some text";
  }
  expect_one_line_error("generate -m " + quote((dir / "notes.txt").string()) + " -p hi", "not a GGUF");
  {
    std::ofstream f(dir / "header.gguf");
    f << "GGUF and then garbage";
  }
  expect_one_line_error("generate -m " + quote((dir / "header.gguf").string()) + " -p hi", "version");
  expect_one_line_error("generate -m " + quote(dir.string()) + " -p hi", "directory");
  PONDER_REQUIRE_FILE(stories_model());
  {
    std::ifstream in(stories_model(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    std::ofstream out(dir / "truncated.gguf", std::ios::binary);
    out.write(bytes.data(), bytes.size() - 1000);
  }
  expect_one_line_error("generate -m " + quote((dir / "truncated.gguf").string()) + " -p hi", "not within the file bounds");
}

TEST(Cli, BadFlagsAndValues) {
  const std::string m = " -m " + quote(stories_model()) + " -p hi";
  expect_one_line_error("generate" + m + " --bogus");
  expect_one_line_error("generate" + m + " -n 0");
  expect_one_line_error("generate" + m + " -n 257");
  expect_one_line_error("generate" + m + " -n many");
  expect_one_line_error("generate" + m + " --temperature -1");
  expect_one_line_error("generate" + m + " --top-p 1.5");
  expect_one_line_error("generate" + m + " --top-p 0");
  expect_one_line_error("generate" + m + " --max-tokens 0");
  expect_one_line_error("generate" + m + " --kv sideways");
  expect_one_line_error("generate -p hi");
  expect_one_line_error("generate -m " + quote(stories_model()));
  expect_one_line_error("frobnicate");
  expect_one_line_error("");
  expect_one_line_error("generate" + m + " --chat", "chat template");
  std::string long_prompt;
  for (int i = 0; i < 300; ++i) long_prompt += "word ";
  expect_one_line_error("generate -m " + quote(stories_model()) + " -p " + quote(long_prompt) + " --ctx 64",
                        "KV cache is full");
}

std::string solve_args(const std::string& extra) {
  return ponder() + " solve --threads 1 -m " + quote(stories_model()) + " --delimiter . --max-tokens 48 " + extra +
         " 'Once upon a time'";
}

TEST(Cli, SolveJsonHasSolutionsSelectionsUsageAndTrace) {
  PONDER_REQUIRE_FILE(stories_model());
  PONDER_REQUIRE_FILE(test_model("prm-llama3-tiny.gguf"));
  const auto trace_path = std::filesystem::temp_directory_path() / ("ponder-trace-" + std::to_string(::getpid()) + ".json");
  const std::string args = solve_args("--prm " + quote(test_model("prm-llama3-tiny.gguf")) +
                                      " --strategy beam --n 8 --beam-width 2 --seed 5 --json --trace " +
                                      quote(trace_path.string()));
  Result r = run(args);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["strategy"], "beam");
  EXPECT_EQ(j["seed"], 5);
  ASSERT_GE(j["solutions"].size(), 8u);
  for (const auto& s : j["solutions"]) {
    std::string joined;
    for (const auto& step : s["steps"]) {
      joined += step["text"].get<std::string>();
      const double score = step["score"];
      EXPECT_GE(score, 0.0);
      EXPECT_LE(score, 1.0);
    }
    EXPECT_EQ(joined, s["text"]);
    EXPECT_DOUBLE_EQ(s["score"].get<double>(), s["steps"].back()["score"].get<double>());  // aggregation "last"
  }
  for (const char* k : {"chosen", "naive", "majority", "weighted"}) EXPECT_TRUE(j["selections"].contains(k)) << k;
  const int chosen = j["selections"]["chosen"]["solution"];
  EXPECT_EQ(j["solution"], j["solutions"][chosen]["text"]);
  const auto& u = j["usage"];
  EXPECT_EQ(u["prompt_tokens"], 5);
  EXPECT_GT(u["completion_tokens"].get<int>(), 8 * 10);
  EXPECT_GT(u["verifier_tokens"].get<int>(), 0);
  EXPECT_LT(u["verifier_tokens"].get<int>(), u["verifier_tokens_if_rescored"].get<int>());
  EXPECT_GT(u["rounds"].get<int>(), 1);
  // The engine's counters: every sampled token, in fewer decode steps (8 rows at a time).
  const auto& e = j["engine"];
  EXPECT_EQ(e["generated_tokens"], u["completion_tokens"]);
  EXPECT_GT(e["decode_calls"].get<int>(), 0);
  EXPECT_LT(e["decode_calls"].get<int>(), u["completion_tokens"].get<int>() / 2);

  // The trace holds every node; finished solutions are there as finished, and each round's
  // sampled nodes number N.
  std::ifstream in(trace_path);
  const auto trace = nlohmann::json::parse(in);
  std::filesystem::remove(trace_path);
  const auto& nodes = trace["nodes"];
  std::map<int, int> per_round;
  for (const auto& n : nodes) {
    if (n["round"].get<int>() >= 0 && n["depth"].get<int>() == n["round"].get<int>() + 1) per_round[n["round"]]++;
  }
  for (const auto& [round, count] : per_round) EXPECT_EQ(count, 8) << "round " << round;
  for (const auto& s : j["solutions"]) EXPECT_EQ(nodes[s["node"].get<int>()]["status"], "finished");

  // Same seed, same search.
  Result again = run(args);
  ASSERT_EQ(again.code, 0) << again.err;
  EXPECT_EQ(nlohmann::json::parse(again.out)["solutions"], j["solutions"]);
}

// Beam search with --speculate all samples ahead with up to 2N branches; past what an engine holds
// (256) it runs round by round rather than refusing a search that fits.
TEST(Cli, SolveBeamBeyondRoomToSampleAheadRunsRoundByRound) {
  PONDER_REQUIRE_FILE(stories_model());
  PONDER_REQUIRE_FILE(test_model("prm-llama3-tiny.gguf"));
  Result r = run(solve_args("--prm " + quote(test_model("prm-llama3-tiny.gguf")) +
                            " --strategy beam --speculate all --n 130 --max-rounds 1 --seed 2 --json"));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["solutions"].size(), 130u);
  EXPECT_EQ(j["usage"]["discarded_tokens"], 0);
}

TEST(Cli, SolvePrintsTheChosenSolutionAndAnswer) {
  PONDER_REQUIRE_FILE(stories_model());
  Result r = run(solve_args("--strategy best-of-n --confidence mean --n 4 --seed 1"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\n\nanswer: "), std::string::npos) << r.out;
  Result maj = run(solve_args("--strategy majority --n 3 --seed 1 --json"));
  ASSERT_EQ(maj.code, 0) << maj.err;
  EXPECT_EQ(nlohmann::json::parse(maj.out)["solutions"].size(), 3u);
}

// The PRM's KV layout is its own (--verifier-kv; --kv is the generator's), and changes its scores
// by rounding only.
TEST(Cli, SolvePrmScoresDoNotDependOnItsKvLayout) {
  PONDER_REQUIRE_FILE(stories_model());
  PONDER_REQUIRE_FILE(test_model("prm-llama3-tiny.gguf"));
  const std::string args = "--prm " + quote(test_model("prm-llama3-tiny.gguf")) +
                           " --strategy beam --n 4 --beam-width 2 --seed 4 --reproducible --json";
  Result unified = run(solve_args(args));
  Result split = run(solve_args(args + " --verifier-kv split"));
  ASSERT_EQ(unified.code, 0) << unified.err;
  ASSERT_EQ(split.code, 0) << split.err;
  const auto a = nlohmann::json::parse(unified.out)["solutions"];
  const auto b = nlohmann::json::parse(split.out)["solutions"];
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]["text"], b[i]["text"]);
    ASSERT_EQ(a[i]["steps"].size(), b[i]["steps"].size());
    for (size_t k = 0; k < a[i]["steps"].size(); ++k) {
      EXPECT_NEAR(a[i]["steps"][k]["score"].get<double>(), b[i]["steps"][k]["score"].get<double>(), 1e-4);
    }
  }
  expect_one_line_error(" solve -m " + quote(stories_model()) + " --verifier-kv sideways problem", "sideways");
}

// Without a PRM, the generator's mean confidence guides beam search and DVTS: each step scores
// the geometric-mean token probability of the solution so far, computed by no model.
TEST(Cli, SolveSearchesStepByStepByTheGeneratorsConfidence) {
  PONDER_REQUIRE_FILE(stories_model());
  for (const char* strategy : {"beam", "dvts"}) {
    Result r = run(solve_args(std::string("--strategy ") + strategy + " --confidence mean --n 4 --beam-width 2 --seed 3 --json"));
    ASSERT_EQ(r.code, 0) << r.err;
    const auto j = nlohmann::json::parse(r.out);
    ASSERT_GE(j["solutions"].size(), 2u) << strategy;
    for (const auto& s : j["solutions"]) {
      for (const auto& step : s["steps"]) {
        EXPECT_GT(step["score"].get<double>(), 0.0);
        EXPECT_LE(step["score"].get<double>(), 1.0);
      }
      EXPECT_DOUBLE_EQ(s["score"].get<double>(), s["steps"].back()["score"].get<double>()) << strategy;
    }
    EXPECT_GT(j["usage"]["rounds"].get<int>(), 1) << strategy;
    EXPECT_EQ(j["usage"]["verifier_tokens"], 0) << strategy;
  }
  expect_one_line_error(" solve -m " + quote(stories_model()) + " --strategy beam --confidence lowest-group problem",
                        "--confidence mean");
}

TEST(Cli, SolveRefusesWhatItCannotDo) {
  PONDER_REQUIRE_FILE(stories_model());
  const std::string m = " solve -m " + quote(stories_model());
  expect_one_line_error(m + " --strategy beam problem", "needs a PRM");
  expect_one_line_error(m + " --strategy dvts problem", "needs a PRM");
  expect_one_line_error(m + " --strategy best-of-n problem", "needs a verifier");
  expect_one_line_error(m + " --strategy majority '   '", "empty");
  expect_one_line_error(m + " --strategy sideways problem");
  expect_one_line_error(m + " --n 0 problem");
  expect_one_line_error(m + " --strategy majority --lookahead 1 problem", "lookahead");
  expect_one_line_error(m + " --prm /nonexistent/prm.gguf problem", "not found");
  expect_one_line_error(m + " --prm " + quote(stories_model()) + " --prm-format nonsense problem", "nonsense");
  const auto bad = std::filesystem::temp_directory_path() / "ponder-bad-format.json";
  {
    std::ofstream f(bad);
    f << R"({"layout": "step_tag", "colour": "red"})";
  }
  expect_one_line_error(m + " --prm " + quote(stories_model()) + " --prm-format " + quote(bad.string()) + " problem",
                        "colour");
  expect_one_line_error(" solve problem");
}

}  // namespace
