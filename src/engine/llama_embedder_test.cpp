// LlamaEmbedder on the real stories260K model (a plain generator, so mean-pooled hidden states):
// unit length, determinism, batched calls equal to one text at a time, and clear errors.
#include "engine/llama_embedder.h"

#include <cmath>
#include <fstream>

#include <gtest/gtest.h>

#include "test_paths.h"

namespace ponder {
namespace {

using ponder::testing::stories_model;

LlamaEmbedderOptions stories_options() {
  LlamaEmbedderOptions o;
  o.model_path = stories_model();
  o.n_threads = 1;
  return o;
}

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

const std::vector<std::string> kTexts = {
    "Once upon a time, there was a little girl named Lily.",
    "She liked to play in the park with her dog.",
    "One day, the sun was hot and the sky was blue.",
    "Tom had a big red ball.",
    "zq 7 ## ]] xkcd",
};

TEST(EmbedderTest, VectorsAreUnitLength) {
  PONDER_REQUIRE_FILE(stories_model());
  LlamaEmbedder embedder(stories_options());
  const auto vectors = embedder.embed(kTexts);
  ASSERT_EQ(vectors.size(), kTexts.size());
  for (const auto& v : vectors) {
    ASSERT_EQ(static_cast<int32_t>(v.size()), embedder.dimension());
    EXPECT_NEAR(dot(v, v), 1.0, 1e-5);
  }
}

TEST(EmbedderTest, SameTextSameVector) {
  PONDER_REQUIRE_FILE(stories_model());
  LlamaEmbedder embedder(stories_options());
  // Twice in one call: the same up to float rounding (the two sit at different batch rows).
  const auto vectors = embedder.embed({kTexts[0], kTexts[1], kTexts[0]});
  for (size_t i = 0; i < vectors[0].size(); ++i) EXPECT_NEAR(vectors[0][i], vectors[2][i], 1e-5);
  // The same call again: exactly the same computation, exactly the same vectors.
  EXPECT_EQ(embedder.embed({kTexts[0], kTexts[1], kTexts[0]}), vectors);
}

// Batches of other shapes take other matrix kernels (their choice depends on the rows and on the
// CPU's instruction set), whose float rounding differs: measured up to 3.3e-5 on unit vectors.
constexpr double kAcrossBatches = 2e-4;

TEST(EmbedderTest, BatchedEqualsOneAtATime) {
  PONDER_REQUIRE_FILE(stories_model());
  LlamaEmbedder embedder(stories_options());
  const auto batched = embedder.embed(kTexts);
  for (size_t t = 0; t < kTexts.size(); ++t) {
    const auto alone = embedder.embed({kTexts[t]});
    for (size_t i = 0; i < alone[0].size(); ++i) EXPECT_NEAR(batched[t][i], alone[0][i], kAcrossBatches) << "text " << t;
  }
}

TEST(EmbedderTest, SplitsWorkAcrossDecodeCalls) {
  // A batch far smaller than the texts together: they take several calls, and agree with one.
  PONDER_REQUIRE_FILE(stories_model());
  LlamaEmbedder big(stories_options());
  LlamaEmbedderOptions small_options = stories_options();
  small_options.n_batch = 32;
  small_options.max_tokens_per_text = 32;
  LlamaEmbedder small(small_options);
  const auto a = big.embed(kTexts);
  const auto b = small.embed(kTexts);
  for (size_t t = 0; t < kTexts.size(); ++t) {
    for (size_t i = 0; i < a[t].size(); ++i) EXPECT_NEAR(a[t][i], b[t][i], kAcrossBatches) << "text " << t;
  }
}

TEST(EmbedderTest, IdenticalCloserThanDifferent) {
  // A tiny model's hidden states carry little meaning; what holds robustly is that a text is
  // nearest to itself, and closer to a near-copy than to unrelated noise.
  PONDER_REQUIRE_FILE(stories_model());
  LlamaEmbedder embedder(stories_options());
  const auto v = embedder.embed({kTexts[0], "Once upon a time, there was a little boy named Tom.", kTexts[4]});
  const auto self = embedder.embed({kTexts[0]});
  EXPECT_GT(dot(v[0], self[0]), 0.9999);
  EXPECT_GT(dot(v[0], v[1]), dot(v[0], v[2]));  // measured 0.96 vs 0.61
}

TEST(EmbedderTest, RelatedSentenceCloserThanNoise) {
  // Two sentences about a dog in the park against a string of noise: measured 0.91 vs 0.69, a
  // margin wide enough to hold across thread counts and llama.cpp builds.
  PONDER_REQUIRE_FILE(stories_model());
  LlamaEmbedder embedder(stories_options());
  const auto v = embedder.embed({"The dog ran to the park.", kTexts[1], kTexts[4]});
  EXPECT_GT(dot(v[0], v[1]), dot(v[0], v[2]) + 0.1);
}

TEST(EmbedderTest, EmptyInputGivesNothing) {
  PONDER_REQUIRE_FILE(stories_model());
  LlamaEmbedder embedder(stories_options());
  EXPECT_TRUE(embedder.embed({}).empty());
}

TEST(EmbedderTest, TooLongTextThrows) {
  PONDER_REQUIRE_FILE(stories_model());
  LlamaEmbedderOptions o = stories_options();
  o.max_tokens_per_text = 8;
  LlamaEmbedder embedder(o);
  try {
    embedder.embed({"Hi.", kTexts[0]});
    FAIL() << "expected EngineError";
  } catch (const EngineError& e) {
    EXPECT_NE(std::string(e.what()).find("text 1 has"), std::string::npos) << e.what();
  }
}

TEST(EmbedderTest, BadFilesThrow) {
  LlamaEmbedderOptions o;
  o.model_path = "/nonexistent/model.gguf";
  EXPECT_THROW({ LlamaEmbedder e(o); }, EngineError);
  const std::string not_gguf = ::testing::TempDir() + "/embedder_not_gguf.bin";
  std::ofstream(not_gguf) << "this is not a model";
  o.model_path = not_gguf;
  try {
    LlamaEmbedder e(o);
    FAIL() << "expected EngineError";
  } catch (const EngineError& e) {
    EXPECT_NE(std::string(e.what()).find("not a GGUF"), std::string::npos) << e.what();
  }
}

TEST(EmbedderTest, BadOptionsThrow) {
  LlamaEmbedderOptions o = stories_options();
  o.max_tokens_per_text = o.n_batch + 1;
  EXPECT_THROW({ LlamaEmbedder e(o); }, EngineError);
}

}  // namespace
}  // namespace ponder
