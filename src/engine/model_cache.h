// One loaded llama_model per file for the whole process. A model's weights are read-only once
// loaded and llama.cpp lets many contexts share one model, so the engines and embedders that
// open the same file (a story search's generator, its fluency scorer and its embedder; a
// server's search engine and its story models) share one copy of the weights instead of one
// each.
#pragma once

#include <memory>
#include <string>

struct llama_model;

namespace ponder {

// The model at `path` loaded with these settings, shared with every other holder that asked
// for the same; it is freed when the last holder lets go. A request for the vocabulary only is
// served by a full model of the file when one is loaded. Safe to call from any thread. Returns
// null when llama.cpp cannot load the file (its log says why).
std::shared_ptr<llama_model> load_shared_model(const std::string& path, int n_gpu_layers, bool vocab_only);

}  // namespace ponder
