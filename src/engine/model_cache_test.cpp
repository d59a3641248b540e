// Engines and embedders of one file share one loaded model, freed with its last holder.
#include "engine/model_cache.h"

#include <gtest/gtest.h>

#include "engine/llama_engine.h"
#include "test_paths.h"

namespace ponder {
namespace {

using ponder::testing::stories_model;

TEST(ModelCache, OneModelPerFileWhileHeld) {
  PONDER_REQUIRE_FILE(stories_model());
  std::weak_ptr<llama_model> first;
  {
    const auto a = load_shared_model(stories_model(), -1, false);
    ASSERT_NE(a, nullptr);
    const auto b = load_shared_model(stories_model(), -1, false);
    EXPECT_EQ(a.get(), b.get());
    // The vocabulary alone is served by the full model when it is loaded.
    EXPECT_EQ(load_shared_model(stories_model(), -1, true).get(), a.get());
    // Other load settings load their own.
    EXPECT_NE(load_shared_model(stories_model(), 0, false).get(), a.get());
    first = a;
  }
  EXPECT_TRUE(first.expired()) << "freed with its last holder";
  EXPECT_EQ(load_shared_model("/nonexistent/model.gguf", -1, false), nullptr);
}

// Two engines on one model keep their own KV caches: what one generates does not depend on the
// other's work.
TEST(ModelCache, EnginesSharingAModelStayIndependent) {
  PONDER_REQUIRE_FILE(stories_model());
  LlamaEngineOptions o;
  o.model_path = stories_model();
  o.max_branches = 2;
  o.n_ctx = 512;
  o.n_threads = 1;
  o.reproducible = true;
  auto a = open_llama_engine(o);
  auto b = open_llama_engine(o);
  GenerateRequest r;
  r.sampling.temperature = 0.0f;
  r.stop.max_tokens = 20;
  r.branch = a->new_branch(a->tokenize("Once upon a time", true, false));
  const Completion alone = a->generate({r}).at(0);
  GenerateRequest other = r;
  other.branch = b->new_branch(b->tokenize("The dog ran to the park", true, false));
  b->generate({other});
  GenerateRequest again = r;
  again.branch = a->new_branch(a->tokenize("Once upon a time", true, false));
  EXPECT_EQ(a->generate({again}).at(0).tokens, alone.tokens);
}

}  // namespace
}  // namespace ponder
