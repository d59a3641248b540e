// Engines the tests open on the shared stories260K model.
#pragma once

#include <memory>

#include "engine/llama_engine.h"
#include "test_paths.h"

namespace ponder::testing {

// stories260K, one thread, reproducible: batched and one-at-a-time evaluations then agree to
// float rounding.
inline std::unique_ptr<LlamaEngine> open_stories_engine(int branches = 16, int n_ctx = 4096) {
  LlamaEngineOptions o;
  o.model_path = stories_model();
  o.max_branches = branches;
  o.n_ctx = n_ctx;
  o.n_threads = 1;
  o.reproducible = true;
  return open_llama_engine(o);
}

}  // namespace ponder::testing
